"""Hidden-state drift equals a naive float64 computation, also for tiny and degenerate moves."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from probekit.core.metrics import hidden_drift


def _naive(hb: torch.Tensor, ha: torch.Tensor) -> tuple[float, float]:
    """Exact 1 − cos (via the unit vectors, no cancellation) and ‖h′ − h‖/‖h‖ of one pair."""
    b, a = hb.double(), ha.double()
    if b.norm() == 0 or a.norm() == 0:
        return 1.0 - float(F.cosine_similarity(b, a, dim=0)), float((a - b).norm())
    unit_gap = (a / a.norm() - b / b.norm()).norm()
    return float(unit_gap**2 / 2), float((a - b).norm() / b.norm())


def test_drift_matches_naive_per_item_and_layer():
    gen = torch.Generator().manual_seed(0)
    layers, counts, d = 3, (2, 3, 1), 16
    before = [torch.randn(sum(counts), d, generator=gen) for _ in range(layers)]
    moves = (1e-1, 1e-3, 0.0)
    after = [
        h + s * torch.randn(h.shape, generator=gen) for h, s in zip(before, moves, strict=True)
    ]
    after[2][0] = before[2][0] * 1.5  # a purely radial move: no turn at all
    before[1][5] = 0.0  # a zero hidden state: 1 − cos is 1, rel is the norm moved
    cos, rel = hidden_drift.drift(before, after, counts)
    start = 0
    for item, n in enumerate(counts):
        for layer in range(layers):
            pairs = [_naive(before[layer][t], after[layer][t]) for t in range(start, start + n)]
            want_cos = sum(c for c, _ in pairs) / n
            want_rel = sum(r for _, r in pairs) / n
            assert cos[item][layer] == pytest.approx(want_cos, rel=1e-9, abs=1e-15)
            assert rel[item][layer] == pytest.approx(want_rel, rel=1e-12)
        start += n
    assert cos[0][1] > 0 and cos[0][1] < 1e-5, "a tiny move keeps its size"
