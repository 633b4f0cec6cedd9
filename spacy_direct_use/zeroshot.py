"""Zero-shot categories: labels chosen at run time, no training, for direct_textcat.

Two routes, decided by the checkpoint:
- NLI (a sequence classifier with an entailment label, e.g. facebook/bart-large-mnli):
  each (window, label) pair is read as premise and hypothesis
  (`hypothesis_template.format(label)`), exactly as transformers'
  `zero-shot-classification` pipeline reads it, and scored as it scores it:
  exclusive labels: a softmax over the labels' entailment logits; `multi_label` (or a
  single label, as the pipeline does): per label, a softmax over its contradiction
  and entailment logits (the contradiction column is the pipeline's: 0, or the
  last when entailment is 0). The pairs of a whole batch of Docs run together,
  length-sorted (inference.length_batches).
- Sentence embedding (a sentence-transformers checkpoint, or any encoder): the
  cosine of the text's embedding to each label's (the label, or its description
  where `labels` maps one), label embeddings computed once per label set.
  Exclusive: softmax(SIMILARITY_SCALE * cosine); `multi_label`: the cosine, clipped
  at 0.
"""
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from spacy.tokens import Doc

from .categories import CategoryRoute, WindowReader, entailment_id
from .embedding import SentenceEncoding
from .errors import DirectUseError, Errors
from .fitted_head import SAVED_FILE as HEAD_FILE
from .fitted_head import FittedHead, read_targets
from .forking import fork_safe_torch
from .settings import label_texts
from .windows import Window

LABEL_SETS_KEPT = 32
"""Label sets whose embeddings a sentence encoder's route keeps (zero-shot by similarity)."""
SIMILARITY_SCALE = 20.0
"""Cosine -> exclusive label distribution: softmax(20 * cos), the scale of
sentence-transformers' MultipleNegativesRankingLoss (its default), with which
all-MiniLM-L6-v2 and most sentence-transformers checkpoints were trained to rank a
text's match above others; the argmax (and accuracy) is that of the cosine."""


@dataclass
class PairTemplate:
    """Where a tokenizer puts special tokens and token types around a sentence pair."""

    prefix: np.ndarray
    middle: np.ndarray
    suffix: np.ndarray
    types: Tuple[int, int, int, int, int]  # of prefix, first text, middle, second text, suffix
    with_types: bool  # whether the model takes token_type_ids (the tokenizer returns them)

    @classmethod
    def of(cls, tokenizer) -> "PairTemplate":
        encoding = tokenizer.backend_tokenizer.encode("x", "y", add_special_tokens=True)
        ids, special, types = np.array(encoding.ids), np.array(encoding.special_tokens_mask), encoding.type_ids
        first, second = [int(i) for i in np.flatnonzero(special == 0)[[0, -1]]]
        end_first = first + int(np.argmax(special[first:] == 1))
        start_second = second - int(np.argmax(special[second::-1] == 1)) + 1
        return cls(
            ids[:first], ids[end_first:start_second], ids[second + 1 :],
            (types[0] if first else 0, types[first], types[end_first] if start_second > end_first else 0, types[second], types[-1]),
            "token_type_ids" in getattr(tokenizer, "model_input_names", ()),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def join(self, premise: np.ndarray, hypothesis: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The pair's ids and token_type_ids."""
        parts = (self.prefix, premise, self.middle, hypothesis, self.suffix)
        ids = np.concatenate(parts).astype(np.int64)
        types = np.concatenate([np.full(len(part), t, dtype=np.int64) for part, t in zip(parts, self.types)])
        return ids, types


def nli_scores(logits: np.ndarray, entail: int, multi_label: bool) -> np.ndarray:
    """Per label, from its pair's logits (n_labels, n_model_labels), as transformers'
    zero-shot pipeline computes them (a single label is read as multi-label there too)."""
    logits = logits.astype(np.float64)
    if multi_label or len(logits) == 1:
        contradiction = -1 if entail == 0 else 0
        pair = logits[:, [contradiction, entail]]
        pair = np.exp(pair - pair.max(axis=1, keepdims=True))
        return pair[:, 1] / pair.sum(axis=1)
    return softmax(logits[:, entail])


def similarity_scores(vector: np.ndarray, label_vectors: np.ndarray, multi_label: bool) -> np.ndarray:
    """Per label, from the cosine of the text's vector to the label's."""
    norms = np.linalg.norm(label_vectors, axis=1) * max(float(np.linalg.norm(vector)), 1e-12)
    cosine = (label_vectors @ vector) / np.clip(norms, 1e-12, None)
    return np.clip(cosine, 0.0, 1.0) if multi_label else softmax(SIMILARITY_SCALE * cosine)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()




# -- the routes (direct_textcat) ---------------------------------------------------------


class NliCategories(CategoryRoute):
    """Zero-shot by NLI: each window read against every label's hypothesis."""

    NAME = "nli"

    def load(self):
        if self.pipe.settings.precision == "int8":  # its int8 graph would take no token_type_ids
            raise DirectUseError(Errors.E066.format(what="zero-shot NLI checkpoints"))
        return super().load()

    def on_load(self, loaded, runner) -> None:
        runner.activation = None  # the pair logits: nli_scores reads them as the pipeline does
        self.multi = bool(self.multi)  # exclusive unless asked

    def reader(self, runner, settings) -> WindowReader:
        texts = required_labels(self.pipe, settings, "an NLI checkpoint")
        multi = settings.multi_label if settings.multi_label is not None else self.multi
        labels = list(texts.values())
        pair = PairTemplate.of(self.pipe.hf_tokenizer)
        hypotheses = [np.asarray(e.ids, dtype=np.int64) for e in runner.text_encoder.encode_batch([settings.hypothesis_template.format(label) for label in labels], add_special_tokens=False)]
        entail = entailment_id(self.pipe.model_labels)

        def run(ids: List[np.ndarray], flat: List[Tuple[int, Window]]) -> List[np.ndarray]:
            clock = time.perf_counter()
            pairs = [pair.join(ids[i][start:end], hypothesis) for i, (start, end, _, _) in flat for hypothesis in hypotheses]
            with fork_safe_torch():
                logits = runner.run([p for p, _ in pairs], [t for _, t in pairs] if pair.with_types else None)
            self.pipe._tick("forward", clock)
            n = len(hypotheses)
            return [nli_scores(np.stack(logits[k * n : (k + 1) * n]), entail, multi) for k in range(len(flat))]

        content_length = runner.max_length - len(pair) - max(len(h) for h in hypotheses)
        return WindowReader(False, max(content_length, 1), run, self.pipe.mapped_labels(list(texts)))


class SimilarityCategories(CategoryRoute, SentenceEncoding):
    """A sentence encoder's categories: zero-shot by the cosine to each label's embedding, or
    a head fitted on a few examples' embeddings (fitted_head.py; saved under model/)."""

    NAME = "embedding"
    TASK = "embedding"

    def __init__(self, pipe) -> None:
        super().__init__(pipe)
        self.head: Optional[FittedHead] = None
        self.label_vectors: "OrderedDict[Tuple[str, ...], np.ndarray]" = OrderedDict()

    def on_load(self, loaded, runner) -> None:
        if self.multi is None:  # exclusive unless asked (the encoder has no head to say), fitted ones as fitted
            self.multi = False if self.head is None else self.head.multi_label

    def reader(self, runner, settings) -> WindowReader:
        head = self.head
        if head is not None and (settings.labels == self.pipe.settings.labels or set(label_texts(settings.labels) or ()) == set(head.labels)):
            if settings.multi_label is not None and settings.multi_label != head.multi_label:
                fitted = "multi-label" if head.multi_label else "exclusive"
                raise DirectUseError(Errors.E096.format(fitted=fitted, asked=settings.multi_label))
            scores = lambda windows, vectors: head.scores(runner.combine(windows, vectors)[None])[0]  # noqa: E731
            return WindowReader(False, runner.content_length, self.pooled(runner), self.pipe.mapped_labels(head.labels), scores)
        texts = required_labels(self.pipe, settings, "a sentence encoder (no classification head)")
        multi = settings.multi_label if settings.multi_label is not None else self.multi
        label_vectors = self.embedded_labels(runner, tuple(texts.values()))
        scores = lambda windows, vectors: similarity_scores(runner.combine(windows, vectors), label_vectors, multi)  # noqa: E731
        return WindowReader(False, runner.content_length, self.pooled(runner), self.pipe.mapped_labels(list(texts)), scores)

    def pooled(self, runner) -> Callable:
        """An encoder's pooled vector of each (Doc index, window)."""
        return lambda ids, flat: [p for p, _ in self.pipe.forward(runner, ids, flat)]

    def embedded_labels(self, runner, texts: Tuple[str, ...]) -> np.ndarray:
        """The label texts' embeddings, computed once per label set; the LABEL_SETS_KEPT
        most recently used sets are kept (labels per call may differ every call)."""
        if texts in self.label_vectors:
            self.label_vectors.move_to_end(texts)
        else:
            with fork_safe_torch():
                self.label_vectors[texts] = runner.embed_texts(list(texts))
            while len(self.label_vectors) > LABEL_SETS_KEPT:
                self.label_vectors.popitem(last=False)
        return self.label_vectors[texts]

    def doc_vectors(self, docs: List[Doc]) -> np.ndarray:
        """Each Doc's sentence embedding (n, dim), as direct_vectors writes it."""
        runner = self.pipe._ensure_loaded()
        reader = WindowReader(False, runner.content_length, self.pooled(runner), [], runner.combine)
        return np.stack([vector for _, vector, _ in self.read(docs, reader, sentences=False)])

    def fit(self, examples: List[Any]) -> FittedHead:
        """A head fitted on the examples' embeddings (the encoder's weights do not change)."""
        runner = self.pipe._ensure_loaded()
        configured = label_texts(self.pipe.settings.labels)
        multi = bool(self.pipe.settings.multi_label)
        targets, labels = read_targets(examples, list(configured) if configured else None, multi)
        vectors = self.doc_vectors([example.predicted for example in examples])
        names = self.embedded_labels(runner, tuple(configured[label] for label in labels)) if configured else None
        self.head = FittedHead.fit(vectors, targets, labels, multi, names)
        return self.head

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(label for label in self.pipe.mapped_labels(self.head.labels) if label) if self.head is not None else ()

    def save(self, path: Path) -> None:
        super().save(path)
        if self.head is not None:
            (path / HEAD_FILE).write_bytes(self.head.to_bytes())

    def read_saved(self, path: Path) -> None:
        super().read_saved(path)
        head = path / HEAD_FILE
        self.head = FittedHead.from_bytes(head.read_bytes(), where=str(head)) if head.is_file() else None


def required_labels(pipe, settings, what: str) -> Dict[str, str]:
    """The call's labels (label -> the text read for it); E060 where none were given."""
    texts = label_texts(settings.labels)
    if not texts:
        detail = f"'{pipe._source}' is {what}: it classifies into labels of your choosing, but none were given."
        raise DirectUseError(Errors.E060.format(detail=detail))
    return texts
