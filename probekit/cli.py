"""The ``probekit`` command: ``probekit demo`` runs the scripted session on the demo model;
``probekit sweep`` probes every example of a JSONL dataset and writes Parquet (docs/sweep.md)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from probekit.sweep import command as sweep_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="probekit", description="Step-by-step probing of LMs.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="probe the embedded demo model and write a report")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"), help="report folder")
    sweep_command.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.out)
    if args.command == "sweep":
        return sweep_command.run(args)
    return 2  # pragma: no cover - argparse already rejects unknown commands


def _demo(out: Path) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from probekit import showcase

    start = time.perf_counter()
    print("probekit demo: probing the embedded demo model (offline, CPU)")
    report = showcase.run(out)
    print(f"\nreport written in {time.perf_counter() - start:.1f} s:")
    print(f"  {report.index.resolve()}   (open it in a browser)")
    print(f"  {(report.directory / 'session.probekit.json').resolve()}")
    print("explore it yourself in JupyterLab:")
    print(f"  {_jupyter()} lab notebooks/01_quickstart.ipynb{_root_flag()}")
    return 0 if report.restored else 1


def _jupyter() -> str:
    """The jupyter command of this environment, relative to the working folder when inside it."""
    exe = Path(sys.executable).with_name("jupyter")
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def _root_flag() -> str:
    """Jupyter refuses to run as root (containers, CI) unless told it may."""
    geteuid = getattr(os, "geteuid", None)
    return " --allow-root" if geteuid is not None and geteuid() == 0 else ""


if __name__ == "__main__":
    sys.exit(main())
