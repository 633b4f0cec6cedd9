"""Batched forward passes: sub-word id sequences in, per-sub-word label probabilities out."""
import contextlib
import json
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from tokenizers import Tokenizer

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_BATCH_TOKENS = {"cpu": 1536, "cuda": 32768}
"""Padded sub-words per forward pass when `forward_batch_tokens` is not set. On CPU,
throughput peaks at about 800-3,000 (smaller batches pay per-call overhead,
bigger ones get slower per sub-word; scripts/batch_shapes.py); a GPU wants far more."""


def _single_threaded_after_fork() -> None:
    """In a forked child (nlp.pipe(n_process=...)), run torch single-threaded: the
    parent's OpenMP pool does not survive fork, and entering a parallel region on
    it deadlocks. This must hold before the child's first torch op, whether the
    model was loaded in the parent or loads lazily in the child."""
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_after_fork)


class TokenClassifierRunner:
    """Runs a Hugging Face token classifier over many windows at once.

    Windows are sorted by length and grouped into batches of at most
    `batch_size` windows and `batch_tokens` padded sub-words (default: by
    device, DEFAULT_BATCH_TOKENS), so padding stays small and short windows
    share a pass; special tokens are added around each window.
    """

    def __init__(
        self,
        model,
        tokenizer,
        device: torch.device,
        precision: str,
        batch_size: int,
        batch_tokens: Optional[int],
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS.get(device.type, DEFAULT_BATCH_TOKENS["cuda"])
        self.autocast_dtype = PRECISIONS[precision]
        self.encoder = word_encoder(tokenizer)
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.max_length = model_max_length(model, tokenizer)

    @property
    def content_length(self) -> int:
        """The most sub-words a window may hold besides special tokens."""
        return self.max_length - len(self.prefix) - len(self.suffix)

    def predict(self, sequences: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Probabilities (len(seq), n_labels) for each id sequence."""
        outputs: List[np.ndarray] = [None] * len(sequences)  # type: ignore[list-item]
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for batch in length_batches(order, [len(s) for s in sequences], self.batch_size, self.batch_tokens):
            probs = self._forward([sequences[i] for i in batch])
            for row, i in enumerate(batch):
                start = len(self.prefix)
                outputs[i] = probs[row, start : start + len(sequences[i])]
        return outputs

    def _forward(self, sequences: List[np.ndarray]) -> np.ndarray:
        width = max(len(s) for s in sequences) + len(self.prefix) + len(self.suffix)
        input_ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, seq in enumerate(sequences):
            ids = np.concatenate((self.prefix, seq, self.suffix))
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        with torch.inference_mode(), self._autocast():
            logits = self.model(
                input_ids=self._to_device(input_ids), attention_mask=self._to_device(attention_mask)
            ).logits
            return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def length_batches(order: List[int], lengths: List[int], batch_size: int, batch_tokens: int) -> List[List[int]]:
    """Cut length-sorted indices into batches within both limits (padded size)."""
    batches: List[List[int]] = []
    batch: List[int] = []
    for i in order:
        if batch and (len(batch) >= batch_size or lengths[i] * (len(batch) + 1) > batch_tokens):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


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
    if positions and getattr(model.config, "model_type", "") in _PADDING_OFFSET_MODELS:
        positions -= model.config.pad_token_id + 1  # positions start after the padding index
    limits = [n for n in (positions, tokenizer.model_max_length) if isinstance(n, int) and 0 < n < 1_000_000]
    return min(limits, default=512)


_PADDING_OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer")
