"""Sub-word to spaCy token alignment, aggregation and windowing."""
import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.pipeline import Sentencizer
from spacy.strings import get_string_id
from spacy.tokens import Doc

from spacy_direct_use.alignment import aggregate, align_doc
from spacy_direct_use.windows import guess_sentence_start_chars, sentence_windows, strided_windows


@pytest.fixture(scope="module")
def vocab():
    return spacy.blank("en").vocab


def char_offsets(text, pieces):
    """Offsets of each piece, searched left to right in text."""
    offsets, pos = [], 0
    for piece in pieces:
        start = text.index(piece, pos)
        offsets.append((start, start + len(piece)))
        pos = start + len(piece)
    return np.array(offsets)


def test_token_of_several_subwords(vocab):
    doc = Doc(vocab, words=["Washingtonians", "left"])
    alignment = align_doc(doc, char_offsets(doc.text, ["Washington", "ians", "left"]))
    assert alignment.pair_token.tolist() == [0, 0, 1]
    assert alignment.tokens.tolist() == [0, 1]


def test_subword_over_several_tokens(vocab):
    doc = Doc(vocab, words=["New", "York", "-", "based"], spaces=[True, False, False, False])
    offsets = char_offsets(doc.text, ["New", "York-", "based"])
    expand = align_doc(doc, offsets, "expand")
    assert expand.pair_token.tolist() == [0, 1, 2, 3]
    assert expand.pair_subword.tolist() == [0, 1, 1, 2]
    assert expand.shares_left.tolist() == [False, False, True, False]
    contract = align_doc(doc, offsets, "contract")
    assert contract.tokens.tolist() == [0, 3]  # York and '-' share a sub-word: gaps


def test_whitespace_and_unaligned_tokens_are_gaps(vocab):
    doc = Doc(vocab, words=["Angela", "\n", "Merkel", "🙂"], spaces=[False, False, True, False])
    offsets = char_offsets(doc.text, ["Angela", "Merkel"])
    alignment = align_doc(doc, offsets)
    assert alignment.tokens.tolist() == [0, 2]


def test_subword_covering_whitespace_token_is_ignored_there(vocab):
    doc = Doc(vocab, words=["a", "\n", "b"], spaces=[False, False, False])
    alignment = align_doc(doc, np.array([[0, 1], [1, 2], [2, 3]]))
    assert alignment.tokens.tolist() == [0, 2]


def test_empty_offsets_are_skipped(vocab):
    doc = Doc(vocab, words=["x", "y"])
    alignment = align_doc(doc, np.array([[0, 0], [0, 1], [2, 3]]))
    assert alignment.pair_subword.tolist() == [1, 2]


@pytest.mark.parametrize(
    "strategy,expected",
    [("first", [0.6, 0.4]), ("average", [0.4, 0.6]), ("max", [0.2, 0.8])],
)
def test_aggregation(vocab, strategy, expected):
    doc = Doc(vocab, words=["Washingtonians"])
    alignment = align_doc(doc, np.array([[0, 10], [10, 14]]))
    probs = np.array([[0.6, 0.4], [0.2, 0.8]], dtype=np.float32)
    assert aggregate(probs, alignment, strategy)[0].tolist() == pytest.approx(expected)


@pytest.mark.parametrize("length,size,overlap", [(10, 4, 2), (100, 64, 32), (65, 64, 32), (7, 8, 2), (1000, 48, 0)])
def test_strided_window_cores_tile_the_sequence(length, size, overlap):
    windows = strided_windows(0, length, size, overlap)
    covered = np.zeros(length, dtype=int)
    for start, end, core_start, core_end in windows:
        assert 0 <= start <= core_start < core_end <= end <= length
        assert end - start <= size
        covered[core_start:core_end] += 1
    assert (covered == 1).all()


def test_strided_core_keeps_context_on_both_sides():
    windows = strided_windows(0, 256, 64, 32)
    for start, end, core_start, core_end in windows[1:-1]:
        assert core_start - start >= 15 and end - core_end >= 15


def test_sentence_windows_follow_sentences():
    # sentences of 5, 3, 70 (longer than the window) and 2 sub-words
    windows = sentence_windows([0, 5, 8, 78], 80, size=64, overlap=32, max_sentences=1)
    assert windows[0] == (0, 5, 0, 5)
    assert windows[1] == (5, 8, 5, 8)
    assert windows[-1] == (78, 80, 78, 80)
    covered = np.zeros(80, dtype=int)
    for _, _, core_start, core_end in windows:
        covered[core_start:core_end] += 1
    assert (covered == 1).all()


def test_sentence_windows_pack_up_to_size():
    windows = sentence_windows([0, 5, 8, 20], 30, size=16, overlap=4, max_sentences=10)
    assert [(w[0], w[1]) for w in windows] == [(0, 8), (8, 20), (20, 30)]


@pytest.mark.parametrize(
    "text",
    [
        "Hello there. I am here! Are you? \"Yes.\" (Fine.) OK",
        ". Hello . . world ... and more",
        "no punctuation at all",
        "",
        "U.S. officials met . . . then left.",
        "一つ。二つ。 三つ",
    ],
)
def test_sentence_guesses_match_spacys_sentencizer(text):
    assert_guesses_match_sentencizer(spacy.blank("en")(text))


ENGLISH_VOCAB = spacy.blank("en").vocab
SENTENCE_PIECES = [".", "!", "?", "...", ",", "(", ")", '"', "--", "。", "؟", "word", "Word", "U.S.", "3.5", " "]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SENTENCE_PIECES), max_size=30))
def test_sentence_guesses_match_sentencizer_on_random_token_sequences(pieces):
    assert_guesses_match_sentencizer(Doc(ENGLISH_VOCAB, words=pieces))  # lexical attributes: is_punct


def assert_guesses_match_sentencizer(doc: Doc) -> None:
    final = frozenset(get_string_id(c) for c in Sentencizer.default_punct_chars)
    expected = [doc[i].idx for i, start in enumerate(Sentencizer().predict([doc])[0]) if start]
    assert guess_sentence_start_chars(doc, final).tolist() == expected
