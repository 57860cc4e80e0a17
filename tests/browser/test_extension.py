"""The extension's kernel-free views in a real JupyterLab and Chromium.

A session file written by Python opens as a dashboard with every chart drawn (the right
number of marks); a saved board snapshot, and a single result a cell displayed, render from
the notebook with no kernel; hostile
strings in a file are shown as text and run nothing; damaged and wrong-version files show
the error; the launcher command writes the template notebook; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[2] / "labextension" / "test" / "fixtures"
BOARD_MIME = "application/vnd.probekit.board+json"
RESULT_MIME = "application/vnd.probekit.result+json"
PANELS = ("timeline", "layers", "watch", "topk", "drift", "trajectory", "tokens")
PWNED = "window.__probekit_pwned = 1"
HOSTILE = [
    f'<img src=x onerror="{PWNED}">',
    f"<script>{PWNED}</script>",
    f"javascript:{PWNED}",
    "{{constructor.constructor('window.__probekit_pwned = 1')()}}",
    f'"><svg onload="{PWNED}">',
]
# Marks that stand for data (not axes or legends): one per row drawn.
MARKS = "g.role-mark.mark-symbol > path, g.role-mark.mark-rect > path"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def positive(rows: list[dict[str, Any]], *fields: str) -> int:
    return sum(1 for row in rows for f in fields if row[f] is not None and row[f] > 0)


def present(rows: list[dict[str, Any]], *fields: str) -> int:
    return sum(1 for row in rows for f in fields if row[f] is not None)


def expected_marks(panels: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Points and cells each panel draws for these rows (log scales drop values ≤ 0)."""
    return {
        "timeline": positive(panels["timeline"], "delta_l2", "delta_l1")
        + present(panels["timeline"], "loss_before", "loss_after"),
        "layers": positive(panels["layers"], "delta_l2"),
        "watch": positive(panels["watch"], "kl"),
        "topk": present(panels["topk"], "prob"),
        "drift": positive(panels["drift"], "cos_drift"),
        "trajectory": present(
            panels["trajectory"],
            "path_length",
            "displacement",
            "direction_volatility",
            "magnitude_volatility",
        ),
        "tokens": present(panels["tokens"], "value"),
    }


def open_file(lab_page: Any, name: str) -> Any:
    page = lab_page.page
    page.goto(f"{lab_page.lab.url}/lab/tree/{name}?reset")
    page.wait_for_selector(".probekit-dashboard :is(.probekit-grid, .probekit-error)")
    return page


def wait_for_charts(page: Any, count: int = len(PANELS)) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('.probekit-panel .probekit-chart svg').length === n",
        arg=count,
    )


def marks_by_panel(page: Any) -> dict[str, int]:
    return {name: page.locator(f".probekit-panel-{name}").locator(MARKS).count() for name in PANELS}


def test_the_extension_is_active(lab: Any, lab_page: Any) -> None:
    page = lab_page.page
    page.goto(f"{lab.url}/lab?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
    page.wait_for_function("() => window.jupyterapp?.isPluginActivated('probekit:launcher')")
    plugins = page.evaluate("() => window.jupyterapp.listPlugins()")
    assert {"probekit:widgets", "probekit:launcher", "probekit:session-viewer"} <= set(plugins)
    lab_page.assert_clean()


def test_a_session_file_opens_as_a_dashboard(lab: Any, lab_page: Any) -> None:
    session = fixture("demo.probekit.json")
    (lab.root / "demo.probekit.json").write_text(json.dumps(session), encoding="utf-8")
    page = open_file(lab_page, "demo.probekit.json")
    wait_for_charts(page)
    banner = page.locator(".probekit-banner").text_content()
    assert "probekit session — the probekit demo model" in banner
    assert f"written by probekit 0.1.0 on {session['meta']['created']}" in banner
    # The same panels Python computes for these steps (scripts/extension_assets.py), the
    # example's own top-k shown by the document view.
    panels = fixture("demo.board.json")["panels"]
    example = session["results"][-1]["example"]
    panels["topk"] = [{"prob": p} for _t, p in example["topk_before"] + example["topk_after"]]
    expected = expected_marks(panels)
    assert all(n > 0 for n in expected.values()), expected
    assert marks_by_panel(page) == expected
    assert page.locator(".probekit-error").count() == 0
    lab_page.assert_clean()


FITS = """() => [...document.querySelectorAll('.probekit-panel')].map((panel) => {
    const svg = panel.querySelector('.probekit-chart svg');
    return [panel.dataset.panel, panel.clientWidth, svg ? svg.getBoundingClientRect().width : 0,
            panel.scrollWidth];
})"""


def test_every_chart_fits_its_panel_in_a_narrow_main_area(lab: Any, lab_page: Any) -> None:
    (lab.root / "demo.probekit.json").write_text(
        json.dumps(fixture("demo.probekit.json")), encoding="utf-8"
    )
    lab_page.page.set_viewport_size({"width": 1340, "height": 1000})
    page = open_file(lab_page, "demo.probekit.json")
    wait_for_charts(page)
    page.wait_for_timeout(200)
    sizes = page.evaluate(FITS)
    columns = {round(width) for _name, width, _svg, _scroll in sizes}
    assert max(columns) < 560, f"two panel columns of a ~1000 px main area: {sizes}"
    for name, width, drawn, scroll in sizes:
        assert 0 < drawn <= width + 0.5, f"{name}: a chart {drawn} px wide in a {width} px panel"
        assert scroll <= width, f"{name}: the panel scrolls sideways ({scroll} > {width} px)"
    lab_page.assert_clean()


def test_a_saved_board_snapshot_renders_without_a_kernel(lab: Any, lab_page: Any) -> None:
    bundle = fixture("demo.board.json")
    lab.write_notebook("snapshot.ipynb", ["pk.ProbeBoard(probe).snapshot()"])
    notebook = json.loads((lab.root / "snapshot.ipynb").read_text())
    notebook["metadata"] = {}  # no kernelspec: nothing starts a kernel
    notebook["cells"][0]["outputs"] = [
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {BOARD_MIME: bundle, "text/plain": ["probekit board"]},
        }
    ]
    (lab.root / "snapshot.ipynb").write_text(json.dumps(notebook))
    page = lab_page.page
    _shut_down_kernels(page, lab.url)  # as after a kernel restart, or in a shared notebook
    page.goto(f"{lab.url}/lab/tree/snapshot.ipynb?reset")
    page.wait_for_selector(".probekit-dashboard .probekit-grid")
    if page.locator(".jp-Dialog").count():
        page.keyboard.press("Escape")  # "select a kernel": none is needed
    wait_for_charts(page)
    assert marks_by_panel(page) == expected_marks(bundle["panels"])
    assert "probekit board snapshot" in page.locator(".probekit-banner").text_content()
    with urllib.request.urlopen(f"{lab.url}/api/kernels", timeout=5) as response:
        assert json.loads(response.read()) == []  # drawn with no kernel at all
    lab_page.assert_clean()


RESULT_CELL = f"""\
import probekit as pk

model, tok = pk.load_demo()
probe = pk.Probe(model, tok, lr=0.05, token_grad=True,
                 watch=[pk.Example({HOSTILE[0]!r}, " paris"), pk.Example("2 plus 3 is", " 5")])
probe.step(pk.Example({HOSTILE[1]!r}, {HOSTILE[2]!r}), commit=True)
"""


def test_a_single_result_renders_without_a_kernel(lab: Any, lab_page: Any) -> None:
    """A probe step displayed by a cell is saved with the notebook and drawn from it alone."""
    lab.write_notebook("result.ipynb", [RESULT_CELL])
    page = lab_page.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{lab.url}/lab?reset")  # no documents of earlier tests restored
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
    lab_page.open_notebook("result.ipynb")
    lab_page.run_cells(0)
    page.wait_for_selector(".probekit-dashboard .probekit-grid")
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
    notebook = json.loads((lab.root / "result.ipynb").read_text())
    (output,) = [o for o in notebook["cells"][0]["outputs"] if RESULT_MIME in o.get("data", {})]
    bundle = output["data"][RESULT_MIME]
    assert bundle["kind"] == "probe_step"
    assert "".join(output["data"]["text/plain"]).startswith("probe step 0 (committed, ok)")
    notebook["metadata"] = {}  # as a shared notebook: nothing starts a kernel
    (lab.root / "result.ipynb").write_text(json.dumps(notebook))

    _shut_down_kernels(page, lab.url)
    page.goto(f"{lab.url}/lab/tree/result.ipynb?reset")
    page.wait_for_selector(".probekit-dashboard .probekit-grid")
    if page.locator(".jp-Dialog").count():
        page.keyboard.press("Escape")  # "select a kernel": none is needed
    shown = [name for name in PANELS if name in bundle["panels"]]
    assert shown == ["timeline", "layers", "watch", "topk", "drift", "tokens"]
    wait_for_charts(page, len(shown))
    every = expected_marks({name: bundle["panels"].get(name, []) for name in PANELS})
    assert marks_by_panel(page) == {name: every[name] if name in shown else 0 for name in PANELS}
    assert all(every[name] > 0 for name in shown), every
    titles = page.locator(".probekit-panel .probekit-title").all_text_contents()
    assert len(titles) == len(shown) and all(t.endswith("— step 0") for t in titles[:-1])
    assert page.locator(".probekit-panel .role-title-text").count() == 0  # one title each
    # the hostile prompt, target and watch label: text in the banner and on the axes
    banner = page.locator(".probekit-banner").text_content()
    assert f"probe step 0 (committed, ok): {HOSTILE[1]} → {HOSTILE[2]}" in banner
    dashboard = page.locator(".probekit-dashboard")
    assert HOSTILE[0][:20] in dashboard.evaluate("(el) => el.textContent")
    assert dashboard.locator("img, script, iframe, foreignObject, a").count() == 0
    assert page.evaluate("() => window.__probekit_pwned") is None
    assert page.evaluate(PAYLOAD_ELEMENTS) == 0
    assert dialogs == []
    assert page.locator(".probekit-error").count() == 0
    with urllib.request.urlopen(f"{lab.url}/api/kernels", timeout=5) as response:
        assert json.loads(response.read()) == []  # drawn with no kernel at all
    lab_page.assert_clean()


def hostile_session() -> dict[str, Any]:
    session = fixture("demo.probekit.json")
    evil = iter(HOSTILE * 1000)
    session["meta"]["model"]["name"] = HOSTILE[0]
    session["meta"]["model"]["source"] = "hub"
    session["meta"]["model"]["revision"] = HOSTILE[1]
    session["meta"]["probekit_version"] = HOSTILE[3][:64]
    for result in session["results"]:
        result["prompt"], result["target"] = next(evil), next(evil)
        result["input_tokens"] = [next(evil) for _ in result["input_tokens"]]
        for row in [*result["watch"], result["example"]]:
            row["label"] = next(evil)
            for pairs in (row["topk_before"], row["topk_after"]):
                for pair in pairs:
                    pair[0] = next(evil)
        for tensor in result["tensors"]:
            tensor["layer"] = tensor["layer"] + next(evil)
    return session


def _shut_down_kernels(page: Any, url: str) -> None:
    """Stop every kernel the server runs (earlier tests share the server), from the page."""
    page.goto(f"{url}/lab?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
    page.evaluate(
        """async () => {
            const services = window.jupyterapp.serviceManager;
            await services.sessions.shutdownAll();
            await services.kernels.shutdownAll();
        }"""
    )


# Elements the payloads would create if any of them were parsed as markup: an image or
# frame pointing at "x", an element with an inline handler, a script holding a payload.
PAYLOAD_ELEMENTS = """() => [...document.querySelectorAll('*')].filter((e) =>
    (['IMG', 'IFRAME'].includes(e.tagName) && (e.getAttribute('src') || '') === 'x')
    || e.hasAttribute('onerror') || e.hasAttribute('onload')
    || (e.tagName === 'SCRIPT' && (e.textContent || '').includes('__probekit_pwned'))
).length"""


def test_hostile_strings_are_shown_as_text_and_run_nothing(lab: Any, lab_page: Any) -> None:
    (lab.root / "xss.probekit.json").write_text(json.dumps(hostile_session()), encoding="utf-8")
    page = lab_page.page
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{lab.url}/lab?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
    page.goto(f"{lab.url}/lab/tree/xss.probekit.json?reset")
    page.wait_for_selector(".probekit-dashboard .probekit-grid")
    wait_for_charts(page)
    page.wait_for_timeout(500)
    banner = page.locator(".probekit-banner").text_content()
    assert HOSTILE[0] in banner and HOSTILE[1] in banner
    text = page.locator(".probekit-dashboard").evaluate("(el) => el.textContent")
    assert any(h[:20] in text for h in HOSTILE[1:])  # axis labels, as text
    dashboard = page.locator(".probekit-dashboard")
    assert dashboard.locator("img, script, iframe, foreignObject, a").count() == 0
    assert page.evaluate("() => window.__probekit_pwned") is None
    assert page.evaluate(PAYLOAD_ELEMENTS) == 0
    assert dialogs == []
    assert not [url for url, _ in lab_page.fetched if url.rstrip("/").endswith("/x")]
    assert page.locator(".probekit-error").count() == 0
    lab_page.assert_clean()


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("truncated.probekit.json", lambda text: text[: len(text) // 2], "not valid JSON"),
        (
            "future.probekit.json",
            lambda text: text.replace('"version": 1', '"version": 2', 1),
            "unsupported session file version 2",
        ),
    ],
)
def test_a_damaged_file_shows_the_error(
    lab: Any, lab_page: Any, name: str, damage: Any, message: str
) -> None:
    text = json.dumps(copy.deepcopy(fixture("demo.probekit.json")))
    (lab.root / name).write_text(damage(text), encoding="utf-8")
    page = open_file(lab_page, name)
    error = page.locator(".probekit-dashboard .probekit-error")
    error.wait_for()
    assert message in error.text_content()
    assert page.locator(".probekit-panel").count() == 0
    lab_page.assert_clean()


def test_new_probekit_notebook_writes_the_template(lab: Any, lab_page: Any) -> None:
    page = lab_page.page
    page.goto(f"{lab.url}/lab?reset")
    page.wait_for_function("() => window.jupyterapp?.isPluginActivated('probekit:launcher')")
    page.evaluate("async () => { await window.jupyterapp.commands.execute('launcher:create'); }")
    card = page.locator(".jp-LauncherCard", has_text="New probekit notebook")
    card.first.wait_for()
    assert card.count() == 1
    before = set(lab.root.glob("*.ipynb"))
    page.evaluate(
        "async () => { await window.jupyterapp.commands.execute('probekit:new-notebook'); }"
    )
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget?.context?.path?.endsWith('.ipynb')"
    )
    (created,) = set(lab.root.glob("*.ipynb")) - before
    sources = ["".join(c["source"]) for c in json.loads(created.read_text())["cells"]]
    assert sources[0] == "import probekit as pk"
    assert sources[1].startswith("model, tok = pk.load_demo()")
    assert sources[2].startswith("probe = pk.Probe(")
    assert sources[3] == "pk.ProbeBoard(probe)"
    lab_page.assert_clean()
