"""The direct_ner component end to end, on tiny checkpoints whose predictions are known."""
import os
import shutil
import subprocess
import sys

import pytest
import spacy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example

import spacy_direct_use.inference
import spacy_direct_use.loading
from spacy_direct_use import DirectNER, DirectNERError
from spacy_direct_use.inference import DEFAULT_BATCH_TOKENS, PASS_COST_DIVISOR, length_batches

from conftest import ents, make_lookup_model, make_nlp

TEXT = "Angela Merkel flew to Paris to meet the United Nations."
EXPECTED = [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")]


def test_blank_pipeline_without_initialize(bert_dir):
    nlp = make_nlp(bert_dir)
    assert ents(nlp(TEXT)) == EXPECTED


def test_initialize_loads_the_model(bert_dir):
    nlp = make_nlp(bert_dir)
    nlp.initialize()
    assert nlp.get_pipe("direct_ner").labels == ("LOC", "ORG", "PER")
    assert ents(nlp(TEXT)) == EXPECTED


def test_bpe_model_with_multi_subword_tokens(tmp_path):
    rules = {"ĠAngel": "B-PER", "a": "I-PER", "ĠMer": "I-PER", "kel": "I-PER", "ĠPar": "B-LOC", "is": "I-LOC"}
    nlp = make_nlp(make_lookup_model(tmp_path / "bpe", rules, "bpe"))
    doc = nlp("Angela Merkel flew to Paris .")
    assert ents(doc) == [("Angela Merkel", "PER"), ("Paris", "LOC")]


@pytest.mark.parametrize("aggregation,label", [("first", "LOC"), ("average", "PER"), ("max", "PER")])
def test_aggregation_strategies_on_split_words(tmp_path, aggregation, label):
    # 'Merkel' is 'ĠMer' (weakly LOC) + 'kel' (strongly PER).
    rules = {"ĠMer": ("B-LOC", 0.3), "kel": ("B-PER", 1.0)}
    nlp = make_nlp(make_lookup_model(tmp_path / "bpe", rules, "bpe"), aggregation=aggregation)
    assert ents(nlp("met Merkel today")) == [("Merkel", label)]


def test_io_and_bioes_schemes(tmp_path):
    io = make_lookup_model(tmp_path / "io", {"angela": "PER", "merkel": "PER", "paris": "LOC"}, labels=["O", "PER", "LOC"])
    assert ents(make_nlp(io)(TEXT)) == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    bioes_labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "S-LOC"]
    bioes = make_lookup_model(tmp_path / "bioes", {"angela": "B-PER", "merkel": "E-PER", "paris": "S-LOC"}, labels=bioes_labels)
    assert ents(make_nlp(bioes)(TEXT)) == [("Angela Merkel", "PER"), ("Paris", "LOC")]


def test_inside_tag_after_outside_never_corrupts(tmp_path):
    # 'merkel' is I-PER after an O word, 'nations' I-ORG after a B-LOC word: invalid BIO. The
    # strong I- tags make B-PER I-PER and B-ORG I-ORG the most probable valid sequences, so the
    # entities are whole, one type each, and never 'United Nations' as LOC or a lone 'Merkel'.
    rules = {"merkel": ("I-PER", 2.0), "united": "B-LOC", "nations": ("I-ORG", 2.0)}
    doc = make_nlp(make_lookup_model(tmp_path / "m", rules))(TEXT)
    assert ents(doc) == [("Angela Merkel", "PER"), ("United Nations", "ORG")]


def test_label_map_renames_and_drops(bert_dir):
    nlp = make_nlp(bert_dir, label_map={"PER": "PERSON", "LOC": "GPE", "ORG": None})
    nlp.initialize()
    assert ents(nlp(TEXT)) == [("Angela Merkel", "PERSON"), ("Paris", "GPE")]
    assert nlp.get_pipe("direct_ner").labels == ("GPE", "PERSON")


def test_threshold_and_scores(tmp_path):
    weak = make_lookup_model(tmp_path / "weak", {"paris": "B-LOC", "angela": "B-PER"}, strength=0.15)
    nlp = make_nlp(weak, spans_key="scored")
    doc = nlp(TEXT)
    scores = doc.spans["scored"].attrs["scores"]
    assert [s.text for s in doc.spans["scored"]] == ["Angela", "Paris"]
    assert all(0.2 < s < 0.95 for s in scores)
    strict = make_nlp(weak, threshold=max(scores) + 0.01)
    assert ents(strict(TEXT)) == []


def test_spans_key_none_writes_no_span_group(bert_dir):
    doc = make_nlp(bert_dir, spans_key=None)(TEXT)
    assert len(doc.spans) == 0 and ents(doc) == EXPECTED


def test_pipe_batches_docs_and_matches_single_calls(bert_dir):
    nlp = make_nlp(bert_dir, forward_batch_size=3)
    texts = [TEXT, "Jane Doe", "", "London and Berlin . " * 40, "nothing here"] * 3
    assert [ents(d) for d in nlp.pipe(texts, batch_size=7)] == [ents(nlp(t)) for t in texts]
    assert set(nlp.get_pipe("direct_ner").timings) == {"tokenize", "forward", "decode", "annotate"}


def _batch_cost(batches, lengths, pass_cost):
    return sum(pass_cost + max(lengths[i] for i in batch) * len(batch) for batch in batches)


@pytest.mark.parametrize("batch_tokens", [10, 24, 120])
def test_forward_batches_respect_the_limits_and_pad_least(batch_tokens):
    """The cuts are the cheapest of all cuts within the limits (padded sub-words plus a
    cost per pass), found by brute force over every way to cut the sorted windows."""
    import itertools

    lengths = [1, 2, 2, 3, 5, 5, 5, 9, 9, 12]
    order = list(range(len(lengths)))
    batches = length_batches(order, lengths, batch_size=3, batch_tokens=batch_tokens)
    assert [i for batch in batches for i in batch] == order
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= batch_tokens
    pass_cost = batch_tokens / PASS_COST_DIVISOR
    cheapest = float("inf")
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        bounds = [0] + [i + 1 for i, cut in enumerate(cuts) if cut] + [len(order)]
        option = [order[a:b] for a, b in zip(bounds, bounds[1:])]
        if all(len(b) <= 3 and (len(b) == 1 or max(lengths[i] for i in b) * len(b) <= batch_tokens) for b in option):
            cheapest = min(cheapest, _batch_cost(option, lengths, pass_cost))
    assert _batch_cost(batches, lengths, pass_cost) == pytest.approx(cheapest)


def test_forward_batch_tokens_default_follows_the_device(bert_dir):
    runner = make_nlp(bert_dir).get_pipe("direct_ner")._ensure_loaded()
    assert runner.batch_tokens == DEFAULT_BATCH_TOKENS["cpu"]
    assert runner.batch_size == 128
    runner = make_nlp(bert_dir, forward_batch_tokens=50).get_pipe("direct_ner")._ensure_loaded()
    assert runner.batch_tokens == 50


def test_gold_word_docs(bert_dir):
    nlp = make_nlp(bert_dir)
    words = ["Angela", "Merkel", "flew", "to", "Paris", "."]
    doc = nlp(Doc(nlp.vocab, words=words, spaces=[True, True, True, True, False, False]))
    assert ents(doc) == [("Angela Merkel", "PER"), ("Paris", "LOC")]


def test_evaluate_reports_ents_scores(bert_dir):
    nlp = make_nlp(bert_dir)
    gold = nlp.make_doc(TEXT)
    gold.ents = [Span(gold, 0, 2, "PER"), Span(gold, 4, 5, "LOC")]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), gold)])
    assert scores["ents_p"] == pytest.approx(2 / 3) and scores["ents_r"] == 1.0
    assert set(scores["ents_per_type"]) == {"PER", "LOC", "ORG"}


@pytest.mark.slow  # a fresh Python process
def test_to_disk_and_offline_load_in_fresh_process(bert_dir, tmp_path):
    source = shutil.copytree(bert_dir, tmp_path / "source")
    nlp = make_nlp(source, label_map={"ORG": "ORGANISATION"})
    expected = ents(nlp(TEXT))
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(source)
    saved = tmp_path / "pipeline" / "direct_ner" / "model"
    assert (saved / "model.safetensors").exists() and (saved / "tokenizer.json").exists()
    assert not list(saved.glob("*.bin"))
    code = "import spacy, sys; nlp = spacy.load(sys.argv[1]); print([(e.text, e.label_) for e in nlp(sys.argv[2]).ents])"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pipeline"), TEXT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(expected)
    assert ("United Nations", "ORGANISATION") in expected


def test_missing_model_shows_add_pipe_line():
    with pytest.raises(DirectNERError, match=r'add_pipe\("direct_ner", config=\{"model"'):
        spacy.blank("en").add_pipe("direct_ner")


@pytest.mark.parametrize(
    "config,match",
    [
        ({"aggregation": "mean"}, "aggregation"),
        ({"window_mode": "pages"}, "window_mode"),
        ({"precision": "int4"}, "precision"),
        ({"window_size": 32, "window_overlap": 32}, "window_overlap"),
        ({"threshold": 2.0}, "threshold"),
        ({"forward_batch_size": 0}, "forward_batch_size"),
        ({"forward_batch_tokens": 0}, "forward_batch_tokens"),
    ],
)
def test_bad_settings_are_refused(bert_dir, config, match):
    with pytest.raises(DirectNERError, match=match):
        make_nlp(bert_dir, **config)


def test_config_types_are_validated_by_spacy(bert_dir):
    with pytest.raises(Exception, match="window_size"):
        make_nlp(bert_dir, window_size="large")


@pytest.mark.slow  # a fresh Python process
def test_component_is_registered_by_entry_point(tmp_path):
    """In a fresh process that never imports spacy_direct_use, spaCy finds the factory
    through the package's spacy_factories entry point alone."""
    code = (
        "import sys, spacy; pipe = spacy.blank('en').add_pipe('direct_ner', config={'model': 'x/y'}); "
        "print(type(pipe).__module__, type(pipe).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [DirectNER.__module__, "DirectNER"]


@pytest.mark.parametrize("window_mode", ["sentences", "strided"])
def test_window_modes_find_entities_and_leave_sentences_unset(bert_dir, window_mode):
    nlp = make_nlp(bert_dir, window_mode=window_mode, window_size=8, window_overlap=4)
    text = "I saw the cat . " * 20 + TEXT
    doc = nlp(text)
    assert ents(doc)[-3:] == EXPECTED
    assert not doc.has_annotation("SENT_START")  # guessed sentences are not written to the Doc


def test_bf16_autocast_on_cpu_gives_same_entities(bert_dir):
    assert ents(make_nlp(bert_dir, precision="bf16", device="cpu")(TEXT)) == EXPECTED


def test_bf16_on_a_cpu_with_bf16_units_casts_the_weights_once(bert_dir, tmp_path, monkeypatch):
    """Weights in bf16 for the forward passes (packed rows too), the fp32 model kept for to_disk."""
    monkeypatch.setattr(spacy_direct_use.inference, "cpu_has_bf16", lambda: True)
    nlp = make_nlp(bert_dir, precision="bf16", device="cpu")
    pipe = nlp.get_pipe("direct_ner")
    assert [ents(doc) for doc in nlp.pipe([TEXT] * 3)] == [EXPECTED] * 3
    runner = pipe._runner
    assert next(runner.model.parameters()).dtype == torch.bfloat16 and runner.autocast_dtype is None
    assert runner.mask_kind is not None and next(pipe._model.parameters()).dtype == torch.float32
    nlp.to_disk(tmp_path / "saved")
    assert ents(spacy.load(tmp_path / "saved", config={"components": {"direct_ner": {"precision": "fp32"}}})(TEXT)) == EXPECTED


def test_bf16_on_a_cpu_without_bf16_units_says_so(bert_dir, monkeypatch, caplog):
    monkeypatch.setattr(spacy_direct_use.inference, "cpu_has_bf16", lambda: False)
    nlp = make_nlp(bert_dir, precision="bf16", device="cpu")
    with caplog.at_level("WARNING", logger="spacy_direct_use"):
        assert ents(nlp(TEXT)) == EXPECTED
    assert "no bf16 units" in caplog.text and nlp.get_pipe("direct_ner")._runner.autocast_dtype == torch.bfloat16


def test_follows_thincs_device_by_default(bert_dir, monkeypatch):
    """With no device set, direct_ner runs where thinc's get_torch_default_device says (a GPU
    after spacy.require_gpu()); made to say 'meta' here, so a CPU-only machine can tell (the
    tag scheme is set: "auto" would run the model, which 'meta' cannot)."""
    monkeypatch.setattr(spacy_direct_use.loading, "get_torch_default_device", lambda: torch.device("meta"))
    assert make_nlp(bert_dir, tag_scheme="iob2").get_pipe("direct_ner")._ensure_loaded().device == torch.device("meta")
    assert make_nlp(bert_dir, device="cpu").get_pipe("direct_ner")._ensure_loaded().device == torch.device("cpu")
