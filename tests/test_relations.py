"""direct_rel: relations between doc.ents read by a GLiREL checkpoint, equal to glirel's own
`predict_relations`, in windows that fit the checkpoint, saved and loaded offline, per-call labels
and constraints, coded errors (tiny GLiREL models built offline by conftest.make_glirel)."""
import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example, biluo_tags_to_spans

from spacy_direct_use import DirectUseError
from spacy_direct_use.windows import word_windows
from spacy_direct_use.relations import gold_relations, relations, render_relations, score_relations

from conftest import GLIREL_SKIP, HAS_GLIREL, build_wheel, make_glirel

pytestmark = pytest.mark.skipif(not HAS_GLIREL, reason=GLIREL_SKIP)

LABELS = ["works for", "lives in", "located in"]
# (text, entities as (start token, end token, label)); split on spaces, so tokens are the words
SENTENCES = [
    ("Angela Merkel flew to Paris to meet Emmanuel Macron .", [(0, 2, "PER"), (4, 5, "LOC"), (7, 9, "PER")]),
    ("The United Nations met in New York and Geneva on Monday .", [(1, 3, "ORG"), (5, 7, "LOC"), (8, 9, "LOC")]),
    ("Acme Corporation hired Jane Doe from London last year .", [(0, 2, "ORG"), (3, 5, "PER"), (6, 7, "LOC")]),
    ("Washingtonians visited Berlin , Madrid and Rome .", [(0, 1, "PER"), (2, 3, "LOC"), (4, 5, "LOC"), (6, 7, "LOC")]),
    ("Jane Doe visited Berlin .", [(0, 2, "PER"), (3, 4, "LOC")]),
    ("Paris is nice .", [(0, 1, "LOC")]),
    ("a b c d e", []),
]


@pytest.fixture(scope="module")
def glirel_dir(tmp_path_factory):
    return make_glirel(tmp_path_factory.mktemp("glirel") / "glirel")


@pytest.fixture(scope="module")
def reference(glirel_dir):
    """glirel's own model on the same checkpoint (GLiREL.from_pretrained cannot run beside this
    huggingface_hub, so built as direct_rel builds it; the reading is glirel's predict_relations)."""
    from spacy_direct_use.glirel_checkpoint import load_glirel

    return load_glirel(glirel_dir, None, True, torch.device("cpu"))


def make_doc(nlp, text, ents, sentences=False):
    doc = Doc(nlp.vocab, words=text.split())
    doc.ents = [Span(doc, s, e, label) for s, e, label in ents]
    if sentences:
        for token in doc:
            token.is_sent_start = token.i == 0 or doc[token.i - 1].text == "."
    return doc


def rel_nlp(model_dir, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_rel", config={"model": str(model_dir), "labels": LABELS, **config})
    return nlp


def found(doc):
    """(head span, tail span, label, score) of a Doc's relations, token offsets."""
    return [((r.head.start, r.head.end), (r.tail.start, r.tail.end), r.label, r.score) for r in relations(doc)]


def expected(model, doc, labels, threshold, top_k):
    """glirel's predict_relations on the Doc's words and entities, sorted as direct_rel sorts.
    With entity markers glirel 1.2.1 crashes unless given gold relations (an empty list), and
    answers in positions shifted by the markers: mapped back here."""
    ner = [[e.start, e.end - 1, e.label_, e.text] for e in doc.ents]
    if len(ner) < 2:
        return []
    markers = model.config.add_entity_markers
    rels = model.predict_relations([t.text for t in doc], labels, threshold=threshold, ner=ner, top_k=top_k,
                                   ground_truth_relations=[] if markers else None)  # fmt: skip
    rels = rels[0] if markers else rels
    at = {(e.start + 2 * k * markers, e.end + 2 * (k + 1) * markers): k for k, e in enumerate(doc.ents)}
    ents = [(e.start, e.end) for e in doc.ents]
    keyed = [(at[tuple(r["head_pos"])], at[tuple(r["tail_pos"])], -r["score"], k, r) for k, r in enumerate(rels)]
    return [(ents[h], ents[t], r["label"], r["score"]) for h, t, _, _, r in sorted(keyed)]


def assert_same(got, want):
    assert [g[:3] for g in got] == [w[:3] for w in want]
    np.testing.assert_allclose([g[3] for g in got], [w[3] for w in want], atol=1e-4)


@pytest.mark.parametrize("threshold,top_k", [(0.5, 1), (0.45, -1), (0.0, 2)])
def test_relations_equal_predict_relations(glirel_dir, reference, threshold, top_k):
    """Docs batched together through nlp.pipe give glirel's own relations and scores, Doc by Doc."""
    nlp = rel_nlp(glirel_dir, threshold=threshold, top_k=top_k)
    docs = list(nlp.pipe([make_doc(nlp, text, ents) for text, ents in SENTENCES], batch_size=4))
    total = 0
    for doc in docs:
        want = expected(reference, doc, LABELS, threshold, top_k)
        assert_same(found(doc), want)
        total += len(want)
    assert total > 5, "the test must see relations"


@pytest.mark.parametrize("kind", ["markers", "refine"])
def test_other_glirel_architectures_equal_predict_relations(tmp_path, kind):
    """Entity markers (positions shift in glirel's collator) and refine layers (pairs read each other)."""
    from spacy_direct_use.glirel_checkpoint import load_glirel

    model_dir = make_glirel(tmp_path / kind, markers=kind == "markers", refine=kind == "refine", seed=3)
    model = load_glirel(model_dir, None, True, torch.device("cpu"))
    nlp = rel_nlp(model_dir, threshold=0.3, top_k=-1)
    docs = list(nlp.pipe([make_doc(nlp, text, ents) for text, ents in SENTENCES]))
    assert sum(len(doc._.rel) for doc in docs) > 5
    for doc in docs:
        assert_same(found(doc), expected(model, doc, LABELS, 0.3, -1))


def test_labels_threshold_top_k_and_constraints_per_call(glirel_dir, reference):
    nlp = rel_nlp(glirel_dir, threshold=0.5)
    text, ents = SENTENCES[0]
    doc = nlp(make_doc(nlp, text, ents), component_cfg={"direct_rel": {"labels": ["friend of"], "threshold": 0.0, "top_k": -1}})
    assert {r.label for r in relations(doc)} == {"friend of"}
    assert_same(found(doc), expected(reference, doc, ["friend of"], 0.0, -1))
    # constraints: only PER -> LOC pairs may be "lives in"; a type no entity has gives nothing, no error
    constrained = {"lives in": {"allowed_head": ["PER"], "allowed_tail": ["LOC"]}, "works for": {"allowed_head": ["NOBODY"]}}
    doc = nlp(make_doc(nlp, text, ents), component_cfg={"direct_rel": {"labels": constrained, "threshold": 0.0, "top_k": -1}})
    assert doc._.rel and all((r.head.label_, r.tail.label_, r.label) == ("PER", "LOC", "lives in") for r in relations(doc))
    unconstrained = expected(reference, doc, list(constrained), 0.0, -1)
    assert_same(found(doc), [w for w in unconstrained if w[2] == "lives in" and w[1] == (4, 5) and w[0] != (4, 5)])
    # top_k counts the labels a constraint lets through: the best allowed label, not none
    doc = nlp(make_doc(nlp, text, ents), component_cfg={"direct_rel": {"labels": constrained, "threshold": 0.0, "top_k": 1}})
    assert len(doc._.rel) == 2
    nothing = {"lives in": {"allowed_head": ["ORG"]}}
    doc = nlp(make_doc(nlp, text, ents), component_cfg={"direct_rel": {"labels": nothing, "threshold": 0.0}})
    assert doc._.rel == []
    # the config again on the next call
    doc = nlp(make_doc(nlp, text, ents))
    assert_same(found(doc), expected(reference, doc, LABELS, 0.5, 1))


def test_long_doc_read_in_windows_to_its_end(tmp_path):
    """A Doc far past max_len words is read in windows of whole sentences, none over max_len words
    or the encoder's sub-words, nothing truncated: its last paragraph gets relations, each window's
    relations are glirel's on that window's words."""
    from spacy_direct_use.glirel_checkpoint import load_glirel

    model_dir = make_glirel(tmp_path / "short", max_len=24, max_positions=64)
    model = load_glirel(model_dir, None, True, torch.device("cpu"))
    nlp = rel_nlp(model_dir, threshold=0.0, top_k=1)
    parts = [SENTENCES[k % 4] for k in range(300)]  # about 3,000 words
    words, ents = [], []
    for text, sent_ents in parts:
        ents.extend((s + len(words), e + len(words), label) for s, e, label in sent_ents)
        words.extend(text.split())
    assert len(words) > 2900
    doc = make_doc(nlp, " ".join(words), ents, sentences=True)
    reader = nlp.get_pipe("direct_rel")._ensure_loaded()
    seen = []
    forward = reader.forward
    reader.forward = lambda inputs, *args: seen.extend(inputs) or forward(inputs, *args)
    doc = nlp(doc)
    assert seen and max(len(w) for w, _, _ in seen) <= 24, "no window over max_len words"
    last_paragraph = len(words) - 40
    assert any(r.head.start >= last_paragraph and r.tail.start >= last_paragraph for r in relations(doc))
    # the last window, read alone by glirel, gives the same relations between its entities
    window_words, ent_ids, spans = next(inp for inp in seen if len(doc.ents) - 1 in inp[1])
    window = Doc(nlp.vocab, words=window_words)
    window.ents = [Span(window, s, e + 1, doc.ents[k].label_) for k, (s, e) in zip(ent_ids, spans)]
    shift = doc.ents[ent_ids[0]].start - spans[0][0]
    own = [r for r in found(doc) if r[0][0] >= shift and r[1][0] >= shift]
    assert_same([((h[0] - shift, h[1] - shift), (t[0] - shift, t[1] - shift), label, score) for h, t, label, score in own],
                expected(model, window, LABELS, 0.0, 1))  # fmt: skip


def test_doc_without_sentences_that_fits_is_one_window(glirel_dir, reference):
    """No sentence boundaries on a Doc that fits: read whole, as predict_relations reads it (pairs
    across what a sentencizer would split); with the Doc's own sentences, one sentence per window."""
    nlp = rel_nlp(glirel_dir, threshold=0.0, top_k=1)
    (first, first_ents), (second, second_ents) = SENTENCES[4], SENTENCES[0]
    n = len(first.split())
    ents = first_ents + [(s + n, e + n, label) for s, e, label in second_ents]
    whole = nlp(make_doc(nlp, f"{first} {second}", ents))
    assert_same(found(whole), expected(reference, whole, LABELS, 0.0, 1))
    assert any(r.head.start < n <= r.tail.start for r in relations(whole))
    split = nlp(make_doc(nlp, f"{first} {second}", ents, sentences=True))
    assert split._.rel and not any(r.head.start < n <= r.tail.start or r.tail.start < n <= r.head.start for r in relations(split))


@pytest.mark.parametrize("max_sentences", [1, 1000])
def test_sentences_per_window(tmp_path, max_sentences):
    """One sentence per window by default: no pair across sentences. Packed (max_sentences_per_window
    large) up to max_len words: pairs across the sentences of a window, none across windows."""
    model_dir = make_glirel(tmp_path / "short", max_len=24, max_positions=64)
    nlp = rel_nlp(model_dir, threshold=0.0, top_k=1, max_sentences_per_window=max_sentences)
    words, ents, starts = [], [], []
    for text, sent_ents in [SENTENCES[4]] * 12:  # 5 words, 2 entities each
        starts.append(len(words))
        ents.extend((s + len(words), e + len(words), label) for s, e, label in sent_ents)
        words.extend(text.split())
    doc = nlp(make_doc(nlp, " ".join(words), ents, sentences=True))
    sentence_of = {start: k for k, start in enumerate(starts)}
    crossing = [r for r in relations(doc) if r.head.sent.start != r.tail.sent.start]
    distance = max(abs(sentence_of[r.head.sent.start] - sentence_of[r.tail.sent.start]) for r in relations(doc))
    assert len(doc._.rel) == (2 * 12 if max_sentences == 1 else len(doc._.rel)) and doc._.rel
    if max_sentences == 1:
        assert not crossing
    else:  # 24 words hold 4 sentences of 5 words: pairs within groups of 4 sentences only
        assert crossing and distance <= 3


def test_long_sentence_in_strides_scores_pairs_once(tmp_path):
    """A sentence past max_len words is read in overlapping strides: each pair scored once, in
    the stride where it lies furthest from an edge; entities further apart than a stride holds are
    not paired."""
    model_dir = make_glirel(tmp_path / "short", max_len=16, max_positions=64)
    nlp = rel_nlp(model_dir, threshold=0.0, top_k=-1)
    words = ("Jane Doe met Angela Merkel in Paris and Berlin " * 6).split()
    ents = [(k, k + 2, "PER") for k in range(0, len(words), 9)] + [(k + 6, k + 7, "LOC") for k in range(0, len(words), 9)]
    doc = nlp(make_doc(nlp, " ".join(words), sorted(ents)))
    pairs = [(r["dep"], r["dest"], r["relation"]) for r in doc._.rel]
    assert len(pairs) == len(set(pairs)) and pairs
    spans = [(r.head.start, r.tail.start) for r in relations(doc)]
    assert max(abs(h - t) for h, t in spans) < 16
    assert max(max(h, t) for h, t in spans) >= len(words) - 9


def test_stride_pairs_come_from_the_most_central_window(tmp_path):
    """Where strides overlap, each pair's relations are glirel's reading of the stride in which
    the pair lies furthest from an edge."""
    from spacy_direct_use.glirel_checkpoint import load_glirel
    from spacy_direct_use.inference import first_pieces

    model_dir = make_glirel(tmp_path / "short", max_len=16, max_positions=64)
    model = load_glirel(model_dir, None, True, torch.device("cpu"))
    nlp = rel_nlp(model_dir, threshold=0.0, top_k=1)
    words = ("Jane Doe met Angela Merkel in Paris and Berlin " * 4).split()
    ents = sorted([(k, k + 2, "PER") for k in range(0, len(words), 9)] + [(k + 6, k + 7, "LOC") for k in range(0, len(words), 9)])
    doc = nlp(make_doc(nlp, " ".join(words), ents))
    reader = nlp.get_pipe("direct_rel")._ensure_loaded()
    limit = reader.piece_limit - reader.prompt_pieces(LABELS)
    windows = word_windows(first_pieces(reader.tokenizer, [words])[0], [0], 16, limit, 8)
    assert len(windows) > 2 and doc._.rel
    for r in relations(doc):
        first, last = min(r.head.start, r.tail.start), max(r.head.end, r.tail.end)
        holding = [(min(first - s, e - last), -k, s, e) for k, (s, e, _, _) in enumerate(windows) if s <= first and last <= e]
        _, _, start, end = max(holding)
        window = make_doc(nlp, " ".join(words[start:end]), [(a - start, b - start, label) for a, b, label in ents if start <= a and b <= end])
        want = [w for w in expected(model, window, LABELS, 0.0, 1) if w[0] == (r.head.start - start, r.head.end - start) and w[1] == (r.tail.start - start, r.tail.end - start)]
        assert [(w[2], round(w[3], 4)) for w in want] == [(r.label, round(r.score, 4))]


def test_a_sentence_boundary_inside_an_entity_does_not_cut_it(glirel_dir):
    nlp = rel_nlp(glirel_dir, threshold=0.0, top_k=1)
    doc = make_doc(nlp, "Jane Doe visited New York and met Angela Merkel .", [(0, 2, "PER"), (3, 5, "LOC"), (7, 9, "PER")])
    for token in doc:
        token.is_sent_start = token.i in (0, 4)  # a boundary inside "New York"
    doc = nlp(doc)
    assert any(1 in (r["dep"], r["dest"]) for r in doc._.rel), "New York is paired"


def test_fewer_than_two_entities_no_forward_no_warning(glirel_dir, recwarn, caplog):
    nlp = rel_nlp(glirel_dir)
    reader = nlp.get_pipe("direct_rel")._ensure_loaded()
    reader.forward = lambda *a: pytest.fail("no pair: no forward pass")
    docs = list(nlp.pipe([make_doc(nlp, text, ents) for text, ents in SENTENCES[5:]] * 3))
    assert all(doc._.rel == [] for doc in docs)
    assert not recwarn.list and not caplog.records


def movable_copy(glirel_dir, tmp_path):
    """A copy of the checkpoint and of the encoder its model_name names, both to be deleted."""
    checkpoint, encoder = tmp_path / "copy", tmp_path / "gone" / "encoder"
    shutil.copytree(glirel_dir, checkpoint)
    config = json.loads((checkpoint / "glirel_config.json").read_text())
    shutil.copytree(config["model_name"], encoder)
    config["model_name"] = str(encoder)
    (checkpoint / "glirel_config.json").write_text(json.dumps(config))
    return checkpoint, encoder


def test_save_and_load_offline(glirel_dir, tmp_path, reference, monkeypatch):
    """The saved pipeline holds glirel's config, the encoder's config, extended tokenizer and
    weights: it loads with the hub unreachable and the original files gone."""
    model_copy, moved = movable_copy(glirel_dir, tmp_path)
    nlp = rel_nlp(model_copy, threshold=0.45, top_k=-1)
    docs = [make_doc(nlp, text, ents) for text, ents in SENTENCES]
    before = [found(doc) for doc in nlp.pipe([d.copy() for d in docs])]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(moved)
    shutil.rmtree(model_copy)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = spacy.load(tmp_path / "pipeline")
    after = [found(doc) for doc in loaded.pipe([d.copy() for d in docs])]
    assert [[a[:3] for a in doc] for doc in after] == [[b[:3] for b in doc] for doc in before] and any(before)
    np.testing.assert_allclose([a[3] for doc in after for a in doc], [b[3] for doc in before for b in doc], atol=1e-6)
    restored = spacy.blank("en")
    restored.add_pipe("direct_rel", config={"model": str(tmp_path / "pipeline" / "direct_rel" / "model"), "labels": LABELS})
    restored.get_pipe("direct_rel").from_bytes(loaded.get_pipe("direct_rel").to_bytes())
    again = [found(doc) for doc in restored.pipe([d.copy() for d in docs], component_cfg={"direct_rel": {"threshold": 0.45, "top_k": -1}})]
    assert [[a[:3] for a in doc] for doc in again] == [[b[:3] for b in doc] for doc in before]


def test_docbin_keeps_relations_and_spans(glirel_dir):
    nlp = rel_nlp(glirel_dir, threshold=0.45)
    docs = list(nlp.pipe([make_doc(nlp, text, ents) for text, ents in SENTENCES]))
    data = DocBin(docs=docs, store_user_data=True).to_bytes()
    back = list(DocBin().from_bytes(data).get_docs(spacy.blank("en").vocab))
    assert [found(d) for d in back] == [found(d) for d in docs] and any(found(d) for d in docs)
    assert json.loads(json.dumps(docs[0].to_json(underscore=["rel"])))["_"]["rel"] == docs[0]._.rel
    head, tail, label, score = relations(back[0])[0]
    assert isinstance(head, Span) and head.doc is back[0] and 0.45 < score <= 1.0


def test_pipe_yields_per_batch(glirel_dir):
    """spaCy's batch contract: a Doc comes out before more are read."""
    nlp = rel_nlp(glirel_dir)
    read = []

    def stream():
        for k in range(10):
            read.append(k)
            text, ents = SENTENCES[k % 5]
            yield make_doc(nlp, text, ents)

    first = next(nlp.get_pipe("direct_rel").pipe(stream(), batch_size=3))
    assert read == [0, 1, 2] and first._.rel is not None


WORKERS = """
import json, sys
import spacy, torch
torch.set_num_threads(2)
(torch.randn(1500, 1500) @ torch.randn(1500, 1500)).sum()  # a live OpenMP pool in the parent
nlp = spacy.blank("en")
ruler = nlp.add_pipe("entity_ruler")
ruler.add_patterns([{"label": "PER", "pattern": p} for p in ["Angela Merkel", "Jane Doe", "Emmanuel Macron"]]
                   + [{"label": "LOC", "pattern": p} for p in ["Paris", "London", "Berlin", "Geneva"]])
nlp.add_pipe("direct_rel", config={"model": sys.argv[1], "labels": ["works for", "lives in"], "threshold": 0.4, "top_k": -1})
texts = json.loads(sys.argv[2])
run = lambda **kw: [[(r["dep"], r["dest"], r["relation"]) for r in doc._.rel] for doc in nlp.pipe(texts, batch_size=2, **kw)]
single = run()  # the model has run in the parent
print("RESULT " + json.dumps({"single": single, "multi": run(n_process=2)}))
"""


@pytest.mark.slow
def test_pipe_with_worker_processes(glirel_dir):
    """nlp.pipe(n_process=2) after the model ran in the parent, entities from an entity_ruler: no
    deadlock, the same relations (in a subprocess with a timeout)."""
    texts = [text for text, _ in SENTENCES] * 2
    proc = subprocess.run([sys.executable, "-c", WORKERS, str(glirel_dir), json.dumps(texts)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["multi"] == result["single"] and any(result["single"])


@pytest.mark.parametrize(
    "settings,code",
    [
        ({"labels": []}, "E081"),
        ({"labels": ["works for", "works for"]}, "E082"),
        ({"labels": ["works for", " "]}, "E082"),
        ({"labels": "works for"}, "E082"),
        ({"labels": {"works for": ["PER"]}}, "E083"),
        ({"labels": {"works for": {"allowed_head": "PER"}}}, "E083"),
        ({"top_k": 0}, "E086"),
        ({"threshold": 2.0}, "E008"),
        ({"labels": ["a very long relation name " * 8]}, "E087"),
        ({"colour": "red"}, "E065"),
    ],
)
def test_bad_calls_are_coded_errors_and_leave_the_doc(glirel_dir, settings, code):
    nlp = rel_nlp(glirel_dir)
    text, ents = SENTENCES[0]
    doc = make_doc(nlp, text, ents)
    with pytest.raises(DirectUseError, match=rf"^\[direct_rel {code}\]"):
        nlp.get_pipe("direct_rel")(doc, **settings)
    assert doc._.rel is None and [(e.start, e.end) for e in doc.ents] == [(s, e) for s, e, _ in ents]


def test_bad_config_fails_at_add_pipe(glirel_dir):
    for config, code in [({"labels": ["a", "a"]}, "E082"), ({"top_k": -2}, "E086"), ({"labels": {"a": {"allowed_tail": [1]}}}, "E083")]:
        with pytest.raises(DirectUseError, match=rf"^\[direct_rel {code}\]"):
            rel_nlp(glirel_dir, **config)
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_rel", config={"model": str(glirel_dir)})  # labels may come per call
    with pytest.raises(DirectUseError, match=r"^\[direct_rel E081\]"):
        nlp(make_doc(nlp, *SENTENCES[0]))


def test_error_handler_lets_the_doc_through_untouched(glirel_dir):
    nlp = rel_nlp(glirel_dir)
    caught = []
    nlp.set_error_handler(lambda name, pipe, docs, err: caught.append((name, len(docs), str(err))))
    text, ents = SENTENCES[0]
    docs = list(nlp.pipe([make_doc(nlp, text, ents)] * 3, component_cfg={"direct_rel": {"labels": []}}))
    assert len(docs) == 0 or all(doc._.rel is None for doc in docs)
    assert caught and caught[0][0] == "direct_rel" and "[direct_rel E081]" in caught[0][2]
    doc = nlp(make_doc(nlp, text, ents), component_cfg={"direct_rel": {"top_k": 0}})
    assert doc._.rel is None and "[direct_rel E086]" in caught[-1][2]


def test_not_a_glirel_checkpoint(bert_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_rel", config={"model": str(bert_dir), "labels": LABELS})
    doc = make_doc(nlp, *SENTENCES[0])
    with pytest.raises(DirectUseError, match=r"^\[direct_rel E084\].*direct_ner"):
        nlp(doc)
    assert doc._.rel is None


def test_glirel_missing_names_the_extra(glirel_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "glirel", None)
    nlp = rel_nlp(glirel_dir)
    doc = make_doc(nlp, *SENTENCES[0])
    with pytest.raises(DirectUseError, match=r"^\[direct_rel E080\].*\[glirel\]"):
        nlp(doc)
    assert doc._.rel is None


def test_mismatched_weights_are_refused(glirel_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(glirel_dir, broken)
    state = torch.load(broken / "pytorch_model.bin", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("scorer") and not k.startswith("prompt_rep_layer.0")}
    torch.save(state, broken / "pytorch_model.bin")
    nlp = rel_nlp(broken)
    with pytest.raises(DirectUseError, match=r"^\[direct_rel E085\].*prompt_rep_layer.0"):
        nlp(make_doc(nlp, *SENTENCES[0]))


def test_scorer_micro_prf_over_head_tail_type(glirel_dir):
    nlp = rel_nlp(glirel_dir, threshold=0.45)
    text, ents = SENTENCES[0]
    predicted = nlp(make_doc(nlp, text, ents))
    assert len(predicted._.rel) >= 2
    first, second = predicted._.rel[:2]
    gold = gold_relations(make_doc(nlp, text, ents), [(first["dep"], first["dest"], first["relation"]), (2, 1, "never found")])
    scores = score_relations([Example(predicted, gold)])
    n = len(predicted._.rel)
    assert scores["rel_micro_p"] == pytest.approx(1 / n) and scores["rel_micro_r"] == pytest.approx(0.5)
    assert scores["rel_f_per_type"]["never found"]["r"] == 0.0
    assert nlp.get_pipe("direct_rel").score([Example(predicted, gold)]) == scores


def test_render_relations_draws_labelled_arcs(glirel_dir):
    nlp = rel_nlp(glirel_dir, threshold=0.45)
    doc = nlp(make_doc(nlp, *SENTENCES[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = render_relations(doc, jupyter=False)
    assert svg.count("<path") >= len(doc._.rel) and "Angela Merkel" in svg
    assert doc._.rel[0]["relation"] in svg and "PER" in svg


@pytest.mark.slow
def test_evaluate_relations_workflow_scores_with_spacy_evaluate(glirel_dir, tmp_path, reference):
    """The evaluate-relations commands (convert, assemble with gold entities, spacy evaluate with
    the registered scorer) on a tiny CoNLL04-shaped split: spacy evaluate's micro P/R/F are those
    of glirel's own predict_relations against the gold."""
    from test_project import make_project

    project = make_project(tmp_path)
    data = tmp_path / "conll04"
    data.mkdir()
    items = []
    for k, (text, ents) in enumerate(SENTENCES * 2):
        tags = ["O"] * len(text.split())
        for s, e, label in ents:
            tags[s:e] = [f"U-{label}"] if e - s == 1 else [f"B-{label}"] + [f"I-{label}"] * (e - s - 2) + [f"L-{label}"]
        rels = [{"head": 0, "tail": 1, "type": LABELS[k % 3]}] if len(ents) >= 2 else []
        items.append({"tokens": text.split(), "tags": tags, "relations": rels})
    (data / "conll04_test.json").write_text(json.dumps(items))
    for command in ("convert-conll04", "assemble-relations", "score-relations"):
        cmd = [sys.executable, "-m", "spacy", "project", "run", command, str(project), "--vars.conll04_dir", str(data),
               "--vars.glirel_model", str(glirel_dir), "--vars.rel_threshold", "0.45"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    metrics = json.loads((project / "metrics" / "relations.json").read_text())
    # the relation types, in the config's order
    labels = ["Kill", "Live_In", "Located_In", "OrgBased_In", "Work_For"]
    nlp = spacy.blank("en")
    tp = n_pred = n_gold = 0
    for item in items:
        doc = Doc(nlp.vocab, words=item["tokens"])
        doc.ents = biluo_tags_to_spans(doc, item["tags"])
        want = {(h, t, label) for h, t, label, _ in expected(reference, doc, labels, 0.45, 1)}
        ents = [(e.start, e.end) for e in doc.ents]
        gold = {(ents[r["head"]], ents[r["tail"]], r["type"]) for r in item["relations"]}
        tp, n_pred, n_gold = tp + len(want & gold), n_pred + len(want), n_gold + len(gold)
    assert metrics["rel_micro_p"] == pytest.approx(tp / n_pred if n_pred else 0.0)
    assert metrics["rel_micro_r"] == pytest.approx(tp / n_gold)


def test_ray_predictor_writes_a_relations_column(glirel_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("ray", reason="ray not installed (pip install 'spacy-direct-use[ray]')")
    from spacy_direct_use.ray import DirectPredictor

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(
        [{"label": "PER", "pattern": p} for p in ["Angela Merkel", "Jane Doe", "Emmanuel Macron"]]
        + [{"label": "LOC", "pattern": p} for p in ["Paris", "London", "Berlin"]]
    )
    nlp.add_pipe("direct_rel", config={"model": str(glirel_dir), "labels": LABELS, "threshold": 0.45})
    nlp.to_disk(tmp_path / "pipeline")
    texts = [text for text, _ in SENTENCES]
    out = DirectPredictor(pipeline=str(tmp_path / "pipeline"))(pa.table({"text": texts}))
    rows = out.column("relations").to_pylist()
    docs = list(nlp.pipe(texts))
    assert any(rows) and len(rows) == len(texts)
    for doc, row in zip(docs, rows):
        assert [(r["head"]["start_char"], r["tail"]["end_char"], r["label"]) for r in row] == [
            (r.head.start_char, r.tail.end_char, r.label) for r in relations(doc)
        ]
        assert all(r["head"]["text"] and r["score"] > 0.45 for r in row)


@pytest.mark.slow
def test_spacy_package_wheel_loads_offline(glirel_dir, tmp_path):
    """`spacy package` builds a wheel that holds everything: unpacked on sys.path, it loads by name
    and reads the same relations with the hub unreachable and the checkpoint gone."""
    import zipfile

    checkpoint, encoder = movable_copy(glirel_dir, tmp_path)
    nlp = rel_nlp(checkpoint, threshold=0.45)
    nlp.meta["name"] = "direct_rel_demo"
    doc = nlp(make_doc(nlp, *SENTENCES[0]))
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(checkpoint)
    shutil.rmtree(encoder)
    wheel = build_wheel(tmp_path / "pipeline", tmp_path / "packages")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    script = (
        "import json, sys, spacy\n"
        "from spacy.tokens import Doc, Span\n"
        "nlp = spacy.load('en_direct_rel_demo')\n"
        "doc = Doc(nlp.vocab, words=sys.argv[1].split())\n"
        "doc.ents = [Span(doc, s, e, l) for s, e, l in json.loads(sys.argv[2])]\n"
        "print('RESULT ' + json.dumps(nlp(doc)._.rel))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(tmp_path / "site")}
    text, ents = SENTENCES[0]
    proc = subprocess.run([sys.executable, "-c", script, text, json.dumps(ents)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert [(r["dep"], r["dest"], r["relation"]) for r in got] == [(r["dep"], r["dest"], r["relation"]) for r in doc._.rel] and got
