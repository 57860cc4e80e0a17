"""Per-example gradient norms and dot products without materialising per-example gradients.

For a linear map, one example's weight gradient is a sum of outer products over its
tokens, ``Σ_t a_t ⊗ b_t`` (input activation ⊗ output gradient); an embedding row
update is ``onehot(token_t) ⊗ b_t``; a bias or a norm's scale is ``1 ⊗ b_t``. Inner
products of such sums only need token-by-token products of the factors:

    ⟨Σ_t a_t⊗b_t, Σ_s a'_s⊗b'_s⟩ = Σ_{t,s} (a_t·a'_s)(b_t·b'_s)

so ‖∇L_i‖² and ∇L_i·∇log p(o) for every example i and watch item o come from one
ordinary batched forward and backward per side, at a cost of T×S token pairs instead of
the parameter count ("ghost" norms, Goodfellow 2015; Li et al. 2022). Parameters used
by several modules (tied embeddings) sum their factors. Activations of any rank work:
everything between the leading row axis and the feature axis counts as positions (a
per-head norm's (R, T, H, d) input is R rows of T·H positions). Supported owners:
``nn.Linear``, transformers' ``Conv1D``, ``nn.Embedding``, ``nn.LayerNorm`` and RMS
norms; anything else raises :class:`Unsupported` (the one exception of every batched
isolated path), and so does a module called on inputs without a leading row axis or a
parameter whose summed factors do not reproduce its true gradient (checked on the
first chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from probekit.core.params import ParamEntry
from probekit.core.per_example import Unsupported

__all__ = ["Factor", "Factors", "Unsupported", "cross_products", "factors", "self_products"]


@dataclass(frozen=True)
class Factor:
    """Σ_t a_t ⊗ b_t for every row: ``a`` (R, T, r) dense, or (R, T) token indices."""

    a: torch.Tensor
    b: torch.Tensor  # (R, T, c)

    @property
    def indexed(self) -> bool:
        return self.a.dim() == 2


Factors = dict[str, list[Factor]]  # per parameter name: one factor per use
Objective = Callable[[torch.Tensor], torch.Tensor]  # logits (R, T, V) → value per row (R,)


def factors(
    model: Any,
    entries: Sequence[ParamEntry],
    ids: torch.Tensor,
    objective: Objective,
    *,
    verify: bool,
) -> tuple[Factors, torch.Tensor]:
    """Gradient factors of ``objective(logits)[r]`` for each row r, and the values.

    Runs ``model`` on ``ids`` (right-padded rows; all-ones mask, explicit positions)
    with autograd on; ``verify`` also checks the factors against the true gradient of
    the summed objective.
    """
    owners = _owners(model, entries)
    seen: list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor]] = []

    def record(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not args or not isinstance(output, torch.Tensor):
            raise Unsupported(f"{type(module).__name__} was called without a positional input")
        seen.append((module, args[0], output))

    handles = [m.register_forward_hook(record) for m in {id(m): m for m, _ in owners}.values()]
    try:
        rows, width = ids.shape
        with torch.enable_grad():
            logits = model(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                position_ids=torch.arange(width, device=ids.device).expand(rows, width),
                use_cache=False,
            ).logits
            values = objective(logits.float())
            outputs = [out for _, _, out in seen]
            params = [e.param for e in entries] if verify else []
            grads = torch.autograd.grad(values.sum(), [*outputs, *params], allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    result: Factors = {e.name: [] for e in entries}
    names = {id(e.param): e.name for e in entries}
    try:
        for (module, x, _), d in zip(seen, grads[: len(outputs)], strict=True):
            if d is None:
                continue
            if x.dim() < 2 or x.shape[0] != rows or d.shape[0] != rows:
                raise Unsupported(f"{type(module).__name__} ran on a {tuple(x.shape)} input "
                                  "without a leading row axis")  # fmt: skip
            for param, factor in _rules(module, x.detach(), d.detach()):
                if id(param) in names:
                    result[names[id(param)]].append(factor)
        if verify:
            _verify(entries, result, grads[len(outputs) :])
    except RuntimeError as err:  # a shape these rules do not expect: decline, never guess
        if isinstance(err, torch.OutOfMemoryError):
            raise
        raise Unsupported(f"gradient factors do not fit this model ({err})") from err
    return result, values.detach()


def self_products(per_param: Factors, rows: int) -> torch.Tensor:
    """‖Σ_uses Σ_t a_t⊗b_t‖² per row (R,), float64."""
    total = torch.zeros(rows, dtype=torch.float64)
    for uses in per_param.values():
        for f in uses:
            for g in uses:
                pairs = _inner_same(f.a, g.a) * torch.bmm(f.b, g.b.transpose(1, 2))
                total += pairs.sum((1, 2)).double().cpu()
    return total


def cross_products(left: Factors, right: Factors, rows: int, cols: int) -> torch.Tensor:
    """⟨left_i, right_j⟩ summed over parameters, (rows, cols) float64."""
    total = torch.zeros((rows, cols), dtype=torch.float64)
    for name, uses in left.items():
        for f in uses:
            for g in right.get(name, []):
                b = torch.einsum("itc,jsc->itjs", f.b, g.b)
                total += (_inner_cross(f.a, g.a) * b).sum((1, 3)).double().cpu()
    return total


def _owners(
    model: torch.nn.Module, entries: Sequence[ParamEntry]
) -> list[tuple[torch.nn.Module, torch.nn.Parameter]]:
    """(module, parameter) for every direct use of a selected parameter by a module."""
    wanted = {id(e.param) for e in entries}
    found: list[tuple[torch.nn.Module, torch.nn.Parameter]] = []
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if id(param) not in wanted:
                continue
            if _kind(module) is None:
                raise Unsupported(f"no per-example rule for {type(module).__name__}")
            found.append((module, param))
    if {id(p) for _, p in found} != wanted:
        raise Unsupported("a selected parameter is not owned by any module")
    return found


def _kind(module: torch.nn.Module) -> str | None:
    name = type(module).__name__
    if isinstance(module, torch.nn.Embedding):
        return "embedding"
    if isinstance(module, torch.nn.Linear):
        return "linear"
    if name == "Conv1D" and hasattr(module, "nf"):
        return "conv1d"
    if isinstance(module, torch.nn.LayerNorm):
        return "layer_norm"
    if name.endswith("RMSNorm") and _rms_eps(module) is not None:
        return "rms_norm"
    return None


def _rules(
    module: torch.nn.Module, x: torch.Tensor, d: torch.Tensor
) -> list[tuple[torch.nn.Parameter, Factor]]:
    """Factors of each of ``module``'s parameters from its input ``x`` and output grad ``d``."""
    kind = _kind(module)
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    d = d.float()
    out: list[tuple[Any, Factor]] = []
    if kind == "embedding":
        scale = getattr(module, "embed_scale", None)  # scaled embeddings (Gemma): rows × scale
        if isinstance(scale, torch.Tensor) and scale.numel() == 1 and weight is not None:
            d = d * scale.to(weight.dtype).float()
        out.append((weight, Factor(_positions(x, indexed=True), _positions(d))))
    elif kind == "linear":
        out.append((weight, Factor(_positions(d), _positions(x.float()))))
    elif kind == "conv1d":
        out.append((weight, Factor(_positions(x.float()), _positions(d))))
    elif kind == "layer_norm":
        assert isinstance(module, torch.nn.LayerNorm)
        normed = torch.nn.functional.layer_norm(x.float(), module.normalized_shape, eps=module.eps)
        out.append((weight, _scale_factor(d * normed)))
    elif kind == "rms_norm":
        xf = x.float()
        eps = _rms_eps(module) or 0.0
        normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype).float()
        out.append((weight, _scale_factor(d * normed)))
    if bias is not None and kind != "embedding":
        out.append((bias, _scale_factor(d)))
    return [(p, f) for p, f in out if isinstance(p, torch.nn.Parameter)]


def _positions(t: torch.Tensor, indexed: bool = False) -> torch.Tensor:
    """``t`` (rows, ..., features) as (rows, positions, features); token ids (rows, positions)."""
    rows = t.shape[0]
    if indexed:
        return t.reshape(rows, -1)
    if t.dim() == 2:
        return t[:, None, :]
    return t.reshape(rows, -1, t.shape[-1])


def _scale_factor(b: torch.Tensor) -> Factor:
    """``1 ⊗ b_t``: the factor of an elementwise scale or a bias."""
    b = _positions(b)
    return Factor(torch.ones((*b.shape[:2], 1), dtype=b.dtype, device=b.device), b)


def _rms_eps(module: torch.nn.Module) -> float | None:
    for attr in ("variance_epsilon", "eps"):
        value = getattr(module, attr, None)
        if isinstance(value, float):
            return value
    return None


def _inner_same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(R, T, S) products a_t·b_s within each row."""
    if a.dim() == 2 and b.dim() == 2:
        return (a[:, :, None] == b[:, None, :]).float()
    if a.dim() == 2:
        return b.gather(2, a[:, None, :].expand(-1, b.shape[1], -1)).transpose(1, 2)
    if b.dim() == 2:
        return a.gather(2, b[:, None, :].expand(-1, a.shape[1], -1))
    return torch.bmm(a, b.transpose(1, 2))


def _inner_cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(I, T, J, S) products a_{i,t}·b_{j,s} across rows."""
    if a.dim() == 2 and b.dim() == 2:
        return (a[:, :, None, None] == b[None, None]).float()
    if a.dim() == 2:  # one-hot rows of a pick columns of b
        return b[:, :, a].permute(2, 3, 0, 1)
    if b.dim() == 2:
        return a[:, :, b]
    return torch.einsum("itr,jsr->itjs", a, b)


def _verify(
    entries: Sequence[ParamEntry], per_param: Factors, grads: Sequence[torch.Tensor | None]
) -> None:
    """The factors summed over rows must give each parameter's true gradient."""
    for entry, true in zip(entries, grads, strict=True):
        rebuilt = torch.zeros(entry.param.shape, dtype=torch.float32, device=entry.param.device)
        flat = rebuilt.view(rebuilt.shape[0] if rebuilt.dim() > 1 else 1, -1)
        for f in per_param[entry.name]:
            b = f.b.reshape(-1, f.b.shape[-1])
            if f.indexed:
                flat.index_add_(0, f.a.reshape(-1), b)
            else:
                flat += f.a.reshape(-1, f.a.shape[-1]).T @ b
        expected = torch.zeros_like(rebuilt) if true is None else true.float()
        scale = float(expected.abs().max()) + 1e-12
        # the true gradient is accumulated in the parameter's dtype: allow its rounding
        rel = max(1e-3, 8 * torch.finfo(entry.param.dtype).eps)
        if float((rebuilt - expected).abs().max()) > rel * scale + 1e-6:
            raise Unsupported(f"per-example factors do not reproduce the gradient of {entry.name}")
