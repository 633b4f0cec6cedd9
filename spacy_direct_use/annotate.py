"""Annotate a JSONL or Parquet corpus with a saved spaCy pipeline on Ray, into Parquet.

    python -m spacy_direct_use.annotate INPUT OUTPUT --pipeline DIR [--text-key text] [--actors N]
        [--gpus-per-actor G] [--threads-per-actor T] [--batch-size B] [--on-bad-text raise|empty]

INPUT is a file or a directory of *.jsonl / *.parquet files (or any path Ray Data reads, with
--input-format); OUTPUT a directory of Parquet files: every input column plus `entities`.
With RAY_ADDRESS set it runs on that cluster; otherwise it starts Ray on this machine.
Needs the `ray` extra: pip install "spacy-direct-use[ray]".
"""
import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

from .errors import DirectUseError, Errors

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import ray
    from ray.data import ActorPoolStrategy, Dataset, SaveMode
except ImportError as err:  # the `ray` extra is not installed: say which, not a traceback from the command line
    _missing = (err.name or "ray").split(".")[0]
    _message = Errors.E046.format(what="python -m spacy_direct_use.annotate", missing=_missing)
    raise (SystemExit(_message) if __name__ == "__main__" else ModuleNotFoundError(_message, name=_missing)) from None

from .ray import ENTITIES_COLUMN, ON_BAD_TEXT, DirectPredictor  # noqa: E402

INPUT_FORMATS = ("auto", "jsonl", "parquet")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


@dataclass
class Summary:
    rows: int
    words: int  # whitespace-separated, as a corpus counts them
    entities: int
    rows_without_text: int
    seconds: float  # reading, annotating and writing: from the first read to the last file written

    def __str__(self) -> str:
        line = (
            f"{self.rows:,} rows, {self.entities:,} entities, {self.words:,} words in {self.seconds:.1f} s: "
            f"{self.words / self.seconds:,.0f} words/s"
        )
        if self.rows_without_text:
            line += f"\n{self.rows_without_text:,} rows had no text (missing or not a string) and got no entities"
        return line


def annotate(
    input_path: str,
    output_path: str,
    pipeline: str,
    *,
    text_key: str = "text",
    actors: int = 1,
    gpus_per_actor: float = 0,
    threads_per_actor: int = 1,
    batch_size: int = 1024,
    on_bad_text: str = "raise",
    input_format: str = "auto",
    overwrite: bool = False,
) -> Summary:
    """Annotate `input_path` into Parquet files under `output_path` on the connected Ray cluster."""
    if not overwrite and Path(output_path).is_dir() and any(Path(output_path).iterdir()):
        raise DirectUseError(Errors.E045.format(path=output_path))  # Ray's own message suggests mode='ignore'
    annotated = read_corpus(input_path, input_format).map_batches(
        DirectPredictor,
        fn_constructor_kwargs={
            "pipeline": str(pipeline),
            "text_key": text_key,
            "torch_threads": threads_per_actor,
            "on_bad_text": on_bad_text,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=actors),
        num_cpus=threads_per_actor,
        num_gpus=gpus_per_actor or None,
        udf_modifying_row_count=False,
    )
    clock = time.perf_counter()
    annotated.write_parquet(str(output_path), mode=SaveMode.OVERWRITE if overwrite else SaveMode.ERROR)
    seconds = time.perf_counter() - clock
    counts = count_output(output_path, text_key)
    return Summary(seconds=seconds, **counts)


def read_corpus(path: str, input_format: str = "auto") -> Dataset:
    """A Ray Dataset over a JSONL or Parquet file or directory."""
    if input_format == "auto":
        input_format = _guess_format(path)
    if input_format == "parquet":
        return ray.data.read_parquet(str(path))
    return ray.data.read_json(str(path), lines=True)


def _guess_format(path: str) -> str:
    local = Path(path)
    files = [p for p in local.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))] if local.is_dir() else [local]
    formats = {SUFFIX_FORMATS.get(_suffix(p)) for p in files}
    if len(formats) == 1 and None not in formats:
        return formats.pop()
    reason = "(no files in it)" if not files else f"(file endings: {sorted({_suffix(p) or '(none)' for p in files})})"
    raise DirectUseError(Errors.E043.format(path=path, reason=reason))


def _suffix(path: Path) -> str:
    """The format suffix, past a compression suffix ('x.jsonl.gz' -> '.jsonl')."""
    suffixes = [s for s in path.suffixes if s not in (".gz", ".br", ".zst", ".lz4")]
    return suffixes[-1].lower() if suffixes else ""


def count_output(output_path: str, text_key: str) -> Dict[str, int]:
    """Rows, words, entities and rows without text, read back from the written Parquet files."""
    counted = ray.data.read_parquet(str(output_path)).select_columns([text_key, ENTITIES_COLUMN]).map_batches(
        _batch_counts, fn_kwargs={"text_key": text_key}, batch_format="pyarrow"
    )
    per_batch = counted.take_all()  # one small row per batch: summed here, no shuffle needed
    return {name: sum(row[name] for row in per_batch) for name in ("rows", "words", "entities", "rows_without_text")}


def _batch_counts(table: pa.Table, text_key: str) -> Dict[str, list]:
    texts = table.column(text_key)
    if pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type):
        words = pc.sum(pc.count_substring_regex(texts, r"\S+")).as_py() or 0
        without_text = texts.null_count
    else:  # an Arrow column holds one type: no row of it was text
        words, without_text = 0, table.num_rows
    entities = pc.sum(pc.list_value_length(table.column(ENTITIES_COLUMN))).as_py() or 0
    return {"rows": [table.num_rows], "words": [words], "entities": [entities], "rows_without_text": [without_text]}


def connect(actors: int, threads_per_actor: int, gpus_per_actor: float) -> bool:
    """Connect to RAY_ADDRESS's cluster, or start Ray on this machine; True when started here.

    Ray counts logical CPUs: a local start gets one more than the actors take, so the read
    and write tasks (mostly waiting on files) can run next to them.
    """
    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
        return False
    ray.init(num_cpus=max(os.cpu_count() or 1, actors * threads_per_actor + 1), include_dashboard=False)
    available_gpus = ray.cluster_resources().get("GPU", 0)
    if actors * gpus_per_actor > available_gpus:
        ray.shutdown()
        raise DirectUseError(
            Errors.E044.format(what=f"{actors} actor(s) x {gpus_per_actor:g} GPU", needed=actors * gpus_per_actor,
                               resource="GPU(s)", available=available_gpus)
        )
    return True


def main(argv: Optional[Sequence[str]] = None) -> Summary:
    """Annotate a JSONL or Parquet corpus with a saved spaCy pipeline on Ray, into Parquet."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("input", help="JSONL or Parquet file, or a directory of them")
    parser.add_argument("output", help="directory for the Parquet files (must not exist, unless --overwrite)")
    parser.add_argument("--pipeline", required=True, help="saved spaCy pipeline directory or installed package")
    parser.add_argument("--text-key", default="text", help="column that holds the text (default: text)")
    parser.add_argument("--actors", type=_positive_int, default=1, help="Ray actors, each with its own copy of the pipeline")
    parser.add_argument("--gpus-per-actor", type=float, default=0, help="GPUs per actor (e.g. 1, or 0.5 to share one)")
    parser.add_argument("--threads-per-actor", type=_positive_int, default=1, help="torch threads (and Ray CPUs) per actor")
    parser.add_argument("--batch-size", type=_positive_int, default=1024, help="rows per batch handed to an actor")
    parser.add_argument("--on-bad-text", choices=ON_BAD_TEXT, default="raise",
                        help="a row whose text is missing or not a string: stop with an error naming it (raise), "
                             "or give it no entities and count it (empty)")
    parser.add_argument("--input-format", choices=INPUT_FORMATS, default="auto")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT's contents")
    args = parser.parse_args(argv)
    started_here = connect(args.actors, args.threads_per_actor, args.gpus_per_actor)
    try:
        summary = annotate(
            args.input, args.output, args.pipeline, text_key=args.text_key, actors=args.actors,
            gpus_per_actor=args.gpus_per_actor, threads_per_actor=args.threads_per_actor,
            batch_size=args.batch_size, on_bad_text=args.on_bad_text, input_format=args.input_format,
            overwrite=args.overwrite,
        )
    finally:
        if started_here:
            ray.shutdown()
    print(f"{summary}\nwrote {args.output}")
    return summary


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


if __name__ == "__main__":
    main()
