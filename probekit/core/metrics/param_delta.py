"""Parameter-delta statistics in one pass over memory (METRICS.md section 1).

For each stepped storage the kernel reads θ' (the parameter), θ (the snapshot) and
the optimizer's update direction once, and returns Σ Δ², Σ |Δ|, max |Δ|, the count
of changed entries, the count of lost updates (direction ≠ 0 but Δ == 0), Σ θ² and
Σ direction². With ``restore=True`` it also writes θ back, so an isolated probe pays
for the statistics and the revert in the same pass. On large models the kernel is
compiled with ``torch.compile`` (set ``PROBEKIT_COMPILE=0`` to disable); the eager
version computes the same quantities. For plain SGD, :func:`sgd_step` takes the step
itself and measures it in the pass that writes θ′, so the statistics cost no extra
memory traffic at all.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

# Tensors smaller than this use eager kernels: a compiled call's fixed overhead is larger.
COMPILE_THRESHOLD = 262_144
N_STATS = 7
Kernel = Callable[..., tuple[torch.Tensor, ...]]


def _stats(p: torch.Tensor, s: torch.Tensor, direction: torch.Tensor) -> tuple[torch.Tensor, ...]:
    work = _compute_dtype(p)
    d = p.to(work) - s.to(work)
    a = d.abs()
    sf = s.to(work)
    gf = direction.to(work)
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


def _sgd_stats(p: torch.Tensor, g: torch.Tensor, neg_lr: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """θ ← θ − lr·g and the statistics of that step.

    The math runs in float32 (float64 for float64 θ) and is rounded into θ's dtype.
    """
    pf = p.to(neg_lr.dtype)  # for float32/64 weights this aliases p: reduce all before writing
    gf = g.to(neg_lr.dtype)
    new = (pf + neg_lr * gf).to(p.dtype)
    d = new.to(pf.dtype) - pf
    a = d.abs()
    out = (
        (d * d).sum(),
        a.sum(),
        a.amax(),
        (d != 0).sum(),
        ((d == 0) & (gf != 0) & (neg_lr != 0)).sum(),
        (pf * pf).sum(),
        (gf * gf).sum(),
    )
    p.copy_(new)
    return out


def _compute_dtype(p: torch.Tensor) -> torch.dtype:
    """float32 for half precision and float32; float64 stays float64 (never rounded)."""
    return torch.float64 if p.dtype == torch.float64 else torch.float32


_compiled: dict[str, Kernel | None] = {}


def _kernel(eager: Kernel, numel: int) -> Kernel:
    """The compiled version of ``eager`` for large tensors (a single memory pass)."""
    if numel < COMPILE_THRESHOLD or os.environ.get("PROBEKIT_COMPILE", "1") == "0":
        return eager
    name = eager.__name__
    if name not in _compiled:
        try:
            # round-trips through bf16/fp16 must round exactly as in eager mode
            options: dict[str, Any] = {"emulate_precision_casts": True}
            _compiled[name] = torch.compile(eager, dynamic=True, options=options)
        except Exception:  # pragma: no cover - depends on the platform's compiler
            _compiled[name] = None
    return _compiled[name] or eager


def _apply(eager: Kernel, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    kernel = _kernel(eager, tensors[0].numel())
    if kernel is eager:
        return eager(*tensors)
    try:
        return kernel(*tensors)
    except Exception as exc:  # pragma: no cover - compiler missing or broken
        warnings.warn(f"torch.compile failed ({exc}); using eager kernels", stacklevel=3)
        _compiled[eager.__name__] = None
        return eager(*tensors)


def _table(rows: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
    if not rows:
        return torch.zeros(0, N_STATS, dtype=torch.float64)
    return torch.stack([torch.stack([x.double() for x in row]) for row in rows]).cpu()


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
    rows = []
    with torch.no_grad():
        for p, s, g in zip(params, saved, directions, strict=True):
            flat_s = s.view(-1)
            flat_g = torch.zeros_like(flat_s) if g is None else g.reshape(-1)
            rows.append(_apply(eager, p.view(-1), flat_s, flat_g))
    return _table(rows)


def sgd_step(
    params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None], lr: float
) -> torch.Tensor:
    """Take a plain SGD step in place and return its statistics (columns as :func:`measure`).

    One pass reads θ and g and writes θ′ — the same memory traffic as the update alone.
    """
    rows = []
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            grad = torch.zeros_like(p) if g is None else g
            neg_lr = torch.tensor(-lr, dtype=_compute_dtype(p), device=p.device)
            rows.append(_apply(_sgd_stats, p.view(-1), grad.reshape(-1), neg_lr))
    return _table(rows)
