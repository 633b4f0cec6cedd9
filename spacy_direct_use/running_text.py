"""Entities read on the running text, with exactly their characters, then placed on the Doc.

A checkpoint trained on running text (a personal-data tagger such as Rampart) finds
values glued to their neighbours: `email:john@x.com,`, `Tel:(415)555-2671;`. Read through
spaCy's tokens, such a value is one piece of a longer word and is lost. With
`alignment_mode` other than "tokens", direct_ner reads the Doc's text as the tokenizer
reads any text (alignment.text_pieces), reads each piece's label, and groups pieces into
entities by the model's own rule (`piece_entities`). The entities are character spans;
`place_entities` puts them on the Doc:

- "split": the Doc's tokens are split (spaCy's retokenizer) exactly at each entity's
  edges, so every entity is a Span with exactly its characters; no other token changes;
- "expand", "contract", "strict": as `Doc.char_span(..., alignment_mode=...)` places
  them, for pipelines whose tokens must not change.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc, SpanGroup

from .labels import END, INSIDE, OUTSIDE, LabelScheme

ALIGNMENT_MODES = ("tokens", "split", "expand", "contract", "strict")
"""`alignment_mode` of direct_ner: "tokens" reads spaCy's tokens as the model's words (as
checkpoints fine-tuned on pre-split words were trained); the others read the running text."""

CharEntity = Tuple[int, int, str, float]  # start char, end char, label, confidence
_CONTINUING = (INSIDE, END)
"""Prefixes that continue an entity across whitespace (I-, and E-/L- in BIOES/BILOU)."""


def trimmed_spans(text: str, offsets: Sequence[Tuple[int, int]]) -> np.ndarray:
    """Each piece's (start, end) characters without the whitespace a tokenizer may count in
    (SentencePiece's '▁', byte-level BPE's 'Ġ'); a piece of whitespace only gets start == end."""
    spans = np.zeros((len(offsets), 2), dtype=np.int64)
    for i, (start, end) in enumerate(offsets):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        spans[i] = start, end
    return spans


def piece_entities(probs: np.ndarray, spans: np.ndarray, text: str, scheme: LabelScheme) -> List[Tuple[int, int, int, float]]:
    """(start char, end char, type id, confidence) of the entities in one Doc's pieces, read
    as the model reads running text: each piece's most probable label; an entity is a
    maximal run of pieces of one type in which each next piece touches the previous one (no
    character between, whatever its prefix) or follows only whitespace with a continuing
    prefix (I-, E-). Pieces of no characters are skipped; confidence is the mean
    probability of the entity's pieces' labels."""
    kept = np.flatnonzero(spans[:, 1] > spans[:, 0])
    if len(kept) == 0:
        return []
    labels = probs[kept].argmax(axis=1)
    confidence = probs[kept, labels]
    prefixes, types = scheme.prefixes[labels], scheme.type_ids[labels]
    starts, ends = spans[kept, 0], spans[kept, 1]
    runs: List[List[int]] = []  # [first, stop) in `kept` order, one per entity
    for k in range(len(kept)):
        if prefixes[k] == OUTSIDE:
            continue
        if runs and runs[-1][1] == k and types[k] == types[k - 1] and _joins(text, ends[k - 1], starts[k], prefixes[k]):
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1])
    return [
        (int(starts[first]), int(ends[stop - 1]), int(types[first]), float(confidence[first:stop].mean()))
        for first, stop in runs
    ]


def _joins(text: str, previous_end: int, start: int, prefix: int) -> bool:
    """Whether a piece continues the entity of the piece before it."""
    return start <= previous_end or (prefix in _CONTINUING and text[previous_end:start].isspace())


def place_entities(doc: Doc, entities: List[CharEntity], mode: str) -> List[Tuple[int, int, str, float]]:
    """The character entities on the Doc's tokens, (start token, end token, label,
    confidence): after splitting tokens at their edges ("split"), or as Doc.char_span
    places them ("expand", "contract", "strict"; a span it cannot place is dropped)."""
    if mode == "split":
        split_at(doc, [edge for start, end, _, _ in entities for edge in (start, end)])
        mode = "strict"  # every edge is now a token boundary
    placed = []
    for start, end, label, confidence in entities:
        span = doc.char_span(start, end, alignment_mode=mode)
        if span is not None and len(span):
            placed.append((span.start, span.end, label, confidence))
    return placed


def split_at(doc: Doc, edges: Sequence[int]) -> None:
    """Split the Doc's tokens at the character offsets `edges` that fall inside a token, in
    place. doc.text never changes, and no other token does. Each new token takes its
    original's tag, POS, morphology, dependency label and entity annotation (a tagger, parser
    or earlier ner that ran before keeps its analysis); where the Doc is parsed, the first
    part keeps the original's head and the other parts attach to it ("punct" for
    punctuation). Entities and span groups keep their characters; the tensor row is copied."""
    cuts = _cuts_per_token(doc, edges)
    if not cuts:
        return
    groups = _span_groups_by_chars(doc)
    parsed, has_sents, has_lemmas = doc.has_annotation("DEP"), doc.has_annotation("SENT_START"), doc.has_annotation("LEMMA")
    tensor_rows = _tensor_rows(doc, cuts)
    with doc.retokenize() as retokenizer:
        for i, offsets in cuts.items():
            token = doc[i]
            parts = _parts(token.text, offsets)
            retokenizer.split(token, parts, heads=_heads(token, len(parts), parsed), attrs=_attrs(token, parts, parsed, has_lemmas))
    if not parsed:  # a parse sets sentence starts from its tree; otherwise no part after the first starts one
        for later_part in _later_parts(cuts):
            doc[later_part].is_sent_start = False if has_sents else None
    _restore_span_groups(doc, groups)
    if tensor_rows is not None:
        doc.tensor = tensor_rows


def _cuts_per_token(doc: Doc, edges: Sequence[int]) -> Dict[int, List[int]]:
    """token index -> the offsets inside it (relative to its start) where it must be split."""
    starts = np.array([token.idx for token in doc], dtype=np.int64)
    cuts: Dict[int, set] = {}
    for edge in edges:
        i = int(np.searchsorted(starts, edge, side="right")) - 1
        if i >= 0 and 0 < edge - starts[i] < len(doc[i]):
            cuts.setdefault(i, set()).add(int(edge - starts[i]))
    return {i: sorted(offsets) for i, offsets in cuts.items()}


def _parts(text: str, offsets: List[int]) -> List[str]:
    bounds = [0] + offsets + [len(text)]
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _heads(token, n_parts: int, parsed: bool) -> list:
    if not parsed:  # every part its own head, as an unparsed token is
        return [(token, k) for k in range(n_parts)]
    first = token.head if token.head.i != token.i else (token, 0)
    return [first] + [(token, 0)] * (n_parts - 1)


def _later_parts(cuts: Dict[int, List[int]]) -> List[int]:
    """The indices, after the split, of every part but the first of each split token."""
    later, shift = [], 0
    for i in sorted(cuts):
        later.extend(range(i + shift + 1, i + shift + len(cuts[i]) + 1))
        shift += len(cuts[i])
    return later


def _attrs(token, parts: List[str], parsed: bool, has_lemmas: bool) -> Dict[str, list]:
    """The attributes each part takes from `token` (spaCy's split leaves the parts after the
    first holding stale values of the tokens it moved, so every one is set)."""
    n = len(parts)
    attrs = {name: [value] * n for name, value in _token_values(token).items()}
    if parsed:
        attrs["DEP"] = [attrs["DEP"][0]] + ["punct" if _is_punct(p) else "dep" for p in parts[1:]]
    if has_lemmas:
        attrs["LEMMA"] = parts
    return attrs


def _token_values(token) -> Dict[str, int]:
    return {
        "TAG": token.tag, "POS": token.pos, "MORPH": token.morph.key, "DEP": token.dep,
        "ENT_TYPE": token.ent_type, "ENT_KB_ID": token.ent_kb_id, "ENT_ID": token.ent_id,
    }  # fmt: skip


def _is_punct(text: str) -> bool:
    return not any(c.isalnum() for c in text)


def _span_groups_by_chars(doc: Doc) -> Dict[str, Tuple[SpanGroup, list]]:
    """Each span group with its spans as characters: spaCy's split keeps token indices in
    span groups (they would point at other tokens), so they are rebuilt afterwards."""
    return {
        key: (group, [(span.start_char, span.end_char, span.label, span.kb_id, span.id) for span in group])
        for key, group in doc.spans.items()
    }


def _restore_span_groups(doc: Doc, groups: Dict[str, Tuple[SpanGroup, list]]) -> None:
    for key, (group, spans) in groups.items():
        rebuilt = [doc.char_span(s, e, label=label, kb_id=kb_id, span_id=span_id) for s, e, label, kb_id, span_id in spans]
        doc.spans[key] = SpanGroup(doc, name=group.name, attrs=dict(group.attrs), spans=rebuilt)


def _tensor_rows(doc: Doc, cuts: Dict[int, List[int]]) -> Optional[np.ndarray]:
    """The Doc's tensor after the split, each part with its original's row (spaCy's split
    zeroes them); None where the Doc has no per-token tensor."""
    tensor = doc.tensor
    if tensor is None or getattr(tensor, "ndim", 0) != 2 or tensor.shape[0] != len(doc):
        return None
    return tensor[np.repeat(np.arange(len(doc)), [len(cuts.get(i, ())) + 1 for i in range(len(doc))])]
