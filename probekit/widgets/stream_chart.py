"""StreamChart: a live Vega-Lite chart that receives only its new rows.

The chart's JavaScript ships in probekit's JupyterLab extension (loaded once per page, never sent
over the widget comm). The spec travels once, as a trait; after that, ``append`` sends just the
new rows as a Vega changeset on the spec's named dataset ``"rows"``, together with the keys of any
rows the bounded window evicted. ``select`` sets the ``selected_step`` signal and sends no data;
a click on a mark with a ``step`` field sets the synced ``selected`` trait.

The window is bounded: at most ``window`` distinct key values (steps) and never more than
:data:`MAX_ROWS` rows. When it overflows, the newest half of the window stays at full
resolution and every other step of the older part is dropped (a ring buffer once only one older
step is left), so old history thins out instead of vanishing. The full history stays in the
``Probe``; this is only what the chart shows.
"""

from __future__ import annotations

import copy
import json
import math
import operator
import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Dict, Int, Unicode, validate

MODULE_NAME = "probekit"
MODULE_VERSION = "0.1.0"  # the npm package's version (labextension/package.json)
MAX_ROWS = 5000  # Altair's default row limit: a chart never holds more
DATASET = "rows"
SELECTED_PARAM = "selected_step"

Row = dict[str, Any]


def _json_value(value: Any, where: str) -> Any:
    """A strict-JSON copy of one value: non-finite floats become None (JSON has no NaN)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    item = getattr(value, "item", None)  # numpy scalars, 0-d arrays
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return _json_value(item(), where)
    raise TypeError(
        f"StreamChart rows hold JSON values (numbers, strings, booleans, None, lists, dicts); "
        f"{where} is a {type(value).__name__}"
    )


def _clean_rows(rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    if isinstance(rows, Mapping | str | bytes):
        raise TypeError("StreamChart rows must be a list of dicts, not a single dict or string")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"StreamChart rows must be dicts; row {i} is a {type(row).__name__}")
        out.append({str(k): _json_value(v, f"row {i}.{k}") for k, v in row.items()})
    return out


def _named_data(spec: Any) -> Iterable[Mapping[str, Any]]:
    """Every `data` object anywhere in a Vega-Lite spec (layers, concats, facets)."""
    if isinstance(spec, Mapping):
        data = spec.get("data")
        if isinstance(data, Mapping):
            yield data
        for value in spec.values():
            yield from _named_data(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _named_data(value)


def _checked_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise TypeError(f"a StreamChart spec is a Vega-Lite dict (chart.to_dict()), not {spec!r}")
    data = list(_named_data(spec))
    if any("url" in d for d in data):
        raise ValueError("a StreamChart spec may not load data from a URL: charts work offline")
    if not any(d.get("name") == DATASET for d in data):
        raise ValueError(
            f'a StreamChart spec draws from the named data source {{"name": "{DATASET}"}}; '
            f'build it with alt.Chart(alt.NamedData("{DATASET}")) and no inline values'
        )
    try:
        return json.loads(json.dumps(spec, allow_nan=False))
    except ValueError as exc:
        raise ValueError(f"a StreamChart spec must be strict JSON: {exc}") from exc


class _Window:
    """The rows a chart shows, grouped by key value in arrival order, bounded in steps and rows."""

    def __init__(self, key: str, max_steps: int, max_rows: int = MAX_ROWS) -> None:
        self.key = key
        self.max_steps = max_steps
        self.max_rows = max_rows
        self._groups: dict[Hashable, list[Row]] = {}
        self._n_rows = 0

    @property
    def rows(self) -> list[Row]:
        return [row for group in self._groups.values() for row in group]

    def clear(self) -> None:
        self._groups.clear()
        self._n_rows = 0

    def add(self, rows: list[Row]) -> tuple[list[Row], list[Hashable]]:
        """Adds rows; returns (the added rows still in the window, the key values evicted)."""
        sizes: dict[Hashable, int] = {}
        for row in rows:
            k = row.get(self.key)
            if isinstance(k, dict | list):
                raise TypeError(f"the chart's key {self.key!r} must be a plain value, not {k!r}")
            sizes[k] = sizes.get(k, len(self._groups.get(k, ()))) + 1
        too_big = {k: n for k, n in sizes.items() if n > self.max_rows}
        if too_big:
            k, n = next(iter(too_big.items()))
            raise ValueError(
                f"{n} rows share {self.key}={k!r}; a chart holds at most {self.max_rows} rows"
            )
        for row in rows:
            self._groups.setdefault(row.get(self.key), []).append(row)
        self._n_rows += len(rows)
        evicted = self._evict()
        kept = [row for row in rows if row.get(self.key) in self._groups]
        return kept, evicted

    def _evict(self) -> list[Hashable]:
        evicted: list[Hashable] = []
        recent = max(1, self.max_steps // 2)
        while len(self._groups) > self.max_steps or self._n_rows > self.max_rows:
            keys = list(self._groups)
            older = keys[:-recent]
            drop = older[1::2] if len(older) >= 2 else keys[:1]
            for k in drop:
                self._n_rows -= len(self._groups.pop(k))
                evicted.append(k)
        return evicted


class StreamChart(widgets.DOMWidget):
    """A live Vega-Lite chart fed row by row (see the module docstring)."""

    _model_name = Unicode("StreamChartModel").tag(sync=True)
    _model_module = Unicode(MODULE_NAME).tag(sync=True)
    _model_module_version = Unicode(f"^{MODULE_VERSION}").tag(sync=True)
    _view_name = Unicode("StreamChartView").tag(sync=True)
    _view_module = Unicode(MODULE_NAME).tag(sync=True)
    _view_module_version = Unicode(f"^{MODULE_VERSION}").tag(sync=True)

    spec = Dict().tag(sync=True)
    title = Unicode("").tag(sync=True)
    key = Unicode("step", read_only=True).tag(sync=True)
    selected = Int(None, allow_none=True).tag(sync=True)

    def __init__(
        self, spec: Mapping[str, Any], *, window: int = 1000, key: str = "step", title: str = ""
    ) -> None:
        window = operator.index(window)
        if window < 1:
            raise ValueError(f"window is the number of steps a chart keeps (>= 1), not {window}")
        super().__init__(spec=_checked_spec(spec), title=title)
        self.set_trait("key", key)
        self._lock = threading.RLock()
        self._window = _Window(key, max_steps=min(window, MAX_ROWS))
        self._selected_step: int | None = None
        self._bytes_sent = 0
        self.on_msg(self._on_view_message)

    @validate("spec")
    def _validate_spec(self, proposal: Any) -> dict[str, Any]:
        return _checked_spec(proposal["value"])

    @property
    def rows(self) -> list[Row]:
        """The rows the chart shows now (a copy of the bounded window)."""
        with self._lock:
            return [dict(row) for row in self._window.rows]

    @property
    def window(self) -> int:
        return self._window.max_steps

    @property
    def bytes_sent(self) -> int:
        """Total bytes of JSON this chart sent for data updates (changes and resets)."""
        return self._bytes_sent

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Adds rows; sends only them (and the keys the window evicted) to the browser."""
        clean = _clean_rows(rows)
        with self._lock:
            inserted, evicted = self._window.add(clean)
            self._send_data({"type": "change", "insert": inserted, "remove": evicted})

    def replace(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Replaces every row (e.g. a panel that shows only the selected step)."""
        clean = _clean_rows(rows)
        with self._lock:
            self._window.clear()
            self._window.add(clean)
            self._send_data({"type": "reset", "rows": self._window.rows})

    def select(self, step: int | None) -> None:
        """Marks `step` in the view (the spec's `selected_step` param); sends no data."""
        value = None if step is None else operator.index(step)
        with self._lock:
            self._selected_step = value
            self.send({"type": "select", "step": value})

    def _send_data(self, message: dict[str, Any]) -> None:
        self._bytes_sent += len(json.dumps(message, separators=(",", ":"), allow_nan=False))
        self.send(message)

    def _on_view_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, Mapping) and content.get("type") == "ready":
            with self._lock:  # a view (re)rendered: give it the whole window and the selection
                self._send_data({"type": "reset", "rows": self._window.rows})
                if self._selected_step is not None:
                    self.send({"type": "select", "step": self._selected_step})

    # -- export (offline, via vl-convert) -------------------------------------------------

    def export_spec(self) -> dict[str, Any]:
        """The spec with the current rows inlined (top-level `datasets`) and the selection set."""
        with self._lock:
            spec = copy.deepcopy(self.spec)
            spec["datasets"] = {**spec.get("datasets", {}), DATASET: self._window.rows}
            for param in spec.get("params", []):
                if isinstance(param, dict) and param.get("name") == SELECTED_PARAM:
                    param["value"] = self._selected_step
        if self.title and "title" not in spec:
            spec["title"] = self.title
        return spec

    def to_png(self, scale: float = 2) -> bytes:
        """The chart as it stands, as PNG bytes (rendered offline by vl-convert)."""
        import vl_convert

        return bytes(vl_convert.vegalite_to_png(self.export_spec(), scale=scale))

    def to_svg(self) -> str:
        """The chart as it stands, as an SVG document (rendered offline by vl-convert)."""
        import vl_convert

        return str(vl_convert.vegalite_to_svg(self.export_spec()))
