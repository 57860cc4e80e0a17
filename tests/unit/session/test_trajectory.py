"""Trajectories: every stream metric equals a naive computation on stored weights."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
import torch

import probekit as pk
from probekit.session import probe as probe_module
from tests import oracle

EXAMPLES = [
    pk.Example("the dog says", " woof"),
    pk.Example("the cat says", " meow"),
    pk.Example("the dog says", " meow"),
    pk.Example("alice lives in", " paris"),
    pk.Example("the cat says", " woof"),
    pk.Example("bob lives in", " rome"),
    pk.Example("the dog says", " woof"),
]


def _flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.double().reshape(-1) for t in state.values()])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stream_metrics_equal_naive_computations(tiny_gpt2, optimizer):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-3)
    states = [_flat(oracle.trainable_state(model))]
    grads = []
    names = list(oracle.trainable_state(model))
    for ex in EXAMPLES:  # the naive run, one commit at a time, recording everything
        grads.append(torch.cat([g.reshape(-1) for g in oracle.gradient(
            model, tok, ex.prompt, ex.target, names).values()]))  # fmt: skip
        probe.step(ex, commit=True)
        states.append(_flat(oracle.trainable_state(model)))
    probe.reset()
    window = 3
    traj = probe.run(EXAMPLES, window=window)
    assert len(traj.stream) == len(EXAMPLES) and not traj.interrupted
    deltas = [float((b - a).norm()) for a, b in itertools.pairwise(states)]
    ema = None
    for t, row in enumerate(traj.stream):
        assert row.delta_l2 == pytest.approx(deltas[t], rel=1e-5)
        assert row.path_length == pytest.approx(sum(deltas[: t + 1]), rel=1e-5)
        assert row.displacement == pytest.approx(
            float((states[t + 1] - states[0]).norm()), rel=1e-5
        )
        assert row.straightness == pytest.approx(row.displacement / row.path_length, rel=1e-9)
        w = min(window, t + 1)
        span = float((states[t + 1] - states[t + 1 - w]).norm())
        assert row.direction_volatility == pytest.approx(
            1 - span / sum(deltas[t + 1 - w : t + 1]), rel=1e-4, abs=1e-6
        )
        recent = deltas[t + 1 - w : t + 1]
        if w > 1:
            cv = statistics.pstdev(recent) / statistics.fmean(recent)
            assert row.magnitude_volatility == pytest.approx(cv, rel=1e-4)
        else:
            assert math.isnan(row.magnitude_volatility)
        g_norms = [float(g.norm()) for g in grads[t + 1 - w : t + 1]]
        assert row.spike_score == pytest.approx(g_norms[-1] / statistics.median(g_norms), rel=1e-4)
        assert row.step_share == pytest.approx(deltas[t] / sum(deltas), rel=1e-5)
        g = grads[t]
        if ema is None:
            assert math.isnan(row.grad_consistency)
            ema = g.clone()
        else:
            cos = float(torch.nn.functional.cosine_similarity(g, ema, dim=0))
            assert row.grad_consistency == pytest.approx(cos, rel=1e-4, abs=1e-6)
            assert row.conflict == (cos < 0)
            ema = 0.9 * ema + 0.1 * g
    assert sum(r.step_share for r in traj.stream) == pytest.approx(1.0)
    assert traj.summary()["path_length"] == traj.path_length


def test_interrupt_keeps_the_steps_done_and_a_committed_state(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05)
    real = probe_module.Probe.commit_step
    calls = []

    def interrupt_on_the_fourth(self, example, grad_observer):
        calls.append(example)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, example, grad_observer)

    monkeypatch.setattr(probe_module.Probe, "commit_step", interrupt_on_the_fourth)
    traj = probe.run(EXAMPLES)
    assert traj.interrupted and len(traj.stream) == 3 and len(probe.committed) == 3
    after_three = probe.fingerprint()
    probe.undo()
    probe.step(EXAMPLES[2], commit=True)
    assert probe.fingerprint().differences(after_three) == [], "a consistent committed state"


def test_frames_and_window_limits(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, max_undo=2)
    traj = probe.run(EXAMPLES, window=8)
    assert traj.window == 2, "the window cannot reach further back than undo holds"
    frame = traj.to_frame()
    assert list(frame.columns) == ["step", "label", "metric", "value"]
    assert set(frame["metric"]) >= {"path_length", "direction_volatility", "grad_consistency"}
    assert len(traj.wide()) == len(EXAMPLES)
    with pytest.raises(pk.InputError, match="window"):
        probe.run(EXAMPLES, window=0)
