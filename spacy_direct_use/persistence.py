"""A component's files inside a saved pipeline: model/ (the checkpoint as loaded, its tokenizer,
and any int8 or OpenVINO model it runs), cfg (what its route decided at load), and a manifest
of every file (manifest.py), verified before anything saved is read."""
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Optional, Tuple, Union

import srsly
import torch
from spacy.util import from_disk as util_from_disk
from spacy.util import make_tempdir
from spacy.util import to_disk as util_to_disk

from .errors import DirectUseError, Errors
from .int8 import SAVED_FILE as SAVED_INT8_FILE
from .int8 import Int8Classifier
from .loading import quiet_transformers, read_labels
from .manifest import MANIFEST_FILE, verify_manifest, write_manifest
from .onnx_graph import SAVED_FILE as SAVED_ONNX_FILE
from .openvino_engine import OpenVinoModel

SAVED_TOP_FILES = ("cfg", MANIFEST_FILE)
"""The files to_disk writes beside the model/ directory."""


class PipelineFiles:
    """to_disk / from_disk / to_bytes / from_bytes for a DirectPipe (a mixin: it reads the
    component's route, settings and loaded model)."""

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save the checkpoint (its route decides how; settings live in config.cfg), then a
        manifest of every file saved."""
        self._ensure_loaded()
        util_to_disk(path, {"model": self._save_model, "cfg": self._save_cfg}, exclude)
        write_manifest(Path(path))  # last: it covers whatever was written above

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> Any:
        """Load what to_disk wrote, once its manifest shows every file is as saved; the
        model itself loads lazily, offline."""
        verify_manifest(Path(path), exclude)  # before anything saved is read
        util_from_disk(path, {"model": self._use_saved_model, "cfg": self._read_cfg}, exclude)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with make_tempdir() as tmp:
            self.to_disk(tmp, exclude=exclude)
            files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> Any:
        files = srsly.msgpack_loads(bytes_data)
        with make_tempdir() as tmp:
            for name, data in files.items():
                target = tmp.joinpath(*_saved_file_parts(name))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(tmp, exclude=exclude)
            self._ensure_loaded()  # the temporary directory is about to vanish
        return self

    def _save_cfg(self, path: Path) -> None:
        srsly.write_json(path, self.route.saved_state())

    def _read_cfg(self, path: Path) -> None:
        if path.exists():  # pipelines saved before it was written have none
            self._restored = srsly.read_json(path)
            if self._route is not None:  # decided from the saved model/ directory, read just before
                self._route.restore_state(self._restored)

    def _save_model(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.route.save(path)
        readable_by_all(path)

    def _use_saved_model(self, path: Path) -> None:
        self._source, self._local_only = path, True
        self._model = self._tokenizer = self._runner = self._route = None
        route = self.route  # decided again from the saved files
        route.read_saved(path)
        self._model_labels = read_labels(path) if route.TASK in ("token", "sequence") else []

    # -- the shared core's checkpoint (a route that loads its own model saves its own) ----

    def save_head(self, path: Path) -> None:
        """The checkpoint as loaded, its weights in the dtype they were stored in (an fp16
        checkpoint stays half the size), the tokenizer it was read with, and the int8 or
        OpenVINO model it runs."""
        with quiet_transformers(progress_bar=False):
            if isinstance(self._model, torch.nn.Module):
                state = {key: _cast_floats(value, self._stored_dtype) for key, value in self._model.state_dict().items()}
                self._model.save_pretrained(path, state_dict=state, safe_serialization=True)
            else:  # a checkpoint shipped as an ONNX graph: its config and graph
                self._model.config.save_pretrained(path)
                (path / SAVED_ONNX_FILE).write_bytes(self._model.onnx_model)
        self._tokenizer.save_pretrained(path)
        if isinstance(self._runner.model, Int8Classifier):
            (path / SAVED_INT8_FILE).write_bytes(self._runner.model.onnx_model)
        if isinstance(self._runner.model, OpenVinoModel):
            self._runner.model.save(path, self.settings.precision)

    def check_saved_head(self, path: Path) -> None:
        if not (path / "model.safetensors").exists() and not (path / SAVED_ONNX_FILE).exists():
            raise DirectUseError(Errors.E012.format(path=path))

    def saved_engine_dir(self) -> Optional[Path]:
        """The saved pipeline's model/ directory, where its engine's model may be (None: not a saved pipeline)."""
        return Path(self._source) if self._local_only else None

    def saved_int8(self) -> Optional[bytes]:
        """The int8 graph a saved pipeline holds, when it runs in int8 on the torch engine."""
        saved = Path(self._source) / SAVED_INT8_FILE
        if self.settings.precision == "int8" and self._local_only and saved.is_file():
            return saved.read_bytes()
        return None


def readable_by_all(path: Path) -> None:
    """Saved files readable by others, as spaCy's own files are (safetensors writes 0600)."""
    for saved in path.rglob("*"):
        saved.chmod(saved.stat().st_mode | (0o555 if saved.is_dir() else 0o444))


def _cast_floats(tensor, dtype):
    """`tensor` in `dtype` if both are floating point, else as it is."""
    if dtype is not None and tensor.is_floating_point() and dtype.is_floating_point:
        return tensor.to(dtype)
    return tensor


def _saved_file_parts(name: str) -> Tuple[str, ...]:
    """The parts of a file name from to_bytes; anything else (an absolute path, '..',
    a backslash) could write outside the temporary directory and is refused."""
    path = PurePosixPath(name)
    parts = path.parts
    unsafe = any(p in ("", ".", "..") or "\\" in p or ":" in p for p in parts)
    known = (len(parts) >= 2 and parts[0] == "model") or (len(parts) == 1 and parts[0] in SAVED_TOP_FILES)
    if not known or path.is_absolute() or unsafe:
        raise DirectUseError(Errors.E026.format(name=name))
    return parts
