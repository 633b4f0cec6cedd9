"""precision "int8" on CPU: the classifier (token or sequence) exported to ONNX, its matrix products
quantized to int8 by ONNX Runtime (dynamic quantization: int8 weights, activations
quantized per call, so no calibration data is needed).

ONNX Runtime rather than torch's `quantize_dynamic` (torch.ao.quantization, deprecated)
or torchao: on CoNLL-2003 it was both faster and more accurate (README, Speed).
Needs the optional extra: pip install "spacy-direct-use[int8]".
"""
import contextlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import List, Optional

import torch

from .errors import DirectUseError, Errors
from .onnx_graph import OnnxClassifier

INPUT_NAMES = ("input_ids", "attention_mask")


class Int8Classifier(OnnxClassifier):
    """precision "int8": the quantized copy of a torch model in ONNX Runtime (a class of its
    own, as to_disk saves its graph beside the fp32 weights)."""


SAVED_FILE = "int8.onnx"
"""The quantized graph, saved next to the weights by to_disk: a saved pipeline loads it
instead of exporting and quantizing again."""


def int8_classifier(
    model: torch.nn.Module,
    device: torch.device,
    per_token: bool = True,
    per_channel: bool = True,
    saved: Optional[bytes] = None,
    output: str = "logits",
) -> Int8Classifier:
    """The int8 ONNX Runtime version of a (CPU, eval-mode) transformers token classifier
    (logits per token) or sequence classifier (`per_token=False`: logits per row):
    weights quantized per output channel (per tensor: `per_channel=False`, less accurate).
    The classification head stays in fp32: it is tiny and maps straight to the labels.
    `saved`: the graph this function made earlier for the same weights (SAVED_FILE).
    `output`: "last_hidden_state" for an encoder (direct_vectors), per position."""
    if device.type != "cpu":
        raise DirectUseError(Errors.E035.format(device=device))
    try:
        import onnx  # noqa: F401  (onnxruntime's quantizer needs it)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise DirectUseError(Errors.E036.format(missing=(err.name or "onnxruntime").split(".")[0])) from None
    if saved is not None:
        return _saved_int8_classifier(saved)
    with tempfile.TemporaryDirectory() as tmp, quiet():
        fp32_path, int8_path = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        _export(_HiddenStates(model) if output == "last_hidden_state" else model, fp32_path, per_token, output)
        quantize_dynamic(
            fp32_path,
            int8_path,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=_head_matmuls(fp32_path, model.config.num_labels),
        )
        return Int8Classifier(int8_path.read_bytes())


class _HiddenStates(torch.nn.Module):
    """An encoder that returns its last hidden states only (the exporter cannot take a
    transformers base model's keyword outputs as they are)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder, self.config = encoder, encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _saved_int8_classifier(saved: bytes) -> Int8Classifier:
    """The session of a saved pipeline's graph; a DirectUseError if ONNX Runtime cannot read it."""
    try:
        return Int8Classifier(saved)
    except Exception as err:  # noqa: BLE001 - onnxruntime's own exception types (InvalidProtobuf, Fail, ...)
        reason = f"{type(err).__name__}: {err}".splitlines()[0].rstrip(". ")
        raise DirectUseError(Errors.E055.format(file=SAVED_FILE, reason=reason)) from None


def _export(model: torch.nn.Module, path: Path, per_token: bool, output: str = "logits") -> None:
    """Export with dynamic batch and length, by torch.onnx's TorchScript exporter
    (dynamo=False): with torch 2.13 the dynamo exporter took 2-4x longer and its graph
    gave wrong logits (off by up to 8) for shapes other than the example's."""
    example = torch.ones(2, 8, dtype=torch.long)
    dynamic = {0: "batch", 1: "length"}
    try:
        torch.onnx.export(
            model,
            (),
            str(path),
            kwargs={name: example for name in INPUT_NAMES},
            input_names=list(INPUT_NAMES),
            output_names=[output],
            dynamic_axes={**{name: dynamic for name in INPUT_NAMES}, output: dynamic if per_token else {0: "batch"}},
            dynamo=False,
        )
    except Exception as err:  # noqa: BLE001 - any export failure becomes a DirectUseError
        name = getattr(model.config, "name_or_path", "") or type(model).__name__
        raise DirectUseError(Errors.E037.format(name=name, reason=f"{type(err).__name__}: {err}".splitlines()[0])) from None


def _head_matmuls(path: Path, n_labels: int) -> List[str]:
    """The MatMul nodes whose weight maps to the labels: the classification head."""
    import onnx

    graph = onnx.load(str(path)).graph
    to_labels = {init.name for init in graph.initializer if len(init.dims) == 2 and init.dims[-1] == n_labels}
    return [node.name for node in graph.node if node.op_type == "MatMul" and to_labels.intersection(node.input)]


@contextlib.contextmanager
def quiet():
    """Silence the exporter's tracer warnings and the quantizer's advice to pre-process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
