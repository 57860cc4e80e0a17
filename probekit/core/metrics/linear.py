"""The linearised prediction of a step's effect, checked against the real one (docs/metrics.md §3).

``dz_pred = J_o Δθ`` is the first-order change of the logits on a watch item ``o``,
computed with a Jacobian–vector product at θ (``torch.func.jvp`` over
``functional_call``, live weights untouched). ``linear_residual`` says how far one
real step is from that linear regime. Opt-in: it costs about two forward passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from probekit.core.batch import Batch, read_mask
from probekit.core.params import ParamEntry


def predicted_logit_change(
    model: Any,
    entries: Sequence[ParamEntry],
    theta: Sequence[torch.Tensor],
    delta: Sequence[torch.Tensor],
    batch: Batch,
) -> torch.Tensor:
    """J Δθ at the read positions of ``batch``: (N, V) float32."""
    names = [e.name for e in entries]
    kwargs: dict[str, Any] = {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
        "use_cache": False,
    }
    keep = read_mask(model, batch)
    if keep is not None:
        kwargs["logits_to_keep"] = keep

    def logits(*values: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, dict(zip(names, values, strict=True)), (), kwargs).logits
        if keep is not None and out.dim() == 2:
            return out
        return out[batch.read_rows, batch.read_cols]

    # forward-mode AD has no rule for the fused attention kernels; the math backend has
    with sdpa_kernel([SDPBackend.MATH]):
        tangents = tuple(d.to(t.dtype) for t, d in zip(theta, delta, strict=True))
        tangent = jvp(logits, tuple(theta), tangents)[1]
    return tangent.float()


def residual(
    actual: torch.Tensor, predicted: torch.Tensor, counts: Sequence[int]
) -> tuple[list[float], list[float]]:
    """Per item: ‖Δz − dz_pred‖ / ‖Δz‖ and the mean per-position ‖centred dz_pred‖."""
    out_res, out_norm = [], []
    for a, p in zip(
        torch.split(actual.double(), list(counts)),
        torch.split(predicted.double(), list(counts)),
        strict=True,
    ):
        denom = a.norm()
        out_res.append(float((a - p).norm() / denom) if denom > 0 else float("nan"))
        centred = p - p.mean(-1, keepdim=True)
        out_norm.append(float(centred.norm(dim=-1).mean()))
    return out_res, out_norm
