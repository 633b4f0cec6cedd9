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
import time
from typing import Callable, Dict, List

import spacy
import torch
from spacy.tokens import Doc
from spacy.training.converters import conllu_to_docs

import peers  # the peers' pipelines are built there
from harness import add_compare_args, build_systems, write_report

Tagger = Callable[[List[Doc]], List[List[str]]]  # fresh Docs -> a UPOS tag (or "") per token


def model_argmax(path: str, batch_size: int) -> Tagger:
    """The floor: transformers' tokenizer on each sentence's gold words (is_split_into_words),
    length-sorted batches, each word's first piece, argmax."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(path).float().eval()  # fp32 on CPU, as direct_tagger

    def tag(docs: List[Doc]) -> List[List[str]]:
        words = [[t.text for t in doc] for doc in docs]
        order = sorted(range(len(docs)), key=lambda i: len(words[i]))
        out: List[List[str]] = [[] for _ in docs]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenizer([words[i] for i in batch], is_split_into_words=True, truncation=True, padding=True, return_tensors="pt")
            with torch.inference_mode():
                predicted = model(**enc).logits.argmax(-1).tolist()
            for row, i in enumerate(batch):
                first: Dict[int, str] = {}
                for position, word in enumerate(enc.word_ids(row)):
                    if word is not None and word not in first:
                        first[word] = model.config.id2label[predicted[row][position]]
                out[i] = [first.get(w, "") for w in range(len(words[i]))]
        return out

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
    golds = list(conllu_to_docs(args.data.read_text(encoding="utf-8"), n_sents=1, no_print=True))
    gold_tags = [t.pos_ for doc in golds for t in doc]
    vocab = spacy.blank("en").vocab
    systems = build_systems(SYSTEMS, args.systems, args.model, args.batch_size)
    results: Dict[str, Dict[str, float]] = {}
    for _ in range(args.rounds):
        for name, tag in systems.items():
            docs = [Doc(vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]) for g in golds]
            start = time.perf_counter()
            predicted = [p for doc_tags in tag(docs) for p in doc_tags]
            seconds = time.perf_counter() - start
            correct = sum(p == g for p, g in zip(predicted, gold_tags))
            best = results.setdefault(name, {"pos_acc": 100 * correct / len(gold_tags), "untagged": predicted.count(""), "words_per_s": 0.0})
            best["words_per_s"] = max(best["words_per_s"], len(gold_tags) / seconds)
    print(f"{len(golds):,} sentences, {len(gold_tags):,} words; {torch.get_num_threads()} torch threads, best of {args.rounds} rounds")
    for name, r in results.items():
        print(f"{name:<16} UPOS accuracy {r['pos_acc']:6.2f}   untagged {r['untagged']:5d}   {r['words_per_s']:8,.0f} words/s")
    write_report(args.output, results)


if __name__ == "__main__":
    main()
