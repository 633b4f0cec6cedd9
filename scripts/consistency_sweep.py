#!/usr/bin/env python
"""Entity F1 of direct_ner with doc_consistency off and on (one value of doc_consistency_keep
per column): the same Docs are read again for each setting, and the runner's forward
passes are memoized, so the model runs once and the columns differ only in the rule.

  python scripts/consistency_sweep.py MODEL eng.testa article|article-gold|sentence 0.5,0.7,0.8,0.9,1.01

Reads ../shared/data/conll2003/SPLIT (run it from the repository root, or set
CONLL_DIR). article-gold: each article one Doc with its gold sentence starts (the
windows of sentence Docs; only the document context differs). Tune on eng.testa.
"""
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import spacy
from spacy.scorer import get_ner_prf
from spacy.training import Example

from harness import read_gold, words_doc


def memoized(predict: Callable[[Sequence[np.ndarray]], List[np.ndarray]]) -> Callable[[Sequence[np.ndarray]], List[np.ndarray]]:
    """`predict` (runner.predict), each batch of id sequences run once: a later call with
    the same sequences gets the first call's probabilities."""
    seen: Dict[Tuple[bytes, ...], List[np.ndarray]] = {}

    def predict_once(sequences: Sequence[np.ndarray]) -> List[np.ndarray]:
        key = tuple(np.asarray(seq).tobytes() for seq in sequences)
        if key not in seen:
            seen[key] = predict(sequences)
        return seen[key]

    return predict_once


def main() -> None:
    model, split, granularity = sys.argv[1], sys.argv[2], sys.argv[3]  # granularity: sentence|article|article-gold
    keeps = [float(k) for k in sys.argv[4].split(",")]
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("direct_ner", config={"model": model})
    conll_file = Path(os.environ.get("CONLL_DIR", "../shared/data/conll2003")) / split
    golds = read_gold(conll_file, nlp.vocab, "sentence" if granularity == "sentence" else "article")
    runner = pipe.runner
    runner.predict = memoized(runner.predict)

    def score(settings: Dict[str, object]) -> float:
        pipe.settings = dataclasses.replace(pipe.settings, **settings)
        docs = nlp.pipe((words_doc(nlp.vocab, gold, granularity == "article-gold") for gold in golds), batch_size=64)
        return 100 * get_ner_prf([Example(doc, gold) for doc, gold in zip(docs, golds)])["ents_f"]

    rows = {"off": score({"doc_consistency": False})}
    for k in keeps:
        rows[f"keep={k}"] = score({"doc_consistency": True, "doc_consistency_keep": k})
    print(json.dumps({"model": Path(model).name, "split": split, "granularity": granularity, **{k: round(v, 2) for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
