"""direct_ner inside a user's process: threads, forks, payloads from elsewhere, early errors."""
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import spacy
import srsly
from transformers.utils import logging as hf_logging

from conftest import ents, make_nlp
import spacy_direct_use.base as pipe_module
from spacy_direct_use.persistence import SAVED_TOP_FILES
from spacy_direct_use import DirectNERError

TEXT = "Angela Merkel flew to Paris to meet the United Nations."
EXPECTED = [("Angela Merkel", "PER"), ("Paris", "LOC"), ("United Nations", "ORG")]


@pytest.mark.parametrize("name", ["../escaped", "model/../../escaped", "/tmp/escaped-abs", "weights.bin", "model\\..\\x"])
def test_from_bytes_refuses_names_to_bytes_never_writes(bert_dir, tmp_path, name):
    files = srsly.msgpack_loads(make_nlp(bert_dir).get_pipe("direct_ner").to_bytes())
    assert all(n.startswith("model/") or n in SAVED_TOP_FILES for n in files)
    name = name.replace("/tmp/escaped-abs", str(tmp_path / "escaped-abs"))
    files[name] = b"written where it should not be"
    other = make_nlp("hub-user/never-downloaded")
    with pytest.raises(DirectNERError, match="never writes"):
        other.get_pipe("direct_ner").from_bytes(srsly.msgpack_dumps(dict(sorted(files.items(), reverse=True))))
    assert not (tmp_path / "escaped-abs").exists()


def test_two_threads_load_the_model_once(bert_dir, monkeypatch):
    loads = []
    real_load = pipe_module.load_checkpoint

    def slow_load(*args, **kwargs):
        loads.append(threading.get_ident())
        time.sleep(0.3)  # both threads arrive while the first is still loading
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pipe_module, "load_checkpoint", slow_load)
    nlp = make_nlp(bert_dir)
    results = []
    threads = [threading.Thread(target=lambda: results.append(ents(nlp(TEXT)))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert results == [EXPECTED, EXPECTED]


def test_labels_are_known_after_spacy_load_and_in_meta(bert_dir, tmp_path):
    nlp = make_nlp(bert_dir, label_map={"LOC": "GPE"})
    assert nlp.get_pipe("direct_ner").labels == ("GPE", "ORG", "PER")  # read from config.json, no weights
    assert nlp.get_pipe("direct_ner")._runner is None
    nlp.to_disk(tmp_path / "pipeline")
    meta = srsly.read_json(tmp_path / "pipeline" / "meta.json")
    assert meta["labels"]["direct_ner"] == ["GPE", "ORG", "PER"]
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("direct_ner").labels == ("GPE", "ORG", "PER")
    assert loaded.get_pipe("direct_ner")._runner is None  # the weights still load lazily


def test_a_pipeline_whose_source_is_gone_still_loads(bert_dir, tmp_path):
    """spacy.load and from_bytes build from a config whose model path may be gone (another
    machine, a deleted checkpoint): the path is checked only when the model loads from it."""
    import shutil

    source = shutil.copytree(bert_dir, tmp_path / "source")
    nlp = make_nlp(source)
    nlp.to_disk(tmp_path / "pipeline")
    data = nlp.to_bytes()
    shutil.rmtree(source)
    assert ents(spacy.load(tmp_path / "pipeline")(TEXT)) == EXPECTED
    copy = spacy.util.load_model_from_config(nlp.config)
    assert ents(copy.from_bytes(data)(TEXT)) == EXPECTED
    with pytest.raises(DirectNERError, match="does not exist"):
        make_nlp(source).initialize()


def test_saved_files_are_readable_by_others(bert_dir, tmp_path):
    make_nlp(bert_dir).to_disk(tmp_path / "pipeline")
    saved = list((tmp_path / "pipeline" / "direct_ner" / "model").iterdir())
    assert any(p.name == "model.safetensors" for p in saved)
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in saved), {p.name: oct(p.stat().st_mode) for p in saved}


FORK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    import spacy, spacy_direct_use

    torch.set_num_threads(2)
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": sys.argv[1]})
    nlp.pipe(["Angela Merkel flew to Paris ."] * 4)  # a generator: nothing runs yet
    if sys.argv[2] == "used":
        list(nlp.pipe(["Angela Merkel flew to Paris .", "Jane Doe stayed in London ."] * 4))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the user's own child process, as under gunicorn --preload
        os.write(write, json.dumps([torch.get_num_threads(), os.environ.get("TOKENIZERS_PARALLELISM")]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = json.loads(os.read(read, 1000))
    print("RESULT " + json.dumps({"child": child, "parent_env": os.environ.get("TOKENIZERS_PARALLELISM")}))
    """
)


@pytest.mark.parametrize("state", ["loaded", "used"])
def test_forks_of_the_users_process_keep_their_torch_threads(bert_dir, tmp_path, state):
    script = tmp_path / "fork_script.py"
    script.write_text(FORK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    out = subprocess.run([sys.executable, str(script), str(bert_dir), state], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    assert result["child"][0] == 2  # direct_ner's fork handling touches only its own torch calls
    assert result["parent_env"] is None  # the user's environment is left as it was


def test_the_component_pickles_for_spawned_workers(bert_dir):
    """nlp.pipe(n_process=...) with the spawn start method (macOS, Windows) pickles the pipeline."""
    import pickle

    nlp = make_nlp(bert_dir)
    for state in ("lazy", "loaded"):
        copy = pickle.loads(pickle.dumps(nlp.get_pipe("direct_ner")))
        assert ents(copy(nlp.make_doc(TEXT))) == EXPECTED, state
        nlp(TEXT)


def test_local_weights_load_without_a_progress_bar(bert_dir, capfd):
    """transformers 5 draws a "Loading weights" bar on every load; a spaCy pipeline loading
    its own weights stays quiet, and the user's progress-bar setting is left as it was."""
    hf_logging.enable_progress_bar()
    make_nlp(bert_dir).initialize()
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()
