"""direct_vectors on STS-B: Spearman of doc.similarity against gold, beside sentence-transformers'
own encode (the reference implementation) on the same checkpoint, and the cosine of every
sentence's doc.vector to sentence-transformers' embedding.

--long K: also pairs made long (Doc A = the first sentences of K consecutive pairs, Doc B
= their second sentences, gold = the mean of their gold scores; one long pair per
starting pair, cyclic), read by direct_vectors' windows and by the rules it could have
used, beside sentence-transformers (which cuts each text at max_seq_length):
  core-weighted mean of the normalized window vectors, normalized (direct_vectors'
  rule, EmbeddingRunner.combine); the same mean of the pooled vectors, then
  normalized; the plain mean of normalized windows; the first window only.

  python scripts/vectors_eval.py --model MODEL --stsb ../shared/data/stsb/sts-dev.csv --long 30 --output metrics/vectors.json
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import spacy
from scipy.stats import spearmanr

from harness import write_report
from spacy_direct_use.alignment import text_pieces
from spacy_direct_use.vectors import DirectVectors
from spacy_direct_use.windows import weighted_mean


def read_stsb(path: Path) -> Tuple[List[str], List[str], np.ndarray]:
    """STS-B as its csv: gold 0-5 in column 5, the sentences in 6 and 7 (tab-separated)."""
    rows = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    return [r[5] for r in rows], [r[6] for r in rows], np.array([float(r[4]) for r in rows])


def long_pairs(first: List[str], second: List[str], gold: np.ndarray, k: int) -> Tuple[List[str], List[str], np.ndarray]:
    n = len(gold)
    picks = [[(i + j) % n for j in range(k)] for i in range(n)]
    return [" ".join(first[j] for j in p) for p in picks], [" ".join(second[j] for j in p) for p in picks], np.array([gold[p].mean() for p in picks])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def spearman(a: np.ndarray, b: np.ndarray, gold: np.ndarray) -> float:
    return round(100 * float(spearmanr(cosines(a, b), gold).correlation), 2)


def window_rules(pipe: DirectVectors, texts: Sequence[str], nlp) -> Tuple[Dict[str, np.ndarray], float]:
    """Each text's vector under each combination rule, from the same windows; the mean
    number of windows per text."""
    runner = pipe.runner
    docs = [nlp.make_doc(t) for t in texts]
    ids, alignments = text_pieces(docs, runner.text_encoder)
    doc_windows = [pipe.windows(d, a, runner.content_length) for d, a in zip(docs, alignments)]
    flat = [(i, w) for i, ws in enumerate(doc_windows) for w in ws]
    outputs = iter(runner.predict([ids[i][start:end] for i, (start, end, _, _) in flat]))
    rules: Dict[str, List[np.ndarray]] = {
        "core-weighted mean, then normalize": [], "core-weighted mean of normalized windows (direct_vectors)": [],
        "mean of normalized windows": [], "first window only": [],
    }  # fmt: skip
    for windows in doc_windows:
        pooled = [p for p, _ in (next(outputs) for _ in windows)]
        rules["core-weighted mean, then normalize"].append(runner.finish(weighted_mean(windows, pooled)))
        rules["core-weighted mean of normalized windows (direct_vectors)"].append(runner.combine(windows, pooled))
        rules["mean of normalized windows"].append(runner.finish(np.mean(runner.finish(np.stack(pooled)), axis=0)))
        rules["first window only"].append(runner.finish(pooled[0]))
    return {rule: np.stack(v) for rule, v in rules.items()}, float(np.mean([len(w) for w in doc_windows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--stsb", type=Path, required=True)
    parser.add_argument("--long", type=int, default=0, help="sentences per long Doc (0: skip)")
    parser.add_argument("--precision", default="fp32", help="direct_vectors' precision (fp32, bf16, int8)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    first, second, gold = read_stsb(args.stsb)
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("direct_vectors", config={"model": args.model, "precision": args.precision})
    docs_a, docs_b = list(nlp.pipe(first)), list(nlp.pipe(second))
    ours_a, ours_b = np.stack([d.vector for d in docs_a]), np.stack([d.vector for d in docs_b])
    result = {"pairs": len(gold), "precision": args.precision, "direct_vectors_spearman": spearman(ours_a, ours_b, gold)}
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("sentence-transformers is not installed: no reference numbers (pip install sentence-transformers)")
        SentenceTransformer = None
    if SentenceTransformer is not None:
        st = SentenceTransformer(args.model, device="cpu")
        ref_a, ref_b = st.encode(first), st.encode(second)
        agreement = np.concatenate([cosines(ours_a, ref_a), cosines(ours_b, ref_b)])
        result.update(
            sentence_transformers_spearman=spearman(ref_a, ref_b, gold),
            min_cosine_to_sentence_transformers=round(float(agreement.min()), 6),
            sentences_below_0_999=int((agreement < 0.999).sum()),
        )
    if args.long:
        long_a, long_b, long_gold = long_pairs(first, second, gold, args.long)
        (rules_a, windows_a), (rules_b, _) = window_rules(pipe, long_a, nlp), window_rules(pipe, long_b, nlp)
        long_result = {"sentences_per_doc": args.long, "mean_windows_per_doc": round(windows_a, 2)}
        long_result.update({rule: spearman(rules_a[rule], rules_b[rule], long_gold) for rule in rules_a})
        if SentenceTransformer is not None:
            long_result["sentence-transformers (cut at max_seq_length)"] = spearman(st.encode(long_a), st.encode(long_b), long_gold)
        result["long_pairs"] = long_result
    print(json.dumps(result, indent=2))
    write_report(args.output, result)


if __name__ == "__main__":
    main()
