"""The prepared GPU benchmark still runs: ``bench/gpu.py --smoke`` at tiny sizes on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_gpu_benchmark_smoke_run():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "bench/gpu.py", "--smoke", "--only", "gpt2", "--device", "cpu"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("RATIO gpt2-small probe.step / bare loop", "isolated_map speed-up",
                 "IG (4 steps", "MEMORY gpt2-small"):  # fmt: skip
        assert line in done.stdout, done.stdout
