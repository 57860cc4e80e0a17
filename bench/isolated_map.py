"""Isolated dataset map: the batched exact path and the first-order path vs a naive loop.

On the demo model (CPU, 2 threads unless --threads): 256 examples (facts the model
knows and contradictions of them) probed one at a time from the same weights, 8 watch
prompts, SGD. The naive loop is what one writes by hand: for each example take a copy
of the weights, forward+backward+step, evaluate the example and the watch set, copy the
weights back. All paths run in the same process, alternately; the script prints
examples/s of each, its ratio to the naive loop, the largest difference between the
exact path's per-example numbers and the naive loop's, and the first-order residual.

    python bench/isolated_map.py [--examples 256] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

import probekit as pk
from probekit.core import batch as batching
from probekit.core.sandbox import preserved
from probekit.demo import corpus

LR = 0.01


def workload(n: int) -> tuple[list[pk.Example], list[pk.Example]]:
    facts = corpus.facts()
    pool = []
    for fact in facts:
        wrong = corpus.contradiction(fact)
        pool += [pk.Example(fact.prompt, fact.target), pk.Example(wrong.prompt, wrong.target)]
    examples = [pool[i % len(pool)] for i in range(n)]
    watch = [pk.Example(f.prompt, f.target) for f in facts[5::11][:8]]
    return examples, watch


def naive_loop(probe: pk.Probe, examples: list[pk.Example]) -> dict[str, list[Any]]:
    """Copy, step, measure, restore — per example, with the probe's encodings and batching."""
    with preserved(probe.model, probe.entries):
        return _naive_loop(probe, examples)


def _naive_loop(probe: pk.Probe, examples: list[pk.Example]) -> dict[str, list[Any]]:
    model = probe.model
    params = [e.param for e in probe.entries]
    watch_batch = batching.make_batch(
        list(probe.watch_outputs().items), probe._pad_id(), probe.entries[0].param.device
    )
    with torch.no_grad():
        base = torch.log_softmax(batching.forward(model, watch_batch).logits.double(), -1)
    out: dict[str, list[Any]] = {"update_size": [], "loss_after": [], "kl": [], "dlogp": []}
    for example in examples:
        batch = batching.make_batch([probe._encode(example, require_target=True)], 0, base.device)
        saved = [p.detach().clone() for p in params]
        for p in params:
            p.grad = None
        batching.target_nll(batching.forward(model, batch), batch).mean().backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-LR)
            loss_after = batching.target_nll(batching.forward(model, batch), batch).mean()
            after = torch.log_softmax(batching.forward(model, watch_batch).logits.double(), -1)
            size = math.sqrt(
                sum(
                    float((p.double() - s.double()).square().sum())
                    for p, s in zip(params, saved, strict=True)
                )
            )
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
                p.grad = None
        safe = watch_batch.targets.clamp(min=0)[:, None]
        out["update_size"].append(size)
        out["loss_after"].append(float(loss_after))
        out["kl"].append((base.exp() * (base - after)).sum(-1).tolist())  # one read per item here
        out["dlogp"].append((after.gather(1, safe) - base.gather(1, safe)).squeeze(1).tolist())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = pk.load_demo()
    examples, watch = workload(args.examples)
    probe = pk.Probe(model, tok, optimizer="sgd", lr=LR, watch=watch)
    assert all(len(e.target_ids) == 1 for e in probe.watch_outputs().items), (
        "one read per watch item"
    )
    start = probe.fingerprint()

    runs: dict[str, list[float]] = {"naive": [], "exact": [], "first_order": []}
    results: dict[str, Any] = {}
    jobs = {
        "naive": lambda: naive_loop(probe, examples),
        "exact": lambda: pk.isolated_map(probe, examples, method="exact", progress=False),
        "first_order": lambda: pk.isolated_map(
            probe, examples, method="first_order", progress=False
        ),
    }
    for _ in range(args.repeats):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            results[name] = job()
            runs[name].append(time.perf_counter() - t0)
    assert probe.fingerprint() == start, "the live model was left untouched"

    naive, exact, first = results["naive"], results["exact"], results["first_order"]
    frame = exact.to_frame()
    loss_after = (frame.loss_before - frame.loss_drop).tolist()
    diffs = {
        "update_size": _max_diff(frame.update_size.tolist(), naive["update_size"]),
        "loss_after": _max_diff(loss_after, naive["loss_after"]),
        "watch_kl": _max_diff(_flat(exact.kl), _flat(naive["kl"])),
        "watch_dlogp": _max_diff(_flat(exact.dlogp), _flat(naive["dlogp"])),
    }
    n = len(examples)
    print(f"demo model, {n} examples, {len(watch)} watch prompts, SGD lr={LR}, "
          f"{args.threads} threads, {args.repeats} alternating repeats (median)")  # fmt: skip
    base_time = statistics.median(runs["naive"])
    for name in ("naive", "exact", "first_order"):
        t = statistics.median(runs[name])
        print(
            f"  {name:12s} {t:7.2f} s  {n / t:8.1f} examples/s  "
            f"ratio vs naive {base_time / t:5.2f}x"
        )
    print("largest |exact - naive| per-example number:")
    for key, value in diffs.items():
        print(f"  {key:12s} {value:.3g}")
    residual = first.residual
    print(f"first-order residual on {len(residual.indices)} sampled examples: relative "
          f"{residual.relative:.3g}, max |Δlog p error| {residual.max_abs:.3g}")  # fmt: skip
    print(f"RATIO exact {base_time / statistics.median(runs['exact']):.2f}x "
          f"first_order {base_time / statistics.median(runs['first_order']):.2f}x "
          f"MAXDIFF {max(diffs.values()):.3g}")  # fmt: skip


def _flat(rows: Any) -> list[float]:
    return [float(v) for row in rows for v in row]


def _max_diff(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


if __name__ == "__main__":
    main()
