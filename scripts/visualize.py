"""Render predicted and gold entities of the first N docs as one displaCy page.

Each doc is shown twice, prediction above gold. Correct entities keep their
label; a false positive is labelled `LABEL ✗FP` (red) in the prediction and a
false negative `LABEL ✗FN` (orange) in the gold, so errors stand out.
"""

import argparse
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

from spacy import displacy
from spacy.tokens import Doc
from spacy.training import Example

from harness import load_nlp, read_gold
from score import predict

FP, FN = "✗FP", "✗FN"
ERROR_COLORS = {FP: "#ff8a80", FN: "#ffcc80"}
Key = Tuple[int, int, str]


def ent_keys(doc: Doc) -> Set[Key]:
    return {(e.start_char, e.end_char, e.label_) for e in doc.ents}


def render_dict(doc: Doc, wrong: Set[Key], suffix: str, title: str) -> Dict[str, Any]:
    """displaCy manual input with entities in `wrong` marked by `suffix`."""
    ents = [
        {"start": s, "end": e, "label": f"{label} {suffix}" if (s, e, label) in wrong else label}
        for s, e, label in sorted(ent_keys(doc))
    ]
    return {"text": doc.text, "ents": ents, "title": title}


def example_dicts(i: int, eg: Example) -> List[Dict[str, Any]]:
    """Prediction and gold of one example, errors marked."""
    pred, gold = ent_keys(eg.predicted), ent_keys(eg.reference)
    n_fp, n_fn = len(pred - gold), len(gold - pred)
    return [
        render_dict(eg.predicted, pred - gold, FP, f"#{i} predicted ({n_fp} FP, {n_fn} FN)"),
        render_dict(eg.reference, gold - pred, FN, f"#{i} gold"),
    ]


def colors(parsed: List[Dict[str, Any]]) -> Dict[str, str]:
    """Colours for every error label that occurs."""
    labels = {ent["label"] for doc in parsed for ent in doc["ents"]}
    return {label: ERROR_COLORS[label.split()[-1]] for label in labels if label.split()[-1] in ERROR_COLORS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Pipeline directory")
    parser.add_argument("data", type=Path, help="Gold .spacy file")
    parser.add_argument("output", type=Path, help="HTML file to write")
    parser.add_argument("--limit", "-n", type=int, default=25, help="Number of docs")
    parser.add_argument("--gpu-id", "-g", type=int, default=-1, help="GPU id, -1 for CPU")
    args = parser.parse_args()

    nlp = load_nlp(args.model, args.gpu_id)
    golds = read_gold(args.data, nlp.vocab)[: args.limit]
    examples = predict(nlp, golds)
    parsed = [d for i, eg in enumerate(examples) for d in example_dicts(i, eg)]
    html = displacy.render(parsed, style="ent", manual=True, page=True, options={"colors": colors(parsed)})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(html, encoding="utf8")
    print(f"Wrote {len(examples)} docs to {args.output}")


if __name__ == "__main__":
    main()
