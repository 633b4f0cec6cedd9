"""Checkpoints as the popular hub models ship them: their label formats and file layouts,
each read the way the checkpoint means it (replicas built from tiny lookup models)."""
import json
import shutil

import pytest
import spacy
import torch
from safetensors import safe_open
from transformers import AutoModelForTokenClassification, AutoTokenizer

from conftest import ents, make_lookup_model, make_nlp
from spacy_direct_use import DirectNERError

TEXT = "Angela Merkel flew to Paris to meet the United Nations."
EXPECTED = [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


# -- label formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, rules, expected",
    [
        (  # lowercase prefixes (derived checkpoints): the type keeps its spelling
            ["o", "b-per", "i-per", "b-loc", "i-loc"],
            {"angela": "b-per", "merkel": "i-per", "paris": "b-loc"},
            [("Angela Merkel", "per"), ("Paris", "loc")],
        ),
        (  # underscore prefixes
            ["O", "B_PER", "I_PER", "B_LOC", "I_LOC"],
            {"angela": "B_PER", "merkel": "I_PER", "paris": "B_LOC"},
            [("Angela Merkel", "PER"), ("Paris", "LOC")],
        ),
        (  # compound types, kept whole (KB/bert-base-swedish-cased-ner)
            ["O", "B-ORG/PRS", "I-ORG/PRS", "B-LOC/ORG", "I-LOC/ORG"],
            {"united": "B-ORG/PRS", "nations": "I-ORG/PRS", "paris": "B-LOC/ORG"},
            [("Paris", "LOC/ORG"), ("United Nations", "ORG/PRS")],
        ),
        (  # I- only, O last (iiiorg/piiranha-v1-detect-personal-information)
            ["I-LOC", "I-PER", "I-MISC", "I-ORG", "O"],
            {"angela": "I-PER", "merkel": "I-PER", "paris": "I-LOC", "united": "I-ORG", "nations": "I-ORG"},
            EXPECTED,
        ),
        (  # IO without prefixes (Jean-Baptiste/roberta-large-ner-english, StanfordAIMI)
            ["O", "PER", "ORG", "LOC", "MISC"],
            {"angela": "PER", "merkel": "PER", "paris": "LOC", "united": "ORG", "nations": "ORG"},
            EXPECTED,
        ),
        (  # interleaved I-/B- order
            ["O", "I-PER", "B-PER", "I-LOC", "B-LOC", "I-ORG", "B-ORG"],
            {"angela": "B-PER", "merkel": "I-PER", "paris": "B-LOC", "united": "B-ORG", "nations": "I-ORG"},
            EXPECTED,
        ),
        (  # BILOU sorted alphabetically, O in the middle (obi/deid_roberta_i2b2)
            sorted(["O", *(f"{p}-{t}" for p in "BILU" for t in ("PER", "LOC", "ORG"))]),
            {"angela": "B-PER", "merkel": "L-PER", "paris": "U-LOC", "united": "B-ORG", "nations": "L-ORG"},
            EXPECTED,
        ),
        (  # BIES (ckiplab/bert-base-chinese-ner)
            ["O", *(f"{p}-{t}" for t in ("PER", "LOC", "ORG") for p in "BIES")],
            {"angela": "B-PER", "merkel": "E-PER", "paris": "S-LOC", "united": "B-ORG", "nations": "E-ORG"},
            EXPECTED,
        ),
        (  # B- for some types only (XLM-R large CoNLL: no B-PER): IOB1
            ["B-LOC", "B-ORG", "I-LOC", "I-ORG", "I-PER", "O"],
            {"angela": "I-PER", "merkel": "I-PER", "paris": "I-LOC", "united": "I-ORG", "nations": "I-ORG"},
            EXPECTED,
        ),
    ],
    ids=["lowercase", "underscore", "compound", "i-only-o-last", "io", "interleaved", "bilou-sorted", "bies", "iob1-no-b-per"],
)
def test_label_formats(tmp_path, labels, rules, expected):
    nlp = make_nlp(make_lookup_model(tmp_path / "m", rules, labels=labels, strength=4.0))
    assert ents(nlp(TEXT)) == expected


def test_lowercase_types_can_be_renamed(tmp_path):
    model = make_lookup_model(tmp_path / "m", {"paris": "b-loc"}, labels=["o", "b-loc", "i-loc"], strength=4.0)
    nlp = make_nlp(model, label_map={"loc": "GPE"})
    assert ents(nlp(TEXT)) == [("Paris", "GPE")]
    assert nlp.get_pipe("direct_ner").labels == ("GPE",)


def test_string_label2id_values(tmp_path, bert_dir):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    config["label2id"] = {label: str(i) for label, i in config["label2id"].items()}
    (path / "config.json").write_text(json.dumps(config))
    assert ents(make_nlp(path)(TEXT)) == EXPECTED


def test_placeholder_labels_with_the_id2label_setting(tmp_path, bert_dir):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    real = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(len(real))}
    config["label2id"] = {f"LABEL_{i}": i for i in range(len(real))}
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DirectNERError, match=r"E019.*7 tags.*\"id2label\": \[\"O\", \"B-PER\""):
        make_nlp(path)(TEXT)
    nlp = make_nlp(path, id2label=real)
    assert nlp.get_pipe("direct_ner").labels == ("LOC", "ORG", "PER")  # before the weights load
    assert ents(nlp(TEXT)) == EXPECTED
    nlp.to_disk(tmp_path / "saved")
    assert ents(spacy.load(tmp_path / "saved")(TEXT)) == EXPECTED


def test_id2label_of_the_wrong_length(bert_dir):
    with pytest.raises(DirectNERError, match="E028.*has 3 labels.*7 outputs"):
        make_nlp(bert_dir, id2label=["O", "B-PER", "I-PER"])(TEXT)


# -- file layouts --------------------------------------------------------------------------


def model_without_tokenizer(bert_dir, path):
    path = shutil.copytree(bert_dir, path)
    for name in TOKENIZER_FILES:
        (path / name).unlink(missing_ok=True)
    return path


def test_tokenizer_from_elsewhere(tmp_path, bert_dir):
    """ckiplab/bert-base-chinese-ner ships no tokenizer; its card names another one."""
    weights_only = model_without_tokenizer(bert_dir, tmp_path / "m")
    with pytest.raises(DirectNERError, match="E014.*\"tokenizer\":"):
        make_nlp(weights_only)(TEXT)
    tokenizer_dir = tmp_path / "tok"
    tokenizer_dir.mkdir()
    for name in TOKENIZER_FILES:
        if (bert_dir / name).exists():
            shutil.copy(bert_dir / name, tokenizer_dir / name)
    nlp = make_nlp(weights_only, tokenizer=str(tokenizer_dir))
    assert ents(nlp(TEXT)) == EXPECTED
    nlp.to_disk(tmp_path / "saved")
    shutil.rmtree(tokenizer_dir)  # the saved pipeline holds the tokenizer it used
    assert ents(spacy.load(tmp_path / "saved")(TEXT)) == EXPECTED


def test_tokenizer_path_that_does_not_exist(bert_dir, tmp_path):
    with pytest.raises(DirectNERError, match="E002.*nowhere"):
        make_nlp(bert_dir, tokenizer=str(tmp_path / "nowhere"))(TEXT)


def test_legacy_tokenizer_config_with_max_len(tmp_path, bert_dir):
    """dslim/bert-base-NER: vocab.txt only and {"do_lower_case": false, "max_len": 512};
    the window limit is the model's own position limit."""
    path = shutil.copytree(bert_dir, tmp_path / "m")
    vocab = json.loads((path / "tokenizer.json").read_text())["model"]["vocab"]
    for name in TOKENIZER_FILES:
        (path / name).unlink(missing_ok=True)
    (path / "vocab.txt").write_text("".join(f"{t}\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])))
    (path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "max_len": 512}))
    nlp = make_nlp(path)
    runner = nlp.get_pipe("direct_ner")._ensure_loaded()
    assert runner.max_length == 64  # the lookup model's max_position_embeddings
    long_text = "the cat sat on a mat . " * 30 + TEXT
    assert ents(nlp(long_text)) == EXPECTED


def test_no_tokenizer_config_at_all(tmp_path, bert_dir):
    """FacebookAI's XLM-R CoNLL model had no tokenizer_config.json before 2025: the
    tokenizer class comes from config.json's model_type and no length limit is known."""
    path = shutil.copytree(bert_dir, tmp_path / "m")
    (path / "tokenizer_config.json").unlink()
    (path / "special_tokens_map.json").unlink(missing_ok=True)
    nlp = make_nlp(path)
    assert ents(nlp("the cat sat on a mat . " * 30 + TEXT)) == EXPECTED
    assert nlp.get_pipe("direct_ner")._ensure_loaded().max_length == 64


def test_pytorch_model_bin_only(tmp_path, bert_dir):
    path = shutil.copytree(bert_dir, tmp_path / "m")
    model = AutoModelForTokenClassification.from_pretrained(path)
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "pytorch_model.bin")  # transformers 5 no longer writes .bin
    assert (path / "pytorch_model.bin").exists() and not (path / "model.safetensors").exists()
    nlp = make_nlp(path)
    assert ents(nlp(TEXT)) == EXPECTED
    nlp.to_disk(tmp_path / "saved")  # saved as safetensors
    assert (tmp_path / "saved" / "direct_ner" / "model" / "model.safetensors").exists()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_run_in_fp32_on_cpu_and_save_as_stored(tmp_path, bert_dir, dtype):
    """transformers 5 loads an fp16 checkpoint in fp16 (dtype="auto"), 4.x in fp32: direct_ner
    runs both in fp32 on CPU, and saves the weights in the dtype they came in."""
    path = tmp_path / "m"
    AutoModelForTokenClassification.from_pretrained(bert_dir).to(dtype).save_pretrained(path)
    for name in TOKENIZER_FILES:
        if (bert_dir / name).exists():
            shutil.copy(bert_dir / name, path / name)
    nlp = make_nlp(path)
    assert ents(nlp(TEXT)) == EXPECTED
    component = nlp.get_pipe("direct_ner")
    assert {p.dtype for p in component._model.parameters()} == {torch.float32}
    nlp.to_disk(tmp_path / "saved")
    with safe_open(tmp_path / "saved" / "direct_ner" / "model" / "model.safetensors", "pt") as saved:
        assert {saved.get_tensor(key).dtype for key in saved.keys()} == {dtype}
    reloaded = spacy.load(tmp_path / "saved")
    assert ents(reloaded(TEXT)) == EXPECTED
    assert {p.dtype for p in reloaded.get_pipe("direct_ner")._model.parameters()} == {torch.float32}


def test_byte_level_bpe_from_vocab_json_and_merges(tmp_path):
    """RoBERTa checkpoints that ship vocab.json + merges.txt and no tokenizer.json."""
    rules = {"ĠPar": "B-LOC", "is": "I-LOC", "ĠBer": "B-LOC"}
    path = make_lookup_model(tmp_path / "m", rules, kind="bpe")
    expected = ents(make_nlp(path)("Paris and Berlin ."))
    AutoTokenizer.from_pretrained(path).backend_tokenizer.model.save(str(path))  # vocab.json, merges.txt
    for name in ("tokenizer.json", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)
    (path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    assert (path / "vocab.json").exists() and (path / "merges.txt").exists()
    assert expected == [("Paris", "LOC"), ("Berlin", "LOC")]
    assert ents(make_nlp(path)("Paris and Berlin .")) == expected
