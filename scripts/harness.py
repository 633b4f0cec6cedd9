"""What the project's scripts share: gold Docs, fresh Docs from their words, and the
device, threads and direct_ner pipeline every system runs with.

Scripts import it as `from harness import ...`: Python puts a script's own folder
first on sys.path, so no path edits are needed.
"""
import argparse
import json
import os
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from spacy_direct_use.conll import read_docs

GRANULARITIES = ("sentence", "article")  # in the order "both" runs them
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# -- gold data ----------------------------------------------------------------------------


def read_gold(path: Path, vocab: Optional[Vocab] = None, granularity: str = "sentence", max_docs: int = 0) -> List[Doc]:
    """Gold Docs from a .spacy file (or a directory of them, as `spacy convert` writes), or
    from a CoNLL-2003 file (one Doc per sentence or article); the first `max_docs` if > 0."""
    vocab = vocab or Vocab()
    if Path(path).is_dir():
        docs = [doc for file in sorted(Path(path).glob("*.spacy")) for doc in DocBin().from_disk(file).get_docs(vocab)]
    elif Path(path).suffix == ".spacy":
        docs = list(DocBin().from_disk(path).get_docs(vocab))
    else:
        docs = read_docs(path, vocab, granularity=granularity)
    return docs[:max_docs] if max_docs > 0 else docs


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
    """The torch model direct_ner runs (a private attribute: for counting its work only)."""
    return nlp.get_pipe("direct_ner")._model


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


def timed_rounds(systems: Dict[str, Callable[[], object]], rounds: int) -> Dict[str, float]:
    """Best seconds per system over `rounds`, the systems interleaved in each round."""
    best = {name: float("inf") for name in systems}
    for _ in range(rounds):
        for name, run in systems.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
