"""Load and check a Hugging Face token classifier, and pick the device it runs on."""
import os
from pathlib import Path
from typing import Optional, Tuple, Union

import torch
from thinc.util import get_torch_default_device
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from .errors import DirectNERError, Errors

def load_token_classifier(
    name: Union[str, Path],
    revision: Optional[str] = None,
    trust_remote_code: bool = False,
    local_only: bool = False,
):
    """Load (model, tokenizer) and refuse checkpoints that would give random or no entities.

    local_only: a directory written by direct_ner's to_disk; only safetensors
    weights are accepted from it.
    """
    name = str(name)
    _check_local_path(name)
    kwargs = dict(revision=revision, trust_remote_code=trust_remote_code, local_files_only=local_only)
    config = _from_pretrained(AutoConfig, name, **kwargs)
    _check_token_classifier(name, config)
    tokenizer = _from_pretrained(AutoTokenizer, name, use_fast=True, **kwargs)
    if not getattr(tokenizer, "is_fast", False):
        raise DirectNERError(Errors.E006.format(name=name, cls=type(tokenizer).__name__))
    weights_kwargs = dict(kwargs, use_safetensors=True) if local_only else kwargs
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # we report a missing head ourselves
    try:
        model, info = AutoModelForTokenClassification.from_pretrained(
            name, config=config, output_loading_info=True, **weights_kwargs
        )
    except (OSError, EnvironmentError, RuntimeError, ValueError) as err:
        raise DirectNERError(Errors.E010.format(name=name, reason=_first_line(err))) from None
    except Exception as err:  # unpickling errors come in many types
        if "pickle" in type(err).__module__ or "Unpickl" in type(err).__name__ or "weights_only" in str(err):
            raise DirectNERError(Errors.E010.format(name=name, reason=_first_line(err))) from None
        raise
    finally:
        hf_logging.set_verbosity(verbosity)
    _check_head_trained(name, model, info)
    model.eval()
    return model, tokenizer


def resolve_device(device: Optional[str]) -> torch.device:
    """The configured device, or the one thinc uses (spacy.require_gpu / prefer_gpu)."""
    if device is None:
        return get_torch_default_device()
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise DirectNERError(Errors.E009.format(device=device, reason=f"it is not a device name ({err})")) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DirectNERError(Errors.E009.format(device=device, reason="torch finds no CUDA GPU"))
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise DirectNERError(
            Errors.E009.format(device=device, reason=f"only {torch.cuda.device_count()} GPU(s) are visible")
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DirectNERError(Errors.E009.format(device=device, reason="MPS is not available"))
    return resolved


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1) or Path(name).exists()


def _check_local_path(name: str) -> None:
    path = Path(name).expanduser()
    if _looks_local(name) and not path.exists():
        raise DirectNERError(Errors.E002.format(path=name))


def _from_pretrained(cls, name: str, revision=None, **kwargs):
    try:
        return cls.from_pretrained(name, revision=revision, **kwargs)
    except (OSError, EnvironmentError) as err:
        raise DirectNERError(Errors.E003.format(name=name, revision=revision or "main", reason=_first_line(err))) from None
    except ValueError as err:  # e.g. a model type without a token-classification class
        raise DirectNERError(
            Errors.E004.format(name=name, architectures=f"unsupported ({_first_line(err)})")
        ) from None


def _check_token_classifier(name: str, config) -> None:
    architectures = getattr(config, "architectures", None) or []
    if architectures and not any(arch.endswith("ForTokenClassification") for arch in architectures):
        raise DirectNERError(Errors.E004.format(name=name, architectures=architectures))


def _check_head_trained(name: str, model, info: dict) -> None:
    prefix = getattr(model, "base_model_prefix", "") + "."
    head_missing = [key for key in info.get("missing_keys", []) if not key.startswith(prefix)]
    if head_missing:
        raise DirectNERError(
            Errors.E005.format(
                name=name,
                detail=f"transformers initialised {', '.join(sorted(head_missing))} at random "
                "(the checkpoint has no trained weights for them)",
            )
        )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
