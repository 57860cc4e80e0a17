"""Every metric of a probe step equals a naive, independent computation (tests/oracle.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import probekit as pk
from tests import oracle

WATCH = [
    pk.Example("alice lives in", " paris"),
    "the cat says",
    pk.Example("the sky is", " blue ."),
    "bob lives in rome and the dog says",
]
EXAMPLE = pk.Example("the dog says", " woof")


def _models(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["tiny_gpt2", "tiny_llama"])
def pair(request):
    return _models(request)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_step_metrics_equal_the_naive_oracle(pair, optimizer):
    model, tok = pair
    before_model = copy.deepcopy(model)
    before_state = oracle.trainable_state(model)
    lr = 0.05 if optimizer == "sgd" else 1e-3
    probe = pk.Probe(model, tok, optimizer=optimizer, lr=lr, watch=WATCH)
    names = list(before_state)
    grads = oracle.gradient(before_model, tok, EXAMPLE.prompt, EXAMPLE.target, names)
    r = probe.step(EXAMPLE, commit=True)
    assert r.ok and r.committed
    naive = oracle.state_delta(before_state, oracle.trainable_state(model))

    # section 1: the example
    loss_b, nll_b = oracle.example_loss(before_model, tok, EXAMPLE.prompt, EXAMPLE.target)
    loss_a, nll_a = oracle.example_loss(model, tok, EXAMPLE.prompt, EXAMPLE.target)
    assert r.loss_before == pytest.approx(loss_b, rel=1e-5)
    assert r.loss_after == pytest.approx(loss_a, rel=1e-5)
    assert r.token_nll_before == pytest.approx(nll_b, rel=1e-5)
    assert r.token_nll_after == pytest.approx(nll_a, rel=1e-5)

    # section 1: parameter delta, per tensor, per layer and in total
    by_name = {t.name: t for t in r.tensors}
    assert set(by_name) == set(naive), "one row per distinct storage (ties counted once)"
    for name, n in naive.items():
        t = by_name[name]
        assert math.sqrt(t.sum_sq) == pytest.approx(n["l2"], rel=1e-5, abs=1e-12)
        assert t.sum_abs == pytest.approx(n["l1"], rel=1e-5, abs=1e-12)
        assert t.max_abs == pytest.approx(n["linf"], rel=1e-6, abs=1e-12)
        assert t.changed == n["changed"]
        assert math.sqrt(t.grad_sq) == pytest.approx(grads[name].norm().item(), rel=1e-4)
    total_l2 = math.sqrt(sum(n["l2"] ** 2 for n in naive.values()))
    theta = math.sqrt(sum(n["theta_l2"] ** 2 for n in naive.values()))
    assert r.total.delta_l2 == pytest.approx(total_l2, rel=1e-5)
    assert r.total.delta_rel == pytest.approx(total_l2 / theta, rel=1e-5)
    assert r.total.delta_l1 == pytest.approx(sum(n["l1"] for n in naive.values()), rel=1e-5)
    assert r.total.delta_linf == pytest.approx(max(n["linf"] for n in naive.values()), rel=1e-6)
    changed = sum(n["changed"] for n in naive.values())
    assert r.total.frac_changed == pytest.approx(changed / sum(n["numel"] for n in naive.values()))
    grad_total = math.sqrt(sum(float(g.norm()) ** 2 for g in grads.values()))
    assert r.grad_l2 == pytest.approx(grad_total, rel=1e-4)
    assert r.self_influence == pytest.approx(lr * grad_total**2, rel=1e-4)
    block0 = [n for n in naive if oracle.layer_of(n) == "block.0"]
    assert r.layer("block.0").delta_l2 == pytest.approx(
        math.sqrt(sum(naive[n]["l2"] ** 2 for n in block0)), rel=1e-5
    )
    if optimizer == "sgd":
        for name, g in grads.items():
            expected = torch.linalg.vector_norm(lr * g).item()
            assert math.sqrt(by_name[name].sum_sq) == pytest.approx(expected, rel=1e-3, abs=1e-9)
    if optimizer == "adamw":
        expected = lr * 0.01 * theta
        assert r.total.decay_l2 == pytest.approx(expected, rel=1e-5)

    # section 2: the watch set (and the example as a watch row), one prompt at a time
    for item, row in zip([*WATCH, EXAMPLE], r.rows, strict=True):
        ex = pk.core.inputs.as_example(item) if not isinstance(item, pk.Example) else item
        assert row.prompt == ex.prompt
        want = oracle.watch_metrics(before_model, model, tok, ex.prompt, ex.target)
        assert row.kl == pytest.approx(want["kl"], rel=1e-4, abs=1e-10)
        assert row.logit_l2 == pytest.approx(want["logit_l2"], rel=1e-4, abs=1e-8)
        assert row.top1_flip == want["top1_flip"]
        if ex.target is None:
            assert math.isnan(row.dlogp_target)
        else:
            assert row.dlogp_target == pytest.approx(want["dlogp_target"], rel=1e-4, abs=1e-7)
        assert [d.cos_drift for d in row.drift] == pytest.approx(
            want["cos_drift"], rel=1e-3, abs=1e-9
        )
        assert [d.rel_l2_drift for d in row.drift] == pytest.approx(
            want["rel_l2_drift"], rel=1e-4, abs=1e-9
        )
        tokens_b = [tok.decode([i]) for i in want["topk_before"][0]]
        assert [t for t, _ in row.topk_before] == tokens_b
        assert [p for _, p in row.topk_after] == pytest.approx(want["topk_after"][1], rel=1e-4)
    assert r.rows[-1] is r.example and r.example.is_example
    assert not any(w.is_example for w in r.watch) and len(r.watch) == len(WATCH)


def test_isolated_step_measures_the_same_as_a_commit(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="adam", lr=1e-3, watch=WATCH)
    isolated = probe.step(EXAMPLE)
    committed = probe.step(EXAMPLE, commit=True)
    assert isolated.tensors == committed.tensors
    for a, b in zip(isolated.rows, committed.rows, strict=True):
        assert a.kl == b.kl and a.drift == b.drift


def test_influence_equals_lr_times_gradient_dot_product(tiny_gpt2):
    model, tok = tiny_gpt2
    reference = copy.deepcopy(model)
    lr = 0.01
    probe = pk.Probe(model, tok, lr=lr, watch=WATCH, influence=True)
    r = probe.step(EXAMPLE)
    names = [t.name for t in r.tensors]
    g_u = oracle.gradient(reference, tok, EXAMPLE.prompt, EXAMPLE.target, names)
    for item, row in zip(WATCH, r.watch, strict=True):
        ex = item if isinstance(item, pk.Example) else pk.Example(item)
        if ex.target is None:
            assert math.isnan(row.influence)
            continue
        g_o = oracle.gradient(reference, tok, ex.prompt, ex.target, names)
        want = lr * sum(float((g_u[n] * g_o[n]).sum()) for n in names)
        assert row.influence == pytest.approx(want, rel=1e-4, abs=1e-9)


def test_batched_watch_equals_one_by_one(tiny_gpt2):
    model, tok = tiny_gpt2
    together = pk.Probe(model, tok, lr=0.05, watch=WATCH).step(EXAMPLE)
    for i, item in enumerate(WATCH):
        alone = pk.Probe(model, tok, lr=0.05, watch=[item]).step(EXAMPLE)
        a, b = together.watch[i], alone.watch[0]
        assert a.kl == pytest.approx(b.kl, rel=1e-5, abs=1e-12)
        assert [d.cos_drift for d in a.drift] == pytest.approx(
            [d.cos_drift for d in b.drift], rel=1e-4, abs=1e-10
        )


def test_multi_token_target_loss_is_the_mean_over_tokens(tiny_gpt2):
    model, tok = tiny_gpt2
    r = pk.Probe(model, tok, lr=0.01).step(pk.Example("alice lives in", " paris ."))
    assert len(r.token_nll_before) == 2 and r.target_tokens == ("paris", ".")
    assert r.loss_before == pytest.approx(sum(r.token_nll_before) / 2, rel=1e-6)
    frame = r.token_frame()
    assert list(frame.columns) == ["step", "position", "token", "nll_before", "nll_after"]


@pytest.mark.parametrize("fixture", ["tiny_gpt2", "tiny_llama"])
def test_linearised_prediction_equals_torch_func_jvp(request, fixture):
    from torch.func import functional_call, jvp
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model, tok = request.getfixturevalue(fixture)
    reference = copy.deepcopy(model).eval()
    before_state = oracle.trainable_state(model)
    probe = pk.Probe(model, tok, lr=2e-3, watch=WATCH, linearize=True)
    r = probe.step(EXAMPLE, commit=True)
    after_state = oracle.trainable_state(model)
    names = list(before_state)
    tangent = {n: after_state[n] - before_state[n] for n in names}
    for item, row in zip([*WATCH, EXAMPLE], r.rows, strict=True):
        ex = item if isinstance(item, pk.Example) else pk.Example(item)
        p_ids, t_ids = oracle.ids(tok, ex.prompt, ex.target)
        ids = torch.tensor([p_ids + t_ids])
        positions = list(range(len(p_ids) - 1, len(p_ids) - 1 + max(len(t_ids), 1)))

        def logits(params, ids=ids, positions=positions):
            return functional_call(reference, params, (ids,)).logits[0, positions]

        with sdpa_kernel([SDPBackend.MATH]):
            _, dz = jvp(logits, (before_state,), (tangent,))
        za, _, _ = oracle.run_one(model, tok, ex.prompt, ex.target)
        zb, _, _ = oracle.run_one(reference, tok, ex.prompt, ex.target)
        actual = za - zb
        want = float((actual - dz.double()).norm() / actual.norm())
        assert row.linear_residual == pytest.approx(want, rel=1e-3, abs=1e-6)
        centred = dz.double() - dz.double().mean(-1, keepdim=True)
        assert row.dz_pred == pytest.approx(float(centred.norm(dim=-1).mean()), rel=1e-3)
        assert row.linear_residual < 0.2, "one small SGD step is close to linear"


def test_merged_and_separate_after_forwards_agree(tiny_gpt2, monkeypatch):
    from probekit.core import step

    model, tok = tiny_gpt2
    monkeypatch.setattr(step, "MERGE_SLACK_TOKENS", 10**6)
    merged = pk.Probe(model, tok, lr=0.05, watch=WATCH).step(EXAMPLE)
    monkeypatch.setattr(step, "MERGE_SLACK_TOKENS", -(10**6))
    separate = pk.Probe(model, tok, lr=0.05, watch=WATCH).step(EXAMPLE)
    assert merged.loss_after == pytest.approx(separate.loss_after, rel=1e-6)
    for a, b in zip(merged.rows, separate.rows, strict=True):
        assert a.kl == pytest.approx(b.kl, rel=1e-4, abs=1e-12)
        assert a.topk_after[0][0] == b.topk_after[0][0]
