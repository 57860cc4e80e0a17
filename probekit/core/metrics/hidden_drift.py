"""How far each layer's hidden states moved for each watch item (METRICS.md section 2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def drift(
    before: Sequence[torch.Tensor], after: Sequence[torch.Tensor], counts: Sequence[int]
) -> tuple[list[list[float]], list[list[float]]]:
    """Per item and layer: mean over tokens of 1 − cos(h, h′) and of ‖h′ − h‖ / ‖h‖.

    ``before``/``after`` hold one (N_tokens, d) tensor per layer, items row-major.
    Returns ``(cos_drift, rel_l2_drift)``, each indexed ``[item][layer]``.
    """
    cos_layers, rel_layers = [], []
    for hb, ha in zip(before, after, strict=True):
        hb64, ha64 = hb.double(), ha.double()
        cos = 1.0 - torch.nn.functional.cosine_similarity(hb64, ha64, dim=-1, eps=1e-30)
        base = hb64.norm(dim=-1)
        rel = (ha64 - hb64).norm(dim=-1) / torch.where(base > 0, base, torch.ones_like(base))
        cos_layers.append([float(c.mean()) for c in torch.split(cos, list(counts))])
        rel_layers.append([float(r.mean()) for r in torch.split(rel, list(counts))])
    n_items = len(counts)
    return (
        [[layer[i] for layer in cos_layers] for i in range(n_items)],
        [[layer[i] for layer in rel_layers] for i in range(n_items)],
    )


def layer_labels(n_hidden: int) -> list[str]:
    """Names of the hidden-state outputs: the embedding output, then each block's output."""
    return ["embeddings", *(f"block.{i}" for i in range(n_hidden - 1))]
