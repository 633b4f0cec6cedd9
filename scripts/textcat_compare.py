#!/usr/bin/env python
"""Accuracy and speed of direct_textcat, the model's own argmax (the bare tokenizer + forward
floor) and the peer spaCy wrappers (hf_text_pipe, spacy-wrap) on the same SST-2 texts,
side by side in one run; and, with --long-docs, on long Docs whose answer is in the bulk
of the text, not in its first 512 sub-words.

  python scripts/textcat_compare.py --model ../shared/models/minilm-sst2 --data ../shared/data/sst2/test.tsv \
      [--systems model,direct_textcat,hf_text_pipe,spacy-wrap] [--rounds 3] [--batch-size 64] \
      [--long-docs 40] [--output metrics/sst2_compare.json]

Peers are skipped (with a note) where they are not installed; keep them in a separate
venv. Rounds interleave the systems, so a busy machine slows each alike; words/s is the
best round. Long Docs: each joins 30 sentences of one label, then 90 of the other; the
gold label is the bulk's (the second), while the first 512 sub-words are nearly all the
first label's.
"""
import argparse
import random
from functools import partial
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import spacy
import torch

from convert_sst2 import LABELS, read_sst2
from harness import add_compare_args, bare_forward, build_systems, hf_encode, timed_rounds, words_per_second, write_report

Classify = Callable[[Sequence[str]], List[str]]  # texts -> predicted labels


def model_argmax(path: str, batch_size: int) -> Classify:
    """The floor: transformers' tokenizer (truncating at the model's limit, as the model
    card's pipeline does) and one forward pass per length-sorted batch, argmax."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).float().eval()  # fp32 on CPU, as direct_textcat
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    encode = hf_encode(tokenizer)

    def classify(texts: Sequence[str]) -> List[str]:
        return [names[int(p)] for p in bare_forward(model, texts, batch_size, encode)]

    return classify


def spacy_classify(nlp: spacy.Language, batch_size: int) -> Classify:
    return lambda texts: [max(doc.cats, key=doc.cats.get) for doc in nlp.pipe(texts, batch_size=batch_size)]


def direct_textcat(path: str, batch_size: int) -> Classify:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_textcat", config={"model": path}).initialize()
    return spacy_classify(nlp, batch_size)


def hf_text_pipe(path: str, batch_size: int) -> Classify:
    import spacy_huggingface_pipelines  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("hf_text_pipe", config={"model": path, "kwargs": {"batch_size": batch_size}})
    return spacy_classify(nlp, batch_size)


def spacy_wrap(path: str, batch_size: int) -> Classify:
    import spacy_wrap  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("sequence_classification_transformer", config={"model": {"name": path}})
    return spacy_classify(nlp, batch_size)


SYSTEMS: Dict[str, Callable[[str, int], Classify]] = {
    "model": model_argmax,
    "direct_textcat": direct_textcat,
    "hf_text_pipe": hf_text_pipe,
    "spacy-wrap": spacy_wrap,
}


def long_docs(rows: List[Tuple[str, int]], n: int, seed: int = 0) -> List[Tuple[str, int]]:
    """n Docs: 30 sentences of one label, then 90 of the other; gold = the second (the bulk)."""
    rng = random.Random(seed)
    by_label = {label: [t for t, y in rows if y == label] for label in (0, 1)}
    docs = []
    for k in range(n):
        first, bulk = (0, 1) if k % 2 == 0 else (1, 0)
        sentences = rng.sample(by_label[first], 30) + rng.sample(by_label[bulk], 90)
        docs.append((" ".join(sentences), bulk))
    return docs


def run(systems: Dict[str, Classify], rows: List[Tuple[str, int]], rounds: int) -> Dict[str, Dict[str, float]]:
    texts = [t for t, _ in rows]
    gold = [LABELS[y] for _, y in rows]
    words = sum(len(doc) for doc in spacy.blank("en").pipe(texts))
    predicted: Dict[str, List[str]] = {}
    seconds = timed_rounds({name: partial(classify, texts) for name, classify in systems.items()}, rounds, outputs=predicted)
    return {
        name: {"accuracy": 100 * float(np.mean([p == g for p, g in zip(predicted[name], gold)])), "words_per_s": words_per_second(words, seconds[name])}
        for name in systems
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_compare_args(parser, SYSTEMS, "SST-2 .tsv or .parquet")
    parser.add_argument("--long-docs", type=int, default=0, help="also score N long Docs (see above)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = read_sst2(args.data)
    systems = build_systems(SYSTEMS, args.systems, args.model, args.batch_size)
    report = {"sst2": run(systems, rows, args.rounds)}
    if args.long_docs:
        report["long_docs"] = run(systems, long_docs(rows, args.long_docs), 1)
    print(f"{torch.get_num_threads()} torch threads, batch size {args.batch_size}, best of {args.rounds} rounds")
    for corpus, results in report.items():
        for name, r in results.items():
            print(f"{corpus:<10} {name:<16} accuracy {r['accuracy']:6.2f}   {r['words_per_s']:8,.0f} words/s")
    write_report(args.output, report)


if __name__ == "__main__":
    main()
