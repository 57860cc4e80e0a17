"""Loading: local-directory round trip, offline errors, vocabulary and context checks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import probekit as pk
from probekit.core import loading
from tests import tiny


def _save(model, tokenizer, path):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_local_directory_round_trip(tiny_gpt2, tmp_path):
    model, tok = tiny_gpt2
    _save(model, tok, tmp_path / "m")
    loaded, loaded_tok = pk.load(tmp_path / "m", device="cpu")
    assert not loaded.training, "load() must return the model in eval mode"
    assert loaded_tok.get_vocab() == tok.get_vocab()
    assert loaded.lm_head.weight is loaded.transformer.wte.weight, "ties must survive a reload"
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert loaded_tok.pad_token is not None


def test_load_returns_a_named_pair(tiny_gpt2, tmp_path):
    model, tok = tiny_gpt2
    pair = pk.load(_save(model, tok, tmp_path / "m"), device="cpu")
    assert pair.model is pair[0] and pair.tokenizer is pair[1]


def test_dtype_is_applied(tiny_gpt2, tmp_path):
    model, tok = tiny_gpt2
    loaded, _ = pk.load(_save(model, tok, tmp_path / "m"), device="cpu", dtype="bf16")
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


def test_offline_and_not_cached_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(pk.ModelNotAvailableError, match="not in the local Hugging Face cache"):
        pk.load("probekit-tests/no-such-model-anywhere", device="cpu")


def test_local_files_only_is_respected(tmp_path):
    with pytest.raises(pk.ModelNotAvailableError):
        pk.load("probekit-tests/absent", device="cpu", local_files_only=True)


def test_missing_directory_and_missing_config(tmp_path):
    with pytest.raises(pk.ModelLoadError, match="not a directory"):
        pk.load(tmp_path / "nowhere", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(pk.ModelLoadError, match=r"no config\.json"):
        pk.load(tmp_path / "empty", device="cpu")


def test_pad_token_is_set_from_an_existing_token(tiny_tokenizer):
    tiny_tokenizer.pad_token = None
    loading.ensure_pad_token(tiny_tokenizer)
    assert tiny_tokenizer.pad_token == "[EOS]"
    assert len(tiny_tokenizer) == len(tiny.make_tokenizer()), "no new token may be added"


def test_context_length_from_config_or_tokenizer(tiny_gpt2):
    model, tok = tiny_gpt2
    assert loading.context_length(model, tok) == 32
    bare = SimpleNamespace(config=SimpleNamespace())
    tok.model_max_length = 24
    assert loading.context_length(bare, tok) == 24
    tok.model_max_length = int(1e30)
    with pytest.raises(pk.UnsupportedModelError, match="context length"):
        loading.context_length(bare, tok)


def test_unknown_device_and_dtype_are_explained():
    from probekit.core.device import resolve_device, resolve_dtype

    with pytest.raises(pk.InputError, match="unknown dtype"):
        resolve_dtype("float8")
    with pytest.raises(pk.InputError, match="unknown device"):
        resolve_device("gpu0")
    assert resolve_dtype("bf16") is torch.bfloat16
