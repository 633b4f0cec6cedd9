"""Sub-word to spaCy token alignment, aggregation and windowing."""
import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.pipeline import Sentencizer
from spacy.strings import get_string_id
from spacy.tokens import Doc

from spacy_direct_use.alignment import TokenAlignment, aggregate, doc_words
from spacy_direct_use.windows import guess_sentence_starts, sentence_windows, strided_windows


@pytest.fixture(scope="module")
def vocab():
    return spacy.blank("en").vocab


def alignment_of(doc, pieces_per_word):
    """The alignment for a Doc whose i-th word was tokenized into pieces_per_word[i] pieces."""
    words, word_tokens = doc_words(doc)
    assert len(words) == len(pieces_per_word)
    word_ids = np.repeat(np.arange(len(words)), pieces_per_word)
    return TokenAlignment.from_word_ids(word_ids, word_tokens)


def test_words_are_the_non_whitespace_tokens(vocab):
    doc = Doc(vocab, words=["Angela", "\n", "Merkel", "  ", "🙂"], spaces=[False, False, True, False, False])
    words, word_tokens = doc_words(doc)
    assert words == ["Angela", "Merkel", "🙂"]
    assert word_tokens.tolist() == [0, 2, 4]
    assert doc_words(Doc(vocab, words=[]))[0] == []


def test_token_of_several_pieces(vocab):
    alignment = alignment_of(Doc(vocab, words=["Washingtonians", "left"]), [2, 1])
    assert alignment.piece_tokens.tolist() == [0, 0, 1]
    assert alignment.group_starts.tolist() == [0, 2]
    assert alignment.tokens.tolist() == [0, 1]


def test_whitespace_and_pieceless_tokens_are_gaps(vocab):
    doc = Doc(vocab, words=["Angela", "\n", "Merkel", "\u200b"], spaces=[False, False, True, False])
    alignment = alignment_of(doc, [1, 1, 0])  # the tokenizer drops the zero-width space
    assert alignment.tokens.tolist() == [0, 2]


@pytest.mark.parametrize(
    "strategy,expected",
    [("first", [0.6, 0.4]), ("average", [0.4, 0.6]), ("max", [0.2, 0.8])],
)
def test_aggregation(vocab, strategy, expected):
    alignment = alignment_of(Doc(vocab, words=["Washingtonians"]), [2])
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
    expected = [i for i, start in enumerate(Sentencizer().predict([doc])[0]) if start]
    assert guess_sentence_starts(doc, final).tolist() == expected
