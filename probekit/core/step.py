"""One probe step: k optimizer steps on one example, measured before and after.

``take_step`` runs inside :func:`probekit.core.sandbox.preserved` and a weight
snapshot, so any exception (Ctrl-C included) leaves the model as it was. An
isolated step reverts the weights in the same memory pass that measures the
delta; a committed step keeps them and hands the snapshot back for undo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from probekit.core import batch as batching
from probekit.core import readout
from probekit.core.batch import Batch, Outputs
from probekit.core.descent import Descent, GradObserver, descend
from probekit.core.inputs import EncodedExample
from probekit.core.metrics import linear, param_delta
from probekit.core.optimizer import OptimizerState, Updater
from probekit.core.params import ParamEntry
from probekit.core.sandbox import WeightSnapshot, preserved
from probekit.results.probe import StepStatus, TensorDelta, WatchRow


@dataclass(frozen=True)
class Watched:
    """A watch set ready to run: encodings, labels, the batch and (cached) outputs at θ."""

    items: tuple[EncodedExample, ...]
    labels: tuple[str, ...]
    batch: Batch | None
    before: Outputs | None


@dataclass(frozen=True)
class StepRequest:
    example: EncodedExample
    steps: int
    commit: bool
    top_k: int
    influence: bool
    linearize: bool = False
    grad_observer: GradObserver | None = None
    token_grad: bool = False
    # Σ θ² per stepped tensor at the current weights, from an earlier plain-SGD step on
    # them (the caller vouches they are unchanged); None: measure it
    theta_sq: tuple[float, ...] | None = None


@dataclass
class StepOutcome:
    """Raw material for a :class:`ProbeResult`, plus what undo needs after a commit."""

    status: StepStatus
    loss_before: float
    loss_after: float
    nll_before: list[float]
    nll_after: list[float]
    tensors: list[TensorDelta]
    watch: list[WatchRow]
    self_influence: float
    notes: list[str]
    snapshot: WeightSnapshot | None = None
    optimizer_state: OptimizerState | None = None
    after_watch: Outputs | None = None
    token_grad: list[float] | None = None


def take_step(
    model: Any,
    tokenizer: Any | readout.TokenTexts,
    entries: Sequence[ParamEntry],
    updater: Updater,
    watched: Watched,
    request: StepRequest,
    pad_id: int,
    batches: batching.Batches | None = None,
) -> StepOutcome:
    """Step on ``request.example`` and measure everything (see docs/metrics.md sections 1–3).

    ``batches``: a cache of batches kept between steps (a repeated example's are reused).
    """
    batches = batches if batches is not None else batching.Batches()
    with preserved(model, entries):
        prior_state = updater.save_state() if request.commit else None
        # an isolated step's copy of θ is dropped at its end: its stacked part can live in
        # the updater's scratch matrices, written over by every isolated step
        scratch = None if request.commit else updater.workspace
        snapshot = WeightSnapshot(entries, take=False, scratch=scratch)
        try:
            if request.commit:
                outcome = _step_and_measure(
                    model, entries, updater, watched, request, pad_id, snapshot, batches
                )
            else:
                with updater.scratch_state():
                    outcome = _step_and_measure(
                        model, entries, updater, watched, request, pad_id, snapshot, batches
                    )
        except BaseException:
            snapshot.restore()
            if prior_state is not None:
                updater.load_state(prior_state)
            raise
        finally:
            for e in entries:
                e.param.grad = None
    if request.commit and outcome.status == "ok":
        outcome.snapshot, outcome.optimizer_state = snapshot, prior_state
    elif prior_state is not None:
        updater.load_state(prior_state)  # a failed commit leaves the optimizer as it was
    outcome.watch = readout.with_token_text(outcome.watch, tokenizer)
    return outcome


def _step_and_measure(
    model: Any,
    entries: Sequence[ParamEntry],
    updater: Updater,
    watched: Watched,
    request: StepRequest,
    pad_id: int,
    snapshot: WeightSnapshot,
    batches: batching.Batches,
) -> StepOutcome:
    device = entries[0].param.device
    ex_batch = batches.make([request.example], pad_id, device)
    influence_batch = watched.batch if request.influence else None
    done = descend(
        model, entries, updater, ex_batch, snapshot, request.steps, influence_batch,
        request.grad_observer, request.token_grad, request.theta_sq,
    )  # fmt: skip
    if not done.finite:
        return _failed("nonfinite_loss", done, [])
    after_watch, after_ex = _forward_after(
        model, watched, request.example, ex_batch, pad_id, batches
    )
    lin = (
        _linearise(model, entries, snapshot, watched, after_watch, ex_batch, done.before, after_ex)
        if request.linearize
        else None
    )
    stats = done.stats
    if stats is None:
        directions = updater.directions(snapshot.saved)
        stats = param_delta.measure(
            snapshot.params, snapshot.saved, directions, restore=not request.commit
        )
    elif not request.commit:
        snapshot.restore()
    tensors = _tensor_rows(entries, stats, done.grad_sq, done.decay)
    status = _status(stats, entries)
    if status != "ok":
        snapshot.restore()
        return _failed(status, done, tensors)
    rows = _watch_rows(watched, after_watch, done, request.example, after_ex, ex_batch,
                       request.top_k)  # fmt: skip
    if lin is not None:
        rows = [
            replace(row, linear_residual=res, dz_pred=norm)
            for row, res, norm in zip(rows, *lin, strict=True)
        ]
    nll_after = batching.target_nll(after_ex, ex_batch)
    return StepOutcome(
        status="ok",
        loss_before=float(done.nll_before.double().mean()),
        loss_after=float(nll_after.double().mean()),
        nll_before=done.nll_before.tolist(),
        nll_after=nll_after.tolist(),
        tensors=tensors,
        watch=rows,
        self_influence=updater.spec.lr * sum(t.grad_sq for t in tensors),
        notes=_notes(updater, tensors, entries),
        after_watch=batching.detach(after_watch) if after_watch is not None else None,
        token_grad=done.token_grad[:-1] if done.token_grad is not None else None,
    )


# Padding tokens a merged forward may add before two separate forwards are cheaper
# (a forward pass has a fixed cost of roughly this many tokens: reading the weights).
MERGE_SLACK_TOKENS = 48


def _forward_after(
    model: Any,
    watched: Watched,
    example: EncodedExample,
    ex_batch: Batch,
    pad_id: int,
    batches: batching.Batches,
) -> tuple[Outputs | None, Outputs]:
    """Outputs after the step for the watch set and the example: one batch when that is cheaper."""
    with torch.no_grad():
        if watched.batch is None:
            return None, batching.forward(model, ex_batch)
        widths = [len(e.input_ids) for e in watched.items]
        separate = sum(widths) + len(example.input_ids)
        merged = (len(widths) + 1) * max(*widths, len(example.input_ids))
        if merged <= separate + MERGE_SLACK_TOKENS:
            batch = batches.make([*watched.items, example], pad_id, ex_batch.input_ids.device)
            return readout.split(batching.forward(model, batch), watched.batch)
        return batching.forward(model, watched.batch), batching.forward(model, ex_batch)


def _failed(status: StepStatus, done: Descent, tensors: list[TensorDelta]) -> StepOutcome:
    messages = {
        "nonfinite_loss": "the loss is NaN or infinite at the current weights; nothing was stepped",
        "nonfinite_grad": "the gradient has NaN or infinite entries; the step was not applied",
        "nonfinite_weights": "the step made weights NaN or infinite (lr too large?); reverted",
    }
    nll = done.nll_before.tolist()
    return StepOutcome(
        status, float(done.nll_before.double().mean()), math.nan, nll, [math.nan] * len(nll),
        tensors, [], math.nan, [messages[status]],
    )  # fmt: skip


def _linearise(
    model: Any,
    entries: Sequence[ParamEntry],
    snapshot: WeightSnapshot,
    watched: Watched,
    after_watch: Outputs | None,
    ex_batch: Batch,
    before: Outputs,
    after_ex: Outputs,
) -> tuple[list[float], list[float]]:
    """Residuals and predicted-change norms for the watch rows, then the example row."""
    with torch.no_grad():
        delta = [p - s for p, s in zip(snapshot.params, snapshot.saved, strict=True)]
    parts = []
    if watched.batch is not None and watched.before is not None and after_watch is not None:
        parts.append((watched.batch, after_watch.logits - watched.before.logits))
    parts.append((ex_batch, after_ex.logits - before.logits))
    residuals: list[float] = []
    norms: list[float] = []
    for batch, actual in parts:
        predicted = linear.predicted_logit_change(model, entries, snapshot.saved, delta, batch)
        res, norm = linear.residual(actual, predicted, batch.read_counts)
        residuals += res
        norms += norm
    return residuals, norms


def _status(stats: Sequence[param_delta.TensorStats], entries: Sequence[ParamEntry]) -> StepStatus:
    if all(s.finite for s in stats):
        return "ok"
    grads = (e.param.grad for e in entries)
    grads_finite = all(g is None or bool(torch.isfinite(g).all()) for g in grads)
    return "nonfinite_weights" if grads_finite else "nonfinite_grad"


def _tensor_rows(
    entries: Sequence[ParamEntry],
    stats: Sequence[param_delta.TensorStats],
    grad_sq: list[float] | None,
    decay: list[float] | None,
) -> list[TensorDelta]:
    return [
        TensorDelta(
            name=e.name,
            layer=e.layer,
            numel=e.param.numel(),
            sum_sq=s.sum_sq,
            sum_abs=s.sum_abs,
            max_abs=s.max_abs,
            changed=s.changed,
            lost=s.lost,
            theta_sq=s.theta_sq,
            grad_sq=s.direction_sq if grad_sq is None else grad_sq[i],
            decay_sq=decay[i] if decay else 0.0,
            aliases=e.aliases,
        )
        for i, (e, s) in enumerate(zip(entries, stats, strict=True))
    ]


def _notes(
    updater: Updater, tensors: list[TensorDelta], entries: Sequence[ParamEntry]
) -> list[str]:
    notes = []
    unused = [e.name for e in entries if e.param.grad is None]
    if unused:
        notes.append(
            f"not used by this example's loss, so no gradient and a delta of 0: {unused[0]}"
            + (f" and {len(unused) - 1} more selected tensors" if len(unused) > 1 else "")
        )
    if updater.spec.lr == 0:
        notes.append("lr is 0: no parameter can move")
    elif all(t.grad_sq == 0 for t in tensors):
        notes.append("the gradient is exactly zero: nothing to update")
    lost = sum(t.lost for t in tensors)
    if lost:
        notes.append(
            f"{lost} parameter updates were below the resolution of the weights' dtype and lost"
        )
    return notes


def _watch_rows(
    watched: Watched,
    after: Outputs | None,
    done: Descent,
    example: EncodedExample,
    after_ex: Outputs,
    ex_batch: Batch,
    top_k: int,
) -> list[WatchRow]:
    """The watch items' rows (with influence, if measured), then the example's row."""
    parts = []
    if watched.batch is not None and watched.before is not None and after is not None:
        parts.append(readout.Part(watched.labels, watched.items, watched.before, after,
                                  watched.batch))  # fmt: skip
    parts.append(readout.Part(("example",), (example,), done.before, after_ex, ex_batch, True))
    found = readout.rows_of(parts, top_k)
    if done.influence is not None and len(parts) == 2:
        n = len(watched.items)
        influence = zip(found[:n], done.influence, strict=True)
        found[:n] = [replace(r, influence=v) for r, v in influence]
    return found
