"""Read each spaCy token as one word, the way token classifiers are fine-tuned.

Fine-tuning scripts (transformers' run_ner example, the course notebook, most
model cards) tokenize pre-split words with `is_split_into_words=True` and train
each word's label on its first piece per `word_ids()`. direct_ner feeds the
model a Doc's non-whitespace tokens as those pre-split words, so every token's
pieces are known from `word_ids()` (a SentencePiece word's bare '▁' piece
included, though it covers no character of the word), and a token's label is
read from its first piece. Whitespace tokens are no words: they never get a
prediction, so they are never an entity's edge. A token whose characters the
tokenizer drops entirely (e.g. a lone zero-width space) gets no piece either.

Sentence embeddings and zero-shot categories are read as their reference
implementations read them (sentence-transformers, transformers' pipelines): from
the running text, with each piece placed in the token its first character lies in
(`text_pieces`).
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from spacy.attrs import IDX, IS_SPACE, ORTH
from spacy.tokens import Doc

from .inference import encode_batch
from .forking import using_tokenizers

AGGREGATIONS = ("first", "average", "max")


def doc_words(doc: Doc) -> Tuple[List[str], np.ndarray]:
    """The Doc's words (its non-whitespace tokens' texts) and their token indices."""
    # read as arrays: iterating the Doc builds a Token object per token (3% of a batch's time)
    attrs = doc.to_array([ORTH, IS_SPACE]).reshape(len(doc), 2)
    word_tokens = np.flatnonzero(attrs[:, 1] == 0)
    strings = doc.vocab.strings
    return [strings[orth] for orth in attrs[word_tokens, 0].tolist()], word_tokens


@dataclass
class TokenAlignment:
    """Which pieces belong to which spaCy tokens of one Doc."""

    piece_tokens: np.ndarray  # (n_pieces,) token index of each piece, non-decreasing
    group_starts: np.ndarray  # (n_aligned,) index of each aligned token's first piece
    char_offsets: Optional[np.ndarray] = None  # (n_pieces, 2) each piece's characters in doc.text (running text only)

    @classmethod
    def from_word_ids(cls, word_ids: np.ndarray, word_tokens: np.ndarray, char_offsets: Optional[np.ndarray] = None) -> "TokenAlignment":
        """Pieces of word w (per `word_ids`) belong to token `word_tokens[w]`."""
        piece_tokens = word_tokens[word_ids] if len(word_ids) else np.zeros(0, dtype=np.int64)
        new_token = np.concatenate(([True], piece_tokens[1:] != piece_tokens[:-1])) if len(piece_tokens) else []
        return cls(piece_tokens, np.flatnonzero(new_token), char_offsets)

    @property
    def tokens(self) -> np.ndarray:
        """The tokens that have at least one piece, ascending."""
        return self.piece_tokens[self.group_starts]


def aggregate(probs: np.ndarray, alignment: TokenAlignment, strategy: str) -> np.ndarray:
    """One distribution per token that has pieces, in `alignment.tokens` order.

    "first": the token's first piece (the one fine-tuning labels); "average": the
    mean over its pieces; "max": its most confident piece.
    """
    groups = alignment.group_starts
    if strategy == "first" or len(groups) == len(probs):
        return probs[groups]
    if strategy == "average":
        sizes = np.diff(np.append(groups, len(probs)))
        return np.add.reduceat(probs, groups, axis=0) / sizes[:, None]
    confidence = probs.max(axis=1)
    order = np.lexsort((-confidence, alignment.piece_tokens))
    return probs[order][groups]


def text_pieces(docs: List[Doc], encoder) -> Tuple[List[np.ndarray], List[TokenAlignment]]:
    """Each Doc's sub-word ids from its running text, as the tokenizer reads a text
    (sentence-transformers, transformers' pipelines; not pre-split words), and which
    pieces lie in which token, by character offsets (a piece belongs to the token it
    starts in); each alignment holds the pieces' `char_offsets`."""
    using_tokenizers()
    encodings = encoder.encode_batch([doc.text for doc in docs], add_special_tokens=False)
    ids, alignments = [], []
    for doc, encoding in zip(docs, encodings):
        token_starts = doc.to_array([IDX]).reshape(-1)
        offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        piece_tokens = np.clip(np.searchsorted(token_starts, offsets[:, 0], side="right") - 1, 0, None)
        ids.append(np.asarray(encoding.ids, dtype=np.int64))
        alignments.append(TokenAlignment.from_word_ids(piece_tokens, np.arange(len(doc)), offsets))
    return ids, alignments



def word_pieces(docs: List[Doc], encoder) -> Tuple[List[np.ndarray], List[TokenAlignment]]:
    """Each Doc's sub-word ids with its tokens read as pre-split words, and which pieces
    belong to which of its tokens (from `word_ids()`)."""
    doc_words_list = [doc_words(doc) for doc in docs]
    encodings = encode_batch(encoder, [words for words, _ in doc_words_list])
    ids = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
    alignments = [
        TokenAlignment.from_word_ids(np.asarray(encoding.word_ids, dtype=np.int64), word_tokens)
        for encoding, (_, word_tokens) in zip(encodings, doc_words_list)
    ]
    return ids, alignments
