"""The optimizer rounds of a probe step: forward, backward, update — k times on one example.

The weight snapshot is taken just before the first update (after the first backward),
so the snapshot and the backward pass's workspace never coexist. Plain SGD with one
step is taken by :func:`param_delta.sgd_step`, which measures the delta in the same
pass that writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from probekit.core import batch as batching
from probekit.core.batch import Batch, Outputs
from probekit.core.metrics import param_delta
from probekit.core.metrics.influence import watch_influence
from probekit.core.optimizer import Updater
from probekit.core.params import ParamEntry
from probekit.core.sandbox import WeightSnapshot

# Called with the gradients at θ (one per stepped tensor, None where unused).
GradObserver = Callable[[list[torch.Tensor | None]], None]


@dataclass
class Descent:
    """What the optimizer rounds measured at θ, plus the fused statistics if any."""

    before: Outputs
    nll_before: torch.Tensor
    finite: bool
    grad_sq: list[float] | None = None
    influence: list[float] | None = None
    decay: list[float] | None = None
    stats: torch.Tensor | None = None


def descend(
    model: Any,
    entries: Sequence[ParamEntry],
    updater: Updater,
    ex_batch: Batch,
    snapshot: WeightSnapshot,
    steps: int,
    influence_batch: Batch | None,
    grad_observer: GradObserver | None = None,
) -> Descent:
    """Run ``steps`` rounds; stops before any update when the loss is not finite."""
    params = [e.param for e in entries]
    fused = updater.plain_sgd and steps == 1
    result: Descent | None = None
    decay = [0.0] * len(params)
    for k in range(steps):
        out = batching.forward(model, ex_batch)
        nll = batching.target_nll(out, ex_batch)
        loss = nll.mean()
        if k == 0:
            result = Descent(batching.detach(out), nll.detach().float(), bool(torch.isfinite(loss)))
            if not result.finite:
                return result
        for p in params:
            p.grad = None
        loss.backward()
        assert result is not None
        if k == 0:
            result.grad_sq = None if fused else _grad_sq(params)
            if grad_observer is not None:
                grad_observer([p.grad for p in params])
            if influence_batch is not None:
                result.influence = watch_influence(model, params, influence_batch, updater.spec.lr)
            snapshot.take()
        if fused:
            result.stats = param_delta.sgd_step(params, [p.grad for p in params], updater.spec.lr)
        else:
            decay = [a + b for a, b in zip(decay, updater.apply(), strict=True)]
    assert result is not None
    result.decay = decay
    return result


def _grad_sq(params: list[torch.nn.Parameter]) -> list[float]:
    """Per-tensor ‖∇L‖² at θ."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    return [float(n.double()) ** 2 for n in torch._foreach_norm(grads)]
