"""Relations between a Doc's entities for direct_rel: GLiREL checkpoints (the `glirel` package),
relation types named in the config or per call.

GLiREL reads a text as words after a prompt of the relation types
(`[REL] Work_For [REL] Live_In [SEP] w1 w2 ...`) and scores every ordered pair of the entities it
is given against each type. The checkpoint is read as glirel reads it: its own model class
(`GLiREL`), collator (`collate_fn`: prompt, entity spans, pairs) and decoding (`predict`: sigmoid,
`prob > threshold`), then `top_k` per pair as `batch_predict_relations` applies it, so scores
are glirel's. What this module changes:
- loading (glirel_checkpoint.py): the same files, read without glirel's hub download;
- the words are the Doc's non-whitespace tokens and the entities its `doc.ents`;
- nothing is truncated. glirel cuts a text at `max_len` words but still scores the entities past
  the cut (from the wrong positions), and crashes past the encoder's sub-words. Here each Doc is
  read in windows (windows.word_windows) of whole sentences: one per window by default
  (`max_sentences_per_window`), or packed while their words fit `max_len` and their sub-words
  (entity markers included) fit the encoder's limit together with this call's prompt; a window
  never cuts an entity. A sentence over a limit is read in strides that overlap by half a
  window. A Doc without sentence boundaries that fits is one window, read as
  `predict_relations` reads it; a longer one is cut at the sentences spaCy's rules find.
  **Window rule**: a pair is scored only in a window that holds both of its entities wholly;
  where several do (strides), in the one where the pair lies furthest from an edge; two
  entities no window holds together (different sentences by default, different packed windows,
  or further apart than a stride's overlap) are not scored.
The windows of a batch of Docs run together, length-sorted (inference.length_batches).
"""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from spacy.tokens import Doc

from .alignment import doc_words
from .errors import DirectUseError, Errors
from .glirel_checkpoint import quiet_glirel
from .inference import first_pieces, length_batches, piece_limit
from .forking import using_tokenizers
from .windows import Window, word_windows

CPU_BATCH_PIECES = 2048
"""Most padded sub-words per forward pass on CPU (forward_batch_tokens null)."""

Relation = Tuple[int, int, str, float]  # head entity index, tail entity index (in doc.ents), label, score
Constraints = Dict[str, Dict[str, List[str]]]


# -- labels ----------------------------------------------------------------------------------


def relation_labels(labels: Any) -> Tuple[List[str], Constraints]:
    """This call's relation types in order, and the head/tail entity types each allows
    (GLiREL's `allowed_head` / `allowed_tail`; a type with none allows every entity).
    `labels` is a list, or label -> constraints. E081 where none, E082 for an empty or
    duplicate label, E083 for constraints that are not lists of entity types."""
    if isinstance(labels, (str, bytes)) or not labels:
        if labels:  # one string: a list of its characters would be a surprise
            raise DirectUseError(Errors.E082.format(labels=[labels], bad=[labels], why="labels must be a list or a dict, not one string"))
        raise DirectUseError(Errors.E081.format())
    names = list(labels)
    bad = [label for label in names if not isinstance(label, str) or not label.strip()]
    if bad:
        raise DirectUseError(Errors.E082.format(labels=names, bad=bad, why="a label must be a non-empty string"))
    seen, duplicates = set(), []
    for label in names:
        if label in seen:
            duplicates.append(label)
        seen.add(label)
    if duplicates:
        raise DirectUseError(Errors.E082.format(labels=names, bad=sorted(set(duplicates)), why="each label may appear once"))
    constraints: Constraints = {}
    if isinstance(labels, dict):
        for label, allowed in labels.items():
            constraints[label] = _constraint(label, allowed)
    return names, constraints


def _constraint(label: str, allowed: Any) -> Dict[str, List[str]]:
    if allowed is None:
        return {}
    if not isinstance(allowed, dict) or set(allowed) - {"allowed_head", "allowed_tail"}:
        raise DirectUseError(Errors.E083.format(label=label, value=allowed))
    checked = {}
    for key, types in allowed.items():
        if isinstance(types, str) or not isinstance(types, (list, tuple)) or not all(isinstance(t, str) for t in types):
            raise DirectUseError(Errors.E083.format(label=label, value=allowed))
        checked[key] = list(types)
    return checked


def check_top_k(top_k: Any) -> int:
    """A positive number of relations per pair, or -1 for all above the threshold (E086 otherwise)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or (top_k < 1 and top_k != -1):
        raise DirectUseError(Errors.E086.format(value=top_k))
    return top_k


# -- reading -----------------------------------------------------------------------------------


class GlirelReader:
    """A loaded GLiREL model reading the entity pairs of windows of spaCy words, batched across Docs."""

    def __init__(self, model, batch_size: int, batch_pieces: int, max_sentences: int = 1) -> None:
        self.model = model
        self.tokenizer = model.token_rep_layer.bert_layer.tokenizer
        self.max_len = int(model.config.max_len)
        self.markers = bool(getattr(model.config, "add_entity_markers", False))
        self.piece_limit = piece_limit(self.tokenizer, model.token_rep_layer.bert_layer.model.config)
        self.batch_size, self.batch_pieces, self.max_sentences = batch_size, batch_pieces, max_sentences

    def prompt_pieces(self, labels: List[str]) -> int:
        """Sub-words the relation prompt takes in every window, special tokens included."""
        prompt = [word for label in labels for word in (self.model.rel_token, label)] + [self.model.sep_token]
        return len(self.tokenizer(prompt, is_split_into_words=True)["input_ids"])

    def read(self, docs: List[Doc], sentence_starts: List[Optional[np.ndarray]], guess_starts: Callable[[Doc], np.ndarray],
             labels: List[str], constraints: Constraints, threshold: float, top_k: int) -> List[List[Relation]]:  # fmt: skip
        """Each Doc's relations (head, tail: indices in doc.ents; label; score), by head, tail, score.
        sentence_starts: each Doc's own (token indices), or None where it has none: then a Doc
        that fits the checkpoint is one window, read as predict_relations reads it, and a longer
        one is read in the sentences `guess_starts` finds."""
        using_tokenizers()  # here and in glirel's embedding layer
        max_pieces = self.piece_limit - self.prompt_pieces(labels)
        if max_pieces < 1:
            raise DirectUseError(Errors.E087.format(limit=self.piece_limit, labels=labels))
        words = [doc_words(doc) for doc in docs]
        entities = [word_entities(doc, word_tokens) for doc, (_, word_tokens) in zip(docs, words)]
        pieces = first_pieces(self.tokenizer, [doc_w for doc_w, _ in words])
        flat: list = []  # (Doc index, window, its sub-words)
        for i, ((doc_w, word_tokens), doc_ents, first_piece) in enumerate(zip(words, entities, pieces)):
            if sum(1 for e in doc_ents if e is not None) < 2:
                continue  # no pair to score: no forward pass
            if self.markers:  # [E] and [/E] around each entity take a sub-word each
                first_piece = _with_markers(first_piece, doc_ents)
            windows = word_windows(first_piece, [0], self.max_len, max_pieces, self.max_len // 2) if sentence_starts[i] is None else []
            if len(windows) != 1:  # the Doc's own sentences, or where it has none and does not fit, guessed ones
                own = sentence_starts[i] if sentence_starts[i] is not None else guess_starts(docs[i])
                starts = starts_outside_entities(np.searchsorted(word_tokens, own), doc_ents)
                windows = word_windows(first_piece, starts, self.max_len, max_pieces, self.max_len // 2, self.max_sentences)
            flat.extend((i, window, int(first_piece[window[1]] - first_piece[window[0]])) for window in windows)
        inputs = [self._window_input(words[i][0], entities[i], window) for i, window, _ in flat]
        kept = [k for k, (_, ent_ids, _) in enumerate(inputs) if len(ent_ids) >= 2]
        found = self._run([inputs[k] for k in kept], [flat[k][2] for k in kept], labels, float(threshold))
        flat = [(i, window) for i, window, _ in flat]
        doc_windows: List[List[Window]] = [[] for _ in docs]
        for i, window in flat:
            doc_windows[i].append(window)
        by_doc: List[Dict[Tuple[int, int], List[Tuple[str, float]]]] = [{} for _ in docs]
        for k, window_rels in zip(kept, found):
            i, window = flat[k]
            ent_ids = inputs[k][1]
            for h, t, label, score in window_rels:
                head, tail = ent_ids[h], ent_ids[t]
                if len(doc_windows[i]) == 1 or _owner(entities[i], head, tail, doc_windows[i]) == window:
                    by_doc[i].setdefault((head, tail), []).append((label, score))
        return [_decide(pairs, doc, constraints, top_k) for pairs, doc in zip(by_doc, docs)]

    @staticmethod
    def _window_input(doc_w: List[str], doc_ents: List[Optional[Tuple[int, int]]], window: Window) -> Tuple[List[str], List[int], List[Tuple[int, int]]]:
        """The window's words, the doc.ents indices of the entities wholly inside it, and their
        spans in the window's words (start, end inclusive: glirel's `ner`)."""
        start, end = window[0], window[1]
        ent_ids = [k for k, e in enumerate(doc_ents) if e is not None and start <= e[0] and e[1] <= end]
        return doc_w[start:end], ent_ids, [(doc_ents[k][0] - start, doc_ents[k][1] - 1 - start) for k in ent_ids]

    def _run(self, window_inputs: list, lengths: List[int], labels: List[str], threshold: float) -> List[List[Tuple[int, int, str, float]]]:
        """glirel's relations per window, (head k, tail k, label, score) with k indexing the
        window's entities, every label above the threshold, in glirel's order. Windows are
        batched by their sub-words (`lengths`): the encoder's padding is most of the cost."""
        found: List[list] = [[] for _ in window_inputs]
        order = sorted(range(len(window_inputs)), key=lengths.__getitem__)
        for batch in length_batches(order, lengths, self.batch_size, self.batch_pieces):
            for k, rels in zip(batch, self.forward([window_inputs[k] for k in batch], labels, threshold)):
                found[k] = rels
        return found

    def forward(self, window_inputs: list, labels: List[str], threshold: float) -> List[List[Tuple[int, int, str, float]]]:
        """One batch through glirel's own steps: collate_fn (prompt, spans, pairs), predict
        (compute_score, sigmoid, prob > threshold); positions mapped back to entity indices."""
        model = self.model
        records = [{"tokenized_text": list(words), "ner": [[s, e, "", ""] for s, e in spans]} for words, _, spans in window_inputs]
        if self.markers:  # glirel 1.2.1's insert_entity_markers iterates the gold relations, None when
            for record in records:  # predicting (a TypeError): an empty list gives the same all-zero labels
                record["relations"] = []
        with torch.no_grad(), quiet_glirel():
            x = model.collate_fn(records, relation_types=labels, device=model.device)
            predicted = model.predict(x, flat_ner=True, threshold=threshold, ner=[r["ner"] for r in records])
        results = []
        for b, (rels, (_, _, spans)) in enumerate(zip(predicted, window_inputs)):
            # collate_fn keeps the spans in order (where it inserts entity markers, sorted by start and
            # shifted: doc.ents are sorted already, so the order is the same)
            position = {tuple(x["span_idx"][b][k].tolist()): k for k in range(len(spans))}
            results.append([(position[tuple(h)], position[tuple(t)], label, score) for (h, t), label, score in rels])
        return results


def _decide(pairs: Dict[Tuple[int, int], List[Tuple[str, float]]], doc: Doc, constraints: Constraints, top_k: int) -> List[Relation]:
    """Per pair: the labels its entity types allow (constraints), best first, the first `top_k`
    (all for -1), as glirel's batch_predict_relations keeps them; by head, tail."""
    ents = doc.ents
    relations: List[Relation] = []
    for (head, tail), candidates in sorted(pairs.items()):
        allowed = [(label, score) for label, score in candidates if _allows(constraints.get(label), ents[head].label_, ents[tail].label_)]
        allowed.sort(key=lambda c: -c[1])  # stable: glirel's order among equal scores
        relations.extend((head, tail, label, score) for label, score in (allowed if top_k < 0 else allowed[:top_k]))
    return relations


def _allows(constraint: Optional[Dict[str, List[str]]], head_type: str, tail_type: str) -> bool:
    """Whether a label's constraint lets a pair of these entity types through (none: every pair)."""
    if not constraint:
        return True
    return head_type in constraint.get("allowed_head", [head_type]) and tail_type in constraint.get("allowed_tail", [tail_type])


def word_entities(doc: Doc, word_tokens: np.ndarray) -> List[Optional[Tuple[int, int]]]:
    """Each of doc.ents as (start word, end word exclusive), None for one on whitespace alone."""
    spans: List[Optional[Tuple[int, int]]] = []
    for ent in doc.ents:
        start = int(np.searchsorted(word_tokens, ent.start))
        end = int(np.searchsorted(word_tokens, ent.end))
        spans.append((start, end) if end > start else None)
    return spans


def _with_markers(first_piece: np.ndarray, entities: Sequence[Optional[Tuple[int, int]]]) -> np.ndarray:
    extra = np.zeros(len(first_piece) - 1, dtype=np.int64)
    for ent in entities:
        if ent is not None:
            extra[ent[0]] += 1
            extra[ent[1] - 1] += 1
    return first_piece + np.concatenate(([0], np.cumsum(extra)))


def starts_outside_entities(starts: np.ndarray, entities: Sequence[Optional[Tuple[int, int]]]) -> List[int]:
    """Sentence starts that fall on no entity's inside: a window never cuts an entity."""
    inside = {w for ent in entities if ent is not None for w in range(ent[0] + 1, ent[1])}
    return [int(s) for s in starts if int(s) not in inside]


def _owner(entities, head: int, tail: int, windows: List[Window]) -> Optional[Window]:
    """The window that scores the pair: of those holding both entities wholly, the one where the
    pair lies furthest from an edge (the first on a tie)."""
    first, last = min(entities[head][0], entities[tail][0]), max(entities[head][1], entities[tail][1])
    best, best_margin = None, -1
    for start, end, core_start, core_end in windows:
        if start <= first and last <= end:
            margin = min(first - start, end - last)
            if margin > best_margin:
                best, best_margin = (start, end, core_start, core_end), margin
    return best
