"""Demo training: bit-reproducible, fast when scaled down, a robust tokenizer, a round trip."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import dataclasses

import pytest
import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from probekit.demo import corpus, training
from probekit.demo.training import SMOKE_CONFIG, DemoTrainConfig


@pytest.fixture(scope="module")
def smoke_run():
    return training.train(SMOKE_CONFIG)


@pytest.fixture(scope="module")
def tokenizer():
    return training.build_tokenizer(corpus.vocabulary(0))


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_scaled_down_training_is_small_and_reproducible(smoke_run):
    model, _, report = smoke_run
    # the work is bounded (wall time is not asserted: it depends on how busy the machine is)
    assert report["parameters"] < 50_000
    assert [step for step, _ in report["losses"]] == [0, 5, 10, 15, SMOKE_CONFIG.steps - 1]
    again, _, report2 = training.train(SMOKE_CONFIG)
    _assert_same_weights(model, again)
    assert report["losses"] == report2["losses"]


def test_another_seed_gives_other_weights(smoke_run):
    model = smoke_run[0]
    other, _, _ = training.train(dataclasses.replace(SMOKE_CONFIG, seed=1))
    assert not torch.equal(model.transformer.wte.weight, other.transformer.wte.weight)


def test_training_leaves_global_torch_state_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    training.train(dataclasses.replace(SMOKE_CONFIG, steps=2, threads=1))
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_loss_goes_down(smoke_run):
    losses = [loss for _, loss in smoke_run[2]["losses"]]
    assert losses[-1] < losses[0]


def test_model_shape_and_special_ids(smoke_run):
    model, tok, report = smoke_run
    cfg = model.config
    assert isinstance(model, GPT2LMHeadModel) and not model.training
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head) == (1, 32, 2)
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 2, 3)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert cfg.vocab_size == len(tok) == report["vocab_size"]
    assert report["parameters"] == training.parameter_count(model)


def test_shipped_config_stays_under_two_million_parameters(tokenizer):
    model = training.build_model(DemoTrainConfig(), tokenizer)
    assert training.parameter_count(model) <= 2_000_000


def test_report_measures_every_family(smoke_run):
    accuracy = smoke_run[2]["accuracy"]
    assert set(accuracy) == set(corpus.FAMILIES + corpus.HELD_OUT_FAMILIES)
    assert all(0.0 <= value <= 1.0 for value in accuracy.values())


def test_special_tokens(tokenizer):
    names = [tokenizer.pad_token, tokenizer.unk_token, tokenizer.bos_token, tokenizer.eos_token]
    assert names == ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    assert [tokenizer.pad_token_id, tokenizer.unk_token_id] == [0, 1]
    assert [tokenizer.bos_token_id, tokenizer.eos_token_id] == [2, 3]


@pytest.mark.parametrize(
    "text", ["<script>alert('x')</script>", "😀🙃", "ünïcödé 東京", "\x00\t\n", "", "[UNK] [PAD]"]
)
def test_unknown_text_maps_to_unk_without_crashing(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert all(0 <= i < len(tokenizer) for i in ids)
    words = [w for w in text.split() if w.strip()]
    if words and not text.startswith("["):
        assert set(ids) == {tokenizer.unk_token_id}


def test_known_text_is_word_level_and_lowercased(tokenizer):
    ids = tokenizer("Alice LIVES in", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["alice", "lives", "in"]
    assert (
        tokenizer(" paris", add_special_tokens=False)["input_ids"]
        == tokenizer("paris", add_special_tokens=False)["input_ids"]
    )
    assert tokenizer.unk_token_id not in ids


def test_target_id_rejects_unknown_or_multiword_targets(tokenizer):
    assert (
        tokenizer.convert_ids_to_tokens(training.target_id(tokenizer, corpus.Fact("x", "a", " 40")))
        == "40"
    )
    for bad in (" zebra", " new york"):
        with pytest.raises(ValueError, match="single known word"):
            training.target_id(tokenizer, corpus.Fact("x", "a", bad))


def test_evaluate_restores_training_mode(smoke_run):
    model, tok = smoke_run[0], smoke_run[1]
    model.train()
    try:
        scores = training.evaluate(model, tok, corpus.facts("colour"))
        assert model.training and set(scores) == {"colour"}
    finally:
        model.eval()


def test_save_and_load_round_trip(smoke_run, tmp_path):
    model, tok, _ = smoke_run
    path = training.save(model, tok, tmp_path / "demo")
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    loaded = GPT2LMHeadModel.from_pretrained(path)
    loaded_tok = PreTrainedTokenizerFast.from_pretrained(path)
    _assert_same_weights(model, loaded)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    assert loaded_tok.get_vocab() == tok.get_vocab()
    assert loaded_tok.unk_token == "[UNK]" and loaded_tok.pad_token_id == 0
    assert loaded_tok("<script> 😀")["input_ids"] == [1, 1, 1, 1]
    facts = corpus.facts(seed=0)
    assert training.evaluate(loaded, loaded_tok, facts) == training.evaluate(model, tok, facts)
