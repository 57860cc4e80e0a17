"""TracIn influence of the example on each watch item (docs/metrics.md section 3).

``influence(o) = η ∇θL(u)·∇θL(o)``: for SGD, the first-order *decrease* of the loss
on ``o`` caused by the step on ``u`` (positive = the example helps ``o``). It needs
one extra forward/backward per watch item with a target, so it is opt-in.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from probekit.core.batch import Batch, forward, target_nll


def watch_influence(
    model: Any, params: list[torch.nn.Parameter], watch: Batch, lr: float
) -> list[float]:
    """η g_u·g_o for every watch item, with g_u read from ``param.grad``; NaN without target."""
    g_u = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    values: list[float] = []
    start = 0
    for row, count in enumerate(watch.read_counts):
        targets = watch.targets[start : start + count]
        start += count
        if bool((targets < 0).any()):
            values.append(math.nan)
            continue
        single = _row(watch, row)
        loss = target_nll(forward(model, single), single).mean()
        g_o = (  # no selected parameter in this loss's graph: no influence through them
            torch.autograd.grad(loss, params, allow_unused=True)
            if loss.requires_grad
            else [None] * len(params)
        )
        dots = [
            (a.double() * b.double()).sum() for a, b in zip(g_u, g_o, strict=True) if b is not None
        ]
        values.append(lr * float(torch.stack(dots).sum()) if dots else 0.0)
    return values


def _row(batch: Batch, row: int) -> Batch:
    """The one-item batch of row ``row`` (trimmed to its real length)."""
    length = batch.token_counts[row]
    start = sum(batch.read_counts[:row])
    count = batch.read_counts[row]
    cols = batch.read_cols[start : start + count]
    return Batch(
        input_ids=batch.input_ids[row : row + 1, :length],
        attention_mask=batch.attention_mask[row : row + 1, :length],
        position_ids=batch.position_ids[row : row + 1, :length],
        read_rows=torch.zeros_like(cols),
        read_cols=cols,
        targets=batch.targets[start : start + count],
        read_counts=(count,),
        token_counts=(length,),
    )
