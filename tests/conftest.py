"""Test configuration: never touch the network; small seeded models as fixtures."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

from tests import tiny

# Tiny models: one thread is faster than several and immune to a busy machine.
torch.set_num_threads(1)


@pytest.fixture
def tiny_tokenizer():
    return tiny.make_tokenizer()


@pytest.fixture
def tiny_gpt2(tiny_tokenizer):
    """A fresh 2-layer GPT-2: tied embeddings, dropout 0.1, seeded, in train mode."""
    return tiny.make_gpt2(tiny_tokenizer), tiny_tokenizer


@pytest.fixture
def tiny_llama(tiny_tokenizer):
    """A fresh 2-layer Llama-style model (RMSNorm, rotary, SwiGLU, untied head)."""
    return tiny.make_llama(tiny_tokenizer), tiny_tokenizer


@pytest.fixture(scope="session")
def demo():
    import probekit as pk

    return pk.load_demo(device="cpu")
