"""One probe step: k optimizer steps on one example, measured before and after.

``take_step`` runs inside :func:`probekit.core.sandbox.preserved` and a weight
snapshot, so any exception (Ctrl-C included) leaves the model as it was. An
isolated step reverts the weights in the same memory pass that measures the
delta; a committed step keeps them and hands the snapshot back for undo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from probekit.core import batch as batching
from probekit.core.batch import Batch, Outputs
from probekit.core.inputs import EncodedExample
from probekit.core.metrics import hidden_drift, linear, logit_shift, param_delta
from probekit.core.metrics.influence import watch_influence
from probekit.core.optimizer import OptimizerState, Updater
from probekit.core.params import ParamEntry
from probekit.core.sandbox import WeightSnapshot, preserved
from probekit.results.probe import LayerDrift, TensorDelta, WatchRow


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


@dataclass
class StepOutcome:
    """Raw material for a :class:`ProbeResult`, plus what undo needs after a commit."""

    status: str
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


def take_step(
    model: Any,
    tokenizer: Any,
    entries: Sequence[ParamEntry],
    updater: Updater,
    watched: Watched,
    request: StepRequest,
    pad_id: int,
) -> StepOutcome:
    """Step on ``request.example`` and measure everything (see METRICS.md sections 1–3)."""
    device = entries[0].param.device
    ex_batch = batching.make_batch([request.example], pad_id, device)
    with preserved(model, entries):
        prior_state = updater.save_state() if request.commit else None
        snapshot = WeightSnapshot(entries)
        try:
            if request.commit:
                outcome = _step_and_measure(
                    model, entries, updater, watched, request, ex_batch, snapshot
                )
            else:
                with updater.scratch_state():
                    outcome = _step_and_measure(
                        model, entries, updater, watched, request, ex_batch, snapshot
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
    outcome.watch = _label_tokens(outcome.watch, tokenizer)
    return outcome


def _step_and_measure(
    model: Any,
    entries: Sequence[ParamEntry],
    updater: Updater,
    watched: Watched,
    request: StepRequest,
    ex_batch: Batch,
    snapshot: WeightSnapshot,
) -> StepOutcome:
    params = [e.param for e in entries]
    before, nll_before, grad_sq, influence, decay = _descend(
        model, params, updater, watched, request, ex_batch
    )
    with torch.no_grad():
        after_ex = batching.forward(model, ex_batch)
        after_watch = batching.forward(model, watched.batch) if watched.batch else None
    linear = (
        _linearise(model, entries, snapshot, watched, after_watch, ex_batch, before, after_ex)
        if request.linearize
        else None
    )
    directions = updater.directions(snapshot.saved)
    stats = param_delta.measure(
        snapshot.params, snapshot.saved, directions, restore=not request.commit
    )
    status = _status(stats, nll_before, params)
    if status != "ok":
        snapshot.restore()
    tensors = _tensor_rows(entries, stats, grad_sq, decay)
    nll_after = batching.target_nll(after_ex, ex_batch)
    loss_before = float(nll_before.double().mean())
    notes = _notes(updater, tensors, status)
    if status != "ok":
        return StepOutcome(
            status,
            loss_before,
            math.nan,
            nll_before.tolist(),
            [math.nan] * len(nll_before),
            tensors,
            [],
            math.nan,
            notes,
        )
    rows = _watch_rows(watched, after_watch, influence, request.top_k)
    rows.append(_row("example", request.example, before, after_ex, ex_batch, request.top_k)[0])
    if linear is not None:
        rows = [
            _with(row, linear_residual=res, dz_pred=norm)
            for row, res, norm in zip(rows, *linear, strict=True)
        ]
    grad_total = sum(t.grad_sq for t in tensors)
    return StepOutcome(
        status="ok",
        loss_before=loss_before,
        loss_after=float(nll_after.double().mean()),
        nll_before=nll_before.tolist(),
        nll_after=nll_after.tolist(),
        tensors=tensors,
        watch=rows,
        self_influence=updater.spec.lr * grad_total,
        notes=notes,
        after_watch=batching.detach(after_watch) if after_watch is not None else None,
    )


def _descend(
    model: Any,
    params: list[torch.nn.Parameter],
    updater: Updater,
    watched: Watched,
    request: StepRequest,
    ex_batch: Batch,
) -> tuple[Outputs, torch.Tensor, list[float] | None, list[float] | None, list[float]]:
    """k forward/backward/update rounds; returns what was measured at θ on the way."""
    before: Outputs | None = None
    nll_before = torch.empty(0)
    grad_sq: list[float] | None = None
    influence: list[float] | None = None
    decay = [0.0] * len(params)
    for k in range(request.steps):
        out = batching.forward(model, ex_batch)
        nll = batching.target_nll(out, ex_batch)
        loss = nll.mean()
        if k == 0:
            before, nll_before = batching.detach(out), nll.detach()
            if not torch.isfinite(loss):
                break
        for p in params:
            p.grad = None
        loss.backward()
        if k == 0:
            grad_sq = _grad_sq(params, updater, request)
            if request.influence and watched.batch is not None:
                influence = watch_influence(model, params, watched.batch, updater.spec.lr)
        step_decay = updater.apply()
        decay = [a + b for a, b in zip(decay, step_decay, strict=True)]
    assert before is not None
    return before, nll_before.float(), grad_sq, influence, decay


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


def _grad_sq(
    params: list[torch.nn.Parameter], updater: Updater, request: StepRequest
) -> list[float] | None:
    """Per-tensor ‖∇L‖² at θ, unless the delta kernel will read the same gradient anyway."""
    plain_sgd = updater.spec.name == "sgd" and updater.spec.momentum == 0 and not updater.half
    if plain_sgd and request.steps == 1 and updater.spec.lr != 0:
        return None
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    return [float(n.double()) ** 2 for n in torch._foreach_norm(grads)]


def _status(stats: torch.Tensor, nll_before: torch.Tensor, params: list[torch.nn.Parameter]) -> str:
    if not bool(torch.isfinite(nll_before).all()):
        return "nonfinite_loss"
    if bool(torch.isfinite(stats).all()):
        return "ok"
    grads_finite = all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)
    return "nonfinite_weights" if grads_finite else "nonfinite_grad"


def _tensor_rows(
    entries: Sequence[ParamEntry],
    stats: torch.Tensor,
    grad_sq: list[float] | None,
    decay: list[float],
) -> list[TensorDelta]:
    rows = []
    for i, e in enumerate(entries):
        s = stats[i].tolist()
        rows.append(
            TensorDelta(
                name=e.name,
                layer=e.layer,
                numel=e.param.numel(),
                sum_sq=s[0],
                sum_abs=s[1],
                max_abs=s[2],
                changed=int(s[3]),
                lost=int(s[4]),
                theta_sq=s[5],
                grad_sq=s[6] if grad_sq is None else grad_sq[i],
                decay_sq=decay[i],
                aliases=e.aliases,
            )
        )
    return rows


def _notes(updater: Updater, tensors: list[TensorDelta], status: str) -> list[str]:
    messages = {
        "nonfinite_loss": "the loss is NaN or infinite at the current weights; nothing was stepped",
        "nonfinite_grad": "the gradient has NaN or infinite entries; the step was not applied",
        "nonfinite_weights": "the step made weights NaN or infinite (lr too large?); reverted",
    }
    if status in messages:
        return [messages[status]]
    notes = []
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
    watched: Watched, after: Outputs | None, influence: list[float] | None, top_k: int
) -> list[WatchRow]:
    if watched.batch is None or watched.before is None or after is None:
        return []
    rows = _rows(watched.labels, watched.items, watched.before, after, watched.batch, top_k)
    if influence is not None:
        rows = [_with(row, influence=value) for row, value in zip(rows, influence, strict=True)]
    return rows


def _row(
    label: str, item: EncodedExample, before: Outputs, after: Outputs, batch: Batch, top_k: int
) -> list[WatchRow]:
    return _rows((label,), (item,), before, after, batch, top_k, is_example=True)


def _rows(
    labels: Sequence[str],
    items: Sequence[EncodedExample],
    before: Outputs,
    after: Outputs,
    batch: Batch,
    top_k: int,
    is_example: bool = False,
) -> list[WatchRow]:
    zb, za, counts = before.logits, after.logits, batch.read_counts
    kls = logit_shift.kl(zb, za, counts)
    dlogp = logit_shift.dlogp_target(zb, za, batch.targets, counts)
    flips = logit_shift.top1_flip(zb, za, counts)
    l2s = logit_shift.logit_l2(zb, za, counts)
    top_b, top_a = logit_shift.topk(zb, counts, top_k), logit_shift.topk(za, counts, top_k)
    cos, rel = hidden_drift.drift(before.hidden, after.hidden, batch.token_counts)
    names = hidden_drift.layer_labels(len(before.hidden))
    return [
        WatchRow(
            label=labels[i],
            prompt=items[i].example.prompt,
            target=items[i].example.target,
            is_example=is_example,
            kl=kls[i],
            dlogp_target=dlogp[i],
            top1_flip=flips[i],
            logit_l2=l2s[i],
            topk_before=tuple(zip(map(str, top_b[i][0]), top_b[i][1], strict=True)),
            topk_after=tuple(zip(map(str, top_a[i][0]), top_a[i][1], strict=True)),
            drift=tuple(LayerDrift(n, c, r) for n, c, r in zip(names, cos[i], rel[i], strict=True)),
        )
        for i in range(len(items))
    ]


def _label_tokens(rows: list[WatchRow], tokenizer: Any) -> list[WatchRow]:
    """Replace token ids in the top-k lists by their text (decoded, shown literally)."""

    def text(pairs: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
        return tuple((tokenizer.decode([int(i)]), p) for i, p in pairs)

    return [_with(r, topk_before=text(r.topk_before), topk_after=text(r.topk_after)) for r in rows]


def _with(row: WatchRow, **changes: Any) -> WatchRow:
    from dataclasses import replace

    return replace(row, **changes)
