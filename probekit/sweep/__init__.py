"""Sweeps: every example of a JSONL dataset probed alone, written to Parquet, resumable.

``probekit sweep`` (see ``docs/sweep.md``) runs :func:`run_sweep`: the dataset is read
and validated (:mod:`.dataset`), cut into shards (:mod:`.shards`), each shard measured
by a :class:`~.worker.ShardWorker` in this process or on Ray workers
(:mod:`.ray_engine`), and every finished shard written as a Parquet part file
(:mod:`.output`) before the parts are merged.
"""

from probekit.sweep.options import SweepOptions
from probekit.sweep.output import read_metadata
from probekit.sweep.runner import SweepSummary, run_sweep

__all__ = ["SweepOptions", "SweepSummary", "read_metadata", "run_sweep"]
