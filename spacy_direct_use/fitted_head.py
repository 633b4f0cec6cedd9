"""Categories fitted from a few labelled texts on frozen sentence embeddings (direct_textcat's
embedding route, `nlp.initialize(get_examples)`): the encoder is untouched, a linear head
is fitted on the embeddings direct_vectors writes (EmbeddingRunner.combine).

The head is scikit-learn's LogisticRegression (L2, lbfgs): convex, so the same examples
always give the same head, fitted in milliseconds, with probabilities spaCy's scorers
read; at prediction it is a matrix product here in numpy (a saved pipeline needs no
scikit-learn to run).

- Exclusive labels: one multinomial regression; doc.cats is its softmax.
- Multi-label: one binary regression per label; each label's threshold is chosen from
  the examples (THRESHOLD_FOLDS-fold cross-validated probabilities, the cut that maximizes
  the label's F1 there; 0.5 where a label has too few positives or negatives to cross-validate)
  and folded into the label's intercept, so doc.cats[label] >= 0.5 exactly where the
  probability passes the chosen threshold (spaCy's multi-label scorer counts 0.5).
- Names and examples together (`labels` given too): each label's own embedding (its
  name, or its description) joins the examples as one more example of that label,
  weighted NAME_WEIGHT; the zero-shot route's knowledge is where the head starts from
  and the examples move it (scripts/fewshot_benchmark.py measured the rule; see
  docs/components/textcat.md#a-few-examples-fitted-categories).

C (inverse regularisation) and NAME_WEIGHT were chosen on AG News dev and SST-2 (GLUE dev)
by `scripts/fewshot_benchmark.py choose`.
"""
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .errors import DirectUseError, Errors

FORMAT = "spacy-direct-use fitted head"
FORMAT_VERSION = 1
SAVED_FILE = "fitted_head.json"
"""Where direct_textcat saves the head, under model/ (covered by the manifest)."""
C = 1.0
"""LogisticRegression's inverse L2 strength (scikit-learn's default), chosen on AG News and
SST-2 dev (docs/how-it-works.md, "Constants chosen on dev data")."""
NAME_WEIGHT = 8.0
"""The weight of a label's own embedding among its examples, where names are given too,
chosen on AG News dev (docs/how-it-works.md, "Constants chosen on dev data")."""
THRESHOLD_FOLDS = 4
MAX_ITER = 1000


def sklearn_logistic_regression():
    """scikit-learn's LogisticRegression, or E090 naming the extra that installs it."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise DirectUseError(Errors.E090) from None
    return LogisticRegression


@dataclass
class FittedHead:
    """A linear head over sentence embeddings: scores(vectors) -> (n, n_labels) probabilities."""

    labels: List[str]
    multi_label: bool
    coef: np.ndarray  # (n_labels, dim); a 2-label exclusive head stores both rows (softmax)
    intercept: np.ndarray  # (n_labels,)
    thresholds: List[float] = field(default_factory=list)  # multi-label: chosen per label (already in intercept)
    info: Dict[str, Any] = field(default_factory=dict)  # how it was fitted: examples per label, C, names

    def __post_init__(self) -> None:
        # one memory layout whether fitted or loaded, so that the same vectors give bit-identical scores
        self.coef = np.ascontiguousarray(self.coef, dtype=np.float64)
        self.intercept = np.ascontiguousarray(self.intercept, dtype=np.float64)

    # -- fitting ------------------------------------------------------------------------

    @classmethod
    def fit(
        cls, vectors: np.ndarray, targets: np.ndarray, labels: Sequence[str], multi_label: bool,
        name_vectors: Optional[np.ndarray] = None, c: float = C, name_weight: float = NAME_WEIGHT,
    ) -> "FittedHead":
        """Fit on `vectors` (n, dim) with `targets` (n, n_labels) of 0/1 (exclusive: one 1 per
        row); `name_vectors` (n_labels, dim): the labels' own embeddings, as extra examples."""
        LogisticRegression = sklearn_logistic_regression()
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        with threadpool_limits(limits=1):  # a few hundred rows: one BLAS thread is fastest, and steady on a busy machine
            return cls._fit(LogisticRegression, vectors, targets, labels, multi_label, name_vectors, c, name_weight)

    @classmethod
    def _fit(cls, LogisticRegression, vectors, targets, labels, multi_label, name_vectors, c, name_weight) -> "FittedHead":
        x, y, weights = training_set(vectors, targets, name_vectors, name_weight)
        info = {"examples_per_label": [int(n) for n in targets.sum(axis=0)], "C": c,
                "names": name_vectors is not None, "name_weight": name_weight if name_vectors is not None else 0.0}  # fmt: skip
        if not multi_label:
            model = LogisticRegression(C=c, max_iter=MAX_ITER).fit(x, y.argmax(axis=1), sample_weight=weights)
            coef, intercept = model.coef_, model.intercept_
            if coef.shape[0] == 1:  # binary: sklearn keeps one row, p(1) = sigmoid(w.x + b) = softmax([0, w.x + b])[1]
                coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
            return cls(list(labels), False, coef.astype(np.float64), intercept.astype(np.float64), [], info)
        coefs, intercepts, thresholds = [], [], []
        for k in range(len(labels)):
            model = LogisticRegression(C=c, max_iter=MAX_ITER).fit(x, y[:, k], sample_weight=weights)
            threshold = choose_threshold(LogisticRegression, x, y[:, k], weights, c)
            coefs.append(model.coef_[0])
            intercepts.append(model.intercept_[0] - logit(threshold))  # sigmoid(...) >= 0.5 <=> p >= threshold
            thresholds.append(threshold)
        return cls(list(labels), True, np.stack(coefs).astype(np.float64), np.array(intercepts, dtype=np.float64), thresholds, info)

    # -- predicting ---------------------------------------------------------------------

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Each vector's probabilities (n, n_labels): softmax (exclusive) or per-label sigmoid."""
        logits = np.asarray(vectors, dtype=np.float64) @ self.coef.T + self.intercept
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    # -- saving -------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "labels": self.labels, "multi_label": self.multi_label,
            "coef": self.coef.tolist(), "intercept": self.intercept.tolist(), "thresholds": self.thresholds, "info": self.info,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Dict[str, Any], where: str = "the fitted head") -> "FittedHead":
        try:
            if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"not a {FORMAT} of format_version {FORMAT_VERSION}")
            coef = np.asarray(data["coef"], dtype=np.float64)
            intercept = np.asarray(data["intercept"], dtype=np.float64)
            labels = [str(label) for label in data["labels"]]
            if coef.ndim != 2 or coef.shape[0] != len(labels) or intercept.shape != (len(labels),):
                raise ValueError(f"{len(labels)} labels, coef of shape {coef.shape}, intercept of shape {intercept.shape}")
            return cls(labels, bool(data["multi_label"]), coef, intercept, [float(t) for t in data.get("thresholds", [])], dict(data.get("info", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DirectUseError(Errors.E097.format(where=where, detail=str(err) or type(err).__name__)) from None

    def to_bytes(self) -> bytes:
        """JSON: Python writes each float64 so that it reads back exactly (identical cats)."""
        return json.dumps(self.to_dict()).encode("utf8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "the fitted head") -> "FittedHead":
        try:
            parsed = json.loads(data.decode("utf8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise DirectUseError(Errors.E097.format(where=where, detail=str(err))) from None
        return cls.from_dict(parsed if isinstance(parsed, dict) else {}, where)


def training_set(vectors: np.ndarray, targets: np.ndarray, name_vectors: Optional[np.ndarray], name_weight: float):
    """The examples, and each label's own embedding as one more example of it (weight
    `name_weight`) where names are given: (x, y, sample weights)."""
    x, y = np.asarray(vectors, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    weights = np.ones(len(x))
    if name_vectors is not None and name_weight > 0:
        names = np.asarray(name_vectors, dtype=np.float64)
        x, y = np.vstack([x, names]), np.vstack([y, np.eye(len(names))])
        weights = np.concatenate([weights, np.full(len(names), name_weight)])
    return x, y, weights


def choose_threshold(LogisticRegression, x: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float) -> float:
    """One label's threshold: the cut that maximizes its F1 on cross-validated probabilities
    (THRESHOLD_FOLDS folds, or fewer where the label has fewer positives or negatives);
    0.5 where either is under 2. Ties: the cut nearest 0.5."""
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    folds = min(THRESHOLD_FOLDS, positives, negatives)
    if folds < 2:
        return 0.5
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros(len(y))
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        model = LogisticRegression(C=c, max_iter=MAX_ITER).fit(x[train], y[train], sample_weight=weights[train])
        probs[held] = model.predict_proba(x[held])[:, 1]
    ordered = np.unique(probs)
    cuts = np.concatenate([[ordered[0] / 2], (ordered[:-1] + ordered[1:]) / 2, [(ordered[-1] + 1) / 2]]) if len(ordered) else np.array([0.5])
    best, best_f1 = 0.5, -1.0
    for cut in sorted(cuts, key=lambda t: abs(t - 0.5)):
        predicted = probs >= cut
        tp = float((predicted & (y == 1)).sum())
        f1 = 2 * tp / max(float(predicted.sum() + y.sum()), 1e-12)
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(cut), f1
    return float(np.clip(best, 1e-6, 1 - 1e-6))


def logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


def examples_with_cats(examples: Sequence[Any]) -> List[Any]:
    """The examples to fit from: all of them where any reference Doc carries cats (E091
    for one that does not), none where none does (nlp.initialize() with no examples
    passes spaCy's placeholder Example, which has none)."""
    examples = list(examples)
    if not any(example.reference.cats for example in examples):
        return []
    missing = [i for i, example in enumerate(examples) if not example.reference.cats]
    if missing:
        raise DirectUseError(Errors.E091.format(indices=missing[:10], n=len(missing), total=len(examples), text=_short(examples[missing[0]].reference.text)))
    return examples


def read_targets(examples: Sequence[Any], labels: Optional[Sequence[str]], multi_label: bool):
    """(targets (n, n_labels) of 0/1, labels): the categories are `labels` where given
    (in their order), else those the examples' cats name (in order of first appearance).
    A category is positive where its gold value is above 0.5."""
    named: List[str] = []
    for example in examples:
        named.extend(label for label in example.reference.cats if label not in named)
    if labels is not None:
        unknown = [label for label in named if label not in labels]
        if unknown:
            raise DirectUseError(Errors.E092.format(unknown=unknown, labels=list(labels)))
        named = list(labels)
    targets = np.array([[float(example.reference.cats.get(label, 0.0) > 0.5) for label in named] for example in examples])
    if not multi_label:
        counts = targets.sum(axis=1)
        bad = [i for i, count in enumerate(counts) if count != 1]
        if bad:
            i = bad[0]
            raise DirectUseError(Errors.E098.format(index=i, count=int(counts[i]), cats=dict(examples[i].reference.cats), text=_short(examples[i].reference.text)))
    positives = targets.sum(axis=0)
    without = [label for label, n in zip(named, positives) if n == 0]
    if not multi_label and len(named) - len(without) < 2:  # (multi-label: one label alone is a yes/no classifier)
        raise DirectUseError(Errors.E093.format(labels=[label for label, n in zip(named, positives) if n > 0] or named, n=len(examples)))
    if without:
        raise DirectUseError(Errors.E094.format(without=without, n=len(examples), n_labels=len(named)))
    always = [label for label, n in zip(named, positives) if n == len(examples)]
    if multi_label and always:
        raise DirectUseError(Errors.E093.format(labels=always, n=len(examples)))
    return targets, named


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
