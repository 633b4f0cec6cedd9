"""The core every direct_* component shares: its settings (settings.py), the route that reads
its checkpoint (route.py), the model loaded once (lazily, thread-safe, fork-safe) on its
device, engine and precision, the Doc read in sub-word windows (nothing truncated), spaCy's
batch and error-handler contracts, and serialization with the weights inside the pipeline.

A component subclasses DirectPipe and adds its settings (SETTINGS), the routes it offers
(ROUTES) and what it writes to the Doc (set_annotations).
"""
import threading
import time
from collections import defaultdict
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Type, Union

import numpy as np
from spacy.language import Language
from spacy.pipeline import Pipe, Sentencizer
from spacy.strings import get_string_id
from spacy.tokens import Doc
from spacy.util import minibatch

from .alignment import TokenAlignment, text_pieces, word_pieces
from .embedding import EmbeddingRunner
from .errors import DirectUseError, Errors, examples_for, speaking_for, speaking_methods
from .inference import Runner
from .forking import fork_safe_torch
from .loading import load_checkpoint, read_labels, resolve_device
from .onnx_graph import OnnxClassifier
from .openvino_engine import CALIBRATION_DOCS, run_on_engine
from .openvino_engine import SAVED_FILES as SAVED_OPENVINO_FILES
from .persistence import PipelineFiles
from .route import Route
from .settings import EncoderSettings, Settings
from .windows import Window, guess_sentence_starts, read_windows, sentence_windows, strided_windows

_LOAD_LOCK = threading.RLock()
"""Held while a route is decided and while a model loads (the route's load may ask for the
route): one lock for all instances, as spaCy pickles a Pipe's __dict__ (spawned nlp.pipe
workers) and a lock cannot be pickled; both are rare."""

SPEAKING_METHODS = ("__init__", "__call__", "predict", "set_annotations", "initialize", "_ensure_loaded", "score",
                    "to_disk", "from_disk", "to_bytes", "from_bytes", "fit", "doc_vectors")  # fmt: skip
"""Entry points whose messages name the component's factory (errors.speaking_for), wrapped in
each component class, inherited ones too; pipe: per batch, as a generator."""


class DirectPipe(PipelineFiles, Pipe):
    """A pretrained Hugging Face checkpoint as a spaCy component, no training needed.

    The model loads on first use (or in `initialize`). Its route (ROUTES) decides how the
    checkpoint is read; by default each Doc's sub-words are cut into windows (whole
    sentences: the Doc's own, or where it has none, spaCy's sentencizer rules applied
    without touching the Doc; over-long ones in overlapping strides), and all windows of a
    batch of Docs run through the model together.
    """

    FACTORY = "direct_ner"
    SETTINGS: Type[Settings] = EncoderSettings
    ROUTES: Tuple[Type[Route], ...] = (Route,)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        speaking_methods(cls, SPEAKING_METHODS)

    def __init__(self, vocab, name: Optional[str] = None, *, model: Optional[str], scorer: Optional[Callable] = None, **settings: Any) -> None:
        if not model:
            example = f'nlp.add_pipe("{self.FACTORY}", config={{"model": "{examples_for(self.FACTORY).model}"}})'
            raise DirectUseError(Errors.E001.format(example=example))
        self.vocab = vocab
        self.name = name or self.FACTORY
        self.model_name = str(model)
        unknown = sorted(set(settings) - set(self.SETTINGS.names()))
        if unknown:
            raise DirectUseError(Errors.E099.format(component=self.FACTORY, keys=unknown, allowed=list(self.SETTINGS.names())))
        self.settings = self.SETTINGS(**settings)
        self.scorer = scorer
        self.timings: Dict[str, float] = defaultdict(float)
        self._final_punct = frozenset(get_string_id(c) for c in Sentencizer.default_punct_chars)
        self._source: Union[str, Path] = self.model_name
        self._local_only = False  # reading a saved pipeline's model/ directory
        self._route: Optional[Route] = None
        self._restored: Dict[str, Any] = {}  # a saved pipeline's route state (cfg)
        self._model = None
        self._tokenizer = None
        self._runner: Any = None
        self._stored_dtype = None
        self._model_labels: Optional[List[str]] = None  # the checkpoint's, once known (model_labels)
        self._calibration_docs: List[Doc] = []  # initialize's, for engine "openvino" int8

    @classmethod
    def factory_name(cls) -> str:
        return cls.FACTORY

    @property
    def route(self) -> Route:
        """The route that reads the checkpoint: the first of ROUTES that reads it (decided
        from its files and the settings, once, and again for a saved pipeline)."""
        if self._route is None:
            with _LOAD_LOCK:  # one route, whichever thread asks first
                if self._route is None:
                    route = next(cls for cls in self.ROUTES if cls.reads(self))(self)
                    route.restore_state(self._restored)
                    self._route = route
        return self._route

    @property
    def model_labels(self) -> List[str]:
        """The checkpoint's labels in id order: once the model has loaded or a saved pipeline
        was read; before that `id2label`, or a local checkpoint's config.json, read when first
        asked (so `labels` and the meta.json spaCy writes know them before any weight loads).
        Empty where not known yet (a hub name) or where the checkpoint has none (an encoder)."""
        if self._model_labels is None:
            known = getattr(self.settings, "id2label", None) or (None if self._local_only else _local_labels(self._source))
            if known is None:
                return []
            self._model_labels = list(known)
        return self._model_labels

    def mapped_labels(self, labels: Optional[List[str]] = None) -> List[Optional[str]]:
        """The model's labels (or `labels`) after `label_map`, in id order; None where mapped away."""
        label_map = getattr(self.settings, "label_map", {})
        return [label_map.get(label, label) for label in (self.model_labels if labels is None else labels)]

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels the component writes, after `label_map` (its route's)."""
        return self.route.labels

    @property
    def runner(self) -> Any:
        """What runs the checkpoint's forward passes (loads the model on first use): a
        benchmark's handle on the encoder, its tokenizer and the model it runs."""
        return self._ensure_loaded()

    @property
    def hf_model(self) -> Any:
        """The checkpoint as loaded (a transformers or GLiNER model, or an ONNX graph's
        wrapper), before any engine or precision took it over; loads it on first use."""
        self._ensure_loaded()
        return self._model

    @property
    def hf_tokenizer(self) -> Any:
        """The checkpoint's Hugging Face tokenizer (loads the model on first use)."""
        self._ensure_loaded()
        return self._tokenizer

    # -- loading ---------------------------------------------------------------------

    def initialize(self, get_examples: Optional[Callable] = None, *, nlp: Optional[Language] = None) -> None:
        """Load the model now rather than on first use. With engine "openvino" and precision
        "int8", the examples' Docs (their texts; no annotation is read) calibrate the
        quantization: the model is converted and quantized again on them."""
        if get_examples is not None and self._calibrates():
            self._calibration_docs = [eg.predicted for eg in islice(get_examples(), CALIBRATION_DOCS)]
            self._runner = None  # quantized again, on these Docs
        self._ensure_loaded()

    def _calibrates(self) -> bool:
        """Whether loading quantizes with calibration data (not a saved pipeline's model)."""
        settings = self.settings
        if getattr(settings, "engine", "torch") != "openvino" or settings.precision != "int8":
            return False
        return not (self._local_only and (Path(self._source) / SAVED_OPENVINO_FILES["int8"]).is_file())

    def _ensure_loaded(self) -> Any:
        """The runner, loading the model once even when several threads call at once."""
        if self._runner is None:
            with _LOAD_LOCK, fork_safe_torch():
                if self._runner is None:
                    self._runner = self.route.load()
        return self._runner

    def load_head(self, task: str) -> Runner:
        """The checkpoint with the head `task` names (loading.TASKS), checked by the route,
        in a runner on the device, precision and engine set."""
        route, settings = self.route, self.settings
        loaded = load_checkpoint(
            self._source,
            task,
            self.FACTORY,
            route.check_labels,
            settings.revision,
            settings.trust_remote_code,
            local_only=self._local_only,
            check_head=getattr(settings, "check_head", True),
            tokenizer=None if self._local_only else settings.tokenizer,  # a saved pipeline holds its own
            id2label=getattr(settings, "id2label", None),
            subfolder=getattr(route, "subfolder", ""),
            onnx_file=None if self._local_only else settings.onnx_file,  # a saved pipeline holds model.onnx
        )
        if isinstance(loaded.model, OnnxClassifier) and settings.precision != "fp32":
            raise DirectUseError(Errors.E069.format(name=self._source, precision=settings.precision))
        device = resolve_device(settings.device)
        self._model, self._tokenizer = loaded.model.to(device), loaded.tokenizer
        self._stored_dtype, self._model_labels = loaded.stored_dtype, loaded.labels
        precision = "fp32" if settings.engine == "openvino" else settings.precision  # OpenVINO takes it over
        if task == "embedding":
            runner: Runner = EmbeddingRunner(
                loaded.model, loaded.tokenizer, device, precision,
                settings.forward_batch_size, settings.forward_batch_tokens, route.layout, self.saved_int8(),
            )  # fmt: skip
        else:
            runner = Runner(
                loaded.model, loaded.tokenizer, device, precision,
                settings.forward_batch_size, settings.forward_batch_tokens,
                getattr(settings, "pack_windows", False), self.saved_int8(),
                per_token=task == "token", multi_label=route.multi_label(loaded),
            )  # fmt: skip
        run_on_engine(runner, settings, self._source, self.saved_engine_dir(), self._calibration_windows)
        route.on_load(loaded, runner)
        return runner

    def _calibration_windows(self, runner: Runner) -> List[np.ndarray]:
        """The windows of initialize's Docs, special tokens included, as the route reads them."""
        docs = self._calibration_docs
        if not docs:
            return []
        ids, alignments = self.encode(docs, runner, self.route.reads_words)
        windows = [(i, w) for i, (doc, alignment) in enumerate(zip(docs, alignments)) for w in self.windows(doc, alignment, runner.content_length)]
        return [np.concatenate((runner.prefix, ids[i][start:end], runner.suffix)) for i, (start, end, _, _) in windows if end > start]

    # -- reading Docs ----------------------------------------------------------------

    def __call__(self, doc: Doc, **call_settings: Any) -> Doc:
        """Annotate one Doc; `call_settings` (the SETTINGS a call may change) override the
        config for this call (nlp(text, component_cfg={name: {...}})). A failure goes to the
        pipeline's error handler (nlp.set_error_handler; by default it raises), as in spaCy's
        own pipes; where the handler lets it pass, the Doc comes back as it came in."""
        self.settings.check_call_keys(self.FACTORY, call_settings)  # a setting no call may change raises, whatever the handler
        error_handler = self.get_error_handler()
        try:
            return self.set_annotations([doc], self.predict([doc], **call_settings))[0]
        except Exception as err:  # noqa: BLE001 - the error handler decides
            error_handler(self.name, self, [doc], err)
            return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128, **call_settings: Any) -> Iterator[Doc]:
        """Annotate `batch_size` Docs at a time (spaCy's batch contract: a Doc comes out
        before more are read); the windows of a batch are length-sorted together.
        `call_settings` as in __call__; a failing batch goes to the error handler."""
        with speaking_for(self.FACTORY):
            self.settings.check_call_keys(self.FACTORY, call_settings)  # a setting no call may change raises, whatever the handler
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                with speaking_for(self.FACTORY):  # around each batch's work, never across a yield
                    annotated = self.set_annotations(docs, self.predict(docs, **call_settings))
            except Exception as err:  # noqa: BLE001 - the error handler decides
                error_handler(self.name, self, docs, err)
                continue
            yield from annotated

    def predict(self, docs: List[Doc], **call_settings: Any) -> List[Any]:
        """What the route reads in each Doc; `call_settings` override the config for this call."""
        return self.route.predict(docs, self.settings.for_call(self.FACTORY, call_settings))

    def encode(self, docs: List[Doc], runner: Runner, words: bool = True) -> Tuple[List[np.ndarray], List[TokenAlignment]]:
        """Each Doc's sub-word ids and which pieces belong to which of its tokens: its tokens
        read as pre-split words, or (`words` false) its running text."""
        return word_pieces(docs, runner.encoder) if words else text_pieces(docs, runner.text_encoder)

    def piece_probs(self, docs: List[Doc], words: bool = True) -> Tuple[List[TokenAlignment], List[np.ndarray]]:
        """A token classifier's probabilities for every sub-word of each Doc, (n_pieces,
        n_labels), each from the window where it is furthest from an edge."""
        runner = self._ensure_loaded()
        clock = time.perf_counter()
        ids, alignments = self.encode(docs, runner, words)
        doc_windows = [self.windows(doc, alignment, runner.content_length) for doc, alignment in zip(docs, alignments)]
        self._tick("tokenize", clock)
        window_probs = read_windows(doc_windows, lambda flat: self.forward(runner, ids, flat))
        n_labels = len(self._model_labels)
        doc_probs = [np.zeros((len(doc_ids), n_labels), dtype=np.float32) for doc_ids in ids]
        for probs, windows, outputs in zip(doc_probs, doc_windows, window_probs):
            for (start, _, core_start, core_end), window_out in zip(windows, outputs):
                probs[core_start:core_end] = window_out[core_start - start : core_end - start]
        return alignments, doc_probs

    def forward(self, runner: Runner, ids: List[np.ndarray], windows: List[Tuple[int, Window]]) -> List[Any]:
        """What the runner gives for each (Doc index, window)."""
        clock = time.perf_counter()
        with fork_safe_torch():
            outputs = runner.predict([ids[i][start:end] for i, (start, end, _, _) in windows])
        self._tick("forward", clock)
        return outputs

    def windows(self, doc: Doc, alignment: TokenAlignment, max_length: int) -> List[Window]:
        """The Doc's windows of sub-words (window_mode: whole sentences, or strides)."""
        size, overlap = self.settings.window_shape(max_length)
        n_pieces = len(alignment.piece_tokens)
        if self.settings.window_mode == "strided":
            return strided_windows(0, n_pieces, size, overlap)
        starts = np.searchsorted(alignment.piece_tokens, self.sentence_starts(doc), side="left")
        return sentence_windows(starts, n_pieces, size, overlap, self.settings.max_sentences_per_window)

    def sentence_starts(self, doc: Doc) -> np.ndarray:
        """The Doc's sentence starts, or guesses by spaCy's sentencizer rules (not written to the Doc)."""
        if doc.has_annotation("SENT_START"):
            return np.array([sent.start for sent in doc.sents], dtype=np.int64)
        return guess_sentence_starts(doc, self._final_punct)

    def _tick(self, stage: str, since: float) -> None:
        self.timings[stage] += time.perf_counter() - since



def _local_labels(model: Union[str, Path]) -> Optional[List[str]]:
    """A local checkpoint's labels from its config.json, so `labels` (and meta.json, which
    spaCy writes before the components) are known before the weights load. None for a
    hub name, or a config that loading will refuse with the full error."""
    path = Path(model).expanduser()
    try:
        return read_labels(path) if (path / "config.json").is_file() else None
    except DirectUseError:
        return None
