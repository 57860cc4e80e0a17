"""Attribution on a model dispatched by accelerate (device_map), one block offloaded to disk."""

from __future__ import annotations

import pytest
import torch

import probekit as pk
from tests import tiny

pytest.importorskip("accelerate")


@pytest.fixture
def offloaded(tiny_tokenizer, tmp_path):
    original, dispatched = tiny.offloaded_gpt2(tiny_tokenizer, tmp_path)
    assert any(p.is_meta for p in dispatched.parameters()), "block 1 should be on disk"
    return original.eval(), dispatched, tiny_tokenizer


def _scores(a: pk.TokenAttribution) -> torch.Tensor:
    return torch.tensor([*a.scores, a.sequence], dtype=torch.float64)


@pytest.mark.parametrize(
    ("method", "options"),
    [("ig", {"n_steps": 8}), ("grad_x_input", {}), ("ablation", {})],
)
def test_attribution_on_an_offloaded_model_equals_the_resident_one(offloaded, method, options):
    original, dispatched, tok = offloaded
    start = pk.fingerprint(dispatched)
    got = pk.attribute(dispatched, tok, "alice lives in", " paris", method=method, **options)
    want = pk.attribute(original, tok, "alice lives in", " paris", method=method, **options)
    assert got.input_tokens == want.input_tokens
    torch.testing.assert_close(_scores(got), _scores(want), rtol=1e-5, atol=1e-7)
    assert pk.fingerprint(dispatched).differences(start) == []


def test_token_grad_on_an_offloaded_model_equals_the_resident_one(offloaded):
    original, dispatched, tok = offloaded
    start = pk.fingerprint(dispatched)
    got = pk.token_grad(dispatched, tok, "bob lives in", " rome")
    want = pk.token_grad(original, tok, "bob lives in", " rome")
    torch.testing.assert_close(_scores(got), _scores(want), rtol=1e-5, atol=1e-7)
    assert pk.fingerprint(dispatched).differences(start) == []


def test_a_single_device_map_model_is_probed_like_any_other(tiny_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    tiny.make_gpt2(tiny_tokenizer).save_pretrained(tmp_path / "m")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m", device_map={"": "cpu"})
    probe = pk.Probe(model, tiny_tokenizer, lr=0.1)
    start = probe.fingerprint()
    assert probe.step(pk.Example("alice lives in", " paris")).ok
    assert probe.fingerprint().differences(start) == []
