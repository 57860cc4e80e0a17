"""The optimizer's update written as a pure function of (θ, g, state), for stacks of examples.

:class:`probekit.core.optimizer.Updater` steps the live weights through ``torch.optim``;
this module computes the same update without touching them, for a whole chunk of
examples at once: ``theta`` is shared or stacked ``(C, *shape)``, ``grad`` is stacked,
and the state broadcasts the same way. The arithmetic follows torch.optim's SGD and
Adam/AdamW step by step (same operations, same order), in float32 for half-precision
parameters like the Updater's master copies (float64 stays float64), rounded into the
parameter's dtype at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from probekit.core.optimizer import OptimizerSpec


@dataclass(frozen=True)
class TensorState:
    """Optimizer state of one tensor (shared or stacked); ``None`` where not started."""

    step: float = 0.0
    exp_avg: torch.Tensor | None = None
    exp_avg_sq: torch.Tensor | None = None
    momentum_buffer: torch.Tensor | None = None

    @classmethod
    def of(cls, saved: dict[str, object] | None) -> TensorState:
        """From one entry of ``Updater.save_state()`` (torch.optim's per-parameter state)."""
        if not saved:
            return cls()
        step = saved.get("step", 0.0)
        return cls(
            step=float(step.item()) if isinstance(step, torch.Tensor) else float(step),  # type: ignore[arg-type]
            exp_avg=_tensor(saved.get("exp_avg")),
            exp_avg_sq=_tensor(saved.get("exp_avg_sq")),
            momentum_buffer=_tensor(saved.get("momentum_buffer")),
        )


def apply(
    spec: OptimizerSpec, theta: torch.Tensor, grad: torch.Tensor, state: TensorState
) -> tuple[torch.Tensor, TensorState]:
    """θ after one update from ``grad`` (stacked), and the state after it."""
    dtype = theta.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    p = theta.to(work)
    g = grad.to(work)
    if spec.name == "sgd":
        p, state = _sgd(spec, p, g, state)
    else:
        p, state = _adam(spec, p, g, state)
    return p.to(dtype), state


def _sgd(
    spec: OptimizerSpec, p: torch.Tensor, g: torch.Tensor, state: TensorState
) -> tuple[torch.Tensor, TensorState]:
    if spec.decay != 0:
        g = g.add(p, alpha=spec.decay)
    buf = state.momentum_buffer
    if spec.momentum != 0:
        buf = g.clone() if buf is None else buf.mul(spec.momentum).add(g)
        g = buf
    return p.add(g, alpha=-spec.lr), TensorState(step=state.step + 1, momentum_buffer=buf)


def _adam(
    spec: OptimizerSpec, p: torch.Tensor, g: torch.Tensor, state: TensorState
) -> tuple[torch.Tensor, TensorState]:
    beta1, beta2 = spec.betas
    step = state.step + 1
    if spec.decay != 0:
        if spec.name == "adamw":
            p = p.mul(1 - spec.lr * spec.decay)
        else:
            g = g.add(p, alpha=spec.decay)
    m = torch.zeros_like(g) if state.exp_avg is None else state.exp_avg.expand_as(g)
    v = torch.zeros_like(g) if state.exp_avg_sq is None else state.exp_avg_sq.expand_as(g)
    m = m.lerp(g, 1 - beta1)
    v = v.mul(beta2).addcmul(g, g, value=1 - beta2)
    step_size = spec.lr / (1 - beta1**step)
    denom = (v.sqrt() / (1 - beta2**step) ** 0.5).add(spec.eps)
    return p.addcdiv(m, denom, value=-step_size), TensorState(step, m, v)


def _tensor(value: object) -> torch.Tensor | None:
    return value.detach() if isinstance(value, torch.Tensor) else None
