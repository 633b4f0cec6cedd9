"""direct_textcat and direct_tagger: a sentiment model's doc.cats and a POS model's token.pos_.

    python examples/other_heads.py [TEXTCAT_MODEL] [TAGGER_MODEL]

Defaults: distilbert-base-uncased-finetuned-sst-2-english and
vblagoje/bert-english-uncased-finetuned-pos (hub names), or local directories.
"""
import sys

import spacy

textcat_model = sys.argv[1] if len(sys.argv) > 1 else "distilbert-base-uncased-finetuned-sst-2-english"
tagger_model = sys.argv[2] if len(sys.argv) > 2 else "vblagoje/bert-english-uncased-finetuned-pos"

nlp = spacy.blank("en")
nlp.add_pipe("direct_textcat", config={"model": textcat_model, "spans_key": "sentences"})  # also per sentence
nlp.add_pipe("direct_tagger", config={"model": tagger_model})
doc = nlp("The film is a charming and often affecting journey.")
print({label: round(p, 4) for label, p in doc.cats.items()})
print([(t.text, t.pos_) for t in doc])

# Long texts are read whole (the Doc's label from all its windows), each sentence too.
doc = nlp("A dull, lifeless start. But then it becomes a warm, funny and moving film. I loved it.")
print([(s.text, s.label_, round(score, 3)) for s, score in zip(doc.spans["sentences"], doc.spans["sentences"].attrs["scores"])])
print(max(doc.cats, key=doc.cats.get))
