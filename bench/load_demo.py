"""How long ``probekit.load_demo()`` takes, next to the cost of importing the model code.

Runs each measurement in a fresh interpreter (nothing cached in memory) and prints
the load time itself, the import baseline measured in the same run, and their ratio.

    python bench/load_demo.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROGRAM = """
import os, time
os.environ["HF_HUB_OFFLINE"] = "1"
t0 = time.perf_counter()
import torch, transformers  # the baseline every Hugging Face user pays:
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast  # the model code
t1 = time.perf_counter()
import probekit
model, tok = probekit.load_demo()
t2 = time.perf_counter()
probekit.load_demo()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True)
        out.check_returncode()
        runs.append([float(x) for x in out.stdout.split()])
    imports, first, second = (statistics.median(col) for col in zip(*runs, strict=True))
    print(f"import torch, transformers, GPT-2 code: {imports:.2f} s (baseline)")
    print(f"load_demo(), first call:     {first:.2f} s  (target < 2 s)")
    print(f"load_demo(), second call:    {second:.2f} s")
    print(f"RATIO first load_demo / imports = {first / imports:.2f}")


if __name__ == "__main__":
    main()
