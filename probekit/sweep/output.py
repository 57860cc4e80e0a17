"""Parquet files of a sweep: one part per shard, then the merged results with their metadata.

Every file carries, under the schema metadata key ``probekit``, a JSON object with the
sweep's settings (model, revision, probe options, dataset and watch hashes, probekit
version); part files add their shard, the lines the tokenizer refused, the first-order
check and, for a LoRA sweep, ``lora``: the adapters' configuration as the worker's probe
resolved it (target modules named); the merged files add the totals.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from probekit.sweep.dataset import BadLine
from probekit.sweep.shards import OutputFolder, atomic
from probekit.sweep.worker import ShardResult

KEY = b"probekit"
# Bad lines listed in the merged metadata (the count is always exact).
_LISTED_BAD = 1000

ROWS = pa.schema(
    [
        ("index", pa.int64()),  # position among the valid examples of the dataset
        ("line", pa.int64()),  # 1-based line number in the dataset file
        ("prompt", pa.string()),
        ("target", pa.string()),
        ("update_size", pa.float64()),
        ("loss_before", pa.float64()),
        ("loss_drop", pa.float64()),
        ("disturbance", pa.float64()),
    ]
)
WATCH = pa.schema(
    [
        ("index", pa.int64()),
        ("line", pa.int64()),
        ("watch", pa.int64()),  # position of the watch item in the watch file
        ("watch_label", pa.string()),
        ("kl", pa.float64()),
        ("dlogp", pa.float64()),
        ("top1_flip", pa.bool_()),
    ]
)


def write_part(folder: OutputFolder, result: ShardResult, settings: dict[str, Any]) -> None:
    """Write one shard's part files: the watch part first, the per-example part last."""
    info = {
        **settings,
        "shard": result.index,
        "skipped": [[b.line, b.reason] for b in result.skipped],
        "residual": result.residual,
        "model_commit": result.model_commit,
        "lora": result.lora,
    }
    if result.watch is not None:
        _write(folder.part(result.index, "watch"), pa.table(result.watch, schema=WATCH), info)
    _write(folder.part(result.index), pa.table(result.rows, schema=ROWS), info)


def merge(
    folder: OutputFolder, shards: int, settings: dict[str, Any], bad: tuple[BadLine, ...]
) -> dict[str, Any]:
    """Stream the parts in shard order into ``results.parquet`` (and ``watch.parquet``)."""
    skipped, residuals, examples, commits, adapters = list(bad), [], 0, set(), set()
    for k in range(shards):
        info = read_metadata(folder.part(k))
        examples += pq.read_metadata(folder.part(k)).num_rows
        skipped += [BadLine(line, reason) for line, reason in info["skipped"]]
        commits.add(info.get("model_commit"))
        adapters.add(json.dumps(info.get("lora"), sort_keys=True))
        if info["residual"] is not None and not math.isnan(info["residual"]):
            residuals.append(info["residual"])
    skipped.sort(key=lambda b: b.line)
    summary = {
        **settings,
        "examples": examples,
        "bad_lines": len(skipped),
        "bad_line_list": [[b.line, b.reason] for b in skipped[:_LISTED_BAD]],
        "first_order_residual_max": max(residuals) if residuals else None,
        # the hub commit of the weights (a list if parts were computed from several)
        "model_commit": _one_or_all(commits),
        # the LoRA adapters' configuration (null: the weights were probed)
        "lora": _one_or_all_json(adapters),
    }
    parts = [folder.part(k) for k in range(shards)]
    _concat(parts, folder.root / "results.parquet", ROWS, summary)
    if settings.get("watch_matrix"):
        parts = [folder.part(k, "watch") for k in range(shards)]
        _concat(parts, folder.root / "watch.parquet", WATCH, summary)
    return summary


def read_metadata(schema: pa.Schema | str | Path) -> dict[str, Any]:
    """The ``probekit`` metadata of a sweep's Parquet file (or of its schema)."""
    if not isinstance(schema, pa.Schema):
        schema = pq.read_schema(schema)
    raw = (schema.metadata or {}).get(KEY)
    if raw is None:
        raise ValueError("this Parquet file was not written by probekit sweep")
    value: dict[str, Any] = json.loads(raw)
    return value


def _write(path: Path, table: pa.Table, info: dict[str, Any]) -> None:
    with atomic(path) as temporary:
        pq.write_table(table.replace_schema_metadata(_metadata(info)), temporary)


def _concat(parts: list[Path], path: Path, schema: pa.Schema, info: dict[str, Any]) -> None:
    """One file of every part's rows, in order, without holding them all in memory."""
    meta = schema.with_metadata(_metadata(info))
    with atomic(path) as temporary, pq.ParquetWriter(temporary, meta) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part).replace_schema_metadata(None))


def _one_or_all(values: set[str | None]) -> str | list[str | None] | None:
    if len(values) <= 1:
        return next(iter(values), None)
    return sorted(values, key=str)


def _one_or_all_json(texts: set[str]) -> Any:
    values = [json.loads(t) for t in sorted(texts)]
    return values[0] if len(values) == 1 else values or None


def _metadata(info: dict[str, Any]) -> dict[bytes, bytes]:
    return {KEY: json.dumps(info, sort_keys=True, allow_nan=True).encode()}
