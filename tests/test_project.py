"""The project's scripts: the token-level report, and the project.yml workflow
(convert -> assemble -> score -> compare -> visualize) run on a few
CoNLL-2003 test articles with the real model."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_ARTICLES = 4


def load_script(name: str) -> ModuleType:
    """Import scripts/NAME.py without putting scripts/ on sys.path."""
    spec = importlib.util.spec_from_file_location(f"project_scripts_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_token_report() -> None:
    token_report = load_script("evaluate").token_report
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
        "visualize_limit": 3,
    }
    cmd = [sys.executable, "-m", "spacy", "project", "run", "all", str(project)]
    cmd += [arg for key, value in overrides.items() for arg in (f"--vars.{key}", str(value))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    for split in ("dev", "test"):
        metrics = json.loads((project / "metrics" / f"{split}.json").read_text())
        assert {"token_acc", "ents_p", "ents_r", "ents_f", "speed", "ents_per_type"} <= set(metrics)
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
    assert all(0.5 < row["f"] <= 1.0 and row["words_per_second"] > 0 for row in compare.values())

    html = (project / "visualize" / "test.html").read_text(encoding="utf8")
    assert html.count("predicted (") == 3 and html.count(" gold</h2>") == 3


CONLL = """\
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


@pytest.mark.slow
def test_evaluate_workflow_on_a_fresh_copy(bert_dir: Path, tmp_path: Path) -> None:
    """`spacy project run evaluate` runs convert -> assemble -> score from nothing but the
    project files, a model and the data directory (tiny ones here)."""
    project = make_project(tmp_path)
    conll_dir = tmp_path / "conll"
    conll_dir.mkdir()
    for name in ("eng.testa", "eng.testb"):
        (conll_dir / name).write_text(CONLL, encoding="utf8")
    cmd = [sys.executable, "-m", "spacy", "project", "run", "evaluate", str(project)]
    cmd += ["--vars.model", str(bert_dir), "--vars.conll_dir", str(conll_dir), "--vars.batch_size", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for split in ("dev", "test"):
        metrics = json.loads((project / "metrics" / f"{split}.json").read_text())
        assert metrics["ents_f"] == 1.0, (split, metrics)  # the tiny model knows these four names
