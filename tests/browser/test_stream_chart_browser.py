"""StreamChart in a real JupyterLab and Chromium: rows stream in, clicks reach Python, offline."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

SETUP = """\
import altair as alt
from probekit.widgets.stream_chart import StreamChart

spec = (
    alt.Chart(alt.NamedData("rows"))
    .mark_circle(size=400)
    .encode(
        x="step:Q",
        y="v:Q",
        opacity=alt.condition("datum.step === selected_step", alt.value(1.0), alt.value(0.35)),
    )
    .add_params(alt.param(name="selected_step", value=None))
    .properties(width=500, height=200)
    .to_dict()
)
chart = StreamChart(spec, title="<b>streamed</b> rows")
chart.append([{"step": s, "v": float(s * s)} for s in range(5)])
chart
"""
APPEND = """\
for s in range(5, 8):
    chart.append([{"step": s, "v": float(s * s)}])
print("rows", len(chart.rows))
"""
SHOW_SELECTED = 'print("selected", chart.selected)'
SELECT = "chart.select(6)"
SHOW_AGAIN = "chart"
WINDOWED = """\
small = StreamChart(spec, window=10, title="window of 10 steps")
display(small)
for s in range(60):
    small.append([{"step": s, "v": float(s)}])
print("steps", sorted(r["step"] for r in small.rows))
"""

MARKS = ".probekit-stream-chart g.mark-symbol path"
# true once the one fully opaque mark (the selected_step condition) is the given step
HIGHLIGHTED = """([sel, step]) => {
    const opaque = [...document.querySelectorAll(sel)].filter(
        (m) => m.getAttribute('opacity') === '1');
    return opaque.length > 0
        && opaque.every((m) => m.getAttribute('aria-label').includes(`step: ${step};`));
}"""


def marks_in(page, nth_chart: int):
    return page.locator(".probekit-stream-chart").nth(nth_chart).locator("g.mark-symbol path")


def step_of(mark) -> int:
    match = re.search(r"step: (\d+)", mark.get_attribute("aria-label") or "")
    assert match, "a Vega-Lite mark describes its datum in aria-label"
    return int(match.group(1))


def test_stream_chart_appends_selects_and_reports_clicks(lab, lab_page, tmp_path):
    lab.write_notebook(
        "stream.ipynb",
        [SETUP, APPEND, SHOW_SELECTED, SELECT, SHOW_AGAIN, SHOW_SELECTED, WINDOWED],
    )
    page = lab_page.page
    lab_page.open_notebook("stream.ipynb")

    lab_page.run_cells(0)
    first = marks_in(page, 0)
    page.wait_for_function(
        "(sel) => document.querySelectorAll(sel).length === 5", arg=MARKS, timeout=60_000
    )
    # the title is text, not markup
    title = page.locator(".probekit-stream-chart .probekit-title").first
    assert title.text_content() == "<b>streamed</b> rows"
    assert page.locator(".probekit-stream-chart .probekit-title b").count() == 0

    lab_page.run_cells(1)
    assert "rows 8" in lab_page.cell_text(1)
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length === 8", arg=MARKS)
    assert sorted(step_of(first.nth(i)) for i in range(8)) == list(range(8))

    # a click on a mark selects its step in Python (the synced `selected` trait)
    target = next(first.nth(i) for i in range(8) if step_of(first.nth(i)) == 3)
    target.click()
    page.wait_for_function(HIGHLIGHTED, arg=[MARKS, 3])
    lab_page.run_cells(2)
    assert lab_page.cell_text(2).strip() == "selected 3"

    # select() from Python moves the highlight; it sends a signal, not data
    lab_page.run_cells(3)
    page.wait_for_function(HIGHLIGHTED, arg=[MARKS, 6])

    # a second view of the same chart asks for the window and shows every row
    lab_page.run_cells(4)
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length === 16", arg=MARKS)
    assert marks_in(page, 1).count() == 8

    # a click in the second view selects in Python and in the first view too (synced trait)
    second = marks_in(page, 1)
    next(second.nth(i) for i in range(8) if step_of(second.nth(i)) == 1).click()
    page.wait_for_function(HIGHLIGHTED, arg=[MARKS, 1])
    lab_page.run_cells(5)
    assert lab_page.cell_text(5).strip() == "selected 1"

    # a bounded window: evictions remove exactly the rows Python dropped
    lab_page.run_cells(6)
    printed = re.search(r"steps \[([\d, ]+)\]", lab_page.cell_text(6))
    assert printed, lab_page.cell_text(6)
    kept = sorted(int(n) for n in printed.group(1).split(","))
    assert len(kept) <= 10 and kept[0] == 0 and kept[-1] == 59
    small = marks_in(page, 2)
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel)[2].querySelectorAll("
        "  'g.mark-symbol path').length === n",
        arg=[".probekit-stream-chart", len(kept)],
    )
    assert sorted(step_of(small.nth(i)) for i in range(len(kept))) == kept

    assert page.locator(".probekit-stream-chart .probekit-error:visible").count() == 0
    # the extension's JavaScript came from the server, each file once, for both views
    ours = [
        (url.split("?")[0], size)
        for url, size in lab_page.fetched
        if "/lab/extensions/probekit/static/" in url and url.split("?")[0].endswith(".js")
    ]
    assert len(ours) == len({url for url, _ in ours}) >= 2
    print(f"probekit JavaScript fetched by the page: {sum(s for _, s in ours):,} bytes")
    page.screenshot(path=str(tmp_path / "stream_chart.png"), full_page=True)
    lab_page.assert_clean()


BROKEN = """\
from probekit.widgets.stream_chart import StreamChart

broken = StreamChart({"data": {"name": "rows"}, "mark": "not-a-mark"}, title="broken")
broken
"""


def test_a_chart_that_cannot_be_drawn_says_why_in_the_widget(lab, lab_page):
    lab.write_notebook("broken.ipynb", [BROKEN])
    lab_page.open_notebook("broken.ipynb")
    lab_page.run_cells(0)
    error = lab_page.page.locator(".probekit-stream-chart .probekit-error")
    error.wait_for(state="visible")
    text = error.text_content() or ""
    prefix = "probekit chart: the chart could not be drawn: "
    assert text.startswith(prefix) and len(text) > len(prefix)  # and Vega-Lite's reason
    lab_page.assert_clean()


TRAJECTORY = """\
from probekit.charts import board
from probekit.widgets.stream_chart import StreamChart

path = StreamChart(board.trajectory(), title="committed steps: path and volatility")
display(path)
for s in range(8):  # streamed one step at a time, as the board does; steps 2 and 3 unmeasured
    path.append([{"step": 10 + 2 * s, "path_length": s + 1.0,
                  "displacement": None if s in (2, 3) else (s + 1) / 2, "straightness": None,
                  "direction_volatility": None if s == 5 else 0.1 * s,
                  "magnitude_volatility": 0.5}])
print("rows", len(path.rows))
"""
# The `d` of every line the chart draws (path_length, displacement, then the volatility pair).
LINES = """() => [...document.querySelectorAll('.probekit-stream-chart g.mark-line path')]
    .map((p) => p.getAttribute('d') || '')"""


def test_the_boards_trajectory_lines_break_at_missing_values(lab, lab_page):
    """Streamed rows with a missing value: the line stops there and starts again after it."""
    lab.write_notebook("trajectory.ipynb", [TRAJECTORY])
    page = lab_page.page
    page.goto(f"{lab.url}/lab?reset")  # no documents of earlier tests restored
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
    lab_page.open_notebook("trajectory.ipynb")
    lab_page.run_cells(0)
    assert "rows 8" in lab_page.cell_text(0)
    # every streamed row drawn (L-commands per line: one fewer than the points of each piece)
    page.wait_for_function(
        f"() => ({LINES})().map((d) => d.split('L').length).join() === '8,5,6,8'"
    )
    paths = page.evaluate(LINES)
    # one piece for path_length; displacement in two (steps 0-1 and 4-7); the volatility pair
    assert [d.count("M") for d in paths] == [1, 2, 2, 1]
    assert [piece.count("L") + 1 for piece in paths[1].split("M")[1:]] == [2, 4]
    assert [piece.count("L") + 1 for piece in paths[2].split("M")[1:]] == [5, 2]
    assert page.locator(".probekit-stream-chart .probekit-title").all_text_contents() == [
        "committed steps: path and volatility"
    ]
    assert page.locator(".probekit-stream-chart .role-title-text").count() == 0  # one title
    lab_page.assert_clean()
