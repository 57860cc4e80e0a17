"""Parameter-delta statistics in one pass over memory (METRICS.md section 1).

For each stepped storage the kernel reads θ' (the parameter), θ (the snapshot) and
the optimizer's update direction once, and returns Σ Δ², Σ |Δ|, max |Δ|, the count
of changed entries, the count of lost updates (direction ≠ 0 but Δ == 0), Σ θ² and
Σ direction². With ``restore=True`` it also writes θ back, so an isolated probe pays
for the statistics and the revert in the same pass. On large models the kernel is
compiled with ``torch.compile`` (set ``PROBEKIT_COMPILE=0`` to disable); the eager
version computes the same quantities.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

import torch

# Below this many stepped elements the eager kernel is as fast as compiling is worth.
COMPILE_THRESHOLD = 4_000_000
N_STATS = 7
Kernel = Callable[..., tuple[torch.Tensor, ...]]


def _stats(p: torch.Tensor, s: torch.Tensor, direction: torch.Tensor) -> tuple[torch.Tensor, ...]:
    d = p.float() - s.float()
    a = d.abs()
    sf = s.float()
    gf = direction.float()
    return (
        (d * d).sum(),
        a.sum(),
        a.amax(),
        (d != 0).sum(),
        ((d == 0) & (gf != 0)).sum(),
        (sf * sf).sum(),
        (gf * gf).sum(),
    )


def _stats_restore(
    p: torch.Tensor, s: torch.Tensor, direction: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    out = _stats(p, s, direction)
    p.copy_(s)
    return out


_compiled: dict[bool, Kernel | None] = {}


def _kernel(restore: bool, numel: int) -> Kernel:
    eager = _stats_restore if restore else _stats
    if numel < COMPILE_THRESHOLD or os.environ.get("PROBEKIT_COMPILE", "1") == "0":
        return eager
    if restore not in _compiled:
        try:
            _compiled[restore] = torch.compile(eager, dynamic=True)
        except Exception:  # pragma: no cover - depends on the platform's compiler
            _compiled[restore] = None
    return _compiled[restore] or eager


def measure(
    params: Sequence[torch.Tensor],
    saved: Sequence[torch.Tensor],
    directions: Sequence[torch.Tensor | None],
    *,
    restore: bool,
) -> torch.Tensor:
    """Per-tensor statistics as a (n_tensors, 7) float64 CPU tensor; optionally revert θ.

    A ``None`` direction means "no update was intended" (lost updates count 0).
    Columns: sum_sq, sum_abs, max_abs, changed, lost, theta_sq, direction_sq.
    """
    eager = _stats_restore if restore else _stats
    kernel = _kernel(restore, sum(p.numel() for p in params))
    rows: list[torch.Tensor] = []
    with torch.no_grad():
        for p, s, g in zip(params, saved, directions, strict=True):
            flat_p, flat_s = p.view(-1), s.view(-1)
            flat_g = torch.zeros_like(flat_s) if g is None else g.reshape(-1)
            try:
                values = kernel(flat_p, flat_s, flat_g)
            except Exception as exc:  # pragma: no cover - compiler missing or broken
                if kernel is eager:
                    raise
                warnings.warn(f"torch.compile failed ({exc}); using the eager kernel", stacklevel=2)
                _compiled.update({True: None, False: None})
                kernel = eager
                values = kernel(flat_p, flat_s, flat_g)
            rows.append(torch.stack([x.double() for x in values]))
    if not rows:
        return torch.zeros(0, N_STATS, dtype=torch.float64)
    return torch.stack(rows).cpu()
