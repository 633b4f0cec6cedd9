"""Label schemes: parse a model's id2label into tags and the transitions they allow.

Supported: BIO (IOB2), BIOES / BILOU and plain IO (labels without a prefix,
read as I-). A type with a B- tag must start with it; a type with an E- tag
must end with it (or be a single S- tag).
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from .errors import DirectNERError, Errors

OUTSIDE, BEGIN, INSIDE, END, SINGLE = range(5)
_PREFIXES = {"B": BEGIN, "I": INSIDE, "E": END, "L": END, "S": SINGLE, "U": SINGLE}
_PREFIXED = re.compile(r"^([BIESLU])[-_](.+)$")
_GENERIC = re.compile(r"^LABEL_\d+$")


def parse_label(label: str) -> Tuple[int, Optional[str]]:
    """Split a model label into (prefix code, entity type); 'O' has no type."""
    if label.upper() == "O":
        return OUTSIDE, None
    match = _PREFIXED.match(label)
    if match:
        return _PREFIXES[match.group(1)], match.group(2)
    return INSIDE, label


@dataclass
class LabelScheme:
    """The model's tags as arrays, plus the transitions Viterbi may take."""

    labels: List[str]
    prefixes: np.ndarray  # (K,) prefix code per label
    types: List[Optional[str]]  # entity type per label, None for O
    type_ids: np.ndarray  # (K,) index into `entity_types`, -1 for O
    entity_types: List[str]
    allowed: np.ndarray  # (K, K) bool: label i may be followed by label j
    allowed_start: np.ndarray  # (K,) bool
    allowed_end: np.ndarray  # (K,) bool

    @classmethod
    def from_id2label(cls, id2label: Mapping[int, str], name: str = "model") -> "LabelScheme":
        labels = [id2label[i] for i in range(len(id2label))]
        _check_labels(labels, name)
        parsed = [parse_label(label) for label in labels]
        prefixes = np.array([p for p, _ in parsed], dtype=np.int8)
        types = [t for _, t in parsed]
        entity_types = sorted({t for t in types if t is not None})
        type_index = {t: i for i, t in enumerate(entity_types)}
        type_ids = np.array([type_index.get(t, -1) for t in types], dtype=np.int32)
        has_begin = {t for p, t in parsed if p == BEGIN}
        has_end = {t for p, t in parsed if p == END}
        _check_reachable(parsed, has_begin, has_end, name)
        allowed = np.array(
            [[_may_follow(a, b, has_begin, has_end) for b in parsed] for a in parsed]
        )
        allowed_start = np.array([_may_follow((OUTSIDE, None), b, has_begin, has_end) for b in parsed])
        allowed_end = np.array([not _is_open(p, t, has_end) for p, t in parsed])
        return cls(labels, prefixes, types, type_ids, entity_types, allowed, allowed_start, allowed_end)

    def is_valid(self, path: np.ndarray) -> bool:
        """Whether a label sequence obeys the scheme."""
        if len(path) == 0:
            return True
        return bool(
            self.allowed_start[path[0]]
            and self.allowed_end[path[-1]]
            and self.allowed[path[:-1], path[1:]].all()
        )


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


def _check_labels(labels: List[str], name: str) -> None:
    if labels and all(_GENERIC.match(label) for label in labels):
        raise DirectNERError(Errors.E019.format(name=name, labels=f"{labels[:3]}..."))
    if not any(label.upper() == "O" for label in labels):
        raise DirectNERError(Errors.E007.format(name=name, detail=f"no 'O' label among {labels}"))
    if len(set(labels)) != len(labels):
        raise DirectNERError(Errors.E007.format(name=name, detail=f"duplicate labels in {labels}"))


def _check_reachable(parsed, has_begin: set, has_end: set, name: str) -> None:
    for prefix, etype in parsed:
        if prefix == END and etype not in has_begin and not any(
            p == INSIDE and t == etype for p, t in parsed
        ):
            raise DirectNERError(
                Errors.E007.format(name=name, detail=f"E-{etype} has no B-{etype} or I-{etype} before it")
            )


def map_types(entity_types: List[str], label_map: Dict[str, Optional[str]]) -> Dict[str, Optional[str]]:
    """The spaCy label for each model entity type; None drops the type."""
    return {t: label_map.get(t, t) for t in entity_types}
