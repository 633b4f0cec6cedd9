"""The Ray Data path: DirectPredictor in map_batches and `python -m spacy_direct_use.annotate`.

One local Ray session (2 CPUs) serves every test: Ray takes seconds to start.
"""
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
import pandas as pd  # noqa: E402  (ray[data] brings pandas and pyarrow)
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import spacy  # noqa: E402

from conftest import make_lookup_model, make_nlp, make_sentence_encoder, make_sequence_classifier  # noqa: E402
from spacy_direct_use import DirectNERError  # noqa: E402
from spacy_direct_use.annotate import main as annotate_main  # noqa: E402
from spacy_direct_use.annotate import read_corpus  # noqa: E402
from spacy_direct_use.ray import CATS_TYPE, ENTITIES_TYPE, TOKENS_TYPE, DirectNERPredictor, DirectPredictor  # noqa: E402

TEXTS_WITH_ENTITIES = [f"Angela Merkel met Jane Doe in Paris on day {i} ." for i in range(12)] + [
    "The United Nations moved from London to Berlin .",
    "Jane Doe stayed in London .",
]
TEXTS_WITHOUT_ENTITIES = ["nothing to see here", "", "   ", "\n\t", "no names at all , only words ."]


@pytest.fixture(scope="session")
def ray_session():
    # Logical CPUs (Ray's accounting, not cores): room for a run while the actor of a failed
    # run is still being torn down, which can take over a minute on a busy machine.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pipeline_dir(bert_dir, tmp_path_factory) -> Path:
    nlp = make_nlp(bert_dir)
    nlp.initialize()
    path = tmp_path_factory.mktemp("ray") / "pipeline"
    nlp.to_disk(path)
    return path


def expected_entities(pipeline_dir, texts):
    """What plain nlp.pipe finds, in the predictor's format."""
    nlp = spacy.load(pipeline_dir)
    return [
        [
            {"start_char": e.start_char, "end_char": e.end_char, "label": e.label_, "text": e.text, "score": score}
            for e, score in zip(doc.ents, doc.spans["direct_ner"].attrs["scores"])
        ]
        for doc in nlp.pipe(texts)
    ]


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# -- the predictor on its own (no Ray job) -------------------------------------------------


@pytest.mark.parametrize("batch_format", ["pyarrow", "pandas", "numpy"])
def test_predictor_keeps_columns_and_equals_nlp_pipe(pipeline_dir, batch_format):
    texts = TEXTS_WITH_ENTITIES + TEXTS_WITHOUT_ENTITIES
    ids = list(range(len(texts)))
    batch = {
        "pyarrow": pa.table({"id": ids, "text": texts}),
        "pandas": pd.DataFrame({"id": ids, "text": texts}),
        "numpy": {"id": pd.Series(ids).to_numpy(), "text": pd.Series(texts, dtype=object).to_numpy()},
    }[batch_format]
    out = DirectPredictor(str(pipeline_dir))(batch)
    assert out.column_names == ["id", "text", "entities"]
    assert out.column("id").to_pylist() == ids
    assert out.schema.field("entities").type == ENTITIES_TYPE
    entities = out.column("entities").to_pylist()
    assert entities == expected_entities(pipeline_dir, texts)
    assert all(entities[: len(TEXTS_WITH_ENTITIES)])
    assert entities[len(TEXTS_WITH_ENTITIES):] == [[]] * len(TEXTS_WITHOUT_ENTITIES)


def test_a_pipeline_with_direct_textcat_gets_a_cats_column(bert_dir, tmp_path):
    nlp = make_nlp(bert_dir)
    model = make_sequence_classifier(tmp_path / "sentiment", ["NEGATIVE", "POSITIVE"])
    nlp.add_pipe("direct_textcat", config={"model": str(model)})
    nlp.to_disk(tmp_path / "pipeline")
    texts = TEXTS_WITH_ENTITIES + TEXTS_WITHOUT_ENTITIES
    out = DirectPredictor(str(tmp_path / "pipeline"))(pa.table({"text": texts}))
    assert out.column_names == ["text", "entities", "cats"] and out.schema.field("cats").type == CATS_TYPE
    expected = [[{"label": k, "score": v} for k, v in doc.cats.items()] for doc in spacy.load(tmp_path / "pipeline").pipe(texts)]
    got = out.column("cats").to_pylist()
    assert [[c["label"] for c in row] for row in got] == [["NEGATIVE", "POSITIVE"]] * len(texts)
    assert [[round(c["score"], 5) for c in row] for row in got] == [[round(c["score"], 5) for c in row] for row in expected]


def test_a_pipeline_with_direct_tagger_gets_a_tokens_column(tmp_path):
    rules = {"angela": "PROPN", "merkel": "PROPN", "paris": "PROPN", "to": "ADP"}
    model = make_lookup_model(tmp_path / "upos", rules, labels=["NOUN", "PROPN", "ADP"], strength=4.0)
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_tagger", config={"model": str(model)})
    nlp.to_disk(tmp_path / "pipeline")
    out = DirectPredictor(str(tmp_path / "pipeline"))(pa.table({"text": ["Angela Merkel flew to Paris", ""]}))
    assert out.schema.field("tokens").type == TOKENS_TYPE
    first, empty = out.column("tokens").to_pylist()
    assert [(t["text"], t["pos"]) for t in first] == [("Angela", "PROPN"), ("Merkel", "PROPN"), ("flew", "NOUN"), ("to", "ADP"), ("Paris", "PROPN")]
    assert first[4]["start_char"] == 22 and empty == []


def test_a_pipeline_with_direct_vectors_gets_a_vector_column(tmp_path):
    model = make_sentence_encoder(tmp_path / "st")
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_vectors", config={"model": str(model)})
    nlp.to_disk(tmp_path / "pipeline")
    texts = ["Angela Merkel flew to Paris.", "", None, "Jane Doe visited Berlin."]
    out = DirectPredictor(str(tmp_path / "pipeline"), on_bad_text="empty")(pa.table({"text": texts}))
    assert out.schema.field("vector").type == pa.list_(pa.float32(), 32)
    got = out.column("vector").to_pylist()
    assert got[2] is None
    expected = [doc.vector for doc in spacy.load(tmp_path / "pipeline").pipe([t for t in texts if t is not None])]
    for row, vector in zip([got[0], got[1], got[3]], expected):
        assert row == pytest.approx(vector.tolist(), abs=1e-6)


def test_batch_without_entities_has_the_fixed_schema(pipeline_dir, tmp_path):
    out = DirectPredictor(str(pipeline_dir))(pa.table({"text": TEXTS_WITHOUT_ENTITIES}))
    assert out.schema.field("entities").type == ENTITIES_TYPE
    pq.write_table(out, tmp_path / "empty.parquet")
    assert pq.read_schema(tmp_path / "empty.parquet").field("entities").type == ENTITIES_TYPE


@pytest.mark.parametrize("bad", [None, 42, float("nan")])
def test_bad_text_names_the_row_and_the_option(pipeline_dir, bad):
    batch = pd.DataFrame({"id": ["a", "b", "c"], "text": ["Angela Merkel", bad, "Paris"]}, dtype=object)
    with pytest.raises(DirectNERError) as error:
        DirectPredictor(str(pipeline_dir))(batch)
    message = str(error.value)
    assert "Row 1 of a batch of 3" in message and "id='b'" in message
    assert repr(bad) in message and 'on_bad_text="empty"' in message and "--on-bad-text empty" in message
    out = DirectPredictor(str(pipeline_dir), on_bad_text="empty")(batch)
    assert [len(entities) for entities in out.column("entities").to_pylist()] == [1, 0, 1]


def test_missing_text_column_and_bad_option(pipeline_dir):
    with pytest.raises(DirectNERError, match="no text column 'text'; its columns are \\['body'\\]"):
        DirectPredictor(str(pipeline_dir))(pa.table({"body": ["Paris"]}))
    out = DirectPredictor(str(pipeline_dir), text_key="body")(pa.table({"body": ["Paris"]}))
    assert out.column("entities").to_pylist()[0][0]["text"] == "Paris"
    with pytest.raises(DirectNERError, match=r"on_bad_text='skip'.*DirectPredictor\(pipeline"):
        DirectPredictor(str(pipeline_dir), on_bad_text="skip")
    assert DirectNERPredictor is DirectPredictor  # the old name, kept for users' code


def test_input_format_is_guessed_or_refused(tmp_path):
    write_jsonl(tmp_path / "mixed" / "a.jsonl", [{"text": "x"}])
    (tmp_path / "mixed" / "b.csv").write_text("text\nx\n")
    with pytest.raises(DirectNERError, match="Cannot tell whether .* is JSONL or Parquet .*--input-format"):
        read_corpus(str(tmp_path / "mixed"))


def test_importing_the_package_does_not_import_ray():
    code = "import sys, spacy_direct_use; assert 'ray' not in sys.modules, 'ray was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- through Ray ---------------------------------------------------------------------------


@pytest.mark.slow
def test_annotate_command_every_row_once_and_same_entities(ray_session, pipeline_dir, tmp_path, capsys):
    """Two input files, one without a single entity: both write Parquet with the fixed schema."""
    rows = [{"id": i, "text": t} for i, t in enumerate(TEXTS_WITH_ENTITIES * 3)]
    empty_rows = [{"id": 1000 + i, "text": t} for i, t in enumerate(TEXTS_WITHOUT_ENTITIES)]
    write_jsonl(tmp_path / "in" / "part-0.jsonl", rows)
    write_jsonl(tmp_path / "in" / "part-1.jsonl", empty_rows)
    out = tmp_path / "out"
    summary = annotate_main([str(tmp_path / "in"), str(out), "--pipeline", str(pipeline_dir), "--batch-size", "8"])

    files = sorted(out.glob("*.parquet"))
    assert len(files) >= 2
    assert all(pq.read_schema(f).field("entities").type == ENTITIES_TYPE for f in files)
    table = pq.read_table(out).sort_by("id")
    all_rows = rows + empty_rows
    assert table.column("id").to_pylist() == [row["id"] for row in all_rows]  # each row exactly once
    assert table.column("text").to_pylist() == [row["text"] for row in all_rows]
    texts = [row["text"] for row in all_rows]
    assert table.column("entities").to_pylist() == expected_entities(pipeline_dir, texts)
    n_entities = sum(len(e) for e in expected_entities(pipeline_dir, texts))
    assert (summary.rows, summary.entities, summary.rows_without_text) == (len(all_rows), n_entities, 0)
    assert summary.words == sum(len(t.split()) for t in texts)
    assert f"{len(all_rows):,} rows, {n_entities:,} entities" in capsys.readouterr().out

    with pytest.raises(DirectNERError, match="already exists .* --overwrite"):
        annotate_main([str(tmp_path / "in"), str(out), "--pipeline", str(pipeline_dir)])


@pytest.mark.slow
def test_annotate_command_bad_text_error_or_count(ray_session, pipeline_dir, tmp_path):
    rows = [{"id": 0, "text": "Angela Merkel"}, {"id": 1, "text": None}, {"id": 2}, {"id": 3, "text": "Paris"}]
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.int64()), ("text", pa.string())])),
                   tmp_path / "in.parquet")
    command = [str(tmp_path / "in.parquet"), str(tmp_path / "out"), "--pipeline", str(pipeline_dir)]
    message = failure_message(annotate_main, command)  # Ray wraps the actor's DirectNERError
    assert "Row 1 of a batch of 4 (id=1)" in message and "--on-bad-text empty" in message
    wait_for_idle_cluster()

    summary = annotate_main(command + ["--on-bad-text", "empty", "--overwrite"])
    assert (summary.rows, summary.entities, summary.rows_without_text) == (4, 2, 2)
    table = pq.read_table(tmp_path / "out").sort_by("id")
    assert table.column("id").to_pylist() == [0, 1, 2, 3]
    assert [len(e) for e in table.column("entities").to_pylist()] == [1, 0, 0, 1]


def failure_message(function, *args) -> str:
    """The message of the exception `function` raises, with its traceback dropped: the traceback's
    frames hold the failed Dataset, whose actor would otherwise keep its CPU for the next test."""
    try:
        function(*args)
    except Exception as error:  # noqa: BLE001 - whatever Ray wraps the error in
        return str(error)
    finally:
        gc.collect()
    pytest.fail("no error was raised")


def wait_for_idle_cluster(seconds: float = 180, cpus_needed: float = 2) -> None:
    """Wait until a run (one actor, one CPU for reading) has the CPUs it needs."""
    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0) < cpus_needed:
        assert time.monotonic() < deadline, f"Ray still holds CPUs after {seconds} s: {ray.available_resources()}"
        time.sleep(0.5)


class CrashOncePredictor(DirectPredictor):
    """Kills its own worker process in its first call, leaving a flag file so it happens once."""

    def __init__(self, pipeline: str, flag: str, **kwargs) -> None:
        super().__init__(pipeline, **kwargs)
        self.flag = Path(flag)

    def __call__(self, batch):
        if not self.flag.exists():
            self.flag.write_text(str(os.getpid()))
            os._exit(1)  # a hard crash: no exception, no clean-up, as when a worker is killed
        return super().__call__(batch)


@pytest.mark.slow
def test_a_crashed_actor_is_restarted_and_no_row_is_lost_or_doubled(ray_session, pipeline_dir, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test file
    flag = tmp_path / "crashed"
    rows = [{"id": i, "text": t} for i, t in enumerate((TEXTS_WITH_ENTITIES + TEXTS_WITHOUT_ENTITIES) * 4)]
    ds = ray.data.from_items(rows, override_num_blocks=4).map_batches(
        CrashOncePredictor,
        fn_constructor_kwargs={"pipeline": str(pipeline_dir), "flag": str(flag)},
        batch_size=16,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=1,
    )
    ds.write_parquet(str(tmp_path / "out"))
    assert flag.exists(), "the actor never crashed: the test tested nothing"
    table = pq.read_table(tmp_path / "out").sort_by("id")
    assert table.column("id").to_pylist() == list(range(len(rows)))
    assert table.column("entities").to_pylist() == expected_entities(pipeline_dir, [r["text"] for r in rows])
