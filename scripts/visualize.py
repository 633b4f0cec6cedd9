"""Error analysis of a pipeline on a gold .spacy corpus: where and how its entities go wrong.

Writes into OUTPUT_DIR:
- errors.html: predicted and gold entities side by side (displaCy), the docs with an
  error only unless --docs all; false positives and false negatives in colours no
  entity type uses, each error labelled with its kind;
- errors.json: per type, how many entities are correct and how many are errors of each
  kind (the SemEval-2013 / MUC view, counted by nervaluate), the confusion counts and
  per-type P/R/F1 (exact match, as spaCy scores);
- confusion.png: gold vs predicted types, with missed gold and spurious predictions;
- per_type.png: per-type P/R/F1 and error kinds.

Error kinds: `boundary` (right type, overlapping but other tokens), `type` (same tokens,
other type), `boundary+type`, `missed` (no prediction matched to the gold entity) and
`spurious` (the prediction overlaps no gold entity).
"""
import argparse
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
from matplotlib.figure import Figure  # no pyplot: files only, no display or global state
from nervaluate import Evaluator
from spacy import displacy
from spacy.tokens import Doc
from spacy.training import Example

from harness import load_nlp, read_gold
from score import predict

MISSED, SPURIOUS = "missed", "spurious"
ERROR_KINDS = ("boundary", "type", "boundary+type", MISSED, SPURIOUS)
# displaCy colours its entity types in pastels (spacy.displacy.render.DEFAULT_LABEL_COLORS,
# grey for others); errors get saturated red and blue, which none of them uses.
FALSE_POSITIVE_COLOR, FALSE_NEGATIVE_COLOR = "#ff1f1f", "#3d7bff"
# The pictures' error kinds: missed and spurious in the page's false negative / positive colours.
KIND_COLORS = {
    "boundary": "#f4a261", "type": "#9b5de5", "boundary+type": "#2a9d8f",
    MISSED: FALSE_NEGATIVE_COLOR, SPURIOUS: FALSE_POSITIVE_COLOR,
}  # fmt: skip
EntityKey = Tuple[int, int]  # (doc index, entity index)


@dataclass
class ErrorAnalysis:
    """Error kinds per type, gold vs predicted type counts, per-type P/R/F1, and the kind of
    each wrong predicted entity and missed gold entity (to mark them)."""

    types: List[str]
    kinds: Dict[str, Counter] = field(default_factory=dict)
    confusion: Counter = field(default_factory=Counter)  # (gold type or SPURIOUS, predicted type or MISSED)
    prf: Dict[str, Dict[str, float]] = field(default_factory=dict)
    predicted_kinds: Dict[EntityKey, str] = field(default_factory=dict)
    missed: Set[EntityKey] = field(default_factory=set)

    def to_json(self) -> Dict[str, Any]:
        return {
            "kinds": {t: {k: self.kinds[t][k] for k in ("correct",) + ERROR_KINDS} for t in self.types},
            "confusion": [{"gold": g, "predicted": p, "count": n} for (g, p), n in sorted(self.confusion.items())],
            "prf": self.prf,
        }


def entity_dicts(doc: Doc, label: Optional[str] = None) -> List[Dict[str, Any]]:
    """The entities (of type `label` only, if given) as nervaluate reads them: token
    start and inclusive end."""
    return [{"label": e.label_, "start": e.start, "end": e.end - 1} for e in doc.ents if label in (None, e.label_)]


def nervaluate(golds: Sequence[Doc], preds: Sequence[Doc], types: List[str], gold_type: Optional[str] = None) -> Dict:
    """nervaluate's results for the predictions against the gold entities (of `gold_type` only)."""
    true = [entity_dicts(doc, gold_type) for doc in golds]
    return Evaluator(true, [entity_dicts(doc) for doc in preds], tags=types, loader="dict").evaluate()


def analyse(examples: Sequence[Example]) -> ErrorAnalysis:
    """Count error kinds with nervaluate: its strict, exact (same tokens, any type) and
    ent_type (overlap, same type) matches tell the kinds apart."""
    golds, preds = [eg.reference for eg in examples], [eg.predicted for eg in examples]
    types = sorted({e.label_ for doc in [*golds, *preds] for e in doc.ents})
    analysis = ErrorAnalysis(types)
    overall = nervaluate(golds, preds, types)
    _mark_entities(analysis, overall["overall_indices"])
    for gold_type in types:  # each gold type against all predictions: what became of its entities
        results = nervaluate(golds, preds, types, gold_type)
        strict, exact, ent_type = (results["overall"][s] for s in ("strict", "exact", "ent_type"))
        kinds = Counter(correct=strict.correct, type=exact.correct - strict.correct, missed=strict.missed)
        kinds["boundary"] = ent_type.correct - strict.correct
        kinds["boundary+type"] = strict.incorrect - kinds["type"] - kinds["boundary"]
        analysis.kinds[gold_type] = kinds
        analysis.confusion[gold_type, gold_type] += strict.correct
        for doc_i, ent_i in results["overall_indices"]["strict"].incorrect_indices:
            analysis.confusion[gold_type, preds[doc_i].ents[ent_i].label_] += 1
        analysis.confusion[gold_type, MISSED] += strict.missed
    for doc_i, ent_i in overall["overall_indices"]["strict"].spurious_indices:
        label = preds[doc_i].ents[ent_i].label_
        analysis.kinds.setdefault(label, Counter())[SPURIOUS] += 1
        analysis.confusion[SPURIOUS, label] += 1
    scores = {t: overall["entities"][t]["strict"] for t in types if t in overall["entities"]}
    scores["all"] = overall["overall"]["strict"]
    analysis.prf = {t: {"p": s.precision, "r": s.recall, "f": s.f1} for t, s in scores.items()}
    return analysis


def _mark_entities(analysis: ErrorAnalysis, indices: Dict[str, Any]) -> None:
    """The error kind of each wrong predicted entity, and the missed gold entities."""
    same_tokens = set(indices["exact"].correct_indices)
    same_type = set(indices["ent_type"].correct_indices)
    for key in indices["strict"].incorrect_indices:
        kind = "type" if key in same_tokens else "boundary" if key in same_type else "boundary+type"
        analysis.predicted_kinds[key] = kind
    analysis.predicted_kinds.update((key, SPURIOUS) for key in indices["strict"].spurious_indices)
    analysis.missed = set(indices["strict"].missed_indices)


# -- the HTML page -------------------------------------------------------------------------------


def ents_markup(doc: Doc, wrong: Dict[int, str], color: str, title: str) -> str:
    """displaCy markup of a Doc's entities; those in `wrong` (entity index -> note) are
    labelled 'LABEL ✗ note' in `color`."""
    ents, colors = [], {}
    for i, ent in enumerate(doc.ents):
        label = f"{ent.label_} ✗ {wrong[i]}".rstrip() if i in wrong else ent.label_
        if i in wrong:
            colors[label] = color
        ents.append({"start": ent.start_char, "end": ent.end_char, "label": label})
    parsed = {"text": doc.text, "ents": ents, "title": title}
    return displacy.render(parsed, style="ent", manual=True, options={"colors": colors})


def ent_keys(doc: Doc) -> Set[Tuple[int, int, str]]:
    return {(e.start, e.end, e.label_) for e in doc.ents}


def doc_pair(doc_i: int, eg: Example, analysis: ErrorAnalysis) -> str:
    """Predicted and gold entities of one doc side by side, errors marked."""
    gold_keys, pred_keys = ent_keys(eg.reference), ent_keys(eg.predicted)
    false_pos = {
        i: analysis.predicted_kinds.get((doc_i, i), "")
        for i, e in enumerate(eg.predicted.ents) if (e.start, e.end, e.label_) not in gold_keys
    }  # fmt: skip
    false_neg = {
        i: MISSED if (doc_i, i) in analysis.missed else ""
        for i, e in enumerate(eg.reference.ents) if (e.start, e.end, e.label_) not in pred_keys
    }  # fmt: skip
    title = f"#{doc_i}: {len(false_pos)} false positive(s), {len(false_neg)} false negative(s)"
    predicted = ents_markup(eg.predicted, false_pos, FALSE_POSITIVE_COLOR, "predicted")
    gold = ents_markup(eg.reference, false_neg, FALSE_NEGATIVE_COLOR, "gold")
    return f'<section><h3>{html.escape(title)}</h3><div class="pair"><div>{predicted}</div><div>{gold}</div></div></section>'


def summary_table(analysis: ErrorAnalysis) -> str:
    """Error kinds and P/R/F1 per type as an HTML table."""
    head = "".join(f"<th>{h}</th>" for h in ("type", "correct", *ERROR_KINDS, "P", "R", "F1"))
    rows = []
    for t in analysis.types:
        counts = "".join(f"<td>{analysis.kinds[t][k]}</td>" for k in ("correct",) + ERROR_KINDS)
        prf = analysis.prf.get(t, {"p": 0.0, "r": 0.0, "f": 0.0})
        rows.append(f"<tr><td>{t}</td>{counts}" + "".join(f"<td>{100 * prf[k]:.2f}</td>" for k in "prf") + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Errors: {name}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", sans-serif; margin: 2em; }}
.pair {{ display: grid; grid-template-columns: 1fr 1fr; gap: 1.5em; }}
.pair h2 {{ font-size: 1em; margin: 0; }}
section {{ border-top: 1px solid #ddd; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
.swatch {{ padding: 0.1em 0.5em; border-radius: 0.3em; }}
img {{ max-width: 48%; }}
</style></head><body>
<h1>Errors of {name}</h1>
<p>Predicted entities left, gold right. <span class="swatch" style="background: {fp}">✗ false positive</span>
(labelled with its kind: boundary, type, boundary+type or spurious) and
<span class="swatch" style="background: {fn}">✗ false negative</span> (labelled missed when no prediction
overlaps it). {shown}</p>
{table}
<p><img src="confusion.png" alt="confusion matrix"> <img src="per_type.png" alt="per-type P/R/F1 and error kinds"></p>
{docs}
</body></html>
"""


# -- pictures ----------------------------------------------------------------------------------------


def plot_confusion(analysis: ErrorAnalysis, path: Path) -> None:
    """Gold types (and spurious predictions) down, predicted types (and missed gold) across;
    counts in the cells, colour by share of the row."""
    rows, cols = analysis.types + [SPURIOUS], analysis.types + [MISSED]
    counts = np.array([[analysis.confusion[r, c] for c in cols] for r in rows], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.3 * len(cols) + 2, 1.1 * len(rows) + 1.5))
    ax = fig.subplots()
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        if rows[i] != SPURIOUS or cols[j] != MISSED:
            ax.text(j, i, f"{int(n)}", ha="center", va="center", color="white" if shares[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(cols)), [f"{c}\n(no prediction)" if c == MISSED else c for c in cols])
    ax.set_yticks(range(len(rows)), [f"{r}\n(no gold)" if r == SPURIOUS else r for r in rows])
    ax.set_xlabel("predicted type")
    ax.set_ylabel("gold type")
    ax.set_title("Gold vs predicted entity types\n(overlapping entities; colour: share of the row)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_per_type(analysis: ErrorAnalysis, path: Path) -> None:
    """Left: P/R/F1 per type and overall. Right: error kinds per type, stacked."""
    fig = Figure(figsize=(13, 4.5))
    left, right = fig.subplots(1, 2)
    names = list(analysis.prf)
    x = np.arange(len(names))
    for k, (key, label) in enumerate((("p", "precision"), ("r", "recall"), ("f", "F1"))):
        values = [100 * analysis.prf[n][key] for n in names]
        bars = left.bar(x + (k - 1) * 0.27, values, 0.27, label=label)
        left.bar_label(bars, fmt="%.1f", fontsize=7, rotation=90, padding=2)
    lowest = min(100 * s[k] for s in analysis.prf.values() for k in "prf")
    left.set_ylim(max(0, 10 * (lowest // 10) - 10), 110)
    left.set_xticks(x, names)
    left.set_ylabel("% (exact match)")
    left.set_title("Precision, recall and F1 per type")
    left.legend(loc="upper center", ncol=3, fontsize=8)
    y = np.arange(len(analysis.types))
    start = np.zeros(len(y))
    for kind in ERROR_KINDS:
        counts = np.array([analysis.kinds[t][kind] for t in analysis.types], dtype=float)
        right.barh(y, counts, left=start, color=KIND_COLORS[kind], label=kind)
        start += counts
    for i, total in enumerate(start):
        right.text(total, i, f" {int(total)}", va="center", fontsize=8)
    right.set_yticks(y, analysis.types)
    right.invert_yaxis()
    right.set_xlabel("entities (spurious: by predicted type, the others by gold type)")
    right.set_title("Errors per type, by kind")
    right.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Pipeline directory")
    parser.add_argument("data", type=Path, help="Gold .spacy file")
    parser.add_argument("output_dir", type=Path, help="Folder for errors.html, errors.json and the pictures")
    parser.add_argument("--docs", choices=("errors", "all"), default="errors", help="Show docs with an error, or all")
    parser.add_argument("--limit", "-n", type=int, default=25, help="Show at most N docs (0: no limit)")
    parser.add_argument("--gpu-id", "-g", type=int, default=-1, help="GPU id, -1 for CPU")
    args = parser.parse_args()

    nlp = load_nlp(args.model, args.gpu_id)
    examples = predict(nlp, read_gold(args.data, nlp.vocab))
    analysis = analyse(examples)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    plot_confusion(analysis, args.output_dir / "confusion.png")
    plot_per_type(analysis, args.output_dir / "per_type.png")
    (args.output_dir / "errors.json").write_text(json.dumps(analysis.to_json(), indent=2) + "\n")
    with_errors = [i for i, eg in enumerate(examples) if ent_keys(eg.predicted) != ent_keys(eg.reference)]
    shown = (with_errors if args.docs == "errors" else list(range(len(examples))))[: args.limit or None]
    note = f"{len(with_errors)} of the {len(examples)} docs have an error; showing {len(shown)} ({args.docs})."
    page = PAGE.format(
        name=html.escape(args.model), fp=FALSE_POSITIVE_COLOR, fn=FALSE_NEGATIVE_COLOR, shown=note,
        table=summary_table(analysis), docs="\n".join(doc_pair(i, examples[i], analysis) for i in shown),
    )
    (args.output_dir / "errors.html").write_text(page, encoding="utf8")
    print(f"{note} Wrote {args.output_dir}/errors.html, errors.json, confusion.png and per_type.png")


if __name__ == "__main__":
    main()
