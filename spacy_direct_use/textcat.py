"""direct_textcat: a fine-tuned sequence classifier's categories in doc.cats.

On the shared core (base.py), it adds how window predictions become one per Doc:
a Doc longer than the model is read in windows (whole sentences packed up to
`window_size` sub-words, long ones strided), and the Doc's probabilities are the
mean of its windows', each weighted by the sub-words only it reads (its core), so
every part of the text counts as much as its length and overlaps count once.
Optionally each sentence is classified too (`spans_key`).
"""
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from spacy import registry
from spacy.pipeline.textcat import textcat_score
from spacy.pipeline.textcat_multilabel import textcat_multilabel_score
from spacy.tokens import Doc, Span, SpanGroup

from .alignment import TokenAlignment
from .base import SHARED_CONFIG, DirectPipe
from .loading import LoadedModel
from .windows import strided_windows, weighted_mean

DEFAULT_CONFIG = {
    **SHARED_CONFIG,
    "window_size": 512,
    "window_overlap": 64,
    "max_sentences_per_window": 100,
    "multi_label": None,
    "threshold": 0.5,
    "spans_key": None,
    "scorer": {"@scorers": "spacy_direct_use.textcat_scorer.v1"},
}

Prediction = Tuple[np.ndarray, List[Tuple[int, int, np.ndarray]]]  # Doc probs, (start, end, probs) per sentence


@registry.scorers("spacy_direct_use.textcat_scorer.v1")
def make_textcat_scorer() -> Callable:
    """spaCy's own textcat scorer (`spacy.textcat_scorer.v2`), or its multi-label one
    (`spacy.textcat_multilabel_scorer.v2`) where the checkpoint's labels are independent."""
    return score_cats


def score_cats(examples, *, multi_label: bool = False, **kwargs) -> Dict[str, Any]:
    score = textcat_multilabel_score if multi_label else textcat_score
    return score(examples, **kwargs)


class DirectTextCat(DirectPipe):
    """Writes a pretrained sequence classifier's label probabilities to doc.cats."""

    TASK = "sequence"
    DEFAULT_CONFIG = DEFAULT_CONFIG

    def __init__(self, vocab, name: str = "direct_textcat", *, model: Optional[str], scorer: Optional[Callable] = None, **cfg) -> None:
        super().__init__(vocab, name, model=model, scorer=scorer, **cfg)
        self._multi_label: Optional[bool] = self.cfg["multi_label"]

    @classmethod
    def factory_name(cls) -> str:
        return "direct_textcat"

    def multi_label(self, loaded: LoadedModel) -> bool:
        """The multi_label setting, else the checkpoint's problem_type."""
        if self.cfg["multi_label"] is None:
            self._multi_label = getattr(loaded.model.config, "problem_type", None) == "multi_label_classification"
        return bool(self._multi_label)

    @property
    def is_multi_label(self) -> Optional[bool]:
        """Whether the labels are independent (sigmoid); None until the model has loaded
        when the multi_label setting is null."""
        return self._multi_label

    @property
    def labels(self) -> Tuple[str, ...]:
        """The categories written to doc.cats, after `label_map`, in the model's order."""
        return tuple(label for label in self._mapped_labels() if label)

    def score(self, examples, **kwargs) -> Dict[str, Any]:
        """spaCy's textcat scores (cats_score, cats_micro_f: accuracy for exclusive labels, per-label F)."""
        self._ensure_loaded()
        return super().score(examples, **{"multi_label": self.is_multi_label, **kwargs})

    # -- processing ------------------------------------------------------------------

    def predict(self, docs: List[Doc]) -> List[Prediction]:
        """Each Doc's label probabilities, and each sentence's where `spans_key` is set."""
        runner = self._ensure_loaded()
        clock = time.perf_counter()
        ids, alignments = self._encode(docs, runner)
        doc_windows = [self._windows(doc, alignment, runner.content_length) or [(0, 0, 0, 0)] for doc, alignment in zip(docs, alignments)]
        sentences = [self._sentences(doc, alignment) if self.cfg["spans_key"] else [] for doc, alignment in zip(docs, alignments)]
        size, overlap = self._window_shape(runner.content_length)
        sentence_windows = [[strided_windows(start, end, size, overlap) for _, _, start, end in doc_sents] for doc_sents in sentences]
        flat = [(i, w) for i, windows in enumerate(doc_windows) for w in windows]
        flat += [(i, w) for i, doc_sents in enumerate(sentence_windows) for windows in doc_sents for w in windows]
        self._tick("tokenize", clock)
        probs = iter(self._forward(runner, ids, flat))
        predictions = []
        for windows in doc_windows:
            predictions.append((weighted_mean(windows, [next(probs) for _ in windows]), []))
        for (doc_probs, per_sentence), doc_sents, windows_per_sent in zip(predictions, sentences, sentence_windows):
            for (start, end, _, _), windows in zip(doc_sents, windows_per_sent):
                per_sentence.append((start, end, weighted_mean(windows, [next(probs) for _ in windows])))
        return predictions

    def _sentences(self, doc: Doc, alignment: TokenAlignment) -> List[Tuple[int, int, int, int]]:
        """(start token, end token, start piece, end piece) of each sentence that has pieces."""
        token_starts = [int(t) for t in self._sentence_starts(doc)] + [len(doc)]
        piece_bounds = np.searchsorted(alignment.piece_tokens, token_starts, side="left")
        return [
            (token_starts[k], token_starts[k + 1], int(piece_bounds[k]), int(piece_bounds[k + 1]))
            for k in range(len(token_starts) - 1)
            if piece_bounds[k + 1] > piece_bounds[k]
        ]

    def set_annotations(self, docs: List[Doc], predictions: List[Prediction]) -> List[Doc]:
        """doc.cats gets every label's probability (other categories on the Doc stay); each
        sentence's top label and probabilities go to doc.spans[spans_key]."""
        clock = time.perf_counter()
        names = self._mapped_labels()
        for doc, (probs, per_sentence) in zip(docs, predictions):
            doc.cats.update(self._cats(names, probs))
            if self.cfg["spans_key"]:
                spans, scores, cats = [], [], []
                for start, end, sentence_probs in per_sentence:
                    sentence_cats = self._cats(names, sentence_probs)
                    top = max(sentence_cats, key=sentence_cats.get) if sentence_cats else ""
                    spans.append(Span(doc, start, end, label=top))
                    scores.append(sentence_cats.get(top, 0.0))
                    cats.append(sentence_cats)
                key = self.cfg["spans_key"]
                doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs={"scores": scores, "cats": cats})
        self._tick("annotate", clock)
        return docs

    @staticmethod
    def _cats(names: List[Optional[str]], probs: np.ndarray) -> Dict[str, float]:
        return {name: float(p) for name, p in zip(names, probs.tolist()) if name}
