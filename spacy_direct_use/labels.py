"""Label schemes: parse a model's id2label into tags and the transitions they allow.

A checkpoint's tags are read in the scheme it was fine-tuned with (`tag_scheme`):

- "iob2": B- starts every entity (what most fine-tuning scripts convert to).
- "iob1": CoNLL-2003's own files: I- starts an entity after O or another type,
  B- only where an entity follows one of the same type (dbmdz/bert-large-cased-
  finetuned-conll03-english, FacebookAI/xlm-roberta-large-finetuned-conll03-english).
- "bioes" (or "bilou"): E-/L- closes an entity, S-/U- is a one-token entity.
- "io": no prefixes; a run of one type is one entity.

"auto" reads the scheme off the labels where they decide it (`scheme_from_labels`),
and otherwise off the model's own predictions (`scheme_from_predictions`).
Prefixes are read in any case and with '-' or '_' (`b-per`, `B_PER`); the type keeps
its spelling, compound types (`ORG/PRS`) stay whole, and `O` may sit anywhere.
"""
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import DirectUseError, Errors

OUTSIDE, BEGIN, INSIDE, END, SINGLE = range(5)
_PREFIXES = {"B": BEGIN, "I": INSIDE, "E": END, "L": END, "S": SINGLE, "U": SINGLE}
_PREFIXED = re.compile(r"^([BIESLU])[-_](.+)$", re.IGNORECASE)
_GENERIC = re.compile(r"^LABEL_\d+$")

TAG_SCHEMES = ("auto", "iob2", "iob1", "bioes", "bilou", "io")
_ALIASES = {"bilou": "bioes"}
MIN_STARTS = 8
"""Entity starts the model must predict on the probe text before its I-/B- starts
decide between IOB1 and IOB2."""


PROBE_SENTENCES = [
    sentence.split()
    for sentence in (
        "Merkel met Obama in Berlin on Monday .",
        "Microsoft said on Tuesday it would buy LinkedIn .",
        "Italy beat Germany 2-1 in Rome .",
        "Reuters reported that Sony and Toyota shares rose in Tokyo .",
        "Smith scored twice for Arsenal against Chelsea .",
        "The Dutch government sent troops to Bosnia .",
        "Clinton flew to Moscow to meet Yeltsin .",
        "Shares of Boeing fell in New York after the Fed spoke .",
        "Mandela visited Paris , London and Madrid .",
        "Juventus signed the French striker Zidane .",
        "Kohl und Chirac trafen sich in Bonn .",
        "El presidente Aznar viajó a Lisboa .",
        "Hu Jintao met Putin at the Kremlin .",
        "NATO and the UN agreed on Friday in Brussels .",
        "Nokia sold phones in Finland and India .",
        "Ferrari driver Schumacher won in Monaco .",
    )
]
"""Short news sentences, full of one-word names (the starts that set IOB1 apart), on
which any CoNLL- or OntoNotes-style model predicts entities: the text that
`tag_scheme` "auto" reads a model's predictions on, when its labels do not decide."""


def parse_label(label: str) -> Tuple[int, Optional[str]]:
    """Split a model label into (prefix code, entity type); 'O' has no type."""
    if label.upper() == "O":
        return OUTSIDE, None
    match = _PREFIXED.match(label)
    if match:
        return _PREFIXES[match.group(1).upper()], match.group(2)
    return INSIDE, label


def scheme_from_labels(labels: Sequence[str]) -> Optional[Tuple[str, str]]:
    """(scheme, why) where the label set alone decides the scheme; None where only the
    model's predictions can tell IOB1 from IOB2 (B- and I- tags for every type)."""
    parsed = [parse_label(label) for label in labels]
    prefixes = {p for p, _ in parsed}
    if prefixes & {END, SINGLE}:
        return "bioes", "the labels have E-/S- (L-/U-) tags"
    begin_types = {t for p, t in parsed if p == BEGIN}
    types = {t for _, t in parsed if t is not None}
    if not begin_types:
        return "io", "no label has a B- prefix"
    if begin_types != types:
        missing = sorted(types - begin_types)
        return "iob1", f"B- tags for some types only (none for {', '.join(missing)}), as IOB1 training data has"
    return None


def scheme_from_predictions(paths: Sequence[np.ndarray], labels: Sequence[str]) -> Tuple[Optional[str], str]:
    """(scheme, why) from the model's argmax tags (one array per sentence): an IOB2 model
    starts entities with B-, an IOB1 model with I- (B- only between two entities of
    one type). IOB1 where I- starts outnumber B- starts, else IOB2; None where the
    model predicts fewer than MIN_STARTS starts, too few to tell."""
    parsed = [parse_label(label) for label in labels]
    i_starts = b_starts = 0
    for path in paths:
        previous: Tuple[int, Optional[str]] = (OUTSIDE, None)
        for label_id in path.tolist():
            prefix, etype = parsed[label_id]
            if not (previous[0] != OUTSIDE and previous[1] == etype):  # a new entity starts here
                i_starts += prefix == INSIDE
                b_starts += prefix == BEGIN
            previous = (prefix, etype)
    why = f"{i_starts} of {i_starts + b_starts} entity starts it predicts on the probe text are I- tags"
    if i_starts + b_starts < MIN_STARTS:
        return None, f"{why}, too few to tell IOB1 from IOB2"
    return ("iob1" if i_starts > b_starts else "iob2"), why


@dataclass
class LabelScheme:
    """The model's tags as arrays, plus the transitions Viterbi may take."""

    labels: List[str]
    tag_scheme: str
    prefixes: np.ndarray  # (K,) prefix code per label, as the tag scheme reads it
    types: List[Optional[str]]  # entity type per label, None for O
    type_ids: np.ndarray  # (K,) index into `entity_types`, -1 for O
    entity_types: List[str]
    allowed: np.ndarray  # (K, K) bool: label i may be followed by label j
    allowed_start: np.ndarray  # (K,) bool
    allowed_end: np.ndarray  # (K,) bool

    @classmethod
    def from_id2label(cls, id2label: Mapping[int, str], name: str = "model", tag_scheme: str = "auto") -> "LabelScheme":
        """The labels in id order, read in `tag_scheme`; "auto" here reads them as the
        labels alone say (IOB2 where only predictions could tell it from IOB1)."""
        labels = [id2label[i] for i in range(len(id2label))]
        _check_labels(labels, name)
        tag_scheme = normalize_tag_scheme(tag_scheme)
        if tag_scheme == "auto":
            tag_scheme = (scheme_from_labels(labels) or ("iob2", ""))[0]
        parsed = [parse_label(label) for label in labels]
        _check_scheme_fits(parsed, tag_scheme, name)
        if tag_scheme == "io":  # prefixes carry no boundary: every tag is inside its type
            parsed = [(OUTSIDE if t is None else INSIDE, t) for _, t in parsed]
        prefixes = np.array([p for p, _ in parsed], dtype=np.int8)
        types = [t for _, t in parsed]
        entity_types = sorted({t for t in types if t is not None})
        type_index = {t: i for i, t in enumerate(entity_types)}
        type_ids = np.array([type_index.get(t, -1) for t in types], dtype=np.int32)
        # IOB1 lets I- start an entity; B- then only splits two entities of one type
        has_begin = set() if tag_scheme == "iob1" else {t for p, t in parsed if p == BEGIN}
        has_end = {t for p, t in parsed if p == END}
        _check_reachable(parsed, {t for p, t in parsed if p == BEGIN}, name)
        allowed = np.array(
            [[_may_follow(a, b, has_begin, has_end) for b in parsed] for a in parsed]
        )
        allowed_start = np.array([_may_follow((OUTSIDE, None), b, has_begin, has_end) for b in parsed])
        allowed_end = np.array([not _is_open(p, t, has_end) for p, t in parsed])
        return cls(labels, tag_scheme, prefixes, types, type_ids, entity_types, allowed, allowed_start, allowed_end)

    @cached_property
    def type_matrix(self) -> np.ndarray:
        """(K, n_types): 1 where label k is a tag of entity type t (P(type) = probs @ it)."""
        matrix = np.zeros((len(self.labels), len(self.entity_types)), dtype=np.float32)
        tagged = self.type_ids >= 0
        matrix[np.flatnonzero(tagged), self.type_ids[tagged]] = 1.0
        return matrix

    def is_valid(self, path: np.ndarray) -> bool:
        """Whether a label sequence obeys the scheme."""
        if len(path) == 0:
            return True
        return bool(
            self.allowed_start[path[0]]
            and self.allowed_end[path[-1]]
            and self.allowed[path[:-1], path[1:]].all()
        )


def normalize_tag_scheme(tag_scheme: str) -> str:
    """The canonical name of a tag_scheme setting ("bilou" is "bioes")."""
    return _ALIASES.get(tag_scheme, tag_scheme)


def check_labels(labels: Sequence[str], name: str, tag_scheme: str = "auto") -> None:
    """Raise the DirectUseError for labels that no scheme, or not `tag_scheme`, can read."""
    LabelScheme.from_id2label(dict(enumerate(labels)), name, tag_scheme)


def _is_open(prefix: int, etype: Optional[str], has_end: set) -> bool:
    """True where the entity must continue: B-/I- of a type that has E- tags."""
    return prefix in (BEGIN, INSIDE) and etype in has_end


def _may_follow(prev: Tuple[int, Optional[str]], nxt: Tuple[int, Optional[str]], has_begin: set, has_end: set) -> bool:
    prev_prefix, prev_type = prev
    prefix, etype = nxt
    continues = prev_prefix in (BEGIN, INSIDE) and prev_type == etype
    if _is_open(prev_prefix, prev_type, has_end):
        return continues and prefix in (INSIDE, END)
    if prefix == END:
        return continues
    if prefix == INSIDE and etype in has_begin:
        return continues
    return True


def check_not_placeholders(labels: Sequence[str], name: str) -> None:
    """Refuse labels named only LABEL_0, LABEL_1, ... (E019 names the id2label setting)."""
    if labels and all(_GENERIC.match(label) for label in labels):
        raise DirectUseError(Errors.E019.format(name=name, labels=f"{list(labels[:3])}...", n=len(labels)))


def _check_labels(labels: List[str], name: str) -> None:
    check_not_placeholders(labels, name)
    if not any(label.upper() == "O" for label in labels):
        raise DirectUseError(Errors.E007.format(name=name, detail=f"no 'O' label among {labels}"))
    if len(set(labels)) != len(labels):
        raise DirectUseError(Errors.E007.format(name=name, detail=f"duplicate labels in {labels}"))


def _check_scheme_fits(parsed, tag_scheme: str, name: str) -> None:
    if tag_scheme in ("iob2", "iob1") and any(p in (END, SINGLE) for p, _ in parsed):
        detail = f"tag_scheme {tag_scheme!r} has no E-/S- (L-/U-) tags, but the labels do"
        raise DirectUseError(Errors.E027.format(name=name, detail=detail, scheme="bioes"))


def _check_reachable(parsed, has_begin: set, name: str) -> None:
    for prefix, etype in parsed:
        if prefix == END and etype not in has_begin and not any(
            p == INSIDE and t == etype for p, t in parsed
        ):
            raise DirectUseError(
                Errors.E007.format(name=name, detail=f"E-{etype} has no B-{etype} or I-{etype} before it")
            )


def map_types(entity_types: List[str], label_map: Dict[str, Optional[str]]) -> Dict[str, Optional[str]]:
    """The spaCy label for each model entity type; None drops the type."""
    return {t: label_map.get(t, t) for t in entity_types}
