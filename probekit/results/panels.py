"""Panel rows: the plain dicts the board's live charts (and the board snapshot) are fed.

One function per panel, each from a result to a list of flat JSON-able rows with fixed
keys. Floats are plain floats; a value that is not finite (or does not apply) is
``None``, because JSON has no NaN. Every row carries the probe ``step`` it belongs to,
so one selected step can be shown across all panels. Pure: no model, no widgets.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from probekit.results.attribution import AttributionShift, TokenAttribution
from probekit.results.probe import DeltaSummary, ProbeResult, TensorDelta

Row = dict[str, Any]

TIMELINE_KEYS = (
    "step",
    "kind",
    "status",
    "label",
    "delta_l2",
    "delta_l1",
    "loss_before",
    "loss_after",
)
LAYER_KEYS = ("step", "layer", "layer_index", "delta_l2", "delta_rel")
WATCH_KEYS = ("step", "label", "kl", "dlogp_target", "top1_flip", "logit_l2")
TOPK_KEYS = ("step", "label", "when", "rank", "token", "prob")
DRIFT_KEYS = ("step", "label", "layer", "layer_index", "cos_drift", "rel_l2_drift")
TRAJECTORY_KEYS = (
    "step",
    "path_length",
    "displacement",
    "straightness",
    "direction_volatility",
    "magnitude_volatility",
)
TOKEN_KEYS = ("step", "method", "when", "position", "token", "value")
PANELS = ("timeline", "layers", "watch", "topk", "drift", "trajectory", "tokens")


def number(value: float | None) -> float | None:
    """A float for JSON: ``None`` for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def example_label(prompt: str, target: str | None) -> str:
    """The one label of an example or watch item: ``prompt → target`` (the prompt alone if none)."""
    return prompt + (f" → {target.strip()}" if target else "")


def kind(result: ProbeResult) -> str:
    """``failed`` (the step was refused and rolled back), ``committed`` or ``isolated``."""
    if not result.ok:
        return "failed"
    return "committed" if result.committed else "isolated"


def timeline(result: ProbeResult, *, undone: bool = False) -> list[Row]:
    """One row per step: update size and the example's loss before and after.

    ``undone`` marks a committed step that was later reverted (its status reads ``undone``).
    """
    total = result.total
    status = "undone" if undone and result.committed else result.status
    return [
        {
            "step": result.step,
            "kind": kind(result),
            "status": status,
            "label": example_label(result.prompt, result.target),
            "delta_l2": number(total.delta_l2),
            "delta_l1": number(total.delta_l1),
            "loss_before": number(result.loss_before),
            "loss_after": number(result.loss_after),
        }
    ]


def layer_order(labels: Iterable[str]) -> list[str]:
    """Layer labels from input to output: embeddings, blocks, final norm, head."""

    def key(label: str) -> tuple[int, int]:
        if label.startswith("embeddings"):
            return (0, 0)
        if label.startswith("block."):
            return (1, int(label.split(".")[1]))
        return (2, 0) if label == "final_norm" else (3, 0)

    return sorted(dict.fromkeys(labels), key=key)


def layers(result: ProbeResult) -> list[Row]:
    """One row per layer: ‖Δθ‖ of the layer and relative to its weights."""
    groups: dict[str, list[TensorDelta]] = {}
    for tensor in result.tensors:
        groups.setdefault(tensor.layer, []).append(tensor)
    rows = []
    for index, label in enumerate(layer_order(groups)):
        summary = DeltaSummary.of(groups[label])
        rows.append(
            {
                "step": result.step,
                "layer": label,
                "layer_index": index,
                "delta_l2": number(summary.delta_l2),
                "delta_rel": number(summary.delta_rel),
            }
        )
    return rows


def watch(result: ProbeResult) -> list[Row]:
    """One row per watch item (the example itself is not a watch item): logit shift."""
    return [
        {
            "step": result.step,
            "label": row.label,
            "kl": number(row.kl),
            "dlogp_target": number(row.dlogp_target),
            "top1_flip": bool(row.top1_flip),
            "logit_l2": number(row.logit_l2),
        }
        for row in result.watch
        if not row.is_example
    ]


def topk(result: ProbeResult, label: str | None = None) -> list[Row]:
    """Top-k next tokens before and after the step, for one watch item (or every one).

    The example itself is listed under the label ``example``.
    """
    return [
        {
            "step": result.step,
            "label": row.label,
            "when": when,
            "rank": rank,
            "token": token,
            "prob": number(prob),
        }
        for row in result.watch
        if label is None or row.label == label
        for when, pairs in (("before", row.topk_before), ("after", row.topk_after))
        for rank, (token, prob) in enumerate(pairs)
    ]


def drift(result: ProbeResult) -> list[Row]:
    """Hidden-state drift per layer output, one series per watch item (and the example)."""
    return [
        {
            "step": result.step,
            "label": row.label,
            "layer": d.layer,
            "layer_index": index,
            "cos_drift": number(d.cos_drift),
            "rel_l2_drift": number(d.rel_l2_drift),
        }
        for row in result.watch
        for index, d in enumerate(row.drift)
    ]


def trajectory_row(
    recent: Sequence[ProbeResult],
    *,
    path_before: float,
    displacement: float | None,
    span: float | None,
) -> Row:
    """Where a stream of committed steps stands after ``recent[-1]``.

    ``recent`` are the last W committed results (the window, newest last); ``path_before``
    the path length before the newest step. ``displacement`` is the measured ‖θ_t − θ₀‖
    and ``span`` the measured ‖θ_t − θ_{t−W}‖ (``None`` when the weights of that time are no
    longer held). Path length and magnitude volatility come from the results alone; the
    other two need the measured distances, because norms of steps do not add up.
    """
    if not recent:
        raise ValueError("trajectory_row needs at least the newest committed result")
    newest = recent[-1]
    deltas = [r.delta_l2 for r in recent]
    path = path_before + newest.delta_l2
    if len(recent) == 1 and path_before == 0.0:
        displacement = newest.delta_l2  # one step from the origin: the step is the displacement
    if len(recent) == 1:
        span = newest.delta_l2
    total = math.fsum(deltas)
    mean = statistics.fmean(deltas)
    return {
        "step": newest.step,
        "path_length": number(path),
        "displacement": number(displacement),
        "straightness": number(displacement / path)
        if displacement is not None and path > 0
        else None,
        "direction_volatility": number(1 - span / total)
        if span is not None and total > 0
        else None,
        "magnitude_volatility": number(statistics.pstdev(deltas) / mean)
        if len(deltas) > 1 and mean > 0
        else None,
    }


def trajectory(
    committed: Sequence[ProbeResult],
    distances: Sequence[tuple[float | None, float | None]],
    *,
    window: int = 8,
) -> list[Row]:
    """Rows for a whole stream: ``distances[t]`` is (displacement, span) measured after step t."""
    if len(distances) != len(committed):
        raise ValueError(f"{len(committed)} committed steps but {len(distances)} measurements")
    rows: list[Row] = []
    path = 0.0
    for t, (displacement, span) in enumerate(distances):
        recent = committed[max(0, t + 1 - window) : t + 1]
        rows.append(trajectory_row(recent, path_before=path, displacement=displacement, span=span))
        path += committed[t].delta_l2
    return rows


def tokens(attribution: TokenAttribution, *, step: int | None, when: str) -> list[Row]:
    """One row per input token: its attribution for the whole target (the sequence row)."""
    return [
        {
            "step": step,
            "method": attribution.method,
            "when": when,
            "position": position,
            "token": token,
            "value": number(value),
        }
        for position, (token, value) in enumerate(
            zip(attribution.input_tokens, attribution.sequence, strict=True)
        )
    ]


def token_shift(shift: AttributionShift) -> list[Row]:
    """Before and after rows of an attribution shift, plus the step's own token_grad if taken."""
    step = shift.step.step if shift.step is not None else None
    rows = tokens(shift.before, step=step, when="before") + tokens(
        shift.after, step=step, when="after"
    )
    if shift.step is not None:
        rows += step_tokens(shift.step)
    return rows


def step_tokens(result: ProbeResult) -> list[Row]:
    """The step's own ‖∂L/∂eᵢ‖ per input token, measured at the weights it started from."""
    attribution = result.token_attribution()
    if attribution is None:
        return []
    return tokens(attribution, step=result.step, when="before")
