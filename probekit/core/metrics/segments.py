"""Per-item reductions over row-major segments of positions, in one vectorised call."""

from __future__ import annotations

from collections.abc import Sequence

import torch


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
    sizes = torch.tensor(list(counts), dtype=values.dtype, device=values.device)
    return segment_sum(values, counts) / sizes
