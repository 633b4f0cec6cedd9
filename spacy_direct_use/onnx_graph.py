"""Checkpoints shipped as ONNX graphs, run in ONNX Runtime like a transformers model.

Layouts: transformers.js exports (`onnx/model.onnx` beside variants such as
`onnx/model_quantized.onnx`, `model_fp16.onnx`, `model_q4.onnx`), Optimum exports
(`model.onnx` at the root), and a saved pipeline's `model.onnx`; each next to
`config.json` and the tokenizer files. Quantized graphs run as shipped (int8
`QLinear*`/`MatMulInteger`, 4-bit `MatMulNBits`, fp16). What the core needs from a
graph is read from it: its inputs (`token_type_ids` or not) and its outputs.
Needs ONNX Runtime: pip install "spacy-direct-use[onnx]".
"""
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List, Optional, Union

import numpy as np
import torch

from .errors import DirectUseError, Errors, first_line

GRAPH_DIRS = ("", "onnx")
FULL_PRECISION = ("model.onnx", "onnx/model.onnx")
"""The graphs picked when a checkpoint holds several and `onnx_file` is not set."""
SAVED_FILE = "model.onnx"
"""A saved pipeline's graph, for a checkpoint shipped as one (to_disk writes it beside config.json)."""
TORCH_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class OnnxClassifier:
    """An ONNX Runtime session called like a transformers model: keyword tensors in (those
    the graph takes; token_type_ids as zeros where it takes them and none are given), an
    object out with one tensor per graph output (`.logits`, `.last_hidden_state`). The
    session is built at once; a forked process (nlp.pipe(n_process=...)) builds its own."""

    def __init__(self, graph: bytes, config: Any = None, device: Optional[torch.device] = None) -> None:
        self.onnx_model = graph
        self.config = config
        self.device = device or torch.device("cpu")
        self._session = None
        self._pid = -1
        self.session  # noqa: B018 - build it now: the first call should not pay for it

    def __call__(self, **inputs: torch.Tensor) -> SimpleNamespace:
        session = self.session
        if "token_type_ids" in self.input_names and "token_type_ids" not in inputs:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        feed = {name: inputs[name].cpu().numpy() for name in self.input_names if name in inputs}
        outputs = session.run(None, feed)
        return SimpleNamespace(**{name: torch.from_numpy(np.asarray(out)) for name, out in zip(self.output_names, outputs)})

    @property
    def session(self):
        if self._pid != os.getpid():
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()  # follows torch (1 in forked workers)
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.device.type == "cuda" else ["CPUExecutionProvider"]
            self._session = onnxruntime.InferenceSession(self.onnx_model, options, providers=providers)
            self.input_names = [i.name for i in self._session.get_inputs()]
            self.output_names = [o.name for o in self._session.get_outputs()]
            self.output_shape = self._session.get_outputs()[0].shape
            self._pid = os.getpid()
        return self._session

    def to(self, device: torch.device) -> "OnnxClassifier":
        """Run on `device`: the CPU, or a GPU where ONNX Runtime has CUDA."""
        if device.type not in ("cpu", "cuda"):
            raise DirectUseError(Errors.E009.format(device=device, reason="ONNX Runtime runs a graph on the CPU or a CUDA GPU"))
        if device.type == "cuda":
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise DirectUseError(Errors.E009.format(device=device, reason="this ONNX Runtime has no CUDA (pip install onnxruntime-gpu)"))
        if device != self.device:
            self.device, self._pid = device, -1
        return self

    def float(self) -> "OnnxClassifier":
        return self

    def eval(self) -> "OnnxClassifier":
        return self


def find_graphs(directory: Union[str, Path]) -> List[str]:
    """The ONNX graphs of a local checkpoint, relative to it ('model.onnx', 'onnx/model_q4.onnx', ...)."""
    root = Path(directory)
    return sorted(
        str(p.relative_to(root).as_posix()) for sub in GRAPH_DIRS for p in (root / sub).glob("*.onnx") if p.is_file()
    )


def onnx_graph_file(directory: Union[str, Path], onnx_file: Optional[str]) -> Optional[Path]:
    """The graph to run for a local checkpoint: `onnx_file` where given; else, where the
    checkpoint has no torch weights, its full-precision graph, or its only one. None: run
    its torch weights. A DirectUseError names the graphs when the choice is unclear."""
    root = Path(directory)
    if not root.is_dir():
        return None
    graphs = find_graphs(root)
    if onnx_file:
        if onnx_file not in graphs and not (root / onnx_file).is_file():
            raise DirectUseError(Errors.E067.format(name=directory, graphs=graphs or "none", detail=f"it has no '{onnx_file}'"))
        return root / onnx_file
    if not graphs or any((root / weights).is_file() for weights in TORCH_WEIGHTS):
        return None
    full = [g for g in FULL_PRECISION if g in graphs]
    if full or len(graphs) == 1:
        return root / (full or graphs)[0]
    raise DirectUseError(Errors.E067.format(name=directory, graphs=graphs, detail="it holds several graphs and no torch weights"))


ENCODER_OUTPUT = "last_hidden_state"
"""The output an encoder's graph must give (sentence embeddings pool it)."""


def load_onnx_classifier(name: str, path: Path, config: Any, n_outputs: Optional[int]) -> OnnxClassifier:
    """The checkpoint's graph in ONNX Runtime; refuses one whose output does not fit the
    config's labels (`n_outputs`; None for an encoder)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise DirectUseError(Errors.E068.format(name=name, graph=path.name)) from None
    try:
        model = OnnxClassifier(path.read_bytes(), config)
    except Exception as err:  # noqa: BLE001 - onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
        raise DirectUseError(Errors.E017.format(name=name, reason=f"ONNX Runtime could not read {path.name}: {first_line(err)}")) from None
    if n_outputs is None and ENCODER_OUTPUT not in model.output_names:
        raise DirectUseError(Errors.E076.format(name=name, graph=path.name, outputs=model.output_names))
    width = model.output_shape[-1] if model.output_shape else None
    if n_outputs is not None and isinstance(width, int) and width != n_outputs:
        detail = f"its graph {path.name} gives {width} outputs per position, but its config names {n_outputs} labels"
        raise DirectUseError(Errors.E015.format(name=name, detail=detail))
    return model
