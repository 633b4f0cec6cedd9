"""engine "openvino": the checkpoint converted to OpenVINO and compiled for the CPU.

OpenVINO fuses what is not a matrix product (layer norms, GELU, masks, transposes) into its
kernels and runs bf16 and int8 on the CPU's bf16/int8 units, where torch and ONNX Runtime
spend most of an int8 pass outside the matrix products (docs/speed.md). The model is
converted once, with dynamic batch and length, from the torch model the component loaded
(`ov.convert_model`); `precision` means what it means on every engine:

- "fp32": compiled with fp32 inference (OpenVINO's CPU default on a bf16 CPU is bf16);
- "bf16": compiled with bf16 inference (emulated, and slower, on a CPU without bf16 units);
- "int8": NNCF's post-training quantization (its transformer preset, SmoothQuant and bias
  correction), calibrated on the windows of the Docs `nlp.initialize(get_examples)` gave
  (their texts only); without examples, int8 weights only (`nncf.compress_weights`).

Where the torch runner packs short windows into shared rows (a token classifier on the CPU
whose model takes a block-diagonal mask, packing.py), the model is converted with the packed
inputs (input_ids, position_ids and that mask) and runs packed rows as torch does: fewer,
fuller passes than one padded window per row (int8 on 1,500 CoNLL-2003 test sentences: the
forward passes 1.22x faster, on a 2-CPU AVX2 machine; docs/speed.md).

The converted (and quantized) model is saved inside the pipeline (SAVED_FILES) and read back
by a saved pipeline instead of converting and calibrating again, so its output is the same.
Needs the `openvino` extra: pip install "spacy-direct-use[openvino]".
"""
import contextlib
import io
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

from .errors import DirectUseError, Errors, speaker
from .int8 import quiet
from .packing import MASK_INPUTS, packed_inputs, position_offset

ENGINES = ("torch", "onnxruntime", "openvino")
SAVED_FILES = {"fp32": "openvino_fp32.xml", "bf16": "openvino_fp32.xml", "int8": "openvino_int8.xml"}
"""The model file a saved pipeline holds per precision (with its .bin beside it); bf16 is a
compile setting of the fp32 model."""
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
"""OpenVINO's inference precision hint per precision (int8: the quantized operations run in
int8; the others in fp32, as the quantization was calibrated)."""
CALIBRATION_BATCH = 16
"""Windows per calibration batch (padded to the longest of the length-sorted batch)."""
CALIBRATION_WINDOWS = 512
"""At most this many windows calibrate int8 (NNCF's default subset is 300 samples)."""
CALIBRATION_DOCS = 300
"""At most this many of initialize's Docs calibrate int8."""
MIN_CALIBRATION_WINDOWS = 16
"""Fewer windows than this (no examples, or spaCy's own placeholder Doc "x y z" from a bare
nlp.initialize()) quantize the weights only: activation ranges from so little text would
be worse than none."""
logger = logging.getLogger("spacy_direct_use")


def run_on_engine(runner, settings, source, saved_dir: Optional[Path], calibration_windows: Callable[[Any], List[np.ndarray]]) -> None:
    """Run the runner's model on the `engine` setting's runtime: OpenVINO converts (and for
    int8 quantizes, calibrated on `calibration_windows(runner)`: initialize's Docs) the torch
    model the runner holds, or reads the model a saved pipeline (`saved_dir`) holds."""
    if settings.engine != "openvino":
        return
    if not isinstance(runner.model, torch.nn.Module):  # a checkpoint shipped as an ONNX graph
        raise DirectUseError(Errors.E079.format(engine="openvino", what=f"'{source}', shipped as an ONNX graph", fix='ONNX Runtime runs it as shipped: leave engine at "torch".'))
    saved = saved_dir / SAVED_FILES[settings.precision] if saved_dir is not None else None
    saved = saved if saved is not None and saved.is_file() else None
    calibration = calibration_windows(runner) if settings.precision == "int8" and saved is None else None
    if calibration is not None and len(calibration) < MIN_CALIBRATION_WINDOWS:
        logger.warning(
            "%s: engine openvino, precision int8 with %d calibration windows (fewer than %d): int8 weights only. "
            "Calibrate on a few hundred of your sentences: nlp.initialize(lambda: examples)",
            speaker(), len(calibration), MIN_CALIBRATION_WINDOWS,
        )  # fmt: skip
        calibration = None
    output = "last_hidden_state" if runner.ENCODER else "logits"
    runner.use_model(openvino_model(runner.model, settings.precision, output, calibration, saved, runner.pad_id, runner.mask_kind))


class OpenVinoModel:
    """A compiled OpenVINO model called like the torch model it came from: keyword tensors in,
    an object with one tensor attribute (`output`: "logits" or "last_hidden_state") out.

    `mask_kind` (packing.MASK_KINDS) where the graph takes packed rows (position_ids and a
    block-diagonal mask: the runner then gives it every row packed), else None."""

    def __init__(self, model, precision: str, output: str) -> None:
        import openvino as ov

        self.model, self.output = model, output
        self.input_names = [port.get_any_name() for port in model.inputs]
        self.mask_kind = graph_mask_kind(model)
        core = ov.Core()
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision]})
        self.request = self.compiled.create_infer_request()

    def __call__(self, **inputs: torch.Tensor) -> SimpleNamespace:
        ids = inputs["input_ids"]
        if self.mask_kind is not None:  # packed inputs, as the graph takes them
            feed = {name: inputs[name].numpy() for name in self.input_names}
        else:
            feed = {name: _as_int64(inputs.get(name), ids) for name in self.input_names}
        result = self.request.infer(feed)
        return SimpleNamespace(**{self.output: torch.from_numpy(np.array(result[0]))})

    def save(self, directory: Path, precision: str) -> None:
        import openvino as ov

        ov.save_model(self.model, str(directory / SAVED_FILES[precision]), compress_to_fp16=False)


def graph_mask_kind(model) -> Optional[str]:
    """The packed mask kind a converted graph takes (it has a position_ids input), else None."""
    ranks = {port.get_any_name(): port.get_partial_shape().rank.get_length() for port in model.inputs}
    if "position_ids" not in ranks:
        return None
    return next(kind for kind, (rank, _) in MASK_INPUTS.items() if rank == ranks["attention_mask"])


def _as_int64(tensor: Optional[torch.Tensor], ids: torch.Tensor) -> np.ndarray:
    """An input as the graph takes it; token_type_ids not given are zeros (one segment)."""
    if tensor is None:
        return np.zeros(tuple(ids.shape), dtype=np.int64)
    return tensor.cpu().numpy().astype(np.int64)


def openvino_model(
    model: torch.nn.Module,
    precision: str,
    output: str,
    calibration: Optional[Sequence[np.ndarray]],
    saved: Optional[Path],
    pad_id: int,
    mask_kind: Optional[str] = None,
) -> OpenVinoModel:
    """The torch model (CPU, eval mode) in OpenVINO at `precision`: read from `saved` (a saved
    pipeline's file), else converted, and quantized for int8 (on `calibration`: id sequences
    with special tokens, as the component reads them; None: int8 weights only). `mask_kind`:
    the runner's packed mask kind (packing.MASK_KINDS): converted to take packed rows; None:
    one window per row."""
    ov, nncf = _import(precision)
    if saved is not None and saved.is_file():
        return OpenVinoModel(ov.Core().read_model(str(saved)), precision, output)
    converted = _convert_packed(ov, model, output, mask_kind) if mask_kind else _convert(ov, model, output)
    if precision == "int8":
        if calibration:
            batches = _calibration_batches(calibration, converted, pad_id, position_offset(model))
            with _no_progress_bars():
                converted = nncf.quantize(converted, nncf.Dataset(batches), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches))
        else:
            with _no_progress_bars():
                converted = nncf.compress_weights(converted)
    return OpenVinoModel(converted, precision, output)


def _import(precision: str):
    try:
        import openvino as ov
    except ImportError:
        raise DirectUseError(Errors.E077.format(missing="openvino")) from None
    if precision != "int8":
        return ov, None
    try:
        import nncf
    except ImportError:
        raise DirectUseError(Errors.E077.format(missing="nncf")) from None
    return ov, nncf


class _Output(torch.nn.Module):
    """The model with its one output as a plain tensor (the converter traces keyword outputs
    poorly), and token_type_ids where the model takes them."""

    def __init__(self, model: torch.nn.Module, output: str) -> None:
        super().__init__()
        self.model, self.output = model, output

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids), self.output)


class _OutputWithoutTypes(_Output):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return getattr(self.model(input_ids=input_ids, attention_mask=attention_mask), self.output)


class _PackedOutput(torch.nn.Module):
    """The model reading packed rows: position ids restart in each window, a block-diagonal
    mask (packing.packed_inputs); token types are all zero (one segment), as in torch's packed
    passes, where the model fills them itself."""

    def __init__(self, model: torch.nn.Module, output: str) -> None:
        super().__init__()
        self.model, self.output = model, output

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask), self.output)


def _convert_packed(ov, model: torch.nn.Module, output: str, mask_kind: str):
    """ov.convert_model taking packed rows (dynamic rows and width); the runner checked that the
    torch model gives each window the same logits packed as alone (packing.packed_mask_kind)."""
    probe = [np.array([1, 2, 3], dtype=np.int64), np.array([4, 5], dtype=np.int64)]
    example = dict(packed_inputs([probe, probe[:1]], 0, position_offset(model), mask_kind))
    rank, mask_type = MASK_INPUTS[mask_kind]
    inputs = [("input_ids", ov.PartialShape([-1, -1]), ov.Type.i64), ("position_ids", ov.PartialShape([-1, -1]), ov.Type.i64)]
    inputs.append(("attention_mask", ov.PartialShape([-1, 1, -1, -1] if rank == 4 else [-1, -1, -1]), ov.Type.f32 if mask_type == "f32" else ov.Type.i64))
    try:
        with torch.inference_mode(), quiet():
            return ov.convert_model(_PackedOutput(model, output), example_input=example, input=inputs)
    except Exception as err:  # noqa: BLE001 - any conversion failure becomes a DirectUseError
        name = getattr(model.config, "name_or_path", "") or type(model).__name__
        raise DirectUseError(Errors.E078.format(name=name, reason=f"{type(err).__name__}: {err}".splitlines()[0])) from None


def _convert(ov, model: torch.nn.Module, output: str):
    """ov.convert_model with dynamic batch and length."""
    import inspect

    takes_types = "token_type_ids" in inspect.signature(model.forward).parameters and getattr(model.config, "type_vocab_size", 0) > 1
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    wrapper = (_Output if takes_types else _OutputWithoutTypes)(model, output)
    example = {name: torch.ones(2, 8, dtype=torch.long) for name in names}
    if takes_types:
        example["token_type_ids"] = torch.zeros(2, 8, dtype=torch.long)
    try:
        with torch.inference_mode(), quiet():  # the tracer's warnings about shapes it cannot see
            return ov.convert_model(wrapper, example_input=example, input=[(name, ov.PartialShape([-1, -1]), ov.Type.i64) for name in names])
    except Exception as err:  # noqa: BLE001 - any conversion failure becomes a DirectUseError
        name = getattr(model.config, "name_or_path", "") or type(model).__name__
        raise DirectUseError(Errors.E078.format(name=name, reason=f"{type(err).__name__}: {err}".splitlines()[0])) from None


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """NNCF draws progress bars and tables on standard output (its logger's own handler); a
    spaCy pipeline's output is the user's. Its warnings still show."""
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        nncf_logger.setLevel(level)


def _calibration_batches(sequences: Sequence[np.ndarray], model, pad_id: int, first_position: int = 0) -> List[Dict[str, np.ndarray]]:
    """Length-sorted padded batches of the calibration windows, as the graph takes them (a
    packed graph: one window per row, in the packed inputs' form)."""
    names = [port.get_any_name() for port in model.inputs]
    mask_kind = graph_mask_kind(model)
    ordered = sorted(sequences[:CALIBRATION_WINDOWS], key=len)
    batches = []
    for start in range(0, len(ordered), CALIBRATION_BATCH):
        rows = ordered[start : start + CALIBRATION_BATCH]
        if mask_kind is not None:
            packed = packed_inputs([[row.astype(np.int64)] for row in rows], pad_id, first_position, mask_kind)
            batches.append({name: packed[name].numpy() for name in names})
            continue
        width = max(len(row) for row in rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            ids[r, : len(row)], mask[r, : len(row)] = row, 1
        batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        batches.append({name: batch[name] for name in names})
    return batches
