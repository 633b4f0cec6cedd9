"""direct_tagger: a fine-tuned token classifier's tags (UPOS, Penn Treebank, UD features, any
tag set) on every token: `token.pos_`, `token.tag_` or `token.morph`.

On the shared core (base.py), it adds how a tag is read per token (its first piece's
argmax, as fine-tuning labels it; `aggregation` as in direct_ner) and which attribute
it goes to (`attribute`: null picks `pos` when every label is a UPOS tag, `morph` when
every label is in UD's `Feat=Val|Feat=Val` form, else `tag`).

Every token gets a value: whitespace tokens get spaCy's own (`SPACE`, `_SP`), and a
token the tokenizer drops entirely (no piece: a lone zero-width or control character),
which the model never sees, gets UPOS `X` ("other"), tag `XX` (OntoNotes' "unknown")
or no features.
"""
import dataclasses
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from spacy import registry
from spacy.attrs import IS_SPACE
from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.scorer import Scorer
from spacy.tokens import Doc

from .alignment import AGGREGATIONS, aggregate
from .base import DirectPipe
from .errors import DirectUseError, Errors
from .labels import check_not_placeholders
from .route import Route
from .settings import ClassifierSettings, choice, flag, optional, setting

ATTRIBUTES = ("pos", "tag", "morph")
UPOS = frozenset(tag for tag in UPOS_IDS if tag and tag.isupper() and tag != "EOL")
_FEATURES = re.compile(r"^(_|[A-Za-z][\w\[\]]*=[\w,]+(\|[A-Za-z][\w\[\]]*=[\w,]+)*)$")
WHITESPACE_VALUE = {"pos": "SPACE", "tag": "_SP", "morph": ""}
UNREAD_VALUE = {"pos": "X", "tag": "XX", "morph": ""}


@dataclasses.dataclass(frozen=True)
class TaggerSettings(ClassifierSettings):
    attribute: Optional[str] = setting(None, optional(choice(*ATTRIBUTES)))
    pack_windows: bool = setting(True, flag)
    aggregation: str = setting("first", choice(*AGGREGATIONS))
    overwrite: bool = setting(True, flag)


@registry.scorers("spacy_direct_use.tagger_scorer.v1")
def make_tagger_scorer() -> Callable:
    """spaCy's token-attribute accuracy for the attribute direct_tagger writes: `pos_acc`,
    `tag_acc`, or `morph_acc` with `morph_per_feat` (as spaCy's tagger and
    morphologizer scorers report them)."""
    return score_tags


def score_tags(examples, *, attribute: str = "tag", **kwargs) -> Dict[str, Any]:
    if attribute == "morph":
        return {
            **Scorer.score_token_attr(examples, "morph", **kwargs),
            **Scorer.score_token_attr_per_feat(examples, "morph", **kwargs),
        }
    return Scorer.score_token_attr(examples, attribute, **kwargs)


def attribute_for(labels: Sequence[str]) -> str:
    """Where a tag set goes when `attribute` is null."""
    if labels and all(label in UPOS for label in labels):
        return "pos"
    if labels and all(_FEATURES.match(label) for label in labels) and any("=" in label for label in labels):
        return "morph"
    return "tag"


class TokenTags(Route):
    """A token classifier's tag for each token: its first piece's argmax (or `aggregation`)."""

    def check_labels(self, labels: List[str], name: str) -> None:
        """Placeholder names (LABEL_0 ...) are refused; `pos` takes UPOS tags only."""
        check_not_placeholders(labels, name)
        mapped = self.pipe.mapped_labels(labels)
        if self.pipe.settings.attribute == "pos" and not set(mapped) <= UPOS:
            other = sorted(set(mapped) - UPOS)
            raise DirectUseError(Errors.E029.format(name=name, labels=other[:8], upos=sorted(UPOS)))

    @property
    def labels(self) -> Tuple[str, ...]:
        """The tags written, after `label_map`, in the model's order."""
        return tuple(self.pipe.mapped_labels())

    def predict(self, docs: List[Doc], settings: TaggerSettings) -> List[np.ndarray]:
        """Each Doc's label id per token: -1 for whitespace tokens, -2 for tokens with no piece."""
        alignments, doc_probs = self.pipe.piece_probs(docs)
        clock = time.perf_counter()
        predictions = []
        for doc, alignment, probs in zip(docs, alignments, doc_probs):
            spaces = doc.to_array([IS_SPACE]).reshape(-1).astype(bool)
            ids = np.where(spaces, -1, -2).astype(np.int64)
            if len(alignment.tokens):
                ids[alignment.tokens] = aggregate(probs, alignment, settings.aggregation).argmax(axis=1)
            predictions.append(ids)
        self.pipe._tick("decode", clock)
        return predictions


class DirectTagger(DirectPipe):
    """Writes a pretrained token classifier's tags to every token."""

    FACTORY = "direct_tagger"
    SETTINGS = TaggerSettings
    ROUTES = (TokenTags,)

    @property
    def attribute(self) -> Optional[str]:
        """The token attribute written: the setting, else what the labels say (known once
        the labels are: a local checkpoint, `id2label`, a loaded or saved model)."""
        if self.settings.attribute:
            return self.settings.attribute
        return attribute_for(self.mapped_labels()) if self.model_labels else None

    def score(self, examples, **kwargs) -> Dict[str, Any]:
        self._ensure_loaded()
        return super().score(examples, **{"attribute": self.attribute, **kwargs})

    def set_annotations(self, docs: List[Doc], predictions: List[np.ndarray]) -> List[Doc]:
        """Set the attribute on every token (on tokens that have none, unless `overwrite`)."""
        clock = time.perf_counter()
        attribute = self.attribute
        values = {-1: WHITESPACE_VALUE[attribute], -2: UNREAD_VALUE[attribute], **dict(enumerate(self.mapped_labels()))}
        for doc, ids in zip(docs, predictions):
            for token, label_id in zip(doc, ids.tolist()):
                if self.settings.overwrite or not _has_value(token, attribute):
                    _set_value(token, attribute, values[label_id])
        self._tick("annotate", clock)
        return docs


def _has_value(token, attribute: str) -> bool:
    return bool(str(token.morph)) if attribute == "morph" else bool(getattr(token, attribute))


def _set_value(token, attribute: str, value: str) -> None:
    if attribute == "morph":
        token.set_morph(value or None)
    else:
        setattr(token, attribute + "_", value)
