"""Log-probabilities of target tokens, in one place: masked NLL, KL, per-item reductions.

Conventions shared by every caller (the probe step, evaluation, the batched isolated
maps, influence and attribution):

* ``logits`` and ``logp`` are ``(..., V)``; ``targets`` are token ids of the leading
  shape (or broadcastable to it), ``-1`` where a position predicts no target (a watch
  prompt without one, or padding).
* Per-position values at such positions are ``fill`` (NaN by default, so that a value
  that does not apply can never pass for a number); means over an example's positions
  count only the positions with a target.
* Nothing here changes dtypes: pass ``.double()`` logits for float64 results.
* Items laid out row-major as consecutive segments of positions are reduced with
  :func:`segment_sum` / :func:`segment_mean` in one vectorised call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def target_logp(
    logp: torch.Tensor, targets: torch.Tensor, fill: float = float("nan")
) -> torch.Tensor:
    """log p(target) at each position from log-probabilities ``(..., V)``; ``fill`` without one.

    ``targets`` broadcasts against ``logp.shape[:-1]`` (e.g. ``(R,)`` targets for a
    ``(C, R, V)`` stack of differently-stepped models).
    """
    index = targets.clamp(min=0).expand(logp.shape[:-1])[..., None]
    values = logp.gather(-1, index).squeeze(-1)
    return torch.where(targets >= 0, values, torch.full_like(values, fill))


def target_nll(
    logits: torch.Tensor, targets: torch.Tensor, fill: float = float("nan")
) -> torch.Tensor:
    """−log p(target) at each position from logits ``(..., V)``; ``fill`` where there is none."""
    return -target_logp(torch.log_softmax(logits, dim=-1), targets, fill=-fill)


def mean_target_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss: mean NLL over each row's target positions; logits ``(..., T, V)`` → ``(...)``."""
    read = targets >= 0
    return target_nll(logits, targets, fill=0.0).sum(-1) / read.sum(-1)


def sum_target_logp(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) of each row, summed over its target tokens: ``(..., T, V)`` → ``(...)``."""
    return -mean_target_nll(logits, targets) * (targets >= 0).sum(-1)


def kl(logp_before: torch.Tensor, logp_after: torch.Tensor) -> torch.Tensor:
    """KL(p_before ‖ p_after) per position, from log-probabilities ``(..., V)``."""
    return (logp_before.exp() * (logp_before - logp_after)).sum(-1)


def segment_ids(counts: Sequence[int], device: torch.device) -> torch.Tensor:
    """``[0]*counts[0] + [1]*counts[1] + …`` as a tensor."""
    return torch.repeat_interleave(
        torch.arange(len(counts), device=device), torch.tensor(list(counts), device=device)
    )


def segment_sum(values: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """Sum over each segment of the last dimension: (..., N) → (..., n_segments)."""
    ids = segment_ids(counts, values.device)
    out = values.new_zeros((*values.shape[:-1], len(counts)))
    return out.index_add_(-1, ids, values)


def segment_mean(values: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """Mean over each segment of the last dimension: (..., N) → (..., n_segments)."""
    sizes = torch.tensor(list(counts), dtype=values.dtype, device=values.device)
    return segment_sum(values, counts) / sizes
