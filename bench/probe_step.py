"""Cost of one isolated probe step vs the bare work it cannot avoid, on three model sizes.

Models (CPU, randomly initialised except the demo model):

* ``demo`` — the embedded demo model (0.8M parameters); a fact as the example and 8
  facts as the watch set;
* ``13m`` — a GPT-2 shape of width 384, 6 layers, vocabulary 6,000;
* ``124m`` — GPT-2 small's shape.

On the random models: a 32-token example and 8 watch prompts of 16 tokens. The
baseline is a hand-written loop doing the same unavoidable work — snapshot,
forward (with hidden states, which the example's drift needs) + backward + SGD step on
the example, one forward of the watch set (with hidden states), restore by copy. (The
probe also runs the example once more after the step, for its loss after and its own
row; the loop does not.) For each model the script times, alternately with the bare
loop in the same run:

* ``steady`` — isolated steps on unchanged weights (the watch baseline cached);
* ``after commit`` — the first isolated step right after a committed step (the probe
  adopts the watch outputs measured after the commit as its new baseline), undone after.

It prints each ratio (median probe time / median bare time), the demo model's
isolated-step latency in milliseconds, and the peak extra memory of an isolated SGD
probe on the largest model run as a multiple of the parameter bytes.

    python bench/probe_step.py [--models demo,13m,124m] [--repeats 15] [--quick]

``--quick`` uses fewer repeats (5) on the 124M model, which is slow on a few cores.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

import probekit as pk
from bench.common import gpt2_small, rss_peak, rss_peak_reset, sentence, word_tokenizer

LR = 1e-4
TARGET = 1.15


@dataclass
class Workload:
    name: str
    model: Any
    tokenizer: Any
    example: pk.Example
    watch: list[str] | list[pk.Example]
    ex_ids: torch.Tensor
    n_prompt: int
    watch_ids: torch.Tensor
    watch_mask: torch.Tensor


def gpt2_13m(seed: int = 0) -> GPT2LMHeadModel:
    """A 13M-parameter GPT-2 shape: width 384, 6 layers, 6,000-token vocabulary."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=6000, n_embd=384, n_layer=6, n_head=6, bos_token_id=0, eos_token_id=0,
        pad_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config).eval()


def random_workload(name: str, model: Any) -> Workload:
    rng = random.Random(0)
    tok = word_tokenizer()
    prompt, target = sentence(28, rng), " " + sentence(4, rng)
    watch = [sentence(16, rng) for _ in range(8)]
    enc = tok(watch, padding=True, return_tensors="pt")
    return Workload(
        name, model, tok, pk.Example(prompt, target), watch,
        torch.tensor([tok(prompt + target)["input_ids"]]), len(tok(prompt)["input_ids"]),
        enc["input_ids"], enc["attention_mask"],
    )  # fmt: skip


def demo_workload() -> Workload:
    from probekit.demo import corpus

    model, tok = pk.load_demo()
    facts = corpus.facts()
    fact = facts[0]
    watch = [pk.Example(f.prompt, f.target) for f in facts[5::11][:8]]
    texts = [w.prompt + (w.target or "") for w in watch]
    enc = tok(texts, padding=True, return_tensors="pt")
    return Workload(
        "demo", model.eval(), tok, pk.Example(fact.prompt, fact.target), watch,
        torch.tensor([tok(fact.prompt + fact.target)["input_ids"]]),
        len(tok(fact.prompt)["input_ids"]), enc["input_ids"], enc["attention_mask"],
    )  # fmt: skip


def bare_step(model, params, ex_ids, n_prompt, watch_ids, watch_mask) -> None:
    """The unavoidable work of an isolated probe, written by hand."""
    snapshot = [p.detach().clone() for p in params]
    logits = model(input_ids=ex_ids, output_hidden_states=True, use_cache=False).logits[0]
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


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(w: Workload, repeats: int) -> dict[str, float]:
    """Median seconds of the bare loop and of both probe cases, timed alternately."""
    params = list(dict.fromkeys(w.model.parameters()))
    probe = pk.Probe(w.model, w.tokenizer, optimizer="sgd", lr=LR, watch=w.watch)

    def bare() -> None:
        bare_step(w.model, params, w.ex_ids, w.n_prompt, w.watch_ids, w.watch_mask)

    def isolated() -> None:
        probe.step(w.example)

    for fn in (bare, isolated, bare, isolated, isolated):  # warm-up: allocator, kernels
        fn()
    times: dict[str, list[float]] = {"bare": [], "steady": [], "after commit": []}
    for _ in range(repeats):
        times["bare"].append(timed(bare))
        isolated()  # the bare loop wrote the weights: this call re-reads the watch baseline
        times["steady"].append(timed(isolated))
        times["bare"].append(timed(bare))
        probe.step(w.example, commit=True)
        times["after commit"].append(timed(isolated))
        probe.undo()
    probe.reset()
    return {k: statistics.median(v) for k, v in times.items()}


def peak_memory(w: Workload) -> float:
    """Peak extra resident memory of one isolated SGD probe / the parameter bytes."""
    probe = pk.Probe(w.model, w.tokenizer, optimizer="sgd", lr=LR, watch=w.watch)
    probe.step(w.example)
    param_bytes = sum(p.numel() * p.element_size() for p in dict.fromkeys(w.model.parameters()))
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so RSS counts live memory
    start = rss_peak_reset()
    probe.step(w.example)
    return (rss_peak() - start) / param_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,13m,124m", help="comma-separated subset")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 repeats on the 124M model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    builders = {
        "demo": demo_workload,
        "13m": lambda: random_workload("13m", gpt2_13m()),
        "124m": lambda: random_workload("124m", gpt2_small()),
    }
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(builders))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(builders)}")
    print(f"threads: {torch.get_num_threads()}; each ratio is probe / bare, medians, alternated")
    results: dict[str, dict[str, float]] = {}
    last: Workload | None = None
    for name in names:
        w = builders[name]()
        n_params = sum(p.numel() for p in dict.fromkeys(w.model.parameters()))
        repeats = 5 if (args.quick and name == "124m") else args.repeats
        t = measure(w, repeats)
        results[name] = t
        last = w
        print(
            f"{name:>5}: {n_params / 1e6:6.1f}M params, example {w.ex_ids.shape[1]} tokens, "
            f"watch {tuple(w.watch_ids.shape)}; bare {t['bare'] * 1e3:.1f} ms, "
            f"steady {t['steady'] * 1e3:.1f} ms, after commit {t['after commit'] * 1e3:.1f} ms "
            f"({repeats} repeats)"
        )
    print()
    for name, t in results.items():
        for case in ("steady", "after commit"):
            print(f"RATIO {name} {case:<12} probe.step / bare loop = {t[case] / t['bare']:.3f}"
                  f"  (target <= {TARGET})")  # fmt: skip
    if "demo" in results:
        print(f"LATENCY demo isolated probe.step = {results['demo']['steady'] * 1e3:.1f} ms")
    if last is not None:
        print(f"MEMORY {last.name} peak extra / parameter bytes = {peak_memory(last):.2f}"
              "  (target <= 2.5)")  # fmt: skip


if __name__ == "__main__":
    main()
