"""A saved pipeline whose files were damaged fails loudly, naming the file and the fix; it never answers wrongly.

to_disk writes direct_ner/manifest.json (size and sha256 of every file it saved); from_disk,
spacy.load and from_bytes check it before anything saved is read. Each damage is also
loaded with the manifest deleted, as a pipeline saved before manifests: what the loader's
own checks give then (or, for damage only the manifest can see, that it would answer wrongly).
"""
import json
import logging
import re
import shutil
import time
from pathlib import Path

import pytest
import spacy
import srsly

from conftest import ents, make_nlp
from spacy_direct_use import DirectNERError
from spacy_direct_use.manifest import MANIFEST_FILE, file_digest, read_manifest
from spacy_direct_use.ner import DirectNER

TEXT = "Angela Merkel flew to Paris to meet the United Nations."
EXPECTED = [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")]
RESAVE = "Re-save the pipeline from the checkpoint with nlp.to_disk()"
MB = 1 << 20


@pytest.fixture(scope="module")
def saved(bert_dir, tmp_path_factory) -> Path:
    """A saved fp32 pipeline; tests damage copies of it (`pipeline`)."""
    path = tmp_path_factory.mktemp("saved") / "pipeline"
    nlp = make_nlp(bert_dir)
    nlp.initialize()
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def saved_int8(bert_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved_int8") / "pipeline"
    nlp = make_nlp(bert_dir, precision="int8")
    nlp.initialize()
    nlp.to_disk(path)
    return path


@pytest.fixture
def pipeline(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "pipeline"))


def model_file(pipeline: Path, name: str) -> Path:
    return pipeline / "direct_ner" / "model" / name


def drop_manifest(pipeline: Path) -> None:
    (pipeline / "direct_ner" / MANIFEST_FILE).unlink()


def load_error(pipeline: Path) -> str:
    """The DirectNERError spacy.load (or the first call, as the model loads lazily) raises:
    raised by direct_ner itself, no exception from srsly, transformers or onnxruntime chained."""
    with pytest.raises(DirectNERError) as info:
        spacy.load(pipeline)(TEXT)
    assert info.value.__cause__ is None and (info.value.__suppress_context__ or info.value.__context__ is None)
    message = str(info.value)
    assert re.match(r"\[direct_ner E0\d\d\] ", message), message
    return message


def assert_mismatch(message: str, file: Path) -> None:
    assert message.startswith("[direct_ner E050] "), message
    assert f"'{file}' does not match what nlp.to_disk() saved" in message
    assert RESAVE in message and "re-install the pipeline package" in message


def assert_missing(message: str, file: Path) -> None:
    assert message.startswith("[direct_ner E051] "), message
    assert f"'{file}' is missing" in message and RESAVE.lower() in message.lower()


def ours(caplog) -> list:
    """What the package logged about a saved pipeline's files (not, e.g., the tag scheme)."""
    return [r for r in caplog.records if r.name.startswith("spacy_direct_use") and "tag_scheme" not in r.getMessage()]


# -- damage -------------------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def zero_tail(path: Path, n: int = MB) -> None:
    """The last `n` bytes (at most half the file: the tiny model has 100 kB) set to zero, size unchanged."""
    data = bytearray(path.read_bytes())
    n = min(n, len(data) // 2)
    data[-n:] = bytes(n)
    path.write_bytes(bytes(data))


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def garble(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1] + b"\x00{not json")


# -- the weights ---------------------------------------------------------------------------


def test_the_undamaged_pipeline_loads_with_unchanged_entities(saved, bert_dir, caplog):
    with caplog.at_level(logging.INFO, logger="spacy_direct_use"):
        assert ents(spacy.load(saved)(TEXT)) == ents(make_nlp(bert_dir)(TEXT)) == EXPECTED
    assert not ours(caplog)  # verified: nothing to say


def test_truncated_weights(pipeline):
    weights = model_file(pipeline, "model.safetensors")
    size = weights.stat().st_size
    truncate(weights)
    message = load_error(pipeline)
    assert_mismatch(message, weights)
    assert f"it has {size // 2:,} bytes, {size:,} were saved" in message
    drop_manifest(pipeline)
    assert "[direct_ner E017] Could not read the weights" in load_error(pipeline)  # the loader's own check


def test_weights_with_a_zeroed_tail(pipeline):
    weights = model_file(pipeline, "model.safetensors")
    zero_tail(weights)
    message = load_error(pipeline)
    assert_mismatch(message, weights)
    assert "its sha256 is" in message
    drop_manifest(pipeline)
    assert ents(spacy.load(pipeline)(TEXT)) != EXPECTED  # unchecked, it would answer wrongly, without an error


def test_weights_with_one_byte_changed(pipeline):
    weights = model_file(pipeline, "model.safetensors")
    flip_middle_byte(weights)
    assert_mismatch(load_error(pipeline), weights)
    drop_manifest(pipeline)
    spacy.load(pipeline)(TEXT)  # unchecked, it loads silently


def test_missing_weights(pipeline):
    weights = model_file(pipeline, "model.safetensors")
    weights.unlink()
    assert_missing(load_error(pipeline), weights)
    drop_manifest(pipeline)
    assert "[direct_ner E012] " in load_error(pipeline)


def test_real_model_with_a_zeroed_tail(real_model_dir, tmp_path):
    """The real 86 MB model: the last 1 MB zeroed is refused, and checking takes well under a second."""
    nlp = make_nlp(real_model_dir)
    expected = ents(nlp(TEXT))
    nlp.to_disk(tmp_path / "pipeline")
    assert ents(spacy.load(tmp_path / "pipeline")(TEXT)) == expected
    weights = model_file(tmp_path / "pipeline", "model.safetensors")
    start = time.perf_counter()
    file_digest(weights)
    assert time.perf_counter() - start < 1.0
    zero_tail(weights, MB)
    assert_mismatch(load_error(tmp_path / "pipeline"), weights)


# -- config.json and the tokenizer --------------------------------------------------------


def test_missing_config(pipeline):
    config = model_file(pipeline, "config.json")
    config.unlink()
    assert_missing(load_error(pipeline), config)
    drop_manifest(pipeline)
    message = load_error(pipeline)
    assert message.startswith("[direct_ner E054] ") and f"'{config}' (the file does not exist)" in message
    assert "Can't read file" not in message and RESAVE in message


@pytest.mark.parametrize(
    "content, reason",
    [
        (b'{"id2label": {"0": "O",', "it is not valid JSON"),
        (b'{"model_type": "bert"}', "it has no 'id2label'"),
        (b'{"id2label": ["O", "B-PER"]}', "its id2label is not a mapping"),
        (b'{"id2label": {"zero": "O"}}', "its id2label is not a mapping"),
    ],
)
def test_garbled_config(pipeline, content, reason):
    config = model_file(pipeline, "config.json")
    config.write_bytes(content)
    assert_mismatch(load_error(pipeline), config)
    drop_manifest(pipeline)
    message = load_error(pipeline)
    assert message.startswith("[direct_ner E054] ") and f"'{config}' ({reason}" in message and RESAVE in message


def test_missing_tokenizer_files(pipeline):
    tokenizer_files = sorted(model_file(pipeline, "").glob("tokenizer*"))
    assert tokenizer_files
    for path in tokenizer_files:
        path.unlink()
    assert_missing(load_error(pipeline), tokenizer_files[0])
    drop_manifest(pipeline)
    assert "[direct_ner E014] Could not load the tokenizer" in load_error(pipeline)


def test_garbled_tokenizer(pipeline):
    tokenizer = model_file(pipeline, "tokenizer.json")
    garble(tokenizer)
    assert_mismatch(load_error(pipeline), tokenizer)
    drop_manifest(pipeline)
    assert "[direct_ner E014] Could not load the tokenizer" in load_error(pipeline)


# -- the int8 graph ------------------------------------------------------------------------


def test_the_undamaged_int8_pipeline_loads(saved_int8):
    assert ents(spacy.load(saved_int8)(TEXT)) == EXPECTED


@pytest.mark.parametrize("damage", [truncate, zero_tail, flip_middle_byte, garble])
def test_damaged_int8_graph(saved_int8, tmp_path, damage):
    pipeline = Path(shutil.copytree(saved_int8, tmp_path / "pipeline"))
    graph = model_file(pipeline, "int8.onnx")
    damage(graph)
    assert_mismatch(load_error(pipeline), graph)


@pytest.mark.parametrize("damage", [truncate, garble])
def test_damaged_int8_graph_without_a_manifest(saved_int8, tmp_path, damage):
    pipeline = Path(shutil.copytree(saved_int8, tmp_path / "pipeline"))
    damage(model_file(pipeline, "int8.onnx"))
    drop_manifest(pipeline)
    message = load_error(pipeline)
    assert message.startswith("[direct_ner E055] ") and "int8 graph (int8.onnx" in message
    assert "Re-save the pipeline with nlp.to_disk()" in message and "INVALID_PROTOBUF" in message


def test_missing_int8_graph(saved_int8, tmp_path):
    pipeline = Path(shutil.copytree(saved_int8, tmp_path / "pipeline"))
    graph = model_file(pipeline, "int8.onnx")
    graph.unlink()
    assert_missing(load_error(pipeline), graph)


# -- the manifest itself -------------------------------------------------------------------


def test_the_manifest_lists_every_saved_file(saved):
    component = saved / "direct_ner"
    listing = read_manifest(component / MANIFEST_FILE)
    on_disk = {p.relative_to(component).as_posix() for p in component.rglob("*") if p.is_file()}
    assert set(listing) == on_disk - {MANIFEST_FILE}
    assert {"model/config.json", "model/model.safetensors", "model/tokenizer.json"} <= set(listing)
    for rel, (size, digest) in listing.items():
        assert (size, digest) == ((component / rel).stat().st_size, file_digest(component / rel))
    manifest = json.loads((component / MANIFEST_FILE).read_text())
    assert manifest["format_version"] == 1 and manifest["algorithm"] == "sha256"


def test_the_manifest_covers_files_under_any_name(bert_dir, tmp_path, monkeypatch):
    """A file to_disk writes next to model/ (such as a settings file) is listed and checked too."""
    save_model = DirectNER._save_model

    def save_model_and_more(self, path):
        save_model(self, path)
        (path.parent / "cfg").write_text('{"extra": 1}')

    monkeypatch.setattr(DirectNER, "_save_model", save_model_and_more)
    nlp = make_nlp(bert_dir)
    nlp.to_disk(tmp_path / "pipeline")
    assert "cfg" in read_manifest(tmp_path / "pipeline" / "direct_ner" / MANIFEST_FILE)
    assert ents(spacy.load(tmp_path / "pipeline")(TEXT)) == EXPECTED
    cfg = tmp_path / "pipeline" / "direct_ner" / "cfg"
    cfg.write_text('{"extra": 2}')
    assert_mismatch(load_error(tmp_path / "pipeline"), cfg)


def test_saving_again_into_the_same_directory(saved, bert_dir, tmp_path):
    pipeline = Path(shutil.copytree(saved, tmp_path / "pipeline"))
    make_nlp(bert_dir).to_disk(pipeline)
    assert ents(spacy.load(pipeline)(TEXT)) == EXPECTED


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe garbage",
        b"[]",
        b'{"format_version": 1, "algorithm": "md5", "files": []}',
        b'{"format_version": 1, "algorithm": "sha256"}',
        b'{"format_version": 1, "algorithm": "sha256", "files": [{"path": "model/config.json"}]}',
    ],
)
def test_garbled_manifest(pipeline, content):
    manifest = pipeline / "direct_ner" / MANIFEST_FILE
    manifest.write_bytes(content)
    message = load_error(pipeline)
    assert message.startswith("[direct_ner E052] ") and f"manifest '{manifest}' is damaged" in message
    assert RESAVE in message


@pytest.mark.parametrize("unsafe", ["../outside.json", "/etc/hostname", "model/../model/config.json", "model\\config.json"])
def test_a_manifest_naming_files_outside_the_directory_is_refused(pipeline, unsafe):
    manifest = pipeline / "direct_ner" / MANIFEST_FILE
    data = json.loads(manifest.read_text())
    data["files"][0]["path"] = unsafe
    manifest.write_text(json.dumps(data))
    assert "[direct_ner E052] " in load_error(pipeline)


def test_a_manifest_edited_to_match_other_weights_is_refused_by_its_digests(pipeline):
    """The manifest's digests are what the files are checked against, entry by entry."""
    manifest = pipeline / "direct_ner" / MANIFEST_FILE
    data = json.loads(manifest.read_text())
    data["files"][0]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(data))
    assert_mismatch(load_error(pipeline), pipeline / "direct_ner" / data["files"][0]["path"])


def test_a_manifest_from_a_newer_version_says_upgrade(pipeline):
    manifest = pipeline / "direct_ner" / MANIFEST_FILE
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(dict(data, format_version=2)))
    message = load_error(pipeline)
    assert message.startswith("[direct_ner E056] ") and "pip install -U spacy-direct-use" in message


def test_an_added_file_is_refused(pipeline):
    (model_file(pipeline, "special_tokens_map.json")).write_text('{"unk_token": "paris"}')
    (model_file(pipeline, ".DS_Store")).write_bytes(b"\x00")  # hidden files are left alone
    message = load_error(pipeline)
    assert message.startswith("[direct_ner E053] ") and "['model/special_tokens_map.json']" in message


def test_a_pipeline_saved_without_a_manifest_loads_with_a_warning(pipeline, caplog):
    drop_manifest(pipeline)
    with caplog.at_level(logging.WARNING, logger="spacy_direct_use"):
        assert ents(spacy.load(pipeline)(TEXT)) == EXPECTED
    warnings = [r for r in ours(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "has no manifest.json" in warnings[0].getMessage() and "could not be verified" in warnings[0].getMessage()


def test_a_checkpoint_given_as_model_is_not_checked(bert_dir, tmp_path, caplog):
    """The manifest belongs to saved pipelines: a checkpoint directory is read as it is,
    even with an edited config or a stray (here garbled) manifest.json next to it."""
    checkpoint = Path(shutil.copytree(bert_dir, tmp_path / "checkpoint"))
    config = srsly.read_json(checkpoint / "config.json")
    srsly.write_json(checkpoint / "config.json", dict(config, edited=True))
    (checkpoint / MANIFEST_FILE).write_text("{not json")
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with caplog.at_level(logging.INFO, logger="spacy_direct_use"):
        nlp = make_nlp(checkpoint)
        assert ents(nlp(TEXT)) == EXPECTED
    assert not ours(caplog)


# -- from_bytes and Ray ---------------------------------------------------------------------


def test_from_bytes_checks_the_manifest(bert_dir, caplog):
    files = srsly.msgpack_loads(make_nlp(bert_dir).get_pipe("direct_ner").to_bytes())
    assert MANIFEST_FILE in files

    def from_bytes(files):
        other = make_nlp("hub-user/never-downloaded")
        other.get_pipe("direct_ner").from_bytes(srsly.msgpack_dumps(files))
        return other

    assert ents(from_bytes(files)(TEXT)) == EXPECTED
    damaged = dict(files)
    weights = bytearray(files["model/model.safetensors"])
    weights[len(weights) // 2] ^= 0x01
    damaged["model/model.safetensors"] = bytes(weights)
    with pytest.raises(DirectNERError, match=r"^\[direct_ner E050\] .*model/model.safetensors' does not match"):
        from_bytes(damaged)
    garbled = dict(files, **{"model/config.json": b"{not json"})
    with pytest.raises(DirectNERError, match=r"^\[direct_ner E050\] .*model/config.json' does not match"):
        from_bytes(garbled)
    old = {name: data for name, data in files.items() if name != MANIFEST_FILE}
    with caplog.at_level(logging.WARNING, logger="spacy_direct_use"):
        assert ents(from_bytes(old)(TEXT)) == EXPECTED
    assert "could not be verified" in caplog.text
    with pytest.raises(DirectNERError, match=r"^\[direct_ner E054\] "):
        from_bytes(dict(old, **{"model/config.json": b"{not json"}))


def test_the_ray_predictor_surfaces_the_error(pipeline):
    pytest.importorskip("ray")
    from spacy_direct_use.ray import DirectNERPredictor

    weights = model_file(pipeline, "model.safetensors")
    zero_tail(weights)
    with pytest.raises(DirectNERError) as info:
        DirectNERPredictor(str(pipeline))
    assert_mismatch(str(info.value), weights)


@pytest.mark.slow
def test_the_annotate_command_on_ray_reports_the_damaged_file(pipeline, tmp_path):
    """Through Ray Data the actor's DirectUseError comes back wrapped by Ray, its message whole."""
    pytest.importorskip("ray")
    from spacy_direct_use.annotate import main as annotate_main

    weights = model_file(pipeline, "model.safetensors")
    flip_middle_byte(weights)
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": TEXT}) + "\n")
    with pytest.raises(Exception) as info:
        annotate_main([str(tmp_path / "in.jsonl"), str(tmp_path / "out"), "--pipeline", str(pipeline)])
    assert_mismatch(str(info.value).split("DirectUseError: ")[-1], weights)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.parquet"))
