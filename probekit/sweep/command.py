"""The ``probekit sweep`` subcommand: its options, and running it (formats: docs/sweep.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sweep`` and its options to the ``probekit`` command's subcommands."""
    p = sub.add_parser(
        "sweep",
        help="probe every example of a JSONL dataset alone; write Parquet (resumable)",
        description="Probe every example of a JSONL dataset alone from the model's weights "
        "and write one Parquet row per example. Re-running the same command resumes an "
        "interrupted sweep. Formats: docs/sweep.md.",
    )
    p.add_argument(
        "dataset", type=Path, help='JSONL file, one {"prompt": ..., "target": ...} a line'
    )
    p.add_argument("--watch", type=Path, help="watch prompts: .jsonl (prompt, target) or text")
    p.add_argument("--out", type=Path, required=True, help="output folder (parts, results)")
    p.add_argument("--model", default="demo", help="hub id, local folder, or demo (default)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--dtype", help="fp32 (default), bf16 or fp16")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=1, help="optimizer steps per example")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--layers", help="comma-separated block indices or labels to step")
    p.add_argument("--pattern", help="regex on parameter names to step")
    p.add_argument("--method", default="exact", choices=["exact", "first_order", "loop"])
    p.add_argument(
        "--check",
        type=int,
        default=8,
        help="first_order: examples per shard checked against exact (0: none)",
    )
    p.add_argument(
        "--lora-r",
        type=int,
        help="probe LoRA adapters of this rank attached to the model, not its weights",
    )
    p.add_argument("--lora-alpha", type=float, help="LoRA alpha (default: 2 x rank)")
    p.add_argument(
        "--lora-target",
        help="comma-separated modules to adapt, e.g. q_proj,v_proj (default: peft's choice)",
    )
    p.add_argument("--lora-seed", type=int, default=0, help="seed of the adapters' initialisation")
    p.add_argument(
        "--no-check-memory",
        action="store_true",
        help="build the probe even if its step is estimated not to fit in free memory",
    )
    p.add_argument("--shard-size", type=int, default=256, help="examples per shard")
    p.add_argument(
        "--watch-matrix",
        action="store_true",
        help="also write watch.parquet: one row per (example, watch item)",
    )
    p.add_argument("--on-bad-line", default="error", choices=["skip", "error"])
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster to join (default: start a local one)")
    p.add_argument("--workers", type=int, help="Ray worker actors (default: one per GPU/CPU)")
    p.add_argument("--restart", action="store_true", help="discard a previous sweep in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``probekit sweep``; 0 when done, 2 when the input or settings are refused."""
    from probekit.errors import ProbekitError
    from probekit.sweep import SweepOptions, run_sweep
    from probekit.sweep.options import parse_layers, parse_names

    try:
        options = SweepOptions(
            model=args.model,
            revision=args.revision,
            dtype=args.dtype,
            device=args.device,
            optimizer=args.optimizer,
            lr=args.lr,
            steps=args.steps,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            layers=parse_layers(args.layers),
            pattern=args.pattern,
            method=args.method,
            check=args.check,
            shard_size=args.shard_size,
            watch_matrix=args.watch_matrix,
            lora_r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_target=parse_names(args.lora_target),
            lora_seed=args.lora_seed,
            check_memory=not args.no_check_memory,
        )
        summary = run_sweep(
            args.dataset,
            args.out,
            options,
            watch=args.watch,
            on_bad_line=args.on_bad_line,
            engine=args.engine,
            address=args.address,
            workers=args.workers,
            restart=args.restart,
            progress=not args.no_progress,
        )
    except ProbekitError as err:
        print(f"probekit sweep: {err}", file=sys.stderr)
        return 2
    print(
        f"{summary.examples} examples in {summary.shards} shards "
        f"({summary.computed} computed now), {summary.bad_lines} bad line(s) skipped"
    )
    print(f"  {summary.results}")
    if summary.watch is not None:
        print(f"  {summary.watch}")
    return 0
