"""Tiny token classifiers built inside the tests, so no download or shared file is needed.

`make_lookup_model` builds a real Hugging Face checkpoint (BERT with a
WordPiece tokenizer, or RoBERTa with a byte-level BPE one) with no transformer
layers: each sub-word's label is then decided by its own embedding, which the
builder sets so that chosen sub-words get chosen labels. That makes the
model's output known in advance while every other part of the pipeline runs
for real.
"""
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
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


def _path_from_env(variable: str, what: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"{variable} is not set: point it at {what} (.ci/run sets it from ../shared)")
    return Path(value).resolve()  # absolute: some tests run from other directories


@pytest.fixture(scope="session")
def real_model_dir() -> Path:
    """The real CoNLL-2003 model, from SPACY_DIRECT_USE_TEST_MODEL."""
    return _path_from_env("SPACY_DIRECT_USE_TEST_MODEL", "a token classifier such as ../shared/models/minilm-conll03")


@pytest.fixture(scope="session")
def xlmr_model_dir() -> Path:
    """The real SentencePiece (XLM-R architecture) CoNLL-2003 model, from SPACY_DIRECT_USE_TEST_XLMR_MODEL."""
    return _path_from_env("SPACY_DIRECT_USE_TEST_XLMR_MODEL", "a SentencePiece token classifier such as ../shared/models/xlmr-minilm-conll03")


@pytest.fixture(scope="session")
def iob1_model_dir() -> Path:
    """The real IOB1-trained CoNLL-2003 model in fp16, from SPACY_DIRECT_USE_TEST_IOB1_MODEL."""
    return _path_from_env("SPACY_DIRECT_USE_TEST_IOB1_MODEL", "an IOB1 token classifier such as ../shared/models/minilm-conll03-iob1")


@pytest.fixture(scope="session")
def conll_dir() -> Path:
    """The CoNLL-2003 English files, from SPACY_DIRECT_USE_CONLL_DIR."""
    return _path_from_env("SPACY_DIRECT_USE_CONLL_DIR", "a directory with eng.testa and eng.testb")
