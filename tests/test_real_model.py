"""Integration with real CoNLL-2003 checkpoints from ../shared/models (conftest.shared_path): a
WordPiece BERT (or SPACY_DIRECT_USE_TEST_MODEL), a SentencePiece XLM-R (or
SPACY_DIRECT_USE_TEST_XLMR_MODEL) and an IOB1-trained fp16 BERT (or SPACY_DIRECT_USE_TEST_IOB1_MODEL)."""
import shutil

import numpy as np
import pytest
import spacy
import torch
from spacy.tokens import Doc
from transformers import AutoModelForTokenClassification, AutoTokenizer

from spacy_direct_use.conll import read_docs
from spacy_direct_use.labels import LabelScheme

N_SENTENCES = 400
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["real_model_dir", "xlmr_model_dir"], ids=["bert-wordpiece", "xlmr-sentencepiece"])
def model_dir(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def nlp(model_dir):
    """One window per sentence, however long (the reference reads each sentence whole):
    what is compared is how words are read, not how long sentences are cut."""
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(model_dir), "window_size": 512})
    return nlp


def test_real_entities(real_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(real_model_dir)})
    doc = nlp("Angela Merkel flew to Paris to meet Emmanuel Macron at the United Nations.")
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Angela Merkel", "PER"), ("Paris", "LOC"), ("Emmanuel Macron", "PER"), ("United Nations", "ORG")
    ]


def word_level_reference(model_dir, sentences):
    """The model's own word-level tags: each sentence from its gold words, first sub-word, argmax."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    tags = []
    for words in sentences:
        enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            predicted = model(**enc).logits[0].argmax(-1).tolist()
        first = {}
        for position, word in enumerate(enc.word_ids()):
            if word is not None and word not in first:
                first[word] = predicted[position]
        tags.append(np.array([first[i] for i in range(len(words))]))
    return tags, LabelScheme.from_id2label(model.config.id2label)


def bio_entities(tags, scheme):
    """Entities of a valid BIO sequence as (start, end, type)."""
    out, start = [], None
    for i, tag in enumerate(list(tags) + [0]):
        label = scheme.labels[tag] if i < len(tags) else "O"
        if start is not None and not label.startswith("I-"):
            out.append((start, i, scheme.labels[tags[start]][2:]))
            start = None
        if label.startswith("B-"):
            start = i
    return out


def test_matches_models_word_level_predictions(nlp, model_dir, conll_dir):
    """On gold-word sentence Docs, read in shared packed rows, direct_ner (aggregation=first) must equal the model's own
    first-sub-word predictions wherever those form a valid BIO sequence; where they do not
    (an I- without its B-), Viterbi repairs them, which is the only allowed difference."""
    gold = read_docs(conll_dir / "eng.testb", nlp.vocab, "sentence")[:N_SENTENCES]
    words = [[t.text for t in doc] for doc in gold]
    reference, scheme = word_level_reference(model_dir, words)
    docs = [Doc(nlp.vocab, words=w, spaces=[True] * (len(w) - 1) + [False]) for w in words]
    predicted = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(docs)]
    assert nlp.get_pipe("direct_ner")._runner.mask_kind is not None  # the sentences shared packed rows
    valid = [scheme.is_valid(tags) for tags in reference]
    agree = [p == bio_entities(tags, scheme) for p, tags in zip(predicted, reference)]
    mismatched_valid = [i for i, (v, a) in enumerate(zip(valid, agree)) if v and not a]
    assert sum(valid) > 0.9 * len(valid)
    assert mismatched_valid == [], f"sentences {mismatched_valid[:5]} differ although the model's tags are valid"
    print(f"agreement: {sum(agree)}/{len(agree)} sentences; {len(valid) - sum(valid)} had invalid tags, repaired by Viterbi")


def test_trained_head_with_its_bias_zeroed_loads(real_model_dir, tmp_path):
    """A head trained with a frozen or absent bias is not taken for an untrained one."""
    from safetensors.torch import load_file, save_file

    path = shutil.copytree(real_model_dir, tmp_path / "model")
    weights = load_file(path / "model.safetensors")
    weights["classifier.bias"].zero_()
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(path)})
    assert [e.label_ for e in nlp("Angela Merkel flew to Paris.").ents] == ["PER", "LOC"]


def iob1_entities(tags, labels):
    """Entities of an IOB1 tag sequence, the conlleval way: I-X after O or another type
    starts an entity, and so does every B-X."""
    out = []
    for i, tag in enumerate(tags):
        label = labels[tag]
        if label == "O":
            continue
        prefix, etype = label.split("-", 1)
        if out and out[-1][1] == i and out[-1][2] == etype and prefix == "I":
            out[-1] = (out[-1][0], i + 1, etype)
        else:
            out.append((i, i + 1, etype))
    return out


def test_iob1_checkpoint_is_read_as_iob1(iob1_model_dir, conll_dir):
    """The IOB1 stand-in (CoNLL-2003's own tags, weights in fp16): "auto" reads it as
    IOB1, in fp32 on CPU, and its entities are the model's own first-piece predictions
    read the conlleval way, on every one of the first 200 test sentences."""
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(iob1_model_dir), "window_size": 512})
    gold = read_docs(conll_dir / "eng.testb", nlp.vocab, "sentence")[: N_SENTENCES // 2]
    words = [[t.text for t in doc] for doc in gold]
    reference, scheme = word_level_reference(iob1_model_dir, words)
    docs = [Doc(nlp.vocab, words=w, spaces=[True] * (len(w) - 1) + [False]) for w in words]
    predicted = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(docs)]
    pipe = nlp.get_pipe("direct_ner")
    assert pipe.tag_scheme == "iob1"
    assert {p.dtype for p in pipe._model.parameters()} == {torch.float32}
    expected = [iob1_entities(tags, scheme.labels) for tags in reference]
    assert sum(len(e) for e in expected) > 250
    differ = [i for i, (p, e) in enumerate(zip(predicted, expected)) if p != e]
    assert differ == [], f"sentences {differ[:5]} differ from the model's own IOB1 reading"
