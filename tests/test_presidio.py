"""Presidio (presidio-analyzer), the real consumer of personal-data entities: its AnalyzerEngine
on a saved pipeline holding direct_ner with alignment_mode "split" finds values glued to
punctuation with exactly their offsets (only the NLP engine's recognizer runs, so what is
found is the model's, not Presidio's regular expressions')."""
import sys
from pathlib import Path

import pytest

pytest.importorskip("presidio_analyzer", reason="presidio-analyzer not installed (pip install -e '.[test]')")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from presidio_compare import RAMPART_TO_PRESIDIO, saved_pipeline, spacy_analyzer  # noqa: E402

TEXT = "We met Jane;Doe in Paris;London."


def analyzed(analyzer, text: str):
    return sorted((r.start, r.end, r.entity_type) for r in analyzer.analyze(text, language="en"))


def test_presidio_finds_glued_values_with_their_offsets(bert_dir, tmp_path):
    mapping = {"PER": "PERSON", "LOC": "LOCATION"}
    split = spacy_analyzer(saved_pipeline(bert_dir, "split", tmp_path / "split"), mapping)
    assert analyzed(split, TEXT) == [(7, 11, "PERSON"), (12, 15, "PERSON"), (19, 24, "LOCATION"), (25, 31, "LOCATION")]
    tokens = spacy_analyzer(saved_pipeline(bert_dir, "tokens", tmp_path / "tokens"), mapping)
    assert analyzed(tokens, TEXT) == [(7, 15, "PERSON"), (19, 31, "LOCATION")], "the default reads spaCy's tokens whole"


@pytest.mark.slow
def test_presidio_with_rampart_finds_glued_emails_and_phones(rampart_dir, tmp_path):
    analyzer = spacy_analyzer(saved_pipeline(rampart_dir, "split", tmp_path / "rampart"), RAMPART_TO_PRESIDIO)
    text = "Name:Emily Chen;Phone:+1(415)555-2671;Email:emily.chen@corp.example"
    found = analyzed(analyzer, text)
    assert {(11, 15, "PERSON"), (24, 37, "PHONE_NUMBER")} <= set(found)
    assert text[24:37] == "(415)555-2671"
    text = "Please email:john.doe@example.com, thanks."
    assert (13, 33, "EMAIL_ADDRESS") in analyzed(analyzer, text) and text[13:33] == "john.doe@example.com"
