"""spaCy's contracts on every direct_* component: a failure goes to the pipeline's error
handler (nlp.set_error_handler) in __call__ and pipe, as in spaCy's own pipes; settings are
checked the same way in the config and per call; settings a component does not use are
refused; a checkpoint given to the wrong component gets a coded error naming the right one."""
import inspect
import warnings
from pathlib import Path
from typing import Dict

import pytest
import spacy
from spacy.tokens import DocBin
from thinc.api import ConfigValidationError

from spacy_direct_use import DirectNER, DirectRel, DirectTagger, DirectTextCat, DirectUseError, DirectVectors
from spacy_direct_use.categories import FineTunedCategories
from spacy_direct_use.ner import RunningTextEntities, TokenEntities
from spacy_direct_use.route import Route
from spacy_direct_use.zeroshot import LABEL_SETS_KEPT
from spacy_direct_use.vectors import restore_vectors


@pytest.fixture(scope="module")
def models(component_models) -> Dict[str, Path]:
    return component_models


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


# -- settings checked the same way in the config and per call -------------------------------------------


@pytest.fixture(scope="module")
def zero_shot(models) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_textcat", config={"model": str(models["direct_vectors"]), "labels": ["sports", "politics"]})
    return nlp


@pytest.mark.parametrize(
    "setting,code",
    [
        ({"multi_label": "false"}, r"E008\] Invalid setting multi_label='false'"),
        ({"multi_label": 1}, r"E008\] Invalid setting multi_label=1"),
        ({"hypothesis_template": "This is about"}, r"E062\]"),
        ({"hypothesis_template": ""}, r"E062\]"),
        ({"labels": "sports"}, r"E061\] Invalid labels 'sports': not a list"),
        ({"labels": [1, 2]}, r"E061\] Invalid labels \[1, 2\]: 1, 2 are not non-empty strings\."),
        ({"labels": ["", "a", ""]}, r"E061\] .*: '' is not a non-empty string\."),
    ],
)
def test_per_call_settings_are_checked_as_config_settings(zero_shot, setting, code):
    doc = zero_shot.make_doc("The match ended in a draw.")
    with pytest.raises(DirectUseError, match=r"\[direct_textcat " + code):
        zero_shot.get_pipe("direct_textcat")(doc, **setting)
    assert not doc.cats
    cats = zero_shot("The match ended in a draw.", component_cfg={"direct_textcat": {"multi_label": True}}).cats
    assert set(cats) == {"sports", "politics"} and sum(cats.values()) != pytest.approx(1.0)


def test_config_labels_of_the_wrong_type_get_e061_not_a_config_dump(models):
    with pytest.raises(DirectUseError, match=r"\[direct_textcat E061\] Invalid labels 'sports'"):
        spacy.blank("en").add_pipe("direct_textcat", config={"model": str(models["direct_vectors"]), "labels": "sports"})
    with pytest.raises(DirectUseError, match=r"\[direct_ner E061\]"):
        spacy.blank("en").add_pipe("direct_ner", config={"model": str(models["direct_ner"]), "labels": {"person": 3}})


def test_label_embeddings_kept_for_recent_label_sets_only(zero_shot):
    textcat = zero_shot.get_pipe("direct_textcat")
    for k in range(LABEL_SETS_KEPT + 8):
        zero_shot("A text.", component_cfg={"direct_textcat": {"labels": [f"topic {k}", "other"]}})
    assert len(textcat.route.label_vectors) == LABEL_SETS_KEPT
    first = zero_shot("A text.").cats
    assert zero_shot("A text.").cats == first


def test_unused_settings_refused_by_direct_vectors(models):
    for setting in ({"label_map": {"a": "b"}}, {"id2label": ["a"]}, {"check_head": False}):
        with pytest.raises(ConfigValidationError, match=f"direct_vectors -> {next(iter(setting))}"):
            spacy.blank("en").add_pipe("direct_vectors", config={"model": str(models["direct_vectors"]), **setting})


@pytest.mark.parametrize("cls", [DirectNER, DirectTextCat, DirectTagger, DirectVectors, DirectRel])
def test_settings_are_declared_once_and_the_factory_takes_exactly_them(cls):
    """The factory's config and validated signature come from the component's SETTINGS."""
    config = spacy.blank("en").get_factory_meta(cls.FACTORY).default_config
    own = {"model", "scorer"} | ({"ents_filter"} if cls is DirectNER else set())
    assert set(config) - own == set(cls.SETTINGS.names())
    signature = inspect.signature(spacy.registry.factories.get(cls.FACTORY))
    assert set(signature.parameters) - {"nlp", "name"} == set(config)
    assert set(cls.SETTINGS.per_call()) <= set(cls.SETTINGS.names())


def test_a_setting_a_component_does_not_have_is_refused_in_python_too(models):
    with pytest.raises(DirectUseError, match=r"\[direct_tagger E099\] direct_tagger has no setting \['treshold'\]"):
        DirectTagger(spacy.blank("en").vocab, model=str(models["direct_tagger"]), treshold=0.5)


def test_a_settings_check_runs_alike_in_the_config_and_per_call(models):
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(models["direct_ner"])})
    with pytest.raises(DirectUseError, match=r"\[direct_ner E008\] Invalid setting threshold=2"):
        spacy.blank("en").add_pipe("direct_ner", config={"model": str(models["direct_ner"]), "threshold": 2})
    with pytest.raises(DirectUseError, match=r"\[direct_ner E008\] Invalid setting threshold=2"):
        nlp("Paris.", component_cfg={"direct_ner": {"threshold": 2}})
    with pytest.raises(DirectUseError, match=r"\[direct_ner E008\] Invalid setting flat_ner='no'"):
        list(nlp.pipe(["Paris."], component_cfg={"direct_ner": {"flat_ner": "no"}}))


def test_each_component_reads_its_checkpoint_by_one_of_its_routes(models):
    """pipe.route is the route that reads the checkpoint; its name says which."""
    expected = {"direct_ner": TokenEntities, "direct_textcat": FineTunedCategories, "direct_tagger": Route, "direct_vectors": Route}
    for factory, route_class in expected.items():
        pipe = spacy.blank("en").add_pipe(factory, config={"model": str(models[factory])})
        assert isinstance(pipe.route, route_class) and type(pipe.route) in type(pipe).ROUTES
    split = spacy.blank("en").add_pipe("direct_ner", config={"model": str(models["direct_ner"]), "alignment_mode": "split"})
    assert isinstance(split.route, RunningTextEntities)


def test_restore_vectors_says_when_a_docbin_dropped_them(models):
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_vectors", config={"model": str(models["direct_vectors"])})
    doc = nlp("A short text.")
    plain = next(DocBin(docs=[doc]).get_docs(nlp.vocab))
    with pytest.warns(UserWarning, match=r"W001\].*store_user_data=True"):
        restore_vectors(plain)
    kept = next(DocBin(docs=[doc], store_user_data=True).get_docs(nlp.vocab))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert restore_vectors(kept).similarity(doc) == pytest.approx(1.0, abs=1e-6)


# -- checkpoints given to the wrong component -------------------------------------------------------------


def test_wrong_head_names_the_factory_to_use(models):
    with pytest.raises(DirectUseError, match=r'\[direct_ner E004\].*nlp.add_pipe\("direct_vectors", config='):
        spacy.blank("en").add_pipe("direct_ner", config={"model": str(models["direct_vectors"])})("A text.")


def test_token_classifier_graph_given_to_direct_vectors(models, tmp_path):
    pytest.importorskip("onnxruntime")
    from test_onnx import as_onnx

    graph_only = as_onnx(models["direct_ner"], tmp_path / "onnx", "transformers.js")
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_vectors", config={"model": str(graph_only)})
    doc = nlp.make_doc("A text.")
    with pytest.raises(DirectUseError, match=r"\[direct_vectors E076\].*\['logits'\].*no hidden states"):
        nlp.get_pipe("direct_vectors")(doc)
    assert not doc.user_data


# -- nothing read from disk in a factory that from_disk replaces ------------------------------------------


def test_saved_pipeline_loads_with_its_source_gone_and_a_missing_path_fails_at_first_use(bert_dir, tmp_path):
    import shutil

    source = shutil.copytree(bert_dir, tmp_path / "source")
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": str(source)})
    assert nlp.get_pipe("direct_ner").labels == ("LOC", "ORG", "PER")  # read from config.json, no weights
    expected = [(e.text, e.label_) for e in nlp("Angela Merkel flew to Paris.").ents]
    nlp.to_disk(tmp_path / "saved")
    shutil.rmtree(source)
    loaded = spacy.load(tmp_path / "saved")
    assert loaded.get_pipe("direct_ner").labels == ("LOC", "ORG", "PER")
    assert [(e.text, e.label_) for e in loaded("Angela Merkel flew to Paris.").ents] == expected
    missing = spacy.blank("en")
    missing.add_pipe("direct_ner", config={"model": str(source)})  # spaCy builds components before from_disk: no check here
    with pytest.raises(DirectUseError, match=r"\[direct_ner E002\] The model directory '.*source' does not exist"):
        missing.initialize()
