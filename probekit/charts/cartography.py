"""The dataset map of Dataset Cartography, built from ``DatasetMap.to_frame()``.

Each example is a point: how much the model's probability of its target varied over the
committed passes (x) against its mean (y). Labels are data, drawn as text — never markup.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from probekit.charts.export import FacetChart, LayerChart
from probekit.errors import InputError

# Where Swayamdipta et al. (2020) name the regions of the map. The notes sit at the edges
# of the axes; they name directions, not thresholds (the map itself defines none).
_NOTES = {
    "left": [("easy-to-learn", 0.005, 0.97), ("hard-to-learn", 0.005, 0.03)],
    "right": [("ambiguous", 0.495, 0.5)],
}
_NEEDED = ("label", "confidence", "variability")
_TITLES = {
    "correctness": "correctness",
    "forgetting_events": "forgetting events",
    "lr": "learning rate",
}


def dataset_map(
    frame: pd.DataFrame,
    color: str = "correctness",
    column: str | None = None,
    title: str | None = None,
    width: int = 260,
) -> LayerChart | FacetChart:
    """Each example as a point: variability (x) against confidence (y) of p(target).

    ``frame`` is ``pk.dataset_map(...).to_frame()``, possibly with extra columns (a
    ``group``, the ``lr`` of each map, several maps concatenated). Points are coloured by
    ``color`` (``correctness`` by default: the share of passes with the target on top), and
    ``column`` draws one panel per value of that column. Confidence is a mean probability,
    so it lies in [0, 1], and a population standard deviation of values in [0, 1] lies in
    [0, 0.5]: both axes show their whole range, so maps at different settings compare at a
    glance. Three faint notes name the regions of Dataset Cartography (Swayamdipta et al.
    2020): *easy-to-learn* (high confidence, low variability), *hard-to-learn* (low
    confidence, low variability) and *ambiguous* (high variability). They mark directions,
    not thresholds: the map draws no boundary.
    """
    missing = [c for c in (*_NEEDED, color, *([column] if column else [])) if c not in frame]
    if missing:
        raise InputError(
            f"dataset_map needs the column(s) {missing}; pass pk.dataset_map(...).to_frame() "
            f"(with any extra column you colour or split by); the frame has {list(frame.columns)}"
        )
    x = alt.X(
        "variability:Q",
        scale=alt.Scale(domain=[0, 0.5]),
        axis=alt.Axis(tickCount=5),
        title="variability (std of p(target) over passes)",
    )
    y = alt.Y(
        "confidence:Q",
        scale=alt.Scale(domain=[0, 1]),
        title="confidence (mean p(target) over passes)",
    )
    tooltip: list[str | alt.Tooltip] = [
        "label:N",
        alt.Tooltip("confidence:Q", format=".2f"),
        alt.Tooltip("variability:Q", format=".2f"),
    ]
    tooltip += [
        field
        for field in ("correctness:Q", "forgetting_events:Q")
        if field.split(":")[0] in frame and field.split(":")[0] != color
    ]
    tooltip.append(alt.Tooltip(f"{color}:{_kind(frame[color])}", title=_title(color)))
    points = (
        alt.Chart()
        .mark_circle(size=70, opacity=0.8)
        .encode(
            x=x,
            y=y,
            color=_color(color, _kind(frame[color])),
            tooltip=tooltip,
        )
    )
    layers = [*(_notes(align, notes) for align, notes in _NOTES.items()), points]
    heading = title or "dataset map"
    if column is None:
        return LayerChart(layer=layers, data=frame, title=heading).properties(
            width=width, height=width
        )
    panel = LayerChart(layer=layers).properties(width=width, height=width)
    return FacetChart(
        data=frame,
        spec=panel,
        facet=alt.Facet(f"{column}:N", title=_title(column)),
        title=heading,
    )


def _notes(align: str, notes: list[tuple[str, float, float]]) -> alt.Chart:
    data = pd.DataFrame(notes, columns=["note", "variability", "confidence"])
    return (
        alt.Chart(data)
        .mark_text(align=align, baseline="middle", fontStyle="italic", color="#8c8c8c")  # type: ignore[arg-type]
        .encode(x="variability:Q", y="confidence:Q", text="note:N")
    )


def _color(field: str, kind: str) -> alt.Color:
    """Categories in the default palette; shares and counts on viridis (dark = low)."""
    scale = alt.Undefined if kind == "N" else alt.Scale(scheme="viridis")
    return alt.Color(f"{field}:{kind}", title=_title(field), scale=scale)


def _kind(values: pd.Series) -> str:
    """Numbers with few distinct values (a share of P passes, event counts) are ordinal."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "N"
    return "O" if values.nunique() <= 12 else "Q"


def _title(field: str) -> str:
    return _TITLES.get(field, field)
