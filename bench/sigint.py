"""Real Ctrl-C at random moments while probing the demo model: the promise holds after each.

Each trial takes one probe step (isolated or committed, alternating at random) on the
embedded demo model with Adam, while a timer thread sends this process a real SIGINT
at a random moment inside the step. After the interrupt, the model's fingerprint must
equal the state before the step — or, if the commit was recorded before the interrupt
landed, ``undo()`` must return to it. Every 25 trials, ``reset()`` must return to the
fingerprint of the start.

    python -m bench.sigint [--trials 3000] [--seed 0] [--json]

The last line is a JSON summary with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

import probekit as pk

EXAMPLES = [
    pk.Example("2 plus 2 is", " 4"),
    pk.Example("the dog says", " woof"),
    pk.Example("bob lives in", " paris"),
]
RESET_EVERY = 25


def _step_time(probe: pk.Probe) -> float:
    times = []
    for commit in (False, True, False, True):
        start = time.perf_counter()
        probe.step(EXAMPLES[0], commit=commit)
        times.append(time.perf_counter() - start)
    probe.reset()
    return sorted(times)[len(times) // 2]


def run(trials: int, seed: int) -> dict[str, object]:
    torch.set_num_threads(1)
    model, tok = pk.load_demo(device="cpu")
    probe = pk.Probe(
        model,
        tok,
        optimizer="adam",
        lr=1e-3,
        watch=["the cat says", pk.Example("alice lives in", " rome")],
    )
    origin = probe.fingerprint()
    typical = _step_time(probe)
    rng = random.Random(seed)
    counts = {"interrupted": 0, "landed_after_step": 0, "committed_then_interrupted": 0,
              "rolled_back": 0, "isolated_interrupted": 0, "resets": 0}  # fmt: skip
    violations: list[str] = []
    reset_ok = True
    main = threading.main_thread().ident
    assert main is not None
    for trial in range(trials):
        if trial % RESET_EVERY == RESET_EVERY - 1:
            probe.reset()
            counts["resets"] += 1
            if probe.fingerprint().differences(origin):
                reset_ok = False
                violations.append(f"trial {trial}: reset() did not return to the start")
        commit = rng.random() < 0.5
        example = rng.choice(EXAMPLES)
        before = probe.fingerprint()
        n_before = len(probe.committed)
        # a real SIGINT, sent to the main thread as a terminal's Ctrl-C is (os.kill could
        # hand it to the timer's thread, and the main thread would only see it late)
        timer = threading.Timer(
            rng.uniform(0.0, typical), signal.pthread_kill, (main, signal.SIGINT)
        )
        completed = False
        try:
            timer.start()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probe.step(example, commit=commit)
            completed = True
            for _ in range(600):  # the signal lands here when the step beat the timer
                time.sleep(0.05)
            violations.append(f"trial {trial}: no SIGINT arrived")
        except KeyboardInterrupt:
            pass
        timer.join()
        n_now = len(probe.committed)
        if completed:
            counts["landed_after_step"] += 1
            continue
        counts["interrupted"] += 1
        if n_now == n_before + 1 and commit:
            counts["committed_then_interrupted"] += 1
            probe.undo()
        elif n_now == n_before:
            counts["rolled_back" if commit else "isolated_interrupted"] += 1
        else:
            violations.append(f"trial {trial}: {n_before} commits before, {n_now} after")
            continue
        differences = probe.fingerprint().differences(before)
        if differences:
            violations.append(f"trial {trial} (commit={commit}): {differences} differ")
    probe.reset()
    if probe.fingerprint().differences(origin):
        reset_ok = False
        violations.append("final reset() did not return to the start")
    if not probe.step(EXAMPLES[0]).ok:
        violations.append("the probe no longer steps")
    return {"trials": trials, "step_seconds": round(typical, 4), **counts,
            "reset_ok": reset_ok, "violations": violations}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args()
    start = time.perf_counter()
    report = run(args.trials, args.seed)
    elapsed = time.perf_counter() - start
    if args.json:
        print(json.dumps(report))
        return
    for key, value in report.items():
        print(f"{key:>28}: {value}")
    print(f"{'seconds':>28}: {elapsed:.1f}")


if __name__ == "__main__":
    main()
