#!/usr/bin/env python
"""UPOS accuracy and speed of direct_tagger, the model's own first-piece argmax (the bare
tokenizer + forward floor) and the peer spaCy wrappers (hf_token_pipe with annotate "pos",
spacy-wrap with predictions_to ["pos"]) on the same gold words of a CoNLL-U file, side
by side in one run.

  python scripts/tagger_compare.py --model ../shared/models/minilm-ud-upos \
      --data ../shared/data/ud-english-ewt/en_ewt-ud-test.conllu [--systems model,direct_tagger,hf_token_pipe,spacy-wrap] \
      [--rounds 3] [--batch-size 64] [--output metrics/ewt_compare.json]

Every system gets fresh Docs with the gold words and spaces (one Doc per sentence);
accuracy counts every gold token, so a token a system leaves untagged counts as wrong
(and is counted). Peers are skipped (with a note) where they are not installed; keep
them in a separate venv. Words/s is the best of the interleaved rounds.
"""
import argparse
from typing import Callable, Dict, List

import spacy
import torch
from spacy.tokens import Doc

import peers  # the peers' pipelines are built there
from harness import add_compare_args, bare_forward, build_systems, hf_encode, read_gold, timed_rounds, words_doc, words_per_second, write_report

Tagger = Callable[[List[Doc]], List[List[str]]]  # fresh Docs -> a UPOS tag (or "") per token


def model_argmax(path: str, batch_size: int) -> Tagger:
    """The floor: transformers' tokenizer on each sentence's gold words (is_split_into_words),
    length-sorted batches, each word's first piece, argmax."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(path).float().eval()  # fp32 on CPU, as direct_tagger
    encode = hf_encode(tokenizer, split_words=True)

    def first_pieces(outputs, encoded) -> List[Dict[int, str]]:
        """Each row's tag of each word's first piece, by word index (a word cut off has none)."""
        rows = []
        for row, tags in enumerate(outputs.logits.argmax(-1).tolist()):
            first: Dict[int, str] = {}
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and word not in first:
                    first[word] = model.config.id2label[tags[position]]
            rows.append(first)
        return rows

    def tag(docs: List[Doc]) -> List[List[str]]:
        words = [[t.text for t in doc] for doc in docs]
        firsts = bare_forward(model, words, batch_size, encode, read=first_pieces)
        return [[first.get(w, "") for w in range(len(doc_words))] for first, doc_words in zip(firsts, words)]

    return tag


def spacy_tagger(nlp: spacy.Language, batch_size: int) -> Tagger:
    return lambda docs: [[t.pos_ for t in doc] for doc in nlp.pipe(docs, batch_size=batch_size)]


def direct_tagger(path: str, batch_size: int) -> Tagger:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_tagger", config={"model": path}).initialize()
    return spacy_tagger(nlp, batch_size)


SYSTEMS: Dict[str, Callable[[str, int], Tagger]] = {
    "model": model_argmax,
    "direct_tagger": direct_tagger,
    "hf_token_pipe": lambda path, b: spacy_tagger(peers.hf_token_pipe(path, b, "first", annotate="pos")[0], b),
    "spacy-wrap": lambda path, b: spacy_tagger(peers.spacy_wrap(path, b, predictions_to=["pos"])[0], b),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_compare_args(parser, SYSTEMS, "a CoNLL-U file")
    args = parser.parse_args()
    golds = read_gold(args.data)
    gold_tags = [t.pos_ for doc in golds for t in doc]
    vocab = spacy.blank("en").vocab
    systems = build_systems(SYSTEMS, args.systems, args.model, args.batch_size)
    tagged: Dict[str, List[List[str]]] = {}
    seconds = timed_rounds(systems, args.rounds, prepare=lambda _: [words_doc(vocab, g) for g in golds], outputs=tagged)
    results: Dict[str, Dict[str, float]] = {}
    for name in systems:
        predicted = [p for doc_tags in tagged[name] for p in doc_tags]
        correct = sum(p == g for p, g in zip(predicted, gold_tags))
        results[name] = {"pos_acc": 100 * correct / len(gold_tags), "untagged": predicted.count(""), "words_per_s": words_per_second(len(gold_tags), seconds[name])}
    print(f"{len(golds):,} sentences, {len(gold_tags):,} words; {torch.get_num_threads()} torch threads, best of {args.rounds} rounds")
    for name, r in results.items():
        print(f"{name:<16} UPOS accuracy {r['pos_acc']:6.2f}   untagged {r['untagged']:5d}   {r['words_per_s']:8,.0f} words/s")
    write_report(args.output, results)


if __name__ == "__main__":
    main()
