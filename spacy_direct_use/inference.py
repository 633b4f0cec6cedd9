"""Batched forward passes: sub-word id sequences in, label probabilities out (per sub-word
for a token classifier, per sequence for a sequence classifier)."""
import contextlib
import copy
import json
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tokenizers import Tokenizer

from .forking import using_tokenizers
from .int8 import int8_classifier
from .packing import PACK_WIDTH, packed_inputs, packed_mask_kind, pack_rows, position_offset, row_starts

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16, "int8": None}
"""Autocast dtype per precision; "int8" runs an ONNX Runtime int8 copy instead (int8.py)."""
DEFAULT_BATCH_TOKENS = {"cpu": 1536, "cuda": 32768}
"""Padded sub-words per forward pass when `forward_batch_tokens` is not set. On CPU,
throughput peaks at about 800-3,000 (smaller batches pay per-call overhead,
bigger ones get slower per sub-word; scripts/batch_shapes.py); a GPU wants far more."""


logger = logging.getLogger("spacy_direct_use")


def encode_batch(encoder: Tokenizer, words: List[List[str]]) -> list:
    """The tokenizer's batch encoding of pre-split words (parallel in Rust)."""
    using_tokenizers()
    return encoder.encode_batch(words, is_pretokenized=True, add_special_tokens=False)


class Runner:
    """Runs a Hugging Face checkpoint over many windows at once: a token or sequence classifier
    here, an encoder with no head in its subclass (embedding.EmbeddingRunner).

    Special tokens are added around each window. On CPU in fp32, a token
    classifier's short windows share rows of PACK_WIDTH sub-words where the model
    allows it (packing.py; a sequence classifier reads one window per row, as its
    head pools the row's first token); rows are sorted by length and grouped into
    passes of at most `batch_size` rows and `batch_tokens` padded sub-words
    (default: by device, DEFAULT_BATCH_TOKENS), so padding stays small.
    Probabilities are a softmax over the labels, or a sigmoid per label where
    `multi_label`.
    """

    ENCODER = False
    """Whether the model is an encoder with no head (its output: last_hidden_state)."""

    def __init__(
        self,
        model,
        tokenizer,
        device: torch.device,
        precision: str,
        batch_size: int,
        batch_tokens: Optional[int],
        pack: bool = True,
        saved_int8: Optional[bytes] = None,
        per_token: bool = True,
        multi_label: bool = False,
    ) -> None:
        self.per_token = per_token
        self.activation: Optional[str] = "sigmoid" if multi_label else "softmax"
        """How logits become scores: "softmax", "sigmoid", or None (the logits themselves)."""
        if precision == "int8":  # an encoder's int8 graph gives its hidden states, per position
            output = "last_hidden_state" if self.ENCODER else "logits"
            model = int8_classifier(model, device, per_token or self.ENCODER, saved=saved_int8, output=output)
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS.get(device.type, DEFAULT_BATCH_TOKENS["cuda"])
        self.autocast_dtype = PRECISIONS[precision]
        packable = precision == "fp32"
        if precision == "bf16" and device.type == "cpu" and isinstance(model, torch.nn.Module) and cpu_has_bf16():
            # bf16 weights, cast once: the matrix products run on the CPU's bf16 units (AVX-512 BF16,
            # AMX) with no per-call casts; LayerNorm and softmax stay in fp32 inside (oneDNN
            # accumulates in fp32). The fp32 model stays for to_disk. Packed rows get a bf16 mask.
            self.model = copy.deepcopy(model).to(torch.bfloat16)
            self.autocast_dtype, packable = None, True
        elif precision == "bf16" and device.type == "cpu":
            logger.warning("precision bf16: this CPU has no bf16 units (AVX-512 BF16 or AMX), so bf16 would run slower than fp32; running autocast anyway")
        self.encoder = word_encoder(tokenizer)
        self.text_encoder = text_encoder(tokenizer)
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.max_length = model_max_length(model, tokenizer)
        self.first_position = position_offset(model)
        self.mask_kind: Optional[str] = None
        """How packed rows are masked (packing.MASK_KINDS); None: one window per row."""
        if pack and per_token and device.type == "cpu" and packable and isinstance(model, torch.nn.Module):  # an ONNX graph takes a 2D mask only
            self.mask_kind = packed_mask_kind(model, self._probe(), self.pad_id)

    def use_model(self, model) -> None:
        """Run `model` (another engine's, called as the torch model is) instead, no autocast:
        packed rows where it takes them (its `mask_kind`: an OpenVINO graph converted with
        packed inputs), else one window per row."""
        self.model, self.mask_kind, self.autocast_dtype = model, getattr(model, "mask_kind", None), None

    @property
    def content_length(self) -> int:
        """The most sub-words a window may hold besides special tokens."""
        return self.max_length - len(self.prefix) - len(self.suffix)

    def predict(self, sequences: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Probabilities for each id sequence: (len(seq), n_labels) per token, or (n_labels,)."""
        outputs = self.run([np.concatenate((self.prefix, seq, self.suffix)) for seq in sequences])
        if not self.per_token:
            return outputs
        first = len(self.prefix)
        return [out[first : first + len(seq)] for out, seq in zip(outputs, sequences)]

    def run(self, inputs: Sequence[np.ndarray], type_ids: Optional[Sequence[np.ndarray]] = None) -> List[Any]:
        """The model's output for each whole input (special tokens included): per position
        for a token head (packed where the model allows), per input otherwise; `type_ids`
        (token_type_ids, e.g. of a sentence pair) are passed where given."""
        lengths = [len(ids) for ids in inputs]
        if self.mask_kind and type_ids is None:  # no wider than the model's inputs (buffers such as token_type_ids end there)
            rows = pack_rows(lengths, min(PACK_WIDTH, self.max_length))
        else:
            rows = [[i] for i in range(len(inputs))]
        row_lengths = [sum(lengths[i] for i in row) for row in rows]
        order = sorted(range(len(rows)), key=row_lengths.__getitem__)
        outputs: List[Any] = [None] * len(inputs)
        for batch in length_batches(order, row_lengths, self.batch_size, self.batch_tokens):
            batch_rows = [[inputs[i] for i in rows[r]] for r in batch]
            batch_types = None if type_ids is None else [type_ids[rows[r][0]] for r in batch]
            for result, r, row in zip(self._forward(batch_rows, batch_types), batch, batch_rows):
                if len(row) == 1:
                    outputs[rows[r][0]] = result[: len(row[0])] if self.per_token else result
                    continue
                for i, (start, seq) in zip(rows[r], row_starts(row)):
                    outputs[i] = result[start : start + len(seq)]
        return outputs

    def _forward(self, rows: List[List[np.ndarray]], type_ids: Optional[List[np.ndarray]] = None) -> Sequence[Any]:
        # a graph converted for packed rows takes them even one window per row; torch the usual 2D mask
        if self.mask_kind is None or type_ids is not None or (all(len(row) == 1 for row in rows) and isinstance(self.model, torch.nn.Module)):
            model_inputs = self._padded_inputs([row[0] for row in rows], type_ids)
        else:
            model_inputs = packed_inputs(rows, self.pad_id, self.first_position, self.mask_kind)
            mask = model_inputs["attention_mask"]
            if mask.is_floating_point() and isinstance(self.model, torch.nn.Module):  # additive: in the weights' dtype
                model_inputs["attention_mask"] = mask.to(next(self.model.parameters()).dtype)
        with torch.inference_mode(), self._autocast():
            return self._outputs({key: self._to_device(t) for key, t in model_inputs.items()})

    def _outputs(self, model_inputs: Dict[str, torch.Tensor]) -> np.ndarray:
        """What each row gives: its label probabilities (per position for a token head), or
        its logits where `activation` is None."""
        logits = self.model(**model_inputs).logits.float()
        if self.activation == "sigmoid":
            logits = torch.sigmoid(logits)
        elif self.activation == "softmax":
            logits = torch.softmax(logits, dim=-1)
        return logits.cpu().numpy()

    def _padded_inputs(self, sequences: List[np.ndarray], type_ids: Optional[List[np.ndarray]] = None) -> Dict[str, torch.Tensor]:
        """One sequence per row, padded to the longest, with the usual 2D mask (and token_type_ids where given)."""
        width = max(len(s) for s in sequences)
        input_ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        inputs = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        if type_ids is not None:
            token_type_ids = np.zeros((len(sequences), width), dtype=np.int64)
            for row, types in enumerate(type_ids):
                token_type_ids[row, : len(types)] = types
            inputs["token_type_ids"] = torch.from_numpy(token_type_ids)
        return inputs

    def _probe(self) -> List[np.ndarray]:
        """Two short windows, special tokens included, for checking packing."""
        words = [["Angela", "Merkel", "visited", "Paris", "."], ["The", "United", "Nations", "met", "."]]
        return [np.concatenate((self.prefix, e.ids, self.suffix)).astype(np.int64) for e in encode_batch(self.encoder, words)]

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


PASS_COST_DIVISOR = 12
"""A forward pass costs about as much as batch_tokens / 12 padded sub-words on top of
its padded size (per-call overhead: CPU throughput peaks at 800-3,000 padded sub-words
per pass, scripts/batch_shapes.py)."""


def length_batches(order: List[int], lengths: List[int], batch_size: int, batch_tokens: int) -> List[List[int]]:
    """Cut length-sorted indices into consecutive batches within both limits (padded size),
    choosing the cuts with the least padded sub-words plus a fixed cost per pass
    (dynamic programming): the windows of a few Docs then pad about as little as those
    of a whole length-sorted corpus. Greedy filling would let short and long windows
    share a pass, so nlp.pipe's small batches padded 50% more."""
    n = len(order)
    sorted_lengths = np.array([lengths[i] for i in order], dtype=np.int64)
    pass_cost = batch_tokens / PASS_COST_DIVISOR
    best = np.zeros(n + 1)
    start_of = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        starts = np.arange(max(0, end - batch_size), end)
        sizes = end - starts
        padded = sorted_lengths[end - 1] * sizes
        cost = best[starts] + pass_cost + padded
        cost[(padded > batch_tokens) & (sizes > 1)] = np.inf
        pick = int(np.argmin(cost))
        best[end], start_of[end] = cost[pick], starts[pick]
    batches: List[List[int]] = []
    end = n
    while end > 0:
        batches.append(list(order[start_of[end] : end]))
        end = int(start_of[end])
    return batches[::-1]


def word_encoder(tokenizer) -> Tokenizer:
    """A private copy of the fast tokenizer's backend that encodes pre-split words as
    fine-tuning did, with nothing cut off.

    Truncation and padding are off: a tokenizer.json may truncate (often to 128 or
    512), silently losing text. A byte-level BPE pre-tokenizer (RoBERTa, GPT-2) gets
    `add_prefix_space`, as transformers requires for `is_split_into_words=True`
    (run_ner sets it for them): every word is read as 'Ġword', the way it was trained.
    """
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    _prefix_space_for_words(state.get("pre_tokenizer"))
    encoder = Tokenizer.from_str(json.dumps(state))
    encoder.no_truncation()
    encoder.no_padding()
    return encoder


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX-512 BF16 or AMX), per torch."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def text_encoder(tokenizer) -> Tokenizer:
    """A private copy of the fast tokenizer's backend that encodes running text as the
    tokenizer itself does (sentence-transformers and transformers' pipelines read raw
    text, not pre-split words), with nothing cut off."""
    encoder = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    encoder.no_truncation()
    encoder.no_padding()
    return encoder


def _prefix_space_for_words(pre_tokenizer: Optional[dict]) -> None:
    if not pre_tokenizer:
        return
    if pre_tokenizer.get("type") == "ByteLevel":
        pre_tokenizer["add_prefix_space"] = True
    for inner in pre_tokenizer.get("pretokenizers") or []:
        _prefix_space_for_words(inner)


def special_tokens(tokenizer) -> Tuple[np.ndarray, np.ndarray]:
    """The ids the tokenizer puts before and after a single sequence (e.g. [CLS] and [SEP])."""
    encoded = tokenizer("x", return_special_tokens_mask=True)
    ids, special = encoded["input_ids"], encoded["special_tokens_mask"]
    content = [i for i, is_special in enumerate(special) if not is_special]
    first, last = (content[0], content[-1]) if content else (len(ids), len(ids) - 1)
    return np.array(ids[:first], dtype=np.int64), np.array(ids[last + 1 :], dtype=np.int64)


def model_max_length(model, tokenizer) -> int:
    """The longest input the model accepts, special tokens included."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions:
        positions -= position_offset(model)  # RoBERTa's start after the padding index
    limits = [n for n in (positions, tokenizer.model_max_length) if isinstance(n, int) and 0 < n < 1_000_000]
    return min(limits, default=512)



LARGE_LIMIT = 1_000_000  # tokenizers without a sub-word limit say 1e30


def piece_limit(tokenizer, encoder_config=None) -> int:
    """The sub-words one encoder pass may hold (a span model's: GLiNER, GLiREL): the tokenizer's
    limit (gliner's processor truncates there), else the encoder's positions, else 512."""
    limit = getattr(tokenizer, "model_max_length", None) or LARGE_LIMIT
    if limit >= LARGE_LIMIT:
        limit = getattr(encoder_config, "max_position_embeddings", None) or 512
    return int(limit)


def first_pieces(tokenizer, doc_word_lists: List[List[str]]) -> List[np.ndarray]:
    """Per Doc, each word's first sub-word index then the total (n_words + 1,), as a transformers
    tokenizer splits pre-split words (as gliner's processor and glirel's embedding layer call it)."""
    if not tokenizer.is_fast:  # no word_ids(): a word's pieces do not depend on its neighbours
        counts = {w: len(tokenizer.tokenize(w)) for words in doc_word_lists for w in set(words)}
        return [np.concatenate(([0], np.cumsum([counts[w] for w in words], dtype=np.int64))) for words in doc_word_lists]
    non_empty = [words for words in doc_word_lists if words]
    encoded = tokenizer(non_empty, is_split_into_words=True, add_special_tokens=False, verbose=False) if non_empty else None
    result, k = [], 0
    for words in doc_word_lists:
        counts = np.zeros(len(words), dtype=np.int64)
        if words:
            word_ids = np.array([w for w in encoded.word_ids(k) if w is not None], dtype=np.int64)
            counts = np.bincount(word_ids, minlength=len(words))
            k += 1
        result.append(np.concatenate(([0], np.cumsum(counts))))
    return result
