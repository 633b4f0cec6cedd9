"""Each checkpoint read in the tag scheme it was fine-tuned with (`tag_scheme`).

The lookup models below tag the words that the probe text (labels.PROBE_SENTENCES)
and the test sentences share, so "auto" reads their own predictions: an IOB1 model
starts each entity with I-, an IOB2 model with B-.
"""
import logging

import pytest
import spacy
from spacy.tokens import Doc

from conftest import BIO_LABELS, ents, make_lookup_model, make_nlp
from spacy_direct_use.ner import TokenEntities
from spacy_direct_use import DirectNERError
from spacy_direct_use.labels import LabelScheme, scheme_from_labels

TEXT = "Angela Merkel flew to Paris to meet the United Nations in New York on Monday."
IOB1_RULES = {  # CoNLL-2003's own tags: I- at every start
    "angela": "I-PER", "merkel": "I-PER", "berlin": "I-LOC", "rome": "I-LOC", "paris": "I-LOC",
    "london": "I-LOC", "madrid": "I-LOC", "new": "I-LOC", "york": "I-LOC", "monday": "I-ORG",
    "united": "I-ORG", "nations": "I-ORG",
}  # fmt: skip
IOB2_RULES = {  # the same entities, B- at every start
    "angela": "B-PER", "merkel": "I-PER", "berlin": "B-LOC", "rome": "B-LOC", "paris": "B-LOC",
    "london": "B-LOC", "madrid": "B-LOC", "new": "B-LOC", "york": "I-LOC", "monday": "B-ORG",
    "united": "B-ORG", "nations": "I-ORG",
}  # fmt: skip
EXPECTED = [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG"), ("New York", "LOC"), ("Monday", "ORG")]


@pytest.fixture(scope="module")
def iob1_dir(tmp_path_factory):
    return make_lookup_model(tmp_path_factory.mktemp("iob1") / "model", IOB1_RULES, strength=4.0)


@pytest.fixture(scope="module")
def iob2_dir(tmp_path_factory):
    return make_lookup_model(tmp_path_factory.mktemp("iob2") / "model", IOB2_RULES, strength=4.0)


def test_an_iob1_model_is_read_as_iob1(iob1_dir, caplog):
    with caplog.at_level(logging.INFO, logger="spacy_direct_use"):
        nlp = make_nlp(iob1_dir)
        doc = nlp(TEXT)
    assert nlp.get_pipe("direct_ner").tag_scheme == "iob1"
    assert ents(doc) == EXPECTED  # one-word entities kept: I- after O starts an entity
    assert "read as iob1" in caplog.text and "I- tags" in caplog.text


def test_an_iob2_model_is_never_switched(iob2_dir):
    nlp = make_nlp(iob2_dir)
    doc = nlp(TEXT)
    assert nlp.get_pipe("direct_ner").tag_scheme == "iob2"
    assert ents(doc) == EXPECTED
    assert ents(make_nlp(iob2_dir, tag_scheme="iob2")(TEXT)) == EXPECTED


def test_reading_an_iob1_model_as_iob2_loses_its_one_word_entities(iob1_dir):
    """What direct_ner did before tag_scheme, and what the override gives."""
    found = ents(make_nlp(iob1_dir, tag_scheme="iob2")(TEXT))
    assert ("Paris", "LOC") not in found and ("Monday", "ORG") not in found


def test_the_first_doc_read_is_read_in_the_checkpoints_scheme(iob1_dir):
    """The scheme is decided when the model loads, before any Doc: a single short Doc
    read first keeps its one-word entity."""
    nlp = make_nlp(iob1_dir)
    assert ents(nlp("Paris")) == [("Paris", "LOC")]


def test_the_decision_does_not_depend_on_batches_or_order(iob1_dir):
    texts = [TEXT, "Rome .", "Madrid and London on Monday .", "nothing here", TEXT[:30]]
    expected = [ents(make_nlp(iob1_dir)(t)) for t in texts]
    for batch_size in (1, 2, 100):
        nlp = make_nlp(iob1_dir)
        assert [ents(d) for d in nlp.pipe(reversed(texts), batch_size=batch_size)] == expected[::-1]


def test_the_decision_is_saved_with_the_pipeline(iob1_dir, tmp_path, monkeypatch):
    nlp = make_nlp(iob1_dir)
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")
    data = nlp.get_pipe("direct_ner").to_bytes()

    def no_probe(*args, **kwargs):
        raise AssertionError("a saved pipeline must not decide again")

    monkeypatch.setattr(TokenEntities, "_probe_paths", no_probe)
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("direct_ner").tag_scheme == "iob1"  # read from the saved cfg, weights not loaded
    assert ents(loaded(TEXT)) == EXPECTED
    restored = make_nlp("hub-user/never-downloaded")
    restored.get_pipe("direct_ner").from_bytes(data)
    assert restored.get_pipe("direct_ner").tag_scheme == "iob1"
    assert ents(restored(TEXT)) == EXPECTED
    override = spacy.load(tmp_path / "pipeline", config={"components": {"direct_ner": {"tag_scheme": "iob2"}}})
    assert override.get_pipe("direct_ner").tag_scheme == "iob2"


def test_a_model_that_predicts_too_few_entities_is_read_as_iob2_with_a_warning(bert_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="spacy_direct_use"):
        nlp = make_nlp(bert_dir)
        nlp.initialize()
    assert nlp.get_pipe("direct_ner").tag_scheme == "iob2"
    assert "too few to tell" in caplog.text and "'tag_scheme': 'iob1'" in caplog.text


def test_a_bad_tag_scheme_is_refused(bert_dir):
    with pytest.raises(DirectNERError, match="E008.*tag_scheme"):
        make_nlp(bert_dir, tag_scheme="bio")


def test_bilou_is_bioes(tmp_path):
    labels = sorted(["O", *(f"{p}-{t}" for p in "BILU" for t in ("PER", "LOC"))])
    model = make_lookup_model(tmp_path / "m", {"angela": "B-PER", "merkel": "L-PER", "paris": "U-LOC"}, labels=labels)
    for setting in ("auto", "bilou", "bioes"):
        nlp = make_nlp(model, tag_scheme=setting)
        assert ents(nlp(TEXT)) == [("Angela Merkel", "PER"), ("Paris", "LOC")]
        assert nlp.get_pipe("direct_ner").tag_scheme == "bioes"


def test_iob_schemes_refuse_labels_with_end_tags(tmp_path):
    model = make_lookup_model(tmp_path / "m", {}, labels=["O", "B-PER", "I-PER", "E-PER", "S-PER"])
    with pytest.raises(DirectNERError, match="E027.*'iob1'.*bioes"):
        make_nlp(model, tag_scheme="iob1")("Angela")


@pytest.mark.parametrize(
    "labels, expected",
    [
        (["O", "B-PER", "I-PER", "E-PER", "S-PER"], "bioes"),
        (["O", "U-PER", "L-PER", "B-PER", "I-PER"], "bioes"),
        (["O", "PER", "ORG", "LOC", "MISC"], "io"),
        (["O", "I-LOC", "I-PER", "I-MISC", "I-ORG"], "io"),
        (["B-LOC", "B-MISC", "B-ORG", "I-LOC", "I-MISC", "I-ORG", "I-PER", "O"], "iob1"),  # XLM-R large's set
        (BIO_LABELS, None),  # B- and I- for every type: only predictions tell
    ],
)
def test_labels_that_decide_the_scheme(labels, expected):
    decided = scheme_from_labels(labels)
    assert (decided[0] if decided else None) == expected


def test_io_reads_a_run_of_one_type_as_one_entity(tmp_path):
    model = make_lookup_model(tmp_path / "m", {"angela": "PER", "merkel": "PER", "paris": "LOC"}, labels=["O", "PER", "LOC"])
    nlp = make_nlp(model)
    assert ents(nlp(TEXT)) == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert nlp.get_pipe("direct_ner").tag_scheme == "io"


def test_iob1_b_tag_splits_two_entities_of_one_type(tmp_path):
    """'Paris Berlin': I-LOC B-LOC, two LOC entities in IOB1 (one, if B- were read as inside)."""
    model = make_lookup_model(tmp_path / "m", {"paris": "I-LOC", "berlin": "B-LOC"}, labels=BIO_LABELS, strength=4.0)
    doc = make_nlp(model, tag_scheme="iob1")(Doc(spacy.blank("en").vocab, words=["Paris", "Berlin", "and", "Berlin"]))
    assert ents(doc) == [("Paris", "LOC"), ("Berlin", "LOC"), ("Berlin", "LOC")]


def test_viterbi_constraints_per_scheme():
    iob2 = LabelScheme.from_id2label(dict(enumerate(BIO_LABELS)), tag_scheme="iob2")
    iob1 = LabelScheme.from_id2label(dict(enumerate(BIO_LABELS)), tag_scheme="iob1")
    inside_per = BIO_LABELS.index("I-PER")
    assert not iob2.allowed_start[inside_per] and iob1.allowed_start[inside_per]
