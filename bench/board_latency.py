"""Click → chart latency of the ProbeBoard in a real browser (JupyterLab + Chromium, demo model).

A real click on the board's Probe button, timed in the page from the click event to the moment
the timeline's SVG holds the new step's mark (a MutationObserver on the chart); the median of
``--clicks`` clicks after a warm-up. For comparison, the same kernel times bare ``probe.step``
calls on the same example (a second copy of the demo model, no board), before and after the
clicks, in the same run. The browser set-up is the browser tests' (tests/browser/conftest.py):
JupyterLab on 127.0.0.1, Debian's Chromium, every other host blocked.

    python bench/board_latency.py [--clicks 20] [--warmup 3]

It runs through pytest so that it shares those fixtures (Chromium and Playwright are needed;
see tests/browser/conftest.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLICKS = "PROBEKIT_BENCH_CLICKS"
WARMUP = "PROBEKIT_BENCH_WARMUP"

BARE = """\
import statistics, time

plain = pk.Probe(*pk.load_demo(), optimizer="sgd", lr=0.003, watch=watch, token_grad=True)
example = pk.Example("2 plus 2 is", " 5")
bare_ms = []

def bare(n):
    for _ in range(n):
        start = time.perf_counter()
        plain.step(example)
        bare_ms.append((time.perf_counter() - start) * 1e3)

bare(3); bare_ms.clear()
bare({n})
"""
REPORT = """\
bare({n})
listener_ms = board.timing.handler / max(board.timing.results, 1) * 1e3
print(statistics.median(bare_ms), min(bare_ms), max(bare_ms), listener_ms)
"""


def test_click_to_chart_latency(lab, lab_page):
    from tests.browser.board_page import SETUP, BoardPage

    clicks, warmup = int(os.environ.get(CLICKS, "20")), int(os.environ.get(WARMUP, "3"))
    half = max(clicks // 2, 1)
    lab.write_notebook("latency.ipynb", [SETUP, BARE.format(n=half), REPORT.format(n=half)])
    lab_page.open_notebook("latency.ipynb")
    board = BoardPage(lab_page)
    board.show()
    lab_page.run_cells(1)
    for step in range(warmup):
        board.press("Probe", step)
    measured = [board.press("Probe", step) for step in range(warmup, warmup + clicks)]
    lab_page.run_cells(2)
    bare_median, bare_min, bare_max, listener = map(float, lab_page.cell_text(2).split())
    lab_page.assert_clean()

    median = statistics.median(measured)
    print()
    print(f"demo model, 3 watch items, one isolated SGD step per click ({os.cpu_count()} cores)")
    print(f"  click → timeline mark drawn, median of {clicks} Probe clicks: {median:7.1f} ms")
    print(f"    min {min(measured):.1f} ms, max {max(measured):.1f} ms, all: "
          + ", ".join(f"{ms:.0f}" for ms in measured))  # fmt: skip
    print(f"  bare probe.step in the same kernel, median of {2 * half}: {bare_median:7.1f} ms")
    print(f"    min {bare_min:.1f} ms, max {bare_max:.1f} ms")
    print(f"  the board's result listener (panel rows, chart messages): {listener:.1f} ms/step")
    print(f"  latency / bare step: {median / bare_median:.1f}x (target: latency <= 100 ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    os.environ[CLICKS], os.environ[WARMUP] = str(args.clicks), str(args.warmup)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import pytest

    flags = ["-q", "-s", "-p", "no:cacheprovider", "-p", "tests.browser.conftest"]
    return int(pytest.main([*flags, str(Path(__file__).resolve())]))


if __name__ == "__main__":
    sys.exit(main())
