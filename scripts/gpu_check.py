"""The prepared check for a GPU machine (a few minutes): for direct_ner (CoNLL-2003 test),
direct_textcat (SST-2) and direct_tagger (UD EWT), words/s in fp32, fp16 and bf16 against the
bare forward floor (the checkpoint's tokenizer and forward pass on the same texts, in
length-sorted batches of 64, under the same autocast), and how far each output on the device
agrees with the component's fp32 output on the CPU (entities, top category, tags).

  python scripts/gpu_check.py --device cuda --ner-model ../shared/models/minilm-conll03 \\
      --conll-file ../shared/data/conll2003/eng.testb --textcat-model ../shared/models/minilm-sst2 \\
      --sst2 ../shared/data/sst2/test.tsv --tagger-model ../shared/models/minilm-ud-upos \\
      --ewt ../shared/data/ud-english-ewt/en_ewt-ud-test.conllu --max-docs 2000 --output metrics/gpu_check.json

`--device cpu` runs the same check on the CPU (to try the script itself; bf16/fp16 there
are the CPU's).
"""
import argparse
from pathlib import Path
from typing import Callable, Dict, List

import spacy
import torch
from spacy.tokens import Doc
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from harness import bare_forward, best_of, hf_encode, read_gold, timed_rounds, words_doc, words_per_second, write_report

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
Output = Callable[[Doc], object]
OUTPUTS: Dict[str, Output] = {
    "direct_ner": lambda doc: [(e.start, e.end, e.label_) for e in doc.ents],
    "direct_textcat": lambda doc: max(doc.cats, key=doc.cats.get),
    "direct_tagger": lambda doc: [t.pos_ for t in doc],
}


def task_docs(args: argparse.Namespace) -> Dict[str, List[Doc]]:
    """Fresh Docs (words and spaces only) per component."""
    vocab = spacy.blank("en").vocab
    rows = [line.rsplit("\t", 1)[0] for line in args.sst2.read_text(encoding="utf8").splitlines()[1:] if line.strip()]
    ewt = read_gold(args.ewt)
    return {
        "direct_ner": [words_doc(vocab, gold) for gold in read_gold(args.conll_file, vocab, max_docs=args.max_docs)],
        "direct_textcat": [spacy.blank("en").make_doc(text) for text in rows[: args.max_docs]],
        "direct_tagger": [words_doc(vocab, gold) for gold in ewt[: args.max_docs]],
    }


def floor(model_dir: str, docs: List[Doc], per_token: bool, device: str, dtype) -> float:
    """Seconds for the bare tokenizer + forward passes (length-sorted batches of 64)."""
    head = AutoModelForTokenClassification if per_token else AutoModelForSequenceClassification
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = head.from_pretrained(model_dir).float().to(device).eval()  # fp16-stored weights run in fp32, as in the component
    inputs = [[t.text for t in doc if not t.is_space] for doc in docs] if per_token else [doc.text for doc in docs]
    autocast = torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None)
    encode = hf_encode(tokenizer, split_words=per_token)
    return best_of(lambda: bare_forward(model, inputs, 64, encode, read=lambda out, _: out.logits.float().cpu(), device=device, autocast=autocast), 1)


def run_component(name: str, model_dir: str, docs: List[Doc], device: str, precision: str) -> tuple:
    """(seconds, outputs) of the component on `docs`, warmed up."""
    nlp = spacy.blank("en")
    nlp.add_pipe(name, config={"model": model_dir, "device": device, "precision": precision})
    nlp.initialize()
    list(nlp.pipe([words_doc(nlp.vocab, d) for d in docs[:64]]))
    fresh = [words_doc(nlp.vocab, d) for d in docs]

    def annotate() -> List[Doc]:
        annotated = list(nlp.pipe(fresh, batch_size=64))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return annotated

    outputs: Dict[str, List[Doc]] = {}
    seconds = timed_rounds({name: annotate}, 1, outputs=outputs)[name]
    return seconds, [OUTPUTS[name](doc) for doc in outputs[name]]


def agreement(found: list, expected: list) -> float:
    """% of Docs whose output equals the CPU fp32 output."""
    return 100.0 * sum(a == b for a, b in zip(found, expected)) / max(len(expected), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    for flag in ("--ner-model", "--textcat-model", "--tagger-model"):
        parser.add_argument(flag, required=True)
    for flag in ("--conll-file", "--sst2", "--ewt"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--max-docs", type=int, default=2000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    models = {"direct_ner": args.ner_model, "direct_textcat": args.textcat_model, "direct_tagger": args.tagger_model}
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"device {args.device} ({device_name}), torch {torch.__version__}")
    print("| component | precision | words/s | floor words/s | × floor | agrees with CPU fp32 (% of Docs) |")
    print("| --- | --- | --- | --- | --- | --- |")
    report = {"device": device_name, "rows": []}
    for name, docs in task_docs(args).items():
        n_words = sum(1 for doc in docs for t in doc if not t.is_space)
        _, expected = run_component(name, models[name], docs, "cpu", "fp32")
        for precision, dtype in PRECISIONS.items():
            seconds, found = run_component(name, models[name], docs, args.device, precision)
            floor_seconds = floor(models[name], docs, name != "direct_textcat", args.device, dtype)
            row = {
                "component": name, "precision": precision, "words_per_s": words_per_second(n_words, seconds),
                "floor_words_per_s": words_per_second(n_words, floor_seconds), "agreement": agreement(found, expected),
            }  # fmt: skip
            report["rows"].append(row)
            print(f"| {name} | {precision} | {row['words_per_s']:,.0f} | {row['floor_words_per_s']:,.0f} | "
                  f"{floor_seconds / seconds:.2f} | {row['agreement']:.2f} |", flush=True)  # fmt: skip
    write_report(args.output, report)


if __name__ == "__main__":
    main()
