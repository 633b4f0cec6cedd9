#!/usr/bin/env python
"""Compare int8 quantization schemes for direct_ner on CPU: CoNLL-2003 F1 and words/s,
side by side with fp32 in one process.

Every variant is direct_ner with default settings whose fp32 model is replaced by
a quantized copy; all variants see the same Docs (gold words and spaces), in
interleaved rounds after warm-up (best round counts), and their F1 comes from
the first round's predictions. Speeds are comparable within one run only.

  python scripts/int8_variants.py --model PATH --conll-file eng.testb \
      [--variants fp32,dynamic-all,...] [--granularity sentence] [--repeats 2] [--max-docs N]
"""
import argparse
import copy
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import spacy
import torch
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from transformers import AutoConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout works uninstalled
from spacy_direct_use.int8 import Int8Classifier, _export, int8_classifier  # noqa: E402  (_export: the package has no public ONNX export yet)
from harness import read_gold, round_times, words_doc, words_per_second  # noqa: E402


def _linear_names(model: torch.nn.Module, keep_fp32: Callable[[str], bool]) -> List[str]:
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not keep_fp32(n)]


def torch_dynamic(keep_fp32: Callable[[str], bool] = lambda name: False, per_channel: bool = False):
    """torch.ao's dynamic int8 Linear (fbgemm), except the layers `keep_fp32` names."""

    def quantize(model: torch.nn.Module) -> torch.nn.Module:
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        spec = {name: qconfig for name in _linear_names(model, keep_fp32)}
        return quantize_dynamic(model, spec, dtype=torch.qint8)

    return quantize


def torchao(config_name: str, keep_fp32: Callable[[str], bool] = lambda name: False):
    """torchao's quantize_ with the named config on the Linear layers `keep_fp32` does not name."""

    def quantize(model: torch.nn.Module) -> torch.nn.Module:
        import torchao.quantization as tq

        names = set(_linear_names(model, keep_fp32))
        tq.quantize_(model, getattr(tq, config_name)(), filter_fn=lambda m, fqn: fqn in names)
        return model

    return quantize


def onnxruntime_int8(per_channel: bool):
    """direct_ner's precision "int8" (ONNX Runtime), per-channel (shipped) or per-tensor weights."""
    return lambda model: int8_classifier(model, torch.device("cpu"), per_channel=per_channel)


def onnxruntime_fp32(model: torch.nn.Module) -> Int8Classifier:
    """The same ONNX export run by ONNX Runtime in fp32: what the runtime alone gains."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fp32.onnx"
        _export(model, path, per_token=True)
        return Int8Classifier(path.read_bytes())


def _layer(name: str) -> int:
    parts = name.split(".")
    return int(parts[parts.index("layer") + 1]) if "layer" in parts else -1


def variants(n_layers: int) -> Dict[str, Optional[Callable[[torch.nn.Module], torch.nn.Module]]]:
    """Name -> function making the quantized copy (None: the fp32 model)."""
    ffn_out = lambda n: n.endswith("output.dense") and "attention" not in n  # noqa: E731
    attn_out = lambda n: n.endswith("attention.output.dense")  # noqa: E731
    head = lambda n: n == "classifier"  # noqa: E731
    edge = lambda n: _layer(n) in (0, n_layers - 1)  # noqa: E731
    return {
        "fp32": None,
        "dynamic-all": torch_dynamic(),
        "dynamic-no-head": torch_dynamic(head),
        "dynamic-per-channel": torch_dynamic(head, per_channel=True),
        "dynamic-keep-ffn-out": torch_dynamic(lambda n: head(n) or ffn_out(n)),
        "dynamic-keep-attn-out": torch_dynamic(lambda n: head(n) or attn_out(n)),
        "dynamic-keep-edge-layers": torch_dynamic(lambda n: head(n) or edge(n)),
        "dynamic-keep-ffn-out-per-channel": torch_dynamic(lambda n: head(n) or ffn_out(n), per_channel=True),
        "ort-fp32": onnxruntime_fp32,
        "ort-int8-per-tensor": onnxruntime_int8(per_channel=False),
        "ort-int8-per-channel": onnxruntime_int8(per_channel=True),
        "torchao-int8-dynamic": torchao("Int8DynamicActivationInt8WeightConfig", head),
        "torchao-int8-weight-only": torchao("Int8WeightOnlyConfig", head),
    }


def build(model_path: str, quantize) -> spacy.language.Language:
    nlp = spacy.blank("en")
    # unpacked: the ONNX Runtime variants take a 2D mask only, and every variant runs the same passes
    pipe = nlp.add_pipe("direct_ner", config={"model": model_path, "pack_windows": False})
    nlp.initialize()
    if quantize is not None:
        pipe.runner.use_model(quantize(copy.deepcopy(pipe.hf_model)))
    return nlp


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll-file", required=True, type=Path)
    parser.add_argument("--granularity", default="sentence", choices=("sentence", "article"))
    parser.add_argument("--variants", default="", help="Comma-separated subset (default: all)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-docs", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    nlps = {}
    for name, quantize in variants_for(args).items():
        nlps[name] = build(args.model, quantize)
    golds = read_gold(args.conll_file, spacy.blank("en").vocab, granularity=args.granularity, max_docs=args.max_docs)
    n_words = sum(len(g) for g in golds)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(golds)} {args.granularity} docs, {n_words} words")
    for nlp in nlps.values():
        list(nlp.pipe([words_doc(nlp.vocab, g) for g in golds[:64]], batch_size=64))  # warm-up
    runs = {name: lambda docs, nlp=nlp: list(nlp.pipe(docs, batch_size=64)) for name, nlp in nlps.items()}
    predicted: Dict[str, List[Doc]] = {}
    seconds = round_times(runs, args.repeats, prepare=lambda name: [words_doc(nlps[name].vocab, g) for g in golds], outputs=predicted, progress=True)
    scores = {name: Scorer.score_spans([Example(p, g) for p, g in zip(docs, golds)], "ents")["ents_f"] for name, docs in predicted.items()}
    base = words_per_second(n_words, min(seconds["fp32"])) if "fp32" in seconds else None
    print(f"\n{'variant':<34} {'F1':>6} {'words/s':>8} {'x fp32':>7} {'rounds (s)':>16}")
    for name in nlps:
        wps = words_per_second(n_words, min(seconds[name]))
        rel = f"{wps / base:.2f}" if base else "-"
        rounds = ",".join(f"{s:.1f}" for s in seconds[name])
        print(f"{name:<34} {100 * scores[name]:>6.2f} {wps:>8.0f} {rel:>7} {rounds:>16}")


def variants_for(args: argparse.Namespace) -> Dict[str, Optional[Callable]]:
    n_layers = AutoConfig.from_pretrained(args.model).num_hidden_layers
    every = variants(n_layers)
    chosen = [v for v in args.variants.split(",") if v] or list(every)
    return {name: every[name] for name in chosen}


if __name__ == "__main__":
    main()
