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

`nlp.pipe(n_process=...)` sends each Doc back through `Doc.to_bytes`, which keeps no hooks, and
nothing of the component runs where the Doc arrives. So a Doc with no tensor of its own also
gets `doc.tensor` (`tensor_rows`): its tokens' vectors, which spaCy's `token.vector` and
`span.vector` read where there are no hooks and no static vectors, and one row more, chosen so
that the rows' mean, which spaCy's `doc.vector` reads, is the embedding. Such a Doc reads the
same vectors and similarities with or without hooks.
"""
import dataclasses
import time
import warnings
from typing import Any, List, Optional, Tuple

import numpy as np
from spacy.tokens import Doc, Span, Token

from .alignment import TokenAlignment, aggregate
from .base import DirectPipe
from .embedding import EmbeddingRunner, SentenceEncoding
from .errors import Errors
from .settings import EncoderSettings, flag, optional, positive_int, setting
from .windows import read_windows


@dataclasses.dataclass(frozen=True)
class VectorsSettings(EncoderSettings):
    """An encoder's settings (no labels, no head: id2label, label_map and check_head are
    refused by spaCy's config validation, not taken and ignored)."""

    window_size: int = setting(512, positive_int)
    window_overlap: int = setting(64)
    max_sentences_per_window: int = setting(1000, positive_int)
    pooling: Optional[str] = setting(None)
    normalize: Optional[bool] = setting(None, optional(flag))
    token_vectors: bool = setting(True, flag)


DOC_VECTOR_KEY = ("direct_vectors", "doc")
TOKEN_VECTORS_KEY = ("direct_vectors", "tokens")


class SentenceVectors(SentenceEncoding):
    """Each Doc's sentence embedding, and its tokens' contextual vectors."""

    def predict(self, docs: List[Doc], settings: VectorsSettings) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
        """Each Doc's embedding (its windows pooled and combined: EmbeddingRunner.combine) and,
        where `token_vectors`, each token's mean contextual sub-word state (n_tokens, dim)."""
        pipe = self.pipe
        runner: EmbeddingRunner = pipe._ensure_loaded()
        clock = time.perf_counter()
        ids, alignments = pipe.encode(docs, runner, words=False)
        doc_windows = [pipe.windows(doc, alignment, runner.content_length) or [(0, 0, 0, 0)] for doc, alignment in zip(docs, alignments)]
        pipe._tick("tokenize", clock)
        outputs = read_windows(doc_windows, lambda flat: pipe.forward(runner, ids, flat))
        results = []
        first = len(runner.prefix)
        for doc, doc_ids, alignment, windows, window_outputs in zip(docs, ids, alignments, doc_windows, outputs):
            vector = runner.combine(windows, [pooled for pooled, _ in window_outputs])
            token_vectors = None
            if settings.token_vectors:
                states = np.zeros((len(doc_ids), window_outputs[0][1].shape[-1]), dtype=np.float32)
                for (start, _, core_start, core_end), (_, hidden) in zip(windows, window_outputs):
                    states[core_start:core_end] = hidden[first + core_start - start : first + core_end - start]
                token_vectors = token_means(states, alignment, len(doc))
            results.append((vector.astype(np.float32), token_vectors))
        return results


class DirectVectors(DirectPipe):
    """Writes a sentence-embedding checkpoint's vector of each Doc (and its tokens) to the Doc."""

    FACTORY = "direct_vectors"
    SETTINGS = VectorsSettings
    ROUTES = (SentenceVectors,)

    @property
    def pooling(self) -> Optional[Tuple[str, ...]]:
        """The pooling modes in use (known once the model has loaded or a saved pipeline was read)."""
        return self.route.layout.pooling if self.route.layout else None

    @property
    def normalize(self) -> Optional[bool]:
        return self.route.layout.normalize if self.route.layout else None

    @property
    def width(self) -> int:
        """The length of doc.vector (loads the model)."""
        self._ensure_loaded()
        return self._model.config.hidden_size * len(self.route.layout.pooling)

    def set_annotations(self, docs: List[Doc], predictions: List[Tuple[np.ndarray, Optional[np.ndarray]]]) -> List[Doc]:
        clock = time.perf_counter()
        for doc, (vector, token_vectors) in zip(docs, predictions):
            doc.user_data[DOC_VECTOR_KEY] = vector
            if token_vectors is not None:
                doc.user_data[TOKEN_VECTORS_KEY] = token_vectors
            if doc.tensor.size == 0 and len(doc):  # a tensor of the Doc's own (tok2vec, transformer) stays
                doc.tensor = tensor_rows(vector, token_vectors, len(doc))
            restore_vectors(doc)
        self._tick("annotate", clock)
        return docs


def tensor_rows(vector: np.ndarray, token_vectors: Optional[np.ndarray], n_tokens: int) -> np.ndarray:
    """doc.tensor for a Doc whose hooks are lost (nlp.pipe n_process): a row per token (its
    vector; the Doc's where token_vectors is off, or where several poolings concatenated make
    the Doc's vector wider than a token's) and one more, so that the mean of all rows, spaCy's
    hookless `doc.vector`, is `vector`."""
    same_width = token_vectors is not None and token_vectors.shape[-1] == vector.shape[-1]
    rows = token_vectors if same_width else np.tile(vector, (n_tokens, 1))
    extra = (n_tokens + 1) * vector.astype(np.float64) - rows.sum(axis=0, dtype=np.float64)
    return np.vstack([rows, extra[None]]).astype(np.float32)


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
