"""Every direct_* factory in one place (as spaCy 3.8's pipeline/factories.py): each takes a
fine-tuned Hugging Face checkpoint and needs no training step. Registered with spaCy
through the `spacy_factories` entry points in setup.cfg.

Each factory spells out its settings, shared ones included, because spaCy fills and
validates a component's config from its factory's typed signature (a `**kwargs`
factory would accept any typo); the bodies are one `_build` call."""
from typing import Any, Callable, Dict, List, Optional, Type

from spacy.language import Language

from .base import DirectPipe
from .errors import speaking_for
from .ner import DEFAULT_CONFIG as NER_CONFIG
from .ner import DirectNER, EntsFilter
from .relations import DEFAULT_CONFIG as REL_CONFIG
from .relations import SCORE_WEIGHTS as REL_SCORE_WEIGHTS
from .relations import DirectRel
from .tagger import DEFAULT_CONFIG as TAGGER_CONFIG
from .tagger import DirectTagger
from .textcat import DEFAULT_CONFIG as TEXTCAT_CONFIG
from .textcat import DirectTextCat
from .vectors import DEFAULT_CONFIG as VECTORS_CONFIG
from .vectors import DirectVectors

LabelsSetting = Optional[Any]
"""`labels`: a list, or label -> description; typed loosely so that zeroshot.label_texts checks
it and says what is wrong (E061), where spaCy's validation would dump the whole config."""

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


def _build(cls: Type[DirectPipe], settings: Dict[str, Any]) -> DirectPipe:
    """The component from its factory's arguments (the factory's `locals()`, which spaCy
    has filled and validated from the config). Nothing is read from disk here: spacy.load
    builds the component from its config before from_disk gives it the saved model, so the
    model path is checked when the model loads (first use, or nlp.initialize())."""
    settings = dict(settings)
    nlp = settings.pop("nlp")
    with speaking_for(cls.factory_name()):  # the component does not exist yet: its factory speaks
        return cls(nlp.vocab, **settings)


@Language.factory(
    "direct_ner",
    default_config=NER_CONFIG,
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_direct_ner(
    nlp: Language,
    name: str,
    model: Optional[str],
    revision: Optional[str],
    tokenizer: Optional[str],
    id2label: Optional[List[str]],
    tag_scheme: str,
    forward_batch_size: int,
    forward_batch_tokens: Optional[int],
    pack_windows: bool,
    window_size: int,
    window_overlap: int,
    window_mode: str,
    max_sentences_per_window: int,
    aggregation: str,
    alignment_mode: str,
    label_map: Dict[str, Optional[str]],
    overwrite_ents: bool,
    ents_filter: EntsFilter,
    spans_key: Optional[str],
    doc_consistency: bool,
    doc_consistency_keep: float,
    threshold: Optional[float],
    labels: LabelsSetting,
    flat_ner: bool,
    device: Optional[str],
    precision: str,
    engine: str,
    trust_remote_code: bool,
    check_head: bool,
    onnx_file: Optional[str],
    scorer: Optional[Callable],
) -> DirectNER:
    """Write a fine-tuned Hugging Face token classifier's entities to doc.ents, or a GLiNER
    checkpoint's entities of the types named in `labels`."""
    return _build(DirectNER, locals())


@Language.factory(
    "direct_textcat",
    default_config=TEXTCAT_CONFIG,
    assigns=["doc.cats", "doc.spans"],
    default_score_weights=CATS_SCORE_WEIGHTS,
)
def make_direct_textcat(
    nlp: Language,
    name: str,
    model: Optional[str],
    revision: Optional[str],
    tokenizer: Optional[str],
    id2label: Optional[List[str]],
    multi_label: Optional[bool],
    labels: LabelsSetting,
    hypothesis_template: str,
    pooling: Optional[str],
    normalize: Optional[bool],
    forward_batch_size: int,
    forward_batch_tokens: Optional[int],
    window_size: int,
    window_overlap: int,
    window_mode: str,
    max_sentences_per_window: int,
    label_map: Dict[str, Optional[str]],
    spans_key: Optional[str],
    threshold: float,
    device: Optional[str],
    precision: str,
    engine: str,
    trust_remote_code: bool,
    check_head: bool,
    onnx_file: Optional[str],
    scorer: Optional[Callable],
) -> DirectTextCat:
    """Run a fine-tuned Hugging Face sequence classifier and write its label probabilities to doc.cats."""
    return _build(DirectTextCat, locals())


@Language.factory(
    "direct_tagger",
    default_config=TAGGER_CONFIG,
    assigns=["token.pos", "token.tag", "token.morph"],
    default_score_weights={"pos_acc": 1.0, "tag_acc": None, "morph_acc": None, "morph_per_feat": None},
)
def make_direct_tagger(
    nlp: Language,
    name: str,
    model: Optional[str],
    revision: Optional[str],
    tokenizer: Optional[str],
    id2label: Optional[List[str]],
    attribute: Optional[str],
    forward_batch_size: int,
    forward_batch_tokens: Optional[int],
    pack_windows: bool,
    window_size: int,
    window_overlap: int,
    window_mode: str,
    max_sentences_per_window: int,
    aggregation: str,
    label_map: Dict[str, Optional[str]],
    overwrite: bool,
    device: Optional[str],
    precision: str,
    engine: str,
    trust_remote_code: bool,
    check_head: bool,
    onnx_file: Optional[str],
    scorer: Optional[Callable],
) -> DirectTagger:
    """Run a fine-tuned Hugging Face token classifier and write its tags to token.pos_, .tag_ or .morph."""
    return _build(DirectTagger, locals())


@Language.factory(
    "direct_vectors",
    default_config=VECTORS_CONFIG,
    assigns=["doc.user_data", "doc.user_hooks"],
    default_score_weights={},
)
def make_direct_vectors(
    nlp: Language,
    name: str,
    model: Optional[str],
    revision: Optional[str],
    tokenizer: Optional[str],
    pooling: Optional[str],
    normalize: Optional[bool],
    token_vectors: bool,
    forward_batch_size: int,
    forward_batch_tokens: Optional[int],
    window_size: int,
    window_overlap: int,
    window_mode: str,
    max_sentences_per_window: int,
    device: Optional[str],
    precision: str,
    engine: str,
    trust_remote_code: bool,
    onnx_file: Optional[str],
    scorer: Optional[Callable],
) -> DirectVectors:
    """Run a sentence-embedding checkpoint (sentence-transformers layout, or any encoder with
    `pooling`) and write its vector of each Doc to doc.vector (and its tokens' to token.vector)."""
    return _build(DirectVectors, locals())


@Language.factory(
    "direct_rel",
    default_config=REL_CONFIG,
    assigns=["doc._.rel"],
    requires=["doc.ents"],
    default_score_weights=REL_SCORE_WEIGHTS,
)
def make_direct_rel(
    nlp: Language,
    name: str,
    model: Optional[str],
    revision: Optional[str],
    labels: LabelsSetting,
    threshold: float,
    top_k: int,
    forward_batch_size: int,
    forward_batch_tokens: Optional[int],
    max_sentences_per_window: int,
    device: Optional[str],
    scorer: Optional[Callable],
) -> DirectRel:
    """Write a GLiREL checkpoint's relations between the Doc's entities (doc.ents) to doc._.rel,
    of the relation types named in `labels` (a list, or label -> allowed head/tail entity types)."""
    return _build(DirectRel, locals())
