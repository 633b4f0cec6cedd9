"""Constrained decoding: the most probable valid tag sequence, then its entities."""
from typing import List, Tuple

import numpy as np

from .labels import BEGIN, END, OUTSIDE, SINGLE, LabelScheme

_TINY = np.float32(1e-12)


def viterbi(probs: np.ndarray, scheme: LabelScheme) -> np.ndarray:
    """The label sequence with the highest probability that obeys the scheme.

    Tokens are scored independently, so when the per-token argmax is already
    valid it is the optimum and the dynamic programme is skipped.
    """
    greedy = probs.argmax(axis=1)
    if scheme.is_valid(greedy):
        return greedy
    log_probs = np.log(probs + _TINY)
    forbidden = np.where(scheme.allowed, 0.0, -np.inf).astype(np.float32)
    n, n_labels = log_probs.shape
    backpointers = np.empty((n, n_labels), dtype=np.int32)
    score = log_probs[0] + np.where(scheme.allowed_start, 0.0, -np.inf)
    columns = np.arange(n_labels)
    for i in range(1, n):
        candidates = score[:, None] + forbidden
        best_prev = candidates.argmax(axis=0)
        backpointers[i] = best_prev
        score = candidates[best_prev, columns] + log_probs[i]
    score = score + np.where(scheme.allowed_end, 0.0, -np.inf)
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = backpointers[i, path[i]]
    return path


def extract_entities(path: np.ndarray, probs: np.ndarray, scheme: LabelScheme) -> List[Tuple[int, int, int, float]]:
    """(start, end, type id, confidence) for each entity in a valid path.

    An entity starts at B-/S-, at a change of type, or after a closed tag
    (O, E-, S-); its confidence is the mean probability of its tags.
    """
    if len(path) == 0:
        return []
    prefixes = scheme.prefixes[path]
    type_ids = scheme.type_ids[path]
    inside = prefixes != OUTSIDE
    prev_prefix = np.concatenate(([OUTSIDE], prefixes[:-1]))
    prev_type = np.concatenate(([-1], type_ids[:-1]))
    prev_closed = (prev_prefix == OUTSIDE) | (prev_prefix == END) | (prev_prefix == SINGLE)
    begins = inside & ((prefixes == BEGIN) | (prefixes == SINGLE) | (prev_type != type_ids) | prev_closed)
    starts = np.flatnonzero(begins)
    if len(starts) == 0:
        return []
    # An entity runs until the next begin or the next O, whichever comes first.
    outside_positions = np.append(np.flatnonzero(~inside), len(path))
    next_outside = outside_positions[np.searchsorted(outside_positions, starts)]
    ends = np.minimum(np.append(starts[1:], len(path)), next_outside)
    chosen = probs[np.arange(len(path)), path]
    cumulative = np.concatenate(([0.0], np.cumsum(chosen, dtype=np.float64)))
    confidences = (cumulative[ends] - cumulative[starts]) / (ends - starts)
    return [
        (int(start), int(end), int(type_ids[start]), float(confidence))
        for start, end, confidence in zip(starts, ends, confidences)
    ]
