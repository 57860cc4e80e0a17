"""Charts of many steps: isolated maps, trajectories and races, from their tidy frames.

Every function takes a frame (``IsolatedMap.to_frame()`` or ``watch_frame()``,
``Trajectory.to_frame()``, ``RaceResult.steps_frame()``, ``RaceResult.summary()``, possibly
concatenated with extra columns) and returns a new ``alt.Chart``. Labels are data,
rendered as text — never markup.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from probekit.charts.export import Chart
from probekit.errors import InputError


def update_vs_disturbance(frame: pd.DataFrame, color: str | None = None) -> alt.Chart:
    """Each example as a point: how far it moves the model (x) vs what it disturbs (y).

    Log scales on both axes (steps on known facts and on contradictions differ by orders
    of magnitude); non-positive values cannot sit on a log axis and are dropped.
    """
    data = frame[(frame["update_size"] > 0) & (frame["disturbance"] > 0)].copy()
    encoding: dict[str, object] = {
        "x": alt.X("update_size:Q", scale=alt.Scale(type="log"), title="update size ‖Δθ‖"),
        "y": alt.Y("disturbance:Q", scale=alt.Scale(type="log"), title="watch-set KL"),
        "tooltip": [
            "label:N",
            alt.Tooltip("update_size:Q", format=".3g"),
            alt.Tooltip("disturbance:Q", format=".3g"),
            alt.Tooltip("loss_before:Q", format=".3g"),
        ],
    }
    if color is not None:
        encoding["color"] = alt.Color(f"{color}:N")
    return (
        Chart(data, title="update size vs disturbance, one point per example")
        .mark_circle(size=60, opacity=0.8)
        .encode(**encoding)
    )


def stream(frame: pd.DataFrame, metric: str = "path_length", color: str = "order") -> alt.Chart:
    """One line per ``color`` value of a stream metric over committed steps."""
    data = frame[frame["metric"] == metric].copy()
    if color not in data.columns:
        data[color] = "run"
    data[color] = data[color].astype(str)
    return (
        Chart(data, title=f"{metric} over committed steps")
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("value:Q", title=metric),
            color=alt.Color(f"{color}:N"),
            tooltip=[f"{color}:N", "step:Q", "label:N", alt.Tooltip("value:Q", format=".3g")],
        )
    )


_RACE_TITLES = {
    "final_loss": "mean loss on the examples at the end",
    "final_kl": "watch-set KL from the start",
    "path_length": "path length Σ‖Δₜ‖",
    "displacement": "displacement ‖θ_end − θ_start‖",
    "straightness": "straightness (displacement / path)",
    "direction_volatility": "direction volatility",
    "magnitude_volatility": "magnitude volatility",
}
_COLUMN_TITLES = {"lr": "learning rate"}


def race_summary(
    frame: pd.DataFrame,
    metric: str = "final_loss",
    x: str = "draw",
    color: str = "order",
    column: str | None = "lr",
    log: bool = False,
    width: int = 220,
) -> alt.Chart:
    """What each order of a race left behind: ``metric`` per ``x`` value, one line per order.

    ``frame`` is ``RaceResult.summary()`` (one row per order) or its long form
    ``to_frame()``, usually several races concatenated with the columns that tell them
    apart, e.g. ``result.summary().assign(lr=lr, draw=seed)``: then ``x="draw"`` puts the
    draws across, and ``column="lr"`` gives each learning rate its own panel (a ``column``
    the frame does not have is ignored). Lines that cross say that no order wins in
    every draw. A frame without the ``x`` column is one race: one point per order.
    ``log=True`` puts the metric on a log axis (values ≤ 0 are left out).
    """
    data = _wide(frame, metric)
    if color not in data.columns:
        raise InputError(
            f"race_summary: the frame has no column {color!r} to draw a line per; "
            f"it has {list(data.columns)}"
        )
    if log:
        data = data[data[metric] > 0].copy()
    data[color] = data[color].astype(str)
    across = x in data.columns
    facet = column is not None and column in data.columns
    tooltip: list[str | alt.Tooltip] = [f"{column}:N"] if facet else []
    tooltip += [f"{color}:N", *([f"{x}:O"] if across else [])]
    tooltip.append(alt.Tooltip(f"{metric}:Q", format=".3g"))
    scale = alt.Scale(type="log") if log else alt.Undefined
    encoding: dict[str, object] = {
        "x": alt.X(f"{x}:O", title=x, axis=alt.Axis(labelAngle=0))
        if across
        else alt.X(f"{color}:N", title=None),
        "y": alt.Y(f"{metric}:Q", title=_RACE_TITLES.get(metric, metric), scale=scale),
        "color": alt.Color(f"{color}:N", title=color),
        "tooltip": tooltip,
    }
    if facet:
        heading = _COLUMN_TITLES.get(str(column), column)
        encoding["column"] = alt.Column(f"{column}:N", title=heading)
    name = metric.replace("_", " ")
    chart = Chart(data, title=f"{name} per {x} and {color}" if across else f"{name} per {color}")
    mark = chart.mark_line(point=True) if across else chart.mark_point(filled=True, size=80)
    return mark.encode(**encoding).properties(width=width)


def _wide(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The summary's column ``metric``, from the wide summary or the long ``to_frame()``."""
    if metric in frame.columns:
        return frame.copy()
    if {"metric", "value"} <= set(frame.columns) and (frame["metric"] == metric).any():
        rows = frame[frame["metric"] == metric]
        return rows.drop(columns="metric").rename(columns={"value": metric})
    known = sorted(set(frame.get("metric", ())) | (set(frame.columns) & set(_RACE_TITLES)))
    raise InputError(
        f"race_summary: the frame has no metric {metric!r}; pass RaceResult.summary() or "
        f"to_frame() and one of {known}"
    )


def watch_disturbance(
    frame: pd.DataFrame,
    y: str | None = "group",
    color: str | None = None,
    title: str = "watch-set KL per (example, watch item)",
) -> alt.Chart:
    """One tick per (example, watch item): how far the step moved that watch item (log KL).

    ``frame`` is ``IsolatedMap.watch_frame()`` (columns ``example``, ``watch``, ``kl``,
    ``dlogp``), usually with extra columns that group the examples: ``y`` puts one row of
    ticks per value of that column (``None``, or a column the frame does not have: one
    row), ``color`` colours the ticks by another (e.g. whether the watch item is of the
    example's own family). KL spans orders of magnitude between known facts and
    contradictions, so its axis is logarithmic; a KL of exactly 0 cannot sit on it and
    is left out.
    """
    missing = [c for c in ("example", "watch", "kl", *([color] if color else [])) if c not in frame]
    if missing:
        raise InputError(
            f"watch_disturbance needs the column(s) {missing}; pass "
            f"IsolatedMap.watch_frame() (with any column you colour by); the frame has "
            f"{list(frame.columns)}"
        )
    data = frame[frame["kl"] > 0].copy()
    tooltip: list[str | alt.Tooltip] = ["example:N", "watch:N", alt.Tooltip("kl:Q", format=".2e")]
    if "dlogp" in data.columns:
        tooltip.append(alt.Tooltip("dlogp:Q", format=".2e"))
    encoding: dict[str, object] = {
        "x": alt.X("kl:Q", scale=alt.Scale(type="log"), title="kl (log scale)"),
        "tooltip": tooltip,
    }
    if y is not None and y in data.columns:
        encoding["y"] = alt.Y(f"{y}:N", title=None)
    if color is not None:
        encoding["color"] = alt.Color(f"{color}:N", title=color.replace("_", " "))
    return Chart(data, title=title).mark_tick(opacity=0.5).encode(**encoding)
