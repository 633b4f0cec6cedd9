#!/usr/bin/env python
"""Ray's overhead at equal cores: plain nlp.pipe in one process against `python -m spacy_direct_use.annotate`.

The same sentences (CoNLL-2003 eng.testa + eng.testb, `--copies` times: 3 copies are 20,109
sentences, 293,391 words) go through
  - plain: spacy.load + nlp.pipe in this process, torch with `--threads` threads (timed: nlp.pipe only,
    after the weights are loaded);
  - the annotate command, once per actors x threads layout (`--layouts 1x2,2x1`): JSONL in, Parquet out,
    timed by the command itself from the first read to the last file written (actor start-up and
    weight loading included), and end to end (Python and Ray start-up included).
Plain runs first and last, so the table shows how much the machine's speed drifted during the run.

  python scripts/ray_benchmark.py --pipeline PIPELINE_DIR --conll-dir ../shared/data/conll2003 [--copies 3]
      [--layouts 1x2,2x1] [--threads 2] [--batch-size 1024] [--work-dir DIR]

Assemble the pipeline first, e.g.
  python -m spacy assemble configs/direct_ner.cfg /tmp/pipe --components.direct_ner.model ../shared/models/minilm-conll03
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

import spacy
import torch

from harness import gold_texts, words_per_second
from spacy_direct_use.ner import DirectNER

SUMMARY = re.compile(r"([\d,]+) rows, ([\d,]+) entities, ([\d,]+) words in [\d.]+ s: ([\d,]+) words/s")


def sentences(conll_dir: Path, copies: int) -> List[str]:
    texts = [text for name in ("eng.testa", "eng.testb") for text in gold_texts(conll_dir / name)]
    return texts * copies


def plain(pipeline: Path, texts: List[str], threads: int) -> Tuple[float, int]:
    """Seconds of nlp.pipe over the texts (weights loaded beforehand) and entities found."""
    torch.set_num_threads(threads)
    nlp = spacy.load(pipeline)
    for _, component in nlp.pipeline:
        if isinstance(component, DirectNER):
            component.initialize()
    clock = time.perf_counter()
    entities = sum(len(doc.ents) for doc in nlp.pipe(texts))
    return time.perf_counter() - clock, entities


def command(pipeline: Path, corpus: Path, output: Path, actors: int, threads: int, batch_size: int) -> Tuple[int, int, float]:
    """Entities, the command's own words/s, and seconds end to end."""
    argv = [sys.executable, "-m", "spacy_direct_use.annotate", str(corpus), str(output), "--pipeline", str(pipeline),
            "--actors", str(actors), "--threads-per-actor", str(threads), "--batch-size", str(batch_size), "--overwrite"]
    clock = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - clock
    found = SUMMARY.search(run.stdout)
    if run.returncode or not found:
        sys.exit(f"{' '.join(argv)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    print(f"  {found.group(0)}", flush=True)
    return int(found.group(2).replace(",", "")), int(found.group(4).replace(",", "")), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", type=Path, required=True)
    parser.add_argument("--conll-dir", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--layouts", default="1x2,2x1", help="actors x threads per actor, comma-separated")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the plain run")
    parser.add_argument("--batch-size", type=int, default=1024, help="the command's rows per batch")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ray_benchmark_"))
    texts = sentences(args.conll_dir, args.copies)
    words = sum(len(text.split()) for text in texts)
    corpus = work / "sentences.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in enumerate(texts)))
    print(f"{len(texts):,} sentences, {words:,} words; torch {torch.__version__}", flush=True)

    rows = []  # (system, cores, words/s, end-to-end words/s or None, entities)
    seconds, entities = plain(args.pipeline, texts, args.threads)
    rows.append((f"nlp.pipe, 1 process x {args.threads} threads (first)", args.threads, words_per_second(words, seconds), None, entities))
    print(f"  plain: {words_per_second(words, seconds):,.0f} words/s", flush=True)
    for layout in args.layouts.split(","):
        actors, threads = (int(n) for n in layout.split("x"))
        found, speed, wall = command(args.pipeline, corpus, work / f"out_{layout}", actors, threads, args.batch_size)
        rows.append((f"annotate, {actors} actor(s) x {threads} thread(s)", actors * threads, speed, words_per_second(words, wall), found))
    seconds, entities = plain(args.pipeline, texts, args.threads)
    rows.append((f"nlp.pipe, 1 process x {args.threads} threads (last)", args.threads, words_per_second(words, seconds), None, entities))

    reference = (rows[0][2] + rows[-1][2]) / 2
    print(f"\nwords/s ({len(texts):,} sentences, {words:,} words; overhead against the mean of the two plain runs)\n")
    print("| system | cores | words/s | end to end | overhead | entities |")
    print("| --- | --- | --- | --- | --- | --- |")
    for system, cores, speed, end_to_end, found in rows:
        overhead = f"{1 - speed / reference:+.1%}" if system.startswith("annotate") else ""
        wall = f"{end_to_end:,.0f}" if end_to_end else ""
        print(f"| {system} | {cores} | {speed:,.0f} | {wall} | {overhead} | {found:,} |")


if __name__ == "__main__":
    main()
