"""What the project's scripts share: gold Docs (CoNLL-2003, CoNLL-U, .spacy) and their
texts, fresh Docs from their words, the device, threads and direct_ner pipeline every
system runs with, the bare forward floor, and timed rounds (best of interleaved rounds,
words/s).

Scripts import it as `from harness import ...`: Python puts a script's own folder
first on sys.path, so no path edits are needed.
"""
import argparse
import json
import os
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple

import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training.converters import conllu_to_docs
from spacy.vocab import Vocab

from spacy_direct_use.conll import read_docs

GRANULARITIES = ("sentence", "article")  # in the order "both" runs them
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# -- gold data ----------------------------------------------------------------------------


def read_gold(path: Path, vocab: Optional[Vocab] = None, granularity: str = "sentence", max_docs: int = 0) -> List[Doc]:
    """Gold Docs from a .spacy file (or a directory of them, as `spacy convert` writes),
    from a CoNLL-U file (.conllu: one Doc per sentence, its own vocab), or from a
    CoNLL-2003 file (one Doc per sentence or article); the first `max_docs` if > 0."""
    vocab = vocab or Vocab()
    if Path(path).is_dir():
        docs = [doc for file in sorted(Path(path).glob("*.spacy")) for doc in DocBin().from_disk(file).get_docs(vocab)]
    elif Path(path).suffix == ".spacy":
        docs = list(DocBin().from_disk(path).get_docs(vocab))
    elif Path(path).suffix == ".conllu":
        docs = list(conllu_to_docs(Path(path).read_text(encoding="utf-8"), n_sents=1, no_print=True))
    else:
        docs = read_docs(path, vocab, granularity=granularity)
    return docs[:max_docs] if max_docs > 0 else docs


def gold_texts(path: Path, granularity: str = "sentence", max_docs: int = 0) -> List[str]:
    """The texts of read_gold's Docs (a CoNLL-2003 sentence: its words joined by spaces)."""
    return [doc.text for doc in read_gold(path, granularity=granularity, max_docs=max_docs)]


def words_doc(vocab: Vocab, gold: Doc, gold_sents: bool = False) -> Doc:
    """A fresh Doc with the gold words and spaces only (and the gold sentence starts if
    `gold_sents`), so scores and timings measure the component, not the tokenizer."""
    sent_starts = [bool(t.is_sent_start) for t in gold] if gold_sents else None
    return Doc(vocab, words=[t.text for t in gold], spaces=[bool(t.whitespace_) for t in gold], sent_starts=sent_starts)


@dataclass
class Corpus:
    """Gold Docs to build fresh Docs (words_doc) or texts from."""

    name: str
    golds: List[Doc]
    gold_sents: bool = False

    def __len__(self) -> int:
        return len(self.golds)

    @property
    def n_words(self) -> int:
        return sum(len(doc) for doc in self.golds)

    @property
    def texts(self) -> List[str]:
        return [doc.text for doc in self.golds]

    def doc(self, vocab: Vocab, i: int) -> Doc:
        return words_doc(vocab, self.golds[i], self.gold_sents)

    def docs(self, vocab: Vocab) -> List[Doc]:
        return [self.doc(vocab, i) for i in range(len(self))]

    def head(self, n: int) -> "Corpus":
        return Corpus(self.name, self.golds[:n], self.gold_sents)


# -- where and how the models run ----------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """Where and in which precision the models run."""

    gpu_id: int = -1
    precision: str = "fp32"

    @property
    def target(self) -> torch.device:
        return torch.device(f"cuda:{self.gpu_id}") if self.gpu_id >= 0 else torch.device("cpu")

    def autocast(self) -> Any:
        """Mixed precision for any torch model run inside, as direct_ner's own `precision`
        does: weights stay float32, so every system computes the same way."""
        return torch.autocast(self.target.type, dtype=PRECISIONS[self.precision], enabled=self.precision != "fp32")

    def sync(self) -> None:
        if self.gpu_id >= 0:
            torch.cuda.synchronize(self.target)


def setup_device(gpu_id: int = -1, precision: str = "fp32") -> Device:
    """Select the GPU for spaCy/thinc and torch (CPU when gpu_id < 0)."""
    if gpu_id >= 0:
        torch.cuda.set_device(gpu_id)
        try:
            spacy.require_gpu(gpu_id)
        except ValueError as err:  # thinc needs cupy; direct_ner then gets device= explicitly
            print(f"note: spacy.require_gpu({gpu_id}) failed ({err}); passing device to direct_ner")
    return Device(gpu_id, precision)


def load_nlp(model: str, gpu_id: int = -1) -> Language:
    """Load a saved pipeline, on GPU `gpu_id` when >= 0."""
    setup_device(gpu_id)
    return spacy.load(model)


def setup_run(args: argparse.Namespace) -> Tuple[int, Device]:
    """For the options of add_common_args: torch threads (0: all usable cores) and device;
    library chatter that would interleave with the tables silenced. Returns (threads, device)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    return torch.get_num_threads(), setup_device(args.gpu_id, args.precision)


def direct_ner_nlp(model_path: str, device: Device, settings: Optional[Dict[str, Any]] = None) -> Language:
    """A blank English pipeline with direct_ner, model loaded: default settings, updated
    with `settings` (any of direct_ner's config keys)."""
    config: Dict[str, Any] = {"model": model_path, "precision": device.precision, **(settings or {})}
    if device.gpu_id >= 0:
        config["device"] = str(device.target)
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config=config)
    nlp.initialize()
    return nlp


def direct_ner_model(nlp: Language) -> torch.nn.Module:
    """The torch model direct_ner runs (the checkpoint as loaded: for counting its work)."""
    return nlp.get_pipe("direct_ner").hf_model


# -- the bare forward floor ------------------------------------------------------------------


def hf_encode(tokenizer: Any, split_words: bool = False, max_length: Optional[int] = None) -> Callable[[List[Any]], Any]:
    """A floor's `encode`: the checkpoint's own tokenizer on a batch of texts (or of word
    lists where `split_words`), padded to the longest and cut at the model's limit."""
    return lambda batch: tokenizer(batch, is_split_into_words=split_words, padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def pad_ids(pad_id: int) -> Callable[[List[Sequence[int]]], Dict[str, torch.Tensor]]:
    """A floor's `encode` for inputs already tokenized (id lists, special tokens included):
    padded to the longest with `pad_id`, with the usual 2D mask."""

    def encode(batch: List[Sequence[int]]) -> Dict[str, torch.Tensor]:
        input_ids = torch.full((len(batch), max(len(ids) for ids in batch)), pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    return encode


def argmax_logits(outputs: Any, encoded: Any) -> torch.Tensor:
    """A floor's default `read`: each row's argmax label per position, on the CPU."""
    return outputs.logits.argmax(-1).cpu()


def bare_forward(
    model: Any,
    inputs: Sequence[Any],
    batch_size: int,
    encode: Callable[[List[Any]], Any],
    read: Callable[[Any, Any], Sequence[Any]] = argmax_logits,
    device: Any = "cpu",
    autocast: Optional[ContextManager] = None,
) -> List[Any]:
    """The bare forward floor, a lower bound for any wrapper: `inputs` in length-sorted
    batches of `batch_size`, each batch `encode`d (hf_encode, pad_ids), moved to `device`,
    run through `model` (inside `autocast` where given) and `read(outputs, encoded)` into
    one result per row; no windows, alignment or decoding. Each input's result, in order."""
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    results: List[Any] = [None] * len(inputs)
    with torch.inference_mode(), autocast or nullcontext():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            encoded = encode([inputs[i] for i in batch])
            outputs = model(**{key: tensor.to(device) for key, tensor in encoded.items()})
            for i, result in zip(batch, read(outputs, encoded)):
                results[i] = result
    return results


def runner_autocast(runner: Any) -> ContextManager:
    """The autocast a direct-use runner runs its model in (none where its dtype is None)."""
    if runner.autocast_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=runner.device.type, dtype=runner.autocast_dtype)


# -- counting forward work -----------------------------------------------------------------


class ForwardCounter:
    """Counts a torch model's forward calls and padded input tokens: the work done,
    which (unlike wall time on a shared machine) is free of noise."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = self.tokens = 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is not None:
            self.calls += 1
            self.tokens += input_ids.numel()

    def reset(self) -> None:
        self.calls = self.tokens = 0


@lru_cache(maxsize=None)
def forward_counter(model: torch.nn.Module) -> ForwardCounter:
    """One counter per model (systems sharing a model share it; they never run at once)."""
    return ForwardCounter(model)


# -- command line ----------------------------------------------------------------------------


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options of benchmark.py and peers.py."""
    parser.add_argument("--model", required=True, help="Hugging Face token classifier (path or name)")
    parser.add_argument("--conll-file", required=True, type=Path, help="CoNLL-2003 file, e.g. eng.testb")
    parser.add_argument("--granularity", choices=GRANULARITIES + ("both",), default="both")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU id, -1 for CPU")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32")
    parser.add_argument("--max-docs", type=int, default=0, help="Use the first N docs per granularity (0: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all usable cores)")
    parser.add_argument("--gold-sents", action="store_true", help="Give the Docs gold sentence starts")


def add_compare_args(parser: argparse.ArgumentParser, systems: Dict[str, Any], data_help: str) -> None:
    """Options of textcat_compare.py and tagger_compare.py: the model, the data, which systems, rounds, batch size, output."""
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, required=True, help=data_help)
    parser.add_argument("--systems", default=",".join(systems))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", type=Path)


def build_systems(makers: Dict[str, Callable[[str, int], Any]], names: str, model: str, batch_size: int) -> Dict[str, Any]:
    """The systems named (comma-separated) in `makers`, each built for `model`; a peer
    that is not installed is skipped with a note (keep the peers in a separate venv)."""
    systems = {}
    for name in names.split(","):
        try:
            systems[name] = makers[name](model, batch_size)
        except ImportError as err:
            print(f"skipped {name}: {err}")
    return systems


def granularities(choice: str) -> Tuple[str, ...]:
    return GRANULARITIES if choice == "both" else (choice,)


def write_report(path: Optional[Path], report: Any) -> None:
    """Write a script's results as indented JSON to `path` (its folder made), where given."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")


# -- timed rounds -------------------------------------------------------------------------------


def round_times(
    systems: Mapping[str, Callable[..., Any]],
    rounds: int,
    prepare: Optional[Callable[[str], Any]] = None,
    outputs: Optional[Dict[str, Any]] = None,
    progress: bool = False,
) -> Dict[str, List[float]]:
    """Seconds of each system's call in each of `rounds` rounds, the systems interleaved in
    each round, so a busy machine slows each alike. `prepare(name)`, where given, runs
    untimed before each call and its result is the call's argument (fresh Docs, a warm-up,
    a setting); `outputs`, where given, gets what each system returned in the first round;
    `progress` prints each call's seconds to stderr."""
    times: Dict[str, List[float]] = {name: [] for name in systems}
    for k in range(rounds):
        for name, run in systems.items():
            args = () if prepare is None else (prepare(name),)
            start = time.perf_counter()
            result = run(*args)
            times[name].append(time.perf_counter() - start)
            if outputs is not None and name not in outputs:
                outputs[name] = result
            if progress:
                print(f"[round {k + 1}] {name}: {times[name][-1]:.1f}s", file=sys.stderr, flush=True)
    return times


def timed_rounds(systems: Mapping[str, Callable[..., Any]], rounds: int, **options: Any) -> Dict[str, float]:
    """Best seconds per system over `rounds` (round_times, with its options: prepare, outputs, progress)."""
    return {name: min(times) for name, times in round_times(systems, rounds, **options).items()}


def best_of(call: Callable[[], Any], repeats: int) -> float:
    """Best seconds of `repeats` calls of one thing."""
    return timed_rounds({"call": call}, repeats)["call"]


def words_per_second(n_words: int, seconds: float) -> float:
    """Throughput in words/s (n_words: the words one timed pass read)."""
    return n_words / seconds
