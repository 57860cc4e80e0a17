"""The update rule of a probe: SGD, Adam or AdamW over the selected parameters.

Half-precision parameters are updated through float32 master copies (the update
math runs in float32, the result is rounded into the model's dtype), so updates
below the dtype's resolution are visible as ``lost_updates``. float32 and float64
parameters are updated in their own precision (never through a float32 copy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch

from probekit.core import stacked
from probekit.core.params import ParamEntry
from probekit.core.update_rule import UpdateRule, rule
from probekit.errors import InputError

# The built-in rules (probekit.core.update_rule.RULES may hold more).
OptimizerName = Literal["sgd", "adam", "adamw"]
_OWN_PRECISION = (torch.float32, torch.float64)
OptimizerState = dict[int, dict[str, Any]]


@dataclass(frozen=True)
class OptimizerSpec:
    """Which update rule, with its hyper-parameters (torch.optim defaults unless given)."""

    name: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float | None = None  # None → the rule's default (0.01 for adamw, else 0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        rule(self.name)  # refuses unknown names
        if not self.lr >= 0 or self.lr == float("inf"):
            raise InputError(f"lr must be a finite number ≥ 0, got {self.lr!r}")

    @property
    def rule(self) -> UpdateRule:
        return rule(self.name)

    @property
    def decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return self.rule.default_decay

    @property
    def plain_sgd(self) -> bool:
        """SGD without momentum or weight decay: θ ← θ − lr·g, nothing else."""
        return self.name == "sgd" and self.momentum == 0 and self.decay == 0


class Updater:
    """Owns the optimizer (and float32 masters for half-precision parameters)."""

    def __init__(self, entries: Sequence[ParamEntry], spec: OptimizerSpec) -> None:
        self.entries = list(entries)
        self.spec = spec
        self.params = [e.param for e in self.entries]
        self.masters = [
            None if p.dtype in _OWN_PRECISION else p.detach().float().requires_grad_(True)
            for p in self.params
        ]
        self.targets = [
            m if m is not None else p for m, p in zip(self.masters, self.params, strict=True)
        ]
        self.optimizer = _build(spec, self.targets)
        self.workspace = stacked.Workspace()  # scratch memory of the fused SGD statistics

    @property
    def plain_sgd(self) -> bool:
        """SGD without momentum or weight decay: θ ← θ − lr·g, nothing else."""
        return self.spec.plain_sgd

    def apply(self) -> list[float]:
        """One update from the gradients in ``param.grad``; returns per-tensor decay² (AdamW)."""
        with torch.no_grad():
            for m, p in zip(self.masters, self.params, strict=True):
                if m is not None:
                    m.copy_(p)
                    m.grad = None if p.grad is None else p.grad.float()
            decay_sq = self._decay_sq()
            try:
                self.optimizer.step()
            except RuntimeError as exc:
                if "overflow" not in str(exc):
                    raise
                # lr so large that the step size itself overflows the dtype (torch refuses
                # to form it): the honest outcome is non-finite weights, reported and reverted
                for target in self.targets:
                    target.fill_(float("nan"))
            for m, p in zip(self.masters, self.params, strict=True):
                if m is not None:
                    p.copy_(m)
                    m.grad = None
        return decay_sq

    def _decay_sq(self) -> list[float]:
        factor = self.spec.lr * self.spec.decay
        if not self.spec.rule.decoupled_decay or factor == 0:
            return [0.0] * len(self.targets)
        norms = torch._foreach_norm([t.detach() for t in self.targets])
        return [float(n.double()) ** 2 * factor**2 for n in norms]

    def directions(self, saved: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        """The intended update's support per tensor (for ``lost_updates``); None = no update."""
        if self.spec.lr == 0:
            return [None] * len(self.targets)
        out: list[torch.Tensor | None] = []
        for m, p, s in zip(self.masters, self.params, saved, strict=True):
            if m is not None:
                out.append(m.detach() - s.float())
                continue
            state = self.optimizer.state.get(p, {})
            key = self.spec.rule.direction_key
            candidates = (state.get(key) if key else None, p.grad)
            direction = next((c for c in candidates if c is not None), None)
            out.append(None if direction is None else direction.detach())
        return out

    def save_state(self) -> OptimizerState:
        """A deep copy of the optimizer state, keyed by position."""
        return {
            i: {
                k: v.clone() if torch.is_tensor(v) else v
                for k, v in self.optimizer.state[t].items()
            }
            for i, t in enumerate(self.targets)
            if t in self.optimizer.state
        }

    def load_state(self, saved: OptimizerState) -> None:
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for i, values in saved.items():
            state[self.targets[i]] = {
                k: v.clone() if torch.is_tensor(v) else v for k, v in values.items()
            }
        self.optimizer.state = state

    @contextmanager
    def scratch_state(self) -> Iterator[None]:
        """Step on a copy of the optimizer state; the real state is back on exit."""
        real = self.optimizer.state
        try:
            self.load_state(self.save_state_of(real))
            yield
        finally:
            self.optimizer.state = real

    def save_state_of(self, state: Any) -> OptimizerState:
        return {i: dict(state[t].items()) for i, t in enumerate(self.targets) if t in state}


def _build(spec: OptimizerSpec, targets: list[torch.Tensor]) -> torch.optim.Optimizer:
    found = spec.rule
    return found.torch_class(targets, **found.torch_options(spec))
