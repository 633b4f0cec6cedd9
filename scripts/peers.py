#!/usr/bin/env python
"""Entity P/R/F1 of the peer spaCy wrappers (spacy-huggingface-pipelines' hf_token_pipe,
spacy-wrap) and of direct_ner on a CoNLL-2003 file, from gold words and spaces; the
peers' pipelines (also timed by benchmark.py --peers) are built here, and only here.

Run it where the peers are installed (they are kept out of the project's venv):

  python scripts/peers.py --model PATH --conll-file eng.testb \
      [--granularity sentence|article|both] [--batch-size 32] [--gpu-id -1] \
      [--max-docs N] [--systems direct_ner,spacy-wrap[first]] [--gold-sents] \
      [--direct-ner-settings '{"window_overlap": 64}' ...]

Each --direct-ner-settings JSON adds a direct_ner row with those config values
(how direct_ner's defaults were chosen). Every row also reports the padded
sub-words per word its forward passes read. Speed: benchmark.py --peers.

Scores come from spaCy's NER scorer (`spacy.scorer.get_ner_prf`, what
`nlp.evaluate` uses for doc.ents), so every system is scored the same way.
"""
import argparse
import json
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import spacy
import torch
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from harness import Device, add_common_args, direct_ner_model, direct_ner_nlp, forward_counter, granularities, read_gold, setup_run, words_doc

SKIP_WARNING = "Skipping annotation"  # hf_token_pipe drops entities it cannot align to tokens
Peer = Tuple[Language, torch.nn.Module]  # a pipeline and the torch model it runs


def hf_token_pipe(model_path: str, batch_size: int, strategy: str, annotate: str = "ents") -> Peer:
    """spacy-huggingface-pipelines' hf_token_pipe; its HF pipeline batches batch_size texts.
    annotate: what it writes ("ents", or "pos" / "tag" for a tagger)."""
    import spacy_huggingface_pipelines  # noqa: F401

    nlp = spacy.blank("en")
    config = {"model": model_path, "aggregation_strategy": strategy, "annotate": annotate, "kwargs": {"batch_size": batch_size}}
    pipe = nlp.add_pipe("hf_token_pipe", config=config)
    return nlp, pipe.hf_pipeline.model


def spacy_wrap(model_path: str, batch_size: int, predictions_to: Optional[List[str]] = None) -> Peer:
    """spacy-wrap's token_classification_transformer: 128-wordpiece windows, batches of
    at most batch_size * 128 padded wordpieces, "first" aggregation; predictions_to:
    what it writes (None: it decides, entities for BIO labels; ["pos"] for a tagger)."""
    import spacy_wrap  # noqa: F401

    nlp = spacy.blank("en")
    config = {"model": {"name": model_path}, "aggregation_strategy": "first", "max_batch_items": 128 * batch_size}
    if predictions_to:
        config["predictions_to"] = predictions_to
    pipe = nlp.add_pipe("token_classification_transformer", config=config)
    return nlp, pipe.model.layers[0].shims[0]._model  # thinc's PyTorchShim has no public accessor for its torch model


PEERS: Dict[str, Callable[[str, int], Peer]] = {
    "hf_token_pipe[simple]": lambda path, b: hf_token_pipe(path, b, "simple"),
    "hf_token_pipe[first]": lambda path, b: hf_token_pipe(path, b, "first"),
    "spacy-wrap[first]": spacy_wrap,
}


def direct_ner(model_path: str, device: Device, settings: Optional[Dict[str, Any]] = None) -> Peer:
    nlp = direct_ner_nlp(model_path, device, settings)
    return nlp, direct_ner_model(nlp)


SYSTEMS: Dict[str, Callable[[str, int, Device], Peer]] = {
    "direct_ner": lambda path, b, device: direct_ner(path, device),  # default settings
    **{name: (lambda path, b, device, make=make: make(path, b)) for name, make in PEERS.items()},
}


def evaluate(peer: Peer, golds: Sequence[Doc], pipe_batch_size: int, gold_sents: bool) -> Dict[str, Any]:
    """NER scores of the pipeline on fresh Docs with the gold words, plus padded sub-words
    per word and skipped annotations."""
    nlp, model = peer
    docs = [words_doc(nlp.vocab, gold, gold_sents) for gold in golds]
    counter = forward_counter(model)
    counter.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predicted = list(nlp.pipe(docs, batch_size=pipe_batch_size))
    scores = get_ner_prf([Example(pred, gold) for pred, gold in zip(predicted, golds)])
    scores["subwords_per_word"] = counter.tokens / sum(len(doc) for doc in golds)
    scores["skipped"] = sum(str(w.message).startswith(SKIP_WARNING) for w in caught)
    return scores


def format_row(system: str, granularity: str, scores: Dict[str, Any]) -> str:
    per_type = " ".join(f"{label}:{100 * s['f']:.1f}" for label, s in sorted(scores["ents_per_type"].items()))
    prf = " ".join(f"{100 * scores[f'ents_{k}']:>6.2f}" for k in "prf")
    return (
        f"{system:<22} {granularity:<9} {prf} {scores['subwords_per_word']:>8.3f} "
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


def pipelines(args: argparse.Namespace, device: Device) -> Iterator[Tuple[str, Callable[[], Peer]]]:
    """(row name, pipeline builder) for each system and each direct_ner settings variant."""
    for name in args.systems.split(","):
        yield name, lambda name=name: SYSTEMS[name](args.model, args.batch_size, device)
    for settings in args.direct_ner_settings:
        yield f"direct_ner{json.dumps(settings)}", lambda settings=settings: direct_ner(args.model, device, settings)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    threads, device = setup_run(args)
    print(f"{threads} torch threads; Docs from gold words/spaces{' + gold sentence starts' if args.gold_sents else ''}")
    print(f"{'system':<22} {'docs':<9} {'P':>6} {'R':>6} {'F':>6} {'sub/word':>8} {'skipped':>8}  per-type F")
    for granularity in granularities(args.granularity):
        golds = read_gold(args.conll_file, granularity=granularity, max_docs=args.max_docs)
        for name, make in pipelines(args, device):
            try:
                peer = make()
            except ImportError as err:
                print(f"note: skipping {name}: {err}")
                continue
            with device.autocast():
                scores = evaluate(peer, golds, args.pipe_batch_size, args.gold_sents)
            print(format_row(name, granularity, scores), flush=True)


if __name__ == "__main__":
    main()
