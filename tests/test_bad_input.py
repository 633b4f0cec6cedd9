"""Bad input: odd text, odd tokenization and existing annotations.

Whatever the text or tokenization, direct_ner must give valid entities (inside
the Doc, on token boundaries, never starting or ending on a whitespace token,
labels from the model after label_map) and leave everything else on the Doc
as it was. Each case runs on both tiny checkpoints: WordPiece (BERT) and
byte-level BPE (RoBERTa), whose predictions are known (see conftest).
"""
import unicodedata

import numpy as np
import pytest
import spacy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.attrs import IDX, LEMMA, MORPH, NORM, ORTH, POS, SENT_START, SPACY, TAG
from spacy.tokens import Doc, Span, SpanGroup, Token
from transformers import AutoTokenizer

from spacy_direct_use import DirectNERError

from conftest import ents, make_lookup_model, make_nlp

KINDS = ("wordpiece", "bpe")
# The BPE twin of conftest's WORDPIECE_RULES (bert_dir). Byte-level BPE reads each word with
# a prefix space: 'Angela' is 'ĠAngel' + 'a', 'Paris' is 'ĠPar' + 'is'; 'first' aggregation
# reads each word's first sub-word.
BPE_RULES = {
    "ĠAngel": "B-PER", "ĠMer": "I-PER", "ĠJan": "B-PER", "ĠDo": "I-PER",
    "ĠPar": "B-LOC", "ĠBer": "B-LOC", "ĠLond": "B-LOC",
}
LABEL_MAP = {"PER": "PERSON", "LOC": "GPE"}  # ORG keeps its name
LABELS = {"PERSON", "GPE", "ORG"}
EXPECTED = [("Angela Merkel", "PERSON"), ("Paris", "GPE")]
ENTITY_WORDS = ["Angela", "Merkel", "Paris", "Berlin", "London", "Jane", "Doe", "United", "Nations"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny models gain nothing from threads, and on a busy 2-core machine two
    spinning OpenMP threads make each forward pass ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, bert_dir):
    return {"wordpiece": bert_dir, "bpe": make_lookup_model(tmp_path_factory.mktemp("bpe") / "model", BPE_RULES, "bpe")}


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def nlp(model_dirs, kind):
    nlp = make_nlp(model_dirs[kind], label_map=LABEL_MAP)
    nlp.initialize()
    assert set(nlp.get_pipe("direct_ner").labels) == LABELS
    return nlp


@pytest.fixture(scope="module")
def tokenizer(model_dirs, kind):
    return AutoTokenizer.from_pretrained(str(model_dirs[kind]))


def assert_valid(doc, text=None, whitespace_free_edges=True):
    """The invariants every output must satisfy, for doc.ents and the scored span group."""
    if text is not None:
        assert doc.text == text
    for group in (list(doc.ents), list(doc.spans.get("direct_ner", []))):
        previous_end = 0
        for ent in group:
            assert 0 <= ent.start < ent.end <= len(doc)
            assert ent.start_char == doc[ent.start].idx
            assert ent.end_char == doc[ent.end - 1].idx + len(doc[ent.end - 1].text)
            assert not doc[ent.start].is_space, f"entity {ent.text!r} starts on a whitespace token"
            assert not doc[ent.end - 1].is_space, f"entity {ent.text!r} ends on a whitespace token"
            assert ent.label_ in LABELS, ent.label_
            assert ent.start >= previous_end, "entities overlap or are out of order"
            previous_end = ent.end
            if whitespace_free_edges:  # spaCy's tokenizer keeps whitespace in tokens of its own
                assert not ent.text[0].isspace() and not ent.text[-1].isspace(), repr(ent.text)
    scores = doc.spans["direct_ner"].attrs["scores"] if "direct_ner" in doc.spans else []
    assert len(scores) == len(doc.spans.get("direct_ner", []))
    assert all(0.0 <= s <= 1.0 for s in scores)


# -- text ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "   ", "\n", "\n\n\t ", "\u3000", "\u00a0\u2003\u2028", " \n " * 50])
def test_empty_and_whitespace_only_docs(nlp, text):
    doc = nlp(text)
    assert_valid(doc, text)
    assert ents(doc) == [] and len(doc.spans["direct_ner"]) == 0


def test_emoji_flags_and_symbols(nlp):
    text = "Angela Merkel 🇩🇪 flew to Paris 👍🏽 ✈️ ©®™ ∑≠∞ 👨‍👩‍👧‍👦 😀😀😀 ."
    doc = nlp(text)
    assert_valid(doc, text)
    assert ents(doc) == EXPECTED


@pytest.mark.parametrize("text", ["🇩🇪🇫🇷🇬🇧", "👨‍👩‍👧‍👦" * 40, "∑∫∂√∞ ≠ ≤ ≥ ← → ♥ ♦ ♣ ♠", "\U0001F600" * 200])
def test_only_symbols(nlp, text):
    doc = nlp(text)
    assert_valid(doc, text)
    assert ents(doc) == []


INVISIBLE = {
    "zero width space": "\u200b",
    "zero width joiner": "\u200d",
    "left-to-right mark": "\u200e",
    "right-to-left override": "\u202e",
    "pop directional formatting": "\u202c",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "NUL": "\x00",
    "bell": "\x07",
    "escape": "\x1b",
    "DEL": "\x7f",
    "C1 control": "\x85",
}


@pytest.mark.parametrize("char", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_invisible_and_control_characters_between_words(nlp, char):
    text = f"{char} Angela Merkel {char} flew to {char}{char} Paris {char}"
    doc = nlp(text)
    assert_valid(doc, text)
    assert ents(doc) == EXPECTED


@pytest.mark.parametrize("char", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_invisible_and_control_characters_inside_words(nlp, kind, char):
    text = f"{char}Angela{char}Merkel flew to Par{char}is{char} and Berlin{char}."
    doc = nlp(text)
    assert_valid(doc, text)
    if kind == "wordpiece" and unicodedata.category(char) in ("Cc", "Cf") and not char.isspace():
        # BERT's normalizer drops control and format characters, so the words read as usual.
        # (A character spaCy reads as whitespace, such as NEL \x85, splits the word in two.)
        assert [label for _, label in ents(doc)] == ["PERSON", "GPE", "GPE"]


def test_combining_characters_nfd(nlp, kind):
    text = unicodedata.normalize("NFD", "Angéla Merkel flew to Páris and Zürich .")
    assert text != unicodedata.normalize("NFC", text)
    doc = nlp(text)
    assert_valid(doc, text)  # the text stays decomposed: nothing is normalised in place
    if kind == "wordpiece":  # BERT's normalizer strips the accents, offsets still point into the NFD text
        assert ents(doc) == [(unicodedata.normalize("NFD", "Angéla Merkel"), "PERSON"), (unicodedata.normalize("NFD", "Páris"), "GPE")]
    stacked = "A" + "\u0301" * 300 + " Paris"  # one letter with 300 combining marks
    doc = nlp(stacked)
    assert_valid(doc, stacked)
    assert ents(doc)[-1:] == [("Paris", "GPE")]


@pytest.mark.parametrize("long_word", ["x" * 5000, "中" * 5000, "Angela" * 800, "ab1" * 1700], ids=["x", "cjk", "names", "mixed"])
def test_very_long_token_without_spaces(nlp, tokenizer, long_word):
    text = f"Angela Merkel visited {long_word} in Paris ."
    n_subwords = len(tokenizer(long_word, add_special_tokens=False).input_ids)
    doc = nlp(text)
    assert_valid(doc, text)
    if n_subwords > 64:  # the word alone needs several windows of the 64-position model
        assert ents(doc)[:1] == [("Angela Merkel", "PERSON")] and ents(doc)[-1:] == [("Paris", "GPE")]
    alone = nlp(long_word)
    assert_valid(alone, long_word)
    words = Doc(nlp.vocab, words=["Paris", long_word, "Paris"])
    assert_valid(nlp(words))
    assert ents(words)[0] == ("Paris", "GPE") and ents(words)[-1] == ("Paris", "GPE")


def test_the_long_words_really_need_many_windows(model_dirs):
    """Guards the test above: at least one long word per model is over the 64-position limit."""
    for kind in KINDS:
        tok = AutoTokenizer.from_pretrained(str(model_dirs[kind]))
        lengths = [len(tok(w, add_special_tokens=False).input_ids) for w in ("x" * 5000, "中" * 5000, "ab1" * 1700)]
        assert max(lengths) > 64 * 10, (kind, lengths)


NON_LATIN = [
    "Ангела Меркель прилетела в Париж.",
    "安格拉·默克尔飞往巴黎。",
    "アンゲラ・メルケルはパリへ飛んだ。",
    "앙겔라 메르켈은 파리로 날아갔다.",
    "أنجيلا ميركل سافرت إلى باريس.",
    "אנגלה מרקל טסה לפריז.",
    "अंगेला मर्केल पेरिस गईं।",
    "แองเกลา แมร์เคิล บินไปปารีส",
    "Άνγκελα Μέρκελ πέταξε στο Παρίσι.",
    "ანგელა მერკელი",
]


@pytest.mark.parametrize("text", NON_LATIN)
def test_non_latin_scripts(nlp, text):
    doc = nlp(text)
    assert_valid(doc, text)


def test_mixed_scripts_keep_latin_entities(nlp):
    text = "Angela Merkel прилетела в Paris, 然后 Berlin ."
    doc = nlp(text)
    assert_valid(doc, text)
    assert ents(doc) == EXPECTED + [("Berlin", "GPE")]


def test_newline_inside_a_name(nlp, kind):
    text = "Angela\nMerkel flew to\nParis\n"
    doc = nlp(text)
    assert_valid(doc, text)
    assert ("Paris", "GPE") in ents(doc)
    if kind == "wordpiece":  # 'merkel' reads the same after a newline as after a space
        assert ents(doc) == [("Angela\nMerkel", "PERSON"), ("Paris", "GPE")]
    for text in ("\n\nParis\n\n", "Angela\r\nMerkel\r\n", "Angela\n\n\nMerkel", "Paris\u2029Berlin"):
        doc = nlp(text)
        assert_valid(doc, text)
        assert ents(doc), text


@pytest.mark.parametrize("text", ["[CLS] Angela Merkel [SEP] Paris [PAD] [MASK]", "<s> Angela Merkel </s> Paris <pad> <mask> <unk>"])
def test_special_token_strings_in_the_text(nlp, text):
    doc = nlp(text)
    assert_valid(doc, text)
    assert ("Paris", "GPE") in ents(doc)


# -- unusual tokenization ------------------------------------------------------------------


UNUSUAL_DOCS = {
    "gold words": (["Angela", "Merkel", "flew", "to", "Paris", "."], [True, True, True, True, False, False], EXPECTED),
    "no spaces at all": (["Angela", "Merkel", "flew", "to", "Paris"], [False] * 5, None),
    "spaces inside tokens": (["Angela Merkel", "flew to Paris"], [True, False], [("Angela Merkel", "PERSON")]),
    "whitespace tokens": (["Angela", " ", "Merkel", "\n", "Paris", "  "], [False] * 6, EXPECTED),
    "only whitespace tokens": ([" ", "\n", "\t", "  "], [False, True, False, True], []),
    "edges are whitespace": (["  ", "Paris", "\n\n"], [False, False, False], [("Paris", "GPE")]),
    "empty doc": ([], [], []),
    "one letter tokens": (list("Paris"), [False] * 5, None),
}


@pytest.mark.parametrize("case", list(UNUSUAL_DOCS))
def test_unusual_tokenization(nlp, case):
    words, spaces, expected = UNUSUAL_DOCS[case]
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    text = doc.text
    doc = nlp(doc)
    assert_valid(doc, text, whitespace_free_edges=False)
    assert [t.text for t in doc] == words
    if expected is not None:
        assert ents(doc) == expected


def test_words_split_inside_a_word_are_read_as_the_users_words(nlp):
    """Each token is one word for the model, as in fine-tuning on pre-split words:
    'Ang' + 'ela' are two words, neither of them a name the lookup model knows."""
    words = ["Ang", "ela", "Merkel", "flew", "to", "Pa", "ris", "."]
    spaces = [False, True, True, True, True, False, False, False]
    doc = nlp(Doc(nlp.vocab, words=words, spaces=spaces))
    assert_valid(doc, "Angela Merkel flew to Paris.")
    assert [token.ent_type_ for token in doc if token.text in ("Ang", "ela", "Pa", "ris")] == [""] * 4


def test_words_glued_across_subwords(nlp):
    doc = nlp(Doc(nlp.vocab, words=["AngelaMerkel", "flewtoParis", "."], spaces=[True, False, False]))
    assert_valid(doc, "AngelaMerkel flewtoParis.")
    assert ents(doc)[:1] == [("AngelaMerkel", "PERSON")]


# -- very long documents -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("with_sentencizer", [False, True])
def test_entity_in_the_last_sentence_of_a_30000_word_doc(model_dirs, kind, with_sentencizer):
    filler = "the cat sat on a mat near the river . " * 3000  # 30,000 words, no entity
    text = filler + "Then Angela Merkel flew to Paris ."
    nlp = make_nlp(model_dirs[kind], label_map=LABEL_MAP)
    if with_sentencizer:
        nlp.add_pipe("sentencizer", first=True)
    doc = nlp(text)
    assert len(doc) > 30000
    assert_valid(doc, text)
    assert ents(doc) == EXPECTED
    assert doc.ents[0].start == len(doc) - 6


# -- property-based ------------------------------------------------------------------------

PIECES = ENTITY_WORDS + [" ", "  ", "\n", "\t", "\u00a0", "\u200b", "\u202e", "e\u0301", "🇩🇪", "👍🏽", ".", ",", "-", "'", "[SEP]", "<s>"]
text_pieces = st.one_of(st.sampled_from(PIECES), st.text(max_size=8))
random_texts = st.lists(text_pieces, max_size=40).map("".join)
random_words = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(PIECES), st.text(min_size=1, max_size=8)),  # word
        st.booleans(),  # followed by a space
        st.sampled_from([None, None, True, False]),  # sentence start
    ),
    max_size=30,
)
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY_SETTINGS
@given(text=random_texts)
def test_any_text_gives_valid_entities(nlp, text):
    doc = nlp(text)
    assert_valid(doc, text)


@pytest.fixture(scope="module")
def split_nlp(model_dirs, kind):
    return make_nlp(model_dirs[kind], label_map=LABEL_MAP, alignment_mode="split")


def boundaries(doc):
    return {t.idx for t in doc} | {t.idx + len(t) for t in doc}


@PROPERTY_SETTINGS
@given(text=random_texts)
def test_any_text_split_at_entity_edges_only(split_nlp, text):
    """alignment_mode "split" on any text: valid entities on token edges, doc.text kept,
    tokens only split (at entity edges), and a second call splits nothing more."""
    before = boundaries(split_nlp.make_doc(text))
    doc = split_nlp(text)
    assert_valid(doc, text)
    edges = {edge for span in doc.spans["direct_ner"] for edge in (span.start_char, span.end_char)}
    assert before <= boundaries(doc) <= before | edges
    tokens = [t.text for t in doc]
    assert [t.text for t in split_nlp(doc)] == tokens


@PROPERTY_SETTINGS
@given(pairs=random_words)
def test_any_tokenization_gives_valid_entities(nlp, pairs):
    words = [w for w, _, _ in pairs]
    sent_starts = [s for _, _, s in pairs] if any(s is not None for _, _, s in pairs) else None
    doc = Doc(nlp.vocab, words=words, spaces=[s for _, s, _ in pairs], sent_starts=sent_starts)
    text, starts = doc.text, [t.is_sent_start for t in doc]
    doc = nlp(doc)
    assert_valid(doc, text, whitespace_free_edges=False)
    assert [t.text for t in doc] == words
    assert [t.is_sent_start for t in doc] == starts


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(random_texts, min_size=1, max_size=6))
def test_batching_never_changes_the_entities(nlp, texts):
    alone = [ents(nlp(t)) for t in texts]
    assert [ents(d) for d in nlp.pipe(texts, batch_size=4)] == alone


# -- existing annotations ------------------------------------------------------------------


TEXT = "Angela Merkel flew to Paris to meet the United Nations on Monday ."


@pytest.fixture(scope="module")
def bert_nlp(model_dirs):
    def make(overwrite_ents=None, ruler_patterns=None, **settings):
        if overwrite_ents is not None:
            settings["overwrite_ents"] = overwrite_ents
        nlp = make_nlp(model_dirs["wordpiece"], **settings)
        if ruler_patterns:
            nlp.add_pipe("entity_ruler", first=True).add_patterns(ruler_patterns)
        return nlp

    return make


RULER = [
    {"label": "POLITICIAN", "pattern": "Merkel", "id": "merkel-id"},
    {"label": "DATE", "pattern": "Monday"},
    {"label": "CITY", "pattern": [{"LOWER": "paris"}]},
]


def test_overwrite_ents_is_off_by_default(bert_nlp):
    assert bert_nlp().get_pipe("direct_ner").settings.overwrite_ents is False


def test_entity_ruler_entities_are_kept_and_gaps_filled(bert_nlp):
    doc = bert_nlp(ruler_patterns=RULER)(TEXT)
    assert ents(doc) == [("Merkel", "POLITICIAN"), ("Paris", "CITY"), ("United Nations", "ORG"), ("Monday", "DATE")]
    assert doc.ents[0].ent_id_ == "merkel-id"
    # The model's own view is still there in the scored span group.
    assert [(s.text, s.label_) for s in doc.spans["direct_ner"]] == [
        ("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")
    ]


def test_overwrite_replaces_the_entities_it_overlaps_as_spacys_entity_ruler_does(bert_nlp):
    doc = bert_nlp(overwrite_ents=True, ruler_patterns=RULER)(TEXT)
    expected = [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG"), ("Monday", "DATE")]
    assert ents(doc) == expected
    outside = [t for t in doc if t.ent_iob_ not in ("B", "I")]
    assert all(t.ent_iob_ == "O" and t.ent_type_ == "" and t.ent_id_ == "" for t in outside)
    # spaCy's own entity_ruler, run after a ruler with the same entities, resolves them alike.
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler", name="first").add_patterns(RULER)
    second = nlp.add_pipe("entity_ruler", name="second", config={"overwrite_ents": True})
    second.add_patterns([{"label": label, "pattern": text} for text, label in expected[:3]])
    assert ents(nlp(TEXT)) == expected


def test_prioritize_new_ents_filter_keeps_what_it_does_not_overlap(bert_nlp):
    nlp = bert_nlp(ents_filter={"@misc": "spacy.prioritize_new_ents_filter.v1"})
    doc = Doc(nlp.vocab, words=TEXT.split(), spaces=[True] * 12 + [False])
    doc.set_ents([Span(doc, 4, 5, label="CITY"), Span(doc, 11, 12, label="DATE")])
    doc = nlp(doc)
    assert ents(doc) == [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG"), ("Monday", "DATE")]


def test_overwrite_ents_and_another_filter_conflict(bert_nlp):
    with pytest.raises(DirectNERError, match="Set only one"):
        bert_nlp(overwrite_ents=True, ents_filter={"@misc": "spacy.first_longest_spans_filter.v1"})
    new = {"@misc": "spacy.prioritize_new_ents_filter.v1"}
    assert ents(bert_nlp(overwrite_ents=True, ents_filter=new)(TEXT)) == ents(bert_nlp(overwrite_ents=True)(TEXT))


def _preset_doc(vocab):
    doc = Doc(vocab, words=TEXT.split(), spaces=[True] * 12 + [False])
    doc.set_ents([Span(doc, 4, 5, label="CITY", kb_id="Q90")], missing=[], default="missing")
    return doc


def test_preset_entities_are_kept_exactly(bert_nlp):
    nlp = bert_nlp()
    doc = _preset_doc(nlp.vocab)
    missing_before = [t.i for t in doc if t.ent_iob == 0]
    doc = nlp(doc)
    assert ents(doc) == [("Angela Merkel", "PER"), ("Paris", "CITY"), ("United Nations", "ORG")]
    assert doc.ents[1].kb_id_ == "Q90"
    # Tokens no entity covers keep their 'missing' state: nothing was decided about them.
    in_ents = {i for e in doc.ents for i in range(e.start, e.end)}
    assert [t.i for t in doc if t.ent_iob == 0] == [i for i in missing_before if i not in in_ents]


def test_preset_entities_are_replaced_exactly_with_overwrite(bert_nlp):
    nlp = bert_nlp(overwrite_ents=True)
    doc = nlp(_preset_doc(nlp.vocab))
    assert ents(doc) == [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")]
    assert all(e.kb_id_ == "" for e in doc.ents)


def _annotated_doc(vocab, parse: bool):
    words = TEXT.split()
    kwargs = dict(
        words=words,
        spaces=[True] * (len(words) - 1) + [False],
        lemmas=[w.lower() + "_lemma" for w in words],
        pos=["PROPN", "PROPN", "VERB", "ADP", "PROPN", "PART", "VERB", "DET", "PROPN", "PROPN", "ADP", "PROPN", "PUNCT"],
        tags=["NNP", "NNP", "VBD", "IN", "NNP", "TO", "VB", "DT", "NNP", "NNPS", "IN", "NNP", "."],
        morphs=["Number=Sing"] * 2 + ["Tense=Past"] + [""] * 10,
        user_data={"source": "unit-test"},
    )
    if parse:
        kwargs.update(heads=[1, 2, 2, 2, 3, 6, 2, 9, 9, 6, 6, 10, 2], deps=["compound", "nsubj", "ROOT", "prep", "pobj", "aux", "xcomp", "det", "compound", "dobj", "prep", "pobj", "punct"])
    else:
        kwargs.update(sent_starts=[True] + [False] * 5 + [True] + [False] * 6)
    doc = Doc(vocab, **kwargs)
    doc.spans["mine"] = SpanGroup(doc, name="mine", spans=[Span(doc, 0, 2, "WHO"), Span(doc, 4, 5, "WHERE")], attrs={"k": [1, 2]})
    doc.spans["empty"] = []
    doc.cats = {"POLITICS": 1.0}
    doc._.note = {"checked": True}
    doc[4]._.flag = "capital"
    doc[0].norm_ = "angie"
    doc.tensor = np.arange(len(doc) * 3, dtype=np.float32).reshape(len(doc), 3)
    return doc


def _snapshot(doc):
    attrs = [ORTH, NORM, LEMMA, POS, TAG, MORPH, SENT_START, SPACY, IDX]
    if doc.has_annotation("DEP"):
        attrs += ["HEAD", "DEP"]
    return {
        "text": doc.text,
        "array": doc.to_array(attrs).tolist(),
        "sent_starts": doc.has_annotation("SENT_START") and [s.start for s in doc.sents],
        "spans": {k: ([(s.start, s.end, s.label_) for s in g], dict(g.attrs)) for k, g in doc.spans.items() if k != "direct_ner"},
        "cats": dict(doc.cats),
        "user_data": {k: v for k, v in doc.user_data.items()},
        "tensor": doc.tensor.tolist(),
    }


@pytest.fixture(scope="module")
def extensions():
    Doc.set_extension("note", default=None, force=True)
    Token.set_extension("flag", default=None, force=True)
    yield
    Doc.remove_extension("note")
    Token.remove_extension("flag")


@pytest.mark.parametrize("overwrite_ents", [False, True])
@pytest.mark.parametrize("parse", [False, True], ids=["sent_starts", "parse"])
def test_nothing_else_on_the_doc_changes(bert_nlp, extensions, overwrite_ents, parse):
    nlp = bert_nlp(overwrite_ents=overwrite_ents)
    doc = _annotated_doc(nlp.vocab, parse)
    before = _snapshot(doc)
    assert before["user_data"]  # the extensions live in user_data, so they are compared too
    out = nlp(doc)
    assert out is doc
    assert _snapshot(doc) == before
    assert doc._.note == {"checked": True} and doc[4]._.flag == "capital" and doc[0].norm_ == "angie"
    assert ents(doc) == [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")]


def test_sentences_are_not_written_to_a_doc_that_had_none(bert_nlp):
    doc = bert_nlp()(TEXT + " Jane Doe left London .")
    assert not doc.has_annotation("SENT_START")
    assert all(t.is_sent_start is None for t in doc[1:])
