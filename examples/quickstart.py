"""Put a fine-tuned Hugging Face NER model's entities in doc.ents, save the pipeline, load it offline.

    python examples/quickstart.py [MODEL]

MODEL is a hub name (default dslim/bert-base-NER) or a local directory.
"""
import sys
import tempfile

import spacy

model = sys.argv[1] if len(sys.argv) > 1 else "dslim/bert-base-NER"

nlp = spacy.blank("en")
nlp.add_pipe("direct_ner", config={"model": model, "label_map": {"PER": "PERSON"}})
doc = nlp("Angela Merkel flew to Paris to meet Emmanuel Macron at the United Nations.")
print([(ent.text, ent.label_) for ent in doc.ents])
print([round(score, 3) for score in doc.spans["direct_ner"].attrs["scores"]])

# Complement an existing pipeline: entities set earlier (here by a rule) are kept.
ruled = spacy.blank("en")
ruled.add_pipe("entity_ruler").add_patterns([{"label": "CITY", "pattern": "Paris"}])
ruled.add_pipe("direct_ner", config={"model": model})
print([(ent.text, ent.label_) for ent in ruled("Merkel met Macron in Paris.").ents])

# The weights are saved inside the pipeline, so spacy.load needs neither the hub nor MODEL.
with tempfile.TemporaryDirectory() as path:
    nlp.to_disk(path)
    reloaded = spacy.load(path)
    assert [(e.text, e.label_) for e in reloaded(doc.text).ents] == [(e.text, e.label_) for e in doc.ents]
    print("reloaded from", path, "with the same entities")
