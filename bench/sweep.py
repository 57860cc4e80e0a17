"""``probekit sweep`` in one process vs on Ray with 2 workers, on the same data, in one run.

On the demo model (CPU): ``--examples`` examples (facts the model knows and
contradictions of them), 8 watch items, SGD, exact isolated map, shards of
``--shard-size``. Timed in this order, each on a fresh output folder:

* single process, 1 torch thread (one worker's share of the machine: the baseline);
* single process, 2 torch threads (what one process gets from both cores);
* Ray start-up (a local instance with 2 CPUs), then the sweep on 2 worker actors of
  1 CPU each (actor start and model loading included, Ray start-up not).

Prints the times, speed-up = baseline / Ray and scaling efficiency = speed-up / 2,
and checks that the Ray results file is byte-identical to the single-process one.

    python bench/sweep.py [--examples 256] [--shard-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.isolated_map import LR, workload
from probekit.sweep import SweepOptions, ray_engine, run_sweep

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--shard-size", type=int, default=32)
    args = parser.parse_args()
    import ray

    examples, watch = workload(args.examples)
    folder = Path(tempfile.mkdtemp(prefix="probekit-bench-sweep-"))
    data, watch_file = folder / "data.jsonl", folder / "watch.jsonl"
    data.write_text("".join(_line(e.prompt, e.target) for e in examples))
    watch_file.write_text("".join(_line(e.prompt, e.target) for e in watch))
    options = SweepOptions(lr=LR, shard_size=args.shard_size, device="cpu")
    common = {"watch": watch_file, "progress": False, "report": lambda m: None}

    def sweep(name: str, **kwargs: object) -> float:
        start = time.perf_counter()
        run_sweep(data, folder / name, options, **common, **kwargs)  # type: ignore[arg-type]
        return time.perf_counter() - start

    torch.set_num_threads(1)
    t_one = sweep("single-1")
    torch.set_num_threads(2)
    t_two = sweep("single-2")
    print(f"single process: {t_one:.2f} s (1 thread), {t_two:.2f} s (2 threads)", flush=True)
    start = time.perf_counter()
    ray_engine.start(
        attempts=5,
        num_cpus=2,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}},
    )
    t_init = time.perf_counter() - start
    t_ray = sweep("ray", engine="ray", workers=2)
    ray.shutdown()
    same = (folder / "ray" / "results.parquet").read_bytes() == (
        folder / "single-1" / "results.parquet"
    ).read_bytes()

    n, shards = len(examples), -(-len(examples) // args.shard_size)
    print(f"demo model, {n} examples in {shards} shards of {args.shard_size}, "
          f"{len(watch)} watch items, exact, {os.cpu_count()} cores visible")  # fmt: skip
    print(f"  single process, 1 thread : {t_one:6.2f} s  {n / t_one:6.1f} examples/s")
    print(f"  single process, 2 threads: {t_two:6.2f} s  {n / t_two:6.1f} examples/s")
    print(f"  ray start-up (local, 2 CPUs): {t_init:6.2f} s")
    print(f"  ray, 2 workers x 1 thread: {t_ray:6.2f} s  {n / t_ray:6.1f} examples/s "
          f"(start-up excluded; {t_ray + t_init:.2f} s with it)")  # fmt: skip
    print(f"  ray results byte-identical to single process: {same}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  load average during the run (1, 5, 15 min): {load} on {os.cpu_count()} cores")
    speedup = t_one / t_ray
    print(f"RATIO speed-up ray(2 workers) / single(1 thread) = {speedup:.2f}  "
          f"scaling efficiency = {speedup / 2:.2f}")  # fmt: skip
    print(f"RATIO speed-up ray(2 workers) / single(2 threads) = {t_two / t_ray:.2f}")


def _line(prompt: str, target: str | None) -> str:
    return json.dumps({"prompt": prompt, "target": target}) + "\n"


if __name__ == "__main__":
    main()
