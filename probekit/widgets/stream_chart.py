"""A streaming Vega-Lite chart widget: rows are appended, never the whole chart re-sent.

The spec is sent once (a trait); ``append`` sends only the new rows (with the keys the
bounded window evicts) and ``replace`` swaps every row; ``select`` sets the view's
``selected_step`` param, sending no data. ``rows`` is the Python-side copy of the window.
The browser side lives in probekit's JupyterLab extension.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from typing import Any

import ipywidgets as widgets
import traitlets

MAX_ROWS = 5000
Row = dict[str, Any]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean_rows(rows: list[Row]) -> list[Row]:
    return [{k: _clean(v) for k, v in row.items()} for row in rows]


class StreamChart(widgets.DOMWidget):
    """A Vega-Lite chart over the named data source ``rows``, updated by changesets."""

    _model_name = traitlets.Unicode("StreamChartModel").tag(sync=True)
    _view_name = traitlets.Unicode("StreamChartView").tag(sync=True)
    _model_module = traitlets.Unicode("probekit").tag(sync=True)
    _view_module = traitlets.Unicode("probekit").tag(sync=True)
    _model_module_version = traitlets.Unicode("^0.1.0").tag(sync=True)
    _view_module_version = traitlets.Unicode("^0.1.0").tag(sync=True)

    spec = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.Int(None, allow_none=True).tag(sync=True)
    window = traitlets.Int(1000).tag(sync=True)

    def __init__(
        self, spec: dict[str, Any], *, window: int = 1000, key: str = "step", title: str = ""
    ) -> None:
        super().__init__(spec=spec, window=min(int(window), MAX_ROWS), title=title)
        self.key = key
        self.bytes_sent = 0
        self._rows: list[Row] = []
        self._shown: int | None = None
        self._lock = threading.Lock()

    @property
    def rows(self) -> list[Row]:
        with self._lock:
            return list(self._rows)

    def append(self, rows: list[Row]) -> None:
        """Add rows; the oldest `key` values leave the window in the same message."""
        new = _clean_rows(rows)
        with self._lock:
            self._rows.extend(new)
            evicted = self._evict()
            self._send_rows({"type": "append", "rows": new, "evict": evicted})

    def replace(self, rows: list[Row]) -> None:
        """Replace every row (for panels that show one selected step)."""
        new = _clean_rows(rows)[-self.window :]
        with self._lock:
            self._rows = new
            self._send_rows({"type": "replace", "rows": new})

    def select(self, step: int | None) -> None:
        """Emphasise ``step`` in the view (the ``selected_step`` param); sends no data."""
        self._shown = step
        self.send({"type": "select", "step": step})

    def to_png(self, scale: float = 2) -> bytes:
        import vl_convert as vlc

        return bytes(vlc.vegalite_to_png(self._static_spec(), scale=scale))

    def to_svg(self) -> str:
        import vl_convert as vlc

        return str(vlc.vegalite_to_svg(self._static_spec()))

    def _static_spec(self) -> dict[str, Any]:
        """The spec with the current rows inlined and the selection fixed (for exports)."""
        spec = copy.deepcopy(self.spec)
        spec["data"] = {"values": self.rows}
        step = self._shown if self._shown is not None else self.selected
        for param in spec.get("params", []):
            if param.get("name") == "selected_step":
                param["value"] = step
        return spec

    def _evict(self) -> list[Any]:
        if len(self._rows) <= self.window:
            return []
        keys = list(dict.fromkeys(r.get(self.key) for r in self._rows))
        evicted: list[Any] = []
        while len(self._rows) > self.window and len(keys) > 1:
            gone = keys.pop(0)
            evicted.append(gone)
            self._rows = [r for r in self._rows if r.get(self.key) != gone]
        return evicted

    def _send_rows(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, allow_nan=False)
        self.bytes_sent += len(text.encode())
        self.send(message)
