"""A GLiREL checkpoint loaded and saved for direct_rel.

glirel's `GLiREL.from_pretrained` passes `proxies`/`resume_download` to huggingface_hub, which
the hub that transformers 5 needs refuses; `load_glirel` reads the same two files
(glirel_config.json, pytorch_model.bin) itself, builds `GLiREL(config)` as glirel's
`_from_pretrained` does, and loads the weights with every tensor of the model accounted for
(glirel's strict=False would ignore a mismatched checkpoint silently: E085). `save_glirel`
writes what a saved pipeline needs to rebuild it with no hub and no cache.
"""
import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

from .errors import DirectUseError, Errors, first_line
from .loading import GLIREL_CONFIG, quiet_transformers, read_json

GLIREL_WEIGHTS = "pytorch_model.bin"
SAVED_ENCODER = "encoder"
"""In a saved pipeline: the encoder's config, extended tokenizer and weights (model_name points here)."""
SAVED_HEAD = "glirel_head.safetensors"
"""In a saved pipeline: every tensor of GLiREL outside the encoder."""
ENCODER_PREFIX = "token_rep_layer.bert_layer.model."


def is_glirel_checkpoint(name: Union[str, Path], revision: Optional[str], local_only: bool) -> bool:
    """Whether `name` (a directory or hub repository) holds a GLiREL checkpoint."""
    if Path(name).expanduser().is_dir():
        return (Path(name).expanduser() / GLIREL_CONFIG).is_file()
    return read_json(str(name), GLIREL_CONFIG, revision, local_only) is not None


def load_glirel(name: Union[str, Path], revision: Optional[str], local_only: bool, device: torch.device):
    """The checkpoint as glirel's `GLiREL.from_pretrained` builds it, in eval mode, on `device`:
    E080 without glirel, E084 where it is not a GLiREL checkpoint, E085 where its weights do not
    fit the architecture its config names."""
    try:
        from glirel import GLiREL
        from glirel.model import load_config_as_namespace
    except ImportError as err:
        raise DirectUseError(Errors.E080.format(name=name, missing=(err.name or "glirel").split(".")[0])) from None
    directory = Path(name).expanduser()
    if not is_glirel_checkpoint(name, revision, local_only):
        raise DirectUseError(Errors.E084.format(name=name))
    try:
        config_file, weights_file = _checkpoint_files(name, directory, revision, local_only)
        config = load_config_as_namespace(config_file)
        saved = directory.is_dir() and (directory / SAVED_HEAD).is_file()
        if saved:  # a saved pipeline: the encoder lies beside the head, nothing from the hub
            config.model_name = str(directory / SAVED_ENCODER)
        # one label list for every window: glirel otherwise orders each window's labels by set()
        config.fixed_relation_types = True
        config.device = str(device)
        with quiet_transformers(progress_bar=False), quiet_glirel():
            model = GLiREL(config)
        state = _read_state(weights_file, saved)
    except DirectUseError:
        raise
    except Exception as err:  # noqa: BLE001 - every failure becomes a DirectUseError
        reason = first_line(err)
        if directory.is_dir():
            raise DirectUseError(Errors.E016.format(name=name, reason=reason)) from None
        raise DirectUseError(Errors.E003.format(name=name, revision=revision or "main", reason=reason)) from None
    _load_state(model, state, name, encoder_saved=saved)
    model.to(device)
    return model.eval()


def _checkpoint_files(name, directory: Path, revision: Optional[str], local_only: bool) -> Tuple[str, str]:
    """glirel_config.json and the weights: local files, or downloaded from the hub with the
    arguments this huggingface_hub takes (glirel's own download passes ones it refuses)."""
    if directory.is_dir():
        weights = directory / (SAVED_HEAD if (directory / SAVED_HEAD).is_file() else GLIREL_WEIGHTS)
        return str(directory / GLIREL_CONFIG), str(weights)
    from huggingface_hub import hf_hub_download

    files = [hf_hub_download(str(name), f, revision=revision, local_files_only=local_only) for f in (GLIREL_CONFIG, GLIREL_WEIGHTS)]
    return files[0], files[1]


def _read_state(weights_file: str, saved: bool) -> Dict[str, torch.Tensor]:
    if saved:
        from safetensors.torch import load_file

        return load_file(weights_file)
    return torch.load(weights_file, map_location="cpu", weights_only=True)


def _load_state(model, state: Dict[str, torch.Tensor], name, encoder_saved: bool) -> None:
    """The checkpoint's tensors into `model`; E085 where one the model has is missing or
    another's shape differs (glirel loads with strict=False and would go on silently)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not (encoder_saved and k.startswith(ENCODER_PREFIX))]
    missing = [k for k in missing if not k.endswith("position_ids")]  # a buffer, rebuilt by transformers
    wrong = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if missing or wrong:
        raise DirectUseError(Errors.E085.format(name=name, missing=missing[:5], n_missing=len(missing), wrong=wrong[:5]))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


class quiet_glirel:
    """glirel logs through loguru (every window past max_len, every markerv2 model): off while
    direct_rel calls it, as direct_rel reports what matters itself."""

    def __enter__(self):
        try:
            from loguru import logger

            logger.disable("glirel")
        except ImportError:  # pragma: no cover - glirel's import needs loguru
            pass

    def __exit__(self, *exc) -> None:
        try:
            from loguru import logger

            logger.enable("glirel")
        except ImportError:  # pragma: no cover
            pass


def save_glirel(model, path: Path) -> None:
    """Everything a saved pipeline needs to rebuild the model with no hub and no cache: glirel's
    config (model_name pointing at the saved encoder), the encoder's config, its tokenizer as
    extended at construction ([REL], [SEP], [E], [/E], [FLERT]) and its weights, then every other
    tensor in safetensors."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    embeddings = model.token_rep_layer.bert_layer
    with quiet_transformers(progress_bar=False):
        embeddings.model.save_pretrained(path / SAVED_ENCODER, safe_serialization=True)
        embeddings.tokenizer.save_pretrained(path / SAVED_ENCODER)
    head = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith(ENCODER_PREFIX)}
    save_file(head, str(path / SAVED_HEAD))
    config = {k: v for k, v in vars(model.config).items() if _json_value(v)}
    config["model_name"] = SAVED_ENCODER  # resolved against the saved directory at load
    (path / GLIREL_CONFIG).write_text(json.dumps(config, indent=2))


def _json_value(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False
