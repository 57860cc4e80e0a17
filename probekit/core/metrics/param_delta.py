"""Parameter-delta statistics, measured in the passes that take or revert the step
(docs/metrics.md section 1).

For each stepped storage the statistics are Σ Δ², Σ |Δ|, max |Δ|, the count of
changed entries, the count of lost updates (direction ≠ 0 but Δ == 0), Σ θ² and
Σ direction² — one :class:`TensorStats` per tensor, by name.

Two ways to get them, with the same values:

* small tensors (the many biases, norms and matrices of a small model) are stacked
  by size as the rows of one matrix each (:mod:`probekit.core.stacked`), so each
  quantity is one call per size instead of one per tensor, and one transfer of the
  results;
* large tensors each get one fused pass that reads θ′, θ and the direction once
  (compiled with ``torch.compile`` unless ``PROBEKIT_COMPILE=0``; the eager version
  computes the same quantities).

``measure(..., restore=True)`` also writes θ back, so an isolated probe pays for the
statistics and the revert together. For plain SGD, :func:`sgd_step` takes the step
itself and measures it on the way: θ′ = θ − lr·g with the arithmetic in float32 for
float32 and half-precision weights (rounded once into the weights' dtype) and in
float64 for float64 weights.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from probekit.core import stacked

# Tensors smaller than this use eager kernels: a compiled call's fixed overhead is larger.
COMPILE_THRESHOLD = 262_144
Kernel = Callable[..., tuple[torch.Tensor, ...]]
# Weights whose dtype the batched (foreach) path steps in that same dtype.
_BATCHED_DTYPES = (torch.float32, torch.float64)


class TensorStats(NamedTuple):
    """What one step did to one parameter tensor."""

    sum_sq: float  # Σ Δ²
    sum_abs: float  # Σ |Δ|
    max_abs: float  # max |Δ|
    changed: int  # entries with Δ ≠ 0
    lost: int  # entries whose update direction was ≠ 0 but whose value did not change
    theta_sq: float  # Σ θ² before the step
    direction_sq: float  # Σ direction² (the gradient, for plain SGD)

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in self)


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
    """θ ← θ − lr·g (math in ``neg_lr``'s dtype, rounded to θ's) and the statistics of that step."""
    math_dtype = neg_lr.dtype
    pf = p.to(math_dtype)  # when θ is already in that dtype this aliases p: reduce before writing
    gf = g.to(math_dtype)
    new = (pf + neg_lr * gf).to(p.dtype)
    d = new.to(math_dtype) - pf
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


def _rows(columns: Sequence[Sequence[torch.Tensor]]) -> list[TensorStats]:
    """Per-tensor rows from 7 columns of 0-d tensors: one transfer per device."""
    if not columns or not columns[0]:
        return []
    by_device: dict[torch.device, list[int]] = {}
    for i, x in enumerate(columns[0]):
        by_device.setdefault(x.device, []).append(i)
    rows: dict[int, TensorStats] = {}
    for indices in by_device.values():
        table = torch.stack([torch.stack([col[i] for i in indices]).double() for col in columns], 1)
        for i, (a, b, c, d, e, f, g) in zip(indices, table.tolist(), strict=True):
            rows[i] = TensorStats(a, b, c, int(d), int(e), f, g)
    return [rows[i] for i in range(len(columns[0]))]


def measure(
    params: Sequence[torch.Tensor],
    saved: Sequence[torch.Tensor],
    directions: Sequence[torch.Tensor | None],
    *,
    restore: bool,
) -> list[TensorStats]:
    """Per-tensor statistics of Δ = θ′ (``params``) − θ (``saved``); optionally revert θ.

    A ``None`` direction means "no update was intended" (lost updates count 0).
    """
    eager = _stats_restore if restore else _stats
    stats = []
    with torch.no_grad():
        for p, s, g in zip(params, saved, directions, strict=True):
            flat_s = s.view(-1)
            flat_g = torch.zeros_like(flat_s) if g is None else g.reshape(-1)
            stats.append(_apply(eager, p.view(-1), flat_s, flat_g))
    return _rows(list(zip(*stats, strict=True)))


def sgd_step(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor | None],
    lr: float,
    saved: Sequence[torch.Tensor] | None = None,
    workspace: stacked.Workspace | None = None,
    theta_sq: Sequence[float] | None = None,
) -> list[TensorStats]:
    """Take a plain SGD step in place and return its statistics, one row per tensor.

    ``saved`` (a copy of θ, if the caller holds one) lets small tensors be measured
    stacked by size (:mod:`probekit.core.stacked`), in the scratch matrices of
    ``workspace`` if given (keep one between calls); without it, or for large or
    half-precision tensors, one pass per tensor reads θ and g and writes θ′ — the same
    memory traffic as the update. ``theta_sq``: Σ θ² per tensor as an earlier call on
    these same weights returned it (the caller vouches that θ is unchanged), so the
    stacked pass skips that reduction.
    """
    workspace = workspace if workspace is not None else stacked.Workspace()
    given = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    rows: dict[int, TensorStats] = {}
    with torch.no_grad():
        if saved is not None:
            blocks = [
                indices
                for indices in stacked.groups(params, COMPILE_THRESHOLD)
                if params[indices[0]].dtype in _BATCHED_DTYPES
                and all(given[i].dtype == params[i].dtype for i in indices)
            ]
            columns = [
                _sgd_stacked(
                    [params[i] for i in indices],
                    [given[i] for i in indices],
                    stacked.matrix_of([saved[i] for i in indices]),
                    lr,
                    workspace,
                    known=theta_sq is not None,
                )
                for indices in blocks
            ]
            order = [i for indices in blocks for i in indices]
            found = _table(columns)
            if theta_sq is not None:
                found = [
                    r._replace(theta_sq=theta_sq[i]) for i, r in zip(order, found, strict=True)
                ]
            rows.update(zip(order, found, strict=True))
            for i in order:  # NaN has no sign: count the entries of non-finite deltas one by one
                if not rows[i].finite:
                    d = params[i].double() - saved[i].double()
                    changed, lost = _counts(d, given[i], lr)
                    rows[i] = rows[i]._replace(changed=changed, lost=lost)
        rest = [i for i in range(len(params)) if i not in rows]
        stats = []
        for i in rest:
            p = params[i]
            neg_lr = torch.tensor(-lr, dtype=_math_dtype(p), device=p.device)
            stats.append(_apply(_sgd_stats, p.view(-1), given[i].reshape(-1), neg_lr))
        rows.update(zip(rest, _rows(list(zip(*stats, strict=True))), strict=True))
    return [rows[i] for i in range(len(params))]


def _counts(d: torch.Tensor, g: torch.Tensor, lr: float) -> tuple[int, int]:
    """Changed entries and lost updates of one tensor, entry by entry."""
    unchanged = d == 0
    return int((~unchanged).sum()), int((unchanged & (g != 0)).sum()) if lr != 0 else 0


def _math_dtype(p: torch.Tensor) -> torch.dtype:
    return torch.float64 if p.dtype == torch.float64 else torch.float32


def _sgd_stacked(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    theta: torch.Tensor,
    lr: float,
    workspace: stacked.Workspace,
    known: bool = False,
) -> torch.Tensor:
    """θ ← θ − lr·g for ``k`` tensors of one size and dtype; their statistics as a (k, 7) table.

    ``known``: the caller has Σ θ² already; its column is left 0 (not measured).

    ``theta`` holds θ as the rows of a ``(k, n)`` matrix; every pass below is one call
    over all ``k`` tensors. θ′ is (−lr)·g + θ in the weights' dtype (the same two
    roundings as the one-pass kernel); Δ = θ′ − θ. One buffer holds Δ, then |Δ|, then
    [Δ ≠ 0]; the stacked gradient ends as [g ≠ 0]. Counts are sums of ones in floating
    point, exact below 2²⁴ entries per tensor (stacked tensors are far smaller); those
    of a non-finite Δ are redone by the caller.
    """
    g, d = workspace.matrix("grad", theta), workspace.matrix("delta", theta)
    torch.stack([x.reshape(-1) for x in grads], out=g)
    torch.mul(g, -lr, out=d)
    d.add_(theta)
    torch._foreach_copy_(params, workspace.rows("delta", theta, params))
    d.sub_(theta)
    norm = torch.linalg.vector_norm
    delta_norm, grad_norm = norm(d, dim=1), norm(g, dim=1)
    theta_norm = torch.zeros_like(delta_norm) if known else norm(theta, dim=1)
    d.abs_()
    sum_abs, max_abs = d.sum(1), d.amax(1)
    changed = d.ne_(0).sum(1)
    # a zero gradient never moves θ, so lost = nnz(g) − nnz(Δ) (finite θ)
    lost = g.ne_(0).sum(1) - changed if lr != 0 else torch.zeros_like(changed)
    columns = [delta_norm, sum_abs, max_abs, changed, lost, theta_norm, grad_norm]
    table = torch.stack(columns, 1).double()
    for j in (0, 5, 6):  # norms to sums of squares, in float64
        table[:, j] **= 2
    return table


def _table(tables: Sequence[torch.Tensor]) -> list[TensorStats]:
    """Rows of statistics from (k, 7) tables: one transfer for all of them."""
    if not tables:
        return []
    values = torch.cat(list(tables)).tolist()
    return [TensorStats(a, b, c, int(d), int(e), f, g) for a, b, c, d, e, f, g in values]
