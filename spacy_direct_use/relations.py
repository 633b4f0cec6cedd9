"""direct_rel: relations between the entities already on a Doc, read by a GLiREL checkpoint (the
`glirel` package, glirel_relations.py), relation types named in the config or per call; no
training step.

Output: `doc._.rel`, a list with one item per relation,
`{"dep": i, "dest": j, "relation": label, "score": p}`, where `doc.ents[i]` is the head and
`doc.ents[j]` the tail: spacy-llm's REL convention (its RelationItem's fields, indexing
doc.ents), plus the score. It holds what was found (above the threshold, top_k per pair, after
the constraints), where Explosion's `doc._.rel[(head.start, tail.start)] = {label: score}` holds
every label of every pair; and plain lists of string-keyed dicts survive
`DocBin(store_user_data=True)`, pickling (`nlp.pipe(n_process=...)`), JSON (tuple keys do not)
and Arrow (Ray) as they are. `relations(doc)` gives (head Span, tail Span, label, score);
`render_relations` draws them with displaCy; `score_relations` (registered as `spacy_direct_use.relation_scorer.v1`) gives micro
P/R/F over (head span, tail span, type).
"""
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

from spacy import displacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from .base import DirectPipe
from .errors import DirectUseError, Errors
from .glirel_checkpoint import load_glirel, save_glirel
from .glirel_relations import CPU_BATCH_PIECES, GlirelReader, Relation, check_top_k, relation_labels
from .inference import DEFAULT_BATCH_TOKENS
from .forking import fork_safe_torch
from .loading import GLIREL_CONFIG, resolve_device
from .route import Route
from .settings import LabelsSetting, Settings, fraction, positive_int, setting

REL_ATTR = "rel"
"""The Doc extension direct_rel writes (spacy-llm's REL task writes the same one, the same way)."""
if not Doc.has_extension(REL_ATTR):
    Doc.set_extension(REL_ATTR, default=None)



def _relation_labels_check(key: str, value: Any) -> None:
    if value is not None:
        relation_labels(value)


@dataclasses.dataclass(frozen=True)
class RelSettings(Settings):
    forward_batch_size: int = setting(32, positive_int)
    labels: LabelsSetting = setting(None, _relation_labels_check, per_call=True)
    threshold: float = setting(0.5, fraction, per_call=True)
    top_k: int = setting(1, lambda key, value: check_top_k(value), per_call=True)


SCORE_WEIGHTS = {"rel_micro_f": 1.0, "rel_micro_p": 0.0, "rel_micro_r": 0.0, "rel_f_per_type": None}


class GlirelRelations(Route):
    """A GLiREL checkpoint's relations between the Doc's entities, of the types named in
    `labels`; each Doc read in windows that fit the checkpoint (glirel_relations.py), the
    windows of a batch of Docs together, length-sorted."""

    NAME = "glirel"
    TASK = "own"

    def load(self) -> GlirelReader:
        pipe, settings = self.pipe, self.pipe.settings
        device = resolve_device(settings.device)
        pipe._model = load_glirel(pipe._source, settings.revision, pipe._local_only, device)
        batch_pieces = settings.forward_batch_tokens or (DEFAULT_BATCH_TOKENS["cuda"] if device.type == "cuda" else CPU_BATCH_PIECES)
        return GlirelReader(pipe._model, settings.forward_batch_size, batch_pieces, settings.max_sentences_per_window)

    @property
    def labels(self) -> Tuple[str, ...]:
        """The relation types set in the config (a call may name others)."""
        return tuple(self.pipe.settings.labels or ())

    def predict(self, docs: List[Doc], settings: RelSettings) -> List[List[Relation]]:
        """(head, tail: indices in doc.ents; label; score) for each Doc's relations."""
        names, constraints = relation_labels(settings.labels)
        pipe = self.pipe
        reader = pipe._ensure_loaded()
        clock = time.perf_counter()
        with fork_safe_torch():
            own = [pipe.sentence_starts(doc) if doc.has_annotation("SENT_START") else None for doc in docs]
            found = reader.read(docs, own, pipe.sentence_starts, names, constraints, settings.threshold, settings.top_k)
        pipe._tick("forward", clock)
        return found

    def save(self, path: Path) -> None:
        """glirel's config, the encoder (config, extended tokenizer, weights), the rest."""
        save_glirel(self.pipe._model, path)

    def read_saved(self, path: Path) -> None:
        if not (path / GLIREL_CONFIG).is_file():
            raise DirectUseError(Errors.E012.format(path=path))


class DirectRel(DirectPipe):
    """Writes a GLiREL checkpoint's relations between `doc.ents` to `doc._.rel`, no training
    needed. The entities come from whatever ran before (direct_ner, GLiNER, a trained `ner`,
    an `entity_ruler`)."""

    FACTORY = "direct_rel"
    SETTINGS = RelSettings
    ROUTES = (GlirelRelations,)

    def set_annotations(self, docs: List[Doc], predictions: List[List[Relation]]) -> List[Doc]:
        for doc, found in zip(docs, predictions):
            doc._.set(REL_ATTR, [{"dep": h, "dest": t, "relation": label, "score": float(score)} for h, t, label, score in found])
        return docs


class RelationSpans(NamedTuple):
    head: Span
    tail: Span
    label: str
    score: float


def relations(doc: Doc) -> List[RelationSpans]:
    """The Doc's relations with their head and tail Spans (doc._.rel indexes doc.ents)."""
    ents = doc.ents
    return [RelationSpans(ents[r["dep"]], ents[r["dest"]], r["relation"], r.get("score")) for r in doc._.get(REL_ATTR) or []]


def render_relations(doc: Union[Doc, Span], *, jupyter: Optional[bool] = None, min_score: float = 0.0, **options: Any) -> str:
    """The Doc's (or a sentence's) relations as labelled arcs between its entities, drawn by
    displaCy's dependency style in manual mode: each entity one word (its type beneath), each
    relation an arc from head to tail labelled "type score". Returns the SVG/HTML markup (displayed
    in Jupyter where `jupyter` is True or detected); `options` go to displaCy (e.g. compact=True)."""
    span = doc[:] if isinstance(doc, Doc) else doc
    owner = span.doc
    words, word_of_ent, i = [], {}, span.start
    ent_at = {ent.start: (k, ent) for k, ent in enumerate(owner.ents) if span.start <= ent.start and ent.end <= span.end}
    while i < span.end:
        if i in ent_at:
            k, ent = ent_at[i]
            word_of_ent[k] = len(words)
            words.append({"text": ent.text, "tag": ent.label_})
            i = ent.end
        else:
            words.append({"text": owner[i].text, "tag": ""})
            i += 1
    arcs = []
    for rel in owner._.get(REL_ATTR) or []:
        head, tail = word_of_ent.get(rel["dep"]), word_of_ent.get(rel["dest"])
        if head is None or tail is None or rel.get("score", 1.0) < min_score:
            continue
        label = f"{rel['relation']} {rel['score']:.2f}" if rel.get("score") is not None else rel["relation"]
        arcs.append({"start": min(head, tail), "end": max(head, tail), "label": label, "dir": "right" if head < tail else "left"})
    return displacy.render({"words": words, "arcs": arcs}, style="dep", manual=True, jupyter=jupyter, options={"distance": 110, **options})


def _relation_set(doc: Doc) -> set:
    """(head start char, head end char, tail start char, tail end char, label) of each relation."""
    return {(r.head.start_char, r.head.end_char, r.tail.start_char, r.tail.end_char, r.label) for r in relations(doc)}


def score_relations(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
    """Micro precision, recall and F over (head span, tail span, type), spans compared by
    characters (so any tokenization), and F per type; gold is the reference Docs' doc._.rel."""
    tp = fp = fn = 0
    per_type: Dict[str, List[int]] = {}
    for eg in examples:
        predicted, gold = _relation_set(eg.predicted), _relation_set(eg.reference)
        for rel in predicted | gold:
            counts = per_type.setdefault(rel[4], [0, 0, 0])
            counts[0 if rel in predicted and rel in gold else 1 if rel in predicted else 2] += 1
        tp, fp, fn = tp + len(predicted & gold), fp + len(predicted - gold), fn + len(gold - predicted)

    def prf(tp: int, fp: int, fn: int) -> Tuple[float, float, float]:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, 2 * p * r / (p + r) if p + r else 0.0

    p, r, f = prf(tp, fp, fn)
    per_type_scores = {label: dict(zip("prf", prf(*counts))) for label, counts in sorted(per_type.items())}
    return {"rel_micro_p": p, "rel_micro_r": r, "rel_micro_f": f, "rel_f_per_type": per_type_scores}


@registry.scorers("spacy_direct_use.relation_scorer.v1")
def make_relation_scorer() -> Callable[..., Dict[str, Any]]:
    return score_relations


def gold_relations(doc: Doc, items: Iterable[Tuple[int, int, str]]) -> Doc:
    """Write gold relations (head, tail: indices in doc.ents; label) to doc._.rel, score 1.0."""
    doc._.set(REL_ATTR, [{"dep": h, "dest": t, "relation": label, "score": 1.0} for h, t, label in items])
    return doc


__all__ = ["DirectRel", "RelationSpans", "gold_relations", "relations", "render_relations", "score_relations"]
