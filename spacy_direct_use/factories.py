"""Every direct_* factory in one place (as spaCy 3.8's pipeline/factories.py): each takes a
fine-tuned Hugging Face checkpoint and needs no training step. Registered with spaCy
through the `spacy_factories` entry points in setup.cfg."""
from typing import Callable, Dict, List, Optional

from spacy.language import Language

from .base import deserializing
from .loading import check_model_path
from .ner import DEFAULT_CONFIG as NER_CONFIG
from .ner import DirectNER, EntsFilter
from .tagger import DEFAULT_CONFIG as TAGGER_CONFIG
from .tagger import DirectTagger
from .textcat import DEFAULT_CONFIG as TEXTCAT_CONFIG
from .textcat import DirectTextCat

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


def _check_model(model: Optional[str]) -> None:
    """A local path that is wrong fails at add_pipe, not at the first document."""
    if model and not deserializing():
        check_model_path(model)


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
    label_map: Dict[str, Optional[str]],
    overwrite_ents: bool,
    ents_filter: EntsFilter,
    spans_key: Optional[str],
    threshold: float,
    device: Optional[str],
    precision: str,
    trust_remote_code: bool,
    check_head: bool,
    scorer: Optional[Callable],
) -> DirectNER:
    """Run a fine-tuned Hugging Face token classifier and write its entities to doc.ents."""
    _check_model(model)
    return DirectNER(
        nlp.vocab,
        name=name,
        model=model,
        revision=revision,
        tokenizer=tokenizer,
        id2label=id2label,
        tag_scheme=tag_scheme,
        forward_batch_size=forward_batch_size,
        forward_batch_tokens=forward_batch_tokens,
        pack_windows=pack_windows,
        window_size=window_size,
        window_overlap=window_overlap,
        window_mode=window_mode,
        max_sentences_per_window=max_sentences_per_window,
        aggregation=aggregation,
        label_map=label_map,
        overwrite_ents=overwrite_ents,
        ents_filter=ents_filter,
        spans_key=spans_key,
        threshold=threshold,
        device=device,
        precision=precision,
        trust_remote_code=trust_remote_code,
        check_head=check_head,
        scorer=scorer,
    )


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
    forward_batch_size: int,
    forward_batch_tokens: Optional[int],
    pack_windows: bool,
    window_size: int,
    window_overlap: int,
    window_mode: str,
    max_sentences_per_window: int,
    label_map: Dict[str, Optional[str]],
    spans_key: Optional[str],
    threshold: float,
    device: Optional[str],
    precision: str,
    trust_remote_code: bool,
    check_head: bool,
    scorer: Optional[Callable],
) -> DirectTextCat:
    """Run a fine-tuned Hugging Face sequence classifier and write its label probabilities to doc.cats."""
    _check_model(model)
    return DirectTextCat(
        nlp.vocab,
        name=name,
        model=model,
        revision=revision,
        tokenizer=tokenizer,
        id2label=id2label,
        multi_label=multi_label,
        forward_batch_size=forward_batch_size,
        forward_batch_tokens=forward_batch_tokens,
        pack_windows=pack_windows,
        window_size=window_size,
        window_overlap=window_overlap,
        window_mode=window_mode,
        max_sentences_per_window=max_sentences_per_window,
        label_map=label_map,
        spans_key=spans_key,
        threshold=threshold,
        device=device,
        precision=precision,
        trust_remote_code=trust_remote_code,
        check_head=check_head,
        scorer=scorer,
    )


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
    threshold: float,
    device: Optional[str],
    precision: str,
    trust_remote_code: bool,
    check_head: bool,
    scorer: Optional[Callable],
) -> DirectTagger:
    """Run a fine-tuned Hugging Face token classifier and write its tags to token.pos_, .tag_ or .morph."""
    _check_model(model)
    return DirectTagger(
        nlp.vocab,
        name=name,
        model=model,
        revision=revision,
        tokenizer=tokenizer,
        id2label=id2label,
        attribute=attribute,
        forward_batch_size=forward_batch_size,
        forward_batch_tokens=forward_batch_tokens,
        pack_windows=pack_windows,
        window_size=window_size,
        window_overlap=window_overlap,
        window_mode=window_mode,
        max_sentences_per_window=max_sentences_per_window,
        aggregation=aggregation,
        label_map=label_map,
        overwrite=overwrite,
        threshold=threshold,
        device=device,
        precision=precision,
        trust_remote_code=trust_remote_code,
        check_head=check_head,
        scorer=scorer,
    )
