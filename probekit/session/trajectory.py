"""Feeding a sequence of examples through committed steps, and measuring the path travelled.

``run`` commits one probe step per example and computes, after each, the stream
metrics of docs/metrics.md §4. Displacements are measured against weight snapshots in one
memory pass each: θ₀ (taken at the start) and θ_{t−w}, the undo snapshot w steps back.
Ctrl-C keeps the steps done so far; the model is left in a consistent committed state.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch

from probekit.core.inputs import Example
from probekit.core.metrics import param_delta
from probekit.core.sandbox import WeightSnapshot
from probekit.errors import InputError
from probekit.results.labels import example_label
from probekit.results.probe import ProbeResult
from probekit.results.trajectory import StreamRow, Trajectory

if TYPE_CHECKING:
    from probekit.session.probe import Probe, WatchItem


class GradientTrend:
    """An exponential moving average of past gradients, and each new one's cosine with it."""

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.ema: list[torch.Tensor] | None = None
        self.last = math.nan

    def observe(self, grads: list[torch.Tensor | None]) -> None:
        with torch.no_grad():
            current = [g.detach().float() if g is not None else None for g in grads]
            if self.ema is None:
                self.ema = [torch.zeros(()) if g is None else g.clone() for g in current]
                self.last = math.nan
                return
            dot = norm_g = norm_e = 0.0
            for g, e in zip(current, self.ema, strict=True):
                if g is None:
                    continue
                dot += float((g.double() * e.double()).sum())
                norm_g += float(g.double().square().sum())
                norm_e += float(e.double().square().sum())
            denom = math.sqrt(norm_g * norm_e)
            self.last = dot / denom if denom > 0 else math.nan
            for i, g in enumerate(current):
                if g is not None:
                    self.ema[i] = self.ema[i] * self.beta + g * (1 - self.beta)


def distance(snapshot: WeightSnapshot) -> float:
    """‖θ_now − θ_snapshot‖ over the snapshot's tensors, in one pass."""
    stats = param_delta.measure(
        snapshot.params, snapshot.saved, [None] * len(snapshot.saved), restore=False
    )
    return math.sqrt(math.fsum(s.sum_sq for s in stats))


def run(
    probe: Probe,
    examples: Iterable[WatchItem],
    *,
    window: int = 8,
    ema_beta: float = 0.9,
    progress: bool | None = None,
) -> Trajectory:
    """Commit one step per example; returns the steps and the stream metrics after each.

    Every example is checked before the first step, so a bad one fails before any commit.
    """
    items = checked(probe, examples)
    origin = WeightSnapshot(probe.entries)
    trend = GradientTrend(ema_beta)
    depth = len(probe.committed)
    steps: list[ProbeResult] = []
    rows: list[StreamRow] = []
    interrupted = False
    try:
        for example in _progress(items, progress):
            result = probe.commit_step(example, grad_observer=trend.observe)
            steps.append(result)
            if result.committed:
                rows.append(_row(probe, result, rows, origin, trend, window, depth))
    except KeyboardInterrupt:
        interrupted = True
    total = rows[-1].path_length if rows else 0.0
    final = tuple(_with_share(r, total) for r in rows)
    return Trajectory(tuple(steps), final, window, ema_beta, interrupted)


def checked(probe: Probe, examples: Iterable[WatchItem]) -> list[Example]:
    """The examples, each tokenised and validated for a step — before any work is done.

    Raises an :class:`~probekit.errors.InputError` naming the first bad example's index;
    the notes (warnings) come with the steps themselves.
    """
    items = []
    for i, item in enumerate(examples):
        try:
            items.append(probe.encode(item, warn=False).example)
        except InputError as exc:
            raise InputError(f"example {i}: {exc} (nothing was run)") from None
    return items


def _row(
    probe: Probe,
    result: ProbeResult,
    done: Sequence[StreamRow],
    origin: WeightSnapshot,
    trend: GradientTrend,
    window: int,
    depth: int,
) -> StreamRow:
    deltas = [r.delta_l2 for r in done[-(window - 1) :]] if window > 1 else []
    deltas.append(result.delta_l2)
    grads = [r.grad_l2 for r in done[-(window - 1) :]] if window > 1 else []
    grads.append(result.grad_l2)
    path = (done[-1].path_length if done else 0.0) + result.delta_l2
    displacement = distance(origin)
    span = _window_distance(probe, len(deltas), depth + len(done) + 1)
    med = statistics.median(grads)
    return StreamRow(
        step=len(done),
        label=example_label(result.prompt, result.target),
        delta_l2=result.delta_l2,
        grad_l2=result.grad_l2,
        loss_before=result.loss_before,
        loss_after=result.loss_after,
        path_length=path,
        displacement=displacement,
        straightness=displacement / path if path > 0 else math.nan,
        direction_volatility=1 - span / sum(deltas) if sum(deltas) > 0 else math.nan,
        magnitude_volatility=_cv(deltas),
        grad_consistency=trend.last,
        conflict=trend.last < 0,
        spike_score=result.grad_l2 / med if med > 0 else math.nan,
        step_share=math.nan,
    )


def _window_distance(probe: Probe, width: int, committed_in_run: int) -> float:
    """‖θ_t − θ_{t−width}‖, from the undo snapshot ``width`` commits back (NaN if gone)."""
    snapshot = probe.snapshot_back(width) if width <= committed_in_run else None
    return math.nan if snapshot is None else distance(snapshot)


def _cv(values: Sequence[float]) -> float:
    mean = statistics.fmean(values)
    return statistics.pstdev(values) / mean if len(values) > 1 and mean > 0 else math.nan


def _with_share(row: StreamRow, total: float) -> StreamRow:
    from dataclasses import replace

    return replace(row, step_share=row.delta_l2 / total if total > 0 else math.nan)


def _progress(items: list[Example], enabled: bool | None) -> Iterable[Example]:
    if enabled is False or (enabled is None and len(items) < 20):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="probekit", unit="step")
