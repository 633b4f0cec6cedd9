"""Compare direct_ner with the transformers pipeline and a word-level reference.

On the same gold Docs: (a) the assembled direct_ner pipeline, (b) the
transformers "token-classification" pipeline for each aggregation strategy, its
character spans mapped onto the gold tokens, (c) the model's own word-level
tagging of each gold sentence (first sub-word's label), scored with seqeval.
Accuracy only: benchmark.py measures speed.
"""

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import torch
from seqeval.metrics import f1_score, precision_score, recall_score
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import filter_spans
from tqdm import tqdm
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from harness import load_nlp, read_gold, words_doc
from score import predict, score
from spacy_direct_use.conll import doc_iob2_tags

STRATEGIES = ("simple", "first", "average", "max")
Result = Dict[str, float]


def result(p: float, r: float, f: float) -> Result:
    """One row of the comparison."""
    return {"p": p, "r": r, "f": f}


def run_direct_ner(model: str, golds: Sequence[Doc], gpu_id: int, batch_size: int) -> Result:
    """(a) The assembled direct_ner pipeline, scored like scripts/score.py."""
    nlp = load_nlp(model, gpu_id)
    scores = score(nlp, predict(nlp, golds, batch_size))
    return result(*(scores[f"ents_{k}"] or 0.0 for k in "prf"))


def char_ents_to_doc(gold: Doc, entities: List[Dict[str, Any]]) -> Doc:
    """A copy of `gold`'s words with pipeline character spans as entities."""
    doc = words_doc(gold.vocab, gold)
    spans = [
        doc.char_span(e["start"], e["end"], label=e["entity_group"], alignment_mode="expand")
        for e in entities
    ]
    doc.set_ents(filter_spans([s for s in spans if s is not None]))
    return doc


def run_hf_pipeline(
    model: Any, tokenizer: Any, golds: Sequence[Doc], strategy: str, args: argparse.Namespace
) -> Result:
    """(b) transformers' token-classification pipeline with one aggregation strategy."""
    ner = pipeline(
        "token-classification",
        model=model,
        tokenizer=tokenizer,
        aggregation_strategy=strategy,
        stride=args.stride,
        device=args.gpu_id if args.gpu_id >= 0 else -1,
    )
    texts = (gold.text for gold in golds)  # a generator makes the pipeline stream
    outputs = list(tqdm(ner(texts, batch_size=args.batch_size), total=len(golds), desc=strategy))
    examples = [Example(char_ents_to_doc(g, o), g) for g, o in zip(golds, outputs)]
    return result(*score_ents(examples))


def score_ents(examples: Sequence[Example]) -> Tuple[float, float, float]:
    """Exact-match entity P/R/F with spaCy's scorer."""
    scores = Scorer.score_spans(examples, "ents")
    return scores["ents_p"] or 0.0, scores["ents_r"] or 0.0, scores["ents_f"] or 0.0


def gold_sentences(golds: Sequence[Doc]) -> Tuple[List[List[str]], List[List[str]]]:
    """Words and gold IOB2 tags of every sentence in the gold Docs."""
    words, tags = [], []
    for doc in golds:
        doc_tags = doc_iob2_tags(doc)
        sents = doc.sents if doc.has_annotation("SENT_START") else [doc[:]]
        for sent in sents:
            words.append([t.text for t in sent])
            tags.append(doc_tags[sent.start : sent.end])
    return words, tags


@torch.inference_mode()
def word_level_tags(
    model: Any, tokenizer: Any, sentences: Sequence[List[str]], batch_size: int
) -> List[List[str]]:
    """Tag pre-split sentences with the label of each word's first sub-word."""
    id2label = model.config.id2label
    tagged = []
    for i in tqdm(range(0, len(sentences), batch_size), desc="word-level"):
        batch = list(sentences[i : i + batch_size])
        enc = tokenizer(
            batch, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt"
        )
        ids = model(**enc.to(model.device)).logits.argmax(-1).cpu().tolist()
        for b, words in enumerate(batch):
            tags = ["O"] * len(words)
            seen = set()
            for j, w in enumerate(enc.word_ids(b)):
                if w is not None and w not in seen:
                    seen.add(w)
                    tags[w] = id2label[ids[b][j]]
            tagged.append(tags)
    return tagged


def run_word_level(model: Any, tokenizer: Any, golds: Sequence[Doc], batch_size: int) -> Result:
    """(c) The model's own word-level reference, chunked and scored with seqeval."""
    words, y_true = gold_sentences(golds)
    y_pred = word_level_tags(model, tokenizer, words, batch_size)
    return result(*(m(y_true, y_pred) for m in (precision_score, recall_score, f1_score)))


def print_table(results: Dict[str, Result]) -> None:
    """Side-by-side entity P/R/F1."""
    width = max(len(name) for name in results)
    print(f"\n{'system':<{width}} {'P':>7} {'R':>7} {'F1':>7}")
    for name, row in results.items():
        print(f"{name:<{width}} " + " ".join(f"{row[k] * 100:>7.2f}" for k in ("p", "r", "f")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline_dir", help="Assembled direct_ner pipeline")
    parser.add_argument("hf_model", help="The same model's hub name or local directory")
    parser.add_argument("data", type=Path, help="Gold .spacy file")
    parser.add_argument("--output", "-o", type=Path, help="JSON file for the results")
    parser.add_argument("--gpu-id", "-g", type=int, default=-1, help="GPU id, -1 for CPU")
    parser.add_argument("--batch-size", "-b", type=int, default=64)
    parser.add_argument(
        "--stride", type=int, default=128, help="Sub-word overlap for long texts in (b)"
    )
    args = parser.parse_args()

    golds = read_gold(args.data)
    results = {"direct_ner": run_direct_ner(args.pipeline_dir, golds, args.gpu_id, args.batch_size)}
    tokenizer = AutoTokenizer.from_pretrained(args.hf_model)
    model = AutoModelForTokenClassification.from_pretrained(args.hf_model).eval()
    if args.gpu_id >= 0:
        model.to(f"cuda:{args.gpu_id}")
    for strategy in STRATEGIES:
        results[f"hf_pipeline[{strategy}]"] = run_hf_pipeline(model, tokenizer, golds, strategy, args)
    results["word_level_reference"] = run_word_level(model, tokenizer, golds, args.batch_size)
    print_table(results)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        meta = {"data": str(args.data), "docs": len(golds), "words": sum(len(doc) for doc in golds)}
        args.output.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")
        print(f"Saved results to {args.output}")


if __name__ == "__main__":
    main()
