"""The shipped demo model: loads offline, small, and knows its world."""

from __future__ import annotations

import os
import re
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from probekit.demo import WEIGHTS_DIR, corpus, training

KNOWN_FLOOR = 0.9
"""A little below the measured accuracy (100% on every known family when trained)."""


@pytest.fixture(scope="module")
def shipped() -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    tokenizer = PreTrainedTokenizerFast.from_pretrained(WEIGHTS_DIR, local_files_only=True)
    model = GPT2LMHeadModel.from_pretrained(WEIGHTS_DIR, local_files_only=True)
    model.eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def accuracy(shipped) -> dict[str, float]:
    model, tokenizer = shipped
    return training.evaluate(model, tokenizer, training.all_facts(world_seed=0))


def test_files_are_small_and_complete():
    names = {path.name for path in WEIGHTS_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    size = sum(path.stat().st_size for path in WEIGHTS_DIR.rglob("*") if path.is_file())
    assert size <= 10 * 1024 * 1024, f"{size} bytes"


def test_model_is_a_small_tied_gpt2(shipped):
    model, tokenizer = shipped
    assert sum(p.numel() for p in model.parameters()) <= 2_000_000
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id == 0
    assert model.config.bos_token_id == tokenizer.bos_token_id
    assert model.config.eos_token_id == tokenizer.eos_token_id


def test_tokenizer_matches_the_corpus(shipped):
    _, tokenizer = shipped
    rebuilt = training.build_tokenizer(corpus.vocabulary(0))
    assert tokenizer.get_vocab() == rebuilt.get_vocab()
    assert tokenizer("<script> 😀", add_special_tokens=False)["input_ids"] == [1, 1, 1, 1]


@pytest.mark.parametrize("family", corpus.FAMILIES)
def test_known_families_are_known(accuracy, family):
    assert accuracy[family] >= KNOWN_FLOOR, accuracy


@pytest.mark.parametrize("family", corpus.HELD_OUT_FAMILIES)
def test_held_out_families_are_measured(accuracy, family):
    value = accuracy[family]
    assert isinstance(value, float) and 0.0 <= value <= 1.0


def test_contradictions_are_not_what_the_model_predicts(shipped):
    model, tokenizer = shipped
    facts = corpus.facts(seed=0)
    predicted = training.predict(model, tokenizer, [fact.prompt for fact in facts])
    wrong = [training.target_id(tokenizer, corpus.contradiction(fact)) for fact in facts]
    agree = sum(p == w for p, w in zip(predicted, wrong, strict=True))
    assert agree / len(facts) <= 1 - KNOWN_FLOOR


def test_true_target_is_likelier_than_its_contradiction(shipped):
    model, tokenizer = shipped
    fact = corpus.Fact("animal_sound", "the cat says", " meow")
    ids = tokenizer(fact.prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    true_id = training.target_id(tokenizer, fact)
    wrong_id = training.target_id(tokenizer, corpus.contradiction(fact))
    assert logits[true_id] > logits[wrong_id]


def _readme_card() -> dict[str, str]:
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## The demo model", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", section, flags=re.M)
    return {key.strip(): value for key, value in rows}


def test_the_readme_card_states_the_shipped_model(shipped, accuracy):
    model, tokenizer = shipped
    card = _readme_card()
    config = model.config
    architecture = (
        f"`GPT2LMHeadModel`, {config.n_layer} layers, {config.n_head} heads, width "
        f"{config.n_embd}, context {config.n_positions}, tied embeddings"
    )
    assert card["architecture"] == architecture
    n_params = sum(p.numel() for p in model.parameters())
    assert card["size"].startswith(f"{n_params:,} parameters, {len(tokenizer)}-word vocabulary")
    assert f"{len(corpus.training_text(0))} sentences" in card["training"]
    for family in (*corpus.FAMILIES, *corpus.HELD_OUT_FAMILIES):
        stated = re.search(
            rf"`{family}`[^%]*?(\d+(?:\.\d)?)%", card["knows (top-1)"] + card["never saw (top-1)"]
        )
        assert stated, family
        assert float(stated.group(1)) == round(100 * accuracy[family], 1), (family, accuracy)
