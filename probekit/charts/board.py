"""Vega-Lite specs of the board's live panels, fed with panel rows (``probekit.results.panels``).

Every function returns a spec dict whose data is the named source ``{"name": "rows"}``
(rows are streamed in later) and which declares the variable param ``selected_step``
(``null`` or an int): the selected step is drawn emphasised. A spec has no title of its
own: the panel around it shows one heading (which names the shown step), and an image
export puts that heading on the image (``StreamChart.export_spec``).
Update sizes, KL and drift span orders of magnitude (an agreeing example
moves the model ~1000× less than a contradicting one), so ``log=True`` (the default)
puts them on log scales; values that cannot sit on a log axis (zero, missing) are left
out there, and shown with ``log=False``. A line never bridges a missing value: a step
where its metric is missing (or not drawable on a log axis) breaks the line there.
Labels and tokens are data, drawn as text.
"""

from __future__ import annotations

from typing import Any

import altair as alt

Spec = dict[str, Any]
ROWS = "rows"
SELECTED = "selected_step"
KIND_ORDER = ["isolated", "committed", "failed"]
WIDTH = 420


def _finish(chart: alt.TopLevelMixin) -> Spec:
    spec: Spec = chart.to_dict(validate=True)
    spec.pop("datasets", None)
    _inherit_data(spec)
    spec["data"] = {"name": ROWS}
    spec["params"] = [{"name": SELECTED, "value": None}]
    return spec


def _inherit_data(spec: Spec) -> None:
    """Sub-charts read the top-level data (Altair gives data-less layers a placeholder)."""
    for key in ("vconcat", "hconcat", "layer"):
        for part in spec.get(key, []):
            part.pop("data", None)
            _inherit_data(part)


def _is_selected() -> str:
    return f"datum.step === {SELECTED}"


def _emphasis(on: int, off: int) -> Any:
    """A larger mark (or thicker line) for the selected step."""
    return alt.condition(_is_selected(), alt.value(on), alt.value(off))


def _positive(field: str, log: bool) -> list[str]:
    return [f"isValid(datum.{field}) && datum.{field} > 0"] if log else [f"isValid(datum.{field})"]


def _axis() -> alt.Axis:
    """Short labels, overlapping ones dropped (log axes otherwise crowd their minor ticks)."""
    return alt.Axis(format="~g", labelOverlap="greedy", labelSeparation=4)


def _scale(log: bool) -> alt.Scale:
    return alt.Scale(type="log") if log else alt.Scale(zero=True)


def timeline(log: bool = True) -> Spec:
    """(a) Per step: ‖Δθ‖₂ and ‖Δθ‖₁ (top) and the example's loss before/after (bottom).

    Shape tells isolated, committed and failed steps apart; the selected step is larger.
    """
    size = _emphasis(140, 45)
    shape = alt.Shape("kind:N", scale=alt.Scale(domain=KIND_ORDER), title="step")
    tooltip = ["step:Q", "label:N", "kind:N", "status:N", alt.Tooltip("value:Q", format=".3g")]
    delta = (
        alt.Chart()
        .transform_fold(["delta_l2", "delta_l1"], as_=["metric", "value"])
        .transform_filter(_positive("value", log)[0])
        .mark_point(filled=True)
        .encode(
            x=alt.X("step:Q", title="step", axis=alt.Axis(format="d")),
            y=alt.Y("value:Q", scale=_scale(log), axis=_axis(), title="update size ‖Δθ‖"),
            color=alt.Color("metric:N", title="metric"),
            shape=shape,
            size=size,
            tooltip=tooltip,
        )
        .properties(width=WIDTH, height=150)
    )
    loss = (
        alt.Chart()
        .transform_fold(["loss_before", "loss_after"], as_=["metric", "value"])
        .transform_filter(_positive("value", False)[0])
        .mark_point(filled=True)
        .encode(
            x=alt.X("step:Q", title="step", axis=alt.Axis(format="d")),
            y=alt.Y("value:Q", title="loss of the example"),
            color=alt.Color("metric:N", title="metric"),
            shape=shape,
            size=size,
            tooltip=tooltip,
        )
        .properties(width=WIDTH, height=110)
    )
    chart = alt.vconcat(delta, loss).resolve_scale(color="independent")
    return _finish(chart)


def layer_heatmap(log: bool = True) -> Spec:
    """(b) Layer × step heatmap of ‖Δθ‖₂; the selected step's column is outlined."""
    chart = (
        alt.Chart()
        .transform_filter(_positive("delta_l2", log)[0])
        .mark_rect()
        .encode(
            x=alt.X("step:O", title="step"),
            y=alt.Y("layer:N", sort=alt.EncodingSortField("layer_index"), title=None),
            color=alt.Color(
                "delta_l2:Q",
                scale=alt.Scale(type="log", scheme="viridis")
                if log
                else alt.Scale(scheme="viridis"),
                title="‖Δθ‖ of the layer",
                legend=alt.Legend(format=".2g"),
            ),
            stroke=alt.condition(_is_selected(), alt.value("#d62728"), alt.value(None)),
            strokeWidth=alt.condition(_is_selected(), alt.value(2), alt.value(0)),
            tooltip=[
                "step:O",
                "layer:N",
                alt.Tooltip("delta_l2:Q", format=".3g"),
                alt.Tooltip("delta_rel:Q", format=".3g"),
            ],
        )
        .properties(width=WIDTH, height=160)
    )
    return _finish(chart)


def watch_kl(log: bool = True) -> Spec:
    """(c) KL(before ‖ after) of every watch item at the selected step (a dot per item)."""
    chart = (
        alt.Chart()
        .transform_filter(_positive("kl", log)[0])
        .mark_point(filled=True, size=90)
        .encode(
            y=alt.Y("label:N", title=None, sort=None),
            x=alt.X("kl:Q", scale=_scale(log), axis=_axis(), title="KL(before ‖ after)"),
            color=alt.Color(
                "top1_flip:N",
                title="top-1 flipped",
                scale=alt.Scale(domain=[False, True], range=["#4c78a8", "#e45756"]),
            ),
            tooltip=[
                "label:N",
                alt.Tooltip("kl:Q", format=".3g"),
                alt.Tooltip("dlogp_target:Q", format=".3g"),
                "top1_flip:N",
                alt.Tooltip("logit_l2:Q", format=".3g"),
            ],
        )
        .properties(width=WIDTH)
    )
    return _finish(chart)


def topk_bars() -> Spec:
    """(c) Top-k next-token probabilities before and after the step, for one watch prompt."""
    chart = (
        alt.Chart()
        .mark_bar()
        .encode(
            y=alt.Y("token:N", sort="-x", title=None),
            x=alt.X("prob:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("when:N", scale=alt.Scale(domain=["before", "after"]), title=None),
            yOffset=alt.YOffset("when:N", sort=["before", "after"]),
            tooltip=["label:N", "token:N", "when:N", "rank:Q", alt.Tooltip("prob:Q", format=".3f")],
        )
        .properties(width=WIDTH, height=200)
    )
    return _finish(chart)


def hidden_drift(log: bool = True, metric: str = "cos_drift") -> Spec:
    """(d) Hidden-state drift by layer output at the selected step, one line per watch item."""
    chart = (
        alt.Chart()
        .transform_filter(_positive(metric, log)[0])
        .mark_line(point=True)
        .encode(
            x=alt.X("layer:N", sort=alt.EncodingSortField("layer_index"), title="layer output"),
            y=alt.Y(f"{metric}:Q", scale=_scale(log), axis=_axis(), title=metric),
            color=alt.Color("label:N", title=None),
            tooltip=["label:N", "layer:N", alt.Tooltip(f"{metric}:Q", format=".3g")],
        )
        .properties(width=WIDTH, height=180)
    )
    return _finish(chart)


def _stream(fields: list[str], title: str, log: bool) -> Any:
    """Lines over committed steps with a point per step; the selected step's point is larger.

    A value that is missing (or not drawable on a log axis) breaks its line: the line is fed
    every row, such a value made null, and Vega starts a new path after it; the points are
    fed only the drawable values.
    """
    drawable = _positive("value", log)[0]
    base = (
        alt.Chart()
        .transform_fold(list(fields), as_=["metric", "value"])
        .transform_calculate(value=f"({drawable}) ? datum.value : null")
        .encode(
            x=alt.X("step:Q", title="step", axis=alt.Axis(format="d")),
            y=alt.Y("value:Q", scale=_scale(log), axis=_axis(), title=title),
            color=alt.Color(
                "metric:N",
                title=None,
                scale=alt.Scale(domain=fields),
                # under the plot: side by side, legends on the right would take more room
                # than the two plots
                legend=alt.Legend(orient="bottom", direction="vertical"),
            ),
            tooltip=["step:Q", "metric:N", alt.Tooltip("value:Q", format=".3g")],
        )
    )
    line = base.mark_line(invalid="break-paths-filter-domains")
    points = base.transform_filter(drawable).mark_point(filled=True).encode(size=_emphasis(110, 25))
    return alt.layer(line, points).properties(width=WIDTH // 2, height=150)


def trajectory(log: bool = False) -> Spec:
    """(e) Over committed steps: path length and displacement; the volatility pair."""
    chart = alt.hconcat(
        _stream(["path_length", "displacement"], "distance in weight space", log),
        _stream(["direction_volatility", "magnitude_volatility"], "volatility", False),
    ).resolve_scale(color="independent")
    return _finish(chart)


def token_heatmap() -> Spec:
    """(f) Attribution of each input token (for the whole target), one row per method/moment.

    Rows read ``method when · step N``; columns ``position: token``.
    """
    chart = (
        alt.Chart()
        .transform_calculate(
            column="datum.position + ': ' + datum.token",
            row="datum.method + ' ' + datum.when + (isValid(datum.step) ? ' · step ' + "
            "datum.step : '')",
        )
        .mark_rect()
        .encode(
            x=alt.X(
                "column:N",
                sort=alt.EncodingSortField("position"),
                title="input token",
                axis=alt.Axis(labelAngle=-45),
            ),
            y=alt.Y("row:N", title=None, sort=None),
            color=alt.Color(
                "value:Q", scale=alt.Scale(scheme="redblue", domainMid=0), title="score"
            ),
            tooltip=[
                "token:N",
                "position:Q",
                "method:N",
                "when:N",
                alt.Tooltip("value:Q", format=".4g"),
            ],
        )
        .properties(width=WIDTH)
    )
    return _finish(chart)


SPECS = {
    "timeline": timeline,
    "layers": layer_heatmap,
    "watch": watch_kl,
    "topk": topk_bars,
    "drift": hidden_drift,
    "trajectory": trajectory,
    "tokens": token_heatmap,
}
