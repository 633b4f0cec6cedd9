"""Evaluate an assembled direct_ner pipeline on a gold .spacy corpus.

Predicted Docs are built from the gold words and spaces (no sentence boundaries
unless --gold-sents), so scores measure the component, not the tokenizer.
Writes the same JSON as `spacy evaluate --output` and prints per-type P/R/F,
a token-level IOB2 classification report and words per second.
"""

import argparse
import json
from pathlib import Path
from timeit import default_timer as timer
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import spacy
from spacy.cli.evaluate import handle_scores_per_type
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.vocab import Vocab
from tqdm import tqdm

from spacy_direct_use.conll import doc_iob2_tags

# The keys `spacy evaluate --output` writes, in its order (see spacy/cli/evaluate.py).
SPACY_EVALUATE_KEYS = (
    "token_acc", "tag_acc", "pos_acc", "morph_acc", "lemma_acc", "dep_uas",
    "dep_las", "ents_p", "ents_r", "ents_f", "cats_score", "sents_p", "sents_r",
    "sents_f", "speed",
)  # fmt: skip
REPORT_AVERAGES = ("micro avg", "macro avg", "weighted avg")


def load_nlp(model: str, gpu_id: int = -1) -> Language:
    """Load a pipeline, on GPU `gpu_id` when >= 0."""
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def read_gold(path: Path, vocab: Vocab) -> List[Doc]:
    """Read the gold Docs from a .spacy file."""
    return list(DocBin().from_disk(path).get_docs(vocab))


def blank_copy(vocab: Vocab, gold: Doc, gold_sents: bool = False) -> Doc:
    """A Doc with the gold words and spaces only (optionally gold sentence starts)."""
    words = [t.text for t in gold]
    spaces = [bool(t.whitespace_) for t in gold]
    sent_starts = [t.is_sent_start for t in gold] if gold_sents else None
    return Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)


def predict(
    nlp: Language, golds: Sequence[Doc], batch_size: int = 64, gold_sents: bool = False
) -> Tuple[List[Example], float]:
    """Run `nlp.pipe` on blank copies of the gold Docs with a progress bar.

    Returns (examples, seconds spent in the pipeline).
    """
    docs = [blank_copy(nlp.vocab, gold, gold_sents) for gold in golds]
    progress = tqdm(total=sum(len(d) for d in docs), unit="word", desc="direct_ner")
    start = timer()
    predicted = []
    for doc in nlp.pipe(docs, batch_size=batch_size):
        predicted.append(doc)
        progress.update(len(doc))
    seconds = timer() - start
    progress.close()
    return [Example(p, g) for p, g in zip(predicted, golds)], seconds


def score(nlp: Language, examples: Sequence[Example], seconds: float) -> Dict[str, Any]:
    """Score examples with the pipeline's scorers, as `nlp.evaluate` does."""
    scores = Scorer(nlp).score(examples)
    scores["speed"] = sum(len(eg.predicted) for eg in examples) / max(seconds, 1e-9)
    return scores


def evaluate_output(scores: Dict[str, Any]) -> Dict[str, Any]:
    """The subset of `scores` that `spacy evaluate --output` writes."""
    data = {key: scores[key] for key in SPACY_EVALUATE_KEYS if key in scores}
    if scores.get("ents_per_type"):
        data["ents_per_type"] = scores["ents_per_type"]
    return data


def sort_tags(tags: Sequence[str]) -> List[str]:
    """Order IOB2 tags by entity type, B- before I-, with O last."""
    return sorted(set(tags), key=lambda t: (t == "O", t[2:], t[:1]))


def token_report(y_true: Sequence[str], y_pred: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """sklearn-style per-tag precision/recall/F1/support, plus averages."""
    labels = sort_tags([*y_true, *y_pred])
    index = {label: i for i, label in enumerate(labels)}
    true = np.array([index[t] for t in y_true], dtype=np.int64)
    pred = np.array([index[t] for t in y_pred], dtype=np.int64)
    n = len(labels)
    tp = np.bincount(true[true == pred], minlength=n).astype(float)
    n_pred = np.bincount(pred, minlength=n).astype(float)
    support = np.bincount(true, minlength=n).astype(float)
    p, r, f = _prf(tp, n_pred, support)
    report = {
        label: {"precision": p[i], "recall": r[i], "f1-score": f[i], "support": support[i]}
        for i, label in enumerate(labels)
    }
    mp, mr, mf = _prf(tp.sum(), n_pred.sum(), support.sum())
    weights = support / max(support.sum(), 1.0)
    for name, vals in zip(
        REPORT_AVERAGES,
        ((mp, mr, mf), (p.mean(), r.mean(), f.mean()), (p @ weights, r @ weights, f @ weights)),
    ):
        report[name] = dict(zip(("precision", "recall", "f1-score"), map(float, vals)))
        report[name]["support"] = support.sum()
    return report


def _prf(tp: Any, n_pred: Any, n_true: Any) -> Tuple[Any, Any, Any]:
    """Precision, recall, F1 with 0 where undefined (like sklearn zero_division=0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.nan_to_num(tp / n_pred)
        r = np.nan_to_num(tp / n_true)
        f = np.nan_to_num(2 * p * r / (p + r))
    return p, r, f


def format_report(report: Dict[str, Dict[str, float]], digits: int = 4) -> str:
    """Render a token report as an sklearn-style text table."""
    width = max(len(name) for name in report)
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for name, row in report.items():
        if name == REPORT_AVERAGES[0]:
            lines.append("")
        vals = " ".join(f"{row[k]:>9.{digits}f}" for k in ("precision", "recall", "f1-score"))
        lines.append(f"{name:>{width}} {vals} {int(row['support']):>9}")
    return "\n".join(lines)


def bio_report(examples: Sequence[Example]) -> Dict[str, Dict[str, float]]:
    """Token-level IOB2 report for predicted vs. gold entities."""
    y_true = [t for eg in examples for t in doc_iob2_tags(eg.reference)]
    y_pred = [t for eg in examples for t in doc_iob2_tags(eg.predicted)]
    return token_report(y_true, y_pred)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Pipeline directory (or package name)")
    parser.add_argument("data", type=Path, help="Gold .spacy file")
    parser.add_argument("--output", "-o", type=Path, help="Metrics JSON file")
    parser.add_argument("--gpu-id", "-g", type=int, default=-1, help="GPU id, -1 for CPU")
    parser.add_argument("--batch-size", "-b", type=int, default=64, help="Docs per nlp.pipe batch")
    parser.add_argument(
        "--gold-sents", action="store_true", help="Give the predicted Docs gold sentence starts"
    )
    args = parser.parse_args()

    nlp = load_nlp(args.model, args.gpu_id)
    golds = read_gold(args.data, nlp.vocab)
    examples, seconds = predict(nlp, golds, args.batch_size, args.gold_sents)
    scores = score(nlp, examples, seconds)
    print(f"\n{args.data}: {len(examples)} docs")
    prf = " / ".join(f"{scores.get(f'ents_{k}') or 0.0:.4f}" for k in "prf")
    print(f"NER P / R / F: {prf}")
    handle_scores_per_type(scores, silent=False)
    print("Token-level IOB2 report:\n" + format_report(bio_report(examples)))
    print(f"\nSpeed: {scores['speed']:.0f} words/s")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(evaluate_output(scores), indent=2) + "\n")
        print(f"Saved metrics to {args.output}")


if __name__ == "__main__":
    main()
