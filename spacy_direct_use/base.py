"""The core every direct_* component shares: a fine-tuned Hugging Face checkpoint loaded once
(lazily, thread-safe, fork-safe), its device and precision, the Doc read as pre-split
words in sub-word windows (nothing truncated), batched forward passes, spaCy's batch
contract, and serialization with the weights inside the pipeline.

A component subclasses DirectPipe and adds only its task: which head it loads (`TASK`),
which labels it accepts, and what it writes to the Doc.
"""
import logging
import threading
import time
from collections import defaultdict
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import srsly
import torch
from spacy.language import Language
from spacy.pipeline import Pipe, Sentencizer
from spacy.strings import get_string_id
from spacy.tokens import Doc
from spacy.util import from_disk as util_from_disk
from spacy.util import make_tempdir, minibatch
from spacy.util import to_disk as util_to_disk

from .alignment import TokenAlignment, doc_words, text_pieces
from .errors import DirectUseError, Errors, examples_for, speaking_for, speaking_methods
from .inference import DEFAULT_BATCH_TOKENS, PRECISIONS, ClassifierRunner, encode_batch, fork_safe_torch
from .embedding import EmbeddingRunner, SentenceLayout, read_sentence_layout
from .int8 import SAVED_FILE as SAVED_INT8_FILE
from .int8 import Int8Classifier
from .onnx_graph import SAVED_FILE as SAVED_ONNX_FILE
from .openvino_engine import ENGINES, OpenVinoModel, openvino_model
from .openvino_engine import SAVED_FILES as SAVED_OPENVINO_FILES
from .onnx_graph import OnnxClassifier
from .loading import LoadedModel, load_classifier, quiet_transformers, read_labels, resolve_device
from .manifest import MANIFEST_FILE, verify_manifest, write_manifest
from .windows import WINDOW_MODES, Window, guess_sentence_starts, sentence_windows, strided_windows

logger = logging.getLogger("spacy_direct_use")
CALIBRATION_DOCS = 300
"""At most this many of initialize's Docs calibrate int8 (engine "openvino")."""
MIN_CALIBRATION_WINDOWS = 16
"""Fewer windows than this (no examples, or spaCy's own placeholder Doc "x y z" from a bare
nlp.initialize()) quantize the weights only: activation ranges from so little text would
be worse than none."""

_LOAD_LOCK = threading.Lock()
"""Held while a model loads: one lock for all instances, as spaCy pickles a Pipe's
__dict__ (spawned nlp.pipe workers) and a lock cannot be pickled; loads are rare."""

SPEAKING_METHODS = ("__init__", "__call__", "predict", "set_annotations", "initialize", "_ensure_loaded", "score",
                    "to_disk", "from_disk", "to_bytes", "from_bytes")  # fmt: skip
"""Entry points whose messages name the component's factory (errors.speaking_for); pipe: per batch."""

SAVED_TOP_FILES = ("cfg", MANIFEST_FILE)
"""The files to_disk writes beside the model/ directory."""

SHARED_CONFIG: Dict[str, Any] = {
    "model": None,
    "revision": None,
    "tokenizer": None,
    "id2label": None,
    "forward_batch_size": 128,
    "forward_batch_tokens": None,
    "window_size": 128,
    "window_overlap": 16,
    "window_mode": "sentences",
    "max_sentences_per_window": 1,
    "label_map": {},
    "device": None,
    "precision": "fp32",
    "trust_remote_code": False,
    "check_head": True,
    "onnx_file": None,
    "engine": "torch",
}
"""The settings every direct_* component has (each factory may change the defaults)."""


class DirectPipe(Pipe):
    """A pretrained Hugging Face classifier as a spaCy component, no training needed.

    The model loads on first use (or in `initialize`). Each Doc's non-whitespace
    tokens are the model's pre-split words; its sub-words are cut into windows (by
    default whole sentences: the Doc's own, or where it has none, spaCy's
    sentencizer rules applied without touching the Doc; over-long ones in
    overlapping strides), and all windows of a batch of Docs run through the
    model together.
    """

    TASK = "token"
    """The head to load: "token", "sequence" or "embedding" (loading.TASKS)."""
    CALL_SETTINGS: Tuple[str, ...] = ()
    """Settings a call may change (nlp.pipe / nlp(...) with component_cfg)."""
    DEFAULT_CONFIG: Dict[str, Any] = SHARED_CONFIG

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        speaking_methods(cls, SPEAKING_METHODS)

    def __init__(self, vocab, name: str, *, model: Optional[str], scorer: Optional[Callable] = None, **cfg) -> None:
        if not model:
            example = f'nlp.add_pipe("{self.factory_name()}", config={{"model": "{examples_for(self.factory_name()).model}"}})'
            raise DirectUseError(Errors.E001.format(example=example))
        self.vocab = vocab
        self.name = name
        settings = {k: v for k, v in {**SHARED_CONFIG, **self.DEFAULT_CONFIG}.items() if k not in ("scorer", "ents_filter")}
        self.cfg = dict(settings, **cfg, model=str(model))
        self.scorer = scorer
        validate_shared_settings(self.cfg)
        self.timings: Dict[str, float] = defaultdict(float)
        self._final_punct = frozenset(get_string_id(c) for c in Sentencizer.default_punct_chars)
        self._source: Union[str, Path] = str(model)
        self._local_only = False
        self._model = None
        self._tokenizer = None
        self._runner: Optional[ClassifierRunner] = None
        self._stored_dtype = None
        self._layout: Optional[SentenceLayout] = None  # how an encoder's output becomes one vector (embedding task)
        self._model_labels: Optional[List[str]] = None  # the checkpoint's, once known (model_labels)
        self._calibration_docs: List[Doc] = []  # initialize's, for engine "openvino" int8

    @classmethod
    def factory_name(cls) -> str:
        return "direct_ner"

    @property
    def model_labels(self) -> List[str]:
        """The checkpoint's labels in id order: once the model has loaded or a saved pipeline
        was read; before that `id2label`, or a local checkpoint's config.json, read when first
        asked (so `labels` and the meta.json spaCy writes know them before any weight loads).
        Empty where not known yet (a hub name)."""
        if self._model_labels is None:
            known = self.cfg["id2label"] or (None if self._local_only else _local_labels(self.cfg["model"]))
            if known is None:
                return []
            self._model_labels = list(known)
        return self._model_labels

    @property
    def runner(self):
        """What runs the checkpoint's forward passes (loads the model on first use): a
        benchmark's handle on the encoder, its tokenizer and the model it runs."""
        return self._ensure_loaded()

    @property
    def hf_model(self):
        """The checkpoint as loaded (a transformers or GLiNER model, or an ONNX graph's
        wrapper), before any engine or precision took it over; loads it on first use."""
        self._ensure_loaded()
        return self._model

    @property
    def hf_tokenizer(self):
        """The checkpoint's Hugging Face tokenizer (loads the model on first use)."""
        self._ensure_loaded()
        return self._tokenizer

    # -- what a component adds ----------------------------------------------------------

    def check_labels(self, labels: List[str], name: str) -> None:
        """Raise a DirectUseError for labels this component cannot use (before weights load)."""

    def task(self) -> str:
        """The head to load for this component's settings (TASK unless a component decides)."""
        return self.TASK

    def multi_label(self, loaded: LoadedModel) -> bool:
        """Whether the labels are independent (sigmoid) rather than exclusive (softmax)."""
        return False

    def on_load(self, loaded: LoadedModel, runner: ClassifierRunner) -> None:
        """Called once the model has loaded (e.g. to decide how to read its labels)."""

    def saved_state(self) -> Dict[str, Any]:
        """What the loaded model decided that config.cfg does not hold (saved in `cfg`)."""
        return {}

    def restore_state(self, state: Dict[str, Any]) -> None:
        """Take back what `saved_state` returned."""

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
        return self.cfg["engine"] == "openvino" and self.cfg["precision"] == "int8" and self._saved_openvino() is None

    def _ensure_loaded(self) -> ClassifierRunner:
        """The runner, loading the model once even when several threads call at once."""
        if self._runner is None:
            with _LOAD_LOCK, fork_safe_torch():
                if self._runner is None:
                    self._runner = self._load()
        return self._runner

    def _load(self) -> ClassifierRunner:
        task = self.task()
        if task == "embedding" and self._layout is None:
            self._layout = read_sentence_layout(
                str(self._source), self.cfg["revision"], self._local_only,
                self.cfg.get("pooling"), self.cfg.get("normalize"),
            )  # fmt: skip
        loaded = load_classifier(
            self._source,
            task,
            self.factory_name(),
            self.check_labels,
            self.cfg["revision"],
            self.cfg["trust_remote_code"],
            local_only=self._local_only,
            check_head=self.cfg["check_head"],
            tokenizer=None if self._local_only else self.cfg["tokenizer"],  # a saved pipeline holds its own
            id2label=self.cfg["id2label"],
            subfolder=self._layout.subfolder if self._layout and not self._local_only else "",
            onnx_file=None if self._local_only else self.cfg["onnx_file"],  # a saved pipeline holds model.onnx
        )
        if isinstance(loaded.model, OnnxClassifier) and self.cfg["precision"] != "fp32":
            raise DirectUseError(Errors.E069.format(name=self._source, precision=self.cfg["precision"]))
        device = resolve_device(self.cfg["device"])
        self._model, self._tokenizer = loaded.model.to(device), loaded.tokenizer
        self._stored_dtype, self._model_labels = loaded.stored_dtype, loaded.labels
        if task == "embedding":
            runner: ClassifierRunner = EmbeddingRunner(
                loaded.model, loaded.tokenizer, device, self._torch_precision,
                self.cfg["forward_batch_size"], self.cfg["forward_batch_tokens"], self._layout, self._saved_int8(),
            )  # fmt: skip
            self._use_engine(runner)
            self.on_load(loaded, runner)
            return runner
        runner = ClassifierRunner(
            loaded.model,
            loaded.tokenizer,
            device,
            self._torch_precision,
            self.cfg["forward_batch_size"],
            self.cfg["forward_batch_tokens"],
            self.cfg.get("pack_windows", False),  # token heads only (ner, tagger)
            self._saved_int8(),
            per_token=self.TASK == "token",
            multi_label=self.multi_label(loaded),
        )
        self._use_engine(runner)
        self.on_load(loaded, runner)
        return runner

    @property
    def _torch_precision(self) -> str:
        """The precision the runner's torch model runs in: fp32 where another engine takes it over."""
        return "fp32" if self.cfg["engine"] == "openvino" else self.cfg["precision"]

    def _use_engine(self, runner: ClassifierRunner) -> None:
        """Run the model on the `engine` setting's runtime: OpenVINO converts (and for int8
        quantizes, calibrated on initialize's Docs) the torch model the runner holds."""
        if self.cfg["engine"] != "openvino":
            return
        if not isinstance(runner.model, torch.nn.Module):  # a checkpoint shipped as an ONNX graph
            raise DirectUseError(Errors.E079.format(engine="openvino", what=f"'{self._source}', shipped as an ONNX graph", fix='ONNX Runtime runs it as shipped: leave engine at "torch".'))
        saved = self._saved_openvino()
        calibration = self._calibration_inputs(runner) if self._calibrates() else None
        if calibration is not None and len(calibration) < MIN_CALIBRATION_WINDOWS:
            logger.warning(
                "%s: engine openvino, precision int8 with %d calibration windows (fewer than %d): int8 weights only. "
                "Calibrate on a few hundred of your sentences: nlp.initialize(lambda: examples)",
                self.factory_name(), len(calibration), MIN_CALIBRATION_WINDOWS,
            )
            calibration = None
        output = "last_hidden_state" if runner.ENCODER else "logits"
        runner.use_model(openvino_model(runner.model, self.cfg["precision"], output, calibration, saved, runner.pad_id, runner.mask_kind))

    def _calibration_inputs(self, runner: ClassifierRunner) -> List[np.ndarray]:
        """The windows of initialize's Docs, special tokens included, as this component reads them."""
        docs = self._calibration_docs
        if not docs:
            return []
        ids, alignments = (self._encode if self.reads_words else self._encode_text)(docs, runner)
        windows = [(i, w) for i, (doc, alignment) in enumerate(zip(docs, alignments)) for w in self._windows(doc, alignment, runner.content_length)]
        return [np.concatenate((runner.prefix, ids[i][start:end], runner.suffix)) for i, (start, end, _, _) in windows if end > start]

    @property
    def reads_words(self) -> bool:
        """Whether the model reads the Doc's tokens as pre-split words (token classifiers), not
        its running text."""
        return self.TASK == "token"

    def _saved_openvino(self) -> Optional[Path]:
        """The OpenVINO model a saved pipeline holds for this precision, if it runs on OpenVINO."""
        saved = Path(self._source) / SAVED_OPENVINO_FILES.get(self.cfg["precision"], "")
        if self.cfg["engine"] == "openvino" and self._local_only and saved.is_file():
            return saved
        return None

    def _saved_int8(self) -> Optional[bytes]:
        """The int8 graph a saved pipeline holds, when it runs in int8."""
        saved = Path(self._source) / SAVED_INT8_FILE
        if self.cfg["precision"] == "int8" and self._local_only and saved.is_file():
            return saved.read_bytes()
        return None

    # -- reading Docs ----------------------------------------------------------------

    def __call__(self, doc: Doc, **call_settings: Any) -> Doc:
        """Annotate one Doc; `call_settings` (CALL_SETTINGS) override the config for this call
        (nlp(text, component_cfg={name: {...}})). A failure goes to the pipeline's error
        handler (nlp.set_error_handler; by default it raises), as in spaCy's own pipes; where
        the handler lets it pass, the Doc comes back as it came in."""
        self._check_call_settings(call_settings)
        error_handler = self.get_error_handler()
        try:
            return self.set_annotations([doc], self.predict([doc], **call_settings))[0]
        except Exception as err:  # noqa: BLE001 - the error handler decides
            error_handler(self.name, self, [doc], err)
            return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128, **call_settings: Any) -> Iterator[Doc]:
        """Annotate `batch_size` Docs at a time (spaCy's batch contract: a Doc comes out
        before more are read); the windows of a batch are length-sorted together.
        `call_settings` as in __call__ (nlp.pipe(texts, component_cfg={name: {...}})); a
        failing batch goes to the error handler, as in spaCy's own pipes."""
        with speaking_for(self.factory_name()):
            self._check_call_settings(call_settings)
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                with speaking_for(self.factory_name()):  # around each batch's work, never across a yield
                    annotated = self.set_annotations(docs, self.predict(docs, **call_settings))
            except Exception as err:  # noqa: BLE001 - the error handler decides
                error_handler(self.name, self, docs, err)
                continue
            yield from annotated

    def _check_call_settings(self, call_settings: Dict[str, Any]) -> None:
        unknown = sorted(set(call_settings) - set(self.CALL_SETTINGS))
        if unknown:
            raise DirectUseError(
                Errors.E065.format(component=self.factory_name(), keys=unknown, allowed=list(self.CALL_SETTINGS) or "none")
            )

    def _encode_text(self, docs: List[Doc], runner: ClassifierRunner) -> Tuple[List[np.ndarray], List[TokenAlignment]]:
        """Each Doc's sub-word ids read from its running text, and their tokens (alignment.text_pieces)."""
        return text_pieces(docs, runner.text_encoder)

    def _encode(self, docs: List[Doc], runner: ClassifierRunner) -> Tuple[List[np.ndarray], List[TokenAlignment]]:
        """Each Doc's sub-word ids, and which pieces belong to which of its tokens."""
        doc_words_list = [doc_words(doc) for doc in docs]
        encodings = encode_batch(runner.encoder, [words for words, _ in doc_words_list])
        ids = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
        alignments = [
            TokenAlignment.from_word_ids(np.asarray(encoding.word_ids, dtype=np.int64), word_tokens)
            for encoding, (_, word_tokens) in zip(encodings, doc_words_list)
        ]
        return ids, alignments

    def _mapped_labels(self, labels: Optional[List[str]] = None) -> List[Optional[str]]:
        """The model's labels (or `labels`) after `label_map`, in id order; None where mapped away."""
        return [self.cfg["label_map"].get(label, label) for label in (self.model_labels if labels is None else labels)]

    def _piece_probs(self, docs: List[Doc], running_text: bool = False) -> Tuple[List[TokenAlignment], List[np.ndarray]]:
        """A token classifier's probabilities for every sub-word of each Doc, (n_pieces,
        n_labels), each from the window where it is furthest from an edge; the sub-words of
        the Doc's tokens as pre-split words, or of its `running_text` (`_encode_text`)."""
        runner = self._ensure_loaded()
        clock = time.perf_counter()
        ids, alignments = (self._encode_text if running_text else self._encode)(docs, runner)
        windows = [self._windows(doc, alignment, runner.content_length) for doc, alignment in zip(docs, alignments)]
        flat = [(i, w) for i, doc_windows in enumerate(windows) for w in doc_windows]
        self._tick("tokenize", clock)
        window_probs = self._forward(runner, ids, flat)
        n_labels = len(self._model_labels)
        doc_probs = [np.zeros((len(doc_ids), n_labels), dtype=np.float32) for doc_ids in ids]
        for (i, (start, _, core_start, core_end)), probs in zip(flat, window_probs):
            doc_probs[i][core_start:core_end] = probs[core_start - start : core_end - start]
        return alignments, doc_probs

    def _forward(self, runner: ClassifierRunner, ids: List[np.ndarray], windows: List[Tuple[int, Window]]) -> List[np.ndarray]:
        """The probabilities of each (Doc index, window)."""
        clock = time.perf_counter()
        with fork_safe_torch():
            probs = runner.predict([ids[i][start:end] for i, (start, end, _, _) in windows])
        self._tick("forward", clock)
        return probs

    def _windows(self, doc: Doc, alignment: TokenAlignment, max_length: int) -> List[Window]:
        size, overlap = self._window_shape(max_length)
        n_pieces = len(alignment.piece_tokens)
        if self.cfg["window_mode"] == "strided":
            return strided_windows(0, n_pieces, size, overlap)
        starts = np.searchsorted(alignment.piece_tokens, self._sentence_starts(doc), side="left")
        return sentence_windows(starts, n_pieces, size, overlap, self.cfg["max_sentences_per_window"])

    def _window_shape(self, max_length: int) -> Tuple[int, int]:
        """(size, overlap) of windows, within the model's limit."""
        size = min(self.cfg["window_size"], max_length)
        return size, min(self.cfg["window_overlap"], size // 2)

    def _sentence_starts(self, doc: Doc) -> np.ndarray:
        """The Doc's sentence starts, or guesses by spaCy's sentencizer rules (not written to the Doc)."""
        if doc.has_annotation("SENT_START"):
            return np.array([sent.start for sent in doc.sents], dtype=np.int64)
        return guess_sentence_starts(doc, self._final_punct)

    def _tick(self, stage: str, since: float) -> None:
        self.timings[stage] += time.perf_counter() - since

    # -- serialization ---------------------------------------------------------------

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save the Hugging Face config, tokenizer and safetensors weights (settings live in
        config.cfg), then a manifest of every file saved (manifest.py)."""
        self._ensure_loaded()
        util_to_disk(path, {"model": self._save_model, "cfg": self._save_cfg}, exclude)
        write_manifest(Path(path))  # last: it covers whatever was written above

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "DirectPipe":
        """Load what to_disk wrote, once its manifest shows every file is as saved; the
        model itself loads lazily, offline, from safetensors."""
        verify_manifest(Path(path), exclude)  # before anything saved is read
        util_from_disk(path, {"model": self._use_saved_model, "cfg": self._read_cfg}, exclude)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with make_tempdir() as tmp:
            self.to_disk(tmp, exclude=exclude)
            files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "DirectPipe":
        files = srsly.msgpack_loads(bytes_data)
        with make_tempdir() as tmp:
            for name, data in files.items():
                target = tmp.joinpath(*_saved_file_parts(name))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(tmp, exclude=exclude)
            self._ensure_loaded()  # the temporary directory is about to vanish
        return self

    def _save_cfg(self, path: Path) -> None:
        layout = {"sentence_layout": self._layout.to_dict()} if self._layout else {}
        srsly.write_json(path, {**self.saved_state(), **layout})

    def _read_cfg(self, path: Path) -> None:
        if path.exists():  # pipelines saved before it was written have none
            state = srsly.read_json(path)
            if "sentence_layout" in state:
                self._layout = SentenceLayout.from_dict(state["sentence_layout"])
            self.restore_state(state)

    def _save_model(self, path: Path) -> None:
        """The checkpoint as loaded, its weights in the dtype they were stored in (an fp16
        checkpoint stays half the size), the tokenizer it was read with."""
        with quiet_transformers(progress_bar=False):
            if isinstance(self._model, torch.nn.Module):
                state = {key: _cast_floats(value, self._stored_dtype) for key, value in self._model.state_dict().items()}
                self._model.save_pretrained(path, state_dict=state, safe_serialization=True)
            else:  # a checkpoint shipped as an ONNX graph: its config and graph
                self._model.config.save_pretrained(path)
                (path / SAVED_ONNX_FILE).write_bytes(self._model.onnx_model)
        self._tokenizer.save_pretrained(path)
        if isinstance(self._runner.model, Int8Classifier):
            (path / SAVED_INT8_FILE).write_bytes(self._runner.model.onnx_model)
        if isinstance(self._runner.model, OpenVinoModel):
            self._runner.model.save(path, self.cfg["precision"])
        readable_by_all(path)

    def _use_saved_model(self, path: Path) -> None:
        if not (path / "model.safetensors").exists() and not (path / SAVED_ONNX_FILE).exists():
            raise DirectUseError(Errors.E012.format(path=path))
        self._source, self._local_only = path, True
        self._model = self._tokenizer = self._runner = None
        self._model_labels = [] if self.task() == "embedding" else read_labels(path)  # an encoder has no labels


speaking_methods(DirectPipe, SPEAKING_METHODS)


def _local_labels(model: str) -> Optional[List[str]]:
    """A local checkpoint's labels from its config.json, so `labels` (and meta.json, which
    spaCy writes before the components) are known before the weights load. None for a
    hub name, or a config that loading will refuse with the full error."""
    path = Path(model).expanduser()
    try:
        return read_labels(path) if (path / "config.json").is_file() else None
    except DirectUseError:
        return None


def readable_by_all(path: Path) -> None:
    """Saved files readable by others, as spaCy's own files are (safetensors writes 0600)."""
    for saved in path.rglob("*"):
        saved.chmod(saved.stat().st_mode | (0o555 if saved.is_dir() else 0o444))


def _cast_floats(tensor, dtype):
    """`tensor` in `dtype` if both are floating point, else as it is."""
    if dtype is not None and tensor.is_floating_point() and dtype.is_floating_point:
        return tensor.to(dtype)
    return tensor


def _saved_file_parts(name: str) -> Tuple[str, ...]:
    """The parts of a file name from to_bytes; anything else (an absolute path, '..',
    a backslash) could write outside the temporary directory and is refused."""
    path = PurePosixPath(name)
    parts = path.parts
    unsafe = any(p in ("", ".", "..") or "\\" in p or ":" in p for p in parts)
    known = (len(parts) >= 2 and parts[0] == "model") or (len(parts) == 1 and parts[0] in SAVED_TOP_FILES)
    if not known or path.is_absolute() or unsafe:
        raise DirectUseError(Errors.E026.format(name=name))
    return parts


def check_choice(cfg: Dict[str, Any], key: str, options: Tuple[str, ...]) -> None:
    """Refuse a setting that is not one of `options`."""
    if cfg[key] not in options:
        raise DirectUseError(Errors.E008.format(key=key, value=cfg[key], options=list(options), example=options[0]))


def validate_shared_settings(cfg: Dict[str, Any]) -> None:
    check_choice(cfg, "precision", tuple(PRECISIONS))
    check_choice(cfg, "engine", ENGINES)
    check_engine(cfg["engine"], cfg["precision"], cfg["device"])
    check_choice(cfg, "window_mode", WINDOW_MODES)
    for key in ("forward_batch_size", "forward_batch_tokens", "window_size", "max_sentences_per_window"):
        if key == "forward_batch_tokens" and cfg[key] is None:
            continue  # chosen by device
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            example = SHARED_CONFIG[key] or DEFAULT_BATCH_TOKENS["cpu"]
            raise DirectUseError(Errors.E008.format(key=key, value=cfg[key], options="a positive integer", example=example))
    if cfg["precision"] == "int8" and cfg["device"] is not None and not str(cfg["device"]).startswith("cpu"):
        raise DirectUseError(Errors.E035.format(device=cfg["device"]))  # a GPU from require_gpu: at load
    if not 0 <= cfg["window_overlap"] < cfg["window_size"]:
        raise DirectUseError(Errors.E011.format(overlap=cfg["window_overlap"], size=cfg["window_size"]))
    if cfg.get("threshold") is not None:
        check_threshold(cfg["threshold"])


def check_engine(engine: str, precision: str, device: Optional[str]) -> None:
    """Refuse what an engine cannot run: OpenVINO and ONNX Runtime run on the CPU;
    ONNX Runtime runs int8 (its fp32 and bf16 are the torch engine's); fp16 is a GPU's."""
    if engine == "torch":
        return
    if device is not None and not str(device).startswith("cpu"):
        raise DirectUseError(Errors.E079.format(engine=engine, what=f"on {device!r}", fix='It runs on the CPU: config={"device": "cpu"}, or engine "torch" on a GPU.'))
    if engine == "onnxruntime" and precision != "int8" or precision == "fp16":
        fix = 'Use precision "int8" on ONNX Runtime, or engine "openvino" (fp32, bf16, int8) or "torch".'
        raise DirectUseError(Errors.E079.format(engine=engine, what=f"precision {precision!r}", fix=fix))


def check_flag(key: str, value: Any) -> bool:
    """A true/false setting, as set or given per call (E008 otherwise: "false" is not false)."""
    if not isinstance(value, bool):
        raise DirectUseError(Errors.E008.format(key=key, value=value, options="true or false", example="false"))
    return value


def check_threshold(threshold: Any) -> float:
    """A threshold in [0, 1] (E008 otherwise), as set or given per call."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise DirectUseError(Errors.E008.format(key="threshold", value=threshold, options="a number in [0, 1]", example=0.5))
    return threshold
