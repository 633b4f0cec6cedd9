"""Build the stand-in GLiNER checkpoint the GLiNER benchmark reads when no hub checkpoint can
be downloaded: a local encoder (e.g. all-MiniLM-L6-v2) under gliner's span layers, trained
briefly (gliner's own collator and loss, a plain AdamW loop: its Trainer needs accelerate) on CoNLL-2003 **dev** (eng.testa) sentences, the
entity types named in words. It behaves like a GLiNER checkpoint (few, confident spans)
so that speed is measured on realistic output; the test file is never trained on.

  python scripts/gliner_standin.py --encoder MODEL --conll ../shared/data/conll2003/eng.testa --out training/gliner-minilm
"""
import argparse
import random
from pathlib import Path

import torch

from spacy_direct_use.conll import iob1_to_iob2, iob2_to_spans, read_conll

TYPE_NAMES = {"PER": "person", "ORG": "organization", "LOC": "location", "MISC": "miscellaneous"}


def examples(path: Path) -> list:
    """gliner's training records: words and [start, end (inclusive), type name] spans."""
    records = []
    for article in read_conll(path):
        for words, tags in article:
            spans = iob2_to_spans(iob1_to_iob2(tags))
            records.append({"tokenized_text": words, "ner": [[s, e - 1, TYPE_NAMES[label]] for s, e, label in spans]})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--conll", type=Path, required=True, help="eng.testa (dev)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    from gliner import GLiNER, GLiNERConfig

    torch.manual_seed(0)
    random.seed(0)
    model = GLiNER.from_config(GLiNERConfig(model_name=args.encoder, max_width=12, max_len=384), backbone_from_pretrained=True)
    train = examples(args.conll)
    random.shuffle(train)
    # GLiNER's own (private) collator factory: its training loop's; gliner is not installed here to try
    # the public spelling newer releases allow (model.data_collator_class(model.config, data_processor=model.data_processor, prepare_labels=True))
    collate = model._create_data_collator()
    encoder = [p for n, p in model.named_parameters() if n.startswith("model.token_rep_layer")]
    others = [p for n, p in model.named_parameters() if not n.startswith("model.token_rep_layer")]
    optimizer = torch.optim.AdamW([{"params": encoder, "lr": 3e-5}, {"params": others, "lr": 1e-4}], weight_decay=0.01)
    model.train()
    for step in range(args.steps):
        batch = collate([train[(step * 8 + i) % len(train)] for i in range(8)])
        loss = model(**batch, alpha=0.75, gamma=2.0).loss  # gliner's focal loss, its recommended setting
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.2f}", flush=True)
    model.eval()
    model.save_pretrained(args.out, safe_serialization=True)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
