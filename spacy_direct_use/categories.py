"""How direct_textcat's routes read categories: each Doc in windows (whole sentences packed up
to `window_size` sub-words, long ones strided), the windows' outputs combined into the Doc's
probabilities (by default their mean, each weighted by the sub-words only it reads, so every
part of the text counts as much as its length and overlaps count once), and, where
`spans_key` is set, each sentence's too. The route for a fine-tuned sequence classifier is
here; the zero-shot and fitted ones are in zeroshot.py.
"""
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc

from .alignment import TokenAlignment
from .errors import DirectUseError, Errors
from .inference import Runner
from .loading import LoadedModel, read_json
from .route import Route
from .windows import Window, read_windows, strided_windows, weighted_mean
from .settings import label_texts

Prediction = Tuple[List[Optional[str]], np.ndarray, List[Tuple[int, int, np.ndarray]]]
"""Label names, the Doc's probabilities, (start, end, probabilities) per sentence."""


@dataclass
class WindowReader:
    """How one call reads a Doc's windows: encoding, window length, what each window
    gives, and how those become the text's label probabilities (by default the mean of
    the windows' probabilities, each weighted by its core)."""

    words: bool  # the Doc's tokens as pre-split words, or its running text
    content_length: int
    run: Callable[[List[np.ndarray], List[Tuple[int, Window]]], List[Any]]
    names: List[Optional[str]]
    combine: Callable[[List[Window], List[Any]], np.ndarray] = weighted_mean


def checkpoint_route(pipe) -> str:
    """"nli" for a sequence classifier with an entailment label, "fine-tuned" for another
    classifier (a token classifier is then refused with E004 at load), "embedding" for an
    encoder with no classification head (a sentence-transformers checkpoint)."""
    name, revision, local_only = str(pipe._source), pipe.settings.revision, pipe._local_only
    config = read_json(name, "config.json", revision, local_only)
    if config is None:
        return "embedding" if read_json(name, "modules.json", revision, local_only) is not None else "fine-tuned"
    architectures = config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        own = config.get("id2label", {})
        labels = pipe.settings.id2label or [own[k] for k in sorted(own, key=int)]
        return "nli" if entailment_id(labels) is not None else "fine-tuned"
    if any(a.endswith(("ForTokenClassification", "ForMultipleChoice", "ForQuestionAnswering")) for a in architectures):
        return "fine-tuned"
    return "embedding"


def entailment_id(model_labels: Sequence[str]) -> Optional[int]:
    """The first label starting with "entail" (any case), as transformers' pipeline finds it."""
    return next((i for i, label in enumerate(model_labels) if str(label).lower().startswith("entail")), None)


class CategoryRoute(Route):
    """What every direct_textcat route shares: reading the Docs (and their sentences) through
    the call's WindowReader (`reader`), and whether the labels are independent."""

    TASK = "sequence"

    def __init__(self, pipe) -> None:
        super().__init__(pipe)
        self.multi: Optional[bool] = pipe.settings.multi_label
        """Whether the labels are independent (sigmoid); None until the model has loaded."""

    @classmethod
    def reads(cls, pipe) -> bool:
        return checkpoint_route(pipe) == cls.NAME

    def reader(self, runner: Any, settings: Any) -> WindowReader:
        raise NotImplementedError

    def predict(self, docs: List[Doc], settings: Any) -> List[Prediction]:
        runner = self.pipe._ensure_loaded()
        return self.read(docs, self.reader(runner, settings), sentences=bool(settings.spans_key))

    def read(self, docs: List[Doc], reader: WindowReader, sentences: bool) -> List[Prediction]:
        pipe = self.pipe
        runner = pipe._ensure_loaded()
        clock = time.perf_counter()
        ids, alignments = pipe.encode(docs, runner, reader.words)
        doc_windows = [pipe.windows(doc, alignment, reader.content_length) or [(0, 0, 0, 0)] for doc, alignment in zip(docs, alignments)]
        doc_sentences = [self._sentences(doc, alignment) if sentences else [] for doc, alignment in zip(docs, alignments)]
        size, overlap = pipe.settings.window_shape(reader.content_length)
        sentence_windows = [[strided_windows(start, end, size, overlap) for _, _, start, end in sents] for sents in doc_sentences]
        pipe._tick("tokenize", clock)
        all_windows = [windows + [w for windows_of in per_sentence for w in windows_of] for windows, per_sentence in zip(doc_windows, sentence_windows)]
        outputs = read_windows(all_windows, lambda flat: reader.run(ids, flat))
        predictions = []
        for windows, sents, windows_per_sentence, doc_outputs in zip(doc_windows, doc_sentences, sentence_windows, outputs):
            rest = iter(doc_outputs[len(windows) :])
            per_sentence = [(start, end, reader.combine(ws, [next(rest) for _ in ws])) for (start, end, _, _), ws in zip(sents, windows_per_sentence)]
            predictions.append((reader.names, reader.combine(windows, doc_outputs[: len(windows)]), per_sentence))
        return predictions

    def _sentences(self, doc: Doc, alignment: TokenAlignment) -> List[Tuple[int, int, int, int]]:
        """(start token, end token, start piece, end piece) of each sentence that has pieces."""
        token_starts = [int(t) for t in self.pipe.sentence_starts(doc)] + [len(doc)]
        piece_bounds = np.searchsorted(alignment.piece_tokens, token_starts, side="left")
        return [
            (token_starts[k], token_starts[k + 1], int(piece_bounds[k]), int(piece_bounds[k + 1]))
            for k in range(len(token_starts) - 1)
            if piece_bounds[k + 1] > piece_bounds[k]
        ]


class FineTunedCategories(CategoryRoute):
    """A fine-tuned sequence classifier's own labels."""

    NAME = "fine-tuned"

    def multi_label(self, loaded: LoadedModel) -> bool:
        """The multi_label setting, else the checkpoint's problem_type."""
        if self.multi is None:
            self.multi = getattr(loaded.model.config, "problem_type", None) == "multi_label_classification"
        return self.multi

    def reader(self, runner: Runner, settings: Any) -> WindowReader:
        texts = label_texts(settings.labels)
        own = self.pipe.model_labels
        if texts is not None and set(texts) != set(own):
            raise DirectUseError(Errors.E063.format(name=self.pipe._source, own=own, labels=list(texts)))
        run = lambda ids, flat: self.pipe.forward(runner, ids, flat)  # noqa: E731
        return WindowReader(True, runner.content_length, run, self.pipe.mapped_labels())
