"""Swap direct_ner into a trained spaCy pipeline: each recipe's entities on one text.

    python examples/recipes.py [PIPELINE] [MODEL] [TEXT]

PIPELINE is a trained pipeline with a `ner` (default en_core_web_sm), MODEL a hub name
(default dslim/bert-base-NER) or a local directory. The model's CoNLL types are renamed
to OntoNotes ones where one fits: PER -> PERSON, LOC -> GPE (most CoNLL locations are
countries and cities); MISC has no OntoNotes counterpart and stays MISC.

Where PIPELINE is neither an installed package nor an existing directory, the script
first trains a tiny stand-in there (a tok2vec + ner that knows DATE and MONEY only,
trained on seven made-up sentences in a few seconds, `train_tiny_ner`), so it runs
offline, e.g. with a local model:

    python examples/recipes.py /tmp/tiny_trained ../shared/models/minilm-conll03
"""
import sys
import tempfile
from pathlib import Path

import spacy
from spacy.training import Example
from spacy.util import fix_random_seed, is_package

TRAIN = [  # made-up sentences for a tiny trained `ner` that knows DATE and MONEY only
    ("Angela Merkel paid 300 dollars in Paris on Monday .", [("300 dollars", "MONEY"), ("Monday", "DATE")]),
    ("Jane Doe earned 40 euros in London last year .", [("40 euros", "MONEY"), ("last year", "DATE")]),
    ("The United Nations spent 9 million dollars on Friday .", [("9 million dollars", "MONEY"), ("Friday", "DATE")]),
    ("On Tuesday the bank lent 500 euros .", [("Tuesday", "DATE"), ("500 euros", "MONEY")]),
    ("Berlin raised 20 dollars in March .", [("20 dollars", "MONEY"), ("March", "DATE")]),
    ("He flew home on Sunday .", [("Sunday", "DATE")]),
    ("It cost 7 euros .", [("7 euros", "MONEY")]),
]


TINY_TOK2VEC = {"@architectures": "spacy.HashEmbedCNN.v2", "width": 32, "depth": 1, "embed_size": 500, "window_size": 1,
                "maxout_pieces": 2, "subword_features": True, "pretrained_vectors": None}  # fmt: skip
"""A small tok2vec for the stand-in trained pipelines (here, and the trained tagger of tests/test_tagger.py)."""


def train_tiny_ner(path: Path) -> Path:
    """A tok2vec + ner pipeline trained a few steps on TRAIN, standing in for en_core_web_sm."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec", config={"model": TINY_TOK2VEC})
    nlp.add_pipe("ner")
    examples = []
    for text, spans in TRAIN:
        entities = [(text.index(s), text.index(s) + len(s), label) for s, label in spans]
        examples.append(Example.from_dict(nlp.make_doc(text), {"entities": entities}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(40):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    nlp.to_disk(path)
    return path


def trained_pipeline(name: str) -> str:
    """`name` if it is an installed package or a saved pipeline, else a tiny one trained now:
    at `name` when it is a path, in a temporary directory when it is a package name."""
    if is_package(name) or Path(name).exists():
        return name
    target = Path(name) if ("/" in name or name.startswith(".")) else Path(tempfile.mkdtemp()) / "tiny_trained"
    print(f"{name} is not installed or saved: training a tiny tok2vec + ner (DATE, MONEY) into {target}\n")
    return str(train_tiny_ner(target))


def main(argv) -> None:
    pipeline = trained_pipeline(argv[1] if len(argv) > 1 else "en_core_web_sm")
    model = argv[2] if len(argv) > 2 else "dslim/bert-base-NER"
    text = argv[3] if len(argv) > 3 else "Angela Merkel paid 300 dollars in Paris on Monday."
    config = {"model": model, "label_map": {"PER": "PERSON", "LOC": "GPE"}}
    recipes = {
        "trained ner alone": lambda nlp: None,
        'replace_pipe("ner", "direct_ner")': lambda nlp: nlp.replace_pipe("ner", "direct_ner", config=config),
        'add_pipe(before="ner")': lambda nlp: nlp.add_pipe("direct_ner", before="ner", config=config),
        'add_pipe(after="ner")': lambda nlp: nlp.add_pipe("direct_ner", after="ner", config=config),
        'add_pipe(after="ner", overwrite_ents=True)': lambda nlp: nlp.add_pipe(
            "direct_ner", after="ner", config={**config, "overwrite_ents": True}
        ),
    }
    for name, apply in recipes.items():
        nlp = spacy.load(pipeline)
        apply(nlp)
        print(f"{name:45} {[(ent.text, ent.label_) for ent in nlp(text).ents]}")


if __name__ == "__main__":
    main(sys.argv)
