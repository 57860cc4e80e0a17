"""The log-probability module against naive, independent computations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from probekit.core import logprob


def _case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 11, generator=g, dtype=torch.float64)  # (rows, positions, V)
    targets = torch.randint(0, 11, (3, 5), generator=g)
    targets[0, :2] = -1  # positions that predict no target
    targets[2, 4] = -1
    return logits, targets


def test_target_nll_is_cross_entropy_and_nan_without_a_target():
    logits, targets = _case()
    got = logprob.target_nll(logits, targets)
    for r in range(3):
        for t in range(5):
            if targets[r, t] < 0:
                assert math.isnan(float(got[r, t]))
            else:
                want = F.cross_entropy(logits[r, t][None], targets[r, t][None])
                assert math.isclose(float(got[r, t]), float(want), rel_tol=1e-12)
    assert float(logprob.target_nll(logits, targets, fill=0.0)[0, 0]) == 0.0


def test_mean_nll_and_sum_logp_count_only_target_positions():
    logits, targets = _case(1)
    mean = logprob.mean_target_nll(logits, targets)
    total = logprob.sum_target_logp(logits, targets)
    for r in range(3):
        read = targets[r] >= 0
        want = F.cross_entropy(logits[r][read], targets[r][read])  # mean over read positions
        assert torch.allclose(mean[r], want)
        assert torch.allclose(total[r], -want * read.sum())
    one = logprob.mean_target_nll(logits[1], targets[1])  # (T, V) → scalar
    assert one.shape == () and torch.allclose(one, mean[1])


def test_kl_matches_torch():
    logits, _ = _case(2)
    before = torch.log_softmax(logits, -1)
    after = torch.log_softmax(logits.flip(0), -1)
    want = F.kl_div(after, before, log_target=True, reduction="none").sum(-1)  # KL(before‖after)
    assert torch.allclose(logprob.kl(before, after), want)
    assert torch.equal(logprob.kl(before, before), torch.zeros_like(want))


def test_target_logp_broadcasts_one_target_row_over_a_stack():
    logits, targets = _case(3)
    logp = torch.log_softmax(logits, -1)  # a stack of 3 models, same 5 positions
    row = targets[1]
    got = logprob.target_logp(logp, row)
    for c in range(3):
        for t in range(5):
            want = float(logp[c, t, row[t]]) if row[t] >= 0 else math.nan
            assert (math.isnan(want) and math.isnan(float(got[c, t]))) or float(got[c, t]) == want


def test_segment_reductions_equal_python_loops():
    values = torch.arange(12, dtype=torch.float64).reshape(2, 6)
    counts = (1, 3, 2)
    want_sum, start = [], 0
    for c in counts:
        want_sum.append(values[:, start : start + c].sum(1))
        start += c
    assert torch.equal(logprob.segment_sum(values, counts), torch.stack(want_sum, 1))
    means = torch.stack(want_sum, 1) / torch.tensor(counts, dtype=torch.float64)
    assert torch.equal(logprob.segment_mean(values, counts), means)
