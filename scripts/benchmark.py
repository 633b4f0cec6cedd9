#!/usr/bin/env python
"""Benchmark direct_ner's speed and memory against a bare forward-pass floor,
the transformers token-classification pipeline and (--peers) other spaCy wrappers.

Every system sees the same Docs (gold words and spaces) in one process with the
same torch thread count. All systems are warmed up, then timed in interleaved
rounds (`--repeats`); the best round counts. Each system's forward calls and
padded tokens per word are counted too: unlike seconds, they do not depend on
what else the machine is running.

B (`--batch-sizes`) is the batch size a user sets: nlp.pipe(batch_size=B) for
spaCy pipelines (direct_ner keeps its default forward batching; the peers also
get B as their forward batch) and pipeline(..., batch_size=B) for transformers.
The floor runs length-sorted forward batches of `--floor-batch-size` (32).
`--matched-batches` instead gives the floor and direct_ner forward batches of
exactly B windows: what direct_ner costs on top of the very same forward passes.

  python scripts/benchmark.py --model PATH --conll-file eng.testb \
      [--granularity sentence|article|both] [--batch-sizes 8,32,64] [--gpu-id -1] \
      [--precision fp32|bf16|fp16] [--max-docs N] [--stream-words 1000000] \
      [--repeats 2] [--peers] [--systems floor,direct_ner] [--gold-sents] \
      [--threads 0] [--floor-batch-size 32] [--matched-batches] [--output metrics/benchmark.json]
      [--precisions fp32,int8] [--latency] [--pack-widths 64,128,256]

With --precision bf16/fp16 every system runs inside torch.autocast with float32 weights,
as direct_ner's `precision` setting does, so all compute the same way.

--precisions fp32,int8 adds direct_ner[int8] to the same interleaved rounds as
direct_ner (in --precision); --pack-widths adds direct_ner with other packed-row
widths. --latency times one-Doc calls instead: nlp(text) on a 25-word sentence
against the bare tokenizer + forward call, p50/p99 over 1,000 calls, the first
load from the checkpoint, the manifest check spacy.load runs on the saved files, and
the first call after spacy.load, lazy and after an eager initialize().

--peers needs spacy-huggingface-pipelines and spacy-wrap installed (keep them in a
separate venv); peers that cannot be imported are skipped with a note. Shared pieces
(gold Docs, device, direct_ner pipeline, the bare forward floor) are in harness.py, the
peers in peers.py.
"""
import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from itertools import cycle
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import psutil
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

import spacy_direct_use.inference as inference
from spacy_direct_use.inference import special_tokens
from spacy_direct_use.manifest import MANIFEST_FILE, read_manifest, verify_manifest

from harness import (
    Corpus,
    Device,
    add_common_args,
    bare_forward,
    direct_ner_model,
    direct_ner_nlp,
    forward_counter,
    granularities,
    pad_ids,
    read_gold,
    runner_autocast,
    setup_run,
    words_per_second,
)
from peers import PEERS, Peer

STAGES = ("tokenize", "forward", "decode", "annotate")
HF_STRIDE = 16  # overlap for texts longer than the model: transformers' pipeline truncates without it
STREAM_CHECKPOINT_WORDS = 10_000
MATCHED_BATCH_TOKENS = 1 << 30  # --matched-batches: only the window count limits a forward batch


def doc_stream(corpus: Corpus, vocab: Vocab, n_words: int) -> Iterator[Doc]:
    """Fresh Docs cycling through the corpus until n_words words; keeps none of them."""
    produced = 0
    for i in cycle(range(len(corpus))):
        if produced >= n_words:
            return
        produced += len(corpus.golds[i])
        yield corpus.doc(vocab, i)


# -- memory -----------------------------------------------------------------------------


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def max_rss_mib() -> float:
    """Peak RSS of the whole process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssPeak:
    """Samples this process's RSS in a background thread; `.peak` is the max seen (MiB)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self) -> "RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


# -- systems ----------------------------------------------------------------------------


@dataclass
class System:
    """Something to time: `prepare` makes its inputs (untimed), `run` processes them (timed)."""

    name: str
    prepare: Callable[[Corpus], Any]
    run: Callable[[Any], None]
    model: torch.nn.Module  # the transformer it runs, to count forward work
    timings: Optional[Dict[str, float]] = None  # direct_ner's per-stage seconds, cleared per round


@lru_cache(maxsize=None)
def load_hf(model_path: str, device: Device) -> Tuple[Any, Any]:
    """(fast tokenizer, token classifier) on the device, in eval mode; float32 weights, as
    direct_ner's (every system runs inside `device.autocast()`)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, use_fast=True)
    model = AutoModelForTokenClassification.from_pretrained(model_path)
    return tokenizer, model.to(device.target).eval()


def floor_system(model_path: str, batch_size: int, device: Device) -> System:
    """(a) Fast tokenizer + forward pass + argmax: length-sorted batches, dynamic padding,
    no alignment. Texts longer than the model are cut into non-overlapping windows."""
    tokenizer, model = load_hf(model_path, device)
    prefix, suffix = (ids.tolist() for ids in special_tokens(tokenizer))  # e.g. [CLS], [SEP]
    n_special = len(prefix) + len(suffix)
    max_content = min(tokenizer.model_max_length, model.config.max_position_embeddings) - n_special
    encode = pad_ids(tokenizer.pad_token_id or 0)

    def run(texts: List[str]) -> None:
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        windows = [prefix + ids[i : i + max_content] + suffix for ids in encoded for i in range(0, len(ids), max_content)]
        bare_forward(model, windows, batch_size, encode, device=device.target)

    return System("floor", lambda corpus: corpus.texts, run, model)


def hf_pipeline_system(model_path: str, batch_size: int, device: Device, strategy: str) -> System:
    """(c) transformers' token-classification pipeline on the texts (stride for long texts)."""
    from transformers import pipeline

    tokenizer, model = load_hf(model_path, device)
    hf = pipeline(
        "token-classification",
        model=model,
        tokenizer=tokenizer,
        aggregation_strategy=strategy,
        stride=HF_STRIDE,
        device=device.target,
    )

    def run(texts: List[str]) -> None:
        for _ in hf(texts, batch_size=batch_size):
            pass

    return System(f"hf-pipeline[{strategy}]", lambda corpus: corpus.texts, run, model)


def spacy_system(name: str, nlp: Language, model: torch.nn.Module, batch_size: int) -> System:
    """A spaCy pipeline (running the torch `model`) with nlp.pipe(batch_size=batch_size) over
    fresh Docs (built untimed); direct_ner's stage timings come along."""

    def run(docs: List[Doc]) -> None:
        for _ in nlp.pipe(docs, batch_size=batch_size):
            pass

    timings = nlp.get_pipe("direct_ner").timings if "direct_ner" in nlp.pipe_names else None
    return System(name, lambda corpus: corpus.docs(nlp.vocab), run, model, timings)


def direct_ner_system(model_path: str, batch_size: int, device: Device, matched: bool) -> System:
    """(b) direct_ner through nlp.pipe(batch_size=batch_size); `matched`: forward batches
    of exactly batch_size windows, unpacked, like the floor's."""
    matched_settings = {"forward_batch_size": batch_size, "forward_batch_tokens": MATCHED_BATCH_TOKENS, "pack_windows": False}
    nlp = direct_ner_nlp(model_path, device, matched_settings if matched else None)
    return spacy_system("direct_ner", nlp, direct_ner_model(nlp), batch_size)


def peer_system(name: str, make_peer: Callable[[str, int], Peer], model_path: str, batch_size: int) -> System:
    """A peer spaCy wrapper (peers.py) run like direct_ner."""
    return spacy_system(name, *make_peer(model_path, batch_size), batch_size)


def build_systems(args: argparse.Namespace, batch_size: int, device: Device) -> List[System]:
    """All systems for one batch size, skipping (with a note) those that cannot load."""
    builders: List[Tuple[str, Callable[[], System]]] = [
        ("floor", lambda: floor_system(args.model, batch_size if args.matched_batches else args.floor_batch_size, device)),
        ("direct_ner", lambda: direct_ner_system(args.model, batch_size, device, args.matched_batches)),
        ("hf-pipeline[first]", lambda: hf_pipeline_system(args.model, batch_size, device, "first")),
        ("hf-pipeline[simple]", lambda: hf_pipeline_system(args.model, batch_size, device, "simple")),
    ]
    if args.peers:
        builders += [(name, partial(peer_system, name, make_peer, args.model, batch_size)) for name, make_peer in PEERS.items()]
    systems = []
    for name, build in builders:
        if args.systems and name not in args.systems:
            continue
        try:
            systems.append(build())
        except ImportError as err:
            print(f"note: skipping {name}: {err}")
    return systems


# -- measuring --------------------------------------------------------------------------


@dataclass
class Round:
    seconds: float
    peak_rss: float
    timings: Dict[str, float]
    forward_calls: int
    padded_tokens: int


@dataclass
class Result:
    system: str
    n_words: int
    rounds: List[Round]

    @property
    def best(self) -> Round:
        return min(self.rounds, key=lambda r: r.seconds)

    @property
    def words_per_second(self) -> float:
        return words_per_second(self.n_words, self.best.seconds)


def time_round(system: System, corpus: Corpus, device: Device) -> Round:
    """Time one pass of the system over the whole corpus."""
    inputs = system.prepare(corpus)
    if system.timings is not None:
        system.timings.clear()
    counter = forward_counter(system.model)
    counter.reset()
    gc.collect()
    with RssPeak() as rss, device.autocast():
        start = time.perf_counter()
        system.run(inputs)
        device.sync()
        seconds = time.perf_counter() - start
    return Round(seconds, rss.peak, dict(system.timings or {}), counter.calls, counter.tokens)


def measure(systems: Sequence[System], corpus: Corpus, device: Device, repeats: int, warmup_docs: int) -> List[Result]:
    """Warm every system up, then time them in `repeats` interleaved rounds."""
    for system in systems:
        with device.autocast():
            system.run(system.prepare(corpus.head(warmup_docs)))
    device.sync()
    results = [Result(system.name, corpus.n_words, []) for system in systems]
    for k in range(repeats):
        for system, result in zip(systems, results):
            result.rounds.append(time_round(system, corpus, device))
            progress = f"[{corpus.name} round {k + 1}/{repeats}] {system.name}: {result.rounds[-1].seconds:.1f}s"
            print(progress, file=sys.stderr, flush=True)
    return results


def stream_memory(nlp: Language, corpus: Corpus, n_words: int, batch_size: int) -> Dict[str, Any]:
    """Stream n_words words of fresh Docs through nlp.pipe, keeping nothing, and sample RSS."""
    samples: List[Tuple[int, float]] = [(0, rss_mib())]
    sample_every = max(n_words // 20, 1_000)
    seen, next_sample, peak_at_checkpoint = 0, sample_every, None
    start = time.perf_counter()
    with RssPeak() as rss:
        for doc in nlp.pipe(doc_stream(corpus, nlp.vocab, n_words), batch_size=batch_size):
            seen += len(doc)
            if peak_at_checkpoint is None and seen >= STREAM_CHECKPOINT_WORDS:
                peak_at_checkpoint = rss.peak
            if seen >= next_sample:
                samples.append((seen, rss_mib()))
                next_sample += sample_every
        del doc
    seconds = time.perf_counter() - start
    return {
        "words": seen,
        "seconds": seconds,
        "peak_at_checkpoint": peak_at_checkpoint if peak_at_checkpoint is not None else rss.peak,
        "peak_end": rss.peak,
        "samples": samples,
    }


# -- precisions and one-Doc latency (--precisions, --latency) ----------------------------

LATENCY_WORDS = 25
LATENCY_CALLS = 1000
LATENCY_WARMUP = 50


def precision_systems(args: argparse.Namespace, batch_size: int, device: Device) -> List[System]:
    """direct_ner[p] for each of --precisions other than --precision, timed in the same
    interleaved rounds as direct_ner (int8's ONNX Runtime forwards are not counted)."""
    systems = []
    for precision in args.precisions:
        if precision != device.precision:
            nlp = direct_ner_nlp(args.model, Device(device.gpu_id, precision))
            systems.append(spacy_system(f"direct_ner[{precision}]", nlp, direct_ner_model(nlp), batch_size))
    return systems


def pack_width_systems(args: argparse.Namespace, batch_size: int, device: Device) -> List[System]:
    """direct_ner[pack W] for each of --pack-widths: packed rows of W sub-words instead of
    PACK_WIDTH (a constant, set for that system's runs only), in the same rounds."""
    systems = []
    for width in args.pack_widths:
        nlp = direct_ner_nlp(args.model, device)
        system = spacy_system(f"direct_ner[pack {width}]", nlp, direct_ner_model(nlp), batch_size)

        def run(docs, run_default=system.run, width=width):
            default, inference.PACK_WIDTH = inference.PACK_WIDTH, width
            try:
                run_default(docs)
            finally:
                inference.PACK_WIDTH = default

        systems.append(replace(system, run=run))
    return systems


def format_precisions(results: Sequence[Result], precision: str) -> str:
    """words/s of each direct_ner[p] as a multiple of direct_ner's (same run, same rounds)."""
    named = by_name(results)
    base = named.get("direct_ner")
    parts = [f"{name[len('direct_ner['):-1]} {ratio(r, base)}x" for name, r in named.items() if name.startswith("direct_ner[")]
    return f"direct_ner words/s relative to {precision}: " + ", ".join(parts) if base and parts else ""


def latency_text(path: Path) -> str:
    """The first sentence of the CoNLL file with LATENCY_WORDS words."""
    for gold in read_gold(path, granularity="sentence"):
        if len(gold) == LATENCY_WORDS:
            return gold.text
    raise ValueError(f"{path} has no sentence of {LATENCY_WORDS} words")


def runner_forward(nlp: Language) -> Callable[[str], Any]:
    """The floor for one text: direct_ner's own tokenizer and model (int8: its ONNX Runtime
    session), called directly through the bare forward floor (harness.bare_forward)."""
    pipe = nlp.get_pipe("direct_ner")
    runner, tokenizer = pipe.runner, pipe.hf_tokenizer

    def encode(texts: List[str]) -> Dict[str, torch.Tensor]:  # the two inputs an int8 graph takes too
        encoded = tokenizer(texts, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def run(text: str) -> Any:
        return bare_forward(runner.model, [text], 1, encode, read=lambda outputs, _: outputs.logits.cpu(), device=runner.device, autocast=runner_autocast(runner))

    return run


def latency_ms(calls: Dict[str, Callable[[], Any]], device: Device) -> Dict[str, List[float]]:
    """Per-call milliseconds of each callable: LATENCY_WARMUP calls untimed, then
    LATENCY_CALLS rounds that call each once, interleaved, so load spikes hit all alike."""
    for call in calls.values():
        for _ in range(LATENCY_WARMUP):
            call()
    times: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(LATENCY_CALLS):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            device.sync()
            times[name].append(1000 * (time.perf_counter() - start))
    return times


def first_call_ms(path: Path, text: str, eager: bool) -> Tuple[float, float, float]:
    """(spacy.load, eager model load or 0, first nlp(text)) milliseconds for a saved pipeline."""
    start = time.perf_counter()
    nlp = spacy.load(path)
    loaded = time.perf_counter()
    if eager:
        nlp.get_pipe("direct_ner").initialize()
    ready = time.perf_counter()
    nlp(text)
    return 1000 * (loaded - start), 1000 * (ready - loaded), 1000 * (time.perf_counter() - ready)


def manifest_check_text(component_dir: Path, repeats: int = 5) -> str:
    """How long spacy.load's check of the saved files against manifest.json takes (best of
    `repeats`; the files were just written, so they are in the page cache)."""
    listed = read_manifest(component_dir / MANIFEST_FILE)
    mib = sum(size for size, _ in listed.values()) / 2**20
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        verify_manifest(component_dir)
        times.append(1000 * (time.perf_counter() - start))
    return f"manifest check at load (sha256 of {len(listed)} files, {mib:.0f} MiB): {min(times):.0f} ms (best of {repeats}), worst {max(times):.0f} ms"


def format_latency(precision: str, times: Dict[str, List[float]]) -> List[str]:
    """p50 and p99 of the bare call and of nlp(text), and whether direct_ner's p50 overhead
    is within the budget of max(10%, 1 ms)."""
    (bare_name, bare), (direct_name, direct) = times.items()
    p50, p99 = (float(np.percentile(bare, q)) for q in (50, 99))
    d50, d99 = (float(np.percentile(direct, q)) for q in (50, 99))
    budget = max(0.1 * p50, 1.0)
    verdict = "within" if d50 - p50 <= budget else "OVER"
    return [
        f"{precision:<6} {bare_name:<26} p50 {p50:7.2f}  p99 {p99:7.2f}",
        f"{precision:<6} {direct_name:<26} p50 {d50:7.2f}  p99 {d99:7.2f}  overhead p50 {d50 - p50:+.2f} ms "
        f"({100 * (d50 - p50) / p50:+.1f}%), {verdict} the budget max(10%, 1 ms) = {budget:.2f} ms",
    ]


def measure_latency(args: argparse.Namespace, device: Device) -> str:
    """One-Doc latency of nlp(text) next to the bare tokenizer + forward call, per precision,
    and the first call after spacy.load, lazy and eager."""
    text = latency_text(args.conll_file)
    lines = [
        f"\n== latency: one {LATENCY_WORDS}-word sentence, {LATENCY_CALLS} interleaved calls after "
        f"{LATENCY_WARMUP} warm-up calls (ms) ==",
        f"text: {text}",
    ]
    for precision in args.precisions or [device.precision]:
        start = time.perf_counter()
        nlp = direct_ner_nlp(args.model, Device(device.gpu_id, precision))
        lines.append(f"{precision:<6} first load from the checkpoint (add_pipe + initialize): {1000 * (time.perf_counter() - start):.0f} ms")
        bare = runner_forward(nlp)
        times = latency_ms({"tokenizer + forward": lambda: bare(text), "nlp(text) with direct_ner": lambda: nlp(text)}, device)
        lines += format_latency(precision, times)
        with tempfile.TemporaryDirectory() as tmp:
            nlp.to_disk(tmp)
            saved = sorted(Path(tmp, "direct_ner", "model").glob("*.[os]*"))  # model.safetensors, int8.onnx
            lines.append(f"{precision:<6} saved: " + ", ".join(f"{p.name} {p.stat().st_size / 2**20:.0f} MiB" for p in saved))
            lines.append(f"{precision:<6} {manifest_check_text(Path(tmp, 'direct_ner'))}")
            for eager in (False, True):
                load, init, first = first_call_ms(Path(tmp), text, eager)
                how = "then .get_pipe('direct_ner').initialize()" if eager else "lazy"
                lines.append(
                    f"{precision:<6} spacy.load {load:.0f} ms, {how}{f' {init:.0f} ms' if eager else ''}, "
                    f"first nlp(text) {first:.0f} ms"
                )
    return "\n".join(lines)


# -- reporting --------------------------------------------------------------------------


def ratio(a: Optional[Result], b: Optional[Result]) -> str:
    return f"{a.words_per_second / b.words_per_second:.2f}" if a and b else "-"


def by_name(results: Sequence[Result]) -> Dict[str, Result]:
    return {r.system: r for r in results}


def format_block(results: Sequence[Result], corpus: Corpus, batch_size: int) -> str:
    """One table for one (granularity, batch size): words/s, ratios, rounds, peak RSS."""
    named = by_name(results)
    floor, direct = named.get("floor"), named.get("direct_ner")
    lines = [
        f"\n== {corpus.name} docs: {len(corpus)} docs, {corpus.n_words} words; B={batch_size} ==",
        f"{'system':<22} {'words/s':>9} {'x floor':>8} {'direct/x':>9} {'rounds (s)':>18} {'peak RSS MiB':>13}"
        f" {'forwards':>9} {'padded tok/word':>16}",
    ]
    for r in results:
        rounds = ",".join(f"{x.seconds:.2f}" for x in r.rounds)
        lines.append(
            f"{r.system:<22} {r.words_per_second:>9.0f} {ratio(r, floor):>8} {ratio(direct, r):>9} "
            f"{rounds:>18} {r.best.peak_rss:>13.0f} {r.best.forward_calls:>9} {r.best.padded_tokens / r.n_words:>16.2f}"
        )
    if direct and direct.best.timings:
        lines.append(format_breakdown(direct.best))
    return "\n".join(lines)


def format_breakdown(best: Round) -> str:
    """direct_ner's per-stage seconds (its `timings`) as shares of the timed wall clock."""
    parts = [f"{stage} {best.timings.get(stage, 0.0):.2f}s ({100 * best.timings.get(stage, 0.0) / best.seconds:.0f}%)" for stage in STAGES]
    other = best.seconds - sum(best.timings.values())
    extra = sorted(set(best.timings) - set(STAGES))
    parts += [f"{k} {best.timings[k]:.2f}s" for k in extra]
    parts.append(f"outside the component {other:.2f}s ({100 * other / best.seconds:.0f}%)")
    return "direct_ner breakdown: " + ", ".join(parts)


def format_summary(rows: Sequence[Tuple[Corpus, int, List[Result]]]) -> str:
    """words/s of floor (a), direct_ner (b), HF pipeline (c) and the ratios b/a, b/c."""
    cols = ("floor", "direct_ner", "hf-pipeline[first]", "hf-pipeline[simple]")
    lines = [
        "\n== summary (words/s; a = floor, b = direct_ner, c = transformers pipeline) ==",
        f"{'granularity':<11} {'B':>4} {'a floor':>9} {'b direct':>9} {'c first':>9} {'c simple':>9} "
        f"{'b/a':>6} {'b/c1st':>7} {'b/c_smp':>7}",
    ]
    for corpus, batch_size, results in rows:
        named = by_name(results)
        speeds = [f"{named[c].words_per_second:>9.0f}" if c in named else f"{'-':>9}" for c in cols]
        b = named.get("direct_ner")
        ratios = [ratio(b, named.get(c)) for c in cols[:1] + cols[2:]]
        lines.append(f"{corpus.name:<11} {batch_size:>4} {' '.join(speeds)} {ratios[0]:>6} {ratios[1]:>7} {ratios[2]:>7}")
    return "\n".join(lines)


def format_stream(report: Dict[str, Any], corpus: Corpus) -> str:
    growth = report["peak_end"] - report["peak_at_checkpoint"]
    flat = growth <= max(32.0, 0.05 * report["peak_at_checkpoint"])
    samples = " ".join(f"{w // 1000}k:{m:.0f}" for w, m in report["samples"])
    return (
        f"\n== memory: {report['words']} words of fresh {corpus.name} Docs streamed through direct_ner "
        f"({words_per_second(report['words'], report['seconds']):.0f} words/s) ==\n"
        f"peak RSS after {STREAM_CHECKPOINT_WORDS // 1000}k words: {report['peak_at_checkpoint']:.0f} MiB; "
        f"at the end: {report['peak_end']:.0f} MiB; growth {growth:+.0f} MiB -> {'flat' if flat else 'GROWING'}\n"
        f"RSS samples (words:MiB): {samples}"
    )


# -- CLI --------------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--batch-sizes", default="8,32,64", help="Comma-separated batch sizes B (nlp.pipe / pipeline)")
    parser.add_argument("--floor-batch-size", type=int, default=32, help="The floor's forward batch (windows)")
    parser.add_argument(
        "--matched-batches", action="store_true", help="Floor and direct_ner run forward batches of exactly B windows"
    )
    parser.add_argument("--repeats", type=int, default=2, help="Timed rounds per system (best counts)")
    parser.add_argument("--stream-words", type=int, default=0, help="Stream N words through direct_ner for memory")
    parser.add_argument("--peers", action="store_true", help="Also time spacy-huggingface-pipelines and spacy-wrap")
    parser.add_argument("--systems", default="", help="Comma-separated subset of system names to run (default: all)")
    parser.add_argument("--output", type=Path, help="JSON file for the numbers (what the tables show)")
    parser.add_argument(
        "--precisions", default="", help="Also time direct_ner[p] for these precisions (e.g. fp32,int8) in the same rounds"
    )
    parser.add_argument(
        "--pack-widths", default="", help="Also time direct_ner with packed rows of these widths (e.g. 64,128,256) in the same rounds"
    )
    parser.add_argument(
        "--latency", action="store_true", help="Only measure one-Doc latency (per --precisions) and the first call after spacy.load"
    )
    args = parser.parse_args(argv)
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.pack_widths = [int(w) for w in args.pack_widths.split(",") if w]
    args.systems = [s for s in args.systems.split(",") if s]
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    return args


def load_average() -> str:
    """The machine's load (other processes make timings noisy; best-of-rounds only partly helps)."""
    one, five, _ = os.getloadavg()
    return f"load average now: {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def batching(args: argparse.Namespace) -> str:
    if args.matched_batches:
        return "forward batches: floor and direct_ner exactly B windows, pipeline B texts"
    return (
        f"forward batches: floor {args.floor_batch_size} windows, direct_ner its defaults (nlp.pipe batch_size=B), "
        "pipeline B texts"
    )


def describe(args: argparse.Namespace, threads: int, device: Device) -> str:
    import transformers

    where = f"cuda:{device.gpu_id}" if device.gpu_id >= 0 else "cpu"
    return (
        f"device {where}, precision {device.precision}; torch {torch.__version__} with {threads} threads "
        f"(set_num_threads, all systems; {os.cpu_count()} cores); transformers {transformers.__version__}, "
        f"spacy {spacy.__version__}\n{batching(args)}; best of {args.repeats} "
        f"interleaved rounds after warm-up; Docs from gold words/spaces"
        f"{' + gold sentence starts' if args.gold_sents else ' (no sentence starts)'}; "
        f"hf pipelines: stride {HF_STRIDE}; float32 weights, every system inside torch.autocast when precision is not fp32"
    )


def result_json(result: Result) -> Dict[str, Any]:
    """One system's numbers for --output."""
    best = result.best
    return {
        "words_per_second": result.words_per_second,
        "rounds_seconds": [r.seconds for r in result.rounds],
        "peak_rss_mib": best.peak_rss,
        "forward_calls": best.forward_calls,
        "padded_tokens_per_word": best.padded_tokens / result.n_words,
        "timings": best.timings,
    }


def write_output(path: Path, setup: str, rows: Sequence[Tuple[Corpus, int, List[Result]]], stream: Optional[Dict[str, Any]]) -> None:
    """The numbers of every table as JSON."""
    runs = [
        {"granularity": corpus.name, "batch_size": batch_size, "docs": len(corpus), "words": corpus.n_words,
         "systems": {r.system: result_json(r) for r in results}}
        for corpus, batch_size, results in rows
    ]  # fmt: skip
    data = {"setup": setup, "runs": runs, "process_peak_rss_mib": max_rss_mib(), "stream": stream}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"Saved the numbers to {path}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    threads, device = setup_run(args)
    setup = describe(args, threads, device)
    print(setup, flush=True)
    print(load_average())
    if args.latency:
        print(measure_latency(args, device))
        print(load_average())
        return
    corpora = [
        Corpus(g, read_gold(args.conll_file, granularity=g, max_docs=args.max_docs), args.gold_sents)
        for g in granularities(args.granularity)
    ]
    rows = []
    for batch_size in args.batch_sizes:
        systems = build_systems(args, batch_size, device) + precision_systems(args, batch_size, device)
        systems += pack_width_systems(args, batch_size, device)
        for corpus in corpora:
            results = measure(systems, corpus, device, args.repeats, warmup_docs=max(2 * batch_size, 32))
            print(format_block(results, corpus, batch_size), flush=True)
            if args.precisions:
                print(format_precisions(results, device.precision), flush=True)
            rows.append((corpus, batch_size, results))
        del systems
        gc.collect()
    print(format_summary(rows))
    print(f"\nprocess peak RSS (ru_maxrss, all systems loaded together): {max_rss_mib():.0f} MiB")
    print(load_average())
    stream = None
    if args.stream_words:
        corpus = corpora[0]
        nlp = direct_ner_nlp(args.model, device)
        stream = stream_memory(nlp, corpus, args.stream_words, args.batch_sizes[0])
        print(format_stream(stream, corpus))
    if args.output:
        write_output(args.output, setup, rows, stream)


if __name__ == "__main__":
    main()
