"""Click → chart latency of the ProbeBoard in a real browser (JupyterLab + Chromium, demo model).

A real click on the board's Probe button, timed in the page from the click event to the moment
the timeline's SVG holds the new step's mark (a MutationObserver on the chart); the median of
``--clicks`` clicks after a warm-up. To see where the time goes, the same run also measures:

- the widget round trip on this machine: a click on a plain ipywidgets Button whose handler
  changes a Label, until the page shows the new text (browser → Jupyter server → kernel → back);
- bare ``probe.step`` on the same model and example in the same kernel (a second probe with no
  board), back to back ("hot": the model stays in the CPU caches) and one every 0.3 s ("spaced",
  as clicks come), before and after the clicks.

The browser set-up is the browser tests' (tests/browser/conftest.py): JupyterLab on 127.0.0.1,
Debian's Chromium, every other host blocked.

    python bench/board_latency.py [--clicks 20] [--warmup 3] [--pause-ms 500] [--busy-status-only]

``--busy-status-only`` is a what-if: the board's buttons are not disabled while a step runs
(only the status line says busy), to show what those widget updates cost on the way.

It runs through pytest so that it shares those fixtures (Chromium and Playwright are needed;
see tests/browser/conftest.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLICKS = "PROBEKIT_BENCH_CLICKS"
WARMUP = "PROBEKIT_BENCH_WARMUP"
STATUS_ONLY = "PROBEKIT_BENCH_BUSY_STATUS_ONLY"
PAUSE = "PROBEKIT_BENCH_PAUSE_MS"

ECHO = """\
import ipywidgets as widgets

echo_button = widgets.Button(description="Echo")
echo_label = widgets.Label("0")
echo_button.on_click(lambda _b: setattr(echo_label, "value", str(int(echo_label.value) + 1)))
widgets.HBox([echo_button, echo_label])
"""
BARE = """\
import statistics, time

plain = pk.Probe(model, tok, optimizer="sgd", lr=0.003, watch=watch, token_grad=True)
example = pk.Example("2 plus 2 is", " 5")
hot, spaced = [], []

def bare(n, gap):
    times = []
    for _ in range(n):
        time.sleep(gap)
        start = time.perf_counter()
        plain.step(example)
        times.append((time.perf_counter() - start) * 1e3)
    return times

# kernel side of each click: from the click reaching Python to the timeline's new rows sent
clicked_at, sent_at = [], []
board.actions.probe.on_click(lambda _b: clicked_at.append(time.perf_counter()))
timeline = board.charts["timeline"]
timeline_append = timeline.append

def timed_append(rows):
    timeline_append(rows)
    sent_at.append(time.perf_counter())

timeline.append = timed_append
if {status_only}:  # what-if: busy shown on the status line only, no buttons toggled
    board.runner._on_busy = lambda busy, name: board.status.set_busy(busy, name)

bare(3, 0)
hot += bare({n}, 0)
spaced += bare({n}, 0.3)
"""
REPORT = """\
hot += bare({n}, 0)
spaced += bare({n}, 0.3)
listener = board.timing.handler / max(board.timing.results, 1) * 1e3
kernel = [(s - c) * 1e3 for c, s in zip(clicked_at, sent_at, strict=True)]
print(statistics.median(hot), statistics.median(spaced), min(hot), max(spaced), listener)
print(*kernel)
"""
# Resolves with the time the echo label first shows `text`.
ECHOED_AT = """([text]) => {
    const label = [...document.querySelectorAll('.widget-label')].find(
        (l) => /^\\d+$/.test(l.textContent));
    window.probekitTest.drawn = new Promise((resolve) => {
        const observer = new MutationObserver(() => {
            if (label.textContent === text) { observer.disconnect(); resolve(performance.now()); }
        });
        observer.observe(label, { subtree: true, childList: true, characterData: true });
    });
}"""


def echo_round_trips(board: Any, n: int) -> list[float]:
    """Milliseconds from a click on the Echo button to its label's new text in the page."""
    button = board.page.locator("button.jupyter-button", has_text="Echo")
    times = []
    for i in range(1, n + 1):
        board.page.evaluate(ECHOED_AT, [str(i)])
        button.click()
        drawn = float(board.page.evaluate("() => window.probekitTest.drawn"))
        times.append(drawn - float(board.page.evaluate("() => window.probekitTest.clickedAt")))
        board.page.wait_for_timeout(100)
    return times


def test_click_to_chart_latency(lab, lab_page):
    from tests.browser.board_page import SETUP, BoardPage

    clicks, warmup = int(os.environ.get(CLICKS, "20")), int(os.environ.get(WARMUP, "3"))
    half = max(clicks // 2, 1)
    pause_ms = int(os.environ.get(PAUSE, "500"))  # between clicks, as a person clicks
    status_only = os.environ.get(STATUS_ONLY) == "1"
    bare_cell = BARE.format(n=half, status_only=status_only)
    cells = [SETUP, ECHO, bare_cell, REPORT.format(n=half)]
    lab.write_notebook("latency.ipynb", cells)
    lab_page.open_notebook("latency.ipynb")
    board = BoardPage(lab_page)
    board.show()
    lab_page.run_cells(1, 2)
    for step in range(warmup):
        board.press("Probe", step)
    measured = []
    for step in range(warmup, warmup + clicks):
        board.page.wait_for_timeout(pause_ms)
        measured.append(board.press("Probe", step))
    echo = echo_round_trips(board, clicks)
    lab_page.run_cells(3)
    summary, per_click = lab_page.cell_text(3).strip().split("\n")
    hot, spaced, hot_min, spaced_max, listener = map(float, summary.split())
    kernel = [float(ms) for ms in per_click.split()][warmup:]
    outside = [total - inside for total, inside in zip(measured, kernel, strict=True)]
    lab_page.assert_clean()

    n, median = 2 * half, statistics.median(measured)
    rows = [
        (f"click → timeline mark drawn, median of {clicks} Probe clicks", median, ""),
        ("  in the kernel: click received → timeline rows sent", statistics.median(kernel), ""),
        ("  the rest: browser → kernel → browser, drawing", statistics.median(outside), ""),
        (f"widget round trip (Button → Label), median of {clicks}", statistics.median(echo), ""),
        (f"bare probe.step, hot (back to back), median of {n}", hot, f"min {hot_min:.1f}"),
        (f"bare probe.step, one every 0.3 s, median of {n}", spaced, f"max {spaced_max:.1f}"),
        ("the board's result listener per step (rows, messages)", listener, ""),
    ]
    what_if = " [what-if: buttons not toggled while busy]" if status_only else ""
    print(f"\ndemo model, 3 watch items, one isolated SGD step per click ({os.cpu_count()} cores)")
    print(f"  {pause_ms} ms pause between clicks{what_if}")
    for label, ms, extra in rows:
        print(f"  {label:<58} {ms:7.1f} ms  {extra}")
    print("  Probe clicks (ms): " + ", ".join(f"{ms:.0f}" for ms in measured))
    print(f"  latency / hot bare step: {median / hot:.1f}x; target: latency <= 100 ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pause-ms", type=int, default=500, help="between clicks")
    parser.add_argument(
        "--busy-status-only",
        action="store_true",
        help="what-if: show busy on the status line only (the board's buttons are not toggled)",
    )
    args = parser.parse_args()
    os.environ[CLICKS], os.environ[WARMUP] = str(args.clicks), str(args.warmup)
    os.environ[PAUSE] = str(args.pause_ms)
    os.environ[STATUS_ONLY] = "1" if args.busy_status_only else "0"
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import pytest

    flags = ["-q", "-s", "-p", "no:cacheprovider", "-p", "tests.browser.conftest"]
    return int(pytest.main([*flags, str(Path(__file__).resolve())]))


if __name__ == "__main__":
    sys.exit(main())
