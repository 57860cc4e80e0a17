"""The memory estimate of a probe step: against the bytes a real step allocates, and the refusal."""

from __future__ import annotations

import warnings
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

import probekit as pk
from probekit.core import free_memory, memory
from tests import tiny

WORDS = ["alice", "lives", "in", "paris", "the", "cat", "says", "meow"]


class LiveBytes(TorchDispatchMode):
    """Peak bytes of CPU tensor storages alive at once, counting every storage an op creates.

    Storages that exist before (the weights) are never counted; a storage stops counting
    when it is freed. Work space inside a kernel is not seen (it is not a tensor).
    """

    def __init__(self, existing: list[torch.Tensor]) -> None:
        super().__init__()
        self.sizes: dict[int, int] = {t.untyped_storage().data_ptr(): 0 for t in existing}
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key in self.sizes or storage.nbytes() == 0:
                    continue
                self.sizes[key] = storage.nbytes()
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._freed, key)
        return out

    def _freed(self, key: int) -> None:
        self.live -= self.sizes.pop(key)


def _model(kind: str, dtype: torch.dtype, tok) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind.startswith("gpt2"):  # "gpt2-vocab": the embedding is most of the model
        vocab = 20_000 if kind == "gpt2-vocab" else len(tok)
        config = GPT2Config(vocab_size=vocab, n_positions=256, n_embd=64, n_layer=3, n_head=4)
        return GPT2LMHeadModel(config).to(dtype)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=176, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )  # fmt: skip
    return LlamaForCausalLM(config).to(dtype)


def _example(tokens: int) -> pk.Example:
    return pk.Example(" ".join((WORDS * 64)[: tokens - 1]), " paris")


@pytest.mark.parametrize(
    ("kind", "optimizer", "dtype", "options", "tokens"),
    [
        ("gpt2", "sgd", torch.float32, {}, 12),
        ("gpt2", "adam", torch.bfloat16, {}, 12),
        ("gpt2", "sgd", torch.float32, {"layers": [-1]}, 120),
        ("gpt2-vocab", "sgd", torch.bfloat16, {}, 24),
        ("gpt2-vocab", "adam", torch.float32, {}, 24),
        ("llama", "adamw", torch.float32, {}, 120),
        ("llama", "sgd", torch.bfloat16, {"pattern": "mlp"}, 60),
    ],
)
def test_the_estimate_bounds_what_a_step_allocates_within_a_small_factor(
    tiny_tokenizer, kind, optimizer, dtype, options, tokens
):
    model = _model(kind, dtype, tiny_tokenizer)
    probe = pk.Probe(model, tiny_tokenizer, optimizer=optimizer, lr=1e-3, **options)
    found = pk.estimate_memory(probe, tokens=tokens)
    masters = found.masters // 2  # the float32 copies exist once the probe is built
    tracker = LiveBytes([*model.parameters(), *model.buffers()])
    with tracker, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # words outside the vocabulary
        assert probe.step(_example(tokens)).ok
    measured = tracker.peak + masters
    print(f"{kind} {optimizer} {dtype} {options} {tokens} tokens: estimate / measured = "
          f"{found.need / measured:.2f}")  # fmt: skip
    # an upper bound: a first step has no optimizer state to copy yet, so Adam's share of
    # the estimate is up to twice what it allocates
    assert measured <= found.need <= 2.25 * measured, (measured, found.need, str(found.parts()))


def test_the_parts_count_what_the_update_rule_keeps(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer).to(torch.bfloat16)
    stepped = [p for n, p in model.named_parameters() if ".h.1." in n]
    n = sum(p.numel() for p in stepped)
    found = pk.estimate_memory(model, optimizer="adam", layers=[1])
    assert found.stepped == n
    assert found.gradients == found.saved_copy == 2 * n  # bf16
    assert found.masters == 8 * n  # float32 copies and their gradients
    steps = 2 * 4 * len(stepped)  # the step count of each tensor, and a copy
    assert found.optimizer_state == 2 * 2 * 4 * n + steps  # two float32 moments, and a copy
    largest = max(p.numel() for p in stepped)
    assert found.workspace == 4 * n + 4 * 4 * largest  # directions; statistics of one tensor
    assert found.weights == sum(2 * p.numel() for p in dict.fromkeys(model.parameters()))
    sgd = pk.estimate_memory(model, optimizer="sgd", layers=[1])
    assert sgd.optimizer_state == 0 and sgd.need < found.need
    momentum = pk.estimate_memory(model, optimizer="sgd", momentum=0.9, layers=[1])
    assert 2 * 4 * n <= momentum.optimizer_state <= 2 * 4 * (n + len(stepped))
    assert found.need == sum(found.parts().values())


def test_an_undo_entry_is_what_each_committed_step_keeps(tiny_tokenizer):
    model = tiny.make_gpt2(tiny_tokenizer)
    probe = pk.Probe(model, tiny_tokenizer, optimizer="adam", lr=1e-3)
    example = pk.Example("alice lives in", " paris")
    probe.step(example, commit=True)
    probe.step(example, commit=True)  # its undo entry holds the state the first step made
    before = probe.undo_bytes()
    probe.step(example, commit=True)
    assert probe.undo_bytes() - before == pk.estimate_memory(probe).undo_entry


def test_activations_grow_with_the_example_and_the_stepped_depth(tiny_tokenizer):
    model = _model("gpt2", torch.float32, tiny_tokenizer)
    short, long = (pk.estimate_memory(model, tokens=t).activations for t in (16, 160))
    assert long > 9 * short
    top = pk.estimate_memory(model, layers=[-1], tokens=160).activations
    head = pk.estimate_memory(model, layers=["final_norm"], tokens=160).activations
    assert head < top < long  # (GPT-2's lm_head is tied to the embeddings: every block)


def test_free_memory_on_the_cpu_and_an_absent_gpu():
    free = memory.free_bytes("cpu")
    assert free is not None and free > 0
    if not torch.cuda.is_available():
        assert memory.free_bytes("cuda") is None


def _fake_free(monkeypatch, amount: int) -> None:
    monkeypatch.setattr(memory, "free_bytes", lambda device: amount)


def test_a_probe_that_will_not_fit_is_refused_naming_the_alternatives(tiny_tokenizer, monkeypatch):
    model = tiny.make_gpt2(tiny_tokenizer)
    full = pk.estimate_memory(model, optimizer="adam", tokens=32)  # its context length
    top = pk.estimate_memory(model, optimizer="adam", layers=[-1], tokens=32)
    assert top.need < full.need
    _fake_free(monkeypatch, (top.need + full.need) // 2)
    start = pk.fingerprint(model)
    with pytest.raises(pk.OutOfMemoryError, match="will not fit") as info:
        pk.Probe(model, tiny_tokenizer, optimizer="adam")
    message = str(info.value)
    for alternative in ("layers=", "pattern=", "LoraProbe", "optimizer='sgd'", "bf16",
                        "device", "check_memory=False", "estimate_memory"):  # fmt: skip
        assert alternative in message, alternative
    assert pk.fingerprint(model).differences(start) == []
    assert (
        pk.Probe(model, tiny_tokenizer, optimizer="adam", layers=[-1])
        .step(pk.Example("alice lives in", " paris"))
        .ok
    )  # the subset fits
    forced = pk.Probe(model, tiny_tokenizer, optimizer="adam", check_memory=False)
    assert forced.step(pk.Example("alice lives in", " paris")).ok


def test_check_memory_must_be_a_flag(tiny_gpt2):
    model, tok = tiny_gpt2
    with pytest.raises(pk.InputError, match="check_memory"):
        pk.Probe(model, tok, check_memory="no")


def test_the_estimate_reads_as_a_sentence(tiny_gpt2, monkeypatch):
    model, _ = tiny_gpt2
    _fake_free(monkeypatch, 3 * 1024**3)
    text = str(pk.estimate_memory(model, optimizer="adam"))
    assert "needs" in text and "MiB" in text and "free: 3.00 GiB" in text and "128 tokens" in text
    _fake_free(monkeypatch, None)
    found = pk.estimate_memory(model)
    assert found.fits and "free: unknown" in str(found)


def test_a_container_limit_caps_the_free_host_memory(monkeypatch, tmp_path):
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    limit.write_text("3000000000\n")
    usage.write_text("1000000000\n")
    monkeypatch.setattr(free_memory, "_CGROUP_FILES", ((str(limit), str(usage)),))
    monkeypatch.setattr(free_memory, "_system_available", lambda: 50_000_000_000)
    assert memory.free_bytes("cpu") == 2_000_000_000
    limit.write_text("max\n")
    assert memory.free_bytes("cpu") == 50_000_000_000


def test_the_check_at_construction_assumes_at_most_the_context_length(tiny_gpt2):
    model, tok = tiny_gpt2  # a context of 32 tokens
    probe = pk.Probe(model, tok)
    entries, spec = probe.entries, probe.spec
    assert memory.check_fits(model, entries, spec).tokens == 32
    assert memory.check_fits(model, entries, spec, tokens=16).tokens == 16
