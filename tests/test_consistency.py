"""doc_consistency: mentions of one name within a Doc agree on their type, from the model's own
probabilities, unless the model is sure of a mention's own type."""
import numpy as np
import pytest
from confection import ConfigValidationError

from conftest import ents, make_nlp
from spacy_direct_use.consistency import group_mentions, reconcile

TYPES = ["LOC", "ORG", "PER"]
LOC, ORG, PER = range(3)


def type_rows(*rows):
    return np.array(rows, dtype=np.float32)


def test_one_name_typed_two_ways_takes_the_pooled_type():
    """'Newmont' read as LOC (weakly) once and as ORG (strongly) twice: all three ORG."""
    words = "Newmont rose . Newmont fell . Newmont said .".split()
    mentions = [(0, 1, LOC, 0.55), (3, 4, ORG, 0.9), (6, 7, ORG, 0.85)]
    probs = np.full((len(words), 3), 0.0, dtype=np.float32)
    probs[0] = [0.55, 0.40, 0.0]
    probs[3] = [0.05, 0.90, 0.0]
    probs[6] = [0.10, 0.85, 0.0]
    assert [m[2] for m in reconcile(words, mentions, probs, keep=0.9)] == [ORG, ORG, ORG]
    assert reconcile(words, mentions, probs, keep=0.9)[0][3] == 0.55  # the model's confidence stays


def test_a_short_form_joins_its_long_name():
    words = "Angela Merkel spoke . Merkel left .".split()
    assert group_mentions(words, [(0, 2, PER, 0.9), (4, 5, ORG, 0.5)]) == [0, 0]
    probs = np.zeros((len(words), 3), dtype=np.float32)
    probs[0:2] = [0.0, 0.05, 0.95]
    probs[4] = [0.0, 0.5, 0.45]
    assert [m[2] for m in reconcile(words, [(0, 2, PER, 0.95), (4, 5, ORG, 0.5)], probs, keep=0.9)] == [PER, PER]
    # a long form beside a short one, prefix-wise ("Newmont" and "Newmont Mining")
    assert group_mentions("Newmont Mining said Newmont".split(), [(0, 2, ORG, 0.9), (3, 4, LOC, 0.5)]) == [0, 0]


def test_a_short_form_inside_two_different_names_stays_alone():
    words = "Manchester United beat Leeds United . United won".split()
    groups = group_mentions(words, [(0, 2, ORG, 0.9), (3, 5, ORG, 0.9), (6, 7, LOC, 0.6)])
    assert groups[2] not in groups[:2]


def test_a_city_and_its_club_stay_apart_where_the_model_is_sure():
    """'Chicago' the city (LOC 0.97) and 'Chicago' the club (ORG 0.95) in one article: both kept."""
    words = "Snow fell in Chicago . Chicago beat Boston".split()
    mentions = [(3, 4, LOC, 0.97), (5, 6, ORG, 0.95)]
    probs = np.zeros((len(words), 3), dtype=np.float32)
    probs[3] = [0.97, 0.02, 0.0]
    probs[5] = [0.04, 0.95, 0.0]
    assert [m[2] for m in reconcile(words, mentions, probs, keep=0.9)] == [LOC, ORG]
    assert [m[2] for m in reconcile(words, mentions, probs, keep=1.01)] == [LOC, LOC]  # keep > 1: always pooled


def test_different_names_are_never_merged():
    words = "Paris and Berlin".split()
    probs = type_rows([0.6, 0.4, 0], [0, 0, 0], [0.3, 0.7, 0])
    assert reconcile(words, [(0, 1, LOC, 0.6), (2, 3, ORG, 0.7)], probs, keep=1.01) == [(0, 1, LOC, 0.6), (2, 3, ORG, 0.7)]


def test_sentence_docs_and_the_setting(bert_dir):
    text = "Angela Merkel flew to Paris to meet the United Nations."
    assert ents(make_nlp(bert_dir, doc_consistency=True)(text)) == ents(make_nlp(bert_dir)(text))
    with pytest.raises(ConfigValidationError, match="doc_consistency"):
        make_nlp(bert_dir, doc_consistency="yes please")
