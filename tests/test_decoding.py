"""Label schemes and constrained decoding over BIO, BIOES/BILOU and plain IO."""
import numpy as np
import pytest

from spacy_direct_use import DirectNERError
from spacy_direct_use.decoding import extract_entities, viterbi
from spacy_direct_use.labels import LabelScheme

BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
BILOU = ["O", "B-PER", "I-PER", "L-PER", "U-PER"]
IO = ["O", "PER", "LOC"]


def scheme(labels):
    return LabelScheme.from_id2label(dict(enumerate(labels)))


def probs_for(labels, tags, confidence=0.9):
    """A probability matrix whose argmax is `tags`, the rest spread evenly."""
    k = len(labels)
    probs = np.full((len(tags), k), (1 - confidence) / (k - 1), dtype=np.float32)
    for i, tag in enumerate(tags):
        probs[i, labels.index(tag)] = confidence
    return probs


def decode(labels, probs):
    sch = scheme(labels)
    path = viterbi(probs, sch)
    return [tuple(labels[i] for i in path)], [
        (s, e, sch.entity_types[t]) for s, e, t, _ in extract_entities(path, probs, sch)
    ]


def test_bio_valid_sequence_kept():
    tags = ["B-PER", "I-PER", "O", "B-LOC"]
    paths, ents = decode(BIO, probs_for(BIO, tags))
    assert paths[0] == tuple(tags)
    assert ents == [(0, 2, "PER"), (3, 4, "LOC")]


def test_bio_adjacent_entities_of_same_type_stay_separate():
    _, ents = decode(BIO, probs_for(BIO, ["B-PER", "B-PER", "I-PER"]))
    assert ents == [(0, 1, "PER"), (1, 3, "PER")]


def test_bio_i_after_o_is_repaired_by_probabilities():
    probs = probs_for(BIO, ["O", "I-PER", "I-PER"])
    probs[1, BIO.index("B-PER")] = 0.08  # second best at position 1
    paths, ents = decode(BIO, probs)
    assert paths[0] == ("O", "B-PER", "I-PER")
    assert ents == [(1, 3, "PER")]


def test_bio_i_of_other_type_never_merges_spans():
    probs = probs_for(BIO, ["B-PER", "I-LOC"])
    probs[1, BIO.index("B-LOC")] = 0.06  # second best at position 1
    paths, ents = decode(BIO, probs)
    assert paths[0] == ("B-PER", "B-LOC")
    assert ents == [(0, 1, "PER"), (1, 2, "LOC")]
    # Even a path that keeps the I- of the other type gives two entities, one per type.
    sch = scheme(BIO)
    path = np.array([BIO.index("B-PER"), BIO.index("I-LOC")])
    assert [(s, e, sch.entity_types[t]) for s, e, t, _ in extract_entities(path, probs, sch)] == [(0, 1, "PER"), (1, 2, "LOC")]


def test_bioes_requires_closing_tag():
    probs = probs_for(BIOES, ["B-PER", "I-PER", "O"])
    probs[2, BIOES.index("E-PER")] = 0.05
    paths, ents = decode(BIOES, probs)
    assert paths[0][-1] in ("E-PER", "O")
    assert scheme(BIOES).is_valid(np.array([BIOES.index(t) for t in paths[0]]))
    for s, e, _ in ents:
        assert paths[0][e - 1].startswith(("E-", "S-"))


def test_bioes_single_and_multi():
    _, ents = decode(BIOES, probs_for(BIOES, ["S-LOC", "B-PER", "E-PER", "S-PER"]))
    assert ents == [(0, 1, "LOC"), (1, 3, "PER"), (3, 4, "PER")]


def test_bilou_is_read_as_bioes():
    sch = scheme(BILOU)
    assert sch.allowed[BILOU.index("B-PER"), BILOU.index("L-PER")]
    assert not sch.allowed[BILOU.index("B-PER"), BILOU.index("O")]
    _, ents = decode(BILOU, probs_for(BILOU, ["U-PER", "B-PER", "L-PER"]))
    assert ents == [(0, 1, "PER"), (1, 3, "PER")]


def test_io_scheme_joins_runs_and_splits_on_type_change():
    _, ents = decode(IO, probs_for(IO, ["PER", "PER", "LOC", "O", "PER"]))
    assert ents == [(0, 2, "PER"), (2, 3, "LOC"), (4, 5, "PER")]


def test_viterbi_matches_brute_force():
    rng = np.random.default_rng(0)
    sch = scheme(BIOES)
    import itertools

    for _ in range(5):
        probs = rng.dirichlet(np.ones(len(BIOES)), size=4).astype(np.float32)
        best = max(
            (p for p in itertools.product(range(len(BIOES)), repeat=4) if sch.is_valid(np.array(p))),
            key=lambda p: np.log(probs[np.arange(4), p]).sum(),
        )
        assert tuple(viterbi(probs, sch)) == best


def test_confidence_is_mean_of_chosen_probabilities():
    probs = probs_for(BIO, ["B-PER", "I-PER"])
    probs[1] = [0.3, 0.05, 0.6, 0.025, 0.025]
    sch = scheme(BIO)
    (entity,) = extract_entities(viterbi(probs, sch), probs, sch)
    assert entity[3] == pytest.approx((0.9 + 0.6) / 2)


def test_empty_sequence():
    sch = scheme(BIO)
    assert extract_entities(viterbi(np.zeros((0, 5), np.float32), sch), np.zeros((0, 5)), sch) == []


@pytest.mark.parametrize(
    "labels,match",
    [
        (["LABEL_0", "LABEL_1", "LABEL_2"], "E019.*placeholder names"),
        (["B-PER", "I-PER"], "no 'O' label"),
        (["O", "E-PER"], "E-PER has no B-PER"),
        (["O", "B-PER", "B-PER"], "duplicate"),
    ],
)
def test_labels_that_fit_no_scheme_are_refused(labels, match):
    with pytest.raises(DirectNERError, match=match):
        scheme(labels)
