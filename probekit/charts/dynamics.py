"""Charts of many steps: isolated maps, trajectories and races, from their tidy frames.

Every function takes a frame (``IsolatedMap.to_frame()``, ``Trajectory.to_frame()``,
``RaceResult.steps_frame()``, possibly concatenated with extra columns) and returns a new
``alt.Chart``. Labels are data, rendered as text — never markup.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from probekit.charts.export import Chart


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
