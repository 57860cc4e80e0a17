"""One table of update rules: a rule added there is used everywhere, or refused — never another.

A fake optimizer (sign descent: θ ← θ − lr·sign(g)) is registered in
``probekit.core.update_rule.RULES`` only. The probe's live step (torch class) and the
batched isolated map (pure step) must both compute it, and agree with a by-hand oracle;
a rule without a pure step, or a name the table does not know, must be refused.
"""

from __future__ import annotations

import math

import pytest
import torch

import probekit as pk
from probekit.core import update_rule
from probekit.core.optimizer import OptimizerSpec
from probekit.core.update_rule import TensorState, UpdateRule
from tests import oracle

EXAMPLES = [pk.Example("the dog says", " woof"), pk.Example("alice lives in", " paris")]
WATCH = [pk.Example("bob lives in", " rome"), "the cow says"]
LR = 0.01


class SignSGD(torch.optim.Optimizer):
    """θ ← θ − lr·sign(g), with a step counter as its only state."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                p.add_(p.grad.sign(), alpha=-group["lr"])


def _sign_step(spec, p, g, state):
    return p - spec.lr * g.sign(), TensorState(step=state.step + 1)


SIGN = UpdateRule(
    name="signsgd",
    torch_class=SignSGD,
    torch_options=lambda spec: {"lr": spec.lr},
    step=_sign_step,
    state_keys=("step",),
)


@pytest.fixture
def signsgd(monkeypatch):
    monkeypatch.setitem(update_rule.RULES, "signsgd", SIGN)


def test_a_new_rule_is_used_by_the_live_step(tiny_gpt2, signsgd):
    model, tok = tiny_gpt2
    before = oracle.trainable_state(model)
    names = list(before)
    grads = oracle.gradient(model, tok, "the dog says", " woof", names)
    probe = pk.Probe(model, tok, optimizer="signsgd", lr=LR)
    r = probe.step(EXAMPLES[0], commit=True)
    after = oracle.trainable_state(model)
    for name in names:
        delta = after[name].double() - before[name].double()
        clear = grads[name].abs() > 1e-6  # where rounding cannot flip the gradient's sign
        expected = -LR * grads[name].sign()
        torch.testing.assert_close(delta[clear], expected[clear], rtol=0, atol=1e-6)
        assert bool((delta.abs() <= LR * (1 + 1e-6)).all())
    assert r.optimizer == "signsgd"
    assert r.total.delta_linf == pytest.approx(LR, rel=1e-3)  # sign steps are all ±lr


def test_a_new_rule_is_used_by_the_batched_map(tiny_gpt2, signsgd):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="signsgd", lr=LR, watch=WATCH)
    batched = pk.isolated_map(probe, EXAMPLES, method="exact")
    loop = pk.isolated_map(probe, EXAMPLES, method="loop")
    sgd = pk.isolated_map(pk.Probe(model, tok, optimizer="sgd", lr=LR, watch=WATCH), EXAMPLES)
    for a, b, c in zip(batched.rows, loop.rows, sgd.rows, strict=True):
        assert a.update_size == pytest.approx(b.update_size, rel=1e-3)  # near-zero g: sign
        assert a.loss_drop == pytest.approx(b.loss_drop, rel=2e-2, abs=1e-4)
        assert not math.isclose(a.update_size, c.update_size, rel_tol=0.1)  # not plain SGD


def test_a_rule_without_a_pure_step_is_refused_by_the_batched_map(tiny_gpt2, monkeypatch):
    monkeypatch.setitem(update_rule.RULES, "signsgd", UpdateRule(
        "signsgd", SignSGD, lambda spec: {"lr": spec.lr}, None, ("step",)
    ))  # fmt: skip
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="signsgd", lr=LR, watch=WATCH)
    assert probe.step(EXAMPLES[0]).ok  # one example at a time works
    with pytest.raises(pk.InputError, match="no pure step"):
        pk.isolated_map(probe, EXAMPLES, method="exact")
    assert pk.isolated_map(probe, EXAMPLES, method="loop").method == "loop"


def test_state_the_pure_step_does_not_model_is_refused(signsgd):
    with pytest.raises(pk.InputError, match="does not model"):
        SIGN.check_state({"step": 1, "max_exp_avg_sq": torch.zeros(2)})
    SIGN.check_state({"step": 1, "exp_avg": None})  # absent entries are fine


def test_unknown_names_are_refused_everywhere(signsgd):
    with pytest.raises(pk.InputError, match="unknown optimizer 'lion'"):
        update_rule.rule("lion")
    with pytest.raises(pk.InputError, match="unknown optimizer 'lion'"):
        OptimizerSpec("lion")
    spec = OptimizerSpec("signsgd", lr=LR)
    del update_rule.RULES["signsgd"]  # the table lost it: nothing computes it as another rule
    with pytest.raises(pk.InputError, match="unknown optimizer 'signsgd'"):
        update_rule.apply(spec, torch.zeros(3), torch.ones(1, 3), TensorState())
    with pytest.raises(pk.InputError, match="unknown optimizer 'signsgd'"):
        _ = spec.decay


def test_probe_refuses_an_unknown_optimizer(tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.raises(pk.InputError, match="unknown optimizer 'lion'; use one of 'sgd'"):
        pk.Probe(model, tok, optimizer="lion")  # type: ignore[arg-type]
