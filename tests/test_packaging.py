"""What a newcomer's install and test run meet: optional commands that name the extra they
need, the licence, an sdist that carries what its tests import, and real-model tests that
find ../shared by themselves and say what they skipped."""
import configparser
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import DEFAULT_SHARED, REAL_MODEL_SKIP, SHARED_FILES

ROOT = Path(__file__).resolve().parents[1]
RAY_EXTRA = 'pip install "spacy-direct-use[ray]"'


def run_without(modules, code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python where importing any of `modules` fails, as without the extra."""
    hide = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", hide + code], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("missing", ["pyarrow", "ray"])
def test_annotate_without_the_ray_extra_names_it(missing):
    run = run_without([missing], "import runpy; sys.argv = ['annotate', '--help']; runpy.run_module('spacy_direct_use.annotate', run_name='__main__')")
    assert run.returncode == 1
    assert RAY_EXTRA in run.stderr and f"'{missing}' is not installed" in run.stderr and "E046" in run.stderr
    assert "Traceback" not in run.stderr and "usage:" not in run.stdout


def test_importing_the_ray_module_without_the_extra_names_it():
    run = run_without(["ray"], "import spacy_direct_use.ray")
    assert run.returncode == 1
    assert "ModuleNotFoundError: [spacy_direct_use E046] spacy_direct_use.ray needs Ray Data and pyarrow" in run.stderr
    assert RAY_EXTRA in run.stderr


def test_the_package_installs_with_its_licence_and_a_summary_of_every_component():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["metadata"]["license_files"].split() == ["LICENSE"]
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 spacy-direct-use authors" in licence
    summary = setup["metadata"]["description"]
    assert all(name in summary for name in ("direct_ner", "direct_textcat", "zero-shot", "direct_tagger", "direct_vectors"))
    assert "no training step" in summary


@pytest.mark.slow
def test_the_sdist_carries_what_its_tests_import(tmp_path):
    pytest.importorskip("build")
    cmd = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check", "--outdir", str(tmp_path), str(ROOT)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "tests/test_errors.py", "tests/conftest.py", "examples/recipes.py"} <= names  # the last two: imported by tests


def run_pytest(test: str, **env: str) -> subprocess.CompletedProcess:
    """pytest on one test in a fresh process, with no SPACY_DIRECT_USE_* variable but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SPACY_DIRECT_USE_")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**clean, **env}, timeout=300)


def test_real_model_tests_say_what_they_skipped_and_why(tmp_path):
    run = run_pytest("tests/test_real_model.py", SPACY_DIRECT_USE_SHARED=str(tmp_path / "nowhere"))
    assert run.returncode == 0, run.stdout[-3000:]
    summary = [line for line in run.stdout.splitlines() if line.startswith("real-model tests skipped")]
    assert summary == [
        f"real-model tests skipped ({_skipped(run.stdout)}): SPACY_DIRECT_USE_SHARED={tmp_path / 'nowhere'} "
        "not found; set SPACY_DIRECT_USE_SHARED to a folder laid out as ../shared"
    ]
    (tmp_path / "shared" / "models").mkdir(parents=True)
    run = run_pytest("tests/test_real_model.py", SPACY_DIRECT_USE_SHARED=str(tmp_path / "shared"))
    assert f"{tmp_path / 'shared' / 'models' / 'minilm-conll03'} not found; set SPACY_DIRECT_USE_TEST_MODEL to where it is" in run.stdout


def _skipped(stdout: str) -> int:
    """The number of skipped tests in pytest's last line ("3 passed, 5 skipped in 1.2s")."""
    last = stdout.strip().splitlines()[-1]
    return int(last.split(" skipped")[0].split()[-1])


@pytest.mark.slow
def test_real_model_tests_find_shared_by_themselves():
    if not (DEFAULT_SHARED / SHARED_FILES["SPACY_DIRECT_USE_TEST_MODEL"]).is_dir():
        pytest.skip(f"{REAL_MODEL_SKIP}{DEFAULT_SHARED} not found (this test is of finding it)")
    run = run_pytest("tests/test_real_model.py::test_real_entities")
    assert " passed" in run.stdout and " skipped" not in run.stdout and "real-model tests skipped" not in run.stdout, run.stdout[-3000:]
