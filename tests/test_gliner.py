"""direct_ner on GLiNER checkpoints: entity types named per call, gliner's own scores, nothing
truncated. The models are built here with the gliner package (conftest.make_gliner), so
these tests run where gliner installs (its own CI environment); the rest of the suite
checks the errors that need no gliner."""
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_direct_use import DirectUseError
from spacy_direct_use.inference import first_pieces
from spacy_direct_use.windows import word_windows

from conftest import make_gliner, make_nlp

LABELS = ["person", "city", "organization"]
NO_GLINER = "gliner not installed: pip install 'spacy-direct-use[gliner]' (it needs transformers < 5.17; CI runs these in an environment of their own)"
TEXTS = [
    "Angela Merkel flew to Paris to meet Jane Doe in Berlin .",
    "The United Nations met in New York and Geneva on Monday .",
    "Acme Corporation hired Jane Doe from London last year .",
    "Washingtonians visited Berlin , Madrid and Rome .",
]


@pytest.fixture(scope="module")
def gliner_dir(tmp_path_factory) -> Path:
    pytest.importorskip("gliner", reason=NO_GLINER)
    return make_gliner(tmp_path_factory.mktemp("gliner") / "model")


@pytest.fixture(scope="module")
def reference(gliner_dir):
    from gliner import GLiNER

    return GLiNER.from_pretrained(str(gliner_dir), local_files_only=True)


def spans_of(doc, key="direct_ner"):
    group = doc.spans[key]
    return [(doc[s.start : s.end].start_char, doc[s.start : s.end].end_char, s.label_, score) for s, score in zip(group, group.attrs["scores"])]


def reference_spans(model, text, labels, **options):
    return [(e["start"], e["end"], e["label"], e["score"]) for e in model.predict_entities(text, labels, **options)]


def assert_same(found, expected):
    assert [f[:3] for f in found] == [e[:3] for e in expected]
    np.testing.assert_allclose([f[3] for f in found], [e[3] for e in expected], atol=1e-5)


# -- equal to gliner's predict_entities ---------------------------------------------------------------


@pytest.mark.parametrize("flat_ner", [True, False])
def test_entities_equal_predict_entities(gliner_dir, reference, flat_ner):
    nlp = make_nlp(gliner_dir, labels=LABELS, flat_ner=flat_ner)
    docs = list(nlp.pipe(TEXTS, batch_size=4))  # the windows of four Docs run together, padded
    for text, doc in zip(TEXTS, docs):
        assert [t.text for t in nlp.make_doc(text)] == [w for w, _, _ in reference.data_processor.words_splitter(text)]
        expected = reference_spans(reference, text, LABELS, flat_ner=flat_ner)
        assert expected, "the test model finds something in every text"
        assert_same(spans_of(doc), expected)


def test_token_level_gliner_equals_predict_entities(tmp_path):
    """A token-level GLiNER (start, end and inside scores per word, not span scores)."""
    pytest.importorskip("gliner", reason=NO_GLINER)
    from gliner import GLiNER

    path = make_gliner(tmp_path / "model", span_mode="token_level")
    reference = GLiNER.from_pretrained(str(path), local_files_only=True)
    assert type(reference).__name__ == "UniEncoderTokenGLiNER"
    nlp = make_nlp(path, labels=LABELS, threshold=0.01)
    for text, doc in zip(TEXTS, nlp.pipe(TEXTS)):
        expected = reference_spans(reference, text, LABELS, threshold=0.01)
        assert expected
        assert_same(spans_of(doc), expected)


def test_label_descriptions_and_threshold(gliner_dir, reference):
    labels = {"PER": "person", "LOC": "city"}
    nlp = make_nlp(gliner_dir, labels=labels, threshold=0.3)
    doc = nlp(TEXTS[0])
    expected = reference_spans(reference, TEXTS[0], labels, threshold=0.3)
    assert {label for _, _, label, _ in expected} <= {"PER", "LOC"}
    assert_same(spans_of(doc), expected)
    assert set(nlp.get_pipe("direct_ner").labels) == {"PER", "LOC"}


def test_labels_per_call(gliner_dir, reference):
    nlp = make_nlp(gliner_dir, labels=["person"])
    per_call = ["city", "organization"]
    docs = list(nlp.pipe(TEXTS, component_cfg={"direct_ner": {"labels": per_call, "threshold": 0.4}}))
    for text, doc in zip(TEXTS, docs):
        assert_same(spans_of(doc), reference_spans(reference, text, per_call, threshold=0.4))
    single = nlp(TEXTS[1], component_cfg={"direct_ner": {"labels": ["city"]}})
    assert_same(spans_of(single), reference_spans(reference, TEXTS[1], ["city"]))
    assert_same(spans_of(nlp(TEXTS[1])), reference_spans(reference, TEXTS[1], ["person"]))  # the config's again


def test_nested_spans_and_best_flat_ents(gliner_dir):
    nlp = make_nlp(gliner_dir, labels=LABELS, flat_ner=False, threshold=0.2)
    doc = nlp(TEXTS[0])
    spans = doc.spans["direct_ner"]
    overlapping = [(a, b) for a in spans for b in spans if a is not b and a.start < b.end and b.start < a.end]
    assert overlapping, "nested spans are kept"
    scores = dict(zip([(s.start, s.end, s.label_) for s in spans], spans.attrs["scores"]))
    ents = [(e.start, e.end, e.label_) for e in doc.ents]
    assert ents and all(a[1] <= b[0] for a, b in zip(ents, ents[1:]))
    for span in spans:  # every span left out of doc.ents overlaps a kept one that scores at least as high
        key = (span.start, span.end, span.label_)
        if key not in ents:
            assert any(e[0] < key[1] and key[0] < e[1] and scores[e] >= scores[key] for e in ents)


def test_label_map_renames_and_drops(gliner_dir, reference):
    nlp = make_nlp(gliner_dir, labels=LABELS, label_map={"person": "PER", "city": None})
    doc = nlp(TEXTS[0])
    expected = [(s, e, {"person": "PER"}.get(label, label), sc) for s, e, label, sc in reference_spans(reference, TEXTS[0], LABELS) if label != "city"]
    assert_same(spans_of(doc), expected)


# -- nothing truncated ---------------------------------------------------------------------------------


def test_long_doc_read_to_its_end(tmp_path):
    """A 1,500-word Doc in sentences of 10 words, the model reading at most 12 words: each
    sentence is its own window, so the Doc's entities are those of its sentences read one
    by one, the last included. gliner itself reads the first 12 words of the Doc only."""
    pytest.importorskip("gliner", reason=NO_GLINER)
    from gliner import GLiNER

    path = make_gliner(tmp_path / "model", max_len=12)
    reference = GLiNER.from_pretrained(str(path), local_files_only=True)
    sentences = [TEXTS[i % 3].replace(" .", "") .split()[:9] for i in range(149)] + [["Jane", "Doe", "flew", "to", "Madrid", "and", "Rome", "with", "Angela"]]
    sentences = [" ".join(words) + " ." for words in sentences]
    text = " ".join(sentences)
    nlp = make_nlp(path, labels=LABELS, threshold=0.3)
    doc = nlp(text)
    assert len([t for t in doc if not t.is_space]) == 1500
    expected, offset = [], 0
    for sentence in sentences:
        expected += [(s + offset, e + offset, label, sc) for s, e, label, sc in reference_spans(reference, sentence, LABELS, threshold=0.3)]
        offset += len(sentence) + 1
    assert_same(spans_of(doc), expected)
    last_start = len(text) - len(sentences[-1])
    assert any(start >= last_start for start, _, _, _ in spans_of(doc)), "the last sentence's entities are found"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truncated = reference_spans(reference, text, LABELS, threshold=0.3)
    assert truncated and max(end for _, end, _, _ in truncated) <= len(" ".join(sentences[:2]))


def test_long_sentence_in_strides_within_the_encoder(tmp_path):
    """One 200-word sentence, an encoder of 64 sub-words: every pass fits the encoder with
    the label prompt and no word is cut off; each entity is gliner's reading of the
    stride whose core holds its first word, overlaps resolved by gliner's greedy search."""
    pytest.importorskip("gliner", reason=NO_GLINER)
    from gliner import GLiNER
    from gliner.decoding.decoder import Span as GlinerSpan

    path = make_gliner(tmp_path / "model", max_positions=64)
    reference = GLiNER.from_pretrained(str(path), local_files_only=True)
    nlp = make_nlp(path, labels=LABELS, threshold=0.3)
    reader = nlp.get_pipe("direct_ner")._ensure_loaded()
    seen = []
    run_batch = reader.model.run_batch

    def recording(batch, **kwargs):
        seen.append((batch["input_ids"].shape[1], batch["words_mask"].max(dim=1).values.tolist(), [len(t) for t in batch["tokens"]]))
        return run_batch(batch, **kwargs)

    reader.model.run_batch = recording
    words = (" ".join(TEXTS[:3]).replace(" .", "").split() * 10)[:200]
    doc = nlp(" ".join(words))
    assert len(seen) >= 1 and all(width <= 64 for width, _, _ in seen)
    assert all(masked == n for _, maxima, lengths in seen for masked, n in zip(maxima, lengths)), "no word cut off"

    first_piece = first_pieces(reader.tokenizer, [words])[0]
    windows = word_windows(first_piece, [0], reader.max_len, 64 - reader.prompt_pieces(LABELS), 2 * reader.max_width)
    assert len(windows) > 3
    expected = []
    for start, end, core_start, core_end in windows:
        for e in reference.predict_entities(" ".join(words[start:end]), LABELS, threshold=0.3):
            first = start + len(" ".join(words[start:end])[: e["start"]].split())
            last = first + len(e["text"].split()) - 1
            if core_start <= first < core_end:
                expected.append(GlinerSpan(first, last, e["label"], e["score"]))
    expected = reference.decoder.greedy_search(expected, flat_ner=True)
    found = [(s.start, s.end - 1, s.label_) for s in doc.spans["direct_ner"]]
    assert found == [(e.start, e.end, e.entity_type) for e in expected]
    np.testing.assert_allclose(doc.spans["direct_ner"].attrs["scores"], [e.score for e in expected], atol=1e-5)
    assert max(s.end for s in doc.spans["direct_ner"]) >= 190


def test_word_pieces_without_a_fast_tokenizer(gliner_dir):
    """A slow tokenizer has no word_ids(): each word's pieces are counted alone, the same counts."""
    reader = make_nlp(gliner_dir, labels=LABELS).get_pipe("direct_ner")._ensure_loaded()
    words = [TEXTS[3].split(), [], ["a", "Washingtonians", "Geneva"]]
    fast = first_pieces(reader.tokenizer, words)

    class Slow:
        is_fast = False
        tokenize = reader.tokenizer.tokenize

    assert [f.tolist() for f in first_pieces(Slow(), words)] == [f.tolist() for f in fast]
    assert fast[1].tolist() == [0] and fast[2][-1] >= 3


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.integers(0, 6), min_size=0, max_size=80),
    cuts=st.lists(st.integers(1, 79), max_size=10),
    max_words=st.integers(1, 30),
    max_pieces=st.integers(1, 40),
    overlap=st.integers(0, 10),
)
def test_word_windows_fit_both_limits_and_tile(pieces, cuts, max_words, max_pieces, overlap):
    first_piece = np.concatenate(([0], np.cumsum(pieces))).astype(np.int64)
    n = len(pieces)
    windows = word_windows(first_piece, [0] + cuts, max_words, max_pieces, overlap)
    covered = np.zeros(n, dtype=int)
    for start, end, core_start, core_end in windows:
        assert start <= core_start <= core_end <= end
        assert end - start <= max_words or end - start == 1
        assert first_piece[end] - first_piece[start] <= max_pieces or end - start == 1
        covered[core_start:core_end] += 1
    assert (covered == 1).all(), "cores tile the words exactly once"
    for cut in cuts:  # a sentence start inside a window means the window packs whole sentences
        for start, end, core_start, core_end in windows:
            if start < cut < end and (core_start, core_end) == (start, end):
                assert not any(s < cut < e and (cs, ce) != (s, e) for s, e, cs, ce in windows)


# -- the core's promises --------------------------------------------------------------------------------


def test_save_and_load_offline(gliner_dir, tmp_path, reference):
    copy = tmp_path / "copy"
    shutil.copytree(gliner_dir, copy)
    nlp = make_nlp(copy, labels=LABELS)
    before = [spans_of(doc) for doc in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(copy)
    saved = tmp_path / "pipeline" / "direct_ner" / "model"
    assert (saved / "gliner_config.json").is_file() and (saved / "model.safetensors").is_file()
    manifest = json.loads((tmp_path / "pipeline" / "direct_ner" / "manifest.json").read_text())
    assert {"model/gliner_config.json", "model/model.safetensors"} <= {f["path"] for f in manifest["files"]}
    loaded = spacy.load(tmp_path / "pipeline")
    after = [spans_of(doc) for doc in loaded.pipe(TEXTS)]
    for found, expected in zip(after, before):
        assert_same(found, expected)
    assert loaded.get_pipe("direct_ner").labels == tuple(sorted(LABELS))
    from_bytes = spacy.blank("en")
    from_bytes.add_pipe("direct_ner", config={"model": str(gliner_dir), "labels": LABELS})
    from_bytes.from_bytes(loaded.to_bytes())
    assert_same(spans_of(from_bytes(TEXTS[0])), before[0])
    saved_model = spacy.blank("en")  # the saved model directory is a GLiNER checkpoint itself
    saved_model.add_pipe("direct_ner", config={"model": str(saved), "labels": LABELS})
    assert_same(spans_of(saved_model(TEXTS[0])), before[0])


def test_precision_runs_and_saves_the_stored_weights(gliner_dir, tmp_path):
    nlp = make_nlp(gliner_dir, labels=LABELS, precision="bf16")
    fp32 = make_nlp(gliner_dir, labels=LABELS)
    found, expected = spans_of(nlp(TEXTS[0])), spans_of(fp32(TEXTS[0]))
    assert found and [f[:3] for f in found] == [e[:3] for e in expected]
    np.testing.assert_allclose([f[3] for f in found], [e[3] for e in expected], atol=0.02)
    nlp.to_disk(tmp_path / "pipeline")
    from safetensors import safe_open

    with safe_open(tmp_path / "pipeline" / "direct_ner" / "model" / "model.safetensors", "pt") as saved:
        assert {str(saved.get_tensor(k).dtype) for k in saved.keys()} == {"torch.float32"}


def test_pipe_yields_per_batch_and_keeps_existing_ents(gliner_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "CITY", "pattern": "Paris"}])
    nlp.add_pipe("direct_ner", config={"model": str(gliner_dir), "labels": LABELS})
    read = []

    def stream():
        for text in TEXTS * 3:
            read.append(text)
            yield text

    first = next(iter(nlp.pipe(stream(), batch_size=2)))
    assert len(read) <= 2
    assert ("Paris", "CITY") in [(e.text, e.label_) for e in first.ents]
    assert len(first.ents) > 1, "the model's entities fill the gaps"


def test_bad_settings_are_coded_errors(gliner_dir):
    nlp = make_nlp(gliner_dir)
    with pytest.raises(DirectUseError, match=r"\[direct_ner E071\].*labels"):
        nlp(TEXTS[0])
    with pytest.raises(DirectUseError, match=r"E061"):
        nlp(TEXTS[0], component_cfg={"direct_ner": {"labels": ["person", " "]}})
    with pytest.raises(DirectUseError, match=r"E008.*threshold"):
        nlp(TEXTS[0], component_cfg={"direct_ner": {"labels": LABELS, "threshold": 2}})
    with pytest.raises(DirectUseError, match=r"E008.*flat_ner"):
        nlp(TEXTS[0], component_cfg={"direct_ner": {"labels": LABELS, "flat_ner": "no"}})
    with pytest.raises(DirectUseError, match=r"E065.*hypothesis_template"):
        nlp(TEXTS[0], component_cfg={"direct_ner": {"hypothesis_template": "{}"}})
    with pytest.raises(DirectUseError, match=r"E073"):
        nlp(TEXTS[0], component_cfg={"direct_ner": {"labels": [f"type {i}" for i in range(40)]}})


# -- errors that need no gliner ---------------------------------------------------------------------------


def test_gliner_checkpoint_without_gliner_names_the_extra(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "gliner_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "gliner", None)  # as if not installed
    nlp = make_nlp(model, labels=LABELS)
    with pytest.raises(DirectUseError, match=r"\[direct_ner E070\].*spacy-direct-use\[gliner\]"):
        nlp(TEXTS[0])


def test_running_text_alignment_is_refused_for_gliner(tmp_path, monkeypatch):
    """GLiNER reads the Doc's tokens as its words: alignment_mode "split" is a coded error,
    raised before gliner is imported or any weight loads."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "gliner_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "gliner", None)
    nlp = make_nlp(model, labels=LABELS, alignment_mode="split")
    doc = nlp.make_doc(TEXTS[0])
    with pytest.raises(DirectUseError, match=r"\[direct_ner E074\].*GLiNER.*'split'"):
        nlp.get_pipe("direct_ner")(doc)
    assert not doc.ents and not doc.spans


def test_labels_given_to_a_token_classifier(bert_dir):
    with pytest.raises(DirectUseError, match=r"\[direct_ner E072\].*\['LOC', 'ORG', 'PER'\].*\['product'\]"):
        make_nlp(bert_dir, labels=["product"])("Angela Merkel visited Paris.")
    nlp = make_nlp(bert_dir)
    assert [e.label_ for e in nlp("Angela Merkel visited Paris.").ents] == ["PER", "LOC"]
    with pytest.raises(DirectUseError, match=r"E072"):
        list(nlp.pipe(["Angela Merkel visited Paris."], component_cfg={"direct_ner": {"labels": ["product"]}}))
    threshold = nlp("Angela Merkel visited Paris.", component_cfg={"direct_ner": {"threshold": 1.0}})
    assert not threshold.ents  # the per-call threshold reaches a token classifier too


def test_ray_predictor_writes_gliner_entities(gliner_dir, tmp_path, reference):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("ray", reason="ray not installed (pip install 'spacy-direct-use[ray]')")
    from spacy_direct_use.ray import DirectPredictor

    make_nlp(gliner_dir, labels=LABELS).to_disk(tmp_path / "pipeline")
    out = DirectPredictor(pipeline=str(tmp_path / "pipeline"))(pa.table({"text": TEXTS}))
    for text, rows in zip(TEXTS, out.column("entities").to_pylist()):
        found = [(r["start_char"], r["end_char"], r["label"], r["score"]) for r in rows]
        assert_same(found, reference_spans(reference, text, LABELS))


def test_evaluate_gliner_workflow(gliner_dir, tmp_path, reference):
    """`spacy project run evaluate-gliner` assembles the GLiNER config and scores it with
    `spacy evaluate`: its P/R/F are those of gliner's own entities against the gold."""
    from test_project import make_project, workflow_conll_dir

    from spacy_direct_use.conll import iob1_to_iob2, iob2_to_spans, read_conll

    project, conll_dir = make_project(tmp_path), workflow_conll_dir(tmp_path)
    cmd = [sys.executable, "-m", "spacy", "project", "run", "evaluate-gliner", str(project)]
    cmd += ["--vars.gliner_model", str(gliner_dir), "--vars.conll_dir", str(conll_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    metrics = json.loads((project / "metrics" / "gliner.json").read_text())
    labels = {"PER": "person", "ORG": "organization", "LOC": "location", "MISC": "miscellaneous"}
    predicted = gold = correct = 0
    for words, tags in (s for article in read_conll(conll_dir / "eng.testb") for s in article):
        text = " ".join(words)
        starts = np.cumsum([0] + [len(w) + 1 for w in words])
        truth = {(int(starts[s]), int(starts[e - 1] + len(words[e - 1])), label) for s, e, label in iob2_to_spans(iob1_to_iob2(tags))}
        found = {(s, e, label) for s, e, label, _ in reference_spans(reference, text, labels)}
        predicted, gold, correct = predicted + len(found), gold + len(truth), correct + len(found & truth)
    precision = correct / predicted if predicted else 0.0
    assert metrics["ents_p"] == pytest.approx(precision) and metrics["ents_r"] == pytest.approx(correct / gold)


GLINER_WORKERS = """
import json, sys
import spacy, torch
torch.set_num_threads(2)
(torch.randn(1500, 1500) @ torch.randn(1500, 1500)).sum()  # a live OpenMP pool in the parent
nlp = spacy.blank("en")
nlp.add_pipe("direct_ner", config={"model": sys.argv[1], "labels": ["person", "city"]})
texts = json.loads(sys.argv[2])
run = lambda **kw: [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=2, **kw)]
single = run()  # the model has run in the parent
print("RESULT " + json.dumps({"single": single, "multi": run(n_process=2)}))
"""


def test_pipe_with_worker_processes(gliner_dir):
    """nlp.pipe(n_process=2) after the model ran in the parent: no deadlock, the same entities
    (in a subprocess with a timeout, so a deadlock fails the test rather than hanging it)."""
    proc = subprocess.run(
        [sys.executable, "-c", GLINER_WORKERS, str(gliner_dir), json.dumps(TEXTS * 2)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["multi"] == result["single"] and any(result["single"])
