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
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
from spacy import registry
from spacy.pipeline.textcat import textcat_score
from spacy.pipeline.textcat_multilabel import textcat_multilabel_score
from spacy.tokens import Doc, Span, SpanGroup

from .alignment import TokenAlignment
from .base import SHARED_CONFIG, DirectPipe, check_flag
from .errors import DirectUseError, Errors, speaking_methods
from .fitted_head import SAVED_FILE as HEAD_FILE
from .fitted_head import FittedHead, examples_with_cats, read_targets
from .inference import ClassifierRunner, fork_safe_torch
from .loading import LoadedModel, read_json
from .windows import Window, strided_windows, weighted_mean
from .zeroshot import PairTemplate, call_labels, check_template, entailment_id, label_texts, nli_scores, similarity_scores

DEFAULT_CONFIG = {
    **SHARED_CONFIG,
    "window_size": 512,
    "window_overlap": 64,
    "max_sentences_per_window": 100,
    "multi_label": None,
    "labels": None,
    "hypothesis_template": "This example is {}.",
    "pooling": None,
    "normalize": None,
    "threshold": 0.5,
    "spans_key": None,
    "scorer": {"@scorers": "spacy_direct_use.textcat_scorer.v1"},
}

Prediction = Tuple[List[Optional[str]], np.ndarray, List[Tuple[int, int, np.ndarray]]]
"""Label names, the Doc's probabilities, (start, end, probabilities) per sentence."""
ROUTES = ("fine-tuned", "nli", "embedding")


@dataclass
class WindowReader:
    """How one call reads a Doc's windows: encoding, window length, what each window
    gives, and how those become the text's label probabilities (by default the mean of
    the windows' probabilities, each weighted by its core)."""

    encode: Callable
    content_length: int
    run: Callable[[List[np.ndarray], List[Tuple[int, Window]]], List[np.ndarray]]
    names: List[Optional[str]]
    combine: Callable[[List[Window], List[np.ndarray]], np.ndarray] = weighted_mean


@registry.scorers("spacy_direct_use.textcat_scorer.v1")
def make_textcat_scorer() -> Callable:
    """spaCy's own textcat scorer (`spacy.textcat_scorer.v2`), or its multi-label one
    (`spacy.textcat_multilabel_scorer.v2`) where the checkpoint's labels are independent."""
    return score_cats


def score_cats(examples, *, multi_label: bool = False, **kwargs) -> Dict[str, Any]:
    score = textcat_multilabel_score if multi_label else textcat_score
    return score(examples, **kwargs)


LABEL_SETS_KEPT = 32
"""Label sets whose embeddings direct_textcat keeps (zero-shot by similarity)."""


class DirectTextCat(DirectPipe):
    """Writes a pretrained sequence classifier's label probabilities to doc.cats."""

    TASK = "sequence"
    DEFAULT_CONFIG = DEFAULT_CONFIG
    CALL_SETTINGS = ("labels", "hypothesis_template", "multi_label")

    def __init__(self, vocab, name: str = "direct_textcat", *, model: Optional[str], scorer: Optional[Callable] = None, **cfg) -> None:
        super().__init__(vocab, name, model=model, scorer=scorer, **cfg)
        self._multi_label: Optional[bool] = self.cfg["multi_label"]
        self._labels = label_texts(self.cfg["labels"])
        check_template(self.cfg["hypothesis_template"])
        self._route: Optional[str] = None
        self._label_vectors: "OrderedDict[Tuple[str, ...], np.ndarray]" = OrderedDict()
        self._head: Optional[FittedHead] = None  # categories fitted from examples (embedding route)

    @property
    def route(self) -> str:
        """How the checkpoint is read (ROUTES): "fine-tuned" (its own labels), "nli" (a
        sequence classifier with an entailment label: zero-shot) or "embedding" (an encoder
        with no classification head: zero-shot by similarity); decided from its config."""
        if self._route is None:
            self._route = checkpoint_route(str(self._source), self.cfg["revision"], self._local_only, self.cfg["id2label"])
        return self._route

    def task(self) -> str:
        if self.route == "nli" and self.cfg["precision"] == "int8":  # its int8 graph would take no token_type_ids
            raise DirectUseError(Errors.E066.format(what="zero-shot NLI checkpoints"))
        return "embedding" if self.route == "embedding" else "sequence"

    def _use_saved_model(self, path) -> None:
        self._route = None  # decided again from the saved model's config
        super()._use_saved_model(path)
        head = Path(path) / HEAD_FILE
        self._head = FittedHead.from_bytes(head.read_bytes(), where=str(head)) if head.is_file() else None

    def _save_model(self, path: Path) -> None:
        super()._save_model(path)
        if self._head is not None:
            (path / HEAD_FILE).write_bytes(self._head.to_bytes())

    # -- categories fitted from examples -------------------------------------------------

    def initialize(self, get_examples: Optional[Callable] = None, *, nlp=None, examples: Optional[Callable] = None) -> None:
        """Load the model; where the examples' reference Docs carry cats, fit the categories
        on the encoder's frozen embeddings (fitted_head.py). `examples` (set in the config's
        [initialize.components.<name>], e.g. a spacy.Corpus.v1 reader of a .spacy file) is
        read instead of get_examples."""
        source = (lambda: examples(nlp)) if examples is not None else get_examples
        super().initialize(source, nlp=nlp)  # loads; with engine "openvino" int8, calibrates on the examples' texts
        runner = self._ensure_loaded()
        given: Iterable = source() if source is not None else []
        gold = examples_with_cats(given)
        if gold:
            self._head = self.fit(gold, runner)

    def fit(self, examples: List[Any], runner=None) -> FittedHead:
        """A head fitted on the examples' embeddings (the encoder's weights do not change)."""
        runner = runner or self._ensure_loaded()
        if self.route != "embedding":
            raise DirectUseError(Errors.E095.format(name=self._source, route=self.route))
        targets, labels = read_targets(examples, list(self._labels) if self._labels else None, bool(self._multi_label))
        vectors = self.doc_vectors([example.predicted for example in examples])
        names = self._embedded_labels(runner, tuple(self._labels[label] for label in labels)) if self._labels else None
        return FittedHead.fit(vectors, targets, labels, bool(self._multi_label), names)

    def doc_vectors(self, docs: List[Doc]) -> np.ndarray:
        """Each Doc's sentence embedding (n, dim), as direct_vectors writes it."""
        runner = self._ensure_loaded()
        reader = WindowReader(self._encode_text, runner.content_length, self._pooled(runner), [], runner.combine)
        return np.stack([vector for _, vector, _ in self._read(docs, reader, sentences=False)])

    @property
    def fitted_head(self) -> Optional[FittedHead]:
        """The categories fitted from examples (None where none were given)."""
        return self._head

    def on_load(self, loaded: LoadedModel, runner: ClassifierRunner) -> None:
        if self.route == "nli":
            runner.activation = None  # the pair logits: nli_scores reads them as the pipeline does
        if self.route != "fine-tuned" and self._multi_label is None:
            # zero-shot labels are exclusive unless asked (the encoder has no head to say), fitted ones as fitted
            self._multi_label = False if self._head is None else self._head.multi_label

    @classmethod
    def factory_name(cls) -> str:
        return "direct_textcat"

    def multi_label(self, loaded: LoadedModel) -> bool:
        """The multi_label setting, else a fine-tuned checkpoint's problem_type (zero-shot: on_load)."""
        if self.cfg["multi_label"] is None and self.route == "fine-tuned":
            self._multi_label = getattr(loaded.model.config, "problem_type", None) == "multi_label_classification"
        return bool(self._multi_label)

    @property
    def is_multi_label(self) -> Optional[bool]:
        """Whether the labels are independent (sigmoid); None until the model has loaded
        when the multi_label setting is null; a fitted head's own."""
        return self._head.multi_label if self._head is not None else self._multi_label

    @property
    def labels(self) -> Tuple[str, ...]:
        """The categories written to doc.cats, after `label_map`: the `labels` setting's, else
        the fitted head's, else the model's, in their order."""
        names = list(self._labels) if self._labels is not None else (self._head.labels if self._head is not None else None)
        return tuple(label for label in self._mapped_labels(names) if label)

    def score(self, examples, **kwargs) -> Dict[str, Any]:
        """spaCy's textcat scores (cats_score, cats_micro_f: accuracy for exclusive labels, per-label F)."""
        self._ensure_loaded()
        return super().score(examples, **{"multi_label": self.is_multi_label, **kwargs})

    # -- processing ------------------------------------------------------------------

    def predict(self, docs: List[Doc], **call_settings: Any) -> List[Prediction]:
        """Each Doc's label probabilities, and each sentence's where `spans_key` is set;
        `call_settings`: this call's labels, hypothesis_template or multi_label."""
        runner = self._ensure_loaded()
        return self._read(docs, self._reader(runner, **call_settings), sentences=bool(self.cfg["spans_key"]))

    def _read(self, docs: List[Doc], reader: WindowReader, sentences: bool) -> List[Prediction]:
        runner = self._ensure_loaded()
        clock = time.perf_counter()
        ids, alignments = reader.encode(docs, runner)
        doc_windows = [self._windows(doc, alignment, reader.content_length) or [(0, 0, 0, 0)] for doc, alignment in zip(docs, alignments)]
        doc_sentences = [self._sentences(doc, alignment) if sentences else [] for doc, alignment in zip(docs, alignments)]
        size, overlap = self._window_shape(reader.content_length)
        sentence_windows = [[strided_windows(start, end, size, overlap) for _, _, start, end in doc_sents] for doc_sents in doc_sentences]
        flat = [(i, w) for i, windows in enumerate(doc_windows) for w in windows]
        flat += [(i, w) for i, doc_sents in enumerate(sentence_windows) for windows in doc_sents for w in windows]
        self._tick("tokenize", clock)
        outputs = iter(reader.run(ids, flat))
        predictions = []
        for windows in doc_windows:
            predictions.append((reader.names, reader.combine(windows, [next(outputs) for _ in windows]), []))
        for (_, _, per_sentence), doc_sents, windows_per_sent in zip(predictions, doc_sentences, sentence_windows):
            for (start, end, _, _), windows in zip(doc_sents, windows_per_sent):
                per_sentence.append((start, end, reader.combine(windows, [next(outputs) for _ in windows])))
        return predictions

    def _reader(self, runner: ClassifierRunner, labels: Any = None, hypothesis_template: Optional[str] = None, multi_label: Optional[bool] = None) -> WindowReader:
        """How this call reads windows, for the checkpoint's route and the call's settings."""
        texts = call_labels(self._labels, labels)
        template = self.cfg["hypothesis_template"] if hypothesis_template is None else check_template(hypothesis_template)
        multi = self._multi_label if multi_label is None else check_flag("multi_label", multi_label)
        if self.route == "fine-tuned":
            if texts is not None and set(texts) != set(self._model_labels):
                raise DirectUseError(Errors.E063.format(name=self._source, own=self._model_labels, labels=list(texts)))
            return WindowReader(self._encode, runner.content_length, lambda ids, flat: self._forward(runner, ids, flat), self._mapped_labels())
        head = self._head if self._head is not None and (labels is None or set(texts or ()) == set(self._head.labels)) else None
        if head is not None:
            if multi_label is not None and bool(multi_label) != head.multi_label:
                fitted = "multi-label" if head.multi_label else "exclusive"
                raise DirectUseError(Errors.E096.format(fitted=fitted, asked=bool(multi_label)))
            return self._head_reader(runner, head)
        if not texts:
            what = "an NLI checkpoint" if self.route == "nli" else "a sentence encoder (no classification head)"
            detail = f"'{self._source}' is {what}: it classifies into labels of your choosing, but none were given."
            raise DirectUseError(Errors.E060.format(detail=detail))
        names = self._mapped_labels(list(texts))
        if self.route == "nli":
            return self._nli_reader(runner, list(texts.values()), template, multi, names)
        label_vectors = self._embedded_labels(runner, tuple(texts.values()))
        scores = lambda windows, vectors: similarity_scores(runner.combine(windows, vectors), label_vectors, multi)  # noqa: E731
        return WindowReader(self._encode_text, runner.content_length, self._pooled(runner), names, scores)

    def _head_reader(self, runner: ClassifierRunner, head: FittedHead) -> WindowReader:
        """Each text's embedding (as direct_vectors writes it) through the fitted head."""
        scores = lambda windows, vectors: head.scores(runner.combine(windows, vectors)[None])[0]  # noqa: E731
        return WindowReader(self._encode_text, runner.content_length, self._pooled(runner), self._mapped_labels(head.labels), scores)

    def _pooled(self, runner: ClassifierRunner) -> Callable:
        """An encoder's pooled vector of each (Doc index, window)."""
        return lambda ids, flat: [p for p, _ in self._forward(runner, ids, flat)]

    def _nli_reader(self, runner: ClassifierRunner, labels: List[str], template: str, multi: bool, names: List[Optional[str]]) -> WindowReader:
        """Each window read against every label's hypothesis, all pairs in one length-sorted run."""
        pair = PairTemplate.of(self._tokenizer)
        hypotheses = [np.asarray(e.ids, dtype=np.int64) for e in runner.text_encoder.encode_batch([template.format(label) for label in labels], add_special_tokens=False)]
        entail = entailment_id(self._model_labels)

        def run(ids: List[np.ndarray], flat: List[Tuple[int, Window]]) -> List[np.ndarray]:
            clock = time.perf_counter()
            pairs = [pair.join(ids[i][start:end], hypothesis) for i, (start, end, _, _) in flat for hypothesis in hypotheses]
            with fork_safe_torch():
                logits = runner.run([p for p, _ in pairs], [t for _, t in pairs] if pair.with_types else None)
            self._tick("forward", clock)
            n = len(hypotheses)
            return [nli_scores(np.stack(logits[k * n : (k + 1) * n]), entail, multi) for k in range(len(flat))]

        content_length = runner.max_length - len(pair) - max(len(h) for h in hypotheses)
        return WindowReader(self._encode_text, max(content_length, 1), run, names)

    def _embedded_labels(self, runner, texts: Tuple[str, ...]) -> np.ndarray:
        """The label texts' embeddings, computed once per label set; the LABEL_SETS_KEPT
        most recently used sets are kept (labels per call may differ every call)."""
        if texts in self._label_vectors:
            self._label_vectors.move_to_end(texts)
        else:
            with fork_safe_torch():
                self._label_vectors[texts] = runner.embed_texts(list(texts))
            while len(self._label_vectors) > LABEL_SETS_KEPT:
                self._label_vectors.popitem(last=False)
        return self._label_vectors[texts]

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
        for doc, (names, probs, per_sentence) in zip(docs, predictions):
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


speaking_methods(DirectTextCat, ("fit", "doc_vectors"))  # their messages are headed [direct_textcat Exxx] too


def checkpoint_route(name: str, revision: Optional[str], local_only: bool, id2label: Optional[List[str]]) -> str:
    """ROUTES: a sequence classifier with an entailment label is read as NLI, another
    classifier as fine-tuned (a token classifier is then refused with E004 at load), an
    encoder with no classification head (a sentence-transformers checkpoint) by similarity."""
    config = read_json(name, "config.json", revision, local_only)
    if config is None:
        return "embedding" if read_json(name, "modules.json", revision, local_only) is not None else "fine-tuned"
    architectures = config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        labels = id2label or [config.get("id2label", {})[k] for k in sorted(config.get("id2label", {}), key=int)]
        return "nli" if entailment_id(labels) is not None else "fine-tuned"
    if any(a.endswith(("ForTokenClassification", "ForMultipleChoice", "ForQuestionAnswering")) for a in architectures):
        return "fine-tuned"
    return "embedding"
