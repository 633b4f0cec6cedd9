"""How close each engine and precision runs to this CPU's limit: direct_ner (CoNLL-2003) and
direct_textcat (SST-2) on torch (fp32, bf16), ONNX Runtime (int8, dynamic) and OpenVINO (fp32,
bf16, int8 calibrated by nlp.initialize on --calibration-file's sentences: CoNLL-2003 dev),
side by side in one run (interleaved rounds, best round), with the CPU's matrix-multiply peak
measured here for each precision and the achieved GFLOP/s.

Peak: torch.matmul (4096 x 384) @ (384 x 1536), the shape of a MiniLM feed-forward layer on
a full batch, in fp32 and bf16; int8: ONNX Runtime's MatMulInteger on the same shape.
Achieved: the encoder's useful matrix-product FLOPs (2 x weights per sub-word for the linear
layers, 4 x window length x width per sub-word and layer for attention; special tokens
counted, padding not) over the measured time, everything else (tokenizing, decoding) included.

  python scripts/precision_benchmark.py --ner-model ../shared/models/minilm-conll03 --conll-file ../shared/data/conll2003/eng.testb \
      --calibration-file ../shared/data/conll2003/eng.testa --textcat-model ../shared/models/minilm-sst2 --sst2 ../shared/data/sst2/test.tsv --max-docs 1500
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List

import numpy as np
import spacy
import torch
from spacy.scorer import Scorer
from spacy.training import Example

from harness import best_of, gold_texts, read_gold, timed_rounds, words_doc, words_per_second

PRECISIONS = ("fp32", "bf16", "int8")
SYSTEMS = (("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8"))
"""(engine, precision) pairs measured; torch fp32 is the baseline."""
SHAPE = (4096, 384, 1536)


def gemm_peak(precision: str, repeats: int = 20) -> float:
    """GFLOP/s of the best of `repeats` (M x K) @ (K x N) products."""
    m, k, n = SHAPE
    if precision == "int8":
        return _ort_int8_peak(repeats)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    return 2 * m * k * n / best_of(lambda: torch.matmul(a, b), repeats) / 1e9


def _ort_int8_peak(repeats: int) -> float:
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    m, k, n = SHAPE
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]), helper.make_tensor_value_info("b", TensorProto.INT8, [k, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [m, n])],
    )  # fmt: skip
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString(), options)
    a, b = np.random.randint(0, 255, (m, k), dtype=np.uint8), np.random.randint(-127, 127, (k, n), dtype=np.int8)
    return 2 * m * k * n / best_of(lambda: session.run(None, {"a": a, "b": b}), repeats) / 1e9


def flops_per_piece(model: torch.nn.Module, mean_window: float) -> float:
    linear = sum(mod.in_features * mod.out_features for mod in model.modules() if isinstance(mod, torch.nn.Linear))
    config = model.config
    return 2 * linear + 4 * config.num_hidden_layers * config.hidden_size * mean_window


def measure(name: str, model_dir: str, docs_of, gold_docs, score, rounds: int, calibration: List[str], systems=SYSTEMS) -> Dict[str, Dict[str, float]]:
    pipelines = {}
    for engine, precision in systems:
        nlp = spacy.blank("en")
        pipe = nlp.add_pipe(name, config={"model": model_dir, "precision": precision, "engine": engine})
        nlp.initialize(lambda: [Example(nlp.make_doc(text), nlp.make_doc(text)) for text in calibration])
        pipelines[f"{engine} {precision}"] = (nlp, pipe, precision)
    baseline = "torch fp32"
    runner = pipelines[baseline][1].runner
    encodings = runner.encoder.encode_batch([[t.text for t in d if not t.is_space] for d in gold_docs], is_pretokenized=True, add_special_tokens=False)
    pieces = sum(len(e.ids) + len(runner.prefix) + len(runner.suffix) for e in encodings)
    work = pieces * flops_per_piece(pipelines[baseline][1].hf_model, pieces / len(encodings))
    words = sum(len(d) for d in gold_docs)
    runs = {key: lambda docs, nlp=nlp: list(nlp.pipe(docs, batch_size=64)) for key, (nlp, _, _) in pipelines.items()}
    predicted: Dict[str, list] = {}
    best = timed_rounds(runs, rounds, prepare=lambda key: docs_of(pipelines[key][0]), outputs=predicted)
    quality = {key: score(docs) for key, docs in predicted.items()}
    return {key: {"precision": precision, "quality": quality[key], "words/s": round(words_per_second(words, best[key])), "x torch fp32": round(best[baseline] / best[key], 2),
                  "GFLOP/s": round(work / best[key] / 1e9, 1)} for key, (_, _, precision) in pipelines.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ner-model", required=True)
    parser.add_argument("--conll-file", type=Path, required=True)
    parser.add_argument("--textcat-model")
    parser.add_argument("--sst2", type=Path)
    parser.add_argument("--max-docs", type=int, default=1500)
    parser.add_argument("--calibration-file", type=Path, required=True, help="CoNLL file whose first --calibration-docs sentences calibrate OpenVINO int8 (dev)")
    parser.add_argument("--calibration-docs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--systems", default=",".join(f"{e}:{p}" for e, p in SYSTEMS), help="engine:precision pairs to measure, comma-separated (torch:fp32, the baseline, is always measured)")
    args = parser.parse_args()
    systems = [tuple(pair.split(":")) for pair in args.systems.split(",")]
    systems = [("torch", "fp32")] + [pair for pair in systems if pair != ("torch", "fp32")]
    peaks = {p: round(gemm_peak(p), 1) for p in PRECISIONS}
    result = {"torch_threads": torch.get_num_threads(), "gemm_peak_GFLOP/s": peaks}
    golds = read_gold(args.conll_file, max_docs=args.max_docs)
    calibration = gold_texts(args.calibration_file, max_docs=args.calibration_docs)

    def ner_f1(predicted) -> float:
        return round(100 * Scorer.score_spans([Example(p, g) for p, g in zip(predicted, golds)], "ents")["ents_f"], 2)

    result["direct_ner (CoNLL-2003 F1)"] = measure("direct_ner", args.ner_model, lambda nlp: [words_doc(nlp.vocab, g) for g in golds], golds, ner_f1, args.rounds, calibration, systems)
    if args.textcat_model and args.sst2:
        rows = [line.rsplit("\t", 1) for line in args.sst2.read_text(encoding="utf8").splitlines()[1:] if "\t" in line]
        texts, labels = [t for t, _ in rows], ["POSITIVE" if y.strip() == "1" else "NEGATIVE" for _, y in rows]
        tokenized = list(spacy.blank("en").pipe(texts))

        def accuracy(predicted) -> float:
            return round(100 * float(np.mean([max(d.cats, key=d.cats.get) == y for d, y in zip(predicted, labels)])), 2)

        result["direct_textcat (SST-2 accuracy)"] = measure("direct_textcat", args.textcat_model, lambda nlp: [nlp.make_doc(t) for t in texts], tokenized, accuracy, args.rounds, calibration, systems)
    for block in result.values():
        if isinstance(block, dict) and "torch fp32" in block:
            for row in block.values():
                row["of peak"] = f"{100 * row['GFLOP/s'] / peaks[row['precision']]:.0f}%"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
