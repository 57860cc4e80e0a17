"""docs/guarantees.md cases for the probe engine: the model is never silently changed.

Case numbers refer to the table in docs/guarantees.md.
"""

from __future__ import annotations

import threading
import warnings

import pytest
import torch

import probekit as pk
from probekit.core import optimizer as optimizer_module

EXAMPLE = pk.Example("the dog says", " woof")
WATCH = ["the cat says", pk.Example("alice lives in", " paris")]


def _probe(model, tok, **kw):
    kw.setdefault("lr", 0.05)
    kw.setdefault("watch", WATCH)
    return pk.Probe(model, tok, **kw)


def test_isolated_probe_leaves_no_trace(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam")
    before = probe.fingerprint()
    r = probe.step(EXAMPLE)
    assert r.ok and r.total.delta_l2 > 0
    assert probe.fingerprint().differences(before) == []


def test_commit_changes_exactly_what_it_reports_and_undo_restores(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adamw", lr=1e-3)
    start = probe.fingerprint()
    first = probe.step(EXAMPLE, commit=True)
    after_first = probe.fingerprint()
    assert after_first.differences(start) == ["storages", "optimizer"]
    probe.step(pk.Example("the cat says", " meow"), commit=True)
    assert probe.undo().prompt == "the cat says"
    assert probe.fingerprint().differences(after_first) == []
    assert probe.undo() is first
    assert probe.fingerprint().differences(start) == []
    with pytest.raises(pk.StateError, match="nothing to undo"):
        probe.undo()


def test_reset_after_many_commits(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam", lr=1e-3, max_undo=2)
    start = probe.fingerprint()
    for _ in range(5):
        probe.step(EXAMPLE, commit=True)
    assert len(probe.committed) == 3  # the origin plus max_undo
    probe.undo()
    probe.undo()
    with pytest.raises(pk.StateError, match="max_undo"):
        probe.undo()
    probe.reset()
    assert probe.fingerprint().differences(start) == []
    assert probe.history == []


def test_isolated_adam_step_keeps_the_committed_optimizer_state(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam", lr=1e-3)
    probe.step(EXAMPLE, commit=True)
    state = probe.fingerprint()
    probe.step(pk.Example("the cat says", " meow"))
    assert probe.fingerprint().differences(state) == []


def test_case11_nonfinite_loss_leaves_the_model_untouched(tiny_gpt2):
    model, tok = tiny_gpt2
    with torch.no_grad():
        model.transformer.ln_f.weight[0] = float("nan")
    probe = _probe(model, tok)
    before = probe.fingerprint()
    r = probe.step(EXAMPLE)
    assert r.status == "nonfinite_loss" and not r.committed
    with pytest.warns(UserWarning, match="not committed"):
        r2 = probe.step(EXAMPLE, commit=True)
    assert r2.status == "nonfinite_loss" and probe.committed == ()
    assert probe.fingerprint().differences(before) == []


def test_case12_nonfinite_gradients_are_not_applied(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    handle = model.transformer.h[0].mlp.c_fc.weight.register_hook(lambda g: g * float("inf"))
    try:
        before = probe.fingerprint()
        with pytest.warns(UserWarning, match="not committed"):
            r = probe.step(EXAMPLE, commit=True)
        assert r.status == "nonfinite_grad"
        assert probe.fingerprint().differences(before) == []
    finally:
        handle.remove()


@pytest.mark.parametrize("commit", [False, True])
def test_case13_a_step_that_breaks_the_weights_is_reverted(tiny_gpt2, commit):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, lr=1e38)
    before = probe.fingerprint()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = probe.step(EXAMPLE, commit=commit)
    assert r.status == "nonfinite_weights" and not r.committed
    assert "reverted" in r.notes[-1]
    assert probe.fingerprint().differences(before) == []


def test_case14_lr_zero_gives_exactly_zero_delta_with_the_reason(tiny_gpt2):
    model, tok = tiny_gpt2
    r = _probe(model, tok, lr=0.0).step(EXAMPLE)
    assert r.total.delta_l2 == 0 and r.total.delta_l1 == 0 and r.total.frac_changed == 0
    assert r.total.lost_updates == 0 and r.grad_l2 > 0
    assert any("lr is 0" in n for n in r.notes)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_case14_15_half_precision_updates_and_lost_updates(tiny_gpt2, dtype):
    model, tok = tiny_gpt2
    model.to(dtype)
    probe = _probe(model, tok, lr=1e-7)
    before = probe.fingerprint()
    tiny_step = probe.step(EXAMPLE)
    assert tiny_step.ok and tiny_step.total.lost_updates > 0
    assert any("below the resolution" in n for n in tiny_step.notes)
    big = _probe(model, tok, lr=0.5).step(EXAMPLE, commit=False)
    assert big.ok and big.total.delta_l2 > 0
    assert probe.fingerprint().differences(before) == []
    committed = probe.step(EXAMPLE, commit=True)
    assert {p.dtype for p in model.parameters()} == {dtype}
    probe.undo()
    assert probe.fingerprint().differences(before) == [], committed


def test_case16_train_mode_is_measured_in_eval_and_restored(tiny_gpt2):
    model, tok = tiny_gpt2
    model.train()
    model.transformer.h[1].eval()  # a mixed state must come back exactly
    modes = [m.training for m in model.modules()]
    probe = _probe(model, tok)
    a, b = probe.step(EXAMPLE), probe.step(EXAMPLE)
    assert a.tensors == b.tensors and a.loss_after == b.loss_after
    assert [m.training for m in model.modules()] == modes


def test_case17_frozen_parameters_are_never_stepped(tiny_gpt2):
    model, tok = tiny_gpt2
    for p in model.transformer.h[0].parameters():
        p.requires_grad_(False)
    r = _probe(model, tok).step(EXAMPLE)
    assert not any(t.layer == "block.0" for t in r.tensors)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(pk.UnsupportedModelError, match="no trainable parameters"):
        _probe(model, tok)


def test_parameter_subsets_by_layer_and_pattern(tiny_gpt2):
    model, tok = tiny_gpt2
    by_layer = _probe(model, tok, layers=[-1]).step(EXAMPLE)
    assert {t.layer for t in by_layer.tensors} == {"block.1"}
    by_name = _probe(model, tok, pattern=r"mlp\.c_fc").step(EXAMPLE)
    assert {t.name for t in by_name.tensors} == {
        "transformer.h.0.mlp.c_fc.weight",
        "transformer.h.0.mlp.c_fc.bias",
        "transformer.h.1.mlp.c_fc.weight",
        "transformer.h.1.mlp.c_fc.bias",
    }
    with pytest.raises(pk.InputError, match="no trainable parameter matches"):
        _probe(model, tok, pattern="nothing-like-this")
    with pytest.raises(pk.InputError, match="out of range"):
        _probe(model, tok, layers=[7])


def test_case18_tied_embeddings_one_delta_still_tied(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    r = probe.step(EXAMPLE, commit=True)
    tied = [t for t in r.tensors if t.aliases]
    assert len(tied) == 1 and tied[0].aliases == ("lm_head.weight",)
    assert tied[0].layer == "embeddings+lm_head"
    probe.undo()
    assert model.lm_head.weight is model.transformer.wte.weight


def test_case19_stale_gradients_neither_leak_nor_vanish(tiny_gpt2):
    model, tok = tiny_gpt2
    clean = _probe(model, tok).step(EXAMPLE)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    stale = [p.grad.clone() for p in model.parameters()]
    dirty = _probe(model, tok).step(EXAMPLE)
    assert dirty.tensors == clean.tensors
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), stale, strict=True))


def test_case20_user_hooks_stay_and_are_warned_about(tiny_gpt2):
    model, tok = tiny_gpt2
    calls = []
    handle = model.transformer.h[0].register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.warns(UserWarning, match="hooks of its own"):
            probe = _probe(model, tok)
        before = probe.fingerprint()
        probe.step(EXAMPLE)
        assert calls, "the user's hook stays active"
        assert probe.fingerprint().differences(before) == []
    finally:
        handle.remove()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
@pytest.mark.parametrize("commit", [False, True])
def test_case21_interrupt_mid_step_restores_everything(tiny_gpt2, monkeypatch, interrupt, commit):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam", lr=1e-2)
    probe.step(EXAMPLE, commit=True)  # some optimizer state exists
    before = probe.fingerprint()
    real_apply = optimizer_module.Updater.apply

    def apply_then_fail(self):
        real_apply(self)  # the weights have moved when the interrupt arrives
        raise interrupt("interrupted")

    monkeypatch.setattr(optimizer_module.Updater, "apply", apply_then_fail)
    with pytest.raises(interrupt):
        probe.step(EXAMPLE, commit=commit)
    monkeypatch.undo()
    assert probe.fingerprint().differences(before) == []
    assert len(probe.history) == 1, "history survives a failed step"
    assert probe.step(EXAMPLE).ok, "the probe still works afterwards"


def test_case25_a_second_step_while_one_runs_is_refused(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    held, release = threading.Event(), threading.Event()

    def hold():
        with probe._exclusive():
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    try:
        with pytest.raises(pk.StateError, match="already running"):
            probe.step(EXAMPLE)
    finally:
        release.set()
        thread.join()


def test_baseline_is_cached_and_refreshed_when_weights_change(tiny_gpt2, monkeypatch):
    from probekit.core import batch as batching

    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    calls = []
    real = batching.forward
    monkeypatch.setattr(batching, "forward", lambda m, b: calls.append(b.size) or real(m, b))
    baseline = len(WATCH)  # a forward of the watch set alone is the baseline at θ
    probe.step(EXAMPLE)
    assert calls.count(baseline) == 1
    assert calls.count(baseline + 1) == 1, "one forward after the step: watch set + example"
    calls.clear()
    probe.step(EXAMPLE)
    assert calls.count(baseline) == 0, "the watch baseline is reused while weights are unchanged"
    probe.step(EXAMPLE, commit=True)
    calls.clear()
    probe.step(EXAMPLE)
    assert calls.count(baseline) == 0, "after a commit, the post-step outputs are the baseline"
    with torch.no_grad():
        model.transformer.wte.weight[5] += 1.0  # the user edits the model behind our back
    calls.clear()
    fresh = probe.step(EXAMPLE)
    assert calls.count(baseline) == 1, "a changed model invalidates the cache"
    reference = _probe(model, tok).step(EXAMPLE)
    assert fresh.watch[0].kl == reference.watch[0].kl


def test_listeners_receive_results_and_cannot_break_the_probe(tiny_gpt2):
    model, tok = tiny_gpt2
    seen = []
    probe = _probe(model, tok, on_result=seen.append)
    probe.subscribe(lambda r: 1 / 0)
    with pytest.warns(UserWarning, match="listener failed"):
        r = probe.step(EXAMPLE)
    assert seen == [r] and probe.history == [r]


def test_llama_style_model_round_trips(tiny_llama):
    model, tok = tiny_llama
    probe = _probe(model, tok, optimizer="adamw", lr=1e-3)
    before = probe.fingerprint()
    r = probe.step(EXAMPLE, commit=True)
    assert r.ok and {t.layer for t in r.tensors} >= {"embeddings", "lm_head", "final_norm"}
    probe.undo()
    assert probe.fingerprint().differences(before) == []


def test_case14_zero_gradient_gives_exactly_zero_delta_with_the_reason(tiny_gpt2):
    model, tok = tiny_gpt2
    handles = [p.register_hook(lambda g: g * 0) for p in model.parameters()]
    try:
        r = _probe(model, tok, pattern=r"^transformer\.h\.").step(EXAMPLE)
    finally:
        for h in handles:
            h.remove()
    assert r.ok and r.total.delta_l2 == 0 and r.total.lost_updates == 0 and r.grad_l2 == 0
    assert any("gradient is exactly zero" in n for n in r.notes)
