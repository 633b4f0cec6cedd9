"""Map sub-word predictions onto spaCy tokens through character offsets.

A sub-word informs every spaCy token its characters overlap, so a spaCy token
made of several sub-words and a sub-word covering several spaCy tokens both
work. Tokens no sub-word informs (whitespace, characters the tokenizer drops)
are "gaps": they take no prediction and can never be an entity's edge.
"""
from dataclasses import dataclass

import numpy as np
from spacy.attrs import IDX, IS_SPACE, LENGTH
from spacy.tokens import Doc

AGGREGATIONS = ("first", "average", "max")
ALIGNMENT_MODES = ("expand", "contract", "strict")


@dataclass
class TokenAlignment:
    """Which sub-words inform which spaCy tokens of one Doc."""

    pair_subword: np.ndarray  # (P,) sub-word index of each (sub-word, token) pair
    pair_token: np.ndarray  # (P,) token index, non-decreasing
    shares_left: np.ndarray  # (n_tokens,) bool: a sub-word also covers the previous token

    group_starts: np.ndarray = None  # (n_aligned,) index of each aligned token's first pair

    def __post_init__(self) -> None:
        tokens = self.pair_token
        self.group_starts = np.flatnonzero(np.concatenate(([True], tokens[1:] != tokens[:-1]))) if len(tokens) else tokens

    @property
    def tokens(self) -> np.ndarray:
        """The tokens that have at least one sub-word, ascending."""
        return self.pair_token[self.group_starts]


def align_doc(doc: Doc, offsets: np.ndarray, mode: str = "expand") -> TokenAlignment:
    """Pair each sub-word (character offsets into doc.text) with the tokens it overlaps.

    mode "expand": a sub-word spanning several tokens informs all of them;
    "contract" and "strict": only tokens it lies within (strict also drops
    entities cut inside a sub-word, see `shares_left`).
    """
    token_attrs = doc.to_array([IDX, LENGTH, IS_SPACE]).astype(np.int64)
    starts, lengths, is_space = token_attrs[:, 0], token_attrs[:, 1], token_attrs[:, 2].astype(bool)
    ends = starts + lengths
    offsets = offsets.reshape(-1, 2)
    sub_start, sub_end = offsets[:, 0], offsets[:, 1]
    first = np.searchsorted(ends, sub_start, side="right")
    last = np.searchsorted(starts, sub_end, side="left") - 1
    valid = (sub_end > sub_start) & (first <= last)
    shares_left = np.zeros(len(doc), dtype=bool)
    spanning = valid & (last > first)
    for lo, hi in zip(first[spanning], last[spanning]):
        shares_left[lo + 1 : hi + 1] = True
    if mode == "contract" or mode == "strict":
        valid &= first == last
    subwords = np.flatnonzero(valid)
    counts = last[subwords] - first[subwords] + 1
    pair_subword = np.repeat(subwords, counts)
    within = np.arange(len(pair_subword)) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_token = np.repeat(first[subwords], counts) + within
    keep = ~is_space[pair_token]
    pair_subword, pair_token = pair_subword[keep], pair_token[keep]
    if len(pair_token) > 1 and (np.diff(pair_token) < 0).any():
        order = np.lexsort((pair_subword, pair_token))
        pair_subword, pair_token = pair_subword[order], pair_token[order]
    return TokenAlignment(pair_subword, pair_token, shares_left)


def aggregate(probs: np.ndarray, alignment: TokenAlignment, strategy: str) -> np.ndarray:
    """One distribution per token that has sub-words, in `alignment.tokens` order.

    "first": the token's first sub-word (how token classifiers are trained);
    "average": the mean over its sub-words; "max": its most confident sub-word.
    """
    groups = alignment.group_starts
    pair_probs = probs[alignment.pair_subword]
    if strategy == "first" or len(groups) == len(pair_probs):
        return pair_probs[groups]
    if strategy == "average":
        sizes = np.diff(np.append(groups, len(pair_probs)))
        return np.add.reduceat(pair_probs, groups, axis=0) / sizes[:, None]
    confidence = pair_probs.max(axis=1)
    order = np.lexsort((-confidence, alignment.pair_token))
    return pair_probs[order][groups]
