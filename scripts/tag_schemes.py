#!/usr/bin/env python
"""What tag_scheme "auto" decides for each model, and why (the counts it read).

  python scripts/tag_schemes.py ../shared/models/minilm-conll03 ../shared/models/minilm-conll03-iob1
"""
import argparse
import time

import numpy as np
import spacy

from spacy_direct_use.inference import encode_batch
from spacy_direct_use.labels import PROBE_SENTENCES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="hub names or local checkpoint directories")
    args = parser.parse_args()
    for model in args.models:
        nlp = spacy.blank("en")
        pipe = nlp.add_pipe("direct_ner", config={"model": model})
        runner = pipe.runner  # loads the model; "auto" decides there
        start = time.perf_counter()  # the probe's forward pass again: what "auto" adds to a first load (a saved pipeline skips it)
        runner.predict([np.asarray(e.ids, dtype=np.int64) for e in encode_batch(runner.encoder, PROBE_SENTENCES)])
        probe_ms = (time.perf_counter() - start) * 1000
        print(f"{model}: {pipe.tag_scheme} ({pipe.tag_scheme_reason}; the probe's forward pass: {probe_ms:.0f} ms)")


if __name__ == "__main__":
    main()
