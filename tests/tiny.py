"""Tiny in-memory models and a word-level tokenizer for unit tests (no files, no network)."""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
WORDS = (
    "the a cat dog cow bird says meow woof moo tweet sky grass is blue green red "
    "alice bob carol lives in paris rome tokyo oslo plus minus . , ? ! "
    + " ".join(str(i) for i in range(20))
).split()


def make_tokenizer(words: list[str] | None = None) -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + list(dict.fromkeys(words or WORDS)))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )


def make_gpt2(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **overrides) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.1,
        embd_pdrop=0.1,
        attn_pdrop=0.1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **overrides,
    )
    model = GPT2LMHeadModel(config)
    model.train()
    return model


def make_llama(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.train()
    return model


def offloaded_gpt2(tokenizer: PreTrainedTokenizerFast, folder, seed: int = 0):
    """The tiny GPT-2 saved and loaded back by accelerate with block 1 offloaded to disk.

    Returns ``(original, offloaded)``: the same weights, once resident and once dispatched
    (block 1's weights stay on the meta device and are read from disk at each forward).
    """
    from pathlib import Path

    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    original = make_gpt2(tokenizer, seed)
    path = Path(folder)
    original.save_pretrained(path / "model")
    on_cpu = dict.fromkeys(
        ["transformer.wte", "transformer.wpe", "transformer.h.0", "transformer.ln_f", "lm_head"],
        "cpu",
    )
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        offloaded = AutoModelForCausalLM.from_pretrained(
            path / "model",
            device_map={**on_cpu, "transformer.h.1": "disk"},
            offload_folder=path / "offload",
        )
    finally:
        logging.set_verbosity(verbosity)
    return original, offloaded
