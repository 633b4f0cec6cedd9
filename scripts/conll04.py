"""CoNLL04 (SpERT-style JSON: `tokens`, BILOU `tags`, `relations` by entity index) for direct_rel.

  python scripts/conll04.py convert ../shared/data/conll04/conll04_test.json corpus/conll04_test.spacy
  python scripts/conll04.py compare metrics/relations.json training/glirel-conll04/standin.json

`convert` writes one Doc per sentence: its words, gold entities (doc.ents) and gold relations
(doc._.rel, indexing doc.ents), in a DocBin with store_user_data=True. Loaded with `--code`, this
file also registers `conll04_gold_entities`, the component that gives direct_rel the gold entities
under `spacy evaluate --gold-preproc` (spaCy's evaluate makes each predicted Doc from the gold
words, without entities): it looks each Doc's words up in the same corpus. `compare` prints
`spacy evaluate`'s relation scores beside glirel's own evaluation of the checkpoint (the stand-in
script's standin.json).
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from spacy_direct_use.relations import gold_relations


def bilou_spans(tags: List[str]) -> List[Tuple[int, int, str]]:
    """(start, end exclusive, type) of each entity in BILOU tags, in order."""
    spans, start = [], None
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "U":
            spans.append((i, i + 1, label))
        elif prefix == "B":
            start = i
        elif prefix == "L" and start is not None:
            spans.append((start, i + 1, label))
            start = None
    return spans


def read_docs(path: Path, vocab: Vocab) -> List[Doc]:
    docs = []
    for item in json.loads(Path(path).read_text()):
        doc = Doc(vocab, words=item["tokens"])
        doc.ents = [Span(doc, s, e, label) for s, e, label in bilou_spans(item["tags"])]
        docs.append(gold_relations(doc, [(r["head"], r["tail"], r["type"]) for r in item["relations"]]))
    return docs


class GoldEntities:
    """Puts each Doc's gold entities from a converted corpus on it, found by its words."""

    def __init__(self, vocab: Vocab, corpus: str) -> None:
        self.vocab, self.corpus = vocab, corpus
        self._by_words: Optional[Dict[Tuple[str, ...], List[Tuple[int, int, str]]]] = None

    def __call__(self, doc: Doc) -> Doc:
        if self._by_words is None:
            gold = DocBin(store_user_data=True).from_disk(self.corpus).get_docs(self.vocab)
            self._by_words = {tuple(t.text for t in d): [(e.start, e.end, e.label_) for e in d.ents] for d in gold}
        found = self._by_words.get(tuple(t.text for t in doc), [])
        doc.ents = [Span(doc, s, e, label) for s, e, label in found]
        return doc


@Language.factory("conll04_gold_entities", default_config={"corpus": "corpus/conll04_test.spacy"})
def make_gold_entities(nlp: Language, name: str, corpus: str) -> GoldEntities:
    return GoldEntities(nlp.vocab, corpus)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("convert")
    convert.add_argument("source", type=Path)
    convert.add_argument("output", type=Path)
    compare = sub.add_parser("compare")
    compare.add_argument("metrics", type=Path, help="spacy evaluate's --output")
    compare.add_argument("standin", type=Path, help="glirel_standin.py's standin.json")
    compare.add_argument("--pipeline", type=Path, default=None, help="the assembled pipeline: its threshold must be the dev-chosen one")
    args = parser.parse_args(argv)
    if args.command == "convert":
        docs = read_docs(args.source, spacy.blank("en").vocab)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        DocBin(docs=docs, store_user_data=True).to_disk(args.output)
        print(f"{len(docs)} sentences, {sum(len(d.ents) for d in docs)} entities, {sum(len(d._.rel) for d in docs)} relations -> {args.output}")
        return
    ours = json.loads(args.metrics.read_text())
    standin = json.loads(args.standin.read_text())
    own = standin["test"]
    if args.pipeline is not None:
        threshold = spacy.util.load_config(args.pipeline / "config.cfg")["components"]["direct_rel"]["threshold"]
        if abs(threshold - standin["threshold"]) > 1e-9:
            sys.exit(f"the pipeline reads at threshold {threshold}, the stand-in's dev choice is {standin['threshold']}: "
                     f"run with --vars.rel_threshold {standin['threshold']}")  # fmt: skip
    print("CoNLL04 test, gold entities: micro P / R / F over (head span, tail span, type)")
    print(f"  direct_rel (spacy evaluate)   {ours['rel_micro_p']:.4f} / {ours['rel_micro_r']:.4f} / {ours['rel_micro_f']:.4f}")
    print(f"  glirel's own evaluation       {own['micro_precision']:.4f} / {own['micro_recall']:.4f} / {own['micro_f1']:.4f}")
    if ours["rel_micro_f"] + 1e-9 < own["micro_f1"]:
        sys.exit("direct_rel's F1 is below glirel's own evaluation of the checkpoint")


if __name__ == "__main__":
    main()
