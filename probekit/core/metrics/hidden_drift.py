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
    cos = 1.0 - torch.nn.functional.cosine_similarity(hb, ha, dim=-1, eps=1e-30)
    base = hb.norm(dim=-1)
    rel = (ha - hb).norm(dim=-1) / torch.where(base > 0, base, torch.ones_like(base))
    both = segment_mean(torch.stack([cos, rel]), counts).transpose(1, 2).tolist()  # (2, items, L)
    return both[0], both[1]


def layer_labels(n_hidden: int) -> list[str]:
    """Names of the hidden-state outputs: the embedding output, then each block's output."""
    return ["embeddings", *(f"block.{i}" for i in range(n_hidden - 1))]
