"""Sweeps: every example of a JSONL dataset probed alone, written to Parquet, resumable.

``probekit sweep`` (see ``docs/sweep.md``) runs :func:`run_sweep`: the dataset is read
and validated (:mod:`.dataset`), cut into shards (:mod:`.shards`), each shard measured
by a :class:`~.worker.ShardWorker` in this process or on Ray workers
(:mod:`.ray_engine`), and every finished shard written as a Parquet part file
(:mod:`.output`) before the parts are merged. Names load lazily (no pyarrow or torch
on import).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_LAZY = {
    "SweepOptions": "probekit.sweep.options",
    "SweepSummary": "probekit.sweep.runner",
    "run_sweep": "probekit.sweep.runner",
    "read_metadata": "probekit.sweep.output",
}

__all__ = ["SweepOptions", "SweepSummary", "read_metadata", "run_sweep"]

if TYPE_CHECKING:  # pragma: no cover
    from probekit.sweep.options import SweepOptions
    from probekit.sweep.output import read_metadata
    from probekit.sweep.runner import SweepSummary, run_sweep


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'probekit.sweep' has no attribute {name!r}")
    return getattr(import_module(module), name)
