"""Several short windows in one row of a forward pass.

A batch of a few Docs holds windows of many lengths; padding each pass to its
longest window wastes compute that a whole length-sorted corpus would not (a
64-sentence batch padded 1.75 sub-words per word against 1.46). Packing short
windows side by side into rows of PACK_WIDTH sub-words, each window attending
only to itself (a block-diagonal attention mask) with its own position ids, gives
full rows and few passes whatever the batch.

transformers offers no public way to pack an encoder's inputs (its padding-free
collator exists for decoders with flash attention only), and models take custom
masks in different shapes (4.x: (rows, width, width) of 0/1; 5.x: an additive
(rows, 1, width, width) one), or not at all. So `packed_mask_kind` runs a probe
once per model and packing is used only where the model gives a window the same
logits packed as alone.
"""
import bisect
import inspect
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

PACK_WIDTH = 96
"""Row width for packed windows (special tokens included). Wider rows spend more on
attention between windows that the mask then throws away, narrower ones leave more
windows unpacked (docs/how-it-works.md, "Constants chosen on dev data")."""

MASK_KINDS = ("additive_4d", "binary_3d")
"""Block-diagonal mask formats tried in order: transformers 5 passes a 4D mask
through as it is (added to the attention scores); 4.x expands a 3D one itself."""

MASK_INPUTS = {"additive_4d": (4, "f32"), "binary_3d": (3, "i64")}
"""Each mask kind's rank and element type (what a converted graph takes, openvino_engine.py)."""

PADDING_OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer")
"""Models whose position ids start after the padding index (pad_token_id + 1)."""


def pack_rows(lengths: Sequence[int], width: int) -> List[List[int]]:
    """Group window indices into rows of at most `width` sub-words (best-fit
    decreasing: each window, longest first, goes to the fullest row it fits in).
    A window longer than `width` gets a row of its own."""
    rows: List[List[int]] = []
    rooms: List[tuple] = []  # (free sub-words, row index), sorted
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        size = lengths[i]
        slot = bisect.bisect_left(rooms, (size, -1))
        if slot < len(rooms):
            room, row = rooms.pop(slot)
            rows[row].append(i)
        else:
            room, row = width, len(rows)
            rows.append([i])
        if room - size > 0:
            bisect.insort(rooms, (room - size, row))
    return rows


def position_offset(model) -> int:
    """The position id of a sequence's first token for this model."""
    config = model.config
    if getattr(config, "model_type", "") in PADDING_OFFSET_MODELS:
        return config.pad_token_id + 1
    return 0


def packed_inputs(rows: List[List[np.ndarray]], pad_id: int, first_position: int, mask_kind: str) -> Dict[str, torch.Tensor]:
    """input_ids, position_ids and a block-diagonal attention mask for rows of
    sequences (special tokens included), padded to the longest row."""
    width = max(sum(len(seq) for seq in row) for row in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    position_ids = np.full((len(rows), width), first_position, dtype=np.int64)
    segment = np.full((len(rows), width), -1, dtype=np.int64)  # which sequence; -1: padding
    for r, row in enumerate(rows):
        for k, (offset, seq) in enumerate(row_starts(row)):
            end = offset + len(seq)
            input_ids[r, offset:end] = seq
            position_ids[r, offset:end] = np.arange(first_position, first_position + len(seq))
            segment[r, offset:end] = k
    # padding attends to itself only, so no attention row is empty (softmax stays finite)
    attend = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
    attend |= np.eye(width, dtype=bool)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "position_ids": torch.from_numpy(position_ids),
        "attention_mask": _mask_tensor(attend, mask_kind),
    }


def _mask_tensor(attend: np.ndarray, mask_kind: str) -> torch.Tensor:
    if mask_kind == "binary_3d":
        return torch.from_numpy(attend.astype(np.int64))
    mask = np.where(attend, 0.0, np.finfo(np.float32).min).astype(np.float32)
    return torch.from_numpy(mask[:, None])


def packed_mask_kind(model, probe: List[np.ndarray], pad_id: int) -> Optional[str]:
    """The first mask kind with which `model` (fp32) gives each probe sequence the
    logits it gives alone; None if none does (the model then runs unpacked)."""
    if "position_ids" not in _forward_parameters(model):
        return None  # e.g. DistilBERT in transformers 4.x: positions cannot restart
    first_position = position_offset(model)
    with torch.inference_mode():
        alone = [model(input_ids=torch.from_numpy(seq[None])).logits[0] for seq in probe]
        rows = [probe, probe[:1]]  # two sequences side by side; one followed by padding
        for mask_kind in MASK_KINDS:
            try:
                logits = model(**packed_inputs(rows, pad_id, first_position, mask_kind)).logits
            except Exception:  # model code may reject a mask in any way: try the next kind
                continue
            packed = [logits[r, start : start + len(seq)] for r, row in enumerate(rows) for start, seq in row_starts(row)]
            expected = alone + alone[:1]
            if all(torch.allclose(p, a, rtol=1e-4, atol=1e-5) for p, a in zip(packed, expected)):
                return mask_kind
    return None


def row_starts(row: Sequence[np.ndarray]) -> List[tuple]:
    """(offset in the row, sequence) for each sequence of a packed row."""
    starts, offset = [], 0
    for seq in row:
        starts.append((offset, seq))
        offset += len(seq)
    return starts


def _forward_parameters(model) -> Sequence[str]:
    return tuple(inspect.signature(model.forward).parameters)
