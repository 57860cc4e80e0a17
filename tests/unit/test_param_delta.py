"""The one-pass delta kernels: eager and compiled agree with a naive computation."""

from __future__ import annotations

import pytest
import torch

from probekit.core.metrics import param_delta


def _naive(before: torch.Tensor, after: torch.Tensor, direction: torch.Tensor) -> list[float]:
    d = after.double() - before.double()
    return [
        float((d * d).sum()),
        float(d.abs().sum()),
        float(d.abs().max()),
        float((d != 0).sum()),
        float(((d == 0) & (direction != 0)).sum()),
        float((before.double() ** 2).sum()),
        float((direction.double() ** 2).sum()),
    ]


def _tensors(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(300, 70, generator=gen).to(dtype)
    grad = torch.randn(300, 70, generator=gen).to(dtype)
    grad[:10] = 0  # zero gradient: unchanged, and not a lost update
    theta[20:30] = 1e4  # an update of 1e-9 is lost there
    return theta, grad


@pytest.fixture(params=["eager", "compiled"])
def mode(request, monkeypatch):
    if request.param == "compiled":
        monkeypatch.setattr(param_delta, "COMPILE_THRESHOLD", 0)
        monkeypatch.setenv("PROBEKIT_COMPILE", "1")
    else:
        monkeypatch.setenv("PROBEKIT_COMPILE", "0")
    return request.param


@pytest.mark.parametrize("restore", [False, True])
def test_measure_matches_naive(mode, restore):
    theta, grad = _tensors()
    after = theta - 1e-9 * grad
    after[50:60] = theta[50:60] - 0.5 * grad[50:60]
    live = after.clone()
    stats = param_delta.measure([live], [theta], [grad], restore=restore)
    assert stats[0].tolist() == pytest.approx(_naive(theta, after, grad), rel=1e-5)
    assert stats[0, 4] > 0, "some updates were lost"
    assert torch.equal(live, theta if restore else after)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sgd_step_matches_naive(mode, dtype):
    theta, grad = _tensors(dtype)
    live = theta.clone()
    stats = param_delta.sgd_step([live], [grad], lr=1e-3)
    expected = (theta.float() - 1e-3 * grad.float()).to(dtype)
    assert torch.equal(live, expected), "the step is θ − lr·g in float32, rounded once"
    assert stats[0].tolist() == pytest.approx(_naive(theta, live, grad), rel=1e-5)


def test_sgd_step_with_zero_lr_moves_nothing_and_loses_nothing(mode):
    theta, grad = _tensors()
    live = theta.clone()
    stats = param_delta.sgd_step([live], [grad], lr=0.0)
    assert torch.equal(live, theta)
    assert stats[0, 0] == 0 and stats[0, 4] == 0 and stats[0, 6] > 0
