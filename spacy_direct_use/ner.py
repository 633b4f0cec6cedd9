"""direct_ner: a fine-tuned token classifier's entities in doc.ents, or, on a GLiNER
checkpoint, entities of the types you name (gliner_entities.py), with no training.

On the shared core (base.py), it adds how the labels are read (labels.py: the tag
scheme, decided once at load) and how probabilities become entities (decoding.py:
constrained Viterbi), and merges them with the Doc's own entities through spaCy's
`ents_filter` functions. Every entity found, with its score, goes to
doc.spans[spans_key]; doc.ents takes the best non-overlapping ones (GLiNER's nested
spans, with flat_ner false, overlap).
"""
import dataclasses
import logging
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
from spacy.pipeline.span_ruler import prioritize_existing_ents_filter, prioritize_new_ents_filter
from spacy.tokens import Doc, Span, SpanGroup

from .alignment import AGGREGATIONS, TokenAlignment, aggregate
from .base import DirectPipe
from .consistency import reconcile
from .decoding import extract_entities, viterbi
from .errors import DirectUseError, Errors
from .gliner_entities import Entity, GlinerEntities, best_flat, named_entity_labels
from .inference import Runner, encode_batch
from .forking import fork_safe_torch
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
from .loading import LoadedModel
from .route import Route
from .running_text import ALIGNMENT_MODES, CharEntity, piece_entities, place_entities, trimmed_spans
from .settings import ClassifierSettings, LabelsSetting, choice, flag, fraction, label_texts, labels_check, optional, setting

logger = logging.getLogger("spacy_direct_use")

EntsFilter = Callable[[Iterable[Span], Iterable[Span]], List[Span]]


@dataclasses.dataclass(frozen=True)
class NerSettings(ClassifierSettings):
    tag_scheme: str = setting("auto", choice(*TAG_SCHEMES))
    pack_windows: bool = setting(True, flag)
    aggregation: str = setting("first", choice(*AGGREGATIONS))
    alignment_mode: str = setting("tokens", choice(*ALIGNMENT_MODES))
    overwrite_ents: bool = setting(False, flag)
    spans_key: Optional[str] = setting("direct_ner")
    threshold: Optional[float] = setting(None, optional(fraction), per_call=True)  # null: the route's default
    labels: LabelsSetting = setting(None, labels_check, per_call=True)
    flat_ner: bool = setting(True, flag, per_call=True)
    doc_consistency: bool = setting(False, flag)
    doc_consistency_keep: float = setting(0.8)

    def check_together(self) -> None:
        """Token-level settings have no meaning where pieces of the running text are read."""
        super().check_together()
        if self.alignment_mode == "tokens":
            return
        for key, is_set in (("aggregation", self.aggregation != "first"), ("doc_consistency", self.doc_consistency)):
            if is_set:
                raise DirectUseError(Errors.E075.format(key=key, value=getattr(self, key), mode=self.alignment_mode))


class TokenEntities(Route):
    """A fine-tuned token classifier read through the Doc's tokens: its labels in the tag
    scheme it was trained with (labels.py, decided once at load), decoded with that scheme's
    constraints (decoding.py)."""

    DEFAULT_THRESHOLD = 0.0
    """threshold null: no cut (the decoding decides)."""

    def __init__(self, pipe) -> None:
        super().__init__(pipe)
        self.scheme: Optional[LabelScheme] = None
        self.type_labels: List[Optional[str]] = []  # spaCy label per entity type id, after label_map
        self.decided_scheme: Optional[Dict[str, str]] = None  # tag_scheme "auto"'s decision, once made or read

    def load(self) -> Runner:
        if self.pipe.settings.labels is not None:
            self.refuse_labels(list(label_texts(self.pipe.settings.labels)))
        return super().load()

    def refuse_labels(self, labels: List[str]) -> None:
        own = sorted({parse_label(label)[1] for label in self.pipe.model_labels} - {None})
        raise DirectUseError(Errors.E072.format(name=self.pipe._source, own=own, labels=labels))

    def check_labels(self, labels: List[str], name: str) -> None:
        check_labels(labels, name, self.pipe.settings.tag_scheme)

    def on_load(self, loaded: LoadedModel, runner: Runner) -> None:
        scheme = self._read_tag_scheme(loaded, runner)
        mapped = map_types(scheme.entity_types, self.pipe.settings.label_map)
        self.type_labels = [mapped[t] for t in scheme.entity_types]
        self.scheme = scheme

    def saved_state(self) -> Dict[str, object]:
        return {"tag_scheme": self.decided_scheme}

    def restore_state(self, state: Dict[str, object]) -> None:
        self.decided_scheme = state.get("tag_scheme")

    def _read_tag_scheme(self, loaded: LoadedModel, runner: Runner) -> LabelScheme:
        """The checkpoint's labels in the scheme it was trained with: the tag_scheme
        setting, else the decision a saved pipeline holds, else what the labels say,
        else what the model predicts on PROBE_SENTENCES (logged, and saved by to_disk)."""
        name = str(self.pipe._source)
        setting = normalize_tag_scheme(self.pipe.settings.tag_scheme)
        if setting == "auto":
            if self.decided_scheme is None:
                self.decided_scheme = self._decide_tag_scheme(name, loaded.labels, runner)
            setting = self.decided_scheme["tag_scheme"]
        return LabelScheme.from_id2label(dict(enumerate(loaded.labels)), name, setting)

    def _decide_tag_scheme(self, name: str, labels: List[str], runner: Runner) -> Dict[str, str]:
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
    def _probe_paths(runner: Runner) -> List[np.ndarray]:
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
    def labels(self) -> Tuple[str, ...]:
        return model_entity_labels(self.pipe)

    def predict(self, docs: List[Doc], settings: NerSettings) -> List[List[Entity]]:
        """(start token, end token, label, confidence) for each Doc's entities."""
        self.pipe._ensure_loaded()
        if settings.labels is not None:
            self.refuse_labels(list(label_texts(settings.labels)))
        threshold = self.DEFAULT_THRESHOLD if settings.threshold is None else settings.threshold
        alignments, doc_probs = self.pipe.piece_probs(docs, words=self.reads_words)
        clock = time.perf_counter()
        predictions = [self.decode(doc, alignment, probs, settings, threshold) for doc, alignment, probs in zip(docs, alignments, doc_probs)]
        self.pipe._tick("decode", clock)
        return predictions

    def decode(self, doc: Doc, alignment: TokenAlignment, probs: np.ndarray, settings: "NerSettings", threshold: float) -> List[Entity]:
        tokens = alignment.tokens
        if len(tokens) == 0:
            return []
        token_probs = aggregate(probs, alignment, settings.aggregation)
        path = viterbi(token_probs, self.scheme)
        mentions = extract_entities(path, token_probs, self.scheme)
        if settings.doc_consistency:
            words = [doc[int(i)].text for i in tokens]
            type_probs = token_probs @ self.scheme.type_matrix
            mentions = reconcile(words, mentions, type_probs, settings.doc_consistency_keep)
        entities = []
        for start, end, type_id, confidence in mentions:
            label = self.type_labels[type_id]
            if label and confidence >= threshold:
                entities.append((int(tokens[start]), int(tokens[end - 1]) + 1, label, confidence))
        return entities

    def place(self, doc: Doc, entities: List[Entity]) -> List[Entity]:
        """The entities on the Doc's tokens (they are already)."""
        return entities


class RunningTextEntities(TokenEntities):
    """A token classifier read on the Doc's running text (`alignment_mode` other than
    "tokens"; running_text.py): values glued to punctuation are found with exactly their
    characters, then placed on the Doc (its tokens split at their edges where asked)."""

    @classmethod
    def reads(cls, pipe) -> bool:
        return pipe.settings.alignment_mode != "tokens"

    @property
    def reads_words(self) -> bool:
        return False

    def decode(self, doc: Doc, alignment: TokenAlignment, probs: np.ndarray, settings: NerSettings, threshold: float) -> List[CharEntity]:
        """(start char, end char, label, confidence) of the Doc's entities (running_text.piece_entities)."""
        found = piece_entities(probs, trimmed_spans(doc.text, alignment.char_offsets), doc.text, self.scheme)
        labelled = ((start, end, self.type_labels[type_id], confidence) for start, end, type_id, confidence in found)
        return [entity for entity in labelled if entity[2] and entity[3] >= threshold]

    def place(self, doc: Doc, entities: List[CharEntity]) -> List[Entity]:
        """Character spans placed on tokens (split where asked)."""
        return place_entities(doc, entities, self.pipe.settings.alignment_mode)


class DirectNER(DirectPipe):
    """Writes a pretrained token classifier's entities to doc.ents, no training needed: read
    through the Doc's tokens, or its running text, or (a GLiNER checkpoint) the entity types
    named in `labels` (gliner_entities.py)."""

    FACTORY = "direct_ner"
    SETTINGS = NerSettings
    ROUTES = (GlinerEntities, RunningTextEntities, TokenEntities)

    def __init__(self, vocab, name: Optional[str] = None, *, model: Optional[str], scorer: Optional[Callable] = None,
                 ents_filter: EntsFilter = prioritize_existing_ents_filter, **settings) -> None:  # fmt: skip
        super().__init__(vocab, name, model=model, scorer=scorer, **settings)
        self.ents_filter = _resolve_ents_filter(ents_filter, self.settings.overwrite_ents)

    @property
    def tag_scheme(self) -> Optional[str]:
        """The scheme the model's tags are read in ("iob2", "iob1", "bioes", "io"): the
        tag_scheme setting, or what "auto" decided (known once the model has loaded or
        a saved pipeline was read); None while "auto" is undecided."""
        setting = normalize_tag_scheme(self.settings.tag_scheme)
        if setting != "auto":
            return setting
        decided = self._decided_scheme()
        return decided["tag_scheme"] if decided else None

    @property
    def tag_scheme_reason(self) -> Optional[str]:
        """Why "auto" chose `tag_scheme` (what the labels or the probe predictions showed)."""
        if normalize_tag_scheme(self.settings.tag_scheme) != "auto":
            return "set in the config"
        decided = self._decided_scheme()
        return decided["why"] if decided else None

    def _decided_scheme(self) -> Optional[Dict[str, str]]:
        """tag_scheme "auto"'s decision, without deciding the route (which may read the hub)."""
        state = self._route.saved_state() if self._route is not None else self._restored
        return state.get("tag_scheme")

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels direct_ner writes, after `label_map`: the `labels` setting's (a
        GLiNER checkpoint), else the model's, known once the model has loaded (first use
        or nlp.initialize()), for a local checkpoint or `id2label`, or once a saved
        pipeline was read (spacy.load); reading it never loads weights."""
        if self.settings.labels is not None:
            return named_entity_labels(self)
        return model_entity_labels(self)

    def set_annotations(self, docs: List[Doc], predictions: List[List[Entity]]) -> List[Doc]:
        """Write every entity with its score to doc.spans[spans_key], and the best
        non-overlapping ones to doc.ents (merged with existing ones by `ents_filter`)."""
        clock = time.perf_counter()
        for doc, entities in zip(docs, predictions):
            entities = self.route.place(doc, entities)
            if self.settings.spans_key:
                doc.spans[self.settings.spans_key] = SpanGroup(
                    doc, name=self.settings.spans_key, spans=[Span(doc, s, e, label=label) for s, e, label, _ in entities],
                    attrs={"scores": [e[3] for e in entities]},
                )  # fmt: skip
            spans = [Span(doc, start, end, label=label) for start, end, label, _ in best_flat(entities)]
            kept = self.ents_filter(list(doc.ents), spans)
            doc.set_ents(sorted(kept), outside=_uncovered_tokens(doc, kept), default="unmodified")
        self._tick("annotate", clock)
        return docs


def model_entity_labels(pipe: DirectPipe) -> Tuple[str, ...]:
    """The entity types of the model's labels, after label_map (known without loading weights
    for a local checkpoint, `id2label`, or a saved pipeline)."""
    types = {parse_label(label)[1] for label in pipe.model_labels} - {None}
    mapped = map_types(sorted(types), pipe.settings.label_map)
    return tuple(sorted({label for label in mapped.values() if label}))


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

