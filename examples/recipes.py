"""Swap direct_ner into a trained spaCy pipeline: each recipe's entities on one text.

    python examples/recipes.py [PIPELINE] [MODEL] [TEXT]

PIPELINE is a trained pipeline with a `ner` (default en_core_web_sm), MODEL a hub name
(default dslim/bert-base-NER) or a local directory. The model's CoNLL types are renamed
to OntoNotes ones where one fits: PER -> PERSON, LOC -> GPE (most CoNLL locations are
countries and cities); MISC has no OntoNotes counterpart and stays MISC.
"""
import sys

import spacy

pipeline = sys.argv[1] if len(sys.argv) > 1 else "en_core_web_sm"
model = sys.argv[2] if len(sys.argv) > 2 else "dslim/bert-base-NER"
text = sys.argv[3] if len(sys.argv) > 3 else "Angela Merkel paid 300 dollars in Paris on Monday."
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
