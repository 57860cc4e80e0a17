"""Thousands of committed steps on the demo model: memory stays flat, steps stay as fast.

Commits ``--steps`` probe steps (default 5,000; Adam, a two-item watch set) on the
embedded demo model, cycling through a few examples. Prints the process's resident
memory after the warm-up (once the undo stack is full) and at the end, the live
tensor count at both points, the undo stack's bytes (the growth that remains is the
history of results, a few tens of KB per step), and the mean step time over the first
and the last 500 steps (their ratio: ≈ 1 when nothing accumulates).

    python -m bench.soak [--steps 5000] [--max-undo 50] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

import probekit as pk

EXAMPLES = [
    pk.Example("2 plus 2 is", " 4"),
    pk.Example("the dog says", " woof"),
    pk.Example("bob lives in", " paris"),
    pk.Example("3 plus 4 is", " 7"),
]
WINDOW = 500


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance on deprecated torch objects warns
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def soak(steps: int, max_undo: int, warmup: int | None = None) -> dict[str, float]:
    """Commit ``steps`` steps; memory is read after ``warmup`` steps and at the end."""
    torch.manual_seed(0)
    model, tok = pk.load_demo(device="cpu")
    probe = pk.Probe(model, tok, optimizer="adam", lr=1e-4, max_undo=max_undo,
                     watch=["the cat says", pk.Example("alice lives in", " rome")])  # fmt: skip
    warmup = warmup if warmup is not None else min(steps // 2, max(2 * max_undo, WINDOW))
    times: list[float] = []
    marks: dict[str, float] = {}
    for i in range(steps):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = probe.step(EXAMPLES[i % len(EXAMPLES)], commit=True)
        times.append(time.perf_counter() - start)
        if not result.committed:
            raise RuntimeError(f"step {i} was not committed: {result.notes}")
        if i + 1 == warmup:
            marks["rss_warm"], marks["tensors_warm"] = rss_bytes(), live_tensors()
    history = len(probe.history)
    marks["rss_end"], marks["tensors_end"] = rss_bytes(), live_tensors()
    n = min(WINDOW, steps // 2)
    first, last = statistics.mean(times[:n]), statistics.mean(times[-n:])
    return {
        "steps": steps,
        "max_undo": max_undo,
        "warmup": warmup,
        "rss_warm_mb": marks["rss_warm"] / 2**20,
        "rss_end_mb": marks["rss_end"] / 2**20,
        "rss_growth_per_step_kb": (marks["rss_end"] - marks["rss_warm"]) / (steps - warmup) / 1024,
        "live_tensors_warm": marks["tensors_warm"],
        "live_tensors_end": marks["tensors_end"],
        "undo_mb": probe.undo_bytes() / 2**20,
        "history": history,
        "first_ms": first * 1000,
        "last_ms": last * 1000,
        "last_over_first": last / first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--max-undo", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = soak(args.steps, args.max_undo)
    if args.json:
        print(json.dumps(report))
        return
    for key, value in report.items():
        print(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
