"""Session files at scale: file size, save and load time, and peak memory of a load.

Builds a synthetic history shaped like probes of a GPT-2-small-sized model (148
parameter tensors over 12 blocks, 8 watch prompts with top-5 and per-layer drift),
saves it, then loads it in fresh interpreters and reports each load's time and peak
resident memory over the interpreter's own baseline: ``pk.load_session`` next to a bare
``json.loads`` of the whole text (the least any whole-document reader pays, before it
builds a single result), measured in the same run.

    python bench/session_file.py [--steps 5000]
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from probekit.results import session_file
from probekit.results.probe import LayerDrift, ProbeResult, TensorDelta, WatchRow

CHILD = """
import json, sys, time
def peak():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
import probekit.results.session_file as sf
import numpy  # imported by the depth check: not part of the load itself
base = peak()
t0 = time.perf_counter()
if sys.argv[2] == "plain":
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.loads(f.read())
    n = len(doc["results"])
else:
    n = len(sf.load_session(sys.argv[1], max_bytes=None).results)
print(n, time.perf_counter() - t0, base, peak())
"""


def synthetic(steps: int, seed: int = 0) -> list[ProbeResult]:
    rng = random.Random(seed)
    names = [f"transformer.h.{b}.{p}" for b in range(12) for p in _BLOCK]
    names += ["transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight"]
    names += ["transformer.ln_f.bias"]
    layers = [f"h.{b}" for b in range(12)]
    out = []
    for step in range(steps):
        tensors = tuple(
            TensorDelta(
                name=n,
                layer=n.split(".")[1] + "." + n.split(".")[2] if ".h." in n else "embed",
                numel=rng.randrange(768, 2_400_000),
                sum_sq=rng.random(),
                sum_abs=rng.random() * 100,
                max_abs=rng.random() / 100,
                changed=rng.randrange(0, 2_000_000),
                lost=rng.randrange(0, 100),
                theta_sq=rng.random() * 1000,
                grad_sq=rng.random(),
            )
            for n in names
        )
        watch = tuple(
            WatchRow(
                label=f"watch prompt {i} → target",
                prompt=f"watch prompt {i}",
                target=" target",
                is_example=False,
                kl=rng.random(),
                dlogp_target=rng.random() - 0.5,
                top1_flip=rng.random() < 0.1,
                logit_l2=rng.random(),
                topk_before=tuple((f" tok{k}", rng.random()) for k in range(5)),
                topk_after=tuple((f" tok{k}", rng.random()) for k in range(5)),
                drift=tuple(LayerDrift(la, rng.random(), rng.random()) for la in layers),
            )
            for i in range(8)
        )
        out.append(
            ProbeResult(
                step=step,
                committed=step % 2 == 0,
                status="ok",
                prompt=f"example prompt number {step}",
                target=" answer",
                target_tokens=(" answer",),
                optimizer="sgd",
                lr=1e-3,
                steps=1,
                loss_before=rng.random() * 5,
                loss_after=rng.random() * 5,
                token_nll_before=(rng.random(),),
                token_nll_after=(rng.random(),),
                tensors=tensors,
                watch=watch,
                self_influence=math.nan,
            )
        )
    return out


_BLOCK = [
    "ln_1.weight",
    "ln_1.bias",
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    results = synthetic(args.steps)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.probekit.json"
        t0 = time.perf_counter()
        session_file.save(path, results, {"model": "synthetic gpt2-small shape"})
        saved = time.perf_counter() - t0
        size = path.stat().st_size
        del results
        loads = {reader: _load(path, reader) for reader in ("plain", "load_session")}
    mib = 1024**2
    print(f"steps={args.steps} file={size / mib:.1f} MiB save={saved:.1f} s")
    for reader, (seconds, added) in loads.items():
        print(
            f"{reader:>12}: {seconds:.1f} s, peak memory +{added / mib:.0f} MiB "
            f"({added / size:.1f}x the file)"
        )
    (t0, m0), (t1, m1) = loads["plain"], loads["load_session"]
    print(f"load_session / plain json.loads: time {t1 / t0:.2f}x, memory {m1 / m0:.2f}x")


def _load(path: Path, reader: str) -> tuple[float, int]:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), reader],
        capture_output=True,
        text=True,
        check=True,
    )
    _, seconds, base, peak = child.stdout.split()
    return float(seconds), int(peak) - int(base)


if __name__ == "__main__":
    main()
