"""direct_vectors: a sentence-embedding checkpoint's own vectors as doc.vector, no training.

On the shared core (base.py) it reads each Doc's running text as the checkpoint's
tokenizer does (as sentence-transformers' `encode` does), in windows of whole
sentences up to the checkpoint's `max_seq_length` (256 sub-words for
all-MiniLM-L6-v2, special tokens included; longer sentences in overlapping strides),
so nothing is cut off. Each window is pooled as the checkpoint declares
(embedding.py). A Doc that fits one window gets exactly sentence-transformers'
embedding; a longer Doc gets the mean of its windows' pooled vectors, each weighted
by its core (the sub-words only it reads), then normalized where the checkpoint
normalizes (EmbeddingRunner.combine: the rule measured best on STS-B pairs
made long, scripts/vectors_eval.py --long).

What goes on the Doc:
- `doc.vector`: that embedding (float32), so `doc.similarity(other)` is their cosine;
- `token.vector`: the token's contextual sub-word states, averaged (`doc.tensor`-like);
- `span.vector` (a sentence or any span): the mean of its tokens' vectors, the
  rule spaCy itself uses for spans (similarity is their cosine).
The vectors live in `doc.user_data` (so `Doc.to_bytes`, `DocBin(store_user_data=True)`
and pickling keep them) and are read through `doc.user_hooks`; after deserializing,
`restore_vectors(doc)` puts the hooks back (spaCy never serializes hooks).
"""
import time
import warnings
from typing import Any, List, Optional, Tuple

import numpy as np
from spacy.tokens import Doc, Span, Token

from .alignment import TokenAlignment, aggregate
from .base import SHARED_CONFIG, DirectPipe
from .embedding import EmbeddingRunner
from .errors import Errors

UNUSED_SETTINGS = ("id2label", "label_map", "check_head")
"""Shared settings an encoder with no labels and no head has no use for: spaCy refuses them
in direct_vectors' config (extra fields), rather than taking and ignoring them."""

DEFAULT_CONFIG = {
    **{key: value for key, value in SHARED_CONFIG.items() if key not in UNUSED_SETTINGS},
    "window_size": 512,
    "window_overlap": 64,
    "max_sentences_per_window": 1000,
    "pooling": None,
    "normalize": None,
    "token_vectors": True,
    "scorer": None,
}

DOC_VECTOR_KEY = ("direct_vectors", "doc")
TOKEN_VECTORS_KEY = ("direct_vectors", "tokens")


class DirectVectors(DirectPipe):
    """Writes a sentence-embedding checkpoint's vector of each Doc (and its tokens) to the Doc."""

    TASK = "embedding"
    DEFAULT_CONFIG = DEFAULT_CONFIG

    @classmethod
    def factory_name(cls) -> str:
        return "direct_vectors"

    @property
    def pooling(self) -> Optional[Tuple[str, ...]]:
        """The pooling modes in use (known once the model has loaded or a saved pipeline was read)."""
        return self._layout.pooling if self._layout else None

    @property
    def normalize(self) -> Optional[bool]:
        return self._layout.normalize if self._layout else None

    @property
    def width(self) -> int:
        """The length of doc.vector (loads the model)."""
        self._ensure_loaded()
        return self._model.config.hidden_size * len(self._layout.pooling)

    def predict(self, docs: List[Doc]) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
        """Each Doc's embedding (its windows pooled and combined: EmbeddingRunner.combine) and,
        where `token_vectors`, each token's mean contextual sub-word state (n_tokens, dim)."""
        runner: EmbeddingRunner = self._ensure_loaded()
        clock = time.perf_counter()
        ids, alignments = self._encode_text(docs, runner)
        doc_windows = [self._windows(doc, alignment, runner.content_length) or [(0, 0, 0, 0)] for doc, alignment in zip(docs, alignments)]
        flat = [(i, w) for i, windows in enumerate(doc_windows) for w in windows]
        self._tick("tokenize", clock)
        outputs = iter(self._forward(runner, ids, flat))
        results = []
        first = len(runner.prefix)
        for doc, doc_ids, alignment, windows in zip(docs, ids, alignments, doc_windows):
            window_outputs = [next(outputs) for _ in windows]
            vector = runner.combine(windows, [pooled for pooled, _ in window_outputs])
            token_vectors = None
            if self.cfg["token_vectors"]:
                states = np.zeros((len(doc_ids), window_outputs[0][1].shape[-1]), dtype=np.float32)
                for (start, _, core_start, core_end), (_, hidden) in zip(windows, window_outputs):
                    states[core_start:core_end] = hidden[first + core_start - start : first + core_end - start]
                token_vectors = token_means(states, alignment, len(doc))
            results.append((vector.astype(np.float32), token_vectors))
        return results

    def set_annotations(self, docs: List[Doc], predictions: List[Tuple[np.ndarray, Optional[np.ndarray]]]) -> List[Doc]:
        clock = time.perf_counter()
        for doc, (vector, token_vectors) in zip(docs, predictions):
            doc.user_data[DOC_VECTOR_KEY] = vector
            if token_vectors is not None:
                doc.user_data[TOKEN_VECTORS_KEY] = token_vectors
            restore_vectors(doc)
        self._tick("annotate", clock)
        return docs


def token_means(states: np.ndarray, alignment: TokenAlignment, n_tokens: int) -> np.ndarray:
    """The mean of each token's sub-word states (zeros for a token with none: whitespace)."""
    means = np.zeros((n_tokens, states.shape[-1]), dtype=np.float32)
    if len(states):
        means[alignment.tokens] = aggregate(states, alignment, "average")
    return means


# -- reading the vectors back (hooks: module-level, so pickled Docs keep them) ----------


def restore_vectors(doc: Doc) -> Doc:
    """Read direct_vectors' vectors from `doc.user_data` through doc/span/token vectors and
    similarity: direct_vectors calls it; call it yourself on a Doc that came back from
    `Doc.from_bytes` or a `DocBin` (spaCy does not serialize hooks, only user data)."""
    if DOC_VECTOR_KEY not in doc.user_data:
        warnings.warn(Errors.W001, stacklevel=2)
        return doc
    doc.user_hooks.update({"vector": _doc_vector, "has_vector": _has_vector, "similarity": _similarity, "vector_norm": _norm})
    if TOKEN_VECTORS_KEY in doc.user_data:
        doc.user_span_hooks.update({"vector": _span_vector, "has_vector": _has_vector, "similarity": _similarity, "vector_norm": _norm})
        doc.user_token_hooks.update({"vector": _token_vector, "has_vector": _has_vector, "similarity": _similarity, "vector_norm": _norm})
    return doc


def _doc_vector(doc: Doc) -> np.ndarray:
    return np.asarray(doc.user_data[DOC_VECTOR_KEY], dtype=np.float32)


def _token_vector(token: Token) -> np.ndarray:
    return np.asarray(token.doc.user_data[TOKEN_VECTORS_KEY][token.i], dtype=np.float32)


def _span_vector(span: Span) -> np.ndarray:
    rows = np.asarray(span.doc.user_data[TOKEN_VECTORS_KEY][span.start : span.end], dtype=np.float32)
    return rows.mean(axis=0) if len(rows) else np.zeros(rows.shape[-1], dtype=np.float32)


def _has_vector(obj: Any) -> bool:
    return True


def _norm(obj: Any) -> float:
    return float(np.linalg.norm(obj.vector))


def _similarity(obj: Any, other: Any) -> float:
    """Cosine of the two vectors (0.0 where either is all zeros)."""
    a, b = obj.vector, other.vector
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    return float(np.dot(a, b) / norms) if norms else 0.0
