"""direct_rel against glirel's own spaCy wrapper on CoNLL04 (gold entities given), one run, the same
checkpoint and torch threads for every system:

- Docs/s: direct_rel (nlp.pipe, windows of a batch length-sorted together), glirel's
  `SpacyGLiRELWrapper` (one Doc per predict_relations call, labels through
  nlp.pipe(as_tuples=True) context, as its docs show), and the ceiling: the encoder's forward
  alone on the same prompt + words, batched length-sorted against one Doc at a time;
- equality: on every sentence that fits the checkpoint, direct_rel's relations against
  `GLiREL.predict_relations` on the same words, entities, labels, threshold and top_k;
- F1: micro P/R/F over (head span, tail span, type) against the gold (the relation scorer);
- the window rule on dev: sentences joined into long Docs (`--doc-sentences` per Doc), read in
  windows of whole sentences up to max_len words; how many gold relations have their entities in
  different windows, and F1 per sentence against F1 in long Docs.

  python scripts/relations_benchmark.py --model training/glirel-conll04 --data ../shared/data/conll04 --threshold 0.75

glirel's wrapper is built around the loaded model (its factory calls GLiREL.from_pretrained, which
fails beside transformers 5's huggingface_hub); everything it does per Doc is its own code.
"""
import argparse
import json
from pathlib import Path
from typing import List

import numpy as np
import spacy
import torch
from conll04 import read_docs
from harness import timed_rounds
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from spacy_direct_use.glirel_checkpoint import load_glirel
from spacy_direct_use.inference import length_batches
from spacy_direct_use.relations import relations, score_relations

LABELS = ["Kill", "Live_In", "Located_In", "OrgBased_In", "Work_For"]


def fresh(docs: List[Doc]) -> List[Doc]:
    """Copies with the gold entities and no relations."""
    out = []
    for doc in docs:
        copy = Doc(doc.vocab, words=[t.text for t in doc])
        copy.ents = [copy.char_span(e.start_char, e.end_char, e.label_) for e in doc.ents]
        out.append(copy)
    return out


def joined(docs: List[Doc], per_doc: int) -> List[Doc]:
    """`per_doc` sentences per Doc, sentence starts kept; gold entities and relations carried over."""
    out = []
    for k in range(0, len(docs), per_doc):
        part = docs[k : k + per_doc]
        doc = Doc.from_docs(part, ensure_whitespace=True, exclude=["user_data"])
        offsets = np.cumsum([0] + [len(d.ents) for d in part])
        doc._.rel = [dict(r, dep=r["dep"] + int(o), dest=r["dest"] + int(o)) for d, o in zip(part, offsets) for r in d._.rel]
        starts = set(np.cumsum([0] + [len(d) for d in part[:-1]]).tolist())
        for token in doc:
            token.is_sent_start = token.i in starts
        out.append(doc)
    return out


def _across(reader, docs: List[Doc], max_sentences: int) -> int:
    """Gold relations whose two entities no window holds together (the window rule's loss)."""
    from spacy_direct_use.alignment import doc_words
    from spacy_direct_use.glirel_relations import starts_outside_entities, word_entities
    from spacy_direct_use.inference import first_pieces
    from spacy_direct_use.windows import word_windows

    across = 0
    limit = reader.piece_limit - reader.prompt_pieces(LABELS)
    for doc in docs:
        words, word_tokens = doc_words(doc)
        ents = word_entities(doc, word_tokens)
        starts = starts_outside_entities(np.array([s.start for s in doc.sents]), ents)
        wins = word_windows(first_pieces(reader.tokenizer, [words])[0], starts, reader.max_len, limit, reader.max_len // 2, max_sentences)
        for rel in doc._.rel:
            h, t = ents[rel["dep"]], ents[rel["dest"]]
            across += not any(s <= min(h[0], t[0]) and max(h[1], t[1]) <= e for s, e, _, _ in wins)
    return across


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threshold", type=float, default=0.75)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=0, help="test sentences timed (0: all)")
    parser.add_argument("--doc-sentences", type=int, default=10)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from glirel.spacy_integration import SpacyGLiRELWrapper
    from loguru import logger

    logger.remove()  # the wrapper logs a warning per Doc with fewer than two entities
    vocab = spacy.blank("en").vocab
    test = read_docs(args.data / "conll04_test.json", vocab)
    dev = read_docs(args.data / "conll04_dev.json", vocab)
    timed = test[: args.sentences] if args.sentences else test

    ours = spacy.blank("en", vocab=vocab)
    ours.add_pipe("direct_rel", config={"model": args.model, "labels": LABELS, "threshold": args.threshold, "top_k": 1})
    ours.initialize()
    model = load_glirel(args.model, None, True, torch.device("cpu"))  # glirel's own reading, separately loaded

    wrapper = SpacyGLiRELWrapper.__new__(SpacyGLiRELWrapper)
    wrapper.model, wrapper.batch_size, wrapper.threshold = load_glirel(args.model, None, True, torch.device("cpu")), 1, args.threshold

    @Language.component("glirel_wrapper_prebuilt")
    def run_wrapper(doc: Doc) -> Doc:
        return wrapper(doc)

    theirs = spacy.blank("en", vocab=vocab)
    theirs.add_pipe("glirel_wrapper_prebuilt")

    # the encoder alone: prompt + words, one Doc at a time against length-sorted batches
    encoder, tokenizer = model.token_rep_layer.bert_layer.model, model.token_rep_layer.bert_layer.tokenizer
    prompt = [w for label in LABELS for w in (model.rel_token, label)] + [model.sep_token]
    inputs = [prompt + [t.text for t in doc] for doc in timed if len(doc.ents) >= 2]

    def encode(batch):
        with torch.no_grad():
            enc = tokenizer(batch, is_split_into_words=True, return_tensors="pt", padding=True)
            encoder(enc["input_ids"], attention_mask=enc["attention_mask"])

    def encoder_batched():
        lengths = [len(x) for x in inputs]
        order = sorted(range(len(inputs)), key=lengths.__getitem__)
        for batch in length_batches(order, lengths, 32, 2048):
            encode([inputs[k] for k in batch])

    systems = {
        "direct_rel": lambda: list(ours.pipe(fresh(timed), batch_size=64)),
        "glirel wrapper": lambda: list(theirs.pipe([(d, {"glirel_labels": LABELS}) for d in fresh(timed)], as_tuples=True)),
        "encoder, one at a time": lambda: [encode([x]) for x in inputs],
        "encoder, batched": encoder_batched,
    }
    best = timed_rounds(systems, args.rounds)
    per_s = {name: len(timed) / seconds for name, seconds in best.items()}
    print(f"CoNLL04 test, {len(timed)} sentences, {args.threads} torch thread(s), best of {args.rounds} rounds:")
    for name, value in per_s.items():
        print(f"  {name:<24} {value:8.1f} Docs/s")
    print(f"  direct_rel / wrapper: {per_s['direct_rel'] / per_s['glirel wrapper']:.2f}x   (ceiling: the encoder batched / "
          f"one at a time {per_s['encoder, batched'] / per_s['encoder, one at a time']:.2f}x)", flush=True)  # fmt: skip

    # equality with predict_relations, Doc by Doc, on the whole test set
    docs = list(ours.pipe(fresh(test), batch_size=64))
    mismatched, max_diff, n_rels = 0, 0.0, 0
    for doc in docs:
        ner = [[e.start, e.end - 1, e.label_, e.text] for e in doc.ents]
        want = []
        if len(ner) >= 2:
            rels = model.predict_relations([t.text for t in doc], LABELS, threshold=args.threshold, ner=ner, top_k=1)
            want = sorted((tuple(r["head_pos"]), tuple(r["tail_pos"]), r["label"], r["score"]) for r in rels)
        got = sorted(((r.head.start, r.head.end), (r.tail.start, r.tail.end), r.label, r.score) for r in relations(doc))
        n_rels += len(got)
        if [g[:3] for g in got] != [w[:3] for w in want]:
            mismatched += 1
        else:
            max_diff = max([max_diff] + [abs(g[3] - w[3]) for g, w in zip(got, want)])
    test_scores = score_relations([Example(d, g) for d, g in zip(docs, test)])

    # the window rule on dev: per sentence against sentences joined into long Docs
    dev_sentences = score_relations([Example(d, g) for d, g in zip(ours.pipe(fresh(dev), batch_size=64), dev)])
    long_gold = joined(dev, args.doc_sentences)
    reader = ours.get_pipe("direct_rel").runner
    forward = reader.forward
    rule = {"per_sentence_f": dev_sentences["rel_micro_f"], "sentences_per_doc": args.doc_sentences, "gold_relations": 0}
    for name, max_sentences in (("one sentence per window", 1), ("packed up to max_len", 10_000)):
        windows_seen: List[int] = []
        reader.forward = lambda batch, *a: windows_seen.extend(len(w) for w, _, _ in batch) or forward(batch, *a)
        reader.max_sentences = max_sentences
        long_read = list(ours.pipe([Doc.from_docs([d], exclude=["user_data"]) for d in long_gold], batch_size=16))
        scores = score_relations([Example(d, g) for d, g in zip(long_read, long_gold)])
        rule[name] = {"f": scores["rel_micro_f"], "p": scores["rel_micro_p"], "r": scores["rel_micro_r"], "windows": len(windows_seen),
                      "max_window_words": max(windows_seen or [0]), "gold_relations_across_windows": _across(reader, long_gold, max_sentences)}  # fmt: skip
    reader.forward, reader.max_sentences = forward, 1
    rule["gold_relations"] = sum(len(d._.rel) for d in long_gold)

    # a 3,000-word Doc with no sentence boundaries: relations to its last paragraph
    part = [fresh([d])[0] for d in dev]
    part = part[: int(np.searchsorted(np.cumsum([len(d) for d in part]), 3000)) + 1]
    long_doc = list(ours.pipe([Doc.from_docs(part, exclude=["user_data"])]))[0]
    last = len(long_doc) - len(part[-1]) - len(part[-2])
    in_last = [r for r in relations(long_doc) if r.head.start >= last and r.tail.start >= last]
    rule["long_doc"] = {"words": len(long_doc), "relations": len(long_doc._.rel), "in_last_two_sentences": len(in_last)}

    report = {
        "threads": args.threads,
        "sentences_timed": len(timed),
        "docs_per_s": per_s,
        "speedup_vs_wrapper": per_s["direct_rel"] / per_s["glirel wrapper"],
        "encoder_ceiling": per_s["encoder, batched"] / per_s["encoder, one at a time"],
        "equality": {"sentences": len(docs), "mismatched": mismatched, "max_score_diff": max_diff, "relations": n_rels},
        "test": test_scores,
        "window_rule_dev": rule,
    }
    print(f"equal to predict_relations: {len(docs) - mismatched}/{len(docs)} sentences, max score difference {max_diff:.2e} ({n_rels} relations)")
    print(f"test micro P/R/F: {test_scores['rel_micro_p']:.4f} / {test_scores['rel_micro_r']:.4f} / {test_scores['rel_micro_f']:.4f}")
    print(f"window rule on dev: {len(long_gold)} Docs of {args.doc_sentences} sentences, {rule['gold_relations']} gold relations; "
          f"micro F1 per sentence {rule['per_sentence_f']:.4f}")  # fmt: skip
    for name in ("one sentence per window", "packed up to max_len"):
        w = rule[name]
        print(f"  {name:<24} {w['windows']} windows (at most {w['max_window_words']} words), gold relations across windows "
              f"{w['gold_relations_across_windows']}, micro P/R/F {w['p']:.4f} / {w['r']:.4f} / {w['f']:.4f}")  # fmt: skip
    print(f"a {len(long_doc)}-word Doc ({len(part)} dev sentences, no sentence boundaries): {len(long_doc._.rel)} relations, "
          f"{len(in_last)} in its last two sentences: {[(r.head.text, r.label, r.tail.text) for r in in_last]}")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
