"""Zero-shot entities for direct_ner: GLiNER checkpoints (the `gliner` package), entity types
named in the config or per call.

GLiNER reads a text as words after a prompt of the entity types
(`<<ENT>> person <<ENT>> city <<SEP>> w1 w2 ...`) and scores every span of up to
`max_width` words against each type. The checkpoint is read as gliner reads it: its
own processor, collator, forward pass and decoder (`prepare_base_input`,
`collate_batch`, `run_batch`, `decode_batch`: the steps of `GLiNER.inference`), so
scores are gliner's. What this module changes is what it reads:
- the words are the Doc's non-whitespace tokens, so every entity lies on spaCy tokens;
- nothing is truncated. gliner cuts a text at `max_len` words and its tokenizer at the
  encoder's sub-word limit, both silently. Here each Doc is read in windows
  (windows.word_windows): whole sentences, packed while the words fit `max_len` and
  their sub-words fit the encoder's limit together with this call's label prompt
  (counted with the model's tokenizer); a longer sentence is read in strides that
  overlap by twice `max_width` words, each entity kept from the window whose core
  holds its first word, and overlaps between windows resolved by gliner's own greedy
  search. A text within both limits is one window, read as `predict_entities` reads it.
The windows of a batch of Docs run together, length-sorted (inference.length_batches).
"""
import dataclasses
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from spacy.tokens import Doc

from .alignment import doc_words
from .errors import DirectUseError, Errors, first_line
from .inference import DEFAULT_BATCH_TOKENS, PRECISIONS, length_batches, piece_limit
from .forking import fork_safe_torch, using_tokenizers
from .inference import first_pieces as first_pieces_of
from .loading import GLINER_CONFIG, quiet_transformers, read_json, resolve_device
from .route import Route
from .settings import label_texts
from .windows import Window, word_windows

Entity = Tuple[int, int, str, float]  # start token, end token, label, score
CPU_BATCH_WORDS = 512
"""Most padded words per forward pass on CPU (forward_batch_tokens null): each word carries
max_width span rows, so passes are smaller than a token classifier's. Chosen on CoNLL-2003
dev (docs/how-it-works.md, "Constants chosen on dev data")."""


def is_gliner_checkpoint(name: Union[str, Path], revision: Optional[str], local_only: bool) -> bool:
    """Whether `name` (a directory or hub repository) holds a GLiNER checkpoint."""
    return read_json(str(name), GLINER_CONFIG, revision, local_only) is not None


def load_gliner(name: Union[str, Path], revision: Optional[str], local_only: bool, device: torch.device, precision: str):
    """The checkpoint as `GLiNER.from_pretrained` loads it, in eval mode; E070 without gliner."""
    try:
        from gliner import GLiNER
    except ImportError:
        raise DirectUseError(Errors.E070.format(name=name)) from None
    options: Dict[str, Any] = {"quantize": "int8"} if precision == "int8" else {"dtype": PRECISIONS[precision]}
    try:
        with quiet_transformers(progress_bar=False):
            model = GLiNER.from_pretrained(
                str(name), revision=revision, local_files_only=local_only, map_location=str(device), **options
            )
    except Exception as err:  # noqa: BLE001 - every failure becomes a DirectUseError
        reason = first_line(err)
        if Path(name).expanduser().is_dir():
            raise DirectUseError(Errors.E016.format(name=name, reason=reason)) from None
        raise DirectUseError(Errors.E003.format(name=name, revision=revision or "main", reason=reason)) from None
    return model.eval()


class GlinerReader:
    """A loaded GLiNER model reading windows of spaCy words, batched across Docs."""

    def __init__(self, model, batch_size: int, batch_words: int) -> None:
        self.model = model
        self.tokenizer = model.data_processor.transformer_tokenizer
        self.collator = model.create_collator()
        self.max_len = int(model.config.max_len)
        self.max_width = int(model.config.max_width)
        self.piece_limit = piece_limit(self.tokenizer, getattr(model.config, "encoder_config", None))
        self.batch_size, self.batch_words = batch_size, batch_words

    def prompt_pieces(self, prompts: List[str]) -> int:
        """Sub-words the label prompt takes in every window, special tokens included."""
        (prompt_words,), _ = self.model.data_processor.prepare_inputs([[]], prompts)
        return len(self.tokenizer(prompt_words, is_split_into_words=True)["input_ids"])

    def read(self, docs: List[Doc], sentence_starts: List[np.ndarray], labels: Dict[str, str], threshold: float, flat_ner: bool) -> List[List[Entity]]:
        """Each Doc's entities (start token, end token, label, score), sorted by start;
        overlapping (nested) ones too when `flat_ner` is False."""
        names, prompts = list(labels), list(labels.values())
        using_tokenizers()  # here and in gliner's collator
        max_pieces = self.piece_limit - self.prompt_pieces(prompts)
        if max_pieces < 1:
            raise DirectUseError(Errors.E073.format(limit=self.piece_limit, labels=names))
        words = [doc_words(doc) for doc in docs]
        first_pieces = first_pieces_of(self.tokenizer, [doc_w for doc_w, _ in words])
        overlap = 2 * self.max_width  # a span starting in a core lies wholly inside its window
        flat: List[Tuple[int, Window]] = [
            (i, window)
            for i, (first_piece, (_, word_tokens), starts) in enumerate(zip(first_pieces, words, sentence_starts))
            for window in word_windows(first_piece, np.searchsorted(word_tokens, starts), self.max_len, max_pieces, overlap)
        ]  # fmt: skip
        window_words = [words[i][0][start:end] for i, (start, end, _, _) in flat]
        found = self._run(window_words, prompts, names, threshold, flat_ner)
        spans: List[list] = [[] for _ in docs]
        for (i, (start, _, core_start, core_end)), window_spans in zip(flat, found):
            spans[i].extend(
                dataclasses.replace(span, start=span.start + start, end=span.end + start)
                for span in window_spans
                if core_start <= span.start + start < core_end
            )
        entities = []
        for doc_spans, (_, word_tokens), n_windows in zip(spans, words, np.bincount([i for i, _ in flat], minlength=len(docs))):
            if n_windows > 1:  # entities of neighbouring strides may overlap: gliner's rule decides
                doc_spans = self.model.decoder.greedy_search(doc_spans, flat_ner=flat_ner, multi_label=False)
            entities.append(
                [(int(word_tokens[s.start]), int(word_tokens[s.end]) + 1, s.entity_type, float(s.score)) for s in doc_spans]
            )
        return entities

    def _run(self, window_words: List[List[str]], prompts: List[str], names: List[str], threshold: float, flat_ner: bool) -> List[list]:
        """gliner's decoded spans (word indices within the window, end inclusive) per window."""
        found: List[list] = [[] for _ in window_words]
        lengths = [len(words) for words in window_words]
        order = sorted(range(len(window_words)), key=lengths.__getitem__)
        for batch in length_batches(order, lengths, self.batch_size, self.batch_words):
            inputs = self.model.prepare_base_input([window_words[i] for i in batch])
            collated = self.model.collate_batch(inputs, prompts, self.collator, label_names=names)
            output = self.model.run_batch(collated, threshold=threshold)
            decoded = self.model.decode_batch(output, collated, threshold=threshold, flat_ner=flat_ner, multi_label=False)
            for i, window_spans in zip(batch, decoded):
                found[i] = window_spans
        return found


class GlinerEntities(Route):
    """A GLiNER checkpoint's entities of the types named in `labels` (config or per call)."""

    NAME = "gliner"
    TASK = "own"
    DEFAULT_THRESHOLD = 0.5
    """threshold null: gliner's own."""

    @classmethod
    def reads(cls, pipe) -> bool:
        return is_gliner_checkpoint(pipe._source, pipe.settings.revision, pipe._local_only)

    def load(self) -> GlinerReader:
        pipe, settings = self.pipe, self.pipe.settings
        if settings.alignment_mode != "tokens":
            raise DirectUseError(Errors.E074.format(name=pipe._source, mode=settings.alignment_mode))
        if settings.engine != "torch":
            fix = 'gliner runs it in torch: leave engine at "torch" (precision "bf16" runs on a CPU\'s bf16 units).'
            raise DirectUseError(Errors.E079.format(engine=settings.engine, what=f"the GLiNER checkpoint '{pipe._source}'", fix=fix))
        device = resolve_device(settings.device)
        pipe._model = load_gliner(pipe._source, settings.revision, pipe._local_only, device, settings.precision)
        batch_words = settings.forward_batch_tokens or (DEFAULT_BATCH_TOKENS["cuda"] if device.type == "cuda" else CPU_BATCH_WORDS)
        return GlinerReader(pipe._model, settings.forward_batch_size, batch_words)

    @property
    def labels(self) -> Tuple[str, ...]:
        return named_entity_labels(self.pipe)

    def predict(self, docs: List[Doc], settings) -> List[List[Entity]]:
        """GLiNER's entities of this call's types, after label_map (a type mapped to None is dropped)."""
        pipe = self.pipe
        reader: GlinerReader = pipe._ensure_loaded()
        labels = label_texts(settings.labels)
        if not labels:
            raise DirectUseError(Errors.E071.format(name=pipe._source))
        threshold = self.DEFAULT_THRESHOLD if settings.threshold is None else settings.threshold
        clock = time.perf_counter()
        with fork_safe_torch():
            found = reader.read(docs, [pipe.sentence_starts(doc) for doc in docs], labels, threshold, settings.flat_ner)
        pipe._tick("forward", clock)
        mapped = dict(zip(labels, pipe.mapped_labels(list(labels))))
        return [[(start, end, mapped[label], score) for start, end, label, score in doc_entities if mapped[label]] for doc_entities in found]

    def place(self, doc: Doc, entities: List[Entity]) -> List[Entity]:
        return entities

    def save(self, path: Path) -> None:
        """gliner's own layout (gliner_config.json, safetensors, tokenizer), as stored, not in the
        dtype (or int8) it runs in."""
        pipe = self.pipe
        model = pipe._model
        if pipe.settings.precision != "fp32":
            model = load_gliner(pipe._source, pipe.settings.revision, pipe._local_only, torch.device("cpu"), "fp32")
        with quiet_transformers(progress_bar=False):
            model.save_pretrained(path, safe_serialization=True)

    def read_saved(self, path: Path) -> None:
        if not (path / GLINER_CONFIG).is_file():
            raise DirectUseError(Errors.E012.format(path=path))


def named_entity_labels(pipe) -> Tuple[str, ...]:
    """The entity types the `labels` setting names, after label_map, sorted."""
    labels = label_texts(pipe.settings.labels)
    return tuple(sorted({label for label in pipe.mapped_labels(list(labels or ())) if label}))


def best_flat(entities: Sequence[Entity]) -> List[Entity]:
    """The highest-scoring entities that share no token (gliner's flat greedy rule), by start:
    linear in the tokens covered, as a long Doc may hold thousands of entities."""
    if not entities:
        return []
    taken = np.zeros(max(end for _, end, _, _ in entities), dtype=bool)
    kept: List[Entity] = []
    for entity in sorted(entities, key=lambda e: -e[3]):
        start, end = entity[0], entity[1]
        if not taken[start:end].any():
            taken[start:end] = True
            kept.append(entity)
    return sorted(kept)
