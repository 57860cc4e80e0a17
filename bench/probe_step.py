"""Cost of one isolated probe step vs the bare work it cannot avoid.

On a GPT-2-small-shaped random model (124M parameters, CPU): a 32-token example and
8 watch prompts of 16 tokens. The baseline is a hand-written loop doing the same
unavoidable work — snapshot, forward+backward+SGD step on the example, one forward of
the watch set (with hidden states), restore by copy. Prints the ratio of a full
``probe.step`` (all default metrics) to that loop, measured alternately in one run,
and the peak extra memory of an isolated SGD probe as a multiple of the parameter bytes.

    python bench/probe_step.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F

import probekit as pk
from bench.common import (
    gpt2_small,
    median_time,
    rss_peak,
    rss_peak_reset,
    sentence,
    word_tokenizer,
)

LR = 1e-4


def bare_step(model, params, ex_ids, n_prompt, watch_ids, watch_mask) -> None:
    """The unavoidable work of an isolated probe, written by hand."""
    snapshot = [p.detach().clone() for p in params]
    logits = model(input_ids=ex_ids, use_cache=False).logits[0]
    loss = F.cross_entropy(logits[n_prompt - 1 : -1], ex_ids[0, n_prompt:])
    loss.backward()
    with torch.no_grad():
        torch._foreach_add_(params, [p.grad for p in params], alpha=-LR)
        model(
            input_ids=watch_ids,
            attention_mask=watch_mask,
            output_hidden_states=True,
            use_cache=False,
        )
        torch._foreach_copy_(params, snapshot)
    for p in params:
        p.grad = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = random.Random(0)
    tok = word_tokenizer()
    model = gpt2_small()
    params = list(dict.fromkeys(model.parameters()))
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    prompt, target = sentence(28, rng), " " + sentence(4, rng)
    watch = [sentence(16, rng) for _ in range(8)]
    example = pk.Example(prompt, target)
    ex_ids = torch.tensor([tok(prompt + target)["input_ids"]])
    n_prompt = len(tok(prompt)["input_ids"])
    enc = tok(watch, padding=True, return_tensors="pt")
    probe = pk.Probe(model, tok, optimizer="sgd", lr=LR, watch=watch)
    print(f"model: {param_bytes / 4 / 1e6:.1f}M parameters, threads: {torch.get_num_threads()}")
    print(f"example: {ex_ids.shape[1]} tokens; watch: {len(watch)} x {enc['input_ids'].shape[1]}")

    def bare() -> None:
        bare_step(model, params, ex_ids, n_prompt, enc["input_ids"], enc["attention_mask"])

    def probed() -> None:
        probe.step(example)

    for fn in (bare, probed, bare, probed):  # warm-up: allocator, kernels, compilation
        fn()
    # Alternate in blocks so both see the same machine; the first call of each probe
    # block recomputes the watch baseline, because the bare loop wrote the weights in
    # between (a probe caches it while the weights are unchanged) — time the rest.
    bare_times, probe_times = [], []
    for _ in range(args.repeats):
        bare()
        bare_times.append(median_time(bare, 1))
        probed()
        probe_times.append(median_time(probed, 1))
    bare_times.sort()
    probe_times.sort()
    t_bare, t_probe = bare_times[len(bare_times) // 2], probe_times[len(probe_times) // 2]
    print(f"bare loop:   median {t_bare:.3f} s over {args.repeats}")
    print(f"probe.step:  median {t_probe:.3f} s over {args.repeats}")
    print(f"RATIO probe.step / bare loop = {t_probe / t_bare:.3f}  (target <= 1.15)")

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so RSS counts live memory
    start = rss_peak_reset()
    probed()
    extra = rss_peak() - start
    print(f"peak extra memory of an isolated SGD probe: {extra / 2**20:.0f} MiB")
    print(f"MEMORY peak extra / parameter bytes = {extra / param_bytes:.2f}  (target <= 2.5)")


if __name__ == "__main__":
    main()
