"""The direct_ner pipeline component: a pretrained token classifier writing doc.ents."""
import logging
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import srsly
from spacy.language import Language
from spacy.pipeline import Pipe, Sentencizer
from spacy.pipeline.span_ruler import prioritize_existing_ents_filter, prioritize_new_ents_filter
from spacy.strings import get_string_id
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import make_tempdir, minibatch
from spacy.util import from_disk as util_from_disk
from spacy.util import to_disk as util_to_disk

from .alignment import AGGREGATIONS, TokenAlignment, aggregate, doc_words
from .decoding import extract_entities, viterbi
from .errors import ADD_PIPE_EXAMPLE, DirectNERError, Errors
from .inference import DEFAULT_BATCH_TOKENS, PRECISIONS, TokenClassifierRunner, encode_batch, fork_safe_torch
from .int8 import SAVED_FILE as SAVED_INT8_FILE
from .int8 import Int8TokenClassifier
from .labels import (
    PROBE_SENTENCES,
    TAG_SCHEMES,
    LabelScheme,
    map_types,
    normalize_tag_scheme,
    parse_label,
    scheme_from_labels,
    scheme_from_predictions,
)
from .loading import (
    LoadedModel,
    check_model_path,
    load_token_classifier,
    quiet_transformers,
    read_labels,
    resolve_device,
)
from .windows import WINDOW_MODES, guess_sentence_starts, sentence_windows, strided_windows

logger = logging.getLogger("spacy_direct_use")

_LOAD_LOCK = threading.Lock()
"""Held while a model loads: one lock for all instances, as spaCy pickles a Pipe's
__dict__ (spawned nlp.pipe workers) and a lock cannot be pickled; loads are rare."""

EntsFilter = Callable[[Iterable[Span], Iterable[Span]], List[Span]]

DEFAULT_CONFIG = {
    "model": None,
    "revision": None,
    "tokenizer": None,
    "id2label": None,
    "tag_scheme": "auto",
    "forward_batch_size": 128,
    "forward_batch_tokens": None,
    "pack_windows": True,
    "window_size": 128,
    "window_overlap": 16,
    "window_mode": "sentences",
    "max_sentences_per_window": 1,
    "aggregation": "first",
    "label_map": {},
    "overwrite_ents": False,
    "ents_filter": {"@misc": "spacy.prioritize_existing_ents_filter.v1"},
    "spans_key": "direct_ner",
    "threshold": 0.0,
    "device": None,
    "precision": "fp32",
    "trust_remote_code": False,
    "check_head": True,
    "scorer": {"@scorers": "spacy.ner_scorer.v1"},
}


@Language.factory(
    "direct_ner",
    default_config=DEFAULT_CONFIG,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_direct_ner(
    nlp: Language,
    name: str,
    model: Optional[str],
    revision: Optional[str],
    tokenizer: Optional[str],
    id2label: Optional[List[str]],
    tag_scheme: str,
    forward_batch_size: int,
    forward_batch_tokens: Optional[int],
    pack_windows: bool,
    window_size: int,
    window_overlap: int,
    window_mode: str,
    max_sentences_per_window: int,
    aggregation: str,
    label_map: Dict[str, Optional[str]],
    overwrite_ents: bool,
    ents_filter: EntsFilter,
    spans_key: Optional[str],
    threshold: float,
    device: Optional[str],
    precision: str,
    trust_remote_code: bool,
    check_head: bool,
    scorer: Optional[Callable],
) -> "DirectNER":
    """Run a fine-tuned Hugging Face token classifier and write its entities to doc.ents."""
    if model and not _deserializing():
        check_model_path(model)  # a typo fails here, not at the first document
    return DirectNER(
        nlp.vocab,
        name=name,
        model=model,
        revision=revision,
        tokenizer=tokenizer,
        id2label=id2label,
        tag_scheme=tag_scheme,
        forward_batch_size=forward_batch_size,
        forward_batch_tokens=forward_batch_tokens,
        pack_windows=pack_windows,
        window_size=window_size,
        window_overlap=window_overlap,
        window_mode=window_mode,
        max_sentences_per_window=max_sentences_per_window,
        aggregation=aggregation,
        label_map=label_map,
        overwrite_ents=overwrite_ents,
        ents_filter=ents_filter,
        spans_key=spans_key,
        threshold=threshold,
        device=device,
        precision=precision,
        trust_remote_code=trust_remote_code,
        check_head=check_head,
        scorer=scorer,
    )


def _deserializing() -> bool:
    """Whether spaCy is building the pipeline from a config (spacy.load, from_bytes,
    assemble): the model path in a saved config may rightly be gone, as the weights
    come from the saved pipeline. spaCy tells a factory nothing about its caller,
    so this looks for Language.from_config on the call stack."""
    target = Language.from_config.__func__.__code__
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is target:
            return True
        frame = frame.f_back
    return False


class DirectNER(Pipe):
    """Writes a pretrained token classifier's entities to doc.ents, no training needed.

    The model loads on first use (or in `initialize`). Each Doc's text is cut
    into sub-word windows (by default one sentence each: the Doc's own
    sentences, or where it has none, spaCy's sentencizer rules applied without
    touching the Doc; over-long sentences in overlapping strides), all windows of a batch of Docs run through the model
    together, and the probabilities are aligned to spaCy tokens and decoded
    with the label scheme's constraints.
    """

    def __init__(
        self,
        vocab,
        name: str = "direct_ner",
        *,
        model: Optional[str],
        scorer: Optional[Callable] = None,
        ents_filter: EntsFilter = prioritize_existing_ents_filter,
        **cfg,
    ) -> None:
        if not model:
            raise DirectNERError(Errors.E001.format(example=ADD_PIPE_EXAMPLE))
        self.vocab = vocab
        self.name = name
        settings = {k: v for k, v in DEFAULT_CONFIG.items() if k not in ("scorer", "ents_filter")}
        self.cfg = dict(settings, **cfg, model=str(model))
        self.scorer = scorer
        _validate_settings(self.cfg)
        self.ents_filter = _resolve_ents_filter(ents_filter, self.cfg["overwrite_ents"])
        self.timings: Dict[str, float] = defaultdict(float)
        self._final_punct = frozenset(get_string_id(c) for c in Sentencizer.default_punct_chars)
        self._source: Union[str, Path] = str(model)
        self._local_only = False
        self._model = None
        self._tokenizer = None
        self._runner: Optional[TokenClassifierRunner] = None
        self._stored_dtype = None
        self._scheme: Optional[LabelScheme] = None
        self._type_labels: List[Optional[str]] = []  # spaCy label per entity type id, after label_map
        self._decided_scheme: Optional[Dict[str, str]] = None  # tag_scheme "auto"'s decision, once made or read
        self._model_labels: Optional[List[str]] = self.cfg["id2label"] or _local_labels(self.cfg["model"])

    # -- loading ---------------------------------------------------------------------

    def initialize(self, get_examples: Optional[Callable] = None, *, nlp: Optional[Language] = None) -> None:
        """Load the model now rather than on first use."""
        self._ensure_loaded()

    def _ensure_loaded(self) -> TokenClassifierRunner:
        """The runner, loading the model once even when several threads call at once."""
        if self._runner is None:
            with _LOAD_LOCK, fork_safe_torch():
                if self._runner is None:
                    self._runner = self._load()
        return self._runner

    def _load(self) -> TokenClassifierRunner:
        loaded = load_token_classifier(
            self._source,
            self.cfg["revision"],
            self.cfg["trust_remote_code"],
            local_only=self._local_only,
            check_head=self.cfg["check_head"],
            tokenizer=None if self._local_only else self.cfg["tokenizer"],  # a saved pipeline holds its own
            id2label=self.cfg["id2label"],
            tag_scheme=self.cfg["tag_scheme"],
        )
        device = resolve_device(self.cfg["device"])
        self._model, self._tokenizer = loaded.model.to(device), loaded.tokenizer
        self._stored_dtype, self._model_labels = loaded.stored_dtype, loaded.labels
        runner = TokenClassifierRunner(
            loaded.model,
            loaded.tokenizer,
            device,
            self.cfg["precision"],
            self.cfg["forward_batch_size"],
            self.cfg["forward_batch_tokens"],
            self.cfg["pack_windows"],
            self._saved_int8(),
        )
        self._set_scheme(self._read_tag_scheme(loaded, runner))
        return runner

    def _read_tag_scheme(self, loaded: LoadedModel, runner: TokenClassifierRunner) -> LabelScheme:
        """The checkpoint's labels in the scheme it was trained with: the tag_scheme
        setting, else the decision a saved pipeline holds, else what the labels say,
        else what the model predicts on PROBE_SENTENCES (logged, and saved by to_disk)."""
        setting = normalize_tag_scheme(self.cfg["tag_scheme"])
        name = str(self._source)
        if setting != "auto":
            return LabelScheme.from_id2label(dict(enumerate(loaded.labels)), name, setting)
        if self._decided_scheme is None:
            scheme, why = scheme_from_labels(loaded.labels) or scheme_from_predictions(
                self._probe_paths(runner), loaded.labels
            )
            if scheme is None:  # IOB2: what every fine-tuning script's conversion gives
                scheme = "iob2"
                logger.warning(
                    "direct_ner: '%s' read as iob2 (tag_scheme auto: %s). If it was trained on IOB1 "
                    "tags (CoNLL-2003's own files), set config={'tag_scheme': 'iob1'}", name, why
                )
            else:
                logger.info("direct_ner: '%s' read as %s (tag_scheme auto: %s)", name, scheme, why)
            self._decided_scheme = {"tag_scheme": scheme, "why": why}
        return LabelScheme.from_id2label(dict(enumerate(loaded.labels)), name, self._decided_scheme["tag_scheme"])

    @staticmethod
    def _probe_paths(runner: TokenClassifierRunner) -> List[np.ndarray]:
        """The model's argmax tag for the first piece of each word of PROBE_SENTENCES."""
        encodings = encode_batch(runner.encoder, PROBE_SENTENCES)
        with fork_safe_torch():
            probs = runner.predict([np.asarray(e.ids, dtype=np.int64) for e in encodings])
        paths = []
        for encoding, sentence, piece_probs in zip(encodings, PROBE_SENTENCES, probs):
            word_ids = np.asarray(encoding.word_ids, dtype=np.int64)
            alignment = TokenAlignment.from_word_ids(word_ids, np.arange(len(sentence)))
            paths.append(piece_probs[alignment.group_starts].argmax(axis=1))
        return paths

    @property
    def tag_scheme(self) -> Optional[str]:
        """The scheme the model's tags are read in ("iob2", "iob1", "bioes", "io"): the
        tag_scheme setting, or what "auto" decided (known once the model has loaded or
        a saved pipeline was read); None while "auto" is undecided."""
        setting = normalize_tag_scheme(self.cfg["tag_scheme"])
        if setting != "auto":
            return setting
        return self._decided_scheme["tag_scheme"] if self._decided_scheme else None

    @property
    def tag_scheme_reason(self) -> Optional[str]:
        """Why "auto" chose `tag_scheme` (what the labels or the probe predictions showed)."""
        if normalize_tag_scheme(self.cfg["tag_scheme"]) != "auto":
            return "set in the config"
        return self._decided_scheme["why"] if self._decided_scheme else None

    def _saved_int8(self) -> Optional[bytes]:
        """The int8 graph a saved pipeline holds, when it runs in int8."""
        saved = Path(self._source) / SAVED_INT8_FILE
        if self.cfg["precision"] == "int8" and self._local_only and saved.is_file():
            return saved.read_bytes()
        return None

    def _set_scheme(self, scheme: LabelScheme) -> None:
        mapped = map_types(scheme.entity_types, self.cfg["label_map"])
        self._type_labels = [mapped[t] for t in scheme.entity_types]
        self._scheme = scheme

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels direct_ner writes, after `label_map`: known once the model
        has loaded (first use or nlp.initialize()), for a local checkpoint or `id2label`,
        or once a saved pipeline was read (spacy.load); reading it never loads weights."""
        types = {parse_label(label)[1] for label in self._model_labels or []} - {None}
        mapped = map_types(sorted(types), self.cfg["label_map"])
        return tuple(sorted({label for label in mapped.values() if label}))

    # -- processing ------------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        return self.set_annotations([doc], self.predict([doc]))[0]

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate `batch_size` Docs at a time (spaCy's batch contract: a Doc comes out
        before more are read); the windows of a batch are length-sorted together."""
        for docs in minibatch(stream, size=batch_size):
            yield from self.set_annotations(docs, self.predict(docs))

    def predict(self, docs: List[Doc]) -> List[List[Tuple[int, int, str, float]]]:
        """(start token, end token, label, confidence) for each Doc's entities."""
        runner = self._ensure_loaded()
        clock = time.perf_counter()
        doc_words_list = [doc_words(doc) for doc in docs]
        encodings = encode_batch(runner.encoder, [words for words, _ in doc_words_list])
        ids = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
        alignments = [
            TokenAlignment.from_word_ids(np.asarray(encoding.word_ids, dtype=np.int64), word_tokens)
            for encoding, (_, word_tokens) in zip(encodings, doc_words_list)
        ]
        windows = [self._windows(doc, alignment, runner.content_length) for doc, alignment in zip(docs, alignments)]
        flat = [(i, w) for i, doc_windows in enumerate(windows) for w in doc_windows]
        self._tick("tokenize", clock)
        clock = time.perf_counter()
        with fork_safe_torch():
            window_probs = runner.predict([ids[i][start:end] for i, (start, end, _, _) in flat])
        self._tick("forward", clock)
        clock = time.perf_counter()
        n_labels = len(self._scheme.labels)
        doc_probs = [np.zeros((len(doc_ids), n_labels), dtype=np.float32) for doc_ids in ids]
        for (i, (start, _, core_start, core_end)), probs in zip(flat, window_probs):
            doc_probs[i][core_start:core_end] = probs[core_start - start : core_end - start]
        predictions = [self._decode(alignment, probs) for alignment, probs in zip(alignments, doc_probs)]
        self._tick("decode", clock)
        return predictions

    def _windows(self, doc: Doc, alignment: TokenAlignment, max_length: int) -> List[Tuple[int, int, int, int]]:
        n_pieces = len(alignment.piece_tokens)
        size = min(self.cfg["window_size"], max_length)
        overlap = min(self.cfg["window_overlap"], size // 2)
        if self.cfg["window_mode"] == "strided":
            return strided_windows(0, n_pieces, size, overlap)
        starts = np.searchsorted(alignment.piece_tokens, self._sentence_starts(doc), side="left")
        return sentence_windows(starts, n_pieces, size, overlap, self.cfg["max_sentences_per_window"])

    def _sentence_starts(self, doc: Doc) -> np.ndarray:
        """The Doc's sentence starts, or guesses by spaCy's sentencizer rules (not written to the Doc)."""
        if doc.has_annotation("SENT_START"):
            return np.array([sent.start for sent in doc.sents], dtype=np.int64)
        return guess_sentence_starts(doc, self._final_punct)

    def _decode(self, alignment: TokenAlignment, probs: np.ndarray) -> List[Tuple[int, int, str, float]]:
        tokens = alignment.tokens
        if len(tokens) == 0:
            return []
        token_probs = aggregate(probs, alignment, self.cfg["aggregation"])
        path = viterbi(token_probs, self._scheme)
        entities = []
        for start, end, type_id, confidence in extract_entities(path, token_probs, self._scheme):
            label = self._type_labels[type_id]
            if label and confidence >= self.cfg["threshold"]:
                entities.append((int(tokens[start]), int(tokens[end - 1]) + 1, label, confidence))
        return entities

    def set_annotations(self, docs: List[Doc], predictions: List[List[Tuple[int, int, str, float]]]) -> List[Doc]:
        """Write entities to doc.ents (merged with existing ones by `ents_filter`) and
        scored spans to doc.spans."""
        clock = time.perf_counter()
        for doc, entities in zip(docs, predictions):
            spans = [Span(doc, start, end, label=label) for start, end, label, _ in entities]
            if self.cfg["spans_key"]:
                doc.spans[self.cfg["spans_key"]] = SpanGroup(
                    doc, name=self.cfg["spans_key"], spans=spans, attrs={"scores": [e[3] for e in entities]}
                )
            kept = self.ents_filter(list(doc.ents), spans)
            doc.set_ents(sorted(kept), outside=_uncovered_tokens(doc, kept), default="unmodified")
        self._tick("annotate", clock)
        return docs

    def _tick(self, stage: str, since: float) -> None:
        self.timings[stage] += time.perf_counter() - since

    # -- serialization ---------------------------------------------------------------

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save the Hugging Face config, tokenizer and safetensors weights (settings live in config.cfg)."""
        self._ensure_loaded()
        util_to_disk(path, {"model": self._save_model, "cfg": self._save_cfg}, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "DirectNER":
        """Load what to_disk wrote; the model itself loads lazily, offline, from safetensors."""
        util_from_disk(path, {"model": self._use_saved_model, "cfg": self._read_cfg}, exclude)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with make_tempdir() as tmp:
            self.to_disk(tmp, exclude=exclude)
            files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "DirectNER":
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
        """What the loaded model decided that config.cfg does not hold: the tag scheme."""
        srsly.write_json(path, {"tag_scheme": self._decided_scheme})

    def _read_cfg(self, path: Path) -> None:
        if path.exists():  # pipelines saved before the tag scheme was recorded have none
            self._decided_scheme = srsly.read_json(path).get("tag_scheme")

    def _save_model(self, path: Path) -> None:
        """The checkpoint as loaded, its weights in the dtype they were stored in (an fp16
        checkpoint stays half the size), the tokenizer it was read with."""
        state = {key: _cast_floats(value, self._stored_dtype) for key, value in self._model.state_dict().items()}
        with quiet_transformers(progress_bar=False):
            self._model.save_pretrained(path, state_dict=state, safe_serialization=True)
        self._tokenizer.save_pretrained(path)
        if isinstance(self._runner.model, Int8TokenClassifier):
            (path / SAVED_INT8_FILE).write_bytes(self._runner.model.onnx_model)
        for saved in path.iterdir():  # readable by others, as spaCy's own files are (safetensors writes 0600)
            saved.chmod(saved.stat().st_mode | 0o444)

    def _use_saved_model(self, path: Path) -> None:
        if not (path / "model.safetensors").exists():
            raise DirectNERError(Errors.E012.format(path=path))
        self._source, self._local_only = path, True
        self._model = self._tokenizer = self._runner = None
        self._model_labels = read_labels(path)


def _local_labels(model: str) -> Optional[List[str]]:
    """A local checkpoint's tags from its config.json, so `labels` (and meta.json, which
    spaCy writes before the components) are known before the weights load. None for a
    hub name, or a config that loading will refuse with the full error."""
    path = Path(model).expanduser()
    try:
        return read_labels(path) if (path / "config.json").is_file() else None
    except (KeyError, ValueError, TypeError, OSError):
        return None


def _cast_floats(tensor, dtype):
    """`tensor` in `dtype` if both are floating point, else as it is."""
    if dtype is not None and tensor.is_floating_point() and dtype.is_floating_point:
        return tensor.to(dtype)
    return tensor


def _resolve_ents_filter(ents_filter: EntsFilter, overwrite_ents: bool) -> EntsFilter:
    """How the model's entities merge with a Doc's: overwrite_ents=True means what it
    means in spaCy's entity_ruler (spacy.prioritize_new_ents_filter.v1)."""
    if not overwrite_ents or ents_filter is prioritize_new_ents_filter:
        return ents_filter
    if ents_filter is not prioritize_existing_ents_filter:
        raise DirectNERError(Errors.E025.format(ents_filter=getattr(ents_filter, "__name__", ents_filter)))
    return prioritize_new_ents_filter


def _uncovered_tokens(doc: Doc, kept: List[Span]) -> List[Span]:
    """The tokens of entities that ents_filter replaced, and no kept entity covers: they
    become outside, as spaCy's entity_ruler leaves them. Tokens no entity covered keep
    their state ("missing" stays missing)."""
    covered = np.zeros(len(doc), dtype=bool)
    for span in kept:
        covered[span.start : span.end] = True
    return [doc[i : i + 1] for ent in doc.ents for i in range(ent.start, ent.end) if not covered[i]]


SAVED_TOP_FILES = ("cfg",)
"""The files to_disk writes beside the model/ directory."""


def _saved_file_parts(name: str) -> Tuple[str, ...]:
    """The parts of a file name from to_bytes; anything else (an absolute path, '..',
    a backslash) could write outside the temporary directory and is refused."""
    path = PurePosixPath(name)
    parts = path.parts
    unsafe = any(p in ("", ".", "..") or "\\" in p or ":" in p for p in parts)
    known = (len(parts) >= 2 and parts[0] == "model") or (len(parts) == 1 and parts[0] in SAVED_TOP_FILES)
    if not known or path.is_absolute() or unsafe:
        raise DirectNERError(Errors.E026.format(name=name))
    return parts


def _validate_settings(cfg: dict) -> None:
    choices = {
        "aggregation": AGGREGATIONS,
        "precision": tuple(PRECISIONS),
        "window_mode": WINDOW_MODES,
        "tag_scheme": TAG_SCHEMES,
    }
    for key, options in choices.items():
        if cfg[key] not in options:
            raise DirectNERError(Errors.E008.format(key=key, value=cfg[key], options=list(options), example=options[0]))
    for key in ("forward_batch_size", "forward_batch_tokens", "window_size", "max_sentences_per_window"):
        if key == "forward_batch_tokens" and cfg[key] is None:
            continue  # chosen by device
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            example = DEFAULT_CONFIG[key] or DEFAULT_BATCH_TOKENS["cpu"]
            raise DirectNERError(Errors.E008.format(key=key, value=cfg[key], options="a positive integer", example=example))
    if cfg["precision"] == "int8" and cfg["device"] is not None and not str(cfg["device"]).startswith("cpu"):
        raise DirectNERError(Errors.E035.format(device=cfg["device"]))  # a GPU from require_gpu: at load
    if not 0 <= cfg["window_overlap"] < cfg["window_size"]:
        raise DirectNERError(Errors.E011.format(overlap=cfg["window_overlap"], size=cfg["window_size"]))
    if not 0.0 <= cfg["threshold"] <= 1.0:
        raise DirectNERError(Errors.E008.format(key="threshold", value=cfg["threshold"], options="a number in [0, 1]", example=0.5))
