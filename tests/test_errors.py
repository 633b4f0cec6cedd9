"""Every message shows its code, as spaCy's do ("[E050] ..."), so users can search for it, headed
by the component that raised it ("[direct_tagger E002] ...") with examples that fit it."""
import logging
import re
import string

import pytest
import spacy

import spacy_direct_use
from conftest import make_lookup_model, make_sequence_classifier
from spacy_direct_use import DirectNERError, DirectUseError
from spacy_direct_use.errors import Errors, speaker, speaking_for
from spacy_direct_use.manifest import MANIFEST_FILE

CODES = sorted(name for name in vars(Errors) if re.fullmatch(r"[EW]\d+", name))


def test_the_codes_are_found():
    assert len(CODES) >= 18 and CODES[0] == "E001"


@pytest.mark.parametrize("code", CODES)
def test_each_message_starts_with_its_code_and_the_speaker(code):
    assert getattr(Errors, code).startswith(f"[spacy_direct_use {code}] ")  # outside any component
    with speaking_for("direct_tagger"):
        message = getattr(Errors, code)
        fields = {name: "x" for _, name, _, _ in string.Formatter().parse(message) if name}
        formatted = message.format(**{**fields, "needed": 1, "available": 0})
    assert formatted.startswith(f"[direct_tagger {code}] ")
    assert "[direct_ner]" not in formatted and "direct_ner E" not in formatted
    assert "dslim/bert-base-NER" not in formatted  # the NER example is for direct_ner alone
    assert speaker() == "spacy_direct_use"  # the block is over


def test_a_raised_error_shows_its_code():
    with pytest.raises(DirectNERError, match=r"^\[direct_ner E001\] No model given"):
        spacy.blank("en").add_pipe("direct_ner")


def test_the_old_exception_name_still_catches():
    assert DirectNERError is DirectUseError and issubclass(DirectUseError, ValueError)
    assert {"DirectUseError", "DirectNERError"} <= set(spacy_direct_use.__all__)
    try:
        spacy.blank("en").add_pipe("direct_textcat")
    except DirectNERError as err:  # users' `except DirectNERError` clauses
        assert str(err).startswith("[direct_textcat E001] ")
    else:
        pytest.fail("no error")


def test_direct_tagger_names_itself_for_a_missing_directory(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_tagger", config={"model": str(tmp_path / "missing")})  # checked when the model loads
    with pytest.raises(DirectUseError) as info:
        nlp.initialize()
    message = str(info.value)
    assert message.startswith("[direct_tagger E002] ") and "'vblagoje/bert-english-uncased-finetuned-pos'" in message
    assert "dslim/bert-base-NER" not in message


def test_direct_textcat_names_itself_for_a_token_classifier(bert_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_textcat", config={"model": str(bert_dir)})
    with pytest.raises(DirectUseError, match=r"^\[direct_textcat E004\] .*not a sequence classifier.*finetuned-sst-2") as info:
        nlp("text")
    assert "dslim/bert-base-NER" not in str(info.value)


def test_each_component_of_a_pipeline_speaks_for_itself(tmp_path, bert_dir):
    """In nlp.pipe, the error comes from the batch of the component that raised it; between
    batches (a yield) no component speaks."""
    sequence = make_sequence_classifier(tmp_path / "seq", ["NEG", "POS"])
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(bert_dir)})
    nlp.add_pipe("direct_tagger", config={"model": str(sequence)})
    with pytest.raises(DirectUseError, match=r"^\[direct_tagger E004\] "):
        list(nlp.pipe(["Angela Merkel flew to Paris"]))
    ner = nlp.get_pipe("direct_ner")
    docs = ner.pipe((nlp.make_doc(t) for t in ["Paris", "London", "Berlin"]), batch_size=1)
    assert [e.text for e in next(docs).ents] == ["Paris"]
    assert speaker() == "spacy_direct_use"  # suspended at a yield: the context is not left set
    with pytest.raises(DirectUseError, match=r"^\[direct_ner E065\] "):
        list(ner.pipe([nlp.make_doc("Paris")], no_such_setting=1))


def test_a_damaged_saved_tagger_names_direct_tagger(tmp_path, caplog):
    model = make_lookup_model(tmp_path / "m", {"paris": "PROPN"}, labels=["NOUN", "PROPN"], strength=4.0)
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_tagger", config={"model": str(model)})
    nlp.to_disk(tmp_path / "pipeline")
    config = tmp_path / "pipeline" / "direct_tagger" / "model" / "config.json"
    config.write_text(config.read_text() + " ")
    with pytest.raises(DirectUseError, match=r"^\[direct_tagger E050\] .*config.json' does not match"):
        spacy.load(tmp_path / "pipeline")
    (tmp_path / "pipeline" / "direct_tagger" / MANIFEST_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="spacy_direct_use"):
        spacy.load(tmp_path / "pipeline")
    assert any(r.getMessage().startswith("[direct_tagger] ") and "no manifest.json" in r.getMessage() for r in caplog.records)


def test_a_component_built_without_its_factory_still_names_itself(tmp_path):
    """A subclass's own entry points speak too (here DirectTagger.__init__'s check, after the core's)."""
    from spacy_direct_use import DirectTagger

    model = make_lookup_model(tmp_path / "m", {"paris": "PROPN"}, labels=["NOUN", "PROPN"], strength=4.0)
    with pytest.raises(DirectUseError, match=r"^\[direct_tagger E008\] Invalid setting aggregation='bogus'"):
        DirectTagger(spacy.blank("en").vocab, model=str(model), aggregation="bogus")
