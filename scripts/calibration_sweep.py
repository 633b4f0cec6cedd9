"""The calibration rule of engine "openvino", precision "int8", chosen on dev: direct_ner's
CoNLL-2003 dev F1 with int8 weights only (no examples) and calibrated by nlp.initialize on the
first N dev sentences, scored on later dev sentences no calibration read, beside fp32.

  python scripts/calibration_sweep.py --model ../shared/models/minilm-conll03 --conll-file ../shared/data/conll2003/eng.testa
"""
import argparse
import json
from pathlib import Path

import spacy
from spacy.scorer import Scorer
from spacy.training import Example

from harness import read_gold, words_doc


def f1(nlp: spacy.Language, golds) -> float:
    predicted = list(nlp.pipe([words_doc(nlp.vocab, g) for g in golds], batch_size=64))
    return round(100 * Scorer.score_spans([Example(p, g) for p, g in zip(predicted, golds)], "ents")["ents_f"], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll-file", type=Path, required=True, help="dev (eng.testa)")
    parser.add_argument("--sizes", default="0,30,100,300,1000", help="calibration sentences (0: weights only)")
    parser.add_argument("--scored", type=int, default=1500, help="dev sentences scored, after the largest calibration set")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    golds = read_gold(args.conll_file, max_docs=max(sizes) + args.scored)
    calibration, scored = golds[: max(sizes)], golds[max(sizes) :]
    result = {"scored sentences": len(scored)}
    fp32 = spacy.blank("en")
    fp32.add_pipe("direct_ner", config={"model": args.model})
    result["torch fp32"] = f1(fp32, scored)
    for n in sizes:
        nlp = spacy.blank("en")
        nlp.add_pipe("direct_ner", config={"model": args.model, "engine": "openvino", "precision": "int8"})
        nlp.initialize(lambda: [Example(words_doc(nlp.vocab, g), g) for g in calibration[:n]])
        result[f"openvino int8, {n} calibration sentences" if n else "openvino int8, weights only"] = f1(nlp, scored)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
