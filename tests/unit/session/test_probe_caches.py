"""What a probe keeps between steps on unchanged weights gives exactly what measuring anew does.

Σ θ² per tensor (for ``delta_rel``) is reused while the watch-baseline check vouches for
the weights; every kind of edit that check catches must also refresh it. Top-k token
texts come from a cache of decoded ids.
"""

from __future__ import annotations

import pytest
import torch

import probekit as pk

EXAMPLE = pk.Example("the dog says", " woof")
WATCH = ["the cat says", pk.Example("alice lives in", " paris")]


def _probe(model, tok, **kw):
    kw.setdefault("lr", 0.05)
    kw.setdefault("watch", WATCH)
    return pk.Probe(model, tok, **kw)


def _theta_sq(result):
    return [t.theta_sq for t in result.tensors]


def _fresh(model, tok):
    """Σ θ² as a probe that has cached nothing measures it."""
    return _theta_sq(_probe(model, tok).step(EXAMPLE))


def _naive(probe):
    return [float(e.param.detach().double().square().sum()) for e in probe.entries]


def test_repeated_isolated_steps_reuse_theta_sq_with_the_same_values(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    first = probe.step(EXAMPLE)
    assert probe._theta_sq is not None  # kept for the next step on these weights
    second = probe.step(EXAMPLE)
    assert _theta_sq(second) == _theta_sq(first) == _fresh(model, tok)
    assert _theta_sq(second) == pytest.approx(_naive(probe), rel=1e-5)
    assert [t.sum_sq for t in second.tensors] == [t.sum_sq for t in first.tensors]


@pytest.mark.parametrize(
    "edit",
    [
        "data_scale",
        "data_row",
        "in_place_no_grad",
        "new_storage",
        "swapped",
    ],
)
def test_every_edit_the_baseline_check_catches_refreshes_theta_sq(tiny_gpt2, edit):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    probe.step(EXAMPLE)
    probe.step(EXAMPLE)  # Σ θ² now cached
    t = model.transformer
    if edit == "data_scale":
        t.h[0].mlp.c_fc.weight.data.mul_(3.0)
    elif edit == "data_row":
        t.wte.weight.data[5].add_(0.5)
    elif edit == "in_place_no_grad":
        with torch.no_grad():
            t.ln_f.weight.mul_(2.0)
    elif edit == "new_storage":
        t.ln_f.bias.data = torch.randn_like(t.ln_f.bias)
    else:  # two same-shaped tensors exchange their storages
        a, b = t.h[0].ln_1.weight, t.h[1].ln_1.weight
        with torch.no_grad():
            b.mul_(1.5)
        a.data, b.data = b.data, a.data
    after = probe.step(EXAMPLE)
    assert _theta_sq(after) == _fresh(model, tok)
    assert _theta_sq(after) == pytest.approx(_naive(probe), rel=1e-5)


def test_theta_sq_after_commit_undo_and_a_multi_step_probe(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    probe.step(EXAMPLE)
    probe.step(EXAMPLE, commit=True)
    moved = probe.step(EXAMPLE)  # the weights after the commit
    assert _theta_sq(moved) == _fresh(model, tok)
    probe.undo()
    back = probe.step(EXAMPLE)
    assert _theta_sq(back) == _fresh(model, tok)
    three = probe.step(EXAMPLE, steps=3)  # not the fused pass: measured, and not kept
    assert _theta_sq(three) == pytest.approx(_naive(probe), rel=1e-5)
    assert _theta_sq(probe.step(EXAMPLE)) == _theta_sq(back)


def test_without_a_watch_set_theta_sq_is_measured_every_step(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok, watch=())
    probe.step(EXAMPLE)
    model.transformer.ln_f.weight.data.mul_(2.0)  # nothing checks the weights here
    assert _theta_sq(probe.step(EXAMPLE)) == pytest.approx(_naive(probe), rel=1e-5)


def test_top_k_texts_are_the_decoded_tokens(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    for _ in range(2):  # the second step reads the cache
        r = probe.step(EXAMPLE)
        for row in r.watch:
            texts = [t for t, _ in row.topk_before + row.topk_after]
            assert texts and all(isinstance(t, str) for t in texts)
            decoded = {tok.decode([i]) for i in range(len(tok))}
            assert set(texts) <= decoded
    ids = r.watch[0].topk_before
    model.eval()
    with torch.no_grad():
        logits = model(**tok(WATCH[0], return_tensors="pt")).logits[0, -1]
    expected = torch.log_softmax(logits.double(), -1).topk(len(ids))
    assert [t for t, _ in ids] == [tok.decode([i]) for i in expected.indices.tolist()]


def test_a_repeated_example_is_encoded_once_and_notes_warn_every_time(tiny_gpt2, monkeypatch):
    from probekit.session import probe as probe_module

    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    calls = []
    real = probe_module.encode
    monkeypatch.setattr(probe_module, "encode", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = probe.step(EXAMPLE)
    second = probe.step(EXAMPLE)
    assert len(calls) == 1 and second.target_tokens == first.target_tokens
    assert probe.encode(EXAMPLE) == real(
        tok, EXAMPLE, max_length=probe.max_length, vocab_size=len(tok), require_target=True
    )
    long = pk.Example(" ".join(["the dog says"] * probe.max_length), " woof")
    for _ in range(2):  # a note (truncation) is a warning on every step, never cached
        with pytest.warns(UserWarning, match="truncated"):
            probe.step(long)
    assert len(calls) == 3
    tok.add_tokens(["zebra"])  # the tokenizer changed: encoded anew
    probe.step(EXAMPLE)
    assert len(calls) == 4


def test_a_repeated_step_reuses_its_batches_with_the_same_results(tiny_gpt2, monkeypatch):
    from probekit.core import batch as batching

    model, tok = tiny_gpt2
    probe = _probe(model, tok)
    made = []
    real = batching.make_batch
    monkeypatch.setattr(batching, "make_batch", lambda *a: made.append(1) or real(*a))
    first = probe.step(EXAMPLE)
    count = len(made)
    second = probe.step(EXAMPLE)
    assert len(made) == count  # nothing made again
    assert [(r.kl, r.logit_l2) for r in second.watch] == [(r.kl, r.logit_l2) for r in first.watch]
    other = probe.step(pk.Example("the cat says", " meow"))
    assert len(made) > count and other.prompt == "the cat says"
    cache = batching.Batches(limit=2)
    items = [probe.encode(EXAMPLE), probe.encode(pk.Example("alice lives in", " paris"))]
    batch = cache.make(items, 0, torch.device("cpu"))
    assert cache.make(list(items), 0, torch.device("cpu")) is batch
    assert cache.make(items[::-1], 0, torch.device("cpu")) is not batch
    expected = real(items, 0, torch.device("cpu"))
    assert all(
        torch.equal(getattr(batch, f), getattr(expected, f)) for f in ("input_ids", "targets")
    )
