"""The optimizer rounds of a probe step: forward, backward, update — k times on one example.

The weight snapshot is taken just before the first update (after the first backward),
so the snapshot and the backward pass's workspace never coexist. Plain SGD with one
step is taken by :func:`param_delta.sgd_step`, which measures the delta in the same
pass that writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
    stats: list[param_delta.TensorStats] | None = None
    token_grad: list[float] | None = None


def descend(
    model: Any,
    entries: Sequence[ParamEntry],
    updater: Updater,
    ex_batch: Batch,
    snapshot: WeightSnapshot,
    steps: int,
    influence_batch: Batch | None,
    grad_observer: GradObserver | None = None,
    token_grad: bool = False,
    theta_sq: Sequence[float] | None = None,
) -> Descent:
    """Run ``steps`` rounds; stops before any update when the loss is not finite.

    ``token_grad`` also reads ‖∂L/∂eᵢ‖ per input token from the first round's backward
    (eᵢ the input embedding output), at no extra pass. ``theta_sq``: Σ θ² per tensor of
    these same weights from an earlier step, which the fused SGD statistics then reuse.
    """
    params = [e.param for e in entries]
    fused = updater.plain_sgd and steps == 1
    result: Descent | None = None
    decay = [0.0] * len(params)
    for k in range(steps):
        with _embedding_grad(model, token_grad and k == 0) as embedded:
            out = batching.forward(model, ex_batch)
        nll = batching.target_nll(out, ex_batch)
        loss = nll.mean()
        if k == 0:
            result = Descent(batching.detach(out), nll.detach().float(), bool(torch.isfinite(loss)))
            if not result.finite:
                return result
        for p in params:
            p.grad = None
        if loss.requires_grad:  # else no selected parameter is used: every gradient is None
            loss.backward()
        assert result is not None
        if k == 0:
            if embedded:
                grad = embedded[0].grad
                norms = grad[0].norm(dim=-1) if grad is not None else None
                result.token_grad = None if norms is None else norms.double().tolist()
            result.grad_sq = None if fused else _grad_sq(params)
            if grad_observer is not None:
                grad_observer([p.grad for p in params])
            if influence_batch is not None:
                result.influence = watch_influence(model, params, influence_batch, updater.spec.lr)
            snapshot.take()
        if fused:
            grads = [p.grad for p in params]
            result.stats = param_delta.sgd_step(
                params, grads, updater.spec.lr, snapshot.saved, updater.workspace, theta_sq
            )
        else:
            decay = [a + b for a, b in zip(decay, updater.apply(), strict=True)]
    assert result is not None
    result.decay = decay
    return result


@contextmanager
def _embedding_grad(model: Any, active: bool) -> Iterator[list[torch.Tensor]]:
    """Keep the input embedding output of the forward run inside, with its gradient."""
    captured: list[torch.Tensor] = []
    if not active:
        yield captured
        return

    def keep(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        if not output.requires_grad:  # the embedding is not stepped: make it a leaf
            output = output.detach().requires_grad_(True)
        output.retain_grad()
        captured.append(output)
        return output

    handle = model.get_input_embeddings().register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


def _grad_sq(params: list[torch.nn.Parameter]) -> list[float]:
    """Per-tensor ‖∇L‖² at θ."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    if not grads:
        return []
    norms = torch.stack([n.double() for n in torch._foreach_norm(grads)])
    return norms.square().tolist()  # one read of the device, however many tensors
