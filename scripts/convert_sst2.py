#!/usr/bin/env python
"""Convert SST-2 (GLUE's `sentence<TAB>label` .tsv, or its .parquet) to a .spacy corpus whose
Docs carry gold `cats` (label 1 = POSITIVE), for `spacy evaluate` and the textcat scripts.

  python scripts/convert_sst2.py ../shared/data/sst2/test.tsv corpus/sst2.spacy
"""
import argparse
import csv
from pathlib import Path
from typing import List, Tuple

import spacy
from spacy.tokens import DocBin

LABELS = ("NEGATIVE", "POSITIVE")


def read_sst2(path: Path) -> List[Tuple[str, int]]:
    """(sentence, label) rows of an SST-2 .tsv (with a header) or .parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pydict()
        return [(text.strip(), int(label)) for text, label in zip(table["sentence"], table["label"])]
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(row["sentence"].strip(), int(row["label"])) for row in reader]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    nlp = spacy.blank("en")
    docs = DocBin(store_user_data=False)
    rows = read_sst2(args.input)
    for text, label in rows:
        doc = nlp.make_doc(text)
        doc.cats = {name: float(i == label) for i, name in enumerate(LABELS)}
        docs.add(doc)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    docs.to_disk(args.output)
    print(f"{len(rows)} sentences ({sum(label for _, label in rows)} positive) -> {args.output}")


if __name__ == "__main__":
    main()
