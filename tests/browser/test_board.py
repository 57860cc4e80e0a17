"""The ProbeBoard end to end in a real JupyterLab and Chromium, offline.

Real clicks on the rendered buttons and marks; every check reads the rendered page (the rows
behind the SVG marks, the titles, the status line).
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.browser.board_page import FEED, SETUP, BoardPage

pytestmark = pytest.mark.slow

HISTORY = "print(len(board.probe.history), board.runner.busy)"
# A feed of 30 one-step examples takes about half a second on the demo model: with a few
# optimizer steps per example it runs long enough for a person (and this test) to stop it.
SLOWER = "board.settings.steps.value = 8"


def test_board_steps_selects_feeds_and_stops_in_the_browser(lab, lab_page, tmp_path):
    lab.write_notebook("board.ipynb", [SETUP, HISTORY, SLOWER])
    lab_page.open_notebook("board.ipynb")
    board = BoardPage(lab_page)
    board.show()
    assert board.status().state.startswith("idle · probekit demo · cpu · float32")

    # Probe three times, Commit twice: five steps, each drawn as it lands
    latencies = [board.press("Probe", step) for step in range(3)]
    latencies += [board.press("Commit", step) for step in (3, 4)]
    print("click → timeline mark drawn (ms):", ", ".join(f"{ms:.0f}" for ms in latencies))
    timeline = board.rows("timeline")
    assert board.steps("timeline") == {0, 1, 2, 3, 4}
    kinds = {row["step"]: row["kind"] for row in timeline}
    assert kinds == {0: "isolated", 1: "isolated", 2: "isolated", 3: "committed", 4: "committed"}
    heatmap = board.rows("layers")
    columns = {round(row["x"], 3) for row in heatmap}
    layers = {row["layer"] for row in heatmap}
    assert board.steps("layers") == {0, 1, 2, 3, 4} and len(columns) == 5
    assert len(heatmap) == 5 * len(layers) and "block.0" in layers  # every cell drawn

    # the newest step is shown in every panel until another one is clicked
    for panel in ("watch", "topk", "drift"):
        assert board.steps(panel) == {4}, panel

    # a 30-example feed, stopped mid-run: fewer steps ran, the board is idle again
    lab_page.run_cells(2)
    board.output.locator("textarea").fill(FEED)
    board.button("Feed list").click()
    progress = board.output.get_by_text(re.compile(r"^\d+ / 30$"))
    board.page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-OutputArea-output .widget-label')].some(
            (l) => /^([2-9]|[12]\\d) \\/ 30$/.test(l.textContent))""",
        timeout=60_000,
    )
    board.button("Stop").click()
    status = board.wait_idle(r"^feed: \d+ of 30 steps taken")
    match = re.match(r"^feed: (\d+) of 30 steps taken \(stopped\)$", status.message)
    assert match, f"the feed ran to the end before Stop took effect: {status.message!r}"
    fed = int(match.group(1))
    assert 2 <= fed < 30
    assert progress.text_content() == f"{fed} / 30"
    assert board.button("Stop").is_disabled() and board.button("Probe").is_enabled()
    board.wait_steps("timeline", 5 + fed)
    assert board.steps("timeline") == set(range(5 + fed))
    lab_page.run_cells(1)
    assert lab_page.cell_text(1).split() == [str(5 + fed), "False"]

    # click a step in the timeline: every panel shows it (titles and data)
    newest = 4 + fed
    assert board.steps("watch") == {newest}
    board.click_step(4)
    board.wait_shown(4)
    for panel in ("watch", "topk", "drift"):
        assert board.steps(panel) == {4}, panel
    for name, titles in board.titles().items():
        assert len(titles) == 1, f"{name}: one title per panel, not {titles}"
        if name != "tokens":
            assert titles[0].endswith("— step 4"), titles

    # a cell of the heatmap selects too, and the timeline's step again after it
    board.click_step(newest - 1, "layers")
    board.wait_shown(newest - 1)
    board.click_step(4)
    board.wait_shown(4)

    # token attribution of the prompt fills the last panel (it takes one more isolated step)
    board.button("Token attribution").click()
    board.page.wait_for_function(
        "() => window.probekitTest.items('token attribution').length > 0", timeout=60_000
    )
    board.wait_idle()
    assert board.steps("watch") == {4}  # the selection holds while new steps arrive

    assert board.page.locator(".probekit-error:visible").count() == 0
    shot = tmp_path / "board.png"
    board.screenshot(str(shot))
    if os.environ.get("PROBEKIT_BOARD_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["PROBEKIT_BOARD_SCREENSHOT"])
    lab_page.assert_clean()

    # and the guard is live: a request to another host is refused and counted
    outcome = board.page.evaluate(
        "() => fetch('http://192.0.2.1/offline-check').then(() => 'sent', () => 'refused')"
    )
    assert outcome == "refused" and lab_page.blocked == ["http://192.0.2.1/offline-check"]
