"""Every direct_* factory in one place (as spaCy 3.8's pipeline/factories.py): each takes a
fine-tuned Hugging Face checkpoint and needs no training step. Registered with spaCy
through the `spacy_factories` entry points in setup.cfg.

A component's settings are declared once, in its SETTINGS dataclass (settings.py): the
factory's default_config and the signature spaCy validates the config with (a `**settings`
factory would otherwise accept any typo) are made from those fields, and the factory hands
them to the component by name. Nothing is read from disk here: spacy.load builds the
component from its config before from_disk gives it the saved model, so the model path is
checked when the model loads (first use, or nlp.initialize())."""
import inspect
from typing import Any, Callable, Dict, Optional, Type

from spacy.language import Language

from .base import DirectPipe
from .errors import speaking_for
from .ner import DirectNER, EntsFilter
from .relations import SCORE_WEIGHTS as REL_SCORE_WEIGHTS
from .relations import DirectRel
from .tagger import DirectTagger
from .textcat import DirectTextCat
from .vectors import DirectVectors

CATS_SCORE_WEIGHTS = {
    "cats_score": 1.0,
    "cats_score_desc": None,
    "cats_micro_p": None,
    "cats_micro_r": None,
    "cats_micro_f": None,
    "cats_macro_p": None,
    "cats_macro_r": None,
    "cats_macro_f": None,
    "cats_macro_auc": None,
    "cats_f_per_type": None,
}  # spaCy's textcat's



def _config(cls: Type[DirectPipe], **extra: Any) -> Dict[str, Any]:
    """The factory's default_config: the model, every setting's default, then `extra` (registered functions)."""
    return {"model": None, **cls.SETTINGS.defaults(), **extra}


def _signature(cls: Type[DirectPipe], **extra: Any) -> Callable[[Callable], Callable]:
    """Give the factory the signature spaCy validates its config with: nlp, name, model,
    `extra` (name -> type), every setting of cls.SETTINGS with its type, and scorer."""

    def sign(factory: Callable) -> Callable:
        keyword = inspect.Parameter.KEYWORD_ONLY
        leading = [inspect.Parameter("nlp", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Language),
                   inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
                   inspect.Parameter("model", keyword, annotation=Optional[str])]  # fmt: skip
        own = [inspect.Parameter(key, keyword, annotation=kind) for key, kind in extra.items()]
        scorer = inspect.Parameter("scorer", keyword, annotation=Optional[Callable])
        factory.__signature__ = inspect.Signature(leading + own + cls.SETTINGS.parameters() + [scorer], return_annotation=cls)  # type: ignore[attr-defined]
        return factory

    return sign


@Language.factory(
    "direct_ner",
    default_config=_config(DirectNER, ents_filter={"@misc": "spacy.prioritize_existing_ents_filter.v1"}, scorer={"@scorers": "spacy.ner_scorer.v1"}),
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
@_signature(DirectNER, ents_filter=EntsFilter)
def make_direct_ner(nlp: Language, name: str, *, model: Optional[str], ents_filter: EntsFilter, scorer: Optional[Callable], **settings: Any) -> DirectNER:
    """Write a fine-tuned Hugging Face token classifier's entities to doc.ents, or a GLiNER
    checkpoint's entities of the types named in `labels`."""
    with speaking_for(DirectNER.FACTORY):  # the component does not exist yet: its factory speaks
        return DirectNER(nlp.vocab, name, model=model, scorer=scorer, ents_filter=ents_filter, **settings)


@Language.factory(
    "direct_textcat",
    default_config=_config(DirectTextCat, scorer={"@scorers": "spacy_direct_use.textcat_scorer.v1"}),
    assigns=["doc.cats", "doc.spans"],
    default_score_weights=CATS_SCORE_WEIGHTS,
)
@_signature(DirectTextCat)
def make_direct_textcat(nlp: Language, name: str, *, model: Optional[str], scorer: Optional[Callable], **settings: Any) -> DirectTextCat:
    """Run a fine-tuned Hugging Face sequence classifier and write its label probabilities to
    doc.cats, or score `labels` of your choosing (an NLI checkpoint or a sentence encoder)."""
    with speaking_for(DirectTextCat.FACTORY):
        return DirectTextCat(nlp.vocab, name, model=model, scorer=scorer, **settings)


@Language.factory(
    "direct_tagger",
    default_config=_config(DirectTagger, scorer={"@scorers": "spacy_direct_use.tagger_scorer.v1"}),
    assigns=["token.pos", "token.tag", "token.morph"],
    default_score_weights={"pos_acc": 1.0, "tag_acc": None, "morph_acc": None, "morph_per_feat": None},
)
@_signature(DirectTagger)
def make_direct_tagger(nlp: Language, name: str, *, model: Optional[str], scorer: Optional[Callable], **settings: Any) -> DirectTagger:
    """Run a fine-tuned Hugging Face token classifier and write its tags to token.pos_, .tag_ or .morph."""
    with speaking_for(DirectTagger.FACTORY):
        return DirectTagger(nlp.vocab, name, model=model, scorer=scorer, **settings)


@Language.factory(
    "direct_vectors",
    default_config=_config(DirectVectors, scorer=None),
    assigns=["doc.user_data", "doc.user_hooks"],
    default_score_weights={},
)
@_signature(DirectVectors)
def make_direct_vectors(nlp: Language, name: str, *, model: Optional[str], scorer: Optional[Callable], **settings: Any) -> DirectVectors:
    """Run a sentence-embedding checkpoint (sentence-transformers layout, or any encoder with
    `pooling`) and write its vector of each Doc to doc.vector (and its tokens' to token.vector)."""
    with speaking_for(DirectVectors.FACTORY):
        return DirectVectors(nlp.vocab, name, model=model, scorer=scorer, **settings)


@Language.factory(
    "direct_rel",
    default_config=_config(DirectRel, scorer={"@scorers": "spacy_direct_use.relation_scorer.v1"}),
    assigns=["doc._.rel"],
    requires=["doc.ents"],
    default_score_weights=REL_SCORE_WEIGHTS,
)
@_signature(DirectRel)
def make_direct_rel(nlp: Language, name: str, *, model: Optional[str], scorer: Optional[Callable], **settings: Any) -> DirectRel:
    """Write a GLiREL checkpoint's relations between the Doc's entities (doc.ents) to doc._.rel,
    of the relation types named in `labels` (a list, or label -> allowed head/tail entity types)."""
    with speaking_for(DirectRel.FACTORY):
        return DirectRel(nlp.vocab, name, model=model, scorer=scorer, **settings)
