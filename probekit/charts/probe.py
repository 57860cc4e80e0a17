"""Charts of probe results, built from the frames of :class:`ProbeResult`.

Every function takes a long frame (``to_frame()`` of one or several results,
concatenated, possibly with extra columns such as ``group``) and returns a new
``alt.Chart``. Tokens and labels are data, rendered as text by Vega — never markup.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from probekit.charts.export import Chart


def _select(frame: pd.DataFrame, metric: str, scope: str | tuple[str, ...]) -> pd.DataFrame:
    scopes = (scope,) if isinstance(scope, str) else scope
    return frame[(frame["metric"] == metric) & frame["scope"].isin(scopes)].copy()


def _layer_order(labels: pd.Series) -> list[str]:
    def key(label: str) -> tuple[int, int]:
        if label.startswith("embeddings"):
            return (0, 0)
        if label.startswith("block."):
            return (1, int(label.split(".")[1]))
        return (2, 0)

    return sorted(dict.fromkeys(labels), key=key)


def _value_scale(data: pd.DataFrame, log: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Axis options for the value: a log scale (unstacked: Vega cannot stack bars on a log
    axis) drops the values it cannot show (zero or negative)."""
    if not log:
        return data, {}
    options = {"scale": alt.Scale(type="log"), "stack": None, "axis": alt.Axis(labelOverlap=True)}
    return data[data["value"] > 0], options


def delta_by_layer(
    frame: pd.DataFrame, color: str = "step", metric: str = "delta_l2", log: bool = False
) -> alt.Chart:
    """Bars of a parameter-delta metric per layer, one colour per ``color`` value.

    ``log=True`` puts the values on a log axis: use it when they span decades (an agreeing
    and a contradicting example side by side), where a linear axis hides the small bars.
    """
    data, axis = _value_scale(_select(frame, metric, "layer"), log)
    data[color] = data[color].astype(str)
    return (
        Chart(data, title=f"{metric} by layer")
        .mark_bar()
        .encode(
            x=alt.X("label:N", sort=_layer_order(data["label"]), title="layer"),
            xOffset=alt.XOffset(f"{color}:N"),
            y=alt.Y("value:Q", title=metric, **axis),
            color=alt.Color(f"{color}:N"),
            tooltip=["label:N", f"{color}:N", alt.Tooltip("value:Q", format=".3g")],
        )
    )


def watch_shift(
    frame: pd.DataFrame, metric: str = "kl", color: str = "step", log: bool = False
) -> alt.Chart:
    """Bars of a watch-set metric (``kl``, ``dlogp_target``, ``logit_l2``) per watch item.

    ``log=True``: a log axis (values ≤ 0, e.g. a KL of exactly zero, are left out).
    """
    data, axis = _value_scale(_select(frame, metric, ("watch", "example")), log)
    data[color] = data[color].astype(str)
    return (
        Chart(data, title=f"{metric} on the watch set")
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title=None, sort=None),
            yOffset=alt.YOffset(f"{color}:N"),
            x=alt.X("value:Q", title=metric, **axis),
            color=alt.Color(f"{color}:N"),
            tooltip=["label:N", f"{color}:N", alt.Tooltip("value:Q", format=".3g")],
        )
    )


def hidden_drift(frame: pd.DataFrame, metric: str = "cos_drift", color: str = "label") -> alt.Chart:
    """Lines of hidden-state drift by layer, one line per watch item (or ``color`` value)."""
    data = _select(frame, metric, ("watch", "example"))
    return (
        Chart(data, title=f"hidden-state {metric} by layer")
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:N", sort=_layer_order(data["layer"]), title="layer output"),
            y=alt.Y("value:Q", title=metric),
            color=alt.Color(f"{color}:N", title=None),
            tooltip=["label:N", "layer:N", alt.Tooltip("value:Q", format=".3g")],
        )
    )


def topk_bars(topk: pd.DataFrame, label: str) -> alt.Chart:
    """Top-k next-token probabilities before and after a step, for one watch item."""
    data = topk[topk["label"] == label]
    return (
        Chart(data, title=f"top-k after: {label}")
        .mark_bar()
        .encode(
            y=alt.Y("token:N", sort="-x", title=None),
            x=alt.X("prob:Q", title="probability"),
            color=alt.Color("when:N", sort=["before", "after"]),
            yOffset=alt.YOffset("when:N", sort=["before", "after"]),
            tooltip=["token:N", "when:N", alt.Tooltip("prob:Q", format=".3f")],
        )
    )
