"""Speed of the no-training routes, side by side in one run (systems interleaved per round).

vectors: direct_vectors (nlp.pipe) against sentence-transformers' `encode` at its default
  batch size (32) and against the bare floor (the checkpoint's tokenizer, forward and
  pooling in length-sorted batches of 32, cut at max_seq_length as encode does), on
  STS-B sentences and AG News texts; prints words/s and the agreement of the vectors.
zeroshot: direct_textcat on an NLI checkpoint against transformers' zero-shot-classification
  pipeline (its default batch size 1, and 8) and classy-classification's zero-shot
  component (where installed: it pins sentence-transformers < 4, so run this in a
  separate environment, docs/reproducing.md), on AG News texts with the four topic
  names; prints Docs/s and the largest score difference to the pipeline. Without a
  real NLI checkpoint (--nli-model), one is built from --encoder's weights with a
  random 3-way head: equal scores and speed need no trained head.

  python scripts/no_training_benchmark.py vectors --model MODEL --stsb ../shared/data/stsb/sts-dev.csv --agnews ../shared/data/ag_news/dev.csv
  python scripts/no_training_benchmark.py zeroshot --encoder MODEL --agnews ../shared/data/ag_news/dev.csv --texts 200
"""
import argparse
import csv
import json
import tempfile
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import spacy
import torch

from harness import bare_forward, hf_encode, timed_rounds, words_per_second
from spacy_direct_use.embedding import pool, read_sentence_layout

AG_LABELS = ["World", "Sports", "Business", "Science/Technology"]


def read_texts(stsb: Path, agnews: Path) -> Dict[str, List[str]]:
    rows = [line.split("\t") for line in stsb.read_text(encoding="utf8").splitlines() if line.strip()]
    with agnews.open(encoding="utf8", newline="") as f:
        news = [f"{r['title']} {r['description']}" for r in csv.DictReader(f)]
    return {"STS-B sentences": [r[5] for r in rows] + [r[6] for r in rows], "AG News texts": news}


def bare_floor(model_dir: str, batch_size: int = 32) -> Callable[[List[str]], np.ndarray]:
    """Tokenizer + forward + pooling + normalize, length-sorted batches, cut at max_seq_length."""
    from transformers import AutoModel, AutoTokenizer

    layout = read_sentence_layout(model_dir, None, True, None, None)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    max_length = layout.max_seq_length or tokenizer.model_max_length
    encode = hf_encode(tokenizer, max_length=max_length)

    def pooled(outputs, encoded) -> np.ndarray:
        vectors = pool(outputs.last_hidden_state, encoded["attention_mask"], layout.pooling)
        return (torch.nn.functional.normalize(vectors, dim=-1) if layout.normalize else vectors).numpy()

    def embed(texts: List[str]) -> np.ndarray:
        return np.stack(bare_forward(model, texts, batch_size, encode, read=pooled)).astype(np.float32)

    return embed


def bench_vectors(args) -> Dict[str, object]:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(args.model, device="cpu")
    floor = bare_floor(args.model)
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_vectors", config={"model": args.model})
    nlp.initialize()
    results: Dict[str, object] = {"torch_threads": torch.get_num_threads()}
    for corpus, texts in read_texts(args.stsb, args.agnews).items():
        words = sum(len([t for t in doc if not t.is_space]) for doc in nlp.tokenizer.pipe(texts))
        floor_name, st_name, ours_name = (
            "bare floor (tokenizer + forward + pooling, batch 32)", "sentence-transformers encode (batch 32)", "direct_vectors (nlp.pipe, batch_size 128)",
        )  # fmt: skip
        systems = {
            floor_name: lambda: floor(texts),
            st_name: lambda: st.encode(texts, batch_size=32),
            ours_name: lambda: np.stack([d.vector for d in nlp.pipe(texts, batch_size=128)]),
        }
        outputs: Dict[str, np.ndarray] = {}
        seconds = timed_rounds(systems, args.rounds, outputs=outputs)
        ours, ref = outputs[ours_name], outputs[st_name]
        cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
        encode_speed = words_per_second(words, seconds[st_name])
        results[corpus] = {
            "texts": len(texts), "words": words,
            **{name: {"words/s": round(words_per_second(words, s)), "x encode": round(words_per_second(words, s) / encode_speed, 2)} for name, s in seconds.items()},
            "min cosine direct_vectors vs encode": round(float(cos.min()), 6),
        }  # fmt: skip
    return results


def make_nli_model(encoder: str, path: Path) -> str:
    """A real-size NLI-shaped checkpoint: the encoder's weights with a random 3-way head."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = ["contradiction", "entailment", "neutral"]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=3, id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
    )
    with torch.no_grad():
        model.classifier.weight.normal_(0, 0.5)
        model.classifier.bias.uniform_(-1, 1)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(path)
    return str(path)


def bench_zeroshot(args) -> Dict[str, object]:
    from transformers import pipeline

    with open(args.agnews, encoding="utf8", newline="") as f:
        texts = [f"{r['title']} {r['description']}" for r in csv.DictReader(f)][: args.texts]
    tmp = tempfile.TemporaryDirectory()
    model = args.nli_model or make_nli_model(args.encoder, Path(tmp.name) / "nli")
    classify = pipeline("zero-shot-classification", model=model, device=-1)
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_textcat", config={"model": model, "labels": AG_LABELS})
    nlp.initialize()
    pipeline_name, ours_name = "transformers pipeline (batch_size 1, its default)", "direct_textcat (nlp.pipe, batch_size 64)"
    systems = {
        pipeline_name: lambda: classify(texts, candidate_labels=AG_LABELS),
        "transformers pipeline (batch_size 8)": lambda: classify(texts, candidate_labels=AG_LABELS, batch_size=8),
        ours_name: lambda: list(nlp.pipe(texts, batch_size=64)),
    }
    try:
        import classy_classification  # noqa: F401

        classy = spacy.blank("en")
        classy.add_pipe("classy_classification", config={"data": AG_LABELS, "model": model, "cat_type": "zero", "include_sent": False, "device": "cpu", "config": {}})
        systems["classy-classification zero-shot (nlp.pipe)"] = lambda: list(classy.pipe(texts, batch_size=64))
    except ImportError:
        print("classy-classification is not installed here: its row is skipped (docs/reproducing.md sets up its environment)")
    outputs: Dict[str, list] = {}
    seconds = timed_rounds(systems, args.rounds, outputs=outputs)
    diff = max(
        abs(doc.cats[label] - dict(zip(ref["labels"], ref["scores"]))[label])
        for doc, ref in zip(outputs[ours_name], outputs[pipeline_name])
        for label in AG_LABELS
    )
    base = len(texts) / seconds[pipeline_name]
    return {
        "texts": len(texts), "labels": AG_LABELS, "torch_threads": torch.get_num_threads(),
        **{name: {"docs/s": round(len(texts) / s, 1), "x pipeline": round(len(texts) / s / base, 2)} for name, s in seconds.items()},
        "max |direct_textcat - pipeline| score": float(f"{diff:.2e}"),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("vectors")
    v.add_argument("--model", required=True)
    v.add_argument("--stsb", type=Path, required=True)
    v.add_argument("--agnews", type=Path, required=True)
    v.add_argument("--rounds", type=int, default=3)
    z = sub.add_parser("zeroshot")
    z.add_argument("--encoder", help="a sentence encoder whose weights make a random-headed NLI model")
    z.add_argument("--nli-model", help="a real NLI checkpoint instead")
    z.add_argument("--agnews", type=Path, required=True)
    z.add_argument("--texts", type=int, default=200)
    z.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = bench_vectors(args) if args.command == "vectors" else bench_zeroshot(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
