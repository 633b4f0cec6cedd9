"""Zero-shot direct_textcat: labels chosen per call, on NLI checkpoints (equal to transformers'
zero-shot-classification pipeline) and on sentence-embedding checkpoints (cosine to each
label's embedding, equal to sentence-transformers' own computation)."""
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.training import Example

from conftest import make_nli_classifier, make_sentence_encoder, make_sequence_classifier
from spacy_direct_use import DirectUseError
from spacy_direct_use.zeroshot import SIMILARITY_SCALE

LABELS = ["politics", "sports", "science"]
TEXTS = [
    "Angela Merkel flew to Paris to meet Emmanuel Macron.",
    "The United Nations met in New York and Geneva on Monday.",
    "a b c d e f g",
    "Acme Corporation hired Jane Doe from London last year. Washingtonians visited Berlin , Madrid and Rome .",
]
NLI_LAYOUTS = {
    "ENTAILMENT in the middle": (["CONTRADICTION", "ENTAILMENT", "NEUTRAL"], "wordpiece"),
    "entailment first (contradiction is then the last column)": (["entailment", "neutral", "contradiction"], "wordpiece"),
    "Entails last, RoBERTa pair tokens": (["contradiction", "neutral", "Entails"], "bpe"),
}


def zeroshot(model: Path, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_textcat", config={"model": str(model), **config})
    return nlp


def pipeline_scores(model: Path, text: str, labels, multi_label: bool, template: str = "This example is {}.") -> dict:
    transformers = pytest.importorskip("transformers")
    classify = transformers.pipeline("zero-shot-classification", model=str(model), device=-1)
    out = classify(text, candidate_labels=list(labels), multi_label=multi_label, hypothesis_template=template)
    return dict(zip(out["labels"], out["scores"]))


@pytest.fixture(scope="module", params=list(NLI_LAYOUTS))
def nli_dir(request, tmp_path_factory) -> Path:
    labels, kind = NLI_LAYOUTS[request.param]
    return make_nli_classifier(tmp_path_factory.mktemp("nli") / "model", labels, kind)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    return make_sentence_encoder(tmp_path_factory.mktemp("st") / "model")


@pytest.mark.parametrize("multi_label", [False, True])
def test_nli_equals_transformers_pipeline(nli_dir, multi_label):
    nlp = zeroshot(nli_dir, labels=LABELS, multi_label=multi_label)
    assert nlp.get_pipe("direct_textcat").route.NAME == "nli"
    for doc, text in zip(nlp.pipe(TEXTS, batch_size=3), TEXTS):
        expected = pipeline_scores(nli_dir, text, LABELS, multi_label)
        assert set(doc.cats) == set(LABELS)
        for label in LABELS:
            assert doc.cats[label] == pytest.approx(expected[label], abs=1e-5)


def test_nli_template_and_a_single_label_as_the_pipeline_reads_them(nli_dir):
    nlp = zeroshot(nli_dir, labels=["sports"], hypothesis_template="The topic is {}!")
    doc = nlp(TEXTS[1])
    expected = pipeline_scores(nli_dir, TEXTS[1], ["sports"], multi_label=False, template="The topic is {}!")
    assert doc.cats["sports"] == pytest.approx(expected["sports"], abs=1e-5)  # one label: entailment vs contradiction


def test_labels_per_call(nli_dir):
    nlp = zeroshot(nli_dir)
    first = list(nlp.pipe(TEXTS, component_cfg={"direct_textcat": {"labels": ["red", "green"]}}))
    second = nlp(TEXTS[0], component_cfg={"direct_textcat": {"labels": {"Sports": "sports", "World": "world news"}, "multi_label": True}})
    assert [set(d.cats) for d in first] == [{"red", "green"}] * len(TEXTS)
    assert set(second.cats) == {"Sports", "World"}
    expected = pipeline_scores(nli_dir, TEXTS[0], ["sports", "world news"], multi_label=True)
    assert second.cats["World"] == pytest.approx(expected["world news"], abs=1e-5)


def test_pairs_of_a_batch_run_in_few_passes(nli_dir):
    nlp = zeroshot(nli_dir, labels=LABELS)
    pipe = nlp.get_pipe("direct_textcat")
    runner = pipe._ensure_loaded()
    calls = []
    runner.model.register_forward_hook(lambda *args: calls.append(1))
    list(nlp.pipe(TEXTS * 4, batch_size=16))
    assert len(calls) <= 3  # 48 short pairs in a few length-sorted passes (transformers' pipeline: 48 at its batch_size 1)


def test_embedding_route_equals_sentence_transformers(encoder_dir):
    st = pytest.importorskip("sentence_transformers")
    descriptions = {"Politics": "politics and government", "Sports": "sports news", "Science": "science and research"}
    nlp = zeroshot(encoder_dir, labels=descriptions)
    assert nlp.get_pipe("direct_textcat").route.NAME == "embedding"
    nlp.initialize()
    assert nlp.get_pipe("direct_textcat").is_multi_label is False
    model = st.SentenceTransformer(str(encoder_dir), device="cpu")
    cos = model.similarity(model.encode(TEXTS), model.encode(list(descriptions.values()))).numpy()
    for doc, row in zip(nlp.pipe(TEXTS), cos):
        expected = np.exp(SIMILARITY_SCALE * row) / np.exp(SIMILARITY_SCALE * row).sum()
        np.testing.assert_allclose([doc.cats[k] for k in descriptions], expected, rtol=1e-4, atol=1e-6)
    multi = nlp(TEXTS[0], component_cfg={"direct_textcat": {"multi_label": True}})
    np.testing.assert_allclose([multi.cats[k] for k in descriptions], np.clip(cos[0], 0, 1), atol=1e-5)


def test_label_embeddings_computed_once_per_label_set(encoder_dir):
    nlp = zeroshot(encoder_dir, labels=LABELS)
    pipe = nlp.get_pipe("direct_textcat")
    list(nlp.pipe(TEXTS))
    list(nlp.pipe(TEXTS, component_cfg={"direct_textcat": {"labels": ["a", "b"]}}))
    list(nlp.pipe(TEXTS))
    assert sorted(pipe.route.label_vectors) == [("a", "b"), tuple(LABELS)]


def test_a_long_doc_gets_categories_from_its_end(nli_dir, encoder_dir):
    body = " ".join(["a b c d e f g ."] * 1300)  # 10,400 words
    for model in (nli_dir, encoder_dir):
        nlp = zeroshot(model, labels=LABELS)
        doc = nlp(body)
        assert len(doc) > 10_000 and set(doc.cats) == set(LABELS)
        assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-6)
        other = nlp(body + " Angela Merkel flew to Paris to meet Emmanuel Macron in Geneva on Monday .")
        assert other.cats != doc.cats  # the last sentence is read


def test_per_sentence_categories(nli_dir):
    nlp = zeroshot(nli_dir, labels=LABELS, spans_key="sentences")
    doc = nlp("Angela Merkel flew to Paris. The United Nations met in Geneva.")
    group = doc.spans["sentences"]
    assert [s.text for s in group] == ["Angela Merkel flew to Paris.", "The United Nations met in Geneva."]
    for span, cats in zip(group, group.attrs["cats"]):
        expected = pipeline_scores(nli_dir, span.text, LABELS, multi_label=False)
        assert cats == pytest.approx(expected, abs=1e-5)


def test_save_and_load_offline(nli_dir, encoder_dir, tmp_path):
    for i, model in enumerate((nli_dir, encoder_dir)):
        nlp = zeroshot(model, labels=LABELS)
        expected = [nlp(t).cats for t in TEXTS]
        nlp.to_disk(tmp_path / str(i))
        loaded = spacy.load(tmp_path / str(i))
        assert [loaded(t).cats == pytest.approx(e, abs=1e-6) for t, e in zip(TEXTS, expected)] == [True] * len(TEXTS)
        assert loaded.get_pipe("direct_textcat").labels == tuple(LABELS)


def test_spacys_textcat_scorer_on_gold_cats(encoder_dir):
    nlp = zeroshot(encoder_dir, labels=["politics", "sports"])
    examples = []
    for text, gold in ((TEXTS[0], "politics"), (TEXTS[2], "sports")):
        reference = nlp.make_doc(text)
        reference.cats = {"politics": float(gold == "politics"), "sports": float(gold == "sports")}
        examples.append(Example(nlp.make_doc(text), reference))
    scores = nlp.evaluate(examples)
    assert 0.0 <= scores["cats_score"] <= 1.0 and "cats_micro_f" in scores and set(scores["cats_f_per_type"]) == {"politics", "sports"}


def test_bad_input(nli_dir, encoder_dir, tmp_path):
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E060\].*NLI"):
        zeroshot(nli_dir)(TEXTS[0])
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E060\].*sentence encoder"):
        zeroshot(encoder_dir)(TEXTS[0])
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E060\]"):
        zeroshot(nli_dir)(TEXTS[0], component_cfg={"direct_textcat": {"labels": []}})
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E061\].*more than once"):
        zeroshot(nli_dir, labels=["a", "b", "a"])
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E061\]"):
        zeroshot(nli_dir, labels=["a", ""])
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E061\]"):
        zeroshot(nli_dir)(TEXTS[0], component_cfg={"direct_textcat": {"labels": "sports"}})
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E062\]"):
        zeroshot(nli_dir, labels=LABELS, hypothesis_template="This example is about")
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E062\]"):
        zeroshot(nli_dir)(TEXTS[0], component_cfg={"direct_textcat": {"labels": LABELS, "hypothesis_template": "{} {}"}})
    sentiment = make_sequence_classifier(tmp_path / "sentiment", ["NEGATIVE", "POSITIVE"])
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E063\].*NEGATIVE"):
        zeroshot(sentiment, labels=LABELS)(TEXTS[0])
    assert set(zeroshot(sentiment, labels=["POSITIVE", "NEGATIVE"])(TEXTS[0]).cats) == {"NEGATIVE", "POSITIVE"}
    placeholder = make_nli_classifier(tmp_path / "placeholder", ["LABEL_0", "LABEL_1", "LABEL_2"])
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E063\].*id2label"):
        zeroshot(placeholder, labels=LABELS)(TEXTS[0])
    named = zeroshot(placeholder, labels=LABELS, id2label=["contradiction", "neutral", "entailment"])
    assert named.get_pipe("direct_textcat").route.NAME == "nli" and set(named(TEXTS[0]).cats) == set(LABELS)
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E065\].*threshold"):
        zeroshot(nli_dir, labels=LABELS)(TEXTS[0], component_cfg={"direct_textcat": {"threshold": 0.2}})
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E066\].*NLI"):
        zeroshot(nli_dir, labels=LABELS, precision="int8")(TEXTS[0])
    doc = spacy.blank("en")(TEXTS[0])
    doc.cats = {"mine": 1.0}
    with pytest.raises(DirectUseError):
        zeroshot(nli_dir).get_pipe("direct_textcat")(doc)
    assert doc.cats == {"mine": 1.0}
