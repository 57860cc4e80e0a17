"""Running a sweep: read, plan shards, compute the missing ones, write parts, merge.

The engine only computes shards; this process reads the data, writes every part file
and the merged results, so both engines resume the same way and give the same files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from probekit.errors import InputError
from probekit.sweep import dataset as data
from probekit.sweep.options import SweepOptions
from probekit.sweep.output import merge, write_part
from probekit.sweep.shards import OutputFolder, Shard, plan
from probekit.sweep.worker import ShardResult, ShardWorker

Engine = Literal["local", "ray"]
Report = Callable[[str], object]


@dataclass(frozen=True)
class SweepSummary:
    results: Path
    watch: Path | None
    examples: int
    bad_lines: int
    shards: int
    computed: int  # shards computed by this run (the others were already done)
    metadata: dict[str, Any]


def run_sweep(
    dataset: str | Path,
    out: str | Path,
    options: SweepOptions,
    *,
    watch: str | Path | None = None,
    on_bad_line: data.OnBadLine = "error",
    engine: Engine = "local",
    address: str | None = None,
    workers: int | None = None,
    restart: bool = False,
    progress: bool = True,
    report: Report | None = None,
) -> SweepSummary:
    """Measure every example of ``dataset`` alone from the model's weights; see docs/sweep.md."""
    say = report or _stderr
    _check_engine(engine, address, workers)
    examples = data.read_dataset(dataset, on_bad_line)
    if examples.bad:
        say(
            f"skipping {len(examples.bad)} bad line(s) of {dataset}:\n{data.describe(examples.bad)}"
        )
    watch_set = data.read_watch(watch) if watch is not None else data.WatchSet((), "")
    if options.watch_matrix and not watch_set.items:
        raise InputError("--watch-matrix needs a watch file (--watch)")
    settings = _settings(options, examples, watch_set, on_bad_line)
    shards = plan(examples.records, options.shard_size)
    folder = OutputFolder.open(out, settings, len(shards), restart=restart)
    try:  # the folder is locked until the end
        pending = [s for s in shards if not folder.done(s.index)]
        if len(pending) < len(shards):
            say(f"resuming: {len(shards) - len(pending)} of {len(shards)} shards already done")
        total = len(examples.records)
        remaining = sum(len(s.records) for s in pending)
        results = (
            _compute(engine, options, watch_set, on_bad_line == "skip", pending, address, workers)
            if pending
            else iter(())
        )
        with _bar(total, total - remaining, progress and bool(pending)) as tick:
            for result in results:
                write_part(folder, result, settings)
                tick(len(shards[result.index].records))
        summary = merge(folder, len(shards), settings, examples.bad)
    finally:
        folder.close()
    if summary["bad_lines"] > len(examples.bad):
        say(
            f"{summary['bad_lines'] - len(examples.bad)} example(s) skipped: the tokenizer "
            "refused them (listed in the metadata)"
        )
    return SweepSummary(
        results=folder.root / "results.parquet",
        watch=folder.root / "watch.parquet" if options.watch_matrix else None,
        examples=summary["examples"],
        bad_lines=summary["bad_lines"],
        shards=len(shards),
        computed=len(pending),
        metadata=summary,
    )


def local_engine(
    options: SweepOptions, watch: data.WatchSet, skip: bool, shards: Sequence[Shard]
) -> Iterator[ShardResult]:
    """Every shard in this process, in order, on one model copy."""
    worker = ShardWorker(options, watch, skip)
    for shard in shards:
        yield worker.compute(shard)


def _compute(
    engine: Engine,
    options: SweepOptions,
    watch: data.WatchSet,
    skip: bool,
    shards: Sequence[Shard],
    address: str | None,
    workers: int | None,
) -> Iterator[ShardResult]:
    if engine == "local":
        return local_engine(options, watch, skip, shards)
    from probekit.sweep import ray_engine

    return ray_engine.compute(options, watch, skip, shards, address=address, workers=workers)


def _check_engine(engine: str, address: str | None, workers: int | None) -> None:
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}; use local or ray")
    if engine == "local" and (address is not None or workers is not None):
        raise InputError("--address and --workers are for --engine ray")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be a positive integer, got {workers}")


def _settings(
    options: SweepOptions, examples: data.Dataset, watch: data.WatchSet, on_bad_line: str
) -> dict[str, Any]:
    import probekit

    return {
        **options.numbers(),
        "dataset_sha256": examples.sha256,
        "watch_sha256": watch.sha256 or None,
        "watch_items": len(watch.items),
        "on_bad_line": on_bad_line,
        "probekit_version": probekit.__version__,
    }


@contextmanager
def _bar(total: int, done: int, enabled: bool) -> Iterator[Callable[[int], object]]:
    """A tqdm bar's ``update`` over examples (starting at those already done), or a no-op."""
    if not enabled:
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, initial=done, unit="example", desc="sweep") as bar:
        yield bar.update


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
