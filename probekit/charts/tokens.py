"""Charts of token attributions, built from ``TokenAttribution.to_frame()``.

Tokens are data: they reach Vega as field values and are drawn as text, never as
markup, so ``<script>`` shows up as the seven characters it is.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from probekit.charts.export import Chart
from probekit.results.attribution import SEQUENCE_POSITION


def token_heatmap(frame: pd.DataFrame, title: str | None = None) -> alt.Chart:
    """Heatmap: input tokens across, target tokens (and the whole target) down.

    Colour is the score on a diverging scale centred at zero (red negative, blue
    positive). Axis labels read ``position: token`` so repeated tokens stay apart. For an
    ``AttributionShift`` frame, pass one ``when`` at a time (``frame[frame.when == "after"]``).
    """
    data = _labelled(frame)
    columns = list(dict.fromkeys(data.sort_values("position")["column"]))
    rows = list(dict.fromkeys(data.sort_values("row_order")["row"]))
    method = ", ".join(dict.fromkeys(data["method"].astype(str))) if len(data) else ""
    return (
        Chart(data, title=title or f"token attribution ({method})")
        .mark_rect()
        .encode(
            x=alt.X("column:N", sort=columns, title="input token", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("row:N", sort=rows, title="target token"),
            color=alt.Color(
                "score:Q", scale=alt.Scale(scheme="redblue", domainMid=0), title="score"
            ),
            tooltip=[
                alt.Tooltip("token:N", title="input token"),
                alt.Tooltip("target_token:N", title="target token"),
                alt.Tooltip("score:Q", format=".4g"),
            ],
        )
    )


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``column``/``row`` axis labels and the sequence row's sort key (it goes last)."""
    data = frame.copy()
    data["column"] = data["position"].astype(str) + ": " + data["token"].astype(str)
    is_sequence = data["target_position"] == SEQUENCE_POSITION
    data["row"] = data["target_position"].astype(str) + ": " + data["target_token"].astype(str)
    data.loc[is_sequence, "row"] = data.loc[is_sequence, "target_token"].astype(str)
    data["row_order"] = data["target_position"].where(
        ~is_sequence, data["target_position"].max() + 1
    )
    return data
