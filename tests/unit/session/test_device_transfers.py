"""Reading results off the device: a fixed number of transfers per step, whatever the model.

On a GPU every device → host read (``.item()``, ``float(t)``, ``.tolist()``, ``.cpu()``,
``.numpy()``) waits for the device. A step reduces its statistics on the device and reads
out summaries, so the number of reads must not grow with the number of tensors or layers.
On the CPU the same calls mark the same reads, so the count is measured here. Reads made
inside ``torch.optim`` are not counted: torch keeps an optimizer's step counters on the host
(``capturable=False``), so reading them never waits for a device.
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import GPT2Config, GPT2LMHeadModel

import probekit as pk
from tests.tiny import make_tokenizer

READS = ("tolist", "cpu", "numpy")


class _ScalarReads(TorchDispatchMode):
    """Counts ``.item()`` and the implicit ones (``float(t)``, ``bool(t)``, ``int(t)``)."""

    def __init__(self, counts: collections.Counter[str]) -> None:
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and not _in_torch_optim():
            self.counts["item"] += 1
        return func(*args, **(kwargs or {}))


def _in_torch_optim() -> bool:
    return any("/torch/optim/" in frame.filename for frame in traceback.extract_stack())


@contextmanager
def counted_reads() -> Iterator[collections.Counter[str]]:
    counts: collections.Counter[str] = collections.Counter()
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def counting(name):
        def read(self, *args, **kwargs):
            counts[name] += 1
            return originals[name](self, *args, **kwargs)

        return read

    for name in READS:
        setattr(torch.Tensor, name, counting(name))
    try:
        with _ScalarReads(counts):
            yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _gpt2(tok, layers: int, dtype: torch.dtype) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok), n_positions=32, n_embd=32, n_layer=layers, n_head=4,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config).to(dtype)


def _reads_of_one_step(layers: int, optimizer: str, dtype: torch.dtype, commit: bool) -> int:
    tok = make_tokenizer()
    model = _gpt2(tok, layers, dtype)
    watch = [pk.Example("the cat says", " meow"), "alice lives in", "the sky is"]
    probe = pk.Probe(model, tok, optimizer=optimizer, lr=0.01, watch=watch)
    example = pk.Example("the dog says", " woof")
    probe.step(example)  # first step: caches, compiled kernels
    with counted_reads() as counts:
        result = probe.step(example, commit=commit)
    assert result.status == "ok"
    return sum(counts.values())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("commit", [False, True])
def test_reads_per_step_do_not_grow_with_the_model(optimizer, dtype, commit):
    shallow = _reads_of_one_step(1, optimizer, dtype, commit)
    deep = _reads_of_one_step(6, optimizer, dtype, commit)  # 6x the blocks, 5.3x the tensors
    print(
        f"{optimizer} {dtype} commit={commit}: {shallow} device reads with 1 block, {deep} with 6"
    )
    assert deep == shallow, f"{shallow} reads with 1 block, {deep} with 6"
    assert shallow <= 40, f"{shallow} device reads in one step"


def test_the_counter_sees_every_kind_of_read():
    t = torch.ones(3)
    with counted_reads() as counts:
        t.sum().item()
        float(t[0])
        t.tolist()
        t.cpu()
        t.numpy()
    assert counts == {"item": 2, "tolist": 1, "cpu": 1, "numpy": 1}
