"""Cut a Doc's sub-word sequence into windows the model can read, so nothing is truncated.

A window is (start, end, core_start, core_end) in the Doc's sub-word indices:
the model reads start:end, and only the core's predictions are kept. Cores
tile the sequence exactly once, so overlapping windows merge by keeping each
sub-word's prediction from the window where it is furthest from an edge.
"""
from typing import AbstractSet, Callable, List, Sequence, Tuple, TypeVar

import numpy as np
from spacy.attrs import IS_PUNCT, ORTH
from spacy.tokens import Doc

Window = Tuple[int, int, int, int]
WINDOW_MODES = ("sentences", "strided")
T = TypeVar("T")


def strided_windows(start: int, end: int, size: int, overlap: int) -> List[Window]:
    """Overlapping windows of at most `size` sub-words covering start:end."""
    length = end - start
    if length <= size:
        return [(start, end, start, end)]
    stride = size - overlap
    offsets = list(range(0, length - size, stride)) + [length - size]
    windows = []
    for k, offset in enumerate(offsets):
        core_start = 0 if k == 0 else (offset + offsets[k - 1] + size) // 2
        core_end = length if k == len(offsets) - 1 else (offsets[k + 1] + offset + size) // 2
        windows.append((start + offset, start + offset + size, start + core_start, start + core_end))
    return windows


def sentence_windows(
    sentence_starts: Sequence[int], n_subwords: int, size: int, overlap: int, max_sentences: int
) -> List[Window]:
    """Windows made of whole sentences: up to `max_sentences` consecutive
    sentences that fit in `size` sub-words; a longer sentence is strided."""
    bounds = np.unique(np.clip(np.append(sentence_starts, n_subwords), 0, n_subwords))
    bounds = np.concatenate(([0], bounds)) if len(bounds) == 0 or bounds[0] != 0 else bounds
    windows: List[Window] = []
    pack_start, pack_count = int(bounds[0]), 0
    for sent_start, sent_end in zip(bounds[:-1], bounds[1:]):
        sent_start, sent_end = int(sent_start), int(sent_end)
        if pack_count and (sent_end - pack_start > size or pack_count >= max_sentences):
            windows.append((pack_start, sent_start, pack_start, sent_start))
            pack_start, pack_count = sent_start, 0
        if sent_end - sent_start > size:
            windows.extend(strided_windows(sent_start, sent_end, size, overlap))
            pack_start, pack_count = sent_end, 0
        else:
            pack_count += 1
    if pack_count:
        windows.append((pack_start, n_subwords, pack_start, n_subwords))
    return windows


def guess_sentence_starts(doc: Doc, final_punct: AbstractSet[int]) -> np.ndarray:
    """Sentence starts (token indices) by spaCy's Sentencizer rule: a sentence
    starts at the first non-punctuation token after a sentence-final one.

    final_punct: the ORTH ids of the sentence-final characters. A plain loop over
    the token attributes: most Docs are short, where numpy's per-call cost dominates.
    """
    starts = [0] if len(doc) else []
    seen_final = False
    for i, (orth, is_punct) in enumerate(doc.to_array([ORTH, IS_PUNCT]).tolist()):
        if orth in final_punct:
            seen_final = True
        elif seen_final and not is_punct:
            starts.append(i)
            seen_final = False
    return np.array(starts, dtype=np.int64)


def read_windows(doc_windows: List[List[Window]], run: Callable[[List[Tuple[int, Window]]], Sequence[T]]) -> List[List[T]]:
    """Every Doc's windows run together (`run` takes (Doc index, window) pairs and gives one
    output each), the outputs given back per Doc, in its windows' order."""
    outputs = iter(run([(i, window) for i, windows in enumerate(doc_windows) for window in windows]))
    return [[next(outputs) for _ in windows] for windows in doc_windows]


def weighted_mean(windows: List[Window], probs: List[np.ndarray]) -> np.ndarray:
    """The windows' outputs (probabilities, pooled vectors) averaged, each weighted by its core (the sub-words it
    alone reads; a Doc with no sub-words has one empty window, weight 1)."""
    weights = np.array([max(core_end - core_start, 0) for _, _, core_start, core_end in windows], dtype=np.float64)
    if weights.sum() == 0:
        weights[:] = 1.0
    return (np.stack(probs).astype(np.float64) * weights[:, None]).sum(axis=0) / weights.sum()


def word_windows(
    first_piece: np.ndarray, sentence_starts: Sequence[int], max_words: int, max_pieces: int, overlap: int,
    max_sentences: int = 0,
) -> List[Window]:  # fmt: skip
    """Windows in word indices that fit two limits at once: at most `max_words` words and
    `max_pieces` sub-words (a span model such as GLiNER has both). Whole sentences are
    packed while both hold (and, where `max_sentences` is set, at most that many per
    window); a sentence over either is read in strides that overlap by `overlap` words,
    cores split in the middle of each overlap.

    first_piece: (n_words + 1,) each word's first sub-word index, then the total.
    """
    n_words = len(first_piece) - 1

    def fitting_end(start: int, limit: int) -> int:
        """The furthest end <= limit whose words from `start` fit (at least one word)."""
        by_pieces = int(np.searchsorted(first_piece, first_piece[start] + max_pieces, side="right")) - 1
        return max(start + 1, min(limit, start + max_words, by_pieces))

    bounds = sorted({int(s) for s in sentence_starts if 0 < s < n_words} | {0, n_words}) if n_words else []
    windows: List[Window] = []
    pack_start, packed = 0, 0
    for sent_start, sent_end in zip(bounds[:-1], bounds[1:]):
        full = bool(max_sentences) and packed >= max_sentences
        if sent_start > pack_start and (full or fitting_end(pack_start, sent_end) < sent_end):
            windows.append((pack_start, sent_start, pack_start, sent_start))
            pack_start, packed = sent_start, 0
        if fitting_end(sent_start, sent_end) < sent_end:  # one sentence over a limit: strides
            windows.extend(_word_strides(sent_start, sent_end, fitting_end, overlap))
            pack_start, packed = sent_end, 0
        else:
            packed += 1
    if pack_start < n_words:
        windows.append((pack_start, n_words, pack_start, n_words))
    return windows


def _word_strides(start: int, end: int, fitting_end: Callable[[int, int], int], overlap: int) -> List[Window]:
    spans = [(start, fitting_end(start, end))]
    while spans[-1][1] < end:
        last_start, last_end = spans[-1]
        next_start = max(last_end - min(overlap, (last_end - last_start) // 2), last_start + 1)
        if fitting_end(next_start, end) <= last_end:  # a word over the sub-word limit: no overlap around it
            next_start = last_end
        spans.append((next_start, fitting_end(next_start, end)))
    cuts = [start] + [(nxt[0] + cur[1]) // 2 for cur, nxt in zip(spans[:-1], spans[1:])] + [end]
    return [(s, e, cuts[k], cuts[k + 1]) for k, (s, e) in enumerate(spans)]
