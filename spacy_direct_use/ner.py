"""direct_ner: a fine-tuned token classifier's entities in doc.ents.

On the shared core (base.py), it adds how the labels are read (labels.py: the tag
scheme, decided once at load) and how probabilities become entities (decoding.py:
constrained Viterbi), and merges them with the Doc's own entities through spaCy's
`ents_filter` functions.
"""
import logging
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
from spacy.pipeline.span_ruler import prioritize_existing_ents_filter, prioritize_new_ents_filter
from spacy.tokens import Doc, Span, SpanGroup

from .alignment import AGGREGATIONS, TokenAlignment, aggregate
from .base import SHARED_CONFIG, DirectPipe, check_choice
from .consistency import reconcile
from .decoding import extract_entities, viterbi
from .errors import DirectUseError, Errors
from .inference import ClassifierRunner, encode_batch, fork_safe_torch
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

logger = logging.getLogger("spacy_direct_use")

EntsFilter = Callable[[Iterable[Span], Iterable[Span]], List[Span]]
Entity = Tuple[int, int, str, float]  # start token, end token, label, confidence

DEFAULT_CONFIG = {
    **SHARED_CONFIG,
    "tag_scheme": "auto",
    "pack_windows": True,
    "aggregation": "first",
    "overwrite_ents": False,
    "ents_filter": {"@misc": "spacy.prioritize_existing_ents_filter.v1"},
    "spans_key": "direct_ner",
    "threshold": 0.0,
    "doc_consistency": False,
    "doc_consistency_keep": 0.8,
    "scorer": {"@scorers": "spacy.ner_scorer.v1"},
}


class DirectNER(DirectPipe):
    """Writes a pretrained token classifier's entities to doc.ents, no training needed.

    The probabilities of a batch's windows are aligned to spaCy tokens and decoded
    with the constraints of the tag scheme the checkpoint was trained with.
    """

    TASK = "token"
    DEFAULT_CONFIG = DEFAULT_CONFIG

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
        self.ents_filter = _resolve_ents_filter(ents_filter, self.cfg["overwrite_ents"])
        self._scheme: Optional[LabelScheme] = None
        self._type_labels: List[Optional[str]] = []  # spaCy label per entity type id, after label_map
        self._decided_scheme: Optional[Dict[str, str]] = None  # tag_scheme "auto"'s decision, once made or read

    @classmethod
    def factory_name(cls) -> str:
        return "direct_ner"

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
        """The entity labels direct_ner writes, after `label_map`: known once the model
        has loaded (first use or nlp.initialize()), for a local checkpoint or `id2label`,
        or once a saved pipeline was read (spacy.load); reading it never loads weights."""
        types = {parse_label(label)[1] for label in self._model_labels or []} - {None}
        mapped = map_types(sorted(types), self.cfg["label_map"])
        return tuple(sorted({label for label in mapped.values() if label}))

    # -- processing ------------------------------------------------------------------

    def predict(self, docs: List[Doc]) -> List[List[Entity]]:
        """(start token, end token, label, confidence) for each Doc's entities."""
        alignments, doc_probs = self._piece_probs(docs)
        clock = time.perf_counter()
        predictions = [self._decode(doc, alignment, probs) for doc, alignment, probs in zip(docs, alignments, doc_probs)]
        self._tick("decode", clock)
        return predictions

    def _decode(self, doc: Doc, alignment: TokenAlignment, probs: np.ndarray) -> List[Entity]:
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
            if label and confidence >= self.cfg["threshold"]:
                entities.append((int(tokens[start]), int(tokens[end - 1]) + 1, label, confidence))
        return entities

    def set_annotations(self, docs: List[Doc], predictions: List[List[Entity]]) -> List[Doc]:
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
