"""direct_ner on a GLiNER checkpoint against gliner-spacy and GLiNER's own batch prediction,
side by side in one run (systems interleaved per round, best round kept), on the same
model, texts, entity types and threshold.

Systems:
- direct_ner: nlp.pipe over a blank English pipeline (spaCy's tokens are GLiNER's words;
  windows of whole sentences, batched across Docs);
- gliner-spacy: its `gliner_spacy` component (250-character chunks, one Doc at a time);
- GLiNER.inference: gliner's own batch prediction on the texts (its words splitter, no
  spaCy), at its default batch size (8) and at 32.
It prints Docs/s and words/s per system, direct_ner's ratio to each, the entities each
found, and how often direct_ner's entities equal GLiNER.inference's exactly (same
character spans, labels, scores within 1e-4).

Without a hub GLiNER checkpoint (offline), scripts/gliner_standin.py builds one from a local
encoder, trained briefly on CoNLL-2003 dev so its output looks like a real checkpoint's
(few, confident spans); --encoder instead builds one untrained (gliner's own random
span layers: many spans near 0.5, slower decoding in every system).

  python scripts/gliner_benchmark.py --model training/gliner-minilm --conll ../shared/data/conll2003/eng.testb --sentences 0
  python scripts/gliner_benchmark.py --model training/gliner-minilm --conll ../shared/data/conll2003/eng.testa --sentences 1000 \
      --rounds 3 --batch-words 384,512,768,1536
"""
import argparse
import tempfile
from pathlib import Path
from typing import Dict, List

import spacy
import torch

from harness import gold_texts, timed_rounds, words_per_second

DEFAULT_LABELS = ["person", "organization", "location", "miscellaneous"]


def build_gliner(encoder: str, out: Path) -> Path:
    """A GLiNER checkpoint over a local encoder (its weights), span layers as gliner initializes them."""
    from gliner import GLiNER, GLiNERConfig

    torch.manual_seed(0)
    model = GLiNER.from_config(GLiNERConfig(model_name=encoder, max_width=12, max_len=384), backbone_from_pretrained=True)
    model.save_pretrained(out, safe_serialization=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a GLiNER checkpoint directory")
    source.add_argument("--encoder", help="a local encoder to build a GLiNER checkpoint from")
    parser.add_argument("--conll", type=Path, required=True, help="a CoNLL-2003 file (eng.testb)")
    parser.add_argument("--sentences", type=int, default=1000, help="first N sentences (0: all)")
    parser.add_argument("--labels", default=",".join(DEFAULT_LABELS))
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128, help="nlp.pipe batch size of direct_ner")
    parser.add_argument("--batch-words", help="instead: direct_ner alone with these forward_batch_tokens values (comma-separated; padded words per pass)")
    args = parser.parse_args()
    if args.batch_words:
        return batch_words_sweep(args)

    from gliner import GLiNER
    import gliner_spacy  # noqa: F401  (registers the gliner_spacy factory)

    labels = args.labels.split(",")
    texts = gold_texts(args.conll, max_docs=args.sentences)
    n_words = sum(len(text.split()) for text in texts)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or str(build_gliner(args.encoder, Path(tmp) / "gliner"))
        direct = spacy.blank("en")
        direct.add_pipe("direct_ner", config={"model": model_dir, "labels": labels, "threshold": args.threshold})
        direct.initialize()
        reference = GLiNER.from_pretrained(model_dir, local_files_only=True)
        peer = spacy.blank("en")
        peer.add_pipe("gliner_spacy", config={"gliner_model": model_dir, "labels": labels, "threshold": args.threshold})
        peer.get_pipe("gliner_spacy").model = reference  # the same loaded model (it would load without the checkpoint's tokenizer)
        systems = {
            "direct_ner": lambda: [_ents(doc) for doc in direct.pipe(texts, batch_size=args.batch_size)],
            "gliner-spacy": lambda: [_ents(doc) for doc in peer.pipe(texts)],
            "GLiNER.inference, batch 8": lambda: _inference(reference, texts, labels, args.threshold, 8),
            "GLiNER.inference, batch 32": lambda: _inference(reference, texts, labels, args.threshold, 32),
        }
        outputs: Dict[str, list] = {}
        best = timed_rounds(systems, args.rounds, outputs=outputs)

    print(f"{len(texts)} CoNLL-2003 sentences, {n_words} words; entity types {labels}, threshold {args.threshold}; "
          f"torch threads {torch.get_num_threads()}; best of {args.rounds} rounds")  # fmt: skip
    print("| system | Docs/s | words/s | direct_ner × | entities |\n| --- | --- | --- | --- | --- |")
    for name, seconds in best.items():
        found = sum(len(ents) for ents in outputs[name])
        ratio = seconds / best["direct_ner"]
        print(f"| {name} | {len(texts) / seconds:,.1f} | {words_per_second(n_words, seconds):,.0f} | {ratio:.2f} | {found:,} |")
    splitter = reference.data_processor.words_splitter
    agree = [[t.text for t in direct.make_doc(text) if not t.is_space] == [w for w, _, _ in splitter(text)] for text in texts]
    same = [_equal(a, b) for a, b in zip(outputs["direct_ner"], outputs["GLiNER.inference, batch 8"])]
    print(f"spaCy's tokens are gliner's words in {sum(agree)}/{len(texts)} texts; there direct_ner's entities equal "
          f"GLiNER.inference's in {sum(s for s, a in zip(same, agree) if a)}/{sum(agree)}; in all texts {sum(same)}/{len(texts)}")  # fmt: skip


def batch_words_sweep(args: argparse.Namespace) -> None:
    """Docs/s of direct_ner for each padded-words-per-pass budget, interleaved rounds (how
    gliner_entities.CPU_BATCH_WORDS was chosen, on dev sentences)."""
    texts = gold_texts(args.conll, max_docs=args.sentences)
    values = [int(v) for v in args.batch_words.split(",")]
    systems = {}
    for value in values:
        nlp = spacy.blank("en")
        config = {"model": args.model, "labels": args.labels.split(","), "threshold": args.threshold, "forward_batch_tokens": value}
        nlp.add_pipe("direct_ner", config=config)
        nlp.initialize()
        list(nlp.pipe(texts[:50]))
        systems[value] = (lambda nlp=nlp: list(nlp.pipe(texts, batch_size=args.batch_size)))
    best = timed_rounds(systems, args.rounds)
    print(f"{len(texts)} sentences of {args.conll.name}, best of {args.rounds} rounds: "
          + ", ".join(f"{value}: {len(texts) / best[value]:.1f}" for value in values) + " Docs/s")  # fmt: skip


def _ents(doc) -> list:
    group = doc.spans.get("direct_ner")
    scores = group.attrs["scores"] if group is not None else [getattr(e._, "score", 0.0) for e in doc.ents]
    spans = list(group) if group is not None else list(doc.ents)
    return [(s.start_char, s.end_char, s.label_, float(sc)) for s, sc in zip(spans, scores)]


def _inference(model, texts: List[str], labels: List[str], threshold: float, batch_size: int) -> list:
    found = model.inference(texts, labels, threshold=threshold, batch_size=batch_size)
    return [[(e["start"], e["end"], e["label"], e["score"]) for e in ents] for ents in found]


def _equal(ours: list, theirs: list) -> bool:
    return [e[:3] for e in ours] == [e[:3] for e in theirs] and all(abs(a[3] - b[3]) < 1e-4 for a, b in zip(ours, theirs))


if __name__ == "__main__":
    main()
