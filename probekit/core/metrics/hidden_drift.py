"""How far each layer's hidden states moved for each watch item (docs/metrics.md section 2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from probekit.core.logprob import segment_mean


def drift(
    before: Sequence[torch.Tensor], after: Sequence[torch.Tensor], counts: Sequence[int]
) -> tuple[list[list[float]], list[list[float]]]:
    """Per item and layer: mean over tokens of 1 − cos(h, h′) and of ‖h′ − h‖ / ‖h‖.

    ``before``/``after`` hold one (N_tokens, d) tensor per layer, items row-major.
    Returns ``(cos_drift, rel_l2_drift)``, each indexed ``[item][layer]``.
    """
    hb = torch.stack(list(before)).double()  # (L, N, d)
    ha = torch.stack(list(after)).double()
    nb, na = hb.norm(dim=-1), ha.norm(dim=-1)
    moved = (ha - hb).norm(dim=-1)
    # 1 − cos from the three lengths (‖a − b‖² = ‖a‖² + ‖b‖² − 2‖a‖‖b‖·cos), factored so
    # that a small drift is not lost to cancellation; orthogonal to a zero vector: 1 − 0.
    radial = (na - nb).abs()
    gap = (moved - radial).clamp_min(0) * (moved + radial)
    product = na * nb
    cos = torch.where(product == 0, torch.ones_like(gap), gap / (2 * product))
    rel = moved / torch.where(nb > 0, nb, torch.ones_like(nb))
    both = segment_mean(torch.stack([cos, rel]), counts).transpose(1, 2).tolist()  # (2, items, L)
    return both[0], both[1]


def layer_labels(n_hidden: int) -> list[str]:
    """Names of the hidden-state outputs: the embedding output, then each block's output."""
    return ["embeddings", *(f"block.{i}" for i in range(n_hidden - 1))]
