"""One model copy that measures shards: the isolated map of each shard's examples.

The same class runs in the sweeping process (``--engine local``) and inside every Ray
actor (``--engine ray``), so both engines compute each shard with the same code on the
same examples and give the same numbers. With ``lora_r`` the probe is a
:class:`~probekit.LoraProbe` whose adapters are initialised from ``lora_seed``, so every
worker (and every resumed run) steps the same adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import probekit as pk
from probekit.errors import InputError, OutOfMemoryError
from probekit.sweep.dataset import BadLine, Record, WatchSet
from probekit.sweep.options import SweepOptions, load_model
from probekit.sweep.shards import Shard


@dataclass(frozen=True)
class ShardResult:
    """Per-example columns of one shard, and per-(example, watch item) columns if asked."""

    index: int
    rows: dict[str, list[Any]]
    watch: dict[str, list[Any]] | None
    skipped: tuple[BadLine, ...] = ()  # examples the tokenizer refused (on_bad_line="skip")
    residual: float | None = None  # first_order: relative error against the exact path
    model_commit: str | None = None  # the hub commit the weights were loaded from
    lora: dict[str, Any] | None = None  # the adapters' configuration, as peft resolved it


class ShardWorker:
    """Loads the model once and measures shards one after another."""

    def __init__(self, options: SweepOptions, watch: WatchSet, skip_bad: bool) -> None:
        self.options = options
        self.skip_bad = skip_bad
        model, tokenizer = load_model(options)
        self.model_commit = getattr(model.config, "_commit_hash", None)
        try:
            self.probe, self.lora = _build_probe(options, model, tokenizer, watch)
        except OutOfMemoryError as err:
            raise OutOfMemoryError(
                f"{err}. In probekit sweep: --layers, --pattern or --lora-r R step fewer "
                "parameters, --dtype bf16 loads a smaller dtype, and --no-check-memory sweeps "
                "anyway"
            ) from None

    def compute(self, shard: Shard) -> ShardResult:
        records, skipped = self._encodable(shard.records)
        if not records:  # every example refused: an empty part keeps the shard done
            watch = _watch_columns([], None) if self.options.watch_matrix else None
            return ShardResult(
                shard.index,
                _columns([], None),
                watch,
                tuple(skipped),
                None,
                self.model_commit,
                self.lora,
            )
        examples = [pk.Example(r.prompt, r.target) for r in records]
        found = pk.isolated_map(
            self.probe,
            examples,
            method=self.options.method,
            sample=self.options.check,
            progress=False,
        )
        self.probe.history.clear()  # the loop method records every step; keep memory flat
        residual = found.residual.relative if found.residual is not None else None
        watch = _watch_columns(records, found) if self.options.watch_matrix else None
        columns = _columns(records, found)
        return ShardResult(
            shard.index, columns, watch, tuple(skipped), residual, self.model_commit, self.lora
        )

    def _encodable(self, records: tuple[Record, ...]) -> tuple[list[Record], list[BadLine]]:
        """The records the tokenizer accepts; the others are skipped or fatal."""
        good, bad = [], []
        for r in records:
            try:
                self.probe.encode(pk.Example(r.prompt, r.target))
            except InputError as err:
                if not self.skip_bad:
                    raise InputError(
                        f"line {r.line}: {err}; fix it, or pass --on-bad-line skip"
                    ) from err
                bad.append(BadLine(r.line, str(err)))
            else:
                good.append(r)
        return good, bad


def _build_probe(
    options: SweepOptions, model: Any, tokenizer: Any, watch: WatchSet
) -> tuple[pk.Probe, dict[str, Any] | None]:
    """The probe the options describe, and its adapters' configuration (None: no LoRA)."""
    settings: dict[str, Any] = {
        "optimizer": options.optimizer,
        "lr": options.lr,
        "steps": options.steps,
        "momentum": options.momentum,
        "weight_decay": options.weight_decay,
        "layers": options.layers,
        "pattern": options.pattern,
        "watch": [pk.Example(w.prompt, w.target) for w in watch.items],
        "check_memory": options.check_memory,
    }
    if options.lora_r is None:
        return pk.Probe(model, tokenizer, **settings), None
    probe = pk.LoraProbe(
        model,
        tokenizer,
        r=options.lora_r,
        alpha=options.lora_alpha,
        target_modules=options.lora_target,
        seed=options.lora_seed,
        **settings,
    )
    return probe, probe.lora_settings()


def _columns(records: list[Record], found: Any) -> dict[str, list[Any]]:
    rows = found.rows if found is not None else ()
    return {
        "index": [r.index for r in records],
        "line": [r.line for r in records],
        "prompt": [r.prompt for r in records],
        "target": [r.target for r in records],
        "update_size": [row.update_size for row in rows],
        "loss_before": [row.loss_before for row in rows],
        "loss_drop": [row.loss_drop for row in rows],
        "disturbance": [row.disturbance for row in rows],
    }


def _watch_columns(records: list[Record], found: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        "index": [],
        "line": [],
        "watch": [],
        "watch_label": [],
        "kl": [],
        "dlogp": [],
        "top1_flip": [],
    }
    for i, record in enumerate(records):
        for j, label in enumerate(found.watch_labels if found is not None else ()):
            out["index"].append(record.index)
            out["line"].append(record.line)
            out["watch"].append(j)
            out["watch_label"].append(label)
            out["kl"].append(float(found.kl[i][j]))
            out["dlogp"].append(float(found.dlogp[i][j]))
            out["top1_flip"].append(bool(found.top1_flip[i][j]))
    return out
