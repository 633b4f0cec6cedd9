"""Sentence embeddings as a sentence-transformers checkpoint declares them.

A sentence-transformers model is a stack of modules listed in its `modules.json`:
Transformer (the encoder, in the directory's root or a sub-directory such as
`0_Transformer/`) -> Pooling (`1_Pooling/config.json`: cls, max, mean,
mean_sqrt_len_tokens, weightedmean, lasttoken, several concatenated in that order)
-> Normalize (unit length). `read_sentence_layout` reads that declaration from the
files; a plain encoder (no modules.json) takes the `pooling` setting.

The pooling is written here rather than taken from sentence-transformers' Pooling
module: that module's constructor and config keys changed across its major versions
(legacy `pooling_mode_*_tokens` flags, then `pooling_mode`), and the package would
add scikit-learn and scipy to every install for a masked mean. The reductions below
are those of sentence-transformers 6's `Pooling._forward_padded`, tested equal to it.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import DirectUseError, Errors
from .inference import Runner
from .loading import read_json
from .route import Route
from .windows import Window, weighted_mean

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
"""sentence-transformers' pooling modes, in the order it concatenates them."""
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
POOLING_ALIASES = {"mean_sqrt_len": "mean_sqrt_len_tokens"}


@dataclass
class SentenceLayout:
    """How a checkpoint turns its encoder's output into one vector per text."""

    subfolder: str  # where the Transformer module lies ("" for the root)
    pooling: Tuple[str, ...]
    normalize: bool
    max_seq_length: Optional[int]  # sub-words per text sentence-transformers reads (special tokens included)

    def to_dict(self) -> Dict[str, Any]:
        return {"pooling": list(self.pooling), "normalize": self.normalize, "max_seq_length": self.max_seq_length}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SentenceLayout":
        return cls("", tuple(data["pooling"]), bool(data["normalize"]), data.get("max_seq_length"))


def read_sentence_layout(name: str, revision: Optional[str], local_only: bool, pooling: Optional[str], normalize: Optional[bool]) -> SentenceLayout:
    """The checkpoint's declared modules (modules.json), or a plain encoder's
    `pooling` setting (mean when unset); `pooling` / `normalize` settings override."""
    modules = read_json(name, "modules.json", revision, local_only)
    if modules is None:
        return SentenceLayout("", parse_pooling(pooling or "mean"), bool(normalize), None)
    kinds = {str(m.get("type", "")).rsplit(".", 1)[-1]: m.get("path", "") for m in modules}
    if "Transformer" not in kinds:
        found = sorted(kinds)
        raise DirectUseError(Errors.E064.format(name=name, modules=found))
    subfolder = kinds["Transformer"].strip("/")
    declared = _pooling_modes(read_json(name, f"{kinds['Pooling']}/config.json", revision, local_only) or {}) if "Pooling" in kinds else ("cls",)
    modes = parse_pooling(pooling) if pooling else declared
    bert_config = read_json(name, f"{subfolder}/sentence_bert_config.json" if subfolder else "sentence_bert_config.json", revision, local_only) or {}
    return SentenceLayout(
        subfolder, modes, "Normalize" in kinds if normalize is None else bool(normalize), bert_config.get("max_seq_length")
    )


def parse_pooling(pooling: str) -> Tuple[str, ...]:
    """The `pooling` setting ("mean", or several joined by "+": "cls+mean") as modes."""
    modes = tuple(POOLING_ALIASES.get(mode.strip(), mode.strip()) for mode in str(pooling).split("+"))
    if not modes or any(mode not in POOLING_MODES for mode in modes):
        raise DirectUseError(Errors.E008.format(key="pooling", value=pooling, options=list(POOLING_MODES), example="mean"))
    return modes


def _pooling_modes(config: Dict[str, Any]) -> Tuple[str, ...]:
    """The modes of a Pooling config.json: `pooling_mode` (sentence-transformers >= 5.2)
    or the legacy `pooling_mode_*` flags; mean when none is set (as sentence-transformers does)."""
    mode = config.get("pooling_mode")
    if mode:
        return (mode,) if isinstance(mode, str) else tuple(mode)
    return tuple(m for key, m in _LEGACY_POOLING_KEYS.items() if config.get(key)) or ("mean",)


def pool(hidden: torch.Tensor, mask: torch.Tensor, modes: Sequence[str]) -> torch.Tensor:
    """sentence-transformers' pooling of token embeddings (rows, length, dim) under a 2D
    mask (right padding), modes concatenated in their order."""
    hidden = hidden.float()
    weights = mask.unsqueeze(-1).float()
    vectors = []
    for mode in modes:
        if mode == "cls":
            vectors.append(hidden[:, 0])
        elif mode == "max":
            vectors.append(hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            count = torch.clamp(weights.sum(dim=1), min=1e-9)
            vectors.append((hidden * weights).sum(dim=1) / (count if mode == "mean" else torch.sqrt(count)))
        elif mode == "weightedmean":
            positions = weights * torch.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype, device=hidden.device).view(1, -1, 1)
            vectors.append((hidden * positions).sum(dim=1) / torch.clamp(positions.sum(dim=1), min=1e-9))
        else:  # lasttoken
            last = mask.sum(dim=1).long().clamp(min=1) - 1
            vectors.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])
    return torch.cat(vectors, dim=-1)


class EmbeddingRunner(Runner):
    """Runs an encoder (transformers' AutoModel) over many inputs at once; each gives
    its pooled vector (before any normalization) and its sub-words' hidden states."""

    ENCODER = True

    def __init__(
        self, model, tokenizer, device, precision: str, batch_size: int, batch_tokens: Optional[int], layout: SentenceLayout,
        saved_int8: Optional[bytes] = None,
    ) -> None:
        super().__init__(model, tokenizer, device, precision, batch_size, batch_tokens, pack=False, saved_int8=saved_int8, per_token=False)
        self.layout = layout
        if layout.max_seq_length:
            self.max_length = min(self.max_length, layout.max_seq_length)

    def _outputs(self, model_inputs: Dict[str, torch.Tensor]) -> List[Tuple[np.ndarray, np.ndarray]]:
        hidden = self.model(**model_inputs).last_hidden_state
        pooled = pool(hidden, model_inputs["attention_mask"], self.layout.pooling).cpu().numpy()
        hidden = hidden.float().cpu().numpy()
        return list(zip(pooled, hidden))

    def embed_texts(self, texts: List[str]) -> np.ndarray:
        """Each text's sentence embedding as sentence-transformers' encode gives it (texts
        cut at max_seq_length, as it does; used for short label descriptions)."""
        encodings = self.text_encoder.encode_batch(texts, add_special_tokens=False)
        inputs = [np.concatenate((self.prefix, e.ids[: self.content_length], self.suffix)).astype(np.int64) for e in encodings]
        return self.finish(np.stack([pooled for pooled, _ in self.run(inputs)]))

    def finish(self, vectors: np.ndarray) -> np.ndarray:
        """Pooled vectors normalized to unit length where the checkpoint declares Normalize."""
        vectors = vectors.astype(np.float32)
        if self.layout.normalize:
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12, None)
        return vectors

    def combine(self, windows: List[Window], pooled: Sequence[np.ndarray]) -> np.ndarray:
        """One text's vector from its windows' pooled vectors: each finished (normalized where
        declared), their mean weighted by each window's core, finished again. A text of one
        window gets exactly its embedding. Chosen on STS-B dev pairs made long (docs/how-it-works.md, "Constants chosen on dev data")."""
        return self.finish(weighted_mean(windows, list(self.finish(np.stack(pooled)))))


class SentenceEncoding(Route):
    """What the routes that read a sentence encoder share (direct_vectors, direct_textcat's
    zero-shot by similarity and fitted categories): the checkpoint's declared layout (read
    from its files when it loads, saved with the pipeline) and its running text read."""

    NAME = "embedding"
    TASK = "embedding"

    def __init__(self, pipe) -> None:
        super().__init__(pipe)
        self.layout: Optional[SentenceLayout] = None

    @property
    def subfolder(self) -> str:
        """Where the Transformer module lies in the checkpoint ("" in a saved pipeline)."""
        return self.layout.subfolder if self.layout is not None and not self.pipe._local_only else ""

    def load(self) -> "EmbeddingRunner":
        if self.layout is None:
            settings = self.pipe.settings
            self.layout = read_sentence_layout(str(self.pipe._source), settings.revision, self.pipe._local_only, settings.pooling, settings.normalize)
        return super().load()

    @property
    def labels(self) -> Tuple[str, ...]:
        return ()

    def saved_state(self) -> Dict[str, Any]:
        return {"sentence_layout": self.layout.to_dict()} if self.layout is not None else {}

    def restore_state(self, state: Dict[str, Any]) -> None:
        if "sentence_layout" in state:
            self.layout = SentenceLayout.from_dict(state["sentence_layout"])
