"""The architecture matrix: every probe path on tiny random models of eleven families.

Each model is built from its transformers config (2 layers, width 32, random weights,
no files, no network) and checked against the naive computations of tests/oracle.py:
``Probe.step`` isolated and committed + undo, ``isolated_map`` exact and first-order,
and ``Probe.attribute``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
import transformers as tf

import probekit as pk
from tests import oracle, tiny

pytestmark = pytest.mark.architectures

LR = 1e-2
EXAMPLE = ("alice lives in", " paris")
OTHER = ("the dog says", " woof .")
WATCH_TARGET = ("the cat says", " meow")
WATCH = [pk.Example(*WATCH_TARGET), "bob lives in"]


def _decoder(config: type, model: type, **extra: Any) -> Callable[[dict[str, Any]], Any]:
    """A Llama-style decoder (config names hidden_size, num_attention_heads, ...)."""
    sizes = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64,
    )  # fmt: skip
    return lambda ids: model(config(**sizes, **ids, **extra))


OPT_SIZES = dict(
    hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
    max_position_embeddings=64, word_embed_proj_dim=32,
)  # fmt: skip
BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "gpt2": lambda ids: tf.GPT2LMHeadModel(
        tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **ids)
    ),
    "llama": _decoder(tf.LlamaConfig, tf.LlamaForCausalLM, num_key_value_heads=2),
    "qwen2": _decoder(tf.Qwen2Config, tf.Qwen2ForCausalLM, num_key_value_heads=2),
    "qwen3": _decoder(tf.Qwen3Config, tf.Qwen3ForCausalLM, num_key_value_heads=2, head_dim=8),
    "mistral": _decoder(tf.MistralConfig, tf.MistralForCausalLM, num_key_value_heads=2),
    "gemma": _decoder(tf.GemmaConfig, tf.GemmaForCausalLM, num_key_value_heads=2, head_dim=8),
    "phi": _decoder(tf.PhiConfig, tf.PhiForCausalLM),
    "gpt_neox": _decoder(tf.GPTNeoXConfig, tf.GPTNeoXForCausalLM),
    "opt": lambda ids: tf.OPTForCausalLM(tf.OPTConfig(**OPT_SIZES, **ids)),
    "falcon": lambda ids: tf.FalconForCausalLM(
        tf.FalconConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, **ids)
    ),
    "bloom": lambda ids: tf.BloomForCausalLM(
        tf.BloomConfig(hidden_size=32, n_layer=2, n_head=4, max_position_embeddings=64, **ids)
    ),
}
# BLOOM's GELU is an autograd.Function that torch.func cannot transform.
NO_VMAP = {"bloom"}


@pytest.fixture(params=sorted(BUILDERS))
def arch(request) -> tuple[str, Any, Any]:
    tok = tiny.make_tokenizer()
    ids = dict(
        vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BUILDERS[request.param](ids)
    model.train()  # measurements must switch to eval mode and restore this
    return request.param, model, tok


def _probe(model: Any, tok: Any) -> pk.Probe:
    return pk.Probe(model, tok, optimizer="sgd", lr=LR, watch=WATCH)


def _close(got: float, want: float, rel: float = 1e-4, abs_: float = 1e-7) -> bool:
    return got == pytest.approx(want, rel=rel, abs=abs_)


def test_step_isolated_then_committed_and_undone(arch):
    name, model, tok = arch
    probe = _probe(model, tok)
    stepped = oracle.sgd_stepped(model, tok, *EXAMPLE, LR)
    naive = oracle.state_delta(oracle.trainable_state(model), oracle.trainable_state(stepped))
    loss_b, _ = oracle.example_loss(model, tok, *EXAMPLE)
    loss_a, _ = oracle.example_loss(stepped, tok, *EXAMPLE)
    model.train()
    watch = oracle.watch_metrics(model, stepped, tok, *WATCH_TARGET)
    model.train()
    before = probe.fingerprint()  # (the oracle's own forwards may install library hooks)
    for commit in (False, True):
        r = probe.step(pk.Example(*EXAMPLE), commit=commit)
        assert r.ok and r.committed == commit, name
        assert _close(r.loss_before, loss_b, rel=1e-5) and _close(r.loss_after, loss_a)
        by_name = {t.name: t for t in r.tensors}
        assert set(by_name) == set(naive)
        for tensor, n in naive.items():
            assert _close(math.sqrt(by_name[tensor].sum_sq), n["l2"], rel=1e-3, abs_=1e-9)
        row = r.watch[0]
        assert _close(row.kl, watch["kl"], rel=1e-3, abs_=1e-9)
        assert _close(row.dlogp_target, watch["dlogp_target"], rel=1e-3, abs_=1e-7)
        if not commit:
            assert probe.fingerprint() == before, f"{name}: an isolated step changed the model"
    after = oracle.trainable_state(model)
    for tensor, value in oracle.trainable_state(stepped).items():
        torch.testing.assert_close(after[tensor], value, rtol=1e-5, atol=1e-6)
    probe.undo()
    assert probe.fingerprint() == before, f"{name}: undo is not bit-exact"


def test_isolated_map_exact_and_first_order(arch):
    name, model, tok = arch
    probe = _probe(model, tok)
    before = probe.fingerprint()
    examples = [pk.Example(*EXAMPLE), pk.Example(*OTHER)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exact = pk.isolated_map(probe, examples, method="exact")
        first = pk.isolated_map(probe, examples, method="first_order", sample=2)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    if name in NO_VMAP:
        assert exact.method == "loop" and "same numbers" in messages[0]
    else:
        assert exact.method == "exact" and not messages
    assert first.method == "first_order", "first-order numbers are never replaced by exact ones"
    assert first.residual is not None and math.isfinite(first.residual.relative)
    assert probe.fingerprint() == before

    for i, ex in enumerate((EXAMPLE, OTHER)):
        model.eval()
        stepped = oracle.sgd_stepped(model, tok, *ex, LR)
        loss_b, _ = oracle.example_loss(model, tok, *ex)
        loss_a, _ = oracle.example_loss(stepped, tok, *ex)
        watch = oracle.watch_metrics(model, stepped, tok, *WATCH_TARGET)
        assert _close(exact.rows[i].loss_drop, loss_b - loss_a, rel=1e-3, abs_=1e-6)
        assert _close(exact.dlogp[i][0], watch["dlogp_target"], rel=1e-3, abs_=1e-6)
        assert _close(exact.kl[i][0], watch["kl"], rel=1e-3, abs_=1e-9)
        # first order: TracIn by hand
        norm_sq = oracle.grad_norm_sq(model, tok, *ex)
        assert _close(first.rows[i].loss_drop, LR * norm_sq, rel=1e-3)
        assert _close(first.rows[i].update_size, LR * math.sqrt(norm_sq), rel=1e-3)
        pred = oracle.tracin(model, tok, ex, WATCH_TARGET, LR)
        assert _close(first.dlogp[i][0], pred, rel=1e-3, abs_=1e-7)
        assert math.isnan(first.dlogp[i][1]), "no target, nothing to predict"


def test_first_order_with_adam_keeps_its_meaning(arch):
    """Off the plain-SGD path (per-example Δθ): still first-order, looped where vmap fails."""
    name, model, tok = arch
    probe = pk.Probe(model, tok, optimizer="adam", lr=1e-3, watch=WATCH)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = pk.isolated_map(probe, [pk.Example(*EXAMPLE)], method="first_order", sample=1)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert first.method == "first_order"
    assert bool(messages) == (name in NO_VMAP)
    if messages:
        assert "one example at a time" in messages[0] and "first-order" in messages[0]
    assert math.isfinite(first.residual.relative) and math.isfinite(first.dlogp[0][0])


def test_attribute_equals_autograd(arch):
    name, model, tok = arch
    probe = _probe(model, tok)
    before = probe.fingerprint()
    got = probe.attribute(EXAMPLE[0], EXAMPLE[1], method="grad_x_input")
    assert probe.fingerprint() == before
    model.eval()
    want = oracle.grad_x_input(model, tok, *EXAMPLE)
    assert got.sequence == pytest.approx(want, rel=1e-4, abs=1e-6), name
