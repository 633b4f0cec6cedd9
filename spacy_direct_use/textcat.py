"""direct_textcat: a sequence classifier's categories in doc.cats, or, with `labels`, categories
of your choosing with no training (zeroshot.py: an NLI or a sentence-embedding checkpoint).

On the shared core (base.py), it adds how window predictions become one per Doc:
a Doc longer than the model is read in windows (whole sentences packed up to
`window_size` sub-words, long ones strided), and the Doc's probabilities are the
mean of its windows', each weighted by the sub-words only it reads (its core), so
every part of the text counts as much as its length and overlaps count once.
Optionally each sentence is classified too (`spans_key`).

On a sentence encoder, `nlp.initialize(get_examples)` with Examples whose reference Docs
carry cats fits a linear head on the frozen embeddings (fitted_head.py), saved with the
pipeline under model/.
"""
import dataclasses
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
from spacy import registry
from spacy.pipeline.textcat import textcat_score
from spacy.pipeline.textcat_multilabel import textcat_multilabel_score
from spacy.tokens import Doc, Span, SpanGroup

from .base import DirectPipe
from .categories import FineTunedCategories, Prediction
from .errors import DirectUseError, Errors
from .fitted_head import FittedHead, examples_with_cats
from .settings import ClassifierSettings, LabelsSetting, flag, fraction, label_texts, labels_check, optional, positive_int, setting, template_check
from .zeroshot import NliCategories, SimilarityCategories


@dataclasses.dataclass(frozen=True)
class TextcatSettings(ClassifierSettings):
    window_size: int = setting(512, positive_int)
    window_overlap: int = setting(64)
    max_sentences_per_window: int = setting(100, positive_int)
    multi_label: Optional[bool] = setting(None, optional(flag), per_call=True)
    labels: LabelsSetting = setting(None, labels_check, per_call=True)
    hypothesis_template: str = setting("This example is {}.", template_check, per_call=True)
    pooling: Optional[str] = setting(None)
    normalize: Optional[bool] = setting(None, optional(flag))
    threshold: float = setting(0.5, fraction)
    spans_key: Optional[str] = setting(None)


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

    FACTORY = "direct_textcat"
    SETTINGS = TextcatSettings
    ROUTES = (NliCategories, SimilarityCategories, FineTunedCategories)

    @property
    def labels(self) -> Tuple[str, ...]:
        """The categories written to doc.cats, after `label_map`: the `labels` setting's, else
        the fitted head's, else the model's, in their order."""
        if self.settings.labels is not None:
            return tuple(label for label in self.mapped_labels(list(label_texts(self.settings.labels))) if label)
        return self.route.labels

    @property
    def is_multi_label(self) -> Optional[bool]:
        """Whether the labels are independent (sigmoid); None until the model has loaded
        when the multi_label setting is null; a fitted head's own."""
        head = self.fitted_head
        return head.multi_label if head is not None else self.route.multi

    @property
    def fitted_head(self) -> Optional[FittedHead]:
        """The categories fitted from examples (None where none were given)."""
        return getattr(self.route, "head", None)

    def score(self, examples, **kwargs) -> Dict[str, Any]:
        """spaCy's textcat scores (cats_score, cats_micro_f: accuracy for exclusive labels, per-label F)."""
        self._ensure_loaded()
        return super().score(examples, **{"multi_label": self.is_multi_label, **kwargs})

    # -- categories fitted from examples -------------------------------------------------

    def initialize(self, get_examples: Optional[Callable] = None, *, nlp=None, examples: Optional[Callable] = None) -> None:
        """Load the model; where the examples' reference Docs carry cats, fit the categories
        on the encoder's frozen embeddings (fitted_head.py). `examples` (set in the config's
        [initialize.components.<name>], e.g. a spacy.Corpus.v1 reader of a .spacy file) is
        read instead of get_examples."""
        source = (lambda: examples(nlp)) if examples is not None else get_examples
        super().initialize(source, nlp=nlp)  # loads; with engine "openvino" int8, calibrates on the examples' texts
        given: Iterable = source() if source is not None else []
        gold = examples_with_cats(given)
        if gold:
            self.fit(gold)

    def fit(self, examples: List[Any]) -> FittedHead:
        """A head fitted on the examples' embeddings (the encoder's weights do not change)."""
        self._ensure_loaded()
        if not isinstance(self.route, SimilarityCategories):
            raise DirectUseError(Errors.E095.format(name=self._source, route=self.route.NAME))
        return self.route.fit(examples)

    def doc_vectors(self, docs: List[Doc]) -> np.ndarray:
        """Each Doc's sentence embedding (n, dim), as direct_vectors writes it (a sentence encoder)."""
        self._ensure_loaded()
        if not isinstance(self.route, SimilarityCategories):
            raise DirectUseError(Errors.E095.format(name=self._source, route=self.route.NAME))
        return self.route.doc_vectors(docs)

    def set_annotations(self, docs: List[Doc], predictions: List[Prediction]) -> List[Doc]:
        """doc.cats gets every label's probability (other categories on the Doc stay); each
        sentence's top label and probabilities go to doc.spans[spans_key]."""
        clock = time.perf_counter()
        for doc, (names, probs, per_sentence) in zip(docs, predictions):
            doc.cats.update(self._cats(names, probs))
            if self.settings.spans_key:
                spans, scores, cats = [], [], []
                for start, end, sentence_probs in per_sentence:
                    sentence_cats = self._cats(names, sentence_probs)
                    top = max(sentence_cats, key=sentence_cats.get) if sentence_cats else ""
                    spans.append(Span(doc, start, end, label=top))
                    scores.append(sentence_cats.get(top, 0.0))
                    cats.append(sentence_cats)
                key = self.settings.spans_key
                doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs={"scores": scores, "cats": cats})
        self._tick("annotate", clock)
        return docs

    @staticmethod
    def _cats(names: List[Optional[str]], probs: np.ndarray) -> Dict[str, float]:
        return {name: float(p) for name, p in zip(names, probs.tolist()) if name}
