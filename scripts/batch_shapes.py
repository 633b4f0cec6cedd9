#!/usr/bin/env python
"""Forward-pass throughput (padded sub-words/s) of a token classifier by batch shape.

Where direct_ner's default `forward_batch_tokens` comes from: on CPU, short
windows gain from sharing a pass until the batch holds ~800-3,000 padded
sub-words; bigger batches get slower per sub-word again.

  python scripts/batch_shapes.py --model PATH [--lengths 12,24,48,96]
      [--batch-sizes 8,16,32,64,128,256] [--threads 0] [--gpu-id -1]
"""
import argparse
import os
import time

import torch
from transformers import AutoModelForTokenClassification


def throughput(model, batch_size: int, length: int, device: torch.device, min_tokens: int = 6000) -> float:
    """Padded sub-words per second for batches of (batch_size, length) random ids."""
    ids = torch.randint(1000, model.config.vocab_size, (batch_size, length), device=device)
    mask = torch.ones_like(ids)
    repeats = max(3, min_tokens // (batch_size * length))
    with torch.inference_mode():
        for _ in range(2):
            model(input_ids=ids, attention_mask=mask)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model(input_ids=ids, attention_mask=mask)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return batch_size * length * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--lengths", default="12,24,48,96", help="sub-words per window, specials included")
    parser.add_argument("--batch-sizes", default="8,16,32,64,128,256")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all usable cores)")
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    device = torch.device(f"cuda:{args.gpu_id}" if args.gpu_id >= 0 else "cpu")
    model = AutoModelForTokenClassification.from_pretrained(args.model).to(device).eval()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"{device}, {torch.get_num_threads()} threads; thousands of padded sub-words/s (batch tokens in brackets)")
    for length in (int(n) for n in args.lengths.split(",")):
        cells = [f"B={b}: {throughput(model, b, length, device) / 1000:.1f}k ({b * length})" for b in batch_sizes]
        print(f"length {length:>3}: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
