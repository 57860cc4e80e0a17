"""How the output distribution of each watch item moved (METRICS.md section 2).

All functions take logits at the read positions of a batch before (``zb``) and after
(``za``) a step, float32 (N, V), and the number of read positions of each item.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _split(values: torch.Tensor, counts: Sequence[int]) -> list[torch.Tensor]:
    return list(torch.split(values, list(counts)))


def kl(zb: torch.Tensor, za: torch.Tensor, counts: Sequence[int]) -> list[float]:
    """KL(p_before ‖ p_after) per read position, averaged over each item's positions."""
    lb = torch.log_softmax(zb.double(), dim=-1)
    la = torch.log_softmax(za.double(), dim=-1)
    per_position = (lb.exp() * (lb - la)).sum(-1)
    return [float(chunk.mean()) for chunk in _split(per_position, counts)]


def dlogp_target(
    zb: torch.Tensor, za: torch.Tensor, targets: torch.Tensor, counts: Sequence[int]
) -> list[float]:
    """log p_after(target) − log p_before(target), summed over each item's target tokens."""
    safe = targets.clamp(min=0)[:, None]
    lb = torch.log_softmax(zb.double(), dim=-1).gather(1, safe).squeeze(1)
    la = torch.log_softmax(za.double(), dim=-1).gather(1, safe).squeeze(1)
    diff = torch.where(targets >= 0, la - lb, torch.full_like(la, float("nan")))
    return [float(chunk.sum()) for chunk in _split(diff, counts)]


def top1_flip(zb: torch.Tensor, za: torch.Tensor, counts: Sequence[int]) -> list[bool]:
    """Whether the argmax token changed at any of the item's positions."""
    flips = zb.argmax(-1) != za.argmax(-1)
    return [bool(chunk.any()) for chunk in _split(flips, counts)]


def logit_l2(zb: torch.Tensor, za: torch.Tensor, counts: Sequence[int]) -> list[float]:
    """‖(z' − mean z') − (z − mean z)‖₂ per position, averaged over the item's positions."""
    diff = za.double() - zb.double()
    centred = diff - diff.mean(-1, keepdim=True)
    return [float(chunk.mean()) for chunk in _split(centred.norm(dim=-1), counts)]


def first_positions(counts: Sequence[int]) -> list[int]:
    """Index of each item's first read position (the next token right after the prompt)."""
    starts, total = [], 0
    for c in counts:
        starts.append(total)
        total += c
    return starts


def topk(z: torch.Tensor, counts: Sequence[int], k: int) -> list[tuple[list[int], list[float]]]:
    """The k most likely next tokens after each item's prompt, with probabilities."""
    rows = z[first_positions(counts)]
    probs = torch.softmax(rows.double(), dim=-1)
    values, indices = probs.topk(min(k, probs.shape[-1]), dim=-1)
    return [(i.tolist(), v.tolist()) for i, v in zip(indices, values, strict=True)]
