"""Score an assembled pipeline (direct_ner, direct_tagger, ...) on a gold .spacy corpus.

Predicted Docs are built from the gold words and spaces (no sentence boundaries
unless --gold-sents), so scores measure the component, not the tokenizer.
Scores come from the pipeline's own scorers (as `nlp.evaluate`); writes the JSON
of `spacy evaluate --output` but for "speed" (benchmark.py measures speed) and
prints per-type P/R/F and a token-level IOB2 classification report. (Not named
evaluate.py: that would shadow Hugging Face's `evaluate` package.)
"""

import argparse
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from spacy.cli.evaluate import handle_scores_per_type
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example
from tqdm import tqdm

from harness import load_nlp, read_gold, words_doc, write_report
from spacy_direct_use.conll import doc_iob2_tags

# The keys `spacy evaluate --output` writes, in its order (see spacy/cli/evaluate.py), less "speed".
SPACY_EVALUATE_KEYS = (
    "token_acc", "tag_acc", "pos_acc", "morph_acc", "lemma_acc", "dep_uas",
    "dep_las", "ents_p", "ents_r", "ents_f", "cats_score", "sents_p", "sents_r",
    "sents_f",
)  # fmt: skip
REPORT_AVERAGES = ("micro avg", "macro avg", "weighted avg")


def predict(nlp: Language, golds: Sequence[Doc], batch_size: int = 64, gold_sents: bool = False) -> List[Example]:
    """Run `nlp.pipe` on fresh Docs with the gold words (progress bar); the Docs are paired
    with their gold ones. (`nlp.evaluate` would score them too, but keeps no predicted Docs.)"""
    docs = (words_doc(nlp.vocab, gold, gold_sents) for gold in golds)
    predicted = tqdm(nlp.pipe(docs, batch_size=batch_size), total=len(golds), unit="doc", desc="direct_ner")
    return [Example(doc, gold) for doc, gold in zip(predicted, golds)]


def score(nlp: Language, examples: Sequence[Example]) -> Dict[str, Any]:
    """Score examples with the pipeline's scorers, as `nlp.evaluate` does."""
    return Scorer(nlp).score(examples)


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
        "--gold-sents", nargs="?", const="true", default="false", choices=("true", "false"),
        help="Give the predicted Docs gold sentence starts (article Docs read in the windows of sentence Docs)",
    )
    args = parser.parse_args()

    nlp = load_nlp(args.model, args.gpu_id)
    examples = predict(nlp, read_gold(args.data, nlp.vocab), args.batch_size, args.gold_sents == "true")
    scores = score(nlp, examples)
    print(f"\n{args.data}: {len(examples)} docs")
    for key in ("pos_acc", "tag_acc", "morph_acc", "cats_score"):
        if scores.get(key) is not None:
            print(f"{key}: {scores[key]:.4f}")
    report = None
    if "ents_f" in scores:
        prf = " / ".join(f"{scores.get(f'ents_{k}') or 0.0:.4f}" for k in "prf")
        print(f"NER P / R / F: {prf}")
        handle_scores_per_type(scores, silent=False)
        report = bio_report(examples)
        print("Token-level IOB2 report (O included: its micro average counts every token, so it reads far higher than entity F1):")
        print(format_report(report))
    if args.output:
        metrics = evaluate_output(scores)
        if report is not None:
            metrics["token_report"] = report
        metrics["tag_schemes"] = {name: pipe.tag_scheme for name, pipe in nlp.pipeline if hasattr(pipe, "tag_scheme")}
        write_report(args.output, metrics)
        print(f"Saved metrics to {args.output}")


if __name__ == "__main__":
    main()
