"""Zero-shot categories: labels chosen at run time, no training, for direct_textcat.

Two routes, decided by the checkpoint:
- NLI (a sequence classifier with an entailment label, e.g. facebook/bart-large-mnli):
  each (window, label) pair is read as premise and hypothesis
  (`hypothesis_template.format(label)`), exactly as transformers'
  `zero-shot-classification` pipeline reads it, and scored as it scores it:
  exclusive labels: a softmax over the labels' entailment logits; `multi_label` (or a
  single label, as the pipeline does): per label, a softmax over its contradiction
  and entailment logits (the contradiction column is the pipeline's: 0, or the
  last when entailment is 0). The pairs of a whole batch of Docs run together,
  length-sorted (inference.length_batches).
- Sentence embedding (a sentence-transformers checkpoint, or any encoder): the
  cosine of the text's embedding to each label's (the label, or its description
  where `labels` maps one), label embeddings computed once per label set.
  Exclusive: softmax(SIMILARITY_SCALE * cosine); `multi_label`: the cosine, clipped
  at 0.
"""
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DirectUseError, Errors

Labels = Union[Sequence[str], Mapping[str, str]]

SIMILARITY_SCALE = 20.0
"""Cosine -> exclusive label distribution: softmax(20 * cos), the scale of
sentence-transformers' MultipleNegativesRankingLoss (its default), with which
all-MiniLM-L6-v2 and most sentence-transformers checkpoints were trained to rank a
text's match above others; the argmax (and accuracy) is that of the cosine."""


def label_texts(labels: Optional[Labels]) -> Optional[Dict[str, str]]:
    """label -> the text read for it (its description, or the label itself); E061 on
    empty, duplicate or non-string labels. None where no labels are given."""
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, (Mapping, Sequence)):
        raise DirectUseError(Errors.E061.format(labels=labels, detail="not a list of labels or a mapping of label to description"))
    pairs = list(labels.items()) if isinstance(labels, Mapping) else [(label, label) for label in labels]
    texts = [name for name, _ in pairs] + ([text for _, text in pairs] if isinstance(labels, Mapping) else [])
    bad = list(dict.fromkeys(repr(x) for x in texts if not isinstance(x, str) or not x.strip()))
    if bad:
        raise DirectUseError(Errors.E061.format(labels=labels, detail=f"{', '.join(bad)} {'is not a non-empty string' if len(bad) == 1 else 'are not non-empty strings'}"))
    repeated = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
    if repeated:
        raise DirectUseError(Errors.E061.format(labels=labels, detail=f"{repeated} given more than once"))
    return dict(pairs)


def check_template(template: str) -> str:
    """A hypothesis template with exactly one '{}' (E062 otherwise)."""
    if not isinstance(template, str) or template.count("{}") != 1:
        raise DirectUseError(Errors.E062.format(template=template))
    return template


def entailment_id(model_labels: Sequence[str]) -> Optional[int]:
    """The first label starting with "entail" (any case), as transformers' pipeline finds it."""
    return next((i for i, label in enumerate(model_labels) if str(label).lower().startswith("entail")), None)


@dataclass
class PairTemplate:
    """Where a tokenizer puts special tokens and token types around a sentence pair."""

    prefix: np.ndarray
    middle: np.ndarray
    suffix: np.ndarray
    types: Tuple[int, int, int, int, int]  # of prefix, first text, middle, second text, suffix
    with_types: bool  # whether the model takes token_type_ids (the tokenizer returns them)

    @classmethod
    def of(cls, tokenizer) -> "PairTemplate":
        encoding = tokenizer.backend_tokenizer.encode("x", "y", add_special_tokens=True)
        ids, special, types = np.array(encoding.ids), np.array(encoding.special_tokens_mask), encoding.type_ids
        first, second = [int(i) for i in np.flatnonzero(special == 0)[[0, -1]]]
        end_first = first + int(np.argmax(special[first:] == 1))
        start_second = second - int(np.argmax(special[second::-1] == 1)) + 1
        return cls(
            ids[:first], ids[end_first:start_second], ids[second + 1 :],
            (types[0] if first else 0, types[first], types[end_first] if start_second > end_first else 0, types[second], types[-1]),
            "token_type_ids" in getattr(tokenizer, "model_input_names", ()),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def join(self, premise: np.ndarray, hypothesis: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The pair's ids and token_type_ids."""
        parts = (self.prefix, premise, self.middle, hypothesis, self.suffix)
        ids = np.concatenate(parts).astype(np.int64)
        types = np.concatenate([np.full(len(part), t, dtype=np.int64) for part, t in zip(parts, self.types)])
        return ids, types


def nli_scores(logits: np.ndarray, entail: int, multi_label: bool) -> np.ndarray:
    """Per label, from its pair's logits (n_labels, n_model_labels), as transformers'
    zero-shot pipeline computes them (a single label is read as multi-label there too)."""
    logits = logits.astype(np.float64)
    if multi_label or len(logits) == 1:
        contradiction = -1 if entail == 0 else 0
        pair = logits[:, [contradiction, entail]]
        pair = np.exp(pair - pair.max(axis=1, keepdims=True))
        return pair[:, 1] / pair.sum(axis=1)
    return softmax(logits[:, entail])


def similarity_scores(vector: np.ndarray, label_vectors: np.ndarray, multi_label: bool) -> np.ndarray:
    """Per label, from the cosine of the text's vector to the label's."""
    norms = np.linalg.norm(label_vectors, axis=1) * max(float(np.linalg.norm(vector)), 1e-12)
    cosine = (label_vectors @ vector) / np.clip(norms, 1e-12, None)
    return np.clip(cosine, 0.0, 1.0) if multi_label else softmax(SIMILARITY_SCALE * cosine)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def call_labels(configured: Optional[Dict[str, str]], given: Any) -> Optional[Dict[str, str]]:
    """This call's labels: those given per call (checked), else the configured ones."""
    return configured if given is None else label_texts(given)
