"""direct_ner: a fine-tuned token classifier's entities in doc.ents, or, on a GLiNER
checkpoint, entities of the types you name (gliner_entities.py), with no training.

On the shared core (base.py), it adds how the labels are read (labels.py: the tag
scheme, decided once at load) and how probabilities become entities (decoding.py:
constrained Viterbi), and merges them with the Doc's own entities through spaCy's
`ents_filter` functions. Every entity found, with its score, goes to
doc.spans[spans_key]; doc.ents takes the best non-overlapping ones (GLiNER's nested
spans, with flat_ner false, overlap).
"""
import logging
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
from spacy.pipeline.span_ruler import prioritize_existing_ents_filter, prioritize_new_ents_filter
from spacy.tokens import Doc, Span, SpanGroup

from .alignment import AGGREGATIONS, TokenAlignment, aggregate
from .base import SHARED_CONFIG, DirectPipe, check_choice, check_flag, check_threshold, readable_by_all
from .consistency import reconcile
from .decoding import extract_entities, viterbi
from .errors import DirectUseError, Errors
from .gliner_entities import CPU_BATCH_WORDS, GlinerReader, best_flat, entity_labels, is_gliner_checkpoint, load_gliner
from .inference import DEFAULT_BATCH_TOKENS, ClassifierRunner, encode_batch, fork_safe_torch
from .labels import (
    PROBE_SENTENCES,
    TAG_SCHEMES,
    LabelScheme,
    check_labels,
    map_types,
    normalize_tag_scheme,
    parse_label,
    scheme_from_labels,
    scheme_from_predictions,
)
from .loading import GLINER_CONFIG, LoadedModel, quiet_transformers, resolve_device
from .running_text import ALIGNMENT_MODES, CharEntity, piece_entities, place_entities, trimmed_spans
from .zeroshot import call_labels, label_texts

logger = logging.getLogger("spacy_direct_use")

EntsFilter = Callable[[Iterable[Span], Iterable[Span]], List[Span]]
Entity = Tuple[int, int, str, float]  # start token, end token, label, confidence
DEFAULT_THRESHOLD = {"token": 0.0, "gliner": 0.5}
"""threshold null: no cut for a token classifier (its decoding decides), GLiNER's own 0.5."""

DEFAULT_CONFIG = {
    **SHARED_CONFIG,
    "tag_scheme": "auto",
    "pack_windows": True,
    "aggregation": "first",
    "alignment_mode": "tokens",
    "overwrite_ents": False,
    "ents_filter": {"@misc": "spacy.prioritize_existing_ents_filter.v1"},
    "spans_key": "direct_ner",
    "threshold": None,
    "labels": None,
    "flat_ner": True,
    "doc_consistency": False,
    "doc_consistency_keep": 0.8,
    "scorer": {"@scorers": "spacy.ner_scorer.v1"},
}


class DirectNER(DirectPipe):
    """Writes a pretrained token classifier's entities to doc.ents, no training needed.

    The probabilities of a batch's windows are aligned to spaCy tokens and decoded
    with the constraints of the tag scheme the checkpoint was trained with. On a GLiNER
    checkpoint (`route` "gliner"), the entities are GLiNER's spans of the types named
    in `labels` (gliner_entities.py).
    """

    TASK = "token"
    DEFAULT_CONFIG = DEFAULT_CONFIG
    CALL_SETTINGS = ("labels", "threshold", "flat_ner")

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
        super().__init__(vocab, name, model=model, scorer=scorer, **cfg)
        check_choice(self.cfg, "aggregation", AGGREGATIONS)
        check_choice(self.cfg, "tag_scheme", TAG_SCHEMES)
        check_choice(self.cfg, "alignment_mode", ALIGNMENT_MODES)
        self._check_running_text_settings()
        self.ents_filter = _resolve_ents_filter(ents_filter, self.cfg["overwrite_ents"])
        self._scheme: Optional[LabelScheme] = None
        self._type_labels: List[Optional[str]] = []  # spaCy label per entity type id, after label_map
        self._decided_scheme: Optional[Dict[str, str]] = None  # tag_scheme "auto"'s decision, once made or read
        self._labels = label_texts(self.cfg["labels"])  # GLiNER's entity types (label -> the text it reads)
        check_flag("flat_ner", self.cfg["flat_ner"])
        self._route: Optional[str] = None

    @classmethod
    def factory_name(cls) -> str:
        return "direct_ner"

    # -- the checkpoint: a token classifier or GLiNER ---------------------------------

    @property
    def route(self) -> str:
        """How the checkpoint is read: "token" (a token classifier's own labels) or "gliner"
        (a GLiNER checkpoint: the entity types named in `labels`); decided from its files."""
        if self._route is None:
            gliner = is_gliner_checkpoint(self._source, self.cfg["revision"], self._local_only)
            self._route = "gliner" if gliner else "token"
        return self._route

    @property
    def reads_running_text(self) -> bool:
        """Whether the checkpoint reads the Doc's running text (`alignment_mode` other than
        "tokens"; running_text.py) rather than its tokens as pre-split words."""
        return self.cfg["alignment_mode"] != "tokens"

    def _check_running_text_settings(self) -> None:
        """Token-level settings have no meaning where pieces of the running text are read."""
        if not self.reads_running_text:
            return
        token_level = [key for key, is_set in (("aggregation", self.cfg["aggregation"] != "first"), ("doc_consistency", self.cfg["doc_consistency"])) if is_set]
        if token_level:
            key = token_level[0]
            raise DirectUseError(Errors.E075.format(key=key, value=self.cfg[key], mode=self.cfg["alignment_mode"]))

    @property
    def reads_words(self) -> bool:
        return not self.reads_running_text

    def _load(self):
        if self.route == "gliner" and self.reads_running_text:
            raise DirectUseError(Errors.E074.format(name=self._source, mode=self.cfg["alignment_mode"]))
        if self.route == "gliner" and self.cfg["engine"] != "torch":
            fix = 'gliner runs it in torch: leave engine at "torch" (precision "bf16" runs on a CPU\'s bf16 units).'
            raise DirectUseError(Errors.E079.format(engine=self.cfg["engine"], what=f"the GLiNER checkpoint '{self._source}'", fix=fix))
        if self.route == "token":
            if self._labels is not None:
                self._refuse_labels(list(self._labels))
            return super()._load()
        device = resolve_device(self.cfg["device"])
        self._model = load_gliner(self._source, self.cfg["revision"], self._local_only, device, self.cfg["precision"])
        batch_words = self.cfg["forward_batch_tokens"] or (DEFAULT_BATCH_TOKENS["cuda"] if device.type == "cuda" else CPU_BATCH_WORDS)
        return GlinerReader(self._model, self.cfg["forward_batch_size"], batch_words)

    def _refuse_labels(self, labels: List[str]) -> None:
        own = sorted({parse_label(label)[1] for label in self.model_labels} - {None})
        raise DirectUseError(Errors.E072.format(name=self._source, own=own, labels=labels))

    def _save_model(self, path) -> None:
        if self.route == "token":
            return super()._save_model(path)
        model = self._model
        if self.cfg["precision"] != "fp32":  # saved as stored, not in the dtype (or int8) it runs in
            model = load_gliner(self._source, self.cfg["revision"], self._local_only, torch.device("cpu"), "fp32")
        with quiet_transformers(progress_bar=False):  # gliner's own layout: gliner_config.json, safetensors, tokenizer
            model.save_pretrained(path, safe_serialization=True)
        readable_by_all(path)

    def _use_saved_model(self, path) -> None:
        self._route = None  # decided again from the saved files
        if not (path / GLINER_CONFIG).is_file():
            return super()._use_saved_model(path)
        self._source, self._local_only, self._route = path, True, "gliner"
        self._model = self._tokenizer = self._runner = None

    # -- the model's labels ----------------------------------------------------------

    def check_labels(self, labels: List[str], name: str) -> None:
        check_labels(labels, name, self.cfg["tag_scheme"])

    def on_load(self, loaded: LoadedModel, runner: ClassifierRunner) -> None:
        self._set_scheme(self._read_tag_scheme(loaded, runner))

    def saved_state(self) -> Dict[str, object]:
        return {"tag_scheme": self._decided_scheme}

    def restore_state(self, state: Dict[str, object]) -> None:
        self._decided_scheme = state.get("tag_scheme")

    def _read_tag_scheme(self, loaded: LoadedModel, runner: ClassifierRunner) -> LabelScheme:
        """The checkpoint's labels in the scheme it was trained with: the tag_scheme
        setting, else the decision a saved pipeline holds, else what the labels say,
        else what the model predicts on PROBE_SENTENCES (logged, and saved by to_disk)."""
        name = str(self._source)
        setting = normalize_tag_scheme(self.cfg["tag_scheme"])
        if setting == "auto":
            if self._decided_scheme is None:
                self._decided_scheme = self._decide_tag_scheme(name, loaded.labels, runner)
            setting = self._decided_scheme["tag_scheme"]
        return LabelScheme.from_id2label(dict(enumerate(loaded.labels)), name, setting)

    def _decide_tag_scheme(self, name: str, labels: List[str], runner: ClassifierRunner) -> Dict[str, str]:
        """tag_scheme "auto": what the labels say, else what the model predicts on PROBE_SENTENCES."""
        scheme, why = scheme_from_labels(labels) or scheme_from_predictions(self._probe_paths(runner), labels)
        if scheme is None:  # IOB2: what every fine-tuning script's conversion gives
            scheme = "iob2"
            logger.warning(
                "direct_ner: '%s' read as iob2 (tag_scheme auto: %s). If it was trained on IOB1 "
                "tags (CoNLL-2003's own files), set config={'tag_scheme': 'iob1'}", name, why
            )
        else:
            logger.info("direct_ner: '%s' read as %s (tag_scheme auto: %s)", name, scheme, why)
        return {"tag_scheme": scheme, "why": why}

    @staticmethod
    def _probe_paths(runner: ClassifierRunner) -> List[np.ndarray]:
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

    def _set_scheme(self, scheme: LabelScheme) -> None:
        mapped = map_types(scheme.entity_types, self.cfg["label_map"])
        self._type_labels = [mapped[t] for t in scheme.entity_types]
        self._scheme = scheme

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels direct_ner writes, after `label_map`: the `labels` setting's (a
        GLiNER checkpoint), else the model's, known once the model has loaded (first use
        or nlp.initialize()), for a local checkpoint or `id2label`, or once a saved
        pipeline was read (spacy.load); reading it never loads weights."""
        if self._labels is not None:
            return tuple(sorted({label for label in self._mapped_labels(list(self._labels)) if label}))
        types = {parse_label(label)[1] for label in self.model_labels} - {None}
        mapped = map_types(sorted(types), self.cfg["label_map"])
        return tuple(sorted({label for label in mapped.values() if label}))

    # -- processing ------------------------------------------------------------------

    def predict(self, docs: List[Doc], labels=None, threshold: Optional[float] = None, flat_ner: Optional[bool] = None) -> List[List[Entity]]:
        """(start token, end token, label, confidence) for each Doc's entities; `labels`,
        `threshold` and `flat_ner` override the config for this call (CALL_SETTINGS)."""
        runner = self._ensure_loaded()
        threshold = self._threshold(threshold)
        if self.route == "gliner":
            return self._read_gliner(runner, docs, call_labels(self._labels, labels), threshold, flat_ner)
        if labels is not None:
            self._refuse_labels(list(label_texts(labels)))
        if self.reads_running_text:
            return self._read_running_text(docs, threshold)
        alignments, doc_probs = self._piece_probs(docs)
        clock = time.perf_counter()
        predictions = [
            self._decode(doc, alignment, probs, threshold) for doc, alignment, probs in zip(docs, alignments, doc_probs)
        ]
        self._tick("decode", clock)
        return predictions

    def _threshold(self, given: Optional[float]) -> float:
        threshold = self.cfg["threshold"] if given is None else given
        return DEFAULT_THRESHOLD[self.route] if threshold is None else check_threshold(threshold)

    def _read_gliner(self, reader: GlinerReader, docs: List[Doc], labels, threshold: float, flat_ner: Optional[bool]) -> List[List[Entity]]:
        """GLiNER's entities of this call's types, after label_map (a type mapped to None is dropped)."""
        flat_ner = self.cfg["flat_ner"] if flat_ner is None else check_flag("flat_ner", flat_ner)
        labels = entity_labels(labels, self._source)
        clock = time.perf_counter()
        with fork_safe_torch():
            found = reader.read(docs, [self._sentence_starts(doc) for doc in docs], labels, threshold, flat_ner)
        self._tick("forward", clock)
        mapped = dict(zip(labels, self._mapped_labels(list(labels))))
        return [[(start, end, mapped[label], score) for start, end, label, score in doc_entities if mapped[label]] for doc_entities in found]

    def _read_running_text(self, docs: List[Doc], threshold: float) -> List[List[CharEntity]]:
        """(start char, end char, label, confidence) of each Doc's entities, read on its running
        text (running_text.piece_entities); set_annotations places them on tokens."""
        alignments, doc_probs = self._piece_probs(docs, running_text=True)
        clock = time.perf_counter()
        predictions = []
        for doc, alignment, probs in zip(docs, alignments, doc_probs):
            found = piece_entities(probs, trimmed_spans(doc.text, alignment.char_offsets), doc.text, self._scheme)
            labelled = ((start, end, self._type_labels[type_id], confidence) for start, end, type_id, confidence in found)
            predictions.append([entity for entity in labelled if entity[2] and entity[3] >= threshold])
        self._tick("decode", clock)
        return predictions

    def _decode(self, doc: Doc, alignment: TokenAlignment, probs: np.ndarray, threshold: float) -> List[Entity]:
        tokens = alignment.tokens
        if len(tokens) == 0:
            return []
        token_probs = aggregate(probs, alignment, self.cfg["aggregation"])
        path = viterbi(token_probs, self._scheme)
        mentions = extract_entities(path, token_probs, self._scheme)
        if self.cfg["doc_consistency"]:
            words = [doc[int(i)].text for i in tokens]
            type_probs = token_probs @ self._scheme.type_matrix
            mentions = reconcile(words, mentions, type_probs, self.cfg["doc_consistency_keep"])
        entities = []
        for start, end, type_id, confidence in mentions:
            label = self._type_labels[type_id]
            if label and confidence >= threshold:
                entities.append((int(tokens[start]), int(tokens[end - 1]) + 1, label, confidence))
        return entities

    def set_annotations(self, docs: List[Doc], predictions: List[List[Entity]]) -> List[Doc]:
        """Write every entity with its score to doc.spans[spans_key], and the best
        non-overlapping ones to doc.ents (merged with existing ones by `ents_filter`)."""
        clock = time.perf_counter()
        for doc, entities in zip(docs, predictions):
            if self.reads_running_text:  # character spans, placed on tokens (split where asked)
                entities = place_entities(doc, entities, self.cfg["alignment_mode"])
            if self.cfg["spans_key"]:
                doc.spans[self.cfg["spans_key"]] = SpanGroup(
                    doc, name=self.cfg["spans_key"], spans=[Span(doc, s, e, label=label) for s, e, label, _ in entities],
                    attrs={"scores": [e[3] for e in entities]},
                )  # fmt: skip
            spans = [Span(doc, start, end, label=label) for start, end, label, _ in best_flat(entities)]
            kept = self.ents_filter(list(doc.ents), spans)
            doc.set_ents(sorted(kept), outside=_uncovered_tokens(doc, kept), default="unmodified")
        self._tick("annotate", clock)
        return docs


def _resolve_ents_filter(ents_filter: EntsFilter, overwrite_ents: bool) -> EntsFilter:
    """How the model's entities merge with a Doc's: overwrite_ents=True means what it
    means in spaCy's entity_ruler (spacy.prioritize_new_ents_filter.v1)."""
    if not overwrite_ents or ents_filter is prioritize_new_ents_filter:
        return ents_filter
    if ents_filter is not prioritize_existing_ents_filter:
        raise DirectUseError(Errors.E025.format(ents_filter=getattr(ents_filter, "__name__", ents_filter)))
    return prioritize_new_ents_filter


def _uncovered_tokens(doc: Doc, kept: List[Span]) -> List[Span]:
    """The tokens of entities that ents_filter replaced, and no kept entity covers: they
    become outside, as spaCy's entity_ruler leaves them. Tokens no entity covered keep
    their state ("missing" stays missing)."""
    covered = np.zeros(len(doc), dtype=bool)
    for span in kept:
        covered[span.start : span.end] = True
    return [doc[i : i + 1] for ent in doc.ents for i in range(ent.start, ent.end) if not covered[i]]

