"""Tests for the CoNLL-2003 reader/converter (spacy_direct_use.conll)."""

from collections import Counter
from pathlib import Path
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.vocab import Vocab

from spacy_direct_use.conll import (
    articles_to_docs,
    doc_iob2_tags,
    iob1_to_iob2,
    iob2_to_spans,
    main,
    read_conll,
    read_docs,
)

from conftest import ents

SAMPLE = """\
-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

In IN I-PP O
Paris NNP I-NP I-LOC
Berlin NNP I-NP B-LOC
New NNP I-NP B-LOC
York NNP I-NP I-LOC
Reuters NNP I-NP I-ORG
Smith NNP I-NP I-PER
"""


@pytest.fixture
def sample_path(tmp_path: Path) -> Path:
    path = tmp_path / "sample.conll"
    path.write_text(SAMPLE, encoding="utf8")
    return path


@pytest.mark.parametrize(
    "iob1,iob2",
    [
        (["O", "I-PER", "I-PER"], ["O", "B-PER", "I-PER"]),  # I- after O starts
        (["I-LOC"], ["B-LOC"]),  # I- at sentence start
        (["I-LOC", "B-LOC", "I-LOC"], ["B-LOC", "B-LOC", "I-LOC"]),  # B- separates
        (["I-ORG", "I-PER"], ["B-ORG", "B-PER"]),  # I-X after I-Y starts
        (["B-ORG", "I-PER"], ["B-ORG", "B-PER"]),  # I-X after B-Y starts
        (["B-MISC", "I-MISC"], ["B-MISC", "I-MISC"]),  # I-X after B-X continues
        (["O", "B-PER"], ["O", "B-PER"]),  # stray B- after O still starts
    ],
)
def test_iob1_to_iob2(iob1: List[str], iob2: List[str]) -> None:
    assert iob1_to_iob2(iob1) == iob2


@given(st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]), max_size=30))
def test_iob1_to_iob2_is_valid(iob1: List[str]) -> None:
    iob2 = iob1_to_iob2(iob1)
    assert [t[2:] for t in iob2] == [t[2:] for t in iob1]  # same types, same O tokens
    spans = iob2_to_spans(iob2)  # raises on an invalid IOB2 sequence
    assert sum(e - s for s, e, _ in spans) == sum(t != "O" for t in iob1)
    assert all(t.startswith("B-") for t, t1 in zip(iob2, iob1) if t1.startswith("B-"))


def test_iob1_invalid_tag() -> None:
    with pytest.raises(ValueError):
        iob1_to_iob2(["X-PER"])


def test_read_conll(sample_path: Path) -> None:
    articles = read_conll(sample_path)
    assert [len(a) for a in articles] == [2, 1]
    assert articles[0][1] == (["Peter", "Blackburn"], ["I-PER", "I-PER"])


def test_article_docs(sample_path: Path) -> None:
    docs = read_docs(sample_path, granularity="article")
    assert len(docs) == 2
    assert "-DOCSTART-" not in docs[0].text
    assert docs[0].text == "EU rejects German call . Peter Blackburn"
    assert [s.text for s in docs[0].sents] == ["EU rejects German call .", "Peter Blackburn"]
    assert ents(docs[0]) == [("EU", "ORG"), ("German", "MISC"), ("Peter Blackburn", "PER")]
    assert ents(docs[1]) == [
        ("Paris", "LOC"),
        ("Berlin", "LOC"),
        ("New York", "LOC"),
        ("Reuters", "ORG"),
        ("Smith", "PER"),
    ]
    assert doc_iob2_tags(docs[1]) == ["O", "B-LOC", "B-LOC", "B-LOC", "I-LOC", "B-ORG", "B-PER"]


def test_entities_do_not_cross_sentences(tmp_path: Path) -> None:
    path = tmp_path / "two.conll"
    path.write_text("A X X I-PER\n\nB X X I-PER\n", encoding="utf8")
    (doc,) = read_docs(path, granularity="article")
    assert ents(doc) == [("A", "PER"), ("B", "PER")]


def test_sentence_docs(sample_path: Path) -> None:
    docs = read_docs(sample_path, granularity="sentence")
    assert [d.text for d in docs][1:] == ["Peter Blackburn", "In Paris Berlin New York Reuters Smith"]
    assert all(len(list(d.sents)) == 1 for d in docs)
    assert len(read_docs(sample_path, granularity="sentence", max_articles=1)) == 2


def test_bad_granularity(sample_path: Path) -> None:
    with pytest.raises(ValueError):
        articles_to_docs(Vocab(), read_conll(sample_path), "paragraph")


def test_cli_roundtrip(sample_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus" / "sample.spacy"
    main([str(sample_path), str(out), "--granularity", "article"])
    docs = list(DocBin().from_disk(out).get_docs(Vocab()))
    expected = read_docs(sample_path, granularity="article")
    assert [ents(d) for d in docs] == [ents(d) for d in expected]
    assert [[s.start for s in d.sents] for d in docs] == [[0, 5], [0]]


def test_eng_testb_official_counts(conll_dir: Path) -> None:
    path = conll_dir / "eng.testb"
    articles = read_conll(path)
    assert len(articles) == 231
    assert sum(len(a) for a in articles) == 3453
    docs = articles_to_docs(Vocab(), articles, "article")
    assert sum(len(d) for d in docs) == 46435
    labels = Counter(e.label_ for d in docs for e in d.ents)
    assert sum(labels.values()) == 5648
    assert labels == {"LOC": 1668, "ORG": 1661, "PER": 1617, "MISC": 702}
    sentence_docs = articles_to_docs(Vocab(), articles, "sentence")
    assert len(sentence_docs) == 3453
    assert sum(len(d.ents) for d in sentence_docs) == 5648
