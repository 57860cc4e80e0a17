"""A ProbeBoard on the demo model, driven in a real JupyterLab page (browser test and benchmark).

Everything here reads the rendered page: button states and status text from the DOM, and the
rows each chart draws from its SVG marks (Vega's SVG renderer keeps every mark's scenegraph item,
and through it the data row, on the mark's element as ``__data__``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from probekit.widgets.panels import TITLES

SETUP = """\
import probekit as pk

model, tok = pk.load_demo()
watch = [
    pk.Example("3 plus 4 is", " 7"),
    pk.Example("the lion says", " roar"),
    pk.Example("the colour of a plum is", " purple"),
]
probe = pk.Probe(model, tok, optimizer="sgd", lr=0.003, watch=watch, token_grad=True)
board = pk.ProbeBoard(probe, prompt="2 plus 2 is", target=" 5")
board
"""

# Thirty examples of a family the demo model never saw (it learns them as it goes).
FEED = "\n".join(f"{a} minus {b} is | {a - b}" for a in range(4, 10) for b in range(1, 6))

# The first words of each panel's title line (the attribution panel's changes once it is used).
PANELS = {**TITLES, "tokens": "token attribution"}

# In-page helpers, defined once per page: find a panel, read the rows behind its marks.
HELPERS = """() => {
    const panel = (prefix) => [...document.querySelectorAll('.probekit-stream-chart')].find(
        (c) => (c.querySelector('.probekit-title')?.textContent ?? '').startsWith(prefix));
    const items = (prefix) => {
        const chart = panel(prefix);
        if (!chart) { return []; }
        return [...chart.querySelectorAll('.role-mark > path')]
            .map((el) => el.__data__)
            .filter((item) => item && item.datum);
    };
    const steps = (prefix) => new Set(items(prefix).map((item) => item.datum.step));
    window.probekitTest = { panel, items, steps };
    // the time of the latest click anywhere on the page (the event's own timestamp)
    document.addEventListener('click', (event) => {
        window.probekitTest.clickedAt = event.timeStamp;
    }, true);
}"""

# Resolves with the time the panel first draws a mark of `step` (checked on every DOM change).
DRAWN_AT = """([prefix, step]) => {
    const t = window.probekitTest;
    t.drawn = new Promise((resolve) => {
        const done = () => t.steps(prefix).has(step);
        const observer = new MutationObserver(() => {
            if (done()) { observer.disconnect(); resolve(performance.now()); }
        });
        observer.observe(t.panel(prefix), { subtree: true, childList: true, attributes: true });
    });
}"""


@dataclass
class Status:
    state: str  # "idle · probekit demo · …" or "busy: probe · …"
    message: str


class BoardPage:
    """The board the notebook's first cell displays, in an open ``LabPage``."""

    def __init__(self, lab_page: Any) -> None:
        self.lab_page = lab_page
        self.page = lab_page.page
        self.output = self.page.locator(".jp-OutputArea-output").first

    def show(self, timeout_ms: int = 120_000) -> None:
        """Runs the setup cell and waits for every panel to be drawn, idle."""
        self.lab_page.run_cells(0)
        self.page.wait_for_function(
            """(n) => document.querySelectorAll('.probekit-stream-chart svg').length === n""",
            arg=len(PANELS),
            timeout=timeout_ms,
        )
        self.page.evaluate(HELPERS)
        self.wait_idle()

    # -- controls ----------------------------------------------------------------------
    def button(self, name: str) -> Any:
        """A button of the board by its exact text (icons have no text)."""
        pattern = re.compile(rf"^\s*{re.escape(name)}\s*$")
        return self.output.locator("button.jupyter-button", has_text=pattern)

    def status(self) -> Status:
        state = self.output.get_by_text(re.compile(r"^(idle|busy: .*) · ")).text_content()
        message = self.output.locator(".widget-label").nth(1).text_content()
        return Status(state or "", message or "")

    def wait_idle(self, message: str | None = None, timeout_ms: int = 60_000) -> Status:
        """Waits until the status line says idle (and the message matches the regex)."""
        self.page.wait_for_function(
            """([pattern]) => {
                const labels = [...document.querySelectorAll('.jp-OutputArea-output .widget-label')]
                    .map((l) => l.textContent);
                return labels.some((t) => t.startsWith('idle · '))
                    && (pattern === null || labels.some((t) => new RegExp(pattern).test(t)));
            }""",
            arg=[message],
            timeout=timeout_ms,
        )
        return self.status()

    def press(self, name: str, step: int, timeout_ms: int = 60_000) -> float:
        """Clicks a step button; waits until the timeline draws ``step`` and the board is idle.

        Returns the milliseconds from the click event to the timeline's new mark in the DOM.
        """
        self.page.evaluate(DRAWN_AT, [PANELS["timeline"], step])
        self.button(name).click()
        drawn = float(self.page.evaluate("() => window.probekitTest.drawn"))
        clicked = float(self.page.evaluate("() => window.probekitTest.clickedAt"))
        self.wait_idle(rf"^step {step}: ", timeout_ms)
        return drawn - clicked

    # -- what the charts show ------------------------------------------------------------
    def rows(self, panel: str) -> list[dict[str, Any]]:
        """The data rows behind the panel's drawn marks (one per mark; JSON fields only)."""
        return list(
            self.page.evaluate(
                """(prefix) => window.probekitTest.items(prefix).map((item) => {
                    const out = { x: item.x ?? null };
                    for (const [k, v] of Object.entries(item.datum)) {
                        if (v === null || ['number', 'string', 'boolean'].includes(typeof v)) {
                            out[k] = v;
                        }
                    }
                    return out;
                })""",
                PANELS[panel],
            )
        )

    def steps(self, panel: str) -> set[int]:
        return {int(row["step"]) for row in self.rows(panel) if row.get("step") is not None}

    def wait_steps(self, panel: str, count: int, timeout_ms: int = 60_000) -> None:
        self.page.wait_for_function(
            "([prefix, n]) => window.probekitTest.steps(prefix).size === n",
            arg=[PANELS[panel], count],
            timeout=timeout_ms,
        )

    def titles(self) -> dict[str, list[str]]:
        """Every title each panel shows: its heading, then any title Vega drew in its SVG."""
        out = {}
        for name, prefix in PANELS.items():
            out[name] = list(
                self.page.evaluate(
                    """(prefix) => {
                        const chart = window.probekitTest.panel(prefix);
                        const own = [...chart.querySelectorAll('.probekit-title')]
                            .map((t) => t.textContent);
                        const drawn = [...chart.querySelectorAll('.role-title-text text')]
                            .map((t) => t.textContent);
                        return [...own, ...drawn];
                    }""",
                    prefix,
                )
            )
        return out

    def wait_shown(self, step: int, timeout_ms: int = 30_000) -> None:
        """Waits until the per-step panels draw ``step``'s rows and every title names it."""
        self.page.wait_for_function(
            """([panels, step]) => {
                const t = window.probekitTest;
                const rows = ['watch', 'topk', 'drift'].every((name) => {
                    const steps = t.steps(panels[name]);
                    return steps.size === 1 && steps.has(step);
                });
                const titled = Object.entries(panels).filter(([name]) => name !== 'tokens')
                    .every(([, prefix]) => {
                        const chart = t.panel(prefix);
                        const own = chart.querySelector('.probekit-title').textContent;
                        return own.endsWith(`— step ${step}`);
                    });
                return rows && titled;
            }""",
            arg=[PANELS, step],
            timeout=timeout_ms,
        )

    def click_step(self, step: int, panel: str = "timeline") -> None:
        """Clicks a mark of ``step`` (a real mouse click on the SVG): in the timeline its ‖Δθ‖₂
        point, in the heatmap one of its cells."""
        found = self.page.evaluate(
            """([prefix, step]) => {
                const chart = window.probekitTest.panel(prefix);
                const mark = [...chart.querySelectorAll('.role-mark > path')].find((el) => {
                    const datum = el.__data__?.datum;
                    return datum?.step === step && (datum.metric ?? 'delta_l2') === 'delta_l2';
                });
                document.querySelectorAll('[data-probekit-target]').forEach(
                    (el) => el.removeAttribute('data-probekit-target'));
                mark?.setAttribute('data-probekit-target', '');
                return !!mark;
            }""",
            [PANELS[panel], step],
        )
        assert found, f"the {panel} panel draws no mark for step {step}"
        self.page.locator("[data-probekit-target]").click()

    def screenshot(self, path: str) -> None:
        """The board alone, in a viewport tall and wide enough to hold it without scrolling."""
        self.page.evaluate(
            "() => window.jupyterapp.commands.execute('application:toggle-left-area')"
        )
        self.page.set_viewport_size({"width": 1480, "height": 2200})
        self.page.wait_for_timeout(500)  # the notebook re-lays out
        self.output.screenshot(path=path)
