#!/usr/bin/env python
"""Entity F1 of direct_ner with doc_consistency off and on (one value of doc_consistency_keep
per column), from one forward pass: the Docs' probabilities are kept and decoded again
for each setting, so the columns differ only in the rule.

  python scripts/consistency_sweep.py MODEL eng.testa article|article-gold|sentence 0.5,0.7,0.8,0.9,1.01

Reads ../shared/data/conll2003/SPLIT (run it from the repository root, or set
CONLL_DIR). article-gold: each article one Doc with its gold sentence starts (the
windows of sentence Docs; only the document context differs). Tune on eng.testa.
"""
import json
import os
import sys
from pathlib import Path

import spacy
from spacy.tokens import Doc
from spacy.training import Example
from spacy.scorer import get_ner_prf
from spacy_direct_use.conll import read_docs
from spacy_direct_use.ner import DirectNER

model, split, granularity = sys.argv[1], sys.argv[2], sys.argv[3]  # granularity: sentence|article|article-gold
keeps = [float(k) for k in sys.argv[4].split(",")]
nlp = spacy.blank("en")
pipe = nlp.add_pipe("direct_ner", config={"model": model})
golds = read_docs(Path(os.environ.get("CONLL_DIR", "../shared/data/conll2003")) / split, nlp.vocab, "sentence" if granularity == "sentence" else "article")
gold_sents = granularity == "article-gold"
docs = [Doc(nlp.vocab, words=[t.text for t in g], spaces=[bool(t.whitespace_) for t in g],
            sent_starts=[bool(t.is_sent_start) for t in g] if gold_sents else None) for g in golds]
cache = []
orig = DirectNER._decode
def recording(self, doc, alignment, probs):
    cache.append((doc, alignment, probs))
    return orig(self, doc, alignment, probs)
DirectNER._decode = recording
list(nlp.pipe(docs, batch_size=64))
DirectNER._decode = orig
by_doc = {id(d): (a, p) for d, a, p in cache}
def score(settings):
    pipe.cfg.update(settings)
    examples = []
    for doc, gold in zip(docs, golds):
        a, p = by_doc[id(doc)]
        fresh = Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        ents = pipe._decode(doc, a, p)
        fresh.set_ents([spacy.tokens.Span(fresh, s, e, label=l) for s, e, l, _ in ents])
        examples.append(Example(fresh, gold))
    return 100 * get_ner_prf(examples)["ents_f"]
rows = {"off": score({"doc_consistency": False})}
for k in keeps:
    rows[f"keep={k}"] = score({"doc_consistency": True, "doc_consistency_keep": k})
print(json.dumps({"model": Path(model).name, "split": split, "granularity": granularity, **{k: round(v, 2) for k, v in rows.items()}}))
