"""The project's scripts: shared pieces, the token-level report and the benchmark on
tiny data, and the project.yml workflow (convert -> assemble -> score -> compare
-> visualize) run on a few CoNLL-2003 test articles with the real model."""

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.vocab import Vocab

from conftest import ents

ROOT = Path(__file__).resolve().parent.parent
MAX_ARTICLES = 4
CONLL = "-DOCSTART- -X- -X- O\n\nAngela X X I-PER\nMerkel X X I-PER\nflew X X O\n\nto X X O\nParis X X I-LOC\n. X X O\n"


@pytest.fixture
def scripts(monkeypatch) -> ModuleType:
    """Import a script as the project runs it: from its folder, which Python puts first on sys.path."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    return importlib.import_module


def test_gold_docs_and_fresh_docs_from_their_words(scripts, tmp_path: Path) -> None:
    harness = scripts("harness")
    (tmp_path / "eng.test").write_text(CONLL, encoding="utf8")
    articles = harness.read_gold(tmp_path / "eng.test", granularity="article")
    DocBin(docs=articles).to_disk(tmp_path / "gold.spacy")
    assert [ents(d) for d in harness.read_gold(tmp_path / "gold.spacy")] == [[("Angela Merkel", "PER"), ("Paris", "LOC")]]
    assert len(harness.read_gold(tmp_path / "eng.test", granularity="sentence", max_docs=1)) == 1
    fresh = harness.words_doc(Vocab(), articles[0])
    assert fresh.text == articles[0].text and not fresh.ents and not fresh.has_annotation("SENT_START")
    assert [s.start for s in harness.words_doc(Vocab(), articles[0], gold_sents=True).sents] == [0, 3]


def test_benchmark_writes_its_numbers(scripts, bert_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "eng.test").write_text(CONLL, encoding="utf8")
    args = ["--model", str(bert_dir), "--conll-file", str(tmp_path / "eng.test"), "--granularity", "sentence"]
    args += ["--batch-sizes", "2", "--repeats", "1", "--threads", "1", "--output", str(tmp_path / "benchmark.json")]
    scripts("benchmark").main(args)
    (run,) = json.loads((tmp_path / "benchmark.json").read_text())["runs"]
    assert (run["granularity"], run["batch_size"], run["docs"], run["words"]) == ("sentence", 2, 2, 6)
    assert set(run["systems"]) == {"floor", "direct_ner", "hf-pipeline[first]", "hf-pipeline[simple]"}
    assert all(r["words_per_second"] > 0 and r["forward_calls"] > 0 for r in run["systems"].values())
    assert set(run["systems"]["direct_ner"]["timings"]) == {"tokenize", "forward", "decode", "annotate"}


def test_error_analysis_tells_the_error_kinds_apart(scripts, tmp_path: Path) -> None:
    pytest.importorskip("nervaluate", reason="nervaluate 1.x needs Python 3.11+")
    visualize = scripts("visualize")
    words = "Angela Merkel met John Smith in New York and Paris with Acme yesterday .".split()
    gold, pred = Doc(Vocab(), words=words), Doc(Vocab(), words=words)
    gold.ents = [Span(gold, s, e, label) for s, e, label in ((0, 2, "PER"), (3, 5, "PER"), (6, 8, "LOC"), (9, 10, "LOC"), (11, 12, "ORG"))]
    # correct, spurious, type (same tokens), boundary (same type), boundary+type; 'Paris' missed
    pred.ents = [Span(pred, s, e, label) for s, e, label in ((0, 2, "PER"), (2, 3, "MISC"), (3, 5, "ORG"), (7, 8, "LOC"), (11, 13, "LOC"))]
    analysis = visualize.analyse([Example(pred, gold)])
    kinds = {t: {k: n for k, n in c.items() if n} for t, c in analysis.kinds.items()}
    assert kinds == {
        "PER": {"correct": 1, "type": 1}, "LOC": {"boundary": 1, "missed": 1}, "ORG": {"boundary+type": 1}, "MISC": {"spurious": 1}
    }
    assert {k: n for k, n in analysis.confusion.items() if n} == {
        ("PER", "PER"): 1, ("PER", "ORG"): 1, ("LOC", "LOC"): 1, ("LOC", "missed"): 1, ("ORG", "LOC"): 1, ("spurious", "MISC"): 1
    }
    assert analysis.predicted_kinds == {(0, 1): "spurious", (0, 2): "type", (0, 3): "boundary", (0, 4): "boundary+type"}
    assert analysis.missed == {(0, 3)}
    assert analysis.prf["all"]["p"] == pytest.approx(1 / 5) and analysis.prf["PER"]["r"] == pytest.approx(1 / 2)
    page = visualize.doc_pair(0, Example(pred, gold), analysis)
    assert page.count(visualize.FALSE_POSITIVE_COLOR) == 4 and page.count(visualize.FALSE_NEGATIVE_COLOR) == 4
    assert "LOC ✗ missed" in page and "ORG ✗ type" in page
    visualize.plot_confusion(analysis, tmp_path / "confusion.png")
    visualize.plot_per_type(analysis, tmp_path / "per_type.png")
    assert all((tmp_path / name).read_bytes().startswith(b"\x89PNG") for name in ("confusion.png", "per_type.png"))


def test_token_report(scripts) -> None:
    token_report = scripts("score").token_report
    y_true = ["B-PER", "I-PER", "O", "B-LOC", "O"]
    y_pred = ["B-PER", "O", "O", "B-LOC", "B-LOC"]
    report = token_report(y_true, y_pred)
    assert list(report) == ["B-LOC", "B-PER", "I-PER", "O", "micro avg", "macro avg", "weighted avg"]

    def row(name: str) -> tuple:
        return tuple(round(float(report[name][k]), 4) for k in ("precision", "recall", "f1-score", "support"))

    assert row("B-LOC") == (0.5, 1.0, 0.6667, 1)
    assert row("I-PER") == (0.0, 0.0, 0.0, 1)
    assert row("O") == (0.5, 0.5, 0.5, 2)
    assert row("micro avg") == (0.6, 0.6, 0.6, 5)
    assert row("macro avg") == (0.5, 0.625, 0.5417, 5)
    assert row("weighted avg") == (0.5, 0.6, 0.5333, 5)


@pytest.fixture(scope="module")
def env(real_model_dir: Path, conll_dir: Path) -> dict:
    """The project variables for the real model and data (skips when their variables are unset)."""
    return {"model": str(real_model_dir), "conll_dir": str(conll_dir)}


def make_project(tmp_path: Path) -> Path:
    """A copy of the project files (not its outputs) in a temporary directory."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    for folder in ("configs", "scripts"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return project


@pytest.mark.slow
@pytest.mark.parametrize("granularity", ["sentence", "article"])
def test_workflow_all(env: dict, tmp_path: Path, granularity: str) -> None:
    project = make_project(tmp_path)
    overrides = {
        **env,
        "granularity": granularity,
        "max_articles": MAX_ARTICLES,
        "batch_size": 8,
        "visualize_docs": "all",
        "visualize_limit": 3,
    }
    cmd = [sys.executable, "-m", "spacy", "project", "run", "all", str(project)]
    cmd += [arg for key, value in overrides.items() for arg in (f"--vars.{key}", str(value))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    for split in ("dev", "test"):
        metrics = json.loads((project / "metrics" / f"{split}.json").read_text())
        assert {"token_acc", "ents_p", "ents_r", "ents_f", "ents_per_type"} <= set(metrics)
        assert metrics["token_acc"] == 1.0
        assert metrics["ents_f"] > 0.5, (split, metrics)

    compare = json.loads((project / "metrics" / "compare.json").read_text())["results"]
    assert set(compare) == {
        "direct_ner",
        "hf_pipeline[simple]",
        "hf_pipeline[first]",
        "hf_pipeline[average]",
        "hf_pipeline[max]",
        "word_level_reference",
    }
    assert all(0.5 < row["f"] <= 1.0 for row in compare.values())

    html = (project / "visualize" / "errors.html").read_text(encoding="utf8")
    assert html.count("<section>") == 3 and html.count(">predicted</h2>") == 3 and html.count(">gold</h2>") == 3
    errors = json.loads((project / "visualize" / "errors.json").read_text())
    n_gold = sum(n for kinds in errors["kinds"].values() for k, n in kinds.items() if k != "spurious")
    assert n_gold == sum(row["count"] for row in errors["confusion"] if row["gold"] != "spurious") > 0
    assert all((project / "visualize" / f"{name}.png").stat().st_size > 10_000 for name in ("confusion", "per_type"))


WORKFLOW_CONLL = """\
-DOCSTART- -X- -X- O

Angela NNP I-NP I-PER
Merkel NNP I-NP I-PER
flew VBD I-VP O
to TO I-PP O
Paris NNP I-NP I-LOC
. . O O

Jane NNP I-NP I-PER
Doe NNP I-NP I-PER
stayed VBD I-VP O
in IN I-PP O
London NNP I-NP I-LOC
. . O O
"""


def workflow_conll_dir(tmp_path: Path) -> Path:
    """A CoNLL-2003 folder whose dev and test files are WORKFLOW_CONLL."""
    conll_dir = tmp_path / "conll"
    conll_dir.mkdir()
    for name in ("eng.testa", "eng.testb"):
        (conll_dir / name).write_text(WORKFLOW_CONLL, encoding="utf8")
    return conll_dir


@pytest.mark.slow
def test_evaluate_workflow_on_a_fresh_copy(bert_dir: Path, tmp_path: Path) -> None:
    """`spacy project run evaluate` runs convert -> assemble -> score from nothing but the
    project files, a model and the data directory (tiny ones here)."""
    project, conll_dir = make_project(tmp_path), workflow_conll_dir(tmp_path)
    cmd = [sys.executable, "-m", "spacy", "project", "run", "evaluate", str(project)]
    cmd += ["--vars.model", str(bert_dir), "--vars.conll_dir", str(conll_dir), "--vars.batch_size", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for split in ("dev", "test"):
        metrics = json.loads((project / "metrics" / f"{split}.json").read_text())
        assert metrics["ents_f"] == 1.0, (split, metrics)  # the tiny model knows these four names
