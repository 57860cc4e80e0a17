"""Reliability cases 11–22 (and the lock of case 25): the user's model is never silently changed.

Each test is named after the numbered cases of the reliability promise it covers
(docs/guarantees.md lists them all). Fingerprints compare bits: parameter and buffer
storages, ties, train/eval flags, ``requires_grad``, ``.grad``, hooks, optimizer
state and the RNG.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import torch

import probekit as pk
from probekit.core import lock
from probekit.core import optimizer as optimizer_module
from probekit.core.fingerprint import fingerprint
from probekit.session import probe as probe_module
from tests import tiny

EXAMPLE = pk.Example("the dog says", " woof")
OTHER = pk.Example("the cat says", " meow")
WATCH = ["the cat says", pk.Example("alice lives in", " paris")]
ROOT = Path(__file__).resolve().parents[3]


def _probe(model, tok, **kw):
    kw.setdefault("lr", 0.05)
    kw.setdefault("watch", WATCH)
    return pk.Probe(model, tok, **kw)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


# -- cases 11–13: non-finite losses, gradients and weights ---------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_case11_nonfinite_loss_leaves_model_and_optimizer_untouched(tiny_gpt2, optimizer):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer=optimizer, lr=1e-3)
    probe.step(OTHER, commit=True)  # optimizer state exists and must survive
    with torch.no_grad():
        model.transformer.ln_f.weight[0] = float("nan")
    before = probe.fingerprint()
    isolated = probe.step(EXAMPLE)
    committed = _quiet(probe.step, EXAMPLE, commit=True)
    assert isolated.status == committed.status == "nonfinite_loss"
    assert not committed.committed and len(probe.committed) == 1
    assert probe.fingerprint().differences(before) == []


def test_case12_nonfinite_gradient_with_adam_is_not_applied(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam", lr=1e-3)
    probe.step(OTHER, commit=True)
    handle = model.transformer.h[1].mlp.c_proj.weight.register_hook(lambda g: g * float("nan"))
    try:
        before = probe.fingerprint()
        result = _quiet(probe.step, EXAMPLE, commit=True)
        assert result.status == "nonfinite_grad" and not result.committed
        assert probe.fingerprint().differences(before) == []
    finally:
        handle.remove()


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize("commit", [False, True])
def test_case13_adam_lr_that_overflows_is_a_nonfinite_outcome(tiny_gpt2, optimizer, commit):
    """torch refuses to form Adam's step size at lr=1e38; probekit reports and reverts."""
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer=optimizer, lr=1e38)
    before = probe.fingerprint()
    result = _quiet(probe.step, EXAMPLE, commit=commit)
    assert result.status in ("nonfinite_weights", "nonfinite_grad") and not result.committed
    assert "reverted" in result.notes[-1] or "not applied" in result.notes[-1]
    assert probe.fingerprint().differences(before) == []
    assert probe.committed == ()


def test_case13_first_order_map_flags_updates_larger_than_the_weights(tiny_gpt2):
    model, tok = tiny_gpt2
    examples = [EXAMPLE, OTHER]
    wild = _probe(model, tok, lr=1e38)
    with pytest.warns(UserWarning, match="larger than the weights"):
        flagged = pk.isolated_map(wild, examples, method="first_order", sample=0)
    assert all(r.loss_drop != r.loss_drop for r in flagged.rows)  # NaN, not 1e38-sized
    assert all(v != v for row in flagged.dlogp for v in row)
    sane = _probe(model, tok, lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = pk.isolated_map(sane, examples, method="first_order", sample=0)
    assert all(r.loss_drop == r.loss_drop for r in plain.rows)


# -- case 14: exactly zero, with the reason ---------------------------------------------


def _with_unused_parameter(model):
    model.unused = torch.nn.Parameter(torch.randn(4))  # registered, never in the graph
    return model


@pytest.mark.parametrize(
    "settings", [{}, {"optimizer": "adam"}, {"influence": True, "linearize": True}]
)
def test_case14_a_parameter_the_loss_does_not_use_moves_by_zero_with_the_reason(
    tiny_gpt2, settings
):
    model, tok = tiny_gpt2
    _with_unused_parameter(model)
    alone = _probe(model, tok, pattern="^unused$", **settings)
    before = alone.fingerprint()
    r = alone.step(EXAMPLE)
    assert r.ok and r.total.delta_l2 == 0 and r.grad_l2 == 0
    assert any("not used by this example's loss" in n and "unused" in n for n in r.notes)
    assert alone.fingerprint().differences(before) == []
    mixed = _probe(model, tok, pattern=r"^unused$|ln_f", **settings).step(EXAMPLE, commit=True)
    moved = {t.name: t.sum_sq for t in mixed.tensors}
    assert moved["unused"] == 0 and moved["transformer.ln_f.weight"] > 0
    assert any("not used" in n for n in mixed.notes)


@pytest.mark.parametrize("sampled", [False, True])
def test_case14_lr_zero_after_an_edit_through_data_shows_no_shift(tiny_gpt2, monkeypatch, sampled):
    """Edits through ``.data`` bump no version counter; the cached baseline must notice.

    ``sampled``: every tensor is checksummed on a strided sample, as large ones are.
    """
    from probekit.core import sandbox

    if sampled:
        monkeypatch.setattr(sandbox, "CHECKSUM_FULL_BELOW", 0)
        monkeypatch.setattr(sandbox, "CHECKSUM_STRIDE", 7)
    model, tok = tiny_gpt2
    probe = _probe(model, tok, lr=0.0)
    assert probe.step(EXAMPLE).ok  # the watch baseline is now cached
    t = model.transformer
    edits = [
        lambda: t.wte.weight.data.mul_(3.0),  # a whole tensor
        lambda: t.h[0].mlp.c_fc.weight.data.neg_(),  # same norm, other bits
        lambda: t.wte.weight.data[tok.convert_tokens_to_ids("cat")].add_(0.5),  # one row
        lambda: t.h[1].mlp.c_proj.weight.data[:, 3].mul_(-2.0),  # one column
        lambda: setattr(t.ln_f.bias, "data", torch.randn_like(t.ln_f.bias)),  # a new storage
    ]
    for edit in edits:
        edit()
        r = probe.step(EXAMPLE)
        assert r.total.delta_l2 == 0
        assert all(abs(row.kl) < 1e-9 for row in r.watch), [row.kl for row in r.watch]


# -- case 15: precision -------------------------------------------------------------------


def _float64_model(tok):
    model = tiny.make_gpt2(tok).double()
    with torch.no_grad():  # values a float32 round trip would change
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-12)
    return model


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_case15_float64_model_is_never_rounded_through_float32(tiny_tokenizer, optimizer):
    tok = tiny_tokenizer
    model = _float64_model(tok)
    probe = _probe(model, tok, optimizer=optimizer, lr=0.0, weight_decay=0.0)
    before = fingerprint(model)
    r = probe.step(EXAMPLE, commit=True)
    assert r.ok and r.total.delta_l2 == 0
    assert fingerprint(model).storages == before.storages, "lr=0 must leave float64 bits alone"
    assert all(t.changed == 0 for t in r.tensors)


def test_case15_float64_sgd_step_is_exact_float64_arithmetic(tiny_tokenizer):
    tok = tiny_tokenizer
    model = _float64_model(tok)
    lr = 0.05
    probe = _probe(model, tok, lr=lr)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {}

    def keep(gs):
        for e, g in zip(probe.entries, gs, strict=True):
            grads[e.name] = g.detach().clone()

    r = probe.commit_step(EXAMPLE, keep)
    assert r.ok
    for e in probe.entries:
        expected = theta[e.name] + (-lr) * grads[e.name]
        assert e.param.dtype == torch.float64
        assert torch.equal(e.param.detach(), expected), e.name
    probe.undo()
    assert all(torch.equal(p, theta[n]) for n, p in model.named_parameters())


# -- cases 16, 19, 20: the caller's modes, grads and hooks -------------------------------


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_case16_19_a_step_inside_no_grad_or_inference_mode_works(tiny_gpt2, mode):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    reference = probe.step(EXAMPLE)
    before = probe.fingerprint()
    with mode():
        inside = probe.step(EXAMPLE)
        attribution = pk.token_grad(model, tok, "the dog says", " woof")
        assert not torch.is_grad_enabled(), "the caller's grad mode is back"
    assert inside.ok and inside.tensors == reference.tensors
    assert all(v > 0 for v in attribution.sequence)
    assert probe.fingerprint().differences(before) == []
    with mode():
        committed = probe.step(EXAMPLE, commit=True)
    assert committed.committed
    probe.undo()
    assert probe.fingerprint().differences(before) == []


def test_case19_20_failed_steps_keep_the_users_grads_and_hooks(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    calls = []
    handle = model.transformer.h[0].register_forward_hook(lambda *a: calls.append(1))
    try:
        probe = _quiet(_probe, model, tok, optimizer="adam")
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        before = probe.fingerprint()

        def boom(self):
            raise RuntimeError("device lost")

        monkeypatch.setattr(optimizer_module.Updater, "apply", boom)
        with pytest.raises(RuntimeError, match="device lost"):
            probe.step(EXAMPLE, commit=True)
        monkeypatch.undo()
        assert probe.fingerprint().differences(before) == []
        assert calls, "the user's hook ran and is still there"
    finally:
        handle.remove()


# -- case 17: frozen parameters -----------------------------------------------------------


def test_case17_parameters_frozen_after_the_probe_was_built_are_not_stepped(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    before = probe.fingerprint()
    model.transformer.h[0].mlp.c_fc.weight.requires_grad_(False)
    frozen = probe.fingerprint()
    with pytest.raises(pk.StateError, match=r"c_fc\.weight was frozen after this Probe"):
        probe.step(EXAMPLE, commit=True)
    with pytest.raises(pk.StateError, match="frozen after"):
        pk.isolated_map(probe, [EXAMPLE])
    assert probe.fingerprint().differences(frozen) == [] and probe.history == []
    fresh = _probe(model, tok).step(EXAMPLE)
    assert "transformer.h.0.mlp.c_fc.weight" not in {t.name for t in fresh.tensors}
    model.transformer.h[0].mlp.c_fc.weight.requires_grad_(True)
    assert probe.step(EXAMPLE).ok
    assert probe.fingerprint().differences(before) == []


# -- case 18 (and 26): the undo stack ----------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_case18_26_undo_memory_counts_everything_an_entry_holds(tiny_gpt2, monkeypatch, optimizer):
    model, tok = tiny_gpt2
    distinct = sum(p.numel() * p.element_size() for p in dict.fromkeys(model.parameters()))
    per_entry = distinct * (3 if optimizer == "adam" else 1)  # weights (+ exp_avg, exp_avg_sq)
    budget = int(per_entry * 4.5)
    monkeypatch.setattr(probe_module, "UNDO_BUDGET_BYTES", budget)
    probe = _probe(model, tok, optimizer=optimizer, lr=1e-3)
    start = probe.fingerprint()
    first = probe.step(EXAMPLE, commit=True)
    assert probe.undo_bytes() <= per_entry + 64, "tied storages are held once"
    for _ in range(12):
        probe.step(OTHER, commit=True)
        assert probe.undo_bytes() <= budget
    assert 2 <= len(probe.committed) <= 4 and probe.committed[0] is first
    probe.reset()
    assert probe.fingerprint().differences(start) == []
    assert model.lm_head.weight is model.transformer.wte.weight


# -- case 21: interrupts ------------------------------------------------------------------


def _sigint_self(*_):
    os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread"
)
def test_case21_sigint_inside_the_restore_is_held_until_the_model_is_back(tiny_gpt2, monkeypatch):
    """A real SIGINT arriving while the sandbox restores state: the restore finishes first."""
    from probekit.core import sandbox

    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam")
    probe.step(OTHER, commit=True)
    before = probe.fingerprint()
    real = sandbox._set_rng_state

    def interrupted_restore(state):
        _sigint_self()  # delivered at the next bytecode boundary, mid-restore
        sum(range(10))
        real(state)

    monkeypatch.setattr(sandbox, "_set_rng_state", interrupted_restore)
    with pytest.raises(KeyboardInterrupt):
        probe.step(EXAMPLE)
    monkeypatch.undo()
    assert probe.fingerprint().differences(before) == []
    assert len(probe.history) == 2 and probe.step(EXAMPLE).ok


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread"
)
def test_case21_sigint_between_writing_and_recording_a_commit(tiny_gpt2, monkeypatch):
    """The weights are written; the commit is recorded before Ctrl-C lands, so undo works."""
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam")
    start = probe.fingerprint()
    real = probe_module.take_step

    def take_then_interrupt(*args, **kw):
        outcome = real(*args, **kw)
        _sigint_self()
        sum(range(10))
        return outcome

    monkeypatch.setattr(probe_module, "take_step", take_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        probe.step(EXAMPLE, commit=True)
    monkeypatch.undo()
    assert len(probe.committed) == 1 and probe.history[-1].committed
    probe.undo()
    assert probe.fingerprint().differences(start) == []


def test_case21_real_sigint_at_random_moments_keeps_the_promise():
    """A subprocess probing the demo model gets real SIGINTs at random moments.

    After each one the model equals the state before the step, or the recorded
    post-commit state (then undo returns to before), and reset() returns to the start.
    ``python -m bench.sigint --trials 3000`` runs many more.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.sigint", "--trials", "240", "--seed", "1", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["violations"] == [], report["violations"][:5]
    assert report["interrupted"] >= 120, report  # at least half of the 240 landed inside a step
    assert report["committed_then_interrupted"] + report["rolled_back"] > 0
    assert report["reset_ok"]


# -- case 22: out of memory ----------------------------------------------------------------


def test_case22_out_of_memory_in_a_step_restores_and_explains(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam")
    probe.step(OTHER, commit=True)
    before = probe.fingerprint()

    def oom(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(optimizer_module.Updater, "apply", oom)
    with pytest.raises(pk.errors.OutOfMemoryError, match=r"model is unchanged.*layers="):
        probe.step(EXAMPLE, commit=True)
    monkeypatch.undo()
    assert probe.fingerprint().differences(before) == []
    assert probe.step(EXAMPLE).ok


# -- case 25 (the engine's half): one lock per model -------------------------------------


class _Paused:
    """Pauses the optimizer update of a step running on another thread."""

    def __init__(self, monkeypatch):
        self.started, self.release = threading.Event(), threading.Event()
        real = optimizer_module.Updater.apply

        def paused(updater):
            out = real(updater)  # the weights have moved: the worst moment to interleave
            self.started.set()
            assert self.release.wait(30)
            return out

        monkeypatch.setattr(optimizer_module.Updater, "apply", paused)


def test_case25_requests_from_another_thread_are_refused_while_a_step_runs(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, optimizer="adam", lr=1e-2)
    other_probe = _probe(model, tok, optimizer="sgd")
    start, watch = probe.fingerprint(), probe.watch
    paused = _Paused(monkeypatch)
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(probe.step(EXAMPLE, commit=True)))
    worker.start()
    assert paused.started.wait(30)
    assert lock.busy(model)
    refused = {
        "step": lambda: probe.step(EXAMPLE),
        "second probe's step": lambda: other_probe.step(EXAMPLE),
        "new Probe": lambda: _probe(model, tok),
        "checkpoint": lambda: probe.checkpoint().__enter__(),
        "evaluate": lambda: probe.evaluate([EXAMPLE]),
        "watch": lambda: setattr(probe, "watch", ["the cow says"]),
        "undo": probe.undo,
        "reset": probe.reset,
        "fingerprint": probe.fingerprint,
        "attribute": lambda: pk.attribute(model, tok, "the dog says", " woof", n_steps=4),
        "probe.attribute": lambda: probe.attribute("the dog says", " woof", n_steps=4),
        "token_grad": lambda: pk.token_grad(model, tok, "the dog says", " woof"),
        "isolated_map": lambda: pk.isolated_map(probe, [EXAMPLE]),
    }
    for name, call in refused.items():
        with pytest.raises(pk.StateError, match="already running on this model"):
            call()
        assert paused.started.is_set() and not paused.release.is_set(), name
    paused.release.set()
    worker.join(30)
    monkeypatch.undo()
    (result,) = results
    assert result.committed and probe.watch == watch and not lock.busy(model)
    assert all(p.grad is None for p in model.parameters())
    probe.undo()
    assert probe.fingerprint().differences(start) == []


def test_case25_the_lock_is_reentrant_on_its_own_thread(tiny_gpt2):
    """Operations made of others (a run, an attribution shift, a checkpoint) hold it through."""
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    start = probe.fingerprint()
    with probe.checkpoint():
        probe.step(EXAMPLE, commit=True)
        shift = probe.attribution_shift("the dog says", " woof", OTHER, n_steps=4)
        trajectory = probe.run([EXAMPLE, OTHER])
        assert shift.step.ok and len(trajectory.steps) == 2

        def from_elsewhere():
            try:
                probe.step(EXAMPLE)
            except pk.StateError as exc:
                errors.append(exc)

        errors: list[Exception] = []
        thread = threading.Thread(target=from_elsewhere)
        thread.start()
        thread.join(30)
        assert errors and "a checkpoint" in str(errors[0])
    assert probe.fingerprint().differences(start) == []


# -- case 26 (the engine's half): thousands of steps ---------------------------------------


def test_case26_soak_memory_stays_flat_over_hundreds_of_commits():
    """300 committed Adam steps on the demo model (``python -m bench.soak`` runs 5,000).

    After the undo stack is full nothing may accumulate but the results' history:
    the number of live tensors is unchanged and the resident memory grows by far less
    than one copy of the weights per step.
    """
    from bench.soak import soak

    report = soak(300, max_undo=8, warmup=100)
    model, _ = pk.load_demo(device="cpu")
    weights = sum(p.numel() * p.element_size() for p in dict.fromkeys(model.parameters()))
    assert report["live_tensors_end"] <= report["live_tensors_warm"] + 4, report
    assert report["undo_mb"] * 2**20 <= (8 + 1) * 3 * weights + 2**20, report
    assert report["rss_growth_per_step_kb"] * 1024 < weights / 16, report
