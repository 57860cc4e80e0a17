"""Attribution on a Probe: at its weights, before/after a step, token_grad from the step's own
backward, and the out-of-memory retry (RELIABILITY case 22)."""

from __future__ import annotations

import copy

import pytest
import torch

import probekit as pk
from probekit.core import attribution as core_attribution
from probekit.results import session_file

PROMPT, TARGET = "alice lives in", " paris rome"
EXAMPLE = pk.Example("alice lives in", " rome")
MODELS = ["tiny_gpt2", "tiny_llama"]


def _same(a, b) -> bool:
    """Equal attributions (NaN convergence deltas compare equal)."""
    return (a.input_tokens, a.scores, a.sequence, a.method) == (
        b.input_tokens, b.scores, b.sequence, b.method
    )  # fmt: skip


def _close(a, b, tol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=tol, abs=tol)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("settings", [{}, {"layers": [1]}, {"optimizer": "adam", "steps": 2}])
def test_step_token_grad_equals_the_standalone_computation(name, settings, request):
    model, tok = request.getfixturevalue(name)
    probe = pk.Probe(model, tok, lr=0.05, token_grad=True, **settings)
    expected = pk.token_grad(model, tok, EXAMPLE.prompt, EXAMPLE.target)
    result = probe.step(EXAMPLE)
    assert result.input_tokens == expected.input_tokens
    _close(result.token_grad, expected.sequence)
    shown = result.token_attribution()
    assert shown is not None and shown.method == "token_grad"
    assert shown.to_frame().token.tolist() == expected.to_frame().token.tolist()  # same shape
    assert probe.step(EXAMPLE, token_grad=False).token_grad == ()


def test_token_grad_is_off_by_default_and_survives_a_session_file(tiny_gpt2, tmp_path):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05)
    assert probe.step(EXAMPLE).token_attribution() is None
    result = probe.step(EXAMPLE, token_grad=True)
    path = session_file.save(tmp_path / "s.json", [result], {})
    (loaded,), _ = session_file.load(path)
    assert loaded.token_grad == result.token_grad and loaded.input_tokens == result.input_tokens


def test_probe_attribute_uses_the_current_weights(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.5)
    probe.step(EXAMPLE, commit=True)
    mine = probe.attribute(PROMPT, TARGET, n_steps=16)
    direct = pk.attribute(model, tok, PROMPT, TARGET, n_steps=16)
    assert _same(mine, direct)
    probe.undo()
    assert not _same(probe.attribute(PROMPT, TARGET, n_steps=16), mine)


def _stepped_by_hand(model, tok, lr):
    """A deep copy of the model after one plain SGD step on EXAMPLE (the oracle)."""
    clone = copy.deepcopy(model).eval()
    ids = tok(EXAMPLE.prompt + EXAMPLE.target, return_tensors="pt")["input_ids"]
    n_target = ids.shape[1] - len(tok(EXAMPLE.prompt)["input_ids"])
    logp = torch.log_softmax(clone(input_ids=ids).logits[0, :-1].float(), -1)
    nll = -logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]][-n_target:]
    nll.mean().backward()
    with torch.no_grad():
        for p in clone.parameters():
            if p.grad is not None:
                p -= lr * p.grad
    return clone


@pytest.mark.parametrize("method", ["ig", "grad_x_input"])
def test_isolated_shift_matches_a_hand_stepped_copy_and_leaves_no_trace(tiny_gpt2, method):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.5)
    seen = []
    probe.subscribe(seen.append)
    start = probe.fingerprint()
    shift = probe.attribution_shift(PROMPT, TARGET, EXAMPLE, method=method, n_steps=16)
    assert probe.fingerprint().differences(start) == []
    assert _same(shift.before, pk.attribute(model, tok, PROMPT, TARGET, method, n_steps=16))
    clone = _stepped_by_hand(model, tok, 0.5)
    expected = pk.attribute(clone, tok, PROMPT, TARGET, method, n_steps=16)
    _close(shift.after.sequence, expected.sequence, tol=1e-4)
    assert shift.step is not None and not shift.step.committed
    assert probe.history == [shift.step] and probe.committed == ()
    assert seen == [shift.step], "listeners hear about the isolated step once"
    assert shift.cosine_distance > 0


def test_committed_shift_keeps_the_step(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.5)
    shift = probe.attribution_shift(PROMPT, TARGET, EXAMPLE, commit=True, n_steps=16)
    assert shift.step.committed and probe.committed == (shift.step,)
    assert _same(shift.after, probe.attribute(PROMPT, TARGET, n_steps=16))
    probe.undo()
    assert _same(probe.attribute(PROMPT, TARGET, n_steps=16), shift.before)


def _oom_after(monkeypatch, failures):
    """Make integrated gradients raise CUDA OOM for the first ``failures`` calls."""
    real, sizes = core_attribution._ig, []

    def flaky(model, tokenizer, enc, baseline, n_steps, batch):
        sizes.append(batch)
        if len(sizes) <= failures:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, tokenizer, enc, baseline, n_steps, batch)

    monkeypatch.setattr(core_attribution, "_ig", flaky)
    return sizes


def test_out_of_memory_is_retried_once_with_half_the_batch(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    expected = pk.attribute(model, tok, PROMPT, TARGET, n_steps=16, internal_batch_size=8)
    sizes = _oom_after(monkeypatch, failures=1)
    start = pk.fingerprint(model)
    result = pk.attribute(model, tok, PROMPT, TARGET, n_steps=16, internal_batch_size=8)
    assert sizes == [8, 4]
    assert result.sequence == pytest.approx(expected.sequence, rel=1e-5, abs=1e-6)
    assert pk.fingerprint(model).differences(start) == []


def test_out_of_memory_twice_gives_a_hint_and_an_untouched_model(tiny_gpt2, monkeypatch):
    model, tok = tiny_gpt2
    model.train()
    sizes = _oom_after(monkeypatch, failures=2)
    start = pk.fingerprint(model)
    with pytest.raises(pk.errors.OutOfMemoryError, match=r"internal_batch_size=4.*model.to"):
        pk.attribute(model, tok, PROMPT, TARGET, n_steps=16, internal_batch_size=8)
    assert sizes == [8, 4]
    assert pk.fingerprint(model).differences(start) == []
    assert model.training
