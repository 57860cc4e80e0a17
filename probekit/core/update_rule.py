"""The update rules a probe can take, in one table: torch class, pure step function, state keys.

Every place that needs to know what an optimizer name means looks it up here with
:func:`rule`, which refuses a name it does not know — there is no "anything else is
Adam" branch anywhere. A rule has two faces that must agree:

* ``torch_class`` and ``torch_options``: the ``torch.optim`` optimizer that
  :class:`probekit.core.optimizer.Updater` steps the live weights with;
* ``step``: the same update written as a pure function of (θ, g, state) for stacks of
  examples, used by the batched isolated maps without touching the live weights.
  ``theta`` is shared or stacked ``(C, *shape)``, ``grad`` is stacked, and the state
  broadcasts the same way. The arithmetic follows torch.optim step by step (same
  operations, same order), in float32 for half-precision parameters like the
  Updater's master copies (float64 stays float64), rounded into the parameter's dtype
  at the end.

``state_keys`` names the per-parameter state the torch optimizer keeps; a saved state
with any other key cannot be reproduced by the pure step and is refused.
A rule without a pure step (``step=None``) can still be probed one example at a time;
the batched paths refuse it with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from probekit.errors import InputError

if TYPE_CHECKING:
    from probekit.core.optimizer import OptimizerSpec


@dataclass(frozen=True)
class TensorState:
    """Optimizer state of one tensor (shared or stacked); ``None`` where not started."""

    step: float = 0.0
    exp_avg: torch.Tensor | None = None
    exp_avg_sq: torch.Tensor | None = None
    momentum_buffer: torch.Tensor | None = None

    @classmethod
    def of(cls, saved: Mapping[str, object] | None) -> TensorState:
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


Step = Callable[["OptimizerSpec", torch.Tensor, torch.Tensor, TensorState],
                tuple[torch.Tensor, TensorState]]  # fmt: skip


@dataclass(frozen=True)
class UpdateRule:
    """One optimizer: how torch steps it, how the pure step computes it, what state it keeps."""

    name: str
    torch_class: type[torch.optim.Optimizer]
    torch_options: Callable[[OptimizerSpec], dict[str, Any]]
    step: Step | None
    state_keys: tuple[str, ...]
    default_decay: float = 0.0
    decoupled_decay: bool = False  # weight decay applied to θ directly (reported as decay_l2)
    direction_key: str | None = None  # state tensor that points where the update goes

    def check_state(self, saved: Mapping[str, object]) -> None:
        """Refuse saved state the pure step would silently ignore."""
        unknown = sorted(k for k, v in saved.items() if v is not None and k not in self.state_keys)
        if unknown:
            raise InputError(
                f"optimizer {self.name!r} carries state {unknown} that its pure step does not "
                f"model (it knows {list(self.state_keys)}); use method='loop'"
            )


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


def _adam_step(decoupled: bool) -> Step:
    def step(
        spec: OptimizerSpec, p: torch.Tensor, g: torch.Tensor, state: TensorState
    ) -> tuple[torch.Tensor, TensorState]:
        beta1, beta2 = spec.betas
        n = state.step + 1
        if spec.decay != 0:
            if decoupled:
                p = p.mul(1 - spec.lr * spec.decay)
            else:
                g = g.add(p, alpha=spec.decay)
        m = torch.zeros_like(g) if state.exp_avg is None else state.exp_avg.expand_as(g)
        v = torch.zeros_like(g) if state.exp_avg_sq is None else state.exp_avg_sq.expand_as(g)
        m = m.lerp(g, 1 - beta1)
        v = v.mul(beta2).addcmul(g, g, value=1 - beta2)
        step_size = spec.lr / (1 - beta1**n)
        denom = (v.sqrt() / (1 - beta2**n) ** 0.5).add(spec.eps)
        return p.addcdiv(m, denom, value=-step_size), TensorState(n, m, v)

    return step


def _sgd_options(spec: OptimizerSpec) -> dict[str, Any]:
    return {"lr": spec.lr, "momentum": spec.momentum, "weight_decay": spec.decay, "foreach": True}


def _adam_options(spec: OptimizerSpec) -> dict[str, Any]:
    return {"lr": spec.lr, "betas": spec.betas, "eps": spec.eps, "weight_decay": spec.decay,
            "foreach": True}  # fmt: skip


_ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")

RULES: dict[str, UpdateRule] = {
    "sgd": UpdateRule(
        "sgd", torch.optim.SGD, _sgd_options, _sgd, ("step", "momentum_buffer"),
        direction_key="momentum_buffer",
    ),
    "adam": UpdateRule(
        "adam", torch.optim.Adam, _adam_options, _adam_step(decoupled=False), _ADAM_STATE,
        direction_key="exp_avg",
    ),
    "adamw": UpdateRule(
        "adamw", torch.optim.AdamW, _adam_options, _adam_step(decoupled=True), _ADAM_STATE,
        default_decay=0.01, decoupled_decay=True, direction_key="exp_avg",
    ),
}  # fmt: skip


def rule(name: str) -> UpdateRule:
    """The update rule called ``name``; an :class:`InputError` naming the known ones otherwise."""
    found = RULES.get(name) if isinstance(name, str) else None
    if found is None:
        known = ", ".join(repr(n) for n in RULES)
        raise InputError(f"unknown optimizer {name!r}; use one of {known}")
    return found


def apply(
    spec: OptimizerSpec, theta: torch.Tensor, grad: torch.Tensor, state: TensorState
) -> tuple[torch.Tensor, TensorState]:
    """θ after one update from ``grad`` (stacked), and the state after it."""
    found = rule(spec.name)
    if found.step is None:
        raise InputError(
            f"optimizer {spec.name!r} has no pure step function, so it cannot be batched; "
            "use isolated_map(..., method='loop')"
        )
    dtype = theta.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    p, new_state = found.step(spec, theta.to(work), grad.to(work), state)
    return p.to(dtype), new_state


def _tensor(value: object) -> torch.Tensor | None:
    return value.detach() if isinstance(value, torch.Tensor) else None
