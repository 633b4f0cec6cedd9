"""nlp.pipe(n_process=...), serialization round trips and long streams.

Forking a process whose torch (OpenMP) thread pool is live deadlocks a child
that enters a parallel region, so the multiprocessing checks run in a
subprocess with a timeout: a deadlock fails the test instead of hanging CI.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest
import spacy
import torch

from conftest import ents, make_nlp

TEXTS = [
    f"Angela Merkel flew to Paris on day {i} . Jane Doe stayed in London with {i} friends . "
    f"Nobody else came along for the {i} meetings ."
    for i in range(160)
] + ["", "   ", "no entities here at all"]


WORKER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import spacy, torch

    mode, source, texts_path = sys.argv[1:4]
    texts = json.load(open(texts_path))

    def run(nlp, **kwargs):
        return [
            [[e.start, e.end, e.label_] for e in doc.ents]
            + [[s.start, s.end, s.label_, round(score, 4)] for s, score in zip(doc.spans["direct_ner"], doc.spans["direct_ner"].attrs["scores"])]
            for doc in nlp.pipe(texts, batch_size=20, **kwargs)
        ]

    # A live OpenMP pool in the parent, as after running a real-size model (or any other
    # torch work): a forked child that enters a parallel region on it deadlocks unless it
    # runs torch single-threaded.
    torch.set_num_threads(2)
    a = torch.randn(1500, 1500)
    (a @ a).sum()
    if mode == "after-parent-ran":
        nlp = spacy.blank("en")
        nlp.add_pipe("direct_ner", config={"model": source})
        single = run(nlp)  # the model has run in the parent, with 2 threads
        multi = run(nlp, n_process=2)
    else:  # "lazy": a saved pipeline whose model each worker loads itself
        nlp = spacy.load(source)
        multi = run(nlp, n_process=2)
        single = run(nlp)
    print("RESULT " + json.dumps({"single": single, "multi": multi}))
    """
)


def run_script(tmp_path, mode, source, timeout=90, stderr_out=None):
    script = tmp_path / "worker_script.py"
    script.write_text(WORKER_SCRIPT)
    texts_path = tmp_path / "texts.json"
    texts_path.write_text(json.dumps(TEXTS))
    # TOKENIZERS_PARALLELISM unset, as in a user's shell: direct_ner must keep the
    # tokenizers library's fork warning out of the workers' output itself.
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, str(source), str(texts_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its hung workers
        proc.communicate()
        pytest.fail(f"nlp.pipe(n_process=2) did not finish in {timeout}s ({mode}): the workers deadlocked")
    assert proc.returncode == 0, err[-3000:]
    if stderr_out is not None:
        stderr_out.append(err)
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow
def test_n_process_after_the_model_ran_in_the_parent(tmp_path, bert_dir):
    stderr = []
    result = run_script(tmp_path, "after-parent-ran", bert_dir, stderr_out=stderr)
    assert result["multi"] == result["single"]
    assert "huggingface/tokenizers" not in stderr[0], stderr[0][-2000:]  # the fork warning, once per worker
    assert result["single"][0][:2] == [[0, 2, "PER"], [4, 5, "LOC"]]
    assert sum(len(r) for r in result["single"]) > 4 * 160


@pytest.mark.slow
def test_n_process_with_the_model_loaded_in_each_worker(tmp_path, bert_dir):
    """After spacy.load the model loads lazily, so each forked worker creates its own runner."""
    nlp = make_nlp(bert_dir)
    nlp.to_disk(tmp_path / "pipeline")
    result = run_script(tmp_path, "lazy", tmp_path / "pipeline")
    assert result["multi"] == result["single"]
    assert result["single"][0][:2] == [[0, 2, "PER"], [4, 5, "LOC"]]


# -- serialization round trips -----------------------------------------------------------------


def _scored(doc):
    group = doc.spans["direct_ner"]
    return ents(doc), [(s.text, s.label_, round(x, 5)) for s, x in zip(group, group.attrs["scores"])]


def test_to_bytes_from_bytes_round_trip(tmp_path, bert_dir):
    source = shutil.copytree(bert_dir, tmp_path / "source")
    nlp = make_nlp(source, label_map={"LOC": "GPE"}, window_size=16, window_overlap=4)
    nlp.add_pipe("sentencizer", first=True)
    expected = [_scored(doc) for doc in nlp.pipe(TEXTS[:5] + TEXTS[-3:])]
    data = nlp.to_bytes()
    shutil.rmtree(source)  # the copy must not need the original checkpoint
    copy = spacy.util.load_model_from_config(nlp.config)
    copy.from_bytes(data)
    assert [_scored(doc) for doc in copy.pipe(TEXTS[:5] + TEXTS[-3:])] == expected
    assert copy.get_pipe("direct_ner").settings == nlp.get_pipe("direct_ner").settings
    again = spacy.util.load_model_from_config(copy.config)
    again.from_bytes(copy.to_bytes())  # a copy of a copy
    assert [_scored(doc) for doc in again.pipe(TEXTS[:5])] == expected[:5]
    assert expected[0][0][:2] == [("Angela Merkel", "PER"), ("Paris", "GPE")]


def test_component_to_bytes_from_bytes_round_trip(bert_dir):
    nlp = make_nlp(bert_dir)
    other = make_nlp("hub-user/never-read")
    other.get_pipe("direct_ner").from_bytes(nlp.get_pipe("direct_ner").to_bytes())
    assert [ents(d) for d in other.pipe(TEXTS[:3])] == [ents(d) for d in nlp.pipe(TEXTS[:3])]


def test_to_disk_spacy_load_round_trip(tmp_path, bert_dir):
    nlp = make_nlp(bert_dir, overwrite_ents=True)
    expected = [_scored(doc) for doc in nlp.pipe(TEXTS[:4])]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert [_scored(doc) for doc in loaded.pipe(TEXTS[:4])] == expected
    loaded.to_disk(tmp_path / "again")  # saving a loaded pipeline (model loads lazily from safetensors)
    assert [_scored(doc) for doc in spacy.load(tmp_path / "again").pipe(TEXTS[:4])] == expected


# -- long streams -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_long_stream_keeps_memory_flat(bert_dir):
    """Docs, tensors or caches kept per Doc would make RSS climb through the stream.

    The texts draw on a bounded vocabulary: spaCy's StringStore grows by design with
    every new word (about 9 MB per 20,000 new numbers), which is not ours to test. The
    baseline is the highest RSS over docs 6,000-12,000 (well after warm-up), so
    allocator jitter of a few MB does not count;
    keeping every Doc grows it by about 50 MB by doc 24,000.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model gains nothing from threads on a busy machine
    try:
        nlp = make_nlp(bert_dir)
        process = psutil.Process()
        texts = (f"Angela Merkel met {i % 500} people in Paris on day {i % 97} ." for i in range(24_000))
        rss = {}
        n_ents = 0
        for i, doc in enumerate(nlp.pipe(texts, batch_size=256)):
            n_ents += len(doc.ents)
            if (i + 1) % 2_000 == 0:
                rss[i + 1] = process.memory_info().rss
        growth_mb = (rss[24_000] - max(rss[n] for n in range(6_000, 12_001, 2_000))) / 2**20
        assert n_ents == 48_000
        assert growth_mb < 25, f"RSS grew {growth_mb:.1f} MB between docs 6,000-12,000 and doc 24,000"
        assert set(nlp.get_pipe("direct_ner").timings) == {"tokenize", "forward", "decode", "annotate"}
    finally:
        torch.set_num_threads(threads)
