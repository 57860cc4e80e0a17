"""Temporary changes to a model, undone on any exit — exceptions and Ctrl-C included.

``preserved`` puts a model in measuring condition (eval mode, only the selected
parameters requiring grad, the user's ``.grad`` set aside, RNG saved) and restores
every one of those on exit. ``WeightSnapshot`` holds a bit-exact copy of the stepped
storages, so a step can be reverted.

A held-back Ctrl-C (:mod:`probekit.core.interrupts`) is raised at the start of every
forward pass inside ``preserved`` — a point from which unwinding restores everything.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from probekit.core import interrupts
from probekit.core.params import ParamEntry
from probekit.core.protocols import CausalLM
from probekit.errors import OutOfMemoryError


@contextmanager
def preserved(model: CausalLM, entries: Sequence[ParamEntry]) -> Iterator[None]:
    """Eval mode, grads set aside, only ``entries`` trainable — all restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    params = list(dict.fromkeys(model.parameters()))
    flags = [(p, p.requires_grad) for p in params]
    grads = [(p, p.grad) for p in params]
    selected = {id(e.param) for e in entries}
    rng = _rng_state()
    hooks = _hook_keys(model)
    try:
        for p in params:
            p.grad = None
            p.requires_grad_(id(p) in selected)
        model.eval()
        model.register_forward_pre_hook(_poll)  # removed with every other new hook on exit
        yield
    finally:
        for p, grad in grads:
            p.grad = grad
        for p, flag in flags:
            p.requires_grad_(flag)
        for module, mode in modes:
            module.training = mode
        _drop_new_hooks(model, hooks)
        _set_rng_state(rng)


def _poll(module: torch.nn.Module, args: Any) -> None:
    interrupts.poll()


@contextmanager
def grad_enabled() -> Iterator[None]:
    """Gradients on, also inside the caller's ``torch.no_grad()`` or ``inference_mode()``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


@contextmanager
def memory_released(what: str) -> Iterator[None]:
    """Turn a device out-of-memory error into probekit's, after releasing what it held.

    Use outside the code that restores the model, so the model is already back.
    """
    try:
        yield
    except torch.OutOfMemoryError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "out of memory"
        exc.__traceback__ = None  # its frames hold the tensors that filled the device
        del exc
        gc.collect()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
        raise OutOfMemoryError(
            f"{what} ran out of device memory ({message}); the model is unchanged and the "
            "memory was released. Try a shorter example, fewer watch items, fewer stepped "
            "parameters (layers=[-1] or pattern=...), or optimizer='sgd' (Adam keeps two "
            "extra copies of the stepped weights)"
        ) from None


# Large tensors are checksummed on a strided sample: a prime stride puts samples in
# every row and every column of a matrix, at a few percent of one pass over memory.
CHECKSUM_STRIDE = 257
CHECKSUM_FULL_BELOW = 65_536


def weights_checksum(model: CausalLM) -> torch.Tensor:
    """Per-parameter sum and norm of (a sample of) the weights, for edits no counter sees.

    Edits through ``.data`` bump no version counter. Small tensors are summed whole;
    large ones on every ``CHECKSUM_STRIDE``-th element, which sees any edit of a whole
    tensor, a row or a column (a single element of a large tensor edited through
    ``.data`` can go unseen; in-place edits under ``torch.no_grad()`` are always seen).
    Compared bit for bit, so NaN never matches.
    """
    views = [
        p.detach().reshape(-1)
        if p.numel() < CHECKSUM_FULL_BELOW
        else p.detach().reshape(-1)[::CHECKSUM_STRIDE]
        for p in dict.fromkeys(model.parameters())
        if not p.is_meta  # offloaded weights hold no data here
    ]
    if not views:
        return torch.zeros(0)
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for view in views:
        by_device.setdefault(view.device, []).append(view)
    parts = []
    with torch.no_grad():
        for group in by_device.values():  # foreach kernels take one device at a time
            norms = torch.stack([n.float() for n in torch._foreach_norm(group)])
            sums = torch.stack([v.sum(dtype=torch.float32) for v in group])
            parts.append(torch.stack([norms, sums]).cpu())
    return torch.cat(parts, dim=1)


# Hook dicts of nn.Module, and the marker transformers sets when it installs its
# (normally permanent) output-capturing hooks on the first output_hidden_states call.
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_HF_HOOK_MARKER = "_output_capturing_hooks_installed"
HookState = tuple[dict[int, tuple[set[int], ...]], set[int]]


def _hook_keys(model: CausalLM) -> HookState:
    keys = {
        id(m): tuple(set(getattr(m, d, None) or {}) for d in HOOK_DICTS) for m in model.modules()
    }
    marked = {id(m) for m in model.modules() if _HF_HOOK_MARKER in m.__dict__}
    return keys, marked


def _drop_new_hooks(model: CausalLM, before: HookState) -> None:
    """Remove every hook added while we held the model (ours, or the library's on our behalf)."""
    keys, marked = before
    for module in model.modules():
        known = keys.get(id(module), tuple(set() for _ in HOOK_DICTS))
        for attr, old in zip(HOOK_DICTS, known, strict=True):
            hooks = getattr(module, attr, None) or {}
            for key in [k for k in hooks if k not in old]:
                del hooks[key]
        if _HF_HOOK_MARKER in module.__dict__ and id(module) not in marked:
            del module.__dict__[_HF_HOOK_MARKER]


class WeightSnapshot:
    """A bit-exact copy of some parameter storages, restorable in place."""

    def __init__(self, entries: Sequence[ParamEntry], *, take: bool = True) -> None:
        self.entries = list(entries)
        self.saved: list[torch.Tensor] = []
        if take:
            self.take()

    def take(self) -> None:
        """Copy the current values (once; later calls keep the first copy)."""
        if not self.saved:
            with torch.no_grad():
                self.saved = [e.param.detach().clone() for e in self.entries]

    @property
    def params(self) -> list[torch.Tensor]:
        return [e.param.detach() for e in self.entries]

    def restore(self) -> None:
        """Write the saved values back (nothing to do if no copy was taken yet)."""
        if self.saved:
            with torch.no_grad():
                torch._foreach_copy_(self.params, self.saved)

    def nbytes(self) -> int:
        """Memory held by the saved copy (what the undo budget counts)."""
        return sum(t.numel() * t.element_size() for t in self.saved)


def _rng_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return torch.get_rng_state(), list(cuda)


def _set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
