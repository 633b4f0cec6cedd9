"""Every direct_ner message shows its code, as spaCy's do ("[E050] ..."), so users can search for it."""
import re

import pytest
import spacy

from spacy_direct_use import DirectNERError
from spacy_direct_use.errors import Errors

CODES = sorted(name for name in vars(Errors) if re.fullmatch(r"[EW]\d+", name))


def test_the_codes_are_found():
    assert len(CODES) >= 18 and CODES[0] == "E001"


@pytest.mark.parametrize("code", CODES)
def test_each_message_starts_with_its_code(code):
    message = getattr(Errors, code)
    assert message.startswith(f"[direct_ner {code}] ")
    assert "[direct_ner]" not in message


def test_a_raised_error_shows_its_code():
    with pytest.raises(DirectNERError, match=r"^\[direct_ner E001\] No model given"):
        spacy.blank("en").add_pipe("direct_ner")
