"""The fine-tuning contract, per checkpoint family: direct_ner reads each word from
the piece its training labelled.

Reference (what token-classification fine-tuning trains, e.g. transformers'
run_ner): `tokenizer(words, is_split_into_words=True)`, each word's first piece
per `word_ids()`, argmax, entities. direct_ner on `Doc(vocab, words=words)`, and on
`nlp(text)` with spaCy's own tokens as the words, must give exactly those entities.

Each family's tokenizer is trained here and turned into a fast tokenizer by
transformers' own slow-to-fast converters (how real tokenizer.json files are
made), next to a tiny randomly initialised model of the family's architecture
with an IO head (every tag sequence is valid, so the reference needs no repair).
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
from spacy.tokens import Doc
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

from conftest import make_nlp

sentencepiece = pytest.importorskip("sentencepiece")

IO_LABELS = ["O", "PER", "LOC", "ORG"]
SENTENCES = [
    "Washingtonians visited Berlin , Madrid and Rome with Jane Doe from London .",
    "The veterinary 's clinic in São Paulo hired Ángela Müller on Monday .",
    "Angela Merkel flew to Paris to meet Emmanuel Macron at the United Nations .",
    "The U.S.-based firm said it don't e-mail its $2bn offer to Acme Corp. in New York .",
    "Zürich , Genève and Reykjavík signed ; 12,000 people cheered .",
    "東京 で 会議 が 開か れ た 。",
]
TRAINING_TEXT = SENTENCES + [
    "the cat sat on a mat near the river and the dog ran after it",
    "Reuters reported that shares rose 3.5 percent in early trading on Tuesday",
    "東京都 大阪 京都 会議 開催 された 日本 政府",
] * 3
RAW_TEXTS = [  # spaCy's tokens and the tokenizer's words differ here
    "The U.S.-based firm don't e-mail its $2bn offer to Acme Corp.",
    "Angela Merkel (CDU) met Macron in Paris—twice.",
]
WORDPIECE_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# -- tokenizers, as their families' files --------------------------------------------------


def wordpiece_files(path: Path, lowercase: bool) -> None:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(TRAINING_TEXT, trainers.WordPieceTrainer(vocab_size=300, special_tokens=WORDPIECE_SPECIALS))
    vocab = sorted(tok.get_vocab().items(), key=lambda item: item[1])
    (path / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")


def bpe_files(path: Path) -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(TRAINING_TEXT, trainers.BpeTrainer(vocab_size=500, special_tokens=specials, initial_alphabet=alphabet))
    tok.model.save(str(path))  # vocab.json, merges.txt


def sentencepiece_file(path: Path, model_type: str = "unigram") -> None:
    """A SentencePiece model as XLM-R / DeBERTa ship it (NFKC-style normalization)."""
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAINING_TEXT), model_prefix=str(path.with_suffix("")), vocab_size=160,
        model_type=model_type, character_coverage=1.0, hard_vocab_limit=False,
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, minloglevel=2,
    )  # fmt: skip
    path.with_suffix(".model").rename(path)


FAMILIES: Dict[str, Tuple[str, str, dict]] = {
    # family: (model_type, tokenizer class, tokenizer_config extras)
    "wordpiece-cased-bert": ("bert", "BertTokenizer", {"do_lower_case": False}),
    "wordpiece-uncased-distilbert": ("distilbert", "DistilBertTokenizer", {"do_lower_case": True}),
    "wordpiece-uncased-electra": ("electra", "ElectraTokenizer", {"do_lower_case": True, "strip_accents": True}),
    "bpe-prefix-trim-roberta": ("roberta", "RobertaTokenizer", {"add_prefix_space": True, "trim_offsets": True}),
    "bpe-noprefix-notrim-roberta": ("roberta", "RobertaTokenizer", {"add_prefix_space": False, "trim_offsets": False}),
    "sentencepiece-xlm-roberta": ("xlm-roberta", "XLMRobertaTokenizer", {}),
    "sentencepiece-camembert": ("camembert", "CamembertTokenizer", {}),
    "sentencepiece-deberta-v2": ("deberta-v2", "DebertaV2Tokenizer", {}),
}


def save_tokenizer(path: Path, family: str) -> None:
    _, tokenizer_class, extras = FAMILIES[family]
    path.mkdir(parents=True)
    if family.startswith("wordpiece"):
        wordpiece_files(path, lowercase=extras["do_lower_case"])
    elif family.startswith("bpe"):
        bpe_files(path)
    elif family.endswith("deberta-v2"):
        sentencepiece_file(path / "spm.model")
    else:
        sentencepiece_file(path / "sentencepiece.bpe.model")
    (path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class, **extras}))
    # transformers' converter builds the fast tokenizer from these files; save its tokenizer.json
    AutoTokenizer.from_pretrained(path, use_fast=True).save_pretrained(path)


def save_random_model(path: Path, family: str) -> None:
    """A 1-layer model of the family's architecture, IO head with random (trained-looking) weights."""
    model_type = FAMILIES[family][0]
    tokenizer = AutoTokenizer.from_pretrained(path)
    sizes = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    if model_type == "distilbert":
        sizes = dict(dim=32, n_layers=1, n_heads=2, hidden_dim=32)
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, max_position_embeddings=130,
        id2label=dict(enumerate(IO_LABELS)), label2id={label: i for i, label in enumerate(IO_LABELS)}, **sizes,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
        model.classifier.bias.uniform_(-1, 1)
    model.save_pretrained(path, safe_serialization=True)


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_dir(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("families") / request.param
    save_tokenizer(path, request.param)
    save_random_model(path, request.param)
    return path


# -- the reference ---------------------------------------------------------------------------


def reference_entities(path: Path, words: List[str]) -> List[Tuple[int, int, str]]:
    """Entities as fine-tuning reads a word list: first piece per word_ids(), argmax (IO tags)."""
    prefix_space = {"add_prefix_space": True} if "bpe" in path.name else {}  # as run_ner loads byte-level BPE
    tokenizer = AutoTokenizer.from_pretrained(path, **prefix_space)
    model = AutoModelForTokenClassification.from_pretrained(path).eval()
    encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        tags = model(**encoding).logits[0].argmax(-1).tolist()
    word_tags = ["O"] * len(words)
    seen = set()
    for position, word in enumerate(encoding.word_ids()):
        if word is not None and word not in seen:
            seen.add(word)
            word_tags[word] = IO_LABELS[tags[position]]
    return io_spans(word_tags)


def io_spans(tags: List[str]) -> List[Tuple[int, int, str]]:
    spans: List[Tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        if spans and spans[-1][1] == i and spans[-1][2] == tag:
            spans[-1] = (spans[-1][0], i + 1, tag)
        else:
            spans.append((i, i + 1, tag))
    return spans


def entity_tuples(doc: Doc) -> List[Tuple[int, int, str]]:
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


# -- the contract ----------------------------------------------------------------------------


def test_gold_words_give_the_fine_tuning_reference(family_dir):
    nlp = make_nlp(family_dir, lang="xx")
    compared = 0
    for sentence in SENTENCES:
        words = sentence.split(" ")
        expected = reference_entities(family_dir, words)
        assert entity_tuples(nlp(Doc(nlp.vocab, words=words))) == expected, sentence
        compared += len(expected)
    assert compared >= 10  # the random head tags enough words for the comparison to mean something


def test_spacy_tokens_are_the_words(family_dir):
    """On nlp(text), spaCy's tokens are the words the model reads, whitespace tokens excluded."""
    nlp = make_nlp(family_dir)
    for text in RAW_TEXTS + ["  Angela \n Merkel  in Paris . "]:
        doc = nlp(text)
        assert doc.text == text
        word_tokens = [token.i for token in doc if not token.is_space]
        expected = [
            (word_tokens[start], word_tokens[end - 1] + 1, label)
            for start, end, label in reference_entities(family_dir, [doc[i].text for i in word_tokens])
        ]
        assert entity_tuples(doc) == expected, text


def test_sentencepiece_reads_the_bare_prefix_piece(tmp_path):
    """The issue's trap: XLM-R-style SentencePiece splits many words into a bare '▁' piece
    and the rest. Fine-tuning labels the '▁' piece; a head that tags it B-LOC and every
    other piece O must tag exactly the words that start with a bare '▁'."""
    path = tmp_path / "xlmr"
    save_tokenizer(path, "sentencepiece-xlm-roberta")
    tokenizer = AutoTokenizer.from_pretrained(path)
    words = SENTENCES[0].split(" ")
    pieces = tokenizer(words, is_split_into_words=True)
    first_pieces = {}
    for position, word in enumerate(pieces.word_ids()):
        first_pieces.setdefault(word, pieces.tokens()[position])
    bare_words = [i for i, piece in first_pieces.items() if i is not None and piece == "▁"]
    assert len(bare_words) >= 3, "the trained vocabulary must split some words after a bare '▁'"
    labels = ["O", "B-LOC", "I-LOC"]
    config = AutoConfig.for_model(
        "xlm-roberta", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, hidden_size=32,
        num_hidden_layers=0, num_attention_heads=2, intermediate_size=32, max_position_embeddings=130,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )  # fmt: skip
    model = AutoModelForTokenClassification.from_config(config)
    bare_id = tokenizer.convert_tokens_to_ids("▁")
    with torch.no_grad():
        for param in model.roberta.embeddings.parameters():
            param.zero_()
        model.roberta.embeddings.LayerNorm.weight.fill_(1.0)
        model.roberta.embeddings.word_embeddings.weight[:, 0] = 1.0  # every piece: slot 0 -> O
        model.roberta.embeddings.word_embeddings.weight[bare_id, 0] = 0.0
        model.roberta.embeddings.word_embeddings.weight[bare_id, 1] = 1.0  # the bare '▁': slot 1 -> B-LOC
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[0, 0] = model.classifier.weight[1, 1] = 5.0
    model.save_pretrained(path, safe_serialization=True)
    nlp = make_nlp(path, lang="xx")
    doc = nlp(Doc(nlp.vocab, words=words))
    assert [ent.start for ent in doc.ents] == bare_words


# -- packed rows (several short windows share a row on CPU) ----------------------------------

PACKED_FAMILIES = {"bert", "electra", "roberta", "xlm-roberta", "camembert"}
"""Families that take packed rows with every supported transformers version (the
others may run unpacked: DistilBERT 4.x has no position_ids argument)."""


def test_batches_give_the_fine_tuning_reference(family_dir):
    """Through nlp.pipe the sentences share forward passes (packed rows where the
    model allows it) and still read exactly as alone."""
    nlp = make_nlp(family_dir, lang="xx")
    sentences = [sentence.split(" ") for sentence in SENTENCES]
    docs = nlp.pipe([Doc(nlp.vocab, words=words) for words in sentences])
    assert [entity_tuples(doc) for doc in docs] == [reference_entities(family_dir, words) for words in sentences]


def test_packed_rows_give_each_window_its_own_probabilities(family_dir):
    nlp = make_nlp(family_dir, lang="xx", forward_batch_tokens=400)
    runner = nlp.get_pipe("direct_ner")._ensure_loaded()
    model_type = FAMILIES[family_dir.name][0]
    if model_type in PACKED_FAMILIES:
        assert runner.mask_kind is not None
    if runner.mask_kind is None:
        pytest.skip(f"{model_type} runs unpacked with this transformers version")
    vocab_size = runner.model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    lengths = [1, 3, 5, 8, 13, 21, 34, 50, 60, 80, 93, 120, 2, 7, 40]  # short ones share rows; 120 gets its own
    sequences = [torch.randint(5, vocab_size, (n,), generator=generator).numpy() for n in lengths]
    packed = runner.predict(sequences)
    runner.mask_kind = None  # every window alone in its row
    alone = runner.predict(sequences)
    for p, a in zip(packed, alone):
        assert p.shape == a.shape
        assert abs(p - a).max() < 1e-5
