"""Python-side time of the ProbeBoard per step, as a share of ``probe.step`` (demo model).

The board's own work per step: the click handler (read controls, hand the request to the
worker), the result listener (panel rows, chart messages) and the report when the
request ends (status, controls re-enabled). It is measured inside the board and compared
with the time of bare ``probe.step`` calls, alternating, in one run (the bare steps run
on a second copy of the model, without a board; one torch thread for both). Times are
CPU times of the threads doing the work (``time.thread_time``), so that a busy shared
machine does not count other processes' time against either side. Also
printed: the click-to-idle wall time against the bare step, the chart bytes per step,
and the cost of the trajectory distances measured after each Commit.

    python bench/board.py [--steps 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import probekit as pk
from probekit.widgets.board import ProbeBoard, Timing

WATCH = [
    pk.Example("3 plus 4 is", " 7"),
    pk.Example("5 plus 2 is", " 7"),
    pk.Example("the cat says", " meow"),
    pk.Example("the colour of the sky is", " blue"),
]
EXAMPLE = pk.Example("2 plus 2 is", " 5")


def board_step(board: ProbeBoard, button: object, timing: list[float]) -> float:
    """One click until idle; returns the wall time and adds the click's CPU time."""
    start, cpu = time.perf_counter(), time.thread_time()
    button.click()  # type: ignore[attr-defined]
    timing.append(time.thread_time() - cpu)
    board.wait(60)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    model, tok = pk.load_demo()
    probe = pk.Probe(model, tok, optimizer="sgd", lr=0.01, watch=WATCH, token_grad=True)
    board = ProbeBoard(probe, prompt=EXAMPLE.prompt, target=EXAMPLE.target)
    plain = pk.Probe(*pk.load_demo(), optimizer="sgd", lr=0.01, watch=WATCH, token_grad=True)
    for _ in range(5):  # warm up both paths
        plain.step(EXAMPLE)
        board_step(board, board.actions.probe, [])

    bare, bare_walls, walls, clicks = [], [], [], []
    board.timing, board.runner.overhead = Timing(), 0.0
    for _ in range(args.steps):
        start, wall = time.thread_time(), time.perf_counter()
        plain.step(EXAMPLE)
        bare.append(time.thread_time() - start)
        bare_walls.append(time.perf_counter() - wall)
        walls.append(board_step(board, board.actions.probe, clicks))
    n = args.steps
    step = statistics.median(bare)
    own = (board.timing.handler + board.runner.overhead + sum(clicks)) / n
    sent = sum(c.bytes_sent for c in board.charts.values())
    print(f"demo model, {len(WATCH)} watch items, {n} isolated steps (Probe clicks):")
    print(f"  bare probe.step (median CPU)      {step * 1e3:8.2f} ms")
    print(f"  board's own Python time per step  {own * 1e3:8.2f} ms")
    listener, click = board.timing.handler / n, sum(clicks) / n
    report = board.runner.overhead / n
    print(
        f"    listener {listener * 1e3:.2f} ms, click {click * 1e3:.2f} ms, "
        f"report {report * 1e3:.2f} ms"
    )
    print(f"  board time / probe.step           {own / step:8.1%}   (target <= 10%)")
    wall_ratio = statistics.median(walls) / statistics.median(bare_walls)
    print(f"  click-to-idle wall / probe.step   {wall_ratio:8.2f}x   (wall clock)")
    print(f"  chart bytes sent per step         {sent / (n + 5):8.0f} B")

    board.timing, board.runner.overhead = Timing(), 0.0
    start = time.thread_time()
    board.feed([EXAMPLE] * n, commit=False)
    fed = time.thread_time() - start
    board.wait(600)
    feed_own = (board.timing.handler + board.runner.overhead + fed) / n
    print(f"a feed of {n} isolated steps:")
    print(f"  board's own Python time per step  {feed_own * 1e3:8.2f} ms")
    print(f"  board time / probe.step           {feed_own / step:8.1%}   (target <= 10%)")

    board_step(board, board.actions.commit, [])  # the first commit needs no distances
    board.path.seconds, commits = 0.0, 10
    for _ in range(commits):
        board_step(board, board.actions.commit, [])
    each = board.path.seconds / commits
    print(
        f"  trajectory distances after a Commit: {each * 1e3:.2f} ms = {each / step:.1%} of "
        "probe.step (once per request, not per feed step)"
    )
    board.close()


if __name__ == "__main__":
    main()
