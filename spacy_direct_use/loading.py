"""Load and check the Hugging Face checkpoint a component runs, and pick the device it runs on.

Each component names the head it needs (TASKS): a token classifier for direct_ner (entities)
and direct_tagger (tags), a sequence classifier for direct_textcat, a sentence encoder (a
checkpoint's encoder, no head) for direct_vectors and direct_textcat's zero-shot labels.
A checkpoint with another head, labels that do not fit its head, an untrained head, no fast
tokenizer, weights that would run code: each is refused before any Doc is read, with a
DirectUseError headed by the component that loads it (errors.speaking_for).
"""
import contextlib
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

import srsly
import torch
import transformers
from thinc.util import get_torch_default_device
from transformers import AutoConfig, AutoTokenizer
from transformers.utils import cached_file
from transformers.utils import logging as hf_logging

from .onnx_graph import load_onnx_classifier, onnx_graph_file
from .checkpoint_checks import TASKS, check_architecture, check_head_trained, check_label_ids, needs_remote_code, weights_error
from .errors import DirectUseError, Errors, first_line

GLINER_CONFIG = "gliner_config.json"
"""The file that marks a GLiNER checkpoint (read by the gliner package, not transformers)."""
GLIREL_CONFIG = "glirel_config.json"
"""The file that marks a GLiREL checkpoint (read by the glirel package; direct_rel)."""

NO_TOKENIZER_FILES = "no tokenizer files (tokenizer.json, vocab.txt, ...) that transformers can read"


@dataclass
class LoadedModel:
    """A checked checkpoint: its model (fp32), tokenizer, tags in id order, and the dtype
    its weights were stored in (saved pipelines keep it)."""

    model: torch.nn.Module
    tokenizer: Any
    labels: List[str]
    stored_dtype: Optional[torch.dtype]  # None: an ONNX graph, run as shipped


def load_checkpoint(
    name: Union[str, Path],
    task: str = "token",
    component: str = "direct_ner",
    check_labels: Optional[Callable[[List[str], str], None]] = None,
    revision: Optional[str] = None,
    trust_remote_code: bool = False,
    local_only: bool = False,
    check_head: bool = True,
    tokenizer: Optional[str] = None,
    id2label: Optional[Sequence[str]] = None,
    subfolder: str = "",
    onnx_file: Optional[str] = None,
) -> LoadedModel:
    """Load a checkpoint with the head `task` needs (TASKS: a classifier, or an encoder) for `component`, and refuse
    checkpoints that would give random or no predictions. The labels are checked
    (`check_labels(labels, name)`, the component's own rules) from the config,
    before any weights load.

    tokenizer: where to take the tokenizer from, if not from `name`. id2label: the
    tags in id order, replacing the config's. local_only: a directory written by
    direct_ner's to_disk; only safetensors weights are accepted from it. Weights
    stored in fp16/bf16 are cast to fp32 (what transformers 4 does, and 5 does not,
    as it loads with dtype="auto"), so a model runs alike on both and `precision`
    alone decides autocast. A local checkpoint shipped as an ONNX graph (no torch
    weights, or `onnx_file` set) runs in ONNX Runtime (onnx_graph.py). Every failure is
    a DirectUseError that names the problem and the fix, never an exception from
    inside transformers.
    """
    name = str(name)
    check_model_path(name)
    local = _looks_local(name)
    kwargs = dict(revision=revision, trust_remote_code=trust_remote_code, local_files_only=local_only)
    if subfolder:  # a sentence-transformers module directory such as 0_Transformer/
        kwargs["subfolder"] = subfolder
    config = _from_pretrained(AutoConfig, name, local=local, **kwargs)
    classifier = bool(TASKS[task].suffix)
    if classifier:
        check_architecture(name, config, TASKS[task], component)
        if id2label is not None:
            _set_labels(name, config, id2label)
        check_label_ids(name, config)
    labels = [config.id2label[i] for i in range(len(config.id2label))] if classifier else []
    if check_labels is not None and classifier:
        check_labels(labels, name)
    if tokenizer:
        check_path_exists(tokenizer)
        loaded_tokenizer = _load_tokenizer(tokenizer, trust_remote_code=trust_remote_code, local_files_only=local_only)
    else:
        loaded_tokenizer = _load_tokenizer(name, **kwargs)
    graph = onnx_graph_file(Path(name).expanduser() / subfolder, onnx_file) if local else None
    if graph is not None:
        model = load_onnx_classifier(name, graph, config, config.num_labels if classifier else None)
        return LoadedModel(model, loaded_tokenizer, labels, None)
    weights_kwargs = dict(kwargs, use_safetensors=True) if local_only else kwargs
    try:
        with quiet_transformers(progress_bar=not local):
            model, info = TASKS[task].auto_class.from_pretrained(
                name, config=config, output_loading_info=True, **weights_kwargs
            )
    except Exception as err:  # noqa: BLE001 - every failure becomes a DirectUseError
        raise weights_error(name, err, config.num_labels, TASKS[task], component) from None
    if check_head and classifier:
        check_head_trained(name, model, info)
    stored_dtype = _stored_dtype(config, model)
    model.float().eval()
    return LoadedModel(model, loaded_tokenizer, labels, stored_dtype)


def _stored_dtype(config, model) -> torch.dtype:
    """The dtype the checkpoint's weights were saved in: its config's (`torch_dtype`, 5.x
    `dtype`; 4.x loads them as fp32 whatever they were), else the loaded weights'."""
    for key in ("dtype", "torch_dtype"):
        declared = config.__dict__.get(key)
        if isinstance(declared, str):
            declared = getattr(torch, declared, None)
        if isinstance(declared, torch.dtype) and declared.is_floating_point:
            return declared
    return next(model.parameters()).dtype


def _set_labels(name: str, config, id2label: Sequence[str]) -> None:
    """Replace the config's labels by the `id2label` setting (e.g. over LABEL_0 ...)."""
    if len(id2label) != config.num_labels:
        raise DirectUseError(Errors.E028.format(name=name, given=len(id2label), outputs=config.num_labels))
    config.id2label = dict(enumerate(id2label))
    config.label2id = {label: i for i, label in enumerate(id2label)}


@contextlib.contextmanager
def quiet_transformers(progress_bar: bool) -> Iterator[None]:
    """No transformers warnings while weights load (a missing head is reported by
    direct_ner itself), and no progress bar for local weights: every spacy.load
    would draw transformers 5's "Loading weights" bar (and every to_disk its
    "Writing model shards" bar). Downloads keep theirs."""
    verbosity = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if not progress_bar and bar:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar and not hf_logging.is_progress_bar_enabled():
            hf_logging.enable_progress_bar()


def read_labels(model_dir: Union[str, Path]) -> List[str]:
    """The labels of a local checkpoint (or of a model direct_ner saved) in id order, from
    its config.json alone; a DirectUseError naming the file if it is missing or damaged."""
    path = Path(model_dir) / "config.json"
    try:
        id2label = srsly.read_json(path)["id2label"]
        return [id2label[key] for key in sorted(id2label, key=int)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DirectUseError(Errors.E054.format(file=path, reason=_config_reason(path, err))) from None


def read_json(name: str, filename: str, revision: Optional[str], local_only: bool) -> Optional[Any]:
    """A JSON file of a local checkpoint or a hub repository (transformers' cached_file:
    the hub cache, downloading where allowed); None where there is no such file."""
    try:
        path = cached_file(
            name, filename, revision=revision, local_files_only=local_only,
            _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - no such repository or file: loading the model reports it
        return None
    return srsly.read_json(path) if path else None


def _config_reason(path: Path, err: BaseException) -> str:
    if not path.is_file():
        return "the file does not exist"
    if isinstance(err, KeyError):
        return f"it has no {err}"
    if isinstance(err, (AttributeError, TypeError)) or (isinstance(err, ValueError) and "int()" in str(err)):
        return "its id2label is not a mapping of label ids to labels"
    return f"it is not valid JSON: {first_line(err)}"


def resolve_device(device: Optional[str]) -> torch.device:
    """The configured device, or the one thinc uses (spacy.require_gpu / prefer_gpu)."""
    if device is None:
        return get_torch_default_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise DirectUseError(Errors.E009.format(device=device, reason=f"it is not a device name ({first_line(err)})")) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DirectUseError(Errors.E009.format(device=device, reason="torch finds no CUDA GPU"))
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise DirectUseError(
            Errors.E009.format(device=device, reason=f"only {torch.cuda.device_count()} GPU(s) are visible")
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DirectUseError(Errors.E009.format(device=device, reason="MPS is not available"))
    if resolved.type == "meta":
        raise DirectUseError(Errors.E009.format(device=device, reason="the meta device holds no data to compute with"))
    if resolved.type not in ("cpu", "cuda", "mps"):
        try:
            torch.zeros(1, device=resolved)
        except Exception as err:  # noqa: BLE001 - e.g. a backend that is not installed
            raise DirectUseError(
                Errors.E009.format(device=device, reason=f"torch cannot use it ({first_line(err)})")
            ) from None
    return resolved


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1) or Path(name).exists()


def check_path_exists(name: str) -> None:
    """Refuse a local path (e.g. of the `tokenizer` setting) that does not exist."""
    if _looks_local(name) and not Path(name).expanduser().exists():
        raise DirectUseError(Errors.E002.format(path=name))


def check_model_path(name: str) -> None:
    """Refuse a local path that does not exist or holds no saved Hugging Face model."""
    check_path_exists(name)
    path = Path(name).expanduser()
    if not path.exists():
        return
    if path.is_file():
        raise DirectUseError(
            Errors.E013.format(path=name, detail="it is a file, not a directory", hint=f"; did you mean '{path.parent}'?")
        )
    if not any((path / name).is_file() for name in ("config.json", "modules.json", GLINER_CONFIG, GLIREL_CONFIG)):
        nested = _nested_model_dirs(path)
        hint = f"; did you mean {' or '.join(repr(str(d)) for d in nested)}?" if nested else ""
        raise DirectUseError(Errors.E013.format(path=name, detail="the directory has no config.json", hint=hint))


def _nested_model_dirs(path: Path, limit: int = 3) -> list:
    """Sub-directories (two levels down at most) that hold a config.json, e.g. checkpoint-500/."""
    found = []
    try:
        children = sorted(p for p in path.iterdir() if p.is_dir())
        for child in children:
            candidates = [child] + sorted(p for p in child.iterdir() if p.is_dir())
            found.extend(c for c in candidates if (c / "config.json").is_file())
            if len(found) >= limit:
                break
    except OSError:
        pass
    return found[:limit]


def _from_pretrained(cls, name: str, revision=None, local: bool = False, **kwargs):
    try:
        return cls.from_pretrained(name, revision=revision, **kwargs)
    except Exception as err:  # noqa: BLE001 - every failure becomes a DirectUseError
        if needs_remote_code(err):
            raise DirectUseError(Errors.E018.format(name=name)) from None
        if isinstance(err, ValueError):  # e.g. a model type this transformers does not know
            raise DirectUseError(
                Errors.E020.format(name=name, version=transformers.__version__, reason=first_line(err))
            ) from None
        if local:
            raise DirectUseError(Errors.E016.format(name=name, reason=first_line(err))) from None
        raise DirectUseError(Errors.E003.format(name=name, revision=revision or "main", reason=first_line(err))) from None


def _load_tokenizer(name: str, **kwargs):
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True, **kwargs)
    except Exception as err:  # noqa: BLE001 - missing files surface as ImportError, TypeError, ...
        if needs_remote_code(err):
            raise DirectUseError(Errors.E018.format(name=name)) from None
        reason = first_line(err)
        if isinstance(err, (ImportError, TypeError)) or "protobuf" in str(err):
            reason = NO_TOKENIZER_FILES
        raise DirectUseError(Errors.E014.format(name=name, reason=reason)) from None
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise DirectUseError(Errors.E006.format(name=name, cls=type(tokenizer).__name__))
    if not set(tokenizer.get_vocab()) - set(tokenizer.all_special_tokens):
        # transformers 5 builds an empty tokenizer when a directory has no tokenizer files
        raise DirectUseError(Errors.E014.format(name=name, reason=NO_TOKENIZER_FILES))
    return tokenizer
