"""Train the embedded demo model: a small word-level GPT-2 on the synthetic corpus.

Training is reproducible: the same :class:`DemoTrainConfig` gives bit-identical weights
on the same machine (seeded torch and Python RNGs, a fixed thread count, deterministic
algorithms and a seeded data order). The global torch RNG, thread count and determinism
flag are restored afterwards, so training leaves no trace on the caller's process.

>>> model, tokenizer, report = train(DemoTrainConfig())            # doctest: +SKIP
>>> save(model, tokenizer, "probekit/demo/weights")                # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from probekit.demo import corpus
from probekit.demo.corpus import Fact

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
"""Special tokens, in id order: ``[PAD]`` = 0, ``[UNK]`` = 1, ``[BOS]`` = 2, ``[EOS]`` = 3."""

IGNORE_INDEX = -100


@dataclass(frozen=True)
class DemoTrainConfig:
    """Everything that determines the trained demo model (defaults: the shipped model)."""

    seed: int = 0
    """Seeds the initial weights, dropout and the data order."""
    world_seed: int = 0
    """Seeds the synthetic world (who lives where); see :func:`corpus.world`."""
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 64
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    dropout: float = 0.1
    threads: int = 2
    log_every: int = 100


SMOKE_CONFIG = DemoTrainConfig(
    n_layer=1,
    n_embd=32,
    n_head=2,
    n_positions=16,
    steps=20,
    batch_size=16,
    warmup_steps=5,
    log_every=5,
)
"""A scaled-down configuration that trains in well under a second (for tests)."""


# --- tokenizer and model ---------------------------------------------------------------------


def build_tokenizer(
    corpus_words: Iterable[str], model_max_length: int = 64
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``corpus_words``: lowercase, whitespace split, ``[UNK]`` else.

    Text outside the vocabulary (emoji, markup, other languages) maps to ``[UNK]``.
    No special tokens are added when encoding: a prompt's first word is position 0.
    """
    words = [w.lower() for w in dict.fromkeys(corpus_words) if w.lower() not in SPECIAL_TOKENS]
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*SPECIAL_TOKENS, *words]))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    pad, unk, bos, eos = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=pad,
        unk_token=unk,
        bos_token=bos,
        eos_token=eos,
        model_max_length=model_max_length,
        padding_side="right",
    )


def build_model(config: DemoTrainConfig, tokenizer: PreTrainedTokenizerFast) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 with tied embeddings, seeded from ``config.seed``."""
    torch.manual_seed(config.seed)
    gpt2 = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(gpt2)


def parameter_count(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


# --- data ------------------------------------------------------------------------------------


def encode_corpus(
    tokenizer: PreTrainedTokenizerFast, texts: Sequence[str], max_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, labels)``: each sentence + ``[EOS]``, right-padded."""
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    rows = [[*row, tokenizer.eos_token_id] for row in rows]
    width = max(len(row) for row in rows)
    if width > max_length:
        raise ValueError(f"a training sentence has {width} tokens; the context is {max_length}")
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    labels = ids.masked_fill(mask == 0, IGNORE_INDEX)
    return ids, mask, labels


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> Iterator[list[int]]:
    """``steps`` batches of row indices: seeded epoch-wise shuffles, no row twice in an epoch."""
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        while len(order) < batch_size:
            epoch = list(range(n))
            rng.shuffle(epoch)
            order.extend(epoch)
        yield order[:batch_size]
        del order[:batch_size]


# --- training --------------------------------------------------------------------------------


@contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Fix the thread count and deterministic algorithms; restore them and the RNG after."""
    previous_threads = torch.get_num_threads()
    previous_flag = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous_flag, warn_only=previous_warn)
            torch.set_num_threads(previous_threads)


def learning_rate(config: DemoTrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def next_token_loss(
    model: GPT2LMHeadModel, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of every labelled token given the tokens before it."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
    )


def _optimise(
    model: GPT2LMHeadModel, data: tuple[torch.Tensor, ...], config: DemoTrainConfig
) -> list[tuple[int, float]]:
    """Run ``config.steps`` AdamW steps; returns ``(step, loss)`` every ``log_every`` steps."""
    ids, mask, labels = data
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.98)
    )
    model.train()
    losses: list[tuple[int, float]] = []
    batches = batch_indices(len(ids), config.batch_size, config.steps, config.seed)
    for step, rows in enumerate(batches):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(config, step)
        loss = next_token_loss(model, ids[rows], mask[rows], labels[rows])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimiser.step()
        if step % config.log_every == 0 or step == config.steps - 1:
            losses.append((step, float(loss.detach())))
    model.eval()
    return losses


def train(
    config: DemoTrainConfig = DemoTrainConfig(),
) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast, dict[str, Any]]:
    """Train the demo model from scratch; returns it (in eval mode), its tokenizer and a report.

    The report holds the config, parameter count, wall time, the loss curve and the
    greedy top-1 accuracy on every family, known and held out.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    tokenizer = build_tokenizer(corpus.vocabulary(config.world_seed), config.n_positions)
    texts = corpus.training_text(config.world_seed)
    with deterministic(config.threads):
        model = build_model(config, tokenizer)
        data = encode_corpus(tokenizer, texts, config.n_positions)
        losses = _optimise(model, data, config)
    train_seconds = time.perf_counter() - started
    report = {
        "config": asdict(config),
        "parameters": parameter_count(model),
        "vocab_size": len(tokenizer),
        "sentences": len(texts),
        "train_seconds": round(train_seconds, 2),
        "losses": losses,
        "accuracy": evaluate(model, tokenizer, all_facts(config.world_seed)),
    }
    return model, tokenizer, report


# --- evaluation and saving -------------------------------------------------------------------


def all_facts(world_seed: int = 0) -> list[Fact]:
    """Every known fact followed by every held-out one."""
    held = [fact for family in corpus.HELD_OUT_FAMILIES for fact in corpus.held_out(family)]
    return corpus.facts(seed=world_seed) + held


def target_id(tokenizer: PreTrainedTokenizerFast, fact: Fact) -> int:
    """The single token id of ``fact.target``; raises if the target is not one known word."""
    ids = tokenizer(fact.target, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
        raise ValueError(f"target {fact.target!r} is not a single known word of the tokenizer")
    return int(ids[0])


@torch.no_grad()
def predict(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, prompts: list[str]
) -> list[int]:
    """The greedy next-token id after each prompt (one padded batch, eval mode)."""
    was_training = model.training
    model.eval()
    enc = tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
    device = next(model.parameters()).device
    logits = model(
        input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)
    ).logits
    last = enc["attention_mask"].sum(dim=1).to(device) - 1
    picked = logits[torch.arange(len(prompts), device=device), last].argmax(dim=-1)
    model.train(was_training)
    return [int(i) for i in picked.tolist()]


def evaluate(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, facts: Sequence[Fact]
) -> dict[str, float]:
    """Greedy top-1 accuracy of each fact's target after its prompt, per family."""
    hits: dict[str, list[bool]] = {}
    predicted = predict(model, tokenizer, [fact.prompt for fact in facts]) if facts else []
    for fact, guess in zip(facts, predicted, strict=True):
        hits.setdefault(fact.family, []).append(guess == target_id(tokenizer, fact))
    return {family: sum(flags) / len(flags) for family, flags in hits.items()}


def save(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, directory: str | os.PathLike[str]
) -> Path:
    """Write the model (safetensors + config) and tokenizer files into ``directory``."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    for file in path.iterdir():
        if file.is_file():  # some writers create private temp files; ship them readable
            file.chmod(0o644)
    return path
