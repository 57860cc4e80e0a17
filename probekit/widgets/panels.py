"""The board's live charts and which step they show.

Per new result the work is proportional to the new rows: one timeline row and one row
per layer are appended; the per-step panels (watch KL, top-k, drift) are replaced by
the rows of the shown step. Clicking a step in the timeline shows that step in every
panel; the newest step is shown while the newest is selected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from probekit.charts import board as specs
from probekit.results import panels
from probekit.results.probe import ProbeResult
from probekit.widgets.stream_chart import StreamChart

TITLES = {
    "timeline": "update size and loss per step",
    "layers": "‖Δθ‖ by layer and step",
    "watch": "logit shift (KL) on the watch set",
    "topk": "top-k next tokens before/after",
    "drift": "hidden-state drift by layer",
    "trajectory": "committed steps: path and volatility",
    "tokens": "token attribution of the current prompt",
}
PER_STEP = ("watch", "topk", "drift")
CLICKABLE = ("timeline", "layers")  # a click on a step's mark shows that step everywhere
LOG_SCALED = ("timeline", "layers", "watch", "drift")
EXAMPLE_LABEL = "example"


class BoardCharts:
    """One :class:`StreamChart` per panel, fed with panel rows."""

    def __init__(self, history: Callable[[], Sequence[ProbeResult]], window: int = 1000) -> None:
        self._history = history
        self._lock = threading.RLock()
        self.log = True
        self.charts: dict[str, StreamChart] = {
            name: StreamChart(self._spec(name), window=window, title=TITLES[name])
            for name in panels.PANELS
        }
        self.shown: int | None = None
        self.newest: int | None = None
        self.topk_label = widgets.Dropdown(description="top-k of", options=[EXAMPLE_LABEL])
        self.topk_label.observe(lambda _change: self._refresh_topk(), names="value")
        for name in CLICKABLE:
            self.charts[name].observe(self._clicked, names="selected")

    # -- feeding ---------------------------------------------------------------------
    def add(self, result: ProbeResult, trajectory_row: dict[str, Any] | None = None) -> None:
        """A new step: append its rows; show it if the newest step was the one shown."""
        with self._lock:
            self.charts["timeline"].append(panels.timeline(result))
            self.charts["layers"].append(panels.layers(result))
            if trajectory_row is not None:
                self.charts["trajectory"].append([trajectory_row])
            follow = self.shown is None or self.shown == self.newest
            self.newest = result.step
            if follow:
                self.show(result)

    def show(self, result: ProbeResult) -> None:
        """Show ``result``'s step in every panel."""
        with self._lock:
            self.shown = result.step
            self.charts["watch"].replace(panels.watch(result))
            self.charts["drift"].replace(panels.drift(result))
            labels = [row.label for row in result.rows]
            if list(self.topk_label.options) != labels:
                current = self.topk_label.value
                self.topk_label.options = labels
                if current in labels:
                    self.topk_label.value = current
            self.charts["topk"].replace(panels.topk(result, self.topk_label.value))
            for name, chart in self.charts.items():
                chart.select(result.step)
                if name != "tokens":
                    chart.title = f"{TITLES[name]} — step {result.step}"
            for name in CLICKABLE:  # in step with what is shown, so any later click is a change
                self.charts[name].selected = result.step

    def undone(self, step: int) -> None:
        """A committed step was undone: mark it in the timeline, drop its trajectory row."""
        with self._lock:
            rows = self.charts["timeline"].rows
            for row in rows:
                if row["step"] == step and row["kind"] == "committed":
                    row["status"] = "undone"
            self.charts["timeline"].replace(rows)
            trajectory = [r for r in self.charts["trajectory"].rows if r["step"] != step]
            self.charts["trajectory"].replace(trajectory)

    def clear(self) -> None:
        with self._lock:
            for name, chart in self.charts.items():
                chart.replace([])
                chart.select(None)
                chart.title = TITLES[name]
            self.shown = self.newest = None
            for name in CLICKABLE:
                self.charts[name].selected = None

    def tokens(self, rows: list[dict[str, Any]], title: str) -> None:
        with self._lock:
            self.charts["tokens"].replace(rows)
            self.charts["tokens"].title = title

    def set_log(self, log: bool) -> None:
        """Switch the log scales (a new spec for those charts; their rows stay)."""
        with self._lock:
            self.log = log
            for name in LOG_SCALED:
                self.charts[name].spec = self._spec(name)

    def last_trajectory(self) -> dict[str, Any] | None:
        rows = self.charts["trajectory"].rows
        return rows[-1] if rows else None

    # -- selection ---------------------------------------------------------------------
    def _clicked(self, change: dict[str, Any]) -> None:
        step = change["new"]
        if step is None or step == self.shown:
            return
        result = self.result(step)
        if result is not None:
            self.show(result)

    def result(self, step: int) -> ProbeResult | None:
        history = self._history()
        if 0 <= step < len(history) and history[step].step == step:
            return history[step]
        return next((r for r in history if r.step == step), None)

    def _refresh_topk(self) -> None:
        with self._lock:
            result = self.result(self.shown) if self.shown is not None else None
            if result is not None:
                self.charts["topk"].replace(panels.topk(result, self.topk_label.value))

    def _spec(self, name: str) -> dict[str, Any]:
        build: Callable[..., dict[str, Any]] = specs.SPECS[name]
        return build(self.log) if name in LOG_SCALED else build()
