"""direct_tagger: a token classifier's tags on every token (pos_, tag_ or morph), read from each
token's first piece as fine-tuning labels it; recipes next to a trained tagger."""
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed

from conftest import make_lookup_model, shared_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from recipes import TINY_TOK2VEC  # noqa: E402  (the tok2vec of examples/recipes.py's stand-in trained pipeline)
from spacy_direct_use import DirectNERError

TEXT = "Angela Merkel flew to Paris to meet the United Nations."
UPOS = ["NOUN", "PROPN", "VERB", "ADP", "DET", "PUNCT"]
UPOS_RULES = {"angela": "PROPN", "merkel": "PROPN", "paris": "PROPN", "flew": "VERB", "meet": "VERB",
              "to": "ADP", "the": "DET", ".": "PUNCT", "united": "PROPN", "nations": "PROPN"}  # fmt: skip
EXPECTED_POS = ["PROPN", "PROPN", "VERB", "ADP", "PROPN", "ADP", "VERB", "DET", "PROPN", "PROPN", "PUNCT"]
PTB = ["NN", "NNP", "VBD", "TO", "VB", "DT", "."]
PTB_RULES = {"angela": "NNP", "merkel": "NNP", "paris": "NNP", "flew": "VBD", "meet": "VB",
             "to": "TO", "the": "DT", ".": ".", "united": "NNP", "nations": "NNP"}  # fmt: skip
EXPECTED_TAG = ["NNP", "NNP", "VBD", "TO", "NNP", "TO", "VB", "DT", "NNP", "NNP", "."]
MORPH = ["_", "Number=Sing", "Tense=Past|VerbForm=Fin", "Definite=Def|PronType=Art"]
MORPH_RULES = {"angela": "Number=Sing", "flew": "Tense=Past|VerbForm=Fin", "the": "Definite=Def|PronType=Art"}


@pytest.fixture(scope="module")
def upos_dir(tmp_path_factory):
    return make_lookup_model(tmp_path_factory.mktemp("upos") / "model", UPOS_RULES, labels=UPOS, strength=4.0)


@pytest.fixture(scope="module")
def ptb_dir(tmp_path_factory):
    return make_lookup_model(tmp_path_factory.mktemp("ptb") / "model", PTB_RULES, labels=PTB, strength=4.0)


def tagger(path, nlp=None, **config):
    nlp = nlp or spacy.blank("en")
    nlp.add_pipe("direct_tagger", config={"model": str(path), **config})
    return nlp


def test_upos_labels_go_to_pos(upos_dir):
    nlp = tagger(upos_dir)
    assert nlp.get_pipe("direct_tagger").attribute == "pos"  # from the local config, before loading
    doc = nlp(TEXT)
    assert [t.pos_ for t in doc] == EXPECTED_POS
    assert all(not t.tag_ for t in doc)  # nothing else is written


def test_ptb_labels_go_to_tag(ptb_dir):
    doc = tagger(ptb_dir)(TEXT)
    assert [t.tag_ for t in doc] == EXPECTED_TAG and all(not t.pos_ for t in doc)


def test_morph_labels_go_to_morph(tmp_path):
    model = make_lookup_model(tmp_path / "m", MORPH_RULES, labels=MORPH, strength=4.0)
    nlp = tagger(model)
    assert nlp.get_pipe("direct_tagger").attribute == "morph"
    doc = nlp("Angela flew to the city")
    assert [str(t.morph) for t in doc] == ["Number=Sing", "Tense=Past|VerbForm=Fin", "", "Definite=Def|PronType=Art", ""]


def test_a_label_set_that_is_neither_goes_to_tag(tmp_path):
    model = make_lookup_model(tmp_path / "m", {"paris": "city"}, labels=["other", "city"], strength=4.0)
    nlp = tagger(model)
    assert nlp.get_pipe("direct_tagger").attribute == "tag"
    assert [t.tag_ for t in nlp("Paris is big")] == ["city", "other", "other"]


def test_pos_for_labels_that_are_not_upos_is_refused(ptb_dir):
    with pytest.raises(DirectNERError, match=r"^\[direct_tagger E029\].*\"attribute\": \"tag\".*label_map"):
        tagger(ptb_dir, attribute="pos")(TEXT)
    mapped = {"NN": "NOUN", "NNP": "PROPN", "VBD": "VERB", "TO": "PART", "VB": "VERB", "DT": "DET", ".": "PUNCT"}
    doc = tagger(ptb_dir, attribute="pos", label_map=mapped)(TEXT)
    assert [t.pos_ for t in doc][:4] == ["PROPN", "PROPN", "VERB", "PART"]


def test_placeholder_labels_are_refused_and_id2label_names_them(tmp_path):
    model = make_lookup_model(tmp_path / "m", {"paris": "LABEL_1"}, labels=["LABEL_0", "LABEL_1"], strength=4.0)
    with pytest.raises(DirectNERError, match=r"^\[direct_tagger E019\].*\"id2label\": \[\"ADJ\", \"ADP\""):
        tagger(model)("Paris")
    assert [t.tag_ for t in tagger(model, id2label=["other", "city"])("Paris is")] == ["city", "other"]


def test_every_token_gets_a_tag(upos_dir):
    """Whitespace tokens get spaCy's SPACE; a token the tokenizer drops (a lone zero-width
    space, which the model never sees) gets UPOS X."""
    nlp = tagger(upos_dir)
    doc = nlp(Doc(nlp.vocab, words=["Paris", "\n\n", "\u200b", "to", "Angela"], spaces=[False, False, True, True, False]))
    assert [t.pos_ for t in doc] == ["PROPN", "SPACE", "X", "ADP", "PROPN"]
    assert all(t.pos_ for t in nlp("  Angela \t\n flew  to Paris ..  ")), "no token left untagged"


def test_a_long_doc_is_tagged_to_its_last_token(upos_dir):
    nlp = tagger(upos_dir)
    text = " ".join([TEXT] * 40)  # far past the model's 64 positions
    doc = nlp(text)
    assert [t.pos_ for t in doc] == EXPECTED_POS * 40


def test_overwrite_false_fills_only_untagged_tokens(upos_dir):
    nlp = tagger(upos_dir, overwrite=False)
    doc = nlp.make_doc(TEXT)
    doc[0].pos_ = "NOUN"
    assert [t.pos_ for t in nlp.get_pipe("direct_tagger")(doc)] == ["NOUN"] + EXPECTED_POS[1:]


def test_spacys_tagger_scores(upos_dir, ptb_dir):
    nlp = tagger(upos_dir)
    gold = Doc(nlp.vocab, words=[t.text for t in nlp.make_doc(TEXT)], pos=EXPECTED_POS[:-1] + ["NOUN"])
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), gold)])
    assert scores["pos_acc"] == pytest.approx(10 / 11)
    ptb = tagger(ptb_dir)
    gold = Doc(ptb.vocab, words=[t.text for t in ptb.make_doc(TEXT)], tags=EXPECTED_TAG)
    assert ptb.evaluate([Example(ptb.make_doc(TEXT), gold)])["tag_acc"] == 1.0


def test_save_and_load(upos_dir, tmp_path):
    nlp = tagger(upos_dir)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert [t.pos_ for t in loaded(TEXT)] == EXPECTED_POS


def test_a_sequence_classifier_is_refused(tmp_path):
    from conftest import make_sequence_classifier

    model = make_sequence_classifier(tmp_path / "seq", ["NEG", "POS"])
    with pytest.raises(DirectNERError, match=r"^\[direct_tagger E004\].*not a token classifier.*vblagoje/bert-english-uncased-finetuned-pos.*direct_textcat"):
        tagger(model)("text")


def test_a_missing_directory_is_named_by_direct_tagger_with_a_pos_example(tmp_path):
    with pytest.raises(DirectNERError, match=r"^\[direct_tagger E002\] .*'vblagoje/bert-english-uncased-finetuned-pos'") as info:
        tagger(tmp_path / "no-such-model")("text")
    assert "dslim/bert-base-NER" not in str(info.value) and "direct_ner" not in str(info.value)
    with pytest.raises(DirectNERError, match=r"(?s)^\[direct_tagger E001\].*add_pipe\(\"direct_tagger\".*finetuned-pos"):
        spacy.blank("en").add_pipe("direct_tagger")


# -- recipes with a trained tagger (standing in for en_core_web_sm's) ----------------------------

TAG_MAP = {"NNP": "PROPN", "VBD": "VERB", "TO": "PART", "VB": "VERB", "DT": "DET", "NNS": "NOUN", ".": "PUNCT"}
TRAIN = [("Angela flew to Paris .", ["NNP", "VBD", "TO", "NNP", "."]), ("Jane met the nations .", ["NNP", "VBD", "DT", "NNS", "."])]


@pytest.fixture(scope="module")
def trained_tagger(tmp_path_factory) -> Path:
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec", config={"model": TINY_TOK2VEC})
    nlp.add_pipe("tagger")
    ruler = nlp.add_pipe("attribute_ruler")  # maps tag -> pos, as in en_core_web_sm
    examples = [Example.from_dict(nlp.make_doc(text), {"tags": tags}) for text, tags in TRAIN]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    for tag, pos in TAG_MAP.items():  # after initialize, which clears the ruler's patterns
        ruler.add([[{"TAG": tag}]], {"POS": pos})
    path = tmp_path_factory.mktemp("trained") / "pipeline"
    nlp.to_disk(path)
    return path


def test_replace_a_trained_tagger(trained_tagger, ptb_dir):
    nlp = spacy.load(trained_tagger)
    nlp.replace_pipe("tagger", "direct_tagger", config={"model": str(ptb_dir)})
    doc = nlp(TEXT)
    assert [t.tag_ for t in doc] == EXPECTED_TAG
    assert [t.pos_ for t in doc][:3] == ["PROPN", "PROPN", "VERB"]  # the attribute_ruler maps the new tags


@pytest.mark.parametrize("where", ["before", "after"])
def test_pos_beside_a_tagger_and_its_attribute_ruler(trained_tagger, upos_dir, where):
    """After the attribute_ruler, direct_tagger's pos_ stand; before it, the ruler's tag map
    overwrites them (as it overwrites any pos_ set before it)."""
    nlp = spacy.load(trained_tagger)
    nlp.add_pipe("direct_tagger", **{where: "attribute_ruler"}, config={"model": str(upos_dir)})
    doc = nlp(TEXT)
    tags = [t.tag_ for t in doc]
    ruler_pos = [TAG_MAP.get(tag, ours) for tag, ours in zip(tags, EXPECTED_POS)]  # the ruler maps the tags it knows
    assert all(tags)  # the trained tagger's tag_ are kept either way
    assert [t.pos_ for t in doc] == (EXPECTED_POS if where == "after" else ruler_pos)


# -- the real stand-in (../shared/models/minilm-ud-upos) -------------------------------------------


@pytest.mark.slow
def test_real_upos_model_on_ewt_test():
    model, data = shared_path("SPACY_DIRECT_USE_TEST_UPOS_MODEL"), shared_path("SPACY_DIRECT_USE_EWT_FILE")
    from spacy.training.converters import conllu_to_docs

    nlp = tagger(model)
    golds = list(conllu_to_docs(Path(data).read_text(encoding="utf-8"), n_sents=1, no_print=True))
    examples = [Example(Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g]), g) for g in golds]
    scores = nlp.evaluate(examples)
    assert scores["pos_acc"] >= 0.9481  # the model's own first-piece argmax: 94.81 measured here
    assert all(t.pos_ for eg in examples for t in nlp(eg.predicted.copy()))
