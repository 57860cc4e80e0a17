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
    assert list(stats[0]) == pytest.approx(_naive(theta, after, grad), rel=1e-5)
    assert stats[0].lost > 0, "some updates were lost"
    assert torch.equal(live, theta if restore else after)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sgd_step_matches_naive(mode, dtype):
    theta, grad = _tensors(dtype)
    live = theta.clone()
    stats = param_delta.sgd_step([live], [grad], lr=1e-3)
    expected = (theta.float() - 1e-3 * grad.float()).to(dtype)
    assert torch.equal(live, expected), "the step is θ − lr·g in float32, rounded once"
    assert list(stats[0]) == pytest.approx(_naive(theta, live, grad), rel=1e-5)


def test_sgd_step_with_zero_lr_moves_nothing_and_loses_nothing(mode):
    theta, grad = _tensors()
    live = theta.clone()
    stats = param_delta.sgd_step([live], [grad], lr=0.0)
    assert torch.equal(live, theta)
    assert stats[0].sum_sq == 0 and stats[0].lost == 0 and stats[0].direction_sq > 0


def _many(dtype: torch.dtype) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Tensors of several shapes (a small model's), with zero gradients and lost updates."""
    gen = torch.Generator().manual_seed(1)
    shapes = [(300, 70), (70,), (5, 3, 4), (1,), (128, 128)]
    thetas = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in shapes]
    grads = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in shapes]
    grads[1][:10] = 0
    thetas[0][20:30] = 1e4 if dtype != torch.float64 else 1e12
    grads[3].zero_()
    return thetas, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lr", [1e-3, 0.0])
def test_batched_sgd_step_matches_naive_and_one_pass_kernel(dtype, lr):
    """With the saved copy, small tensors take the foreach path: same step, same statistics."""
    thetas, grads = _many(dtype)
    batched = [t.clone() for t in thetas]
    stats = param_delta.sgd_step(batched, grads, lr, saved=thetas)
    single = [t.clone() for t in thetas]
    one_pass = param_delta.sgd_step(single, grads, lr)
    for theta, grad, live, other, row, ref in zip(
        thetas, grads, batched, single, stats, one_pass, strict=True
    ):
        assert live.dtype == dtype
        assert torch.equal(live, theta - lr * grad), "θ − lr·g in the weights' own dtype"
        assert torch.equal(live, other)
        naive = _naive(theta, live, grad)
        if lr == 0:
            naive[4] = 0.0  # nothing was meant to move
        assert list(row) == pytest.approx(naive, rel=1e-5)
        assert list(row) == pytest.approx(list(ref), rel=1e-5)
        assert (row.changed, row.lost) == (ref.changed, ref.lost)
    assert stats[0].lost > 0 if lr else stats[0].lost == 0


def test_batched_sgd_step_counts_non_finite_entries_exactly():
    thetas, grads = _many(torch.float32)
    grads[2][0, 0, 0] = float("nan")
    grads[2][1, 0, 0] = 0.0
    live = [t.clone() for t in thetas]
    stats = param_delta.sgd_step(live, grads, 1e-3, saved=thetas)
    d = live[2].double() - thetas[2].double()
    assert not stats[2].finite and stats[0].finite
    assert stats[2].changed == int((d != 0).sum())
    assert stats[2].lost == int(((d == 0) & (grads[2] != 0)).sum())


@pytest.mark.parametrize("lr", [1e-3, 0.0])
def test_stacked_sgd_step_on_a_snapshot_matches_one_tensor_at_a_time(lr):
    """Same-size tensors are stepped and measured as the rows of the snapshot's matrix."""
    from probekit.core import stacked

    gen = torch.Generator().manual_seed(2)
    shapes = [(6, 5), (30,), (6, 5), (2, 3, 5), (7,), (7,)]
    thetas = [torch.randn(s, generator=gen) for s in shapes]
    grads = [torch.randn(s, generator=gen) for s in shapes]
    grads[2][0] = 0.0
    thetas[3][0] = 1e4  # lost updates there
    live = [t.clone() for t in thetas]
    saved: list[torch.Tensor] = [t for t in thetas]
    for indices in stacked.groups(thetas):
        members = [thetas[i] for i in indices]
        for i, row in zip(indices, stacked.rows(stacked.stack(members), members), strict=True):
            saved[i] = row
    assert stacked.matrix_of([saved[i] for i in (0, 1, 2, 3)]).shape == (4, 30)
    workspace = stacked.Workspace()
    again = [t.clone() for t in thetas]
    param_delta.sgd_step(again, grads, lr, saved=saved, workspace=workspace)
    stats = param_delta.sgd_step(live, grads, lr, saved=saved, workspace=workspace)  # reused
    assert all(torch.equal(a, b) for a, b in zip(again, live, strict=True))
    for theta, grad, now, row in zip(thetas, grads, live, stats, strict=True):
        alone = theta.clone()
        ref = param_delta.sgd_step([alone], [grad], lr)[0]
        assert torch.equal(now, alone) and torch.equal(now, theta - lr * grad)
        naive = _naive(theta, now, grad)
        if lr == 0:
            naive[4] = 0.0
        assert list(row) == pytest.approx(naive, rel=1e-5)
        assert (row.changed, row.lost) == (ref.changed, ref.lost)
    assert stats[3].lost > 0 if lr else all(s.lost == 0 for s in stats)
