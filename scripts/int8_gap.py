"""Where `precision: "int8"` spends its time, and what another int8 engine gives, on this CPU:
(1) ONNX Runtime's per-operator profile of direct_ner's int8 graph on windows of 32 sub-words,
48 per pass; (2) direct_ner's words/s on CoNLL-2003 sentences in fp32, in int8 (ONNX Runtime, what
`precision: "int8"` runs) and with torch's dynamic int8 quantization of the same model on
each of torch's quantized engines (packing kept), side by side (interleaved rounds, best).

  python scripts/int8_gap.py --model ../shared/models/minilm-conll03 --conll-file ../shared/data/conll2003/eng.testb --max-docs 1500
"""
import argparse
import collections
import copy
import json
import tempfile
import warnings

import numpy as np
import onnxruntime
import spacy
import torch

from harness import gold_texts, timed_rounds, words_per_second


def nlp_for(model: str, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("direct_ner", config={"model": model, **config})
    nlp.initialize()
    return nlp


def operator_profile(graph: bytes, passes: int = 40) -> collections.Counter:
    """Microseconds per operator type over `passes` runs of 48 random windows of 32 sub-words."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.enable_profiling = True
    options.profile_file_prefix = tempfile.mkdtemp() + "/int8"
    session = onnxruntime.InferenceSession(graph, options)
    rng = np.random.default_rng(0)
    for _ in range(passes):
        ids = rng.integers(1000, 20000, size=(48, 32))
        session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    with open(session.end_profiling()) as f:
        events = json.load(f)
    times = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[event["args"]["op_name"]] += event["dur"]
    return times


def torch_int8(model: str, engine: str) -> spacy.Language:
    """direct_ner whose torch model's Linear layers are dynamically quantized on `engine` (head kept fp32)."""
    nlp = nlp_for(model)
    runner = nlp.get_pipe("direct_ner").runner
    torch.backends.quantized.engine = engine
    quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(runner.model), {torch.nn.Linear}, dtype=torch.qint8)
    quantized.classifier = runner.model.classifier
    mask_kind = runner.mask_kind
    runner.use_model(quantized)
    runner.mask_kind = mask_kind  # packing kept: the quantized copy takes the same masks
    return nlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--conll-file", required=True)
    parser.add_argument("--max-docs", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    texts = gold_texts(args.conll_file, max_docs=args.max_docs)
    n_words = sum(len(text.split()) for text in texts)

    int8 = nlp_for(args.model, precision="int8")
    times = operator_profile(int8.get_pipe("direct_ner").runner.model.onnx_model)
    total = sum(times.values())
    print("ONNX Runtime int8 graph, share of operator time:")
    for op, micros in times.most_common(10):
        print(f"  {op:28s} {100 * micros / total:5.1f}%")

    systems = {"fp32": nlp_for(args.model), "int8 (ONNX Runtime)": int8}
    engines = [e for e in ("onednn", "x86", "fbgemm") if e in torch.backends.quantized.supported_engines]
    systems.update({f"int8 (torch {engine})": torch_int8(args.model, engine) for engine in engines})

    def warm_up(name: str) -> None:  # untimed, before each timed call: the system's engine, a short warm-up
        if name.startswith("int8 (torch"):
            torch.backends.quantized.engine = name.split()[-1].rstrip(")")
        list(systems[name].pipe(texts[:64]))

    runs = {name: lambda _, nlp=nlp: list(nlp.pipe(texts, batch_size=64)) for name, nlp in systems.items()}
    best = timed_rounds(runs, args.rounds, prepare=warm_up)
    print(f"{len(texts)} sentences, {n_words} words, torch threads {torch.get_num_threads()}:")
    for name, seconds in best.items():
        print(f"  {name:24s} {words_per_second(n_words, seconds):8,.0f} words/s  {best['fp32'] / seconds:.2f} × fp32")


if __name__ == "__main__":
    main()
