"""spaCy's contracts on every direct_* component: a failure goes to the pipeline's error
handler (nlp.set_error_handler) in __call__ and pipe, as in spaCy's own pipes."""
from pathlib import Path
from typing import Dict

import pytest
import spacy

from conftest import make_lookup_model, make_sentence_encoder, make_sequence_classifier

UPOS = ["NOUN", "PROPN", "ADP", "VERB"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, bert_dir) -> Dict[str, Path]:
    tmp = tmp_path_factory.mktemp("contracts")
    return {
        "direct_ner": bert_dir,
        "direct_textcat": make_sequence_classifier(tmp / "sst", ["NEGATIVE", "POSITIVE"]),
        "direct_tagger": make_lookup_model(tmp / "upos", {"paris": "PROPN"}, labels=UPOS),
        "direct_vectors": make_sentence_encoder(tmp / "encoder"),
    }


TEXTS = ["Angela Merkel flew to Paris.", "boom", "Jane Doe met London.", "Berlin and Paris."]


@pytest.mark.parametrize("factory", ["direct_ner", "direct_textcat", "direct_tagger", "direct_vectors"])
def test_error_handler_gets_the_failing_docs(factory, models, monkeypatch):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe(factory, config={"model": str(models[factory])})
    expected = [doc.text for doc in nlp.pipe(TEXTS[:1])]
    predict = type(pipe).predict

    def failing(self, docs, **settings):
        if any(doc.text == "boom" for doc in docs):
            raise RuntimeError("model failed")
        return predict(self, docs, **settings)

    monkeypatch.setattr(type(pipe), "predict", failing)
    with pytest.raises(RuntimeError, match="model failed"):  # the default handler raises
        nlp("boom")
    seen = []
    nlp.set_error_handler(lambda name, component, docs, err: seen.append((name, [d.text for d in docs], str(err))))
    doc = nlp("boom")
    assert seen[-1] == (factory, ["boom"], "model failed")
    assert doc.text == "boom" and not doc.ents and not doc.cats and not doc.has_annotation("POS") and not doc.user_data
    kept = [doc.text for doc in nlp.pipe(TEXTS, batch_size=1)]
    assert kept == [t for t in TEXTS if t != "boom"] and kept[:1] == expected
    assert seen[-1] == (factory, ["boom"], "model failed")
