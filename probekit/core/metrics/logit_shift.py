"""How the output distribution of each watch item moved (docs/metrics.md section 2).

Takes logits at the read positions of a batch before (``zb``) and after (``za``) a
step, (N, V), and the number of read positions of each item; everything is computed
in float64 in a few vectorised passes, then averaged per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from probekit.core import logprob
from probekit.core.logprob import segment_sum


@dataclass(frozen=True)
class LogitShift:
    """Per-item values: one list entry per watch item."""

    kl: list[float]
    dlogp_target: list[float]
    top1_flip: list[bool]
    logit_l2: list[float]
    topk_before: list[tuple[list[int], list[float]]]
    topk_after: list[tuple[list[int], list[float]]]


def logit_shift(
    zb: torch.Tensor, za: torch.Tensor, targets: torch.Tensor, counts: Sequence[int], k: int
) -> LogitShift:
    """KL(p_before ‖ p_after), Δlog p(target), top-1 flip, centred-logit L2 and top-k.

    ``kl`` and ``logit_l2`` are means over an item's positions; ``dlogp_target`` is a
    sum over its target tokens (NaN without a target); ``top1_flip`` is "any position".
    """
    zb64, za64 = zb.double(), za.double()
    lb = torch.log_softmax(zb64, dim=-1)
    la = torch.log_softmax(za64, dim=-1)
    kl = logprob.kl(lb, la)
    dlogp = logprob.target_logp(la, targets) - logprob.target_logp(lb, targets)
    diff = za64 - zb64
    l2 = (diff - diff.mean(-1, keepdim=True)).norm(dim=-1)
    flips = (zb.argmax(-1) != za.argmax(-1)).double()
    sums = segment_sum(torch.stack([kl, dlogp, flips, l2]), counts)
    sizes = sums.new_tensor(counts)
    per_item = torch.stack([sums[0] / sizes, sums[1], sums[2], sums[3] / sizes]).tolist()
    first = first_positions(counts)
    return LogitShift(
        kl=per_item[0],
        dlogp_target=per_item[1],
        top1_flip=[f > 0 for f in per_item[2]],
        logit_l2=per_item[3],
        topk_before=_topk(lb[first], k),
        topk_after=_topk(la[first], k),
    )


def first_positions(counts: Sequence[int]) -> list[int]:
    """Index of each item's first read position (the next token right after the prompt)."""
    starts, total = [], 0
    for c in counts:
        starts.append(total)
        total += c
    return starts


def _topk(logp: torch.Tensor, k: int) -> list[tuple[list[int], list[float]]]:
    values, indices = logp.topk(min(k, logp.shape[-1]), dim=-1)
    probs = values.exp()
    return list(zip(indices.tolist(), probs.tolist(), strict=True))
