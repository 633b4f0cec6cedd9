"""Zero-shot categories on AG News (World, Sports, Business, Sci/Tech), no training.

convert: AG News csv (label,title,description; 1-4) to .spacy Docs (title + " " +
  description) with gold cats over the plain label names, for `spacy evaluate`.
reference: the reference implementation's accuracy on the same texts and names
  (sentence-transformers: argmax of the cosine of each text's embedding to each name's,
  as sentence-transformers' own similarity computes it; an NLI checkpoint:
  transformers' zero-shot-classification pipeline), printed beside direct_textcat's
  from `spacy evaluate`'s output (cats_micro_f is accuracy for exclusive labels).

  python scripts/zeroshot_eval.py convert ../shared/data/ag_news/dev.csv corpus/ag_news_dev.spacy
  python scripts/zeroshot_eval.py reference --model MODEL --data ../shared/data/ag_news/dev.csv --ours metrics/zeroshot.json
"""
import argparse
import csv
import json
from pathlib import Path
from typing import List, Tuple

import numpy as np
import spacy
from spacy.tokens import DocBin

from harness import write_report

LABELS = ["World", "Sports", "Business", "Science/Technology"]  # AG News 1-4, by plain names


def read_ag_news(path: Path) -> Tuple[List[str], List[str]]:
    with path.open(encoding="utf8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [f"{r['title']} {r['description']}" for r in rows], [LABELS[int(r["label"]) - 1] for r in rows]


def convert(data: Path, output: Path) -> None:
    texts, gold = read_ag_news(data)
    nlp = spacy.blank("en")
    docs = DocBin()
    for doc, label in zip(nlp.pipe(texts), gold):
        doc.cats = {name: float(name == label) for name in LABELS}
        docs.add(doc)
    output.parent.mkdir(parents=True, exist_ok=True)
    docs.to_disk(output)
    print(f"{len(texts)} Docs with gold cats {LABELS} -> {output}")


def reference_accuracy(model: str, texts: List[str], gold: List[str]) -> Tuple[str, float]:
    """The reference implementation's accuracy: sentence-transformers for a sentence
    encoder, transformers' zero-shot pipeline for an NLI checkpoint."""
    route = spacy.blank("en").add_pipe("direct_textcat", config={"model": model, "labels": LABELS}).route
    if route.NAME == "nli":
        from transformers import pipeline

        classify = pipeline("zero-shot-classification", model=model, device=-1)
        predicted = [out["labels"][0] for out in classify(texts, candidate_labels=LABELS, batch_size=8)]
        return "transformers zero-shot-classification pipeline", float(np.mean([p == g for p, g in zip(predicted, gold)]))
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model, device="cpu")
    scores = st.similarity(st.encode(texts), st.encode(LABELS)).numpy()
    predicted = [LABELS[i] for i in scores.argmax(axis=1)]
    return "sentence-transformers (encode + similarity)", float(np.mean([p == g for p, g in zip(predicted, gold)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert")
    c.add_argument("data", type=Path)
    c.add_argument("output", type=Path)
    r = sub.add_parser("reference")
    r.add_argument("--model", required=True)
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--ours", type=Path, help="spacy evaluate's --output JSON for direct_textcat")
    r.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.command == "convert":
        convert(args.data, args.output)
        return
    texts, gold = read_ag_news(args.data)
    system, accuracy = reference_accuracy(args.model, texts, gold)
    result = {"texts": len(texts), "labels": LABELS, system: round(100 * accuracy, 2)}
    if args.ours and args.ours.exists():
        ours = json.loads(args.ours.read_text())
        result["direct_textcat (spacy evaluate cats_micro_f)"] = round(100 * ours["cats_micro_f"], 2) if ours.get("cats_micro_f", 1) <= 1 else ours["cats_micro_f"]
    print(json.dumps(result, indent=2))
    write_report(args.output, result)


if __name__ == "__main__":
    main()
