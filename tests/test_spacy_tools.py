"""direct_ner with spaCy's own tools and pipelines: nlp.pipe's batch contract, swapping it
into a trained pipeline (the README's recipes), spacy-transformers pipelines, spacy package."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import spacy
from spacy.training import Example
from spacy.util import fix_random_seed

from conftest import build_wheel, make_lookup_model, make_sequence_classifier, train_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from recipes import TRAIN, train_tiny_ner  # noqa: E402  (the tiny trained ner examples/recipes.py builds)

ONTONOTES = {"PER": "PERSON", "LOC": "GPE"}  # the README's label_map (MISC stays MISC)
TEXT = TRAIN[0][0]  # "Angela Merkel paid 300 dollars in Paris on Monday ."


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory) -> Path:
    return train_tiny_ner(tmp_path_factory.mktemp("trained") / "pipeline")


def recipe(trained_dir, bert_dir, how):
    nlp = spacy.load(trained_dir)
    config = {"model": str(bert_dir), "label_map": ONTONOTES}
    if how == "replace":
        nlp.replace_pipe("ner", "direct_ner", config=config)
    elif how == "after, overwrite_ents":
        nlp.add_pipe("direct_ner", after="ner", config={**config, "overwrite_ents": True})
    elif how != "trained ner alone":
        nlp.add_pipe("direct_ner", **{how: "ner"}, config=config)
    return ents(nlp(TEXT))


TRANSFORMER = [("Angela Merkel", "PERSON"), ("Paris", "GPE")]  # what the tiny token classifier finds
TRAINED = [("300 dollars", "MONEY"), ("Monday", "DATE")]


@pytest.mark.parametrize(
    "how,expected",
    [
        ("trained ner alone", TRAINED),
        ("replace", TRANSFORMER),  # the trained ner's DATE and MONEY are gone
        ("before", [TRANSFORMER[0], TRAINED[0], TRANSFORMER[1], TRAINED[1]]),  # ner fills around them
        ("after", [TRANSFORMER[0], TRAINED[0], TRANSFORMER[1], TRAINED[1]]),  # fills gaps the ner left
        ("after, overwrite_ents", [TRANSFORMER[0], TRAINED[0], TRANSFORMER[1], TRAINED[1]]),
    ],
)
def test_recipes_with_a_trained_ner(trained_dir, bert_dir, how, expected):
    assert recipe(trained_dir, bert_dir, how) == expected


@pytest.mark.slow
def test_the_recipes_example_runs_as_documented_without_a_pipeline(bert_dir, tmp_path):
    """`python examples/recipes.py /tmp/tiny_trained MODEL` (docs/spacy-tools.md) trains the
    missing pipeline first, then prints each recipe's entities."""
    script = Path(__file__).resolve().parents[1] / "examples" / "recipes.py"
    target = tmp_path / "tiny_trained"
    run = subprocess.run([sys.executable, str(script), str(target), str(bert_dir)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{target} is not installed or saved: training") and (target / "meta.json").is_file()
    both = [("Angela Merkel", "PERSON"), ("300 dollars", "MONEY"), ("Paris", "GPE"), ("Monday", "DATE")]
    assert lines[2] == f"{'trained ner alone':45} {[('300 dollars', 'MONEY'), ('Monday', 'DATE')]}"
    replace = 'replace_pipe("ner", "direct_ner")'
    assert lines[3] == f"{replace:45} {[('Angela Merkel', 'PERSON'), ('Paris', 'GPE')]}"
    assert lines[4:] == [f"{name:45} {both}" for name in ('add_pipe(before="ner")', 'add_pipe(after="ner")', 'add_pipe(after="ner", overwrite_ents=True)')]


def test_before_ner_the_trained_ner_cannot_break_a_transformer_entity(trained_dir, tmp_path):
    """The trained ner keeps the entities it finds already set (spaCy's ner respects preset
    entities): here the token classifier calls 'Monday' an ORG and wins before it, loses
    after it (default), and wins again with overwrite_ents."""
    model = make_lookup_model(tmp_path / "m", {"monday": "B-ORG"}, "wordpiece")
    results = {}
    for how, settings in [("before", {}), ("after", {}), ("after", {"overwrite_ents": True})]:
        nlp = spacy.load(trained_dir)
        nlp.add_pipe("direct_ner", **{how: "ner"}, config={"model": str(model), **settings})
        results[(how, bool(settings))] = ents(nlp(TEXT))
    assert results[("before", False)] == [("300 dollars", "MONEY"), ("Monday", "ORG")]
    assert results[("after", False)] == [("300 dollars", "MONEY"), ("Monday", "DATE")]
    assert results[("after", True)] == [("300 dollars", "MONEY"), ("Monday", "ORG")]


def test_pipe_yields_after_at_most_batch_size_docs(bert_dir):
    """spaCy's batch contract: nlp.pipe reads no more than batch_size Docs before the
    first comes out (a slow stream, spacy apply's progress bar, spacy benchmark speed)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(bert_dir)})
    read = []

    def stream():
        for i in range(100):
            read.append(i)
            yield f"Angela Merkel met {i} people in Paris ."

    docs = nlp.pipe(stream(), batch_size=8)
    first = next(docs)
    assert len(read) <= 8 and ents(first) == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert len(list(docs)) == 99


TRF_CONFIG = """
[nlp]
lang = "en"
pipeline = ["transformer", "tagger", "ner"]

[components]

[components.transformer]
factory = "transformer"

[components.transformer.model]
@architectures = "spacy-transformers.TransformerModel.v3"
name = "{name}"
mixed_precision = false

[components.transformer.model.get_spans]
@span_getters = "spacy-transformers.strided_spans.v1"
window = 24
stride = 16

[components.transformer.model.grad_scaler_config]

[components.transformer.model.tokenizer_config]
use_fast = true

[components.transformer.model.transformer_config]

[components.tagger]
factory = "tagger"

[components.tagger.model]
@architectures = "spacy.Tagger.v2"
nO = null

[components.tagger.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[components.tagger.model.tok2vec.pooling]
@layers = "reduce_mean.v1"

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 16
maxout_pieces = 2
use_upper = false
nO = null

[components.ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[components.ner.model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""


def test_replacing_the_ner_of_a_spacy_transformers_pipeline(bert_dir, tmp_path):
    """An en_core_web_trf-style pipeline: a shared transformer, a listening tagger and ner."""
    pytest.importorskip("spacy_transformers")
    from transformers import BertConfig, BertModel

    tokenizer = train_tokenizer("wordpiece")  # a tiny local encoder: nothing is downloaded
    vocab = tokenizer.get_vocab()
    encoder = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=64, pad_token_id=vocab["[PAD]"]))
    encoder.save_pretrained(tmp_path / "encoder", safe_serialization=True)
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(tmp_path / "encoder")
    fix_random_seed(0)
    config = spacy.util.load_config_from_str(TRF_CONFIG.replace("{name}", str(tmp_path / "encoder")))
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    texts = ["Angela Merkel flew to Paris .", "Jane Doe stayed in London .", "The United Nations met in Berlin ."]
    examples = []
    for text in texts:
        tags = ["PROPN" if word[0].isupper() else "X" for word in text.split()]
        examples.append(Example.from_dict(nlp.make_doc(text), {"tags": tags, "entities": ["O"] * len(tags)}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    tags = [[t.tag_ for t in doc] for doc in nlp.pipe(texts)]

    nlp.replace_pipe("ner", "direct_ner", config={"model": str(bert_dir)})
    expected = [[("Angela Merkel", "PER"), ("Paris", "LOC")], [("Jane Doe", "PER"), ("London", "LOC")], [("United Nations", "ORG"), ("Berlin", "LOC")]]
    docs = list(nlp.pipe(texts, batch_size=2))
    assert [ents(d) for d in docs] == expected
    assert [[t.tag_ for t in d] for d in docs] == tags  # the shared transformer and its tagger are unchanged
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["transformer", "tagger", "ner"]
    docs = list(loaded.pipe(texts))
    assert [ents(d) for d in docs] == expected
    assert [[t.tag_ for t in d] for d in docs] == tags


@pytest.mark.slow
def test_spacy_package_builds_a_wheel_that_requires_only_this_package(bert_dir, tmp_path):
    pytest.importorskip("build")
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(bert_dir)})
    nlp.add_pipe("direct_textcat", config={"model": str(make_sequence_classifier(tmp_path / "sentiment", ["NEG", "POS"]))})
    nlp.meta["name"] = "direct_ner_demo"
    nlp.to_disk(tmp_path / "pipeline")
    wheel = build_wheel(tmp_path / "pipeline", tmp_path / "packages")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    requirements = sorted(line.split(":", 1)[1].split("<")[0].split(">")[0].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:"))
    assert requirements == ["spacy", "spacy-direct-use"], metadata
    weights = [name for name in modes if name.endswith(("direct_ner/model/model.safetensors", "direct_textcat/model/model.safetensors"))]
    assert len(weights) == 2 and all(modes[name] & 0o444 == 0o444 for name in modes), {n: oct(m) for n, m in modes.items()}
