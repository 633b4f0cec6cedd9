"""Annotate a Ray Dataset with a saved spaCy pipeline: a callable class for `Dataset.map_batches`.

    import dataclasses
import ray
    from spacy_direct_use.ray import DirectPredictor

    ds = ray.data.read_json("texts.jsonl", lines=True)
    ds = ds.map_batches(DirectPredictor, fn_constructor_kwargs={"pipeline": "my_pipeline"},
                        batch_size=256, compute=ray.data.ActorPoolStrategy(size=4), num_gpus=1)
    ds.write_parquet("annotated/")

Each actor loads the pipeline once, whichever direct_* components (and other spaCy
components) it holds; every batch keeps its columns and gains `entities`
(ENTITIES_TYPE: the same Arrow type in every batch, so Parquet files always agree), and
`cats` (CATS_TYPE: every label with its probability) where the pipeline has a direct_textcat,
`tokens` (TOKENS_TYPE: each token's offsets, text, pos, tag and morph) where it has a
direct_tagger, and `relations` (RELATIONS_TYPE: head and tail as in `entities`, label, score)
where it has a direct_rel.
Needs the `ray` extra: pip install "spacy-direct-use[ray]" (E046 says so when it is missing).
`DirectNERPredictor` is the name from when direct_ner was the only component.
"""
import dataclasses
from typing import Any, Dict, List, Optional

import spacy
import torch
from spacy.tokens import Doc

from .errors import DirectUseError, Errors

try:
    import pyarrow as pa
    import ray
    from ray.data.block import BlockAccessor
except ImportError as err:  # the `ray` extra is not installed
    missing = (err.name or "ray").split(".")[0]
    raise ModuleNotFoundError(Errors.E046.format(what="spacy_direct_use.ray", missing=missing), name=missing) from None
from .base import DirectPipe
from .ner import DirectNER
from .relations import DirectRel, relations
from .tagger import DirectTagger
from .textcat import DirectTextCat
from .vectors import DirectVectors

ON_BAD_TEXT = ("raise", "empty")
ENTITY_TYPE = pa.struct(
    [
        ("start_char", pa.int64()),
        ("end_char", pa.int64()),
        ("label", pa.string()),
        ("text", pa.string()),
        ("score", pa.float64()),  # null for entities another component set (e.g. an entity_ruler)
    ]
)
ENTITIES_TYPE = pa.list_(ENTITY_TYPE)
ENTITIES_COLUMN = "entities"
CATS_TYPE = pa.list_(pa.struct([("label", pa.string()), ("score", pa.float64())]))
CATS_COLUMN = "cats"
TOKENS_TYPE = pa.list_(
    pa.struct([(name, pa.int64()) for name in ("start_char", "end_char")] + [(name, pa.string()) for name in ("text", "pos", "tag", "morph")])
)
TOKENS_COLUMN = "tokens"
RELATIONS_TYPE = pa.list_(
    pa.struct([("head", ENTITY_TYPE), ("tail", ENTITY_TYPE), ("label", pa.string()), ("score", pa.float64())])
)
RELATIONS_COLUMN = "relations"
VECTOR_COLUMN = "vector"  # fixed-size list of float32 (null for a row with no text)
Batch = Any  # what map_batches hands over: pyarrow.Table, pandas.DataFrame or dict of numpy arrays


class DirectPredictor:
    """Adds an `entities` column to each batch (and `cats`, `tokens`, `relations` as the pipeline's direct_*
    components write them), from a spaCy pipeline loaded once per Ray actor.

    pipeline: a saved pipeline directory (nlp.to_disk, `spacy assemble`) or an installed package name,
        readable on every node that runs an actor.
    text_key: the column that holds the text.
    torch_threads: torch threads in this actor (None: Ray's default, the actor's num_cpus).
    on_bad_text: a row whose text is missing (null) or not a string raises DirectUseError naming the row
        ("raise"), or gets empty annotations ("empty"; `annotate` counts such rows at the end).
    use_gpu: None: the GPU when Ray gave this actor one (map_batches(num_gpus=...)); True/False to force.
    """

    def __init__(
        self,
        pipeline: str,
        *,
        text_key: str = "text",
        torch_threads: Optional[int] = None,
        on_bad_text: str = "raise",
        use_gpu: Optional[bool] = None,
    ) -> None:
        if on_bad_text not in ON_BAD_TEXT:
            raise DirectUseError(Errors.E042.format(value=on_bad_text, options=list(ON_BAD_TEXT)))
        if torch_threads:
            torch.set_num_threads(torch_threads)
        if use_gpu is None:
            use_gpu = ray.is_initialized() and bool(ray.get_gpu_ids())
        if use_gpu:
            spacy.prefer_gpu()  # other components' thinc models, where cupy is installed
        self.nlp = spacy.load(pipeline)
        self.text_key = text_key
        self.on_bad_text = on_bad_text
        self.spans_keys = []
        self.with_cats = self.with_tokens = self.with_relations = False
        self.vector_width: Optional[int] = None
        for _, component in self.nlp.pipeline:
            if isinstance(component, DirectPipe):
                if use_gpu and component.settings.device is None:  # Ray set CUDA_VISIBLE_DEVICES to this actor's GPU(s)
                    component.settings = dataclasses.replace(component.settings, device="cuda")
                component.initialize()  # load the weights now, once per actor, not in the first batch
            if isinstance(component, DirectNER) and component.settings.spans_key:
                self.spans_keys.append(component.settings.spans_key)
            self.with_cats |= isinstance(component, DirectTextCat)
            self.with_tokens |= isinstance(component, DirectTagger)
            self.with_relations |= isinstance(component, DirectRel)
            if isinstance(component, DirectVectors):
                self.vector_width = component.width

    def __call__(self, batch: Batch) -> pa.Table:
        texts = self._texts(batch)
        good = [i for i, text in enumerate(texts) if isinstance(text, str)]
        entities: List[List[Dict[str, Any]]] = [[] for _ in texts]
        cats: List[List[Dict[str, Any]]] = [[] for _ in texts]
        tokens: List[List[Dict[str, Any]]] = [[] for _ in texts]
        rels: List[List[Dict[str, Any]]] = [[] for _ in texts]
        vectors: List[Optional[Any]] = [None for _ in texts]
        for i, doc in zip(good, self.nlp.pipe([texts[i] for i in good], batch_size=max(len(good), 1))):
            entities[i] = self._entities(doc)
            if self.with_relations:
                index = {(ent.start, ent.end): k for k, ent in enumerate(doc.ents)}
                rels[i] = [
                    {"head": entities[i][index[(r.head.start, r.head.end)]], "tail": entities[i][index[(r.tail.start, r.tail.end)]],
                     "label": r.label, "score": r.score}
                    for r in relations(doc)
                ]  # fmt: skip
            cats[i] = [{"label": label, "score": float(score)} for label, score in doc.cats.items()]
            if self.vector_width:
                vectors[i] = doc.vector
            if self.with_tokens:
                tokens[i] = [
                    {"start_char": t.idx, "end_char": t.idx + len(t), "text": t.text, "pos": t.pos_, "tag": t.tag_, "morph": str(t.morph)}
                    for t in doc
                ]
        # Ray's own batch -> block conversion (pandas, numpy dicts with tensor columns, Arrow)
        table = BlockAccessor.for_block(BlockAccessor.batch_to_block(batch)).to_arrow()
        added = {ENTITIES_COLUMN: pa.array(entities, type=ENTITIES_TYPE)}
        if self.with_cats:
            added[CATS_COLUMN] = pa.array(cats, type=CATS_TYPE)
        if self.with_tokens:
            added[TOKENS_COLUMN] = pa.array(tokens, type=TOKENS_TYPE)
        if self.with_relations:
            added[RELATIONS_COLUMN] = pa.array(rels, type=RELATIONS_TYPE)
        if self.vector_width:
            added[VECTOR_COLUMN] = pa.array(vectors, type=pa.list_(pa.float32(), self.vector_width))
        table = table.drop_columns([c for c in added if c in table.column_names])  # annotating annotated data replaces them
        for column, values in added.items():
            table = table.append_column(column, values)
        return table

    def _texts(self, batch: Batch) -> List[Any]:
        """The text of each row; raises DirectUseError on a missing or non-string one unless on_bad_text="empty"."""
        columns = _column_names(batch)
        n_rows = _num_rows(batch)
        if self.text_key not in columns:
            if self.on_bad_text == "empty":
                return [None] * n_rows
            raise DirectUseError(Errors.E040.format(key=self.text_key, columns=columns))
        texts = batch[self.text_key]
        texts = texts.to_pylist() if isinstance(texts, pa.ChunkedArray) else list(texts)
        if self.on_bad_text == "raise":
            for i, text in enumerate(texts):
                if not isinstance(text, str):
                    raise DirectUseError(
                        Errors.E041.format(
                            row=i, n_rows=n_rows, others=_describe_row(batch, i, exclude=self.text_key),
                            key=self.text_key, value=_shorten(repr(text)), type=type(text).__name__,
                        )
                    )
        return texts

    def _entities(self, doc: Doc) -> List[Dict[str, Any]]:
        scores = {}
        for key in self.spans_keys:
            group = doc.spans.get(key)
            if group is not None:
                for span, score in zip(group, group.attrs.get("scores", [])):
                    scores[(span.start, span.end, span.label_)] = float(score)
        return [
            {
                "start_char": ent.start_char,
                "end_char": ent.end_char,
                "label": ent.label_,
                "text": ent.text,
                "score": scores.get((ent.start, ent.end, ent.label_)),
            }
            for ent in doc.ents
        ]


DirectNERPredictor = DirectPredictor
"""The name from when direct_ner was the only component."""


def _column_names(batch: Batch) -> List[str]:
    if isinstance(batch, pa.Table):
        return batch.column_names
    return [str(name) for name in (batch.keys() if isinstance(batch, dict) else batch.columns)]


def _num_rows(batch: Batch) -> int:
    if isinstance(batch, dict):
        return len(next(iter(batch.values()))) if batch else 0
    return len(batch)


def _describe_row(batch: Batch, row: int, exclude: str) -> str:
    """The row's other columns, shortened, so a user can find it in the input."""
    others = [name for name in _column_names(batch) if name != exclude]
    if not others:
        return "no other columns"
    values = {name: _value(batch, name, row) for name in others}
    return _shorten(", ".join(f"{name}={value!r}" for name, value in values.items()))


def _value(batch: Batch, column: str, row: int) -> Any:
    if isinstance(batch, pa.Table):
        return batch.column(column)[row].as_py()
    values = batch[column]
    return values.iloc[row] if hasattr(values, "iloc") else values[row]


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

