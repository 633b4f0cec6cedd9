"""Unusable checkpoints, devices and malicious files: each misuse is a DirectNERError
naming the problem and the fix, raised from direct_ner (never an exception from
inside transformers, never random output), and no file can run code.
"""
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import spacy
import srsly
import torch
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    CanineTokenizer,
)

import spacy_direct_use
from spacy_direct_use import DirectNERError

from conftest import ents, make_nlp, train_tokenizer

BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXT = "Angela Merkel flew to Paris ."
EXPECTED = [("Angela Merkel", "PER"), ("Paris", "LOC")]
PACKAGE_DIR = str(Path(spacy_direct_use.__file__).resolve().parent)  # wherever it is installed


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer("wordpiece")


def tiny_config(tokenizer, labels=None, **kwargs):
    labels_kwargs = {}
    if labels is not None:
        labels_kwargs = dict(id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    return BertConfig(
        vocab_size=len(tokenizer.get_vocab()), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=64, **labels_kwargs, **kwargs,
    )


def save(path, model, tokenizer=None, config_edit=None):
    model.save_pretrained(path, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    if config_edit is not None:
        config = json.loads((path / "config.json").read_text())
        config_edit(config)
        (path / "config.json").write_text(json.dumps(config))
    return path


def load_error(model, stage="initialize", **config):
    """The error direct_ner raises for `model` as the model loads (lazily: at initialize or on
    the first call; add_pipe reads nothing from disk, as spacy.load builds the component from
    its config before from_disk gives it the saved model)."""
    with pytest.raises(DirectNERError) as info:
        nlp = make_nlp(model, **config)
        if stage == "initialize":
            nlp.initialize()
        else:
            nlp(TEXT)
    assert_raised_by_direct_ner(info)
    return str(info.value)


def assert_raised_by_direct_ner(info):
    """A clean error: raised by spacy_direct_use itself, with no chained transformers traceback."""
    assert isinstance(info.value, ValueError)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    assert str(Path(info.traceback[-1].path).resolve()).startswith(PACKAGE_DIR), info.traceback[-1].path
    assert re.match(r"\[direct_ner E\d{3}\] ", str(info.value)), str(info.value)


# -- where the model is ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/no/such/model/dir", "./no_such_model_dir", "models/no/such/ner", "~/no_such_model_dir"])
def test_missing_directory_fails_when_the_model_loads(name):
    message = load_error(name)
    assert "does not exist" in message and "Check the path" in message and name in message


def test_a_file_instead_of_the_directory(bert_dir):
    message = load_error(bert_dir / "model.safetensors")
    assert "is a file, not a directory" in message and f"did you mean '{bert_dir}'" in message


def test_a_directory_without_config_json(tmp_path, bert_dir):
    shutil.copytree(bert_dir, tmp_path / "run" / "checkpoint-500")
    message = load_error(tmp_path / "run")  # the training output, not the checkpoint in it
    assert "has no config.json" in message and "save_pretrained" in message
    assert "did you mean" in message and "checkpoint-500" in message
    (tmp_path / "empty-bert-mpt").mkdir()  # transformers guesses a config from names like 'bert' or 'mpt'
    assert "has no config.json" in load_error(tmp_path / "empty-bert-mpt")


@pytest.mark.slow  # a fresh Python process
def test_unknown_hub_name_while_offline():
    code = textwrap.dedent(
        """
        import os, sys, traceback, spacy
        from spacy_direct_use import DirectNERError
        nlp = spacy.blank("en")
        nlp.add_pipe("direct_ner", config={"model": "no-such-org-xyz/no-such-ner-model"})
        try:
            nlp.initialize()
        except DirectNERError as err:
            frames = traceback.extract_tb(err.__traceback__)
            print("RAISED_IN", os.path.realpath(frames[-1].filename))
            print("CAUSE", err.__cause__)
            print("MESSAGE", err)
        else:
            print("NO ERROR")
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "NO ERROR" not in out.stdout
    assert "CAUSE None" in out.stdout
    assert f"RAISED_IN {PACKAGE_DIR}" in out.stdout
    message = out.stdout.split("MESSAGE ", 1)[1]
    assert "Could not load 'no-such-org-xyz/no-such-ner-model'" in message
    assert "HF_HUB_OFFLINE" in message and "pass the local directory" in message


# -- what the checkpoint is ------------------------------------------------------------------


def test_sequence_classifier_is_refused(tmp_path, tokenizer):
    path = save(tmp_path / "m", BertForSequenceClassification(tiny_config(tokenizer, ["NEG", "POS"])), tokenizer)
    message = load_error(path)
    assert "is not a token classifier" in message and "BertForSequenceClassification" in message
    assert "ForTokenClassification" in message


def test_plain_encoder_is_refused(tmp_path, tokenizer):
    path = save(tmp_path / "m", BertModel(tiny_config(tokenizer, BIO)), tokenizer)
    message = load_error(path)
    assert "is not a token classifier" in message and "BertModel" in message


@pytest.mark.parametrize("architectures", [None, ["BertForTokenClassification"]], ids=["no architectures", "claims token classifier"])
def test_encoder_without_trained_head_is_refused(tmp_path, tokenizer, architectures):
    def edit(config):
        config.pop("architectures", None)
        if architectures:
            config["architectures"] = architectures

    path = save(tmp_path / "m", BertModel(tiny_config(tokenizer, BIO)), tokenizer, edit)
    message = load_error(path)
    assert "untrained classification head" in message and "classifier.weight" in message
    assert "predictions would be random" in message and "fine-tune" in message
    assert f'nlp.add_pipe("direct_vectors", config={{"model": "{path}"}})' in message and '"labels": [' in message
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_vectors", config={"model": str(path), "pooling": "mean"})
    assert nlp("Angela Merkel visited Paris").vector.shape == (16,)  # the route E005 names works on it


def fresh_token_classifier(model_type, tokenizer, labels=BIO):
    """A token classifier as transformers builds it before training: head at its initial values."""
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer.get_vocab()), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=64, id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return AutoModelForTokenClassification.from_config(config)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta", "deberta-v2", "electra"])
def test_head_saved_before_any_training_step_is_refused(tmp_path, tokenizer, model_type):
    message = load_error(save(tmp_path / "m", fresh_token_classifier(model_type, tokenizer), tokenizer))
    assert "untrained classification head" in message and "classifier.bias is all zeros" in message
    assert "before any training step" in message and "fine-tune" in message


def test_untrained_head_loads_when_the_check_is_off(tmp_path, tokenizer):
    path = save(tmp_path / "m", fresh_token_classifier("bert", tokenizer), tokenizer)
    assert 'config={"check_head": false}' in load_error(path)
    nlp = make_nlp(path, check_head=False)
    nlp.initialize()
    assert nlp.get_pipe("direct_ner").labels == ("LOC", "PER")


def test_trained_head_with_a_zero_bias_loads(tmp_path, tokenizer):
    """A head trained with a frozen or absent bias: zero bias, weights moved by training."""
    model = fresh_token_classifier("bert", tokenizer)
    with torch.no_grad():
        model.classifier.weight.mul_(2.0)  # the CoNLL stand-in's weights grew to 1.4x initializer_range
    nlp = make_nlp(save(tmp_path / "m", model, tokenizer))
    nlp.initialize()
    assert nlp.get_pipe("direct_ner").labels == ("LOC", "PER")


def test_head_without_a_bias_in_the_file_loads(tmp_path, tokenizer):
    from safetensors.torch import load_file, save_file

    model = fresh_token_classifier("bert", tokenizer)
    with torch.no_grad():
        model.classifier.weight.mul_(2.0)
    path = save(tmp_path / "m", model, tokenizer)
    weights = load_file(path / "model.safetensors")
    del weights["classifier.bias"]
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    nlp = make_nlp(path)
    nlp.initialize()
    assert nlp.get_pipe("direct_ner").labels == ("LOC", "PER")


def test_head_whose_bias_moved_is_not_taken_for_untrained(tmp_path, tokenizer):
    model = fresh_token_classifier("bert", tokenizer)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.linspace(-0.01, 0.01, len(BIO)))  # what one training step does
    nlp = make_nlp(save(tmp_path / "m", model, tokenizer))
    nlp.initialize()
    assert nlp.get_pipe("direct_ner").labels == ("LOC", "PER")


def test_generic_label_names_are_refused(tmp_path, tokenizer):
    path = save(tmp_path / "m", BertForTokenClassification(tiny_config(tokenizer, num_labels=5)), tokenizer)
    message = load_error(path)
    assert "placeholder names" in message and "LABEL_0" in message and "id2label" in message


@pytest.mark.parametrize(
    "labels,match",
    [
        (["B-PER", "I-PER", "B-LOC", "I-LOC"], "no 'O' label"),
        (["O", "E-PER", "S-PER"], "E-PER has no B-PER or I-PER"),
        (["O", "B-PER", "B-PER"], "duplicate labels"),
    ],
)
def test_labels_that_fit_no_scheme(tmp_path, tokenizer, labels, match):
    path = save(tmp_path / "m", BertForTokenClassification(tiny_config(tokenizer, labels)), tokenizer)
    message = load_error(path)
    assert "fit no tagging scheme" in message and match in message and "id2label" in message


def test_label_ids_with_a_gap(tmp_path, tokenizer):
    def edit(config):
        config["id2label"] = {"0": "O", "1": "B-PER", "5": "I-PER"}
        config["label2id"] = {"O": 0, "B-PER": 1, "I-PER": 5}

    path = save(tmp_path / "m", BertForTokenClassification(tiny_config(tokenizer, ["O", "B-PER", "I-PER"])), tokenizer, edit)
    message = load_error(path)
    assert "do not match its classification head" in message and "[0, 1, 5]" in message


def test_more_labels_than_the_head_has(tmp_path, tokenizer):
    def edit(config):
        config["id2label"] = dict(enumerate(BIO + ["B-ORG", "I-ORG"]))
        config["label2id"] = {l: i for i, l in config["id2label"].items()}

    path = save(tmp_path / "m", BertForTokenClassification(tiny_config(tokenizer, BIO)), tokenizer, edit)
    message = load_error(path)
    assert "do not match its classification head" in message and "7 labels" in message


def test_model_type_transformers_does_not_know(tmp_path, bert_dir):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["model_type"] = "frobnicator"
    (path / "config.json").write_text(json.dumps(config))
    message = load_error(path)
    assert message.startswith("[direct_ner E020] ") and "frobnicator" in message
    assert "out of date" in message and "pip install -U transformers" in message
    assert "not a token classifier" not in message


def test_corrupt_config_json(tmp_path, bert_dir):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    (path / "config.json").write_text("{not json")
    message = load_error(path)
    assert "Could not read the model directory" in message and "not a valid JSON file" in message


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_missing_or_truncated_weights(tmp_path, bert_dir, damage):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    weights = path / "model.safetensors"
    if damage == "missing":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    message = load_error(path)
    assert "Could not read the weights" in message and "missing, truncated or corrupt" in message


# -- tokenizers ------------------------------------------------------------------------------


def test_vocab_txt_without_tokenizer_json_is_converted_to_fast(tmp_path, bert_dir):
    """transformers builds the fast BertTokenizerFast from vocab.txt (convert_slow_tokenizer),
    so a checkpoint with only the slow files still gets word_ids(): it works."""
    path = shutil.copytree(bert_dir, tmp_path / "m")
    vocab = json.loads((path / "tokenizer.json").read_text())["model"]["vocab"]
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)  # transformers 5 writes no special_tokens_map.json
    (path / "vocab.txt").write_text("".join(f"{t}\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])))
    nlp = make_nlp(path)
    nlp.initialize()
    assert nlp.get_pipe("direct_ner")._tokenizer.is_fast
    assert ents(nlp(TEXT)) == EXPECTED


def test_tokenizer_with_no_fast_version_is_refused(tmp_path, bert_dir):
    """CanineTokenizer has no fast class, so no word_ids(): a clear error, not misplaced entities."""
    path = shutil.copytree(bert_dir, tmp_path / "m")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)  # transformers 5 writes no special_tokens_map.json
    CanineTokenizer().save_pretrained(path)
    message = load_error(path)
    assert "not a fast tokenizer" in message and "CanineTokenizer" in message and "tokenizer.json" in message


def test_no_tokenizer_files(tmp_path, bert_dir):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)  # transformers 5 writes no special_tokens_map.json
    message = load_error(path)
    assert "Could not load the tokenizer" in message and "save_pretrained" in message


# -- devices ---------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:7"])
def test_cuda_without_a_gpu(bert_dir, device):
    message = load_error(bert_dir, device=device)
    assert f"Device '{device}' was requested but torch finds no CUDA GPU" in message
    assert 'config={"device": "cpu"}' in message


def test_cuda_when_torch_sees_no_gpu(bert_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "torch finds no CUDA GPU" in load_error(bert_dir, device="cuda")


@pytest.mark.parametrize(
    "device,match",
    [("gpu", "it is not a device name"), ("0", "it is not a device name"), ("meta", "holds no data"), ("xla", "torch cannot use it")],
)
def test_devices_that_cannot_run_the_model(bert_dir, device, match):
    message = load_error(bert_dir, device=device)
    assert f"Device '{device}' was requested" in message and match in message


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_where_there_is_none(bert_dir):
    assert "MPS is not available" in load_error(bert_dir, device="mps")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_index_past_the_visible_gpus(bert_dir):
    n_gpus = torch.cuda.device_count()
    assert f"only {n_gpus} GPU(s) are visible" in load_error(bert_dir, device=f"cuda:{n_gpus}")


def test_cpu_device_works(bert_dir):
    nlp = make_nlp(bert_dir, device="cpu")
    assert ents(nlp(TEXT)) == EXPECTED


# -- security: loading never runs code from the model or the pipeline ----------------------------


class _Payload:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({self.marker!r}).write_text('code ran')",))


def write_malicious_pickle(path: Path, marker: Path, fmt: str) -> None:
    if fmt == "torch-zip":  # what torch.save writes: a zip holding data.pkl
        torch.save({"classifier.weight": _Payload(marker)}, path)
    else:  # a legacy, plain pickle file
        path.write_bytes(pickle.dumps({"classifier.weight": _Payload(marker)}))


@pytest.mark.parametrize("fmt", ["torch-zip", "plain-pickle"])
def test_the_payload_is_live(tmp_path, fmt):
    """Guards the tests below: loading the file unsafely does run the payload."""
    marker = tmp_path / "marker"
    write_malicious_pickle(tmp_path / "pytorch_model.bin", marker, fmt)
    if fmt == "torch-zip":
        torch.load(tmp_path / "pytorch_model.bin", weights_only=False)
    else:
        pickle.loads((tmp_path / "pytorch_model.bin").read_bytes())
    assert marker.read_text() == "code ran"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("fmt", ["torch-zip", "plain-pickle"])
def test_model_with_only_a_malicious_pickle(tmp_path, bert_dir, fmt):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    (path / "model.safetensors").unlink()
    marker = tmp_path / "marker"
    write_malicious_pickle(path / "pytorch_model.bin", marker, fmt)
    message = load_error(path)
    assert "Could not read the weights" in message and "weights_only" in message
    assert "files that would run code are refused" in message
    assert not marker.exists()


def test_trust_remote_code_is_off_unless_set(bert_dir, tmp_path):
    nlp = make_nlp(bert_dir)
    assert nlp.get_pipe("direct_ner").settings.trust_remote_code is False
    nlp.to_disk(tmp_path / "pipeline")
    assert spacy.util.load_config(tmp_path / "pipeline" / "config.cfg")["components"]["direct_ner"]["trust_remote_code"] is False


def _custom_code_checkpoint(path: Path, source: Path, marker: Path, model_type: str) -> Path:
    """A checkpoint whose config points (auto_map) at Python code that writes the marker on import."""
    shutil.copytree(source, path)
    (path / "evil.py").write_text(
        f"import pathlib; pathlib.Path({str(marker)!r}).write_text('code ran')\n"
        "from transformers import BertConfig, BertForTokenClassification\n"
        "class EvilConfig(BertConfig):\n    model_type = 'evil'\n"
        "class EvilModel(BertForTokenClassification):\n    config_class = EvilConfig\n"
    )
    config = json.loads((path / "config.json").read_text())
    config.update(
        model_type=model_type,
        auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForTokenClassification": "evil.EvilModel"},
    )
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_checkpoint_with_custom_code_is_refused(tmp_path, bert_dir):
    marker = tmp_path / "marker"
    path = _custom_code_checkpoint(tmp_path / "m", bert_dir, marker, model_type="evil")
    message = load_error(path)
    assert "ships its own Python code" in message and '"trust_remote_code": true' in message
    assert not marker.exists()


def test_known_model_type_ignores_custom_code(tmp_path, bert_dir):
    marker = tmp_path / "marker"
    path = _custom_code_checkpoint(tmp_path / "m", bert_dir, marker, model_type="bert")
    nlp = make_nlp(path)
    assert ents(nlp(TEXT)) == EXPECTED  # transformers' own BERT class, not evil.EvilModel
    assert not marker.exists()


@pytest.fixture
def saved_pipeline(tmp_path, bert_dir):
    """A saved pipeline without its manifest: the loader's own defences must hold for a
    pipeline saved before manifests, or crafted without one (with one, any changed,
    missing or added file is refused first: test_damaged_pipelines.py)."""
    nlp = make_nlp(bert_dir)
    nlp.to_disk(tmp_path / "pipeline")
    (tmp_path / "pipeline" / "direct_ner" / "manifest.json").unlink()
    return tmp_path / "pipeline"


@pytest.mark.parametrize("fmt", ["torch-zip", "plain-pickle"])
def test_saved_pipeline_with_pickle_instead_of_safetensors(saved_pipeline, tmp_path, fmt):
    model_dir = saved_pipeline / "direct_ner" / "model"
    (model_dir / "model.safetensors").unlink()
    marker = tmp_path / "marker"
    write_malicious_pickle(model_dir / "pytorch_model.bin", marker, fmt)
    with pytest.raises(DirectNERError) as info:
        nlp = spacy.load(saved_pipeline)
        nlp(TEXT)
    assert_raised_by_direct_ner(info)
    assert "no model weights in safetensors format" in str(info.value) and "nlp.to_disk()" in str(info.value)
    assert not marker.exists()


def test_saved_pipeline_ignores_an_added_pickle(saved_pipeline, tmp_path):
    marker = tmp_path / "marker"
    write_malicious_pickle(saved_pipeline / "direct_ner" / "model" / "pytorch_model.bin", marker, "torch-zip")
    nlp = spacy.load(saved_pipeline)
    assert ents(nlp(TEXT)) == EXPECTED
    assert not marker.exists()


def test_saved_pipeline_with_custom_code_in_its_config(saved_pipeline, tmp_path):
    marker = tmp_path / "marker"
    model_dir = saved_pipeline / "direct_ner" / "model"
    shutil.move(str(model_dir), str(tmp_path / "original"))
    _custom_code_checkpoint(model_dir, tmp_path / "original", marker, model_type="evil")
    with pytest.raises(DirectNERError) as info:
        spacy.load(saved_pipeline)(TEXT)
    assert_raised_by_direct_ner(info)
    assert "ships its own Python code" in str(info.value)
    assert not marker.exists()


def test_from_bytes_with_pickle_instead_of_safetensors(bert_dir, tmp_path):
    nlp = make_nlp(bert_dir)
    files = srsly.msgpack_loads(nlp.get_pipe("direct_ner").to_bytes())
    marker = tmp_path / "marker"
    write_malicious_pickle(tmp_path / "evil.bin", marker, "torch-zip")
    files.pop("model/model.safetensors")
    files.pop("manifest.json")  # crafted without one: with it, the missing safetensors is named first
    files["model/pytorch_model.bin"] = (tmp_path / "evil.bin").read_bytes()
    other = make_nlp("hub-user/not-read-before-from-bytes")
    with pytest.raises(DirectNERError, match="no model weights in safetensors format"):
        other.get_pipe("direct_ner").from_bytes(srsly.msgpack_dumps(files))
    assert not marker.exists()
