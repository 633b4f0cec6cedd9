"""precision "int8": ONNX Runtime int8 on CPU, on tiny checkpoints with a real transformer layer."""
import sys

import onnx
import pytest
import spacy
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from spacy_direct_use import DirectNERError
from spacy_direct_use.inference import Runner
from spacy_direct_use.int8 import Int8Classifier

from conftest import make_lookup_model
from conftest import make_nlp as blank_nlp

TEXT = "Angela Merkel flew to Paris to meet the United Nations."
EXPECTED = {
    "wordpiece": [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")],
    "bpe": [("Angela Merkel", "PER"), ("Paris", "LOC")],
}
RULES = {
    "wordpiece": {"angela": "B-PER", "merkel": "I-PER", "paris": "B-LOC", "united": "B-ORG", "nations": "I-ORG"},
    "bpe": {"ĠAngel": "B-PER", "a": "I-PER", "ĠMer": "I-PER", "kel": "I-PER", "ĠPar": "B-LOC", "is": "I-LOC"},
}
ENCODER_LINEAR_LAYERS = 6  # per transformer layer: query, key, value, attention output, intermediate, output


def with_transformer_layer(lookup_dir, out_dir):
    """The lookup model plus one randomly initialised (small-weight) transformer layer: its
    matrix products are what int8 quantizes, and the logits margin stays large."""
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(lookup_dir, num_hidden_layers=1)
    model.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(lookup_dir).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module", params=["wordpiece", "bpe"])
def layered(request, tmp_path_factory):
    """(model directory, the entities it finds in TEXT) for a BERT and a RoBERTa checkpoint."""
    tmp = tmp_path_factory.mktemp(request.param)
    lookup = make_lookup_model(tmp / "lookup", RULES[request.param], request.param)
    return with_transformer_layer(lookup, tmp / "layered"), EXPECTED[request.param]


def make_nlp(model_dir, **config):
    """conftest's pipeline, model loaded."""
    nlp = blank_nlp(model_dir, **config)
    nlp.initialize()
    return nlp


def ents_and_scores(doc):
    return [(e.text, e.label_) for e in doc.ents], doc.spans["direct_ner"].attrs["scores"]


def quantized_ops(nlp):
    """(int8 matrix products, fp32 ones) in the ONNX graph direct_ner runs."""
    runner_model = nlp.get_pipe("direct_ner")._runner.model
    assert isinstance(runner_model, Int8Classifier)
    ops = [node.op_type for node in onnx.load_from_string(runner_model.onnx_model).graph.node]
    return ops.count("MatMulInteger"), ops.count("MatMul")


def test_int8_gives_the_fp32_entities(layered):
    layered_dir, expected = layered
    fp32_ents, fp32_scores = ents_and_scores(make_nlp(layered_dir)(TEXT))
    int8 = make_nlp(layered_dir, precision="int8")
    int8_ents, int8_scores = ents_and_scores(int8(TEXT))
    assert fp32_ents == int8_ents == expected
    assert int8_scores == pytest.approx(fp32_scores, abs=0.02)
    assert quantized_ops(int8)[0] == ENCODER_LINEAR_LAYERS


def test_int8_keeps_the_classification_head_fp32(layered):
    layered_dir, _ = layered
    int8 = make_nlp(layered_dir, precision="int8")
    n_int8, n_fp32 = quantized_ops(int8)
    assert n_int8 == ENCODER_LINEAR_LAYERS
    assert n_fp32 >= 1  # the head (attention's own score products may add more)


def test_int8_pipeline_saves_and_loads(layered, tmp_path):
    layered_dir, _ = layered
    nlp = make_nlp(layered_dir, precision="int8")
    expected = ents_and_scores(nlp(TEXT))
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert ents_and_scores(loaded(TEXT)) == expected  # the same weights quantize the same way
    assert quantized_ops(loaded)[0] == ENCODER_LINEAR_LAYERS


def test_a_saved_int8_pipeline_loads_its_graph_without_quantizing_again(layered, tmp_path, monkeypatch):
    layered_dir, _ = layered
    nlp = make_nlp(layered_dir, precision="int8")
    expected = ents_and_scores(nlp(TEXT))
    nlp.to_disk(tmp_path / "int8")
    make_nlp(layered_dir).to_disk(tmp_path / "fp32")
    assert (tmp_path / "int8" / "direct_ner" / "model" / "int8.onnx").is_file()
    assert not (tmp_path / "fp32" / "direct_ner" / "model" / "int8.onnx").exists()

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr("spacy_direct_use.int8._export", no_export)
    loaded = spacy.load(tmp_path / "int8")
    assert ents_and_scores(loaded(TEXT)) == expected
    from_bytes = spacy.load(tmp_path / "int8")
    from_bytes.get_pipe("direct_ner").from_bytes(nlp.get_pipe("direct_ner").to_bytes())
    assert ents_and_scores(from_bytes(TEXT)) == expected


def test_int8_session_is_rebuilt_in_another_process(layered, monkeypatch):
    layered_dir, _ = layered
    nlp = make_nlp(layered_dir, precision="int8")
    expected = ents_and_scores(nlp(TEXT))
    model = nlp.get_pipe("direct_ner")._runner.model
    session = model.session
    monkeypatch.setattr("os.getpid", lambda: -42)  # as in a forked nlp.pipe(n_process=...) worker
    assert ents_and_scores(nlp(TEXT)) == expected
    assert model.session is not session


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_int8_on_a_gpu_device_is_refused_in_the_config(bert_dir, device):
    nlp = spacy.blank("en")
    with pytest.raises(DirectNERError, match=r'precision "int8" runs on CPU only.*"fp16"'):
        nlp.add_pipe("direct_ner", config={"model": str(bert_dir), "precision": "int8", "device": device})


def test_int8_on_a_gpu_device_is_refused_at_load(bert_dir):
    # device unset follows spacy.require_gpu(): the runner then gets a CUDA device
    model = AutoModelForTokenClassification.from_pretrained(bert_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(bert_dir)
    with pytest.raises(DirectNERError, match=r"runs on CPU only, but the model would run on 'cuda'"):
        Runner(model, tokenizer, torch.device("cuda"), "int8", 8, None)


def test_int8_without_onnxruntime_says_what_to_install(bert_dir, monkeypatch):
    for module in ("onnxruntime", "onnxruntime.quantization"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import onnxruntime...` fail
    nlp = blank_nlp(bert_dir, precision="int8")
    with pytest.raises(DirectNERError, match=r"'onnxruntime' is not installed.*spacy-direct-use\[int8\]"):
        nlp.initialize()
