"""The extension in Jupyter Notebook 7 (``jupyter notebook``), in a real Chromium.

Notebook 7 is built from JupyterLab's components, so the same prebuilt extension loads in it:
its plugins are active; a saved board snapshot and a saved single result render in a notebook
with no kernel; a session file opens in the read-only viewer (at ``/edit/<path>``, where
Notebook 7's file browser opens any file that is not a notebook, with the file type's default
viewer); "New probekit notebook" writes the template (Notebook 7 has no launcher: the command
is in its command palette).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.browser.test_extension import (
    BOARD_MIME,
    FIXTURES,
    MARKS,
    PANELS,
    RESULT_MIME,
    expected_marks,
    fixture,
    marks_by_panel,
    wait_for_charts,
)

pytestmark = pytest.mark.slow

# Errors of Notebook 7.6 itself, not counted here (any other console error is): its
# keyboard-shortcut settings handler reads the schema of a settings plugin its front end does
# not ship (on every page, with every extension disabled, probekit's included), and its
# execution indicator fails when the file browser page opens a notebook (any notebook, by any
# command: it opens in a new tab).
NOTEBOOK_OWN_ERRORS = {
    "page error: Cannot read properties of undefined (reading 'schema')",
    "Cannot read properties of null (reading 'updateRenderOption')",
}


def started(page: Any) -> None:
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")


def assert_clean(nb_page: Any) -> None:
    nb_page.console_errors[:] = [e for e in nb_page.console_errors if e not in NOTEBOOK_OWN_ERRORS]
    nb_page.assert_clean()


def test_the_extension_is_active_in_notebook7(notebook7: Any, notebook7_page: Any) -> None:
    page = notebook7_page.page
    page.goto(f"{notebook7.url}/tree")
    started(page)
    page.wait_for_function("() => window.jupyterapp.isPluginActivated('probekit:launcher')")
    plugins = page.evaluate("() => window.jupyterapp.listPlugins()")
    assert {"probekit:widgets", "probekit:launcher", "probekit:session-viewer"} <= set(plugins)
    assert {"probekit:board-renderer", "probekit:result-renderer"} <= set(plugins)
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
    assert page.evaluate("() => window.jupyterapp.commands.hasCommand('probekit:new-notebook')")
    assert_clean(notebook7_page)


def test_saved_outputs_render_in_notebook7(notebook7: Any, notebook7_page: Any) -> None:
    """A board snapshot and a single result, saved in a notebook, drawn with no kernel."""
    board = fixture("demo.board.json")
    result = json.loads((FIXTURES / "demo.results.json").read_text(encoding="utf-8"))[0]
    notebook7.write_notebook("outputs.ipynb", ["board.snapshot()", "probe.step(example)"])
    notebook = json.loads((notebook7.root / "outputs.ipynb").read_text())
    notebook["metadata"] = {}  # no kernelspec: nothing starts a kernel
    for cell, (mime, data) in zip(
        notebook["cells"], [(BOARD_MIME, board), (RESULT_MIME, result)], strict=True
    ):
        cell["outputs"] = [
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {mime: data, "text/plain": ["probekit output"]},
            }
        ]
    (notebook7.root / "outputs.ipynb").write_text(json.dumps(notebook))
    page = notebook7_page.page
    page.goto(f"{notebook7.url}/notebooks/outputs.ipynb")
    page.wait_for_selector(".probekit-dashboard .probekit-grid")
    if page.locator(".jp-Dialog").count():
        page.keyboard.press("Escape")  # "select a kernel": none is needed
    shown = [name for name in PANELS if name in result["panels"]]
    wait_for_charts(page, len(PANELS) + len(shown))
    dashboards = page.locator(".probekit-dashboard")
    assert dashboards.count() == 2
    boards, results = (
        {name: dashboards.nth(i).locator(f".probekit-panel-{name}").locator(MARKS).count()
         for name in PANELS}
        for i in (0, 1)
    )  # fmt: skip
    assert boards == expected_marks(board["panels"])
    every = expected_marks({name: result["panels"].get(name, []) for name in PANELS})
    assert results == {name: every[name] if name in shown else 0 for name in PANELS}
    banners = page.locator(".probekit-banner").all_text_contents()
    assert "probekit board snapshot" in banners[0]
    assert banners[1].startswith(f"probekit — {result['title']}")
    with urllib.request.urlopen(f"{notebook7.url}/api/kernels", timeout=5) as response:
        assert json.loads(response.read()) == []
    assert_clean(notebook7_page)


def test_a_session_file_opens_in_the_viewer_in_notebook7(
    notebook7: Any, notebook7_page: Any
) -> None:
    session = fixture("demo.probekit.json")
    (notebook7.root / "demo.probekit.json").write_text(json.dumps(session), encoding="utf-8")
    page = notebook7_page.page
    page.goto(f"{notebook7.url}/edit/demo.probekit.json")
    page.wait_for_selector(".probekit-dashboard :is(.probekit-grid, .probekit-error)")
    wait_for_charts(page, len(PANELS))
    banner = page.locator(".probekit-banner").text_content()
    assert "probekit session — the probekit demo model" in banner
    # every chart as in JupyterLab (test_extension.py): the right number of marks
    panels = fixture("demo.board.json")["panels"]
    example = session["results"][-1]["example"]
    panels["topk"] = [{"prob": p} for _t, p in example["topk_before"] + example["topk_after"]]
    assert marks_by_panel(page) == expected_marks(panels)
    assert page.locator(".probekit-error").count() == 0
    assert_clean(notebook7_page)


def test_new_probekit_notebook_in_notebook7(notebook7: Any, notebook7_page: Any) -> None:
    page = notebook7_page.page
    page.goto(f"{notebook7.url}/tree")
    started(page)
    page.wait_for_function("() => window.jupyterapp.isPluginActivated('probekit:launcher')")
    assert (
        page.evaluate("() => window.jupyterapp.commands.label('probekit:new-notebook')")
        == "New probekit notebook"
    )
    before = set(notebook7.root.glob("*.ipynb"))
    with page.context.expect_page() as opening:  # Notebook 7 opens a notebook in a new tab
        page.evaluate(
            "async () => { await window.jupyterapp.commands.execute('probekit:new-notebook'); }"
        )
    (created,) = set(notebook7.root.glob("*.ipynb")) - before
    opened = opening.value
    opened.wait_for_load_state()
    assert opened.url.endswith(f"/notebooks/{created.name}")
    sources = ["".join(c["source"]) for c in json.loads(created.read_text())["cells"]]
    assert sources[0] == "import probekit as pk" and sources[3] == "pk.ProbeBoard(probe)"
    assert_clean(notebook7_page)
