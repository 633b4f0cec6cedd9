#!/usr/bin/env python
"""Entity P/R/F1 of the peer spaCy wrappers (spacy-huggingface-pipelines' hf_token_pipe,
spacy-wrap) and of direct_ner on a CoNLL-2003 file, from gold words and spaces.

Run it where the peers are installed (they are kept out of the project's venv):

  python scripts/peers.py --model PATH --conll-file eng.testb \
      [--granularity sentence|article|both] [--batch-size 32] [--gpu-id -1] \
      [--max-docs N] [--systems direct_ner,spacy-wrap[first]] [--gold-sents] \
      [--direct-ner-settings '{"window_overlap": 64}' ...]

Each --direct-ner-settings JSON adds a direct_ner row with those config values
(how direct_ner's defaults were chosen). Every row also reports the padded
sub-words per word its forward passes read.

Scores come from spaCy's NER scorer (`spacy.scorer.get_ner_prf`, what
`nlp.evaluate` uses for doc.ents), so every system is scored the same way.
"""
import argparse
import json
import time
import warnings
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from benchmark import (
    PEERS,
    Device,
    add_common_args,
    corpus_of,
    direct_ner_nlp,
    forward_counter,
    granularities,
    pipeline_model,
    quiet,
    read_gold,
    setup_device,
    setup_threads,
)

SKIP_WARNING = "Skipping annotation"  # hf_token_pipe drops entities it cannot align to tokens

SYSTEMS: Dict[str, Callable[[str, int, Device], Language]] = {
    "direct_ner": lambda path, b, device: direct_ner_nlp(path, device),  # default settings
    **{name: (lambda path, b, device, make=make: make(path, b)) for name, make in PEERS.items()},
}


def evaluate(nlp: Language, golds: Sequence[Doc], pipe_batch_size: int, gold_sents: bool) -> Dict[str, Any]:
    """NER scores of nlp on fresh Docs with the gold words, plus words/s and skipped annotations."""
    docs = corpus_of("eval", golds, gold_sents).docs(nlp.vocab)
    counter = forward_counter(pipeline_model(nlp))
    counter.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        predicted = list(nlp.pipe(docs, batch_size=pipe_batch_size))
        seconds = time.perf_counter() - start
    scores = get_ner_prf([Example(pred, gold) for pred, gold in zip(predicted, golds)])
    scores["words_per_second"] = sum(len(doc) for doc in golds) / seconds
    scores["subwords_per_word"] = counter.tokens / sum(len(doc) for doc in golds)
    scores["skipped"] = sum(str(w.message).startswith(SKIP_WARNING) for w in caught)
    return scores


def format_row(system: str, granularity: str, scores: Dict[str, Any]) -> str:
    per_type = " ".join(f"{label}:{100 * s['f']:.1f}" for label, s in sorted(scores["ents_per_type"].items()))
    prf = " ".join(f"{100 * scores[f'ents_{k}']:>6.2f}" for k in "prf")
    return (
        f"{system:<22} {granularity:<9} {prf} {scores['words_per_second']:>8.0f} {scores['subwords_per_word']:>8.3f} "
        f"{scores['skipped']:>8}  {per_type}"
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--batch-size", type=int, default=32, help="The peers' forward batch size (texts or windows)")
    parser.add_argument("--pipe-batch-size", type=int, default=1000, help="Docs per nlp.pipe batch")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="Comma-separated systems to score")
    parser.add_argument(
        "--direct-ner-settings", nargs="*", type=json.loads, default=[], help="JSON objects of direct_ner config values"
    )
    return parser.parse_args(argv)


def pipelines(args: argparse.Namespace, device: Device) -> Iterator[Tuple[str, Callable[[], Language]]]:
    """(row name, pipeline builder) for each system and each direct_ner settings variant."""
    for name in args.systems.split(","):
        yield name, lambda name=name: SYSTEMS[name](args.model, args.batch_size, device)
    for settings in args.direct_ner_settings:
        yield f"direct_ner{json.dumps(settings)}", lambda settings=settings: direct_ner_nlp(args.model, device, settings)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    quiet()
    threads = setup_threads(args.threads)
    device = setup_device(args.gpu_id, args.precision)
    print(f"{threads} torch threads; Docs from gold words/spaces{' + gold sentence starts' if args.gold_sents else ''}")
    print(f"{'system':<22} {'docs':<9} {'P':>6} {'R':>6} {'F':>6} {'words/s':>8} {'sub/word':>8} {'skipped':>8}  per-type F")
    for granularity in granularities(args.granularity):
        golds = read_gold(args.conll_file, granularity, args.max_docs)
        for name, make_nlp in pipelines(args, device):
            try:
                nlp = make_nlp()
            except ImportError as err:
                print(f"note: skipping {name}: {err}")
                continue
            scores = evaluate(nlp, golds, args.pipe_batch_size, args.gold_sents)
            print(format_row(name, granularity, scores), flush=True)


if __name__ == "__main__":
    main()
