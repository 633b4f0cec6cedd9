"""Packed rows: short windows share a row, each attending only to itself.

The per-family equality of packed and unpacked probabilities is in test_families.py;
here: how rows are filled, and that a model which cannot read packed rows runs unpacked."""
import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

from conftest import BIO_LABELS, make_nlp, train_tokenizer
from spacy_direct_use.inference import Runner
from spacy_direct_use.packing import PACK_WIDTH, pack_rows


def test_rows_are_filled_best_fit_longest_first():
    rows = pack_rows([60, 36, 50, 46, 96, 100, 10], width=96)
    assert rows == [[5], [4], [0, 1], [2, 3], [6]]


def test_every_window_in_one_row_within_the_width():
    lengths = np.random.default_rng(0).integers(3, 130, size=300).tolist()
    rows = pack_rows(lengths, PACK_WIDTH)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    for row in rows:
        assert len(row) == 1 or sum(lengths[i] for i in row) <= PACK_WIDTH
    short = sum(n for n in lengths if n <= PACK_WIDTH)
    long = sum(n > PACK_WIDTH for n in lengths)
    assert len(rows) <= long + short / PACK_WIDTH * 1.1 + 2  # rows are nearly full


class PositionsIgnored(BertForTokenClassification):
    """Takes position_ids but reads every row from position 0: packed windows would be misread."""

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        return super().forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)


class MaskIgnored(BertForTokenClassification):
    """Attends to the whole row: packed windows would see each other. It passes an
    all-ones mask rather than none, since transformers >= 5.25 builds a block mask
    from restarted position_ids when it gets no mask (and would read packed rows right)."""

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        whole_row = torch.ones(input_ids.shape, dtype=torch.long)
        return super().forward(input_ids=input_ids, attention_mask=whole_row, position_ids=position_ids, **kwargs)


@pytest.fixture(scope="module")
def random_bert_dir(tmp_path_factory):
    """A 1-layer BERT with random weights: its attention and positions matter."""
    path = tmp_path_factory.mktemp("random_bert")
    tokenizer = train_tokenizer("wordpiece")
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(BIO_LABELS)), label2id={label: i for i, label in enumerate(BIO_LABELS)},
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def runner_for(model_class, path, pack=True, batch_size=128):
    model = model_class.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return Runner(model, tokenizer, torch.device("cpu"), "fp32", batch_size, None, pack)


def test_short_windows_share_rows_and_passes(random_bert_dir):
    runner = runner_for(BertForTokenClassification, random_bert_dir, batch_size=4)
    assert runner.mask_kind is not None
    calls = []
    runner.model.register_forward_hook(lambda module, args, kwargs_out: calls.append(1))
    sequences = [np.arange(5, 5 + n) for n in (4, 6, 8, 5, 7, 9, 3, 4, 6, 5, 8, 7)]
    runner.predict(sequences)
    assert len(calls) == 1  # 12 windows of 5-11 sub-words (with [CLS], [SEP]) share one row
    runner.mask_kind = None
    runner.predict(sequences)
    assert len(calls) == 1 + 3  # one window per row, at most 4 rows per pass


@pytest.mark.parametrize("model_class", [PositionsIgnored, MaskIgnored])
def test_a_model_that_misreads_packed_rows_runs_unpacked(random_bert_dir, model_class):
    assert runner_for(model_class, random_bert_dir).mask_kind is None


def test_pack_windows_false_runs_unpacked(random_bert_dir):
    assert runner_for(BertForTokenClassification, random_bert_dir, pack=False).mask_kind is None
    nlp = make_nlp(random_bert_dir, pack_windows=False)
    assert nlp.get_pipe("direct_ner")._ensure_loaded().mask_kind is None
