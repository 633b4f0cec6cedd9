"""engine "openvino": every component's output equals torch's in fp32; int8 is calibrated by
nlp.initialize on the examples' texts (weight-only without them), saved inside the pipeline
and read back with identical output; what an engine cannot run is a coded error."""
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import spacy
from spacy.training import Example

pytest.importorskip("openvino", reason="openvino not installed (pip install -e '.[openvino]')")

from spacy_direct_use import DirectUseError  # noqa: E402

TEXTS = [
    "Angela Merkel flew to Paris to meet Jane Doe .",
    "The United Nations met in Berlin and London .",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "",
]


@pytest.fixture(scope="module")
def models(component_models) -> Dict[str, Path]:
    return component_models


def build(factory: str, model: Path, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, config={"model": str(model), **config})
    return nlp


def outputs(nlp: spacy.Language):
    """What each component wrote, as numbers: entity spans and scores, cats, tags, vectors."""
    result = []
    for doc in nlp.pipe(TEXTS):
        group = doc.spans.get("direct_ner")
        result.append({
            "ents": [(e.start, e.end, e.label_) for e in doc.ents],
            "scores": list(group.attrs["scores"]) if group is not None else [],
            "cats": doc.cats,
            "pos": [t.pos_ for t in doc],
            "vector": doc.vector.tolist() if doc.has_vector and len(doc) else [],
        })  # fmt: skip
    return result


def assert_close(a, b, tolerance: float) -> None:
    for x, y in zip(a, b):
        assert x["ents"] == y["ents"] and x["pos"] == y["pos"] and set(x["cats"]) == set(y["cats"])
        np.testing.assert_allclose(x["scores"], y["scores"], atol=tolerance)
        np.testing.assert_allclose([x["cats"][k] for k in sorted(x["cats"])], [y["cats"][k] for k in sorted(y["cats"])], atol=tolerance)
        np.testing.assert_allclose(x["vector"], y["vector"], atol=tolerance)


@pytest.mark.parametrize("factory", ["direct_ner", "direct_textcat", "direct_tagger", "direct_vectors"])
def test_fp32_equals_torch(factory, models):
    expected = outputs(build(factory, models[factory]))
    assert_close(outputs(build(factory, models[factory], engine="openvino")), expected, 1e-4)


def test_packed_rows_as_torch_packs_them(models):
    """A token classifier the torch runner packs is converted for packed rows: the same windows
    share rows, with the same output as torch's; pack_windows off: one window per row."""
    packed = build("direct_ner", models["direct_ner"], engine="openvino")
    expected = outputs(build("direct_ner", models["direct_ner"]))
    assert_close(outputs(packed), expected, 1e-4)
    runner = packed.get_pipe("direct_ner")._runner
    assert runner.mask_kind is not None and [p.get_any_name() for p in runner.model.model.inputs] == ["input_ids", "position_ids", "attention_mask"]
    unpacked = build("direct_ner", models["direct_ner"], engine="openvino", pack_windows=False)
    assert_close(outputs(unpacked), expected, 1e-4)
    assert unpacked.get_pipe("direct_ner")._runner.mask_kind is None
    sequence = build("direct_textcat", models["direct_textcat"], engine="openvino")
    outputs(sequence)
    assert sequence.get_pipe("direct_textcat")._runner.mask_kind is None, "a sequence head reads one window per row"


def test_zero_shot_nli_and_running_text_equal_torch(models):
    labels = {"labels": ["sports", "politics"]}
    expected = outputs(build("direct_textcat", models["nli"], **labels))
    assert_close(outputs(build("direct_textcat", models["nli"], engine="openvino", **labels)), expected, 1e-4)
    expected = outputs(build("direct_ner", models["direct_ner"], alignment_mode="split"))
    assert_close(outputs(build("direct_ner", models["direct_ner"], alignment_mode="split", engine="openvino")), expected, 1e-4)


@pytest.mark.slow
def test_int8_calibrated_by_initialize_and_saved(models, tmp_path):
    model = models["direct_ner"]
    calibrated = build("direct_ner", model, engine="openvino", precision="int8")
    calibrated.initialize(lambda: [Example(calibrated.make_doc(t), calibrated.make_doc(t)) for t in TEXTS * 8])
    weights_only = build("direct_ner", model, engine="openvino", precision="int8")
    weights_only.initialize()
    calibrated.to_disk(tmp_path / "calibrated")
    weights_only.to_disk(tmp_path / "weights_only")
    graph = (tmp_path / "calibrated" / "direct_ner" / "model" / "openvino_int8.xml").read_text()
    assert "FakeQuantize" in graph, "activations quantized on the examples"
    assert "FakeQuantize" not in (tmp_path / "weights_only" / "direct_ner" / "model" / "openvino_int8.xml").read_text()
    reloaded = spacy.load(tmp_path / "calibrated")
    assert outputs(reloaded) == outputs(calibrated), "the saved quantized model, read back: identical output"
    assert reloaded.get_pipe("direct_ner")._runner.mask_kind == calibrated.get_pipe("direct_ner")._runner.mask_kind is not None, "packed rows, read back"
    assert_close(outputs(calibrated), outputs(build("direct_ner", model)), 0.05)


def test_what_an_engine_cannot_run_is_a_coded_error(models, tmp_path, monkeypatch):
    with pytest.raises(DirectUseError, match=r"\[direct_ner E008\] Invalid setting engine='tensorrt'"):
        build("direct_ner", models["direct_ner"], engine="tensorrt")
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E079\] engine 'openvino' cannot run on 'cuda'"):
        build("direct_textcat", models["direct_textcat"], engine="openvino", device="cuda")
    with pytest.raises(DirectUseError, match=r"\[direct_tagger E079\] engine 'onnxruntime' cannot run precision 'fp32'"):
        build("direct_tagger", models["direct_tagger"], engine="onnxruntime")
    monkeypatch.setitem(sys.modules, "openvino", None)
    nlp = build("direct_vectors", models["direct_vectors"], engine="openvino")
    doc = nlp.make_doc("A text.")
    with pytest.raises(DirectUseError, match=r"\[direct_vectors E077\].*spacy-direct-use\[openvino\]"):
        nlp.get_pipe("direct_vectors")(doc)
    assert not doc.user_data


def test_gliner_checkpoint_is_refused_before_loading(tmp_path, monkeypatch):
    model = tmp_path / "gliner"
    model.mkdir()
    (model / "gliner_config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "gliner", None)
    nlp = build("direct_ner", model, labels=["person"], engine="openvino")
    with pytest.raises(DirectUseError, match=r"\[direct_ner E079\] engine 'openvino' cannot run the GLiNER checkpoint"):
        nlp("Angela Merkel flew to Paris.")


@pytest.mark.slow
def test_n_process_after_use_in_the_parent(models):
    """Forked workers reuse the model compiled in the parent (run in a subprocess with a
    timeout: a runtime whose thread pool does not survive fork would hang)."""
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("direct_ner", config={{"model": {str(models["direct_ner"])!r}, "engine": "openvino"}})
        texts = {TEXTS[:2]!r} * 4
        one = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
        two = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts, n_process=2, batch_size=2)]
        assert one == two and any(one), (one, two)
        print("same")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "same" in run.stdout, run.stderr[-2000:]
