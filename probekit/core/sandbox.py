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
from torch.utils.hooks import RemovableHandle

from probekit.core import interrupts, stacked
from probekit.core.params import ParamEntry
from probekit.core.protocols import CausalLM
from probekit.errors import OutOfMemoryError


@contextmanager
def preserved(model: CausalLM, entries: Sequence[ParamEntry]) -> Iterator[None]:
    """Eval mode, grads set aside, only ``entries`` trainable — all restored on exit."""
    modules = submodules(model)
    modes = [m.training for m in modules]
    params = parameters(modules)
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    selected = {id(e.param) for e in entries}
    rng = _rng_state()
    hooks = _hook_state(modules)
    try:
        for p in params:
            p.grad = None
            if p.requires_grad != (id(p) in selected):
                p.requires_grad_(id(p) in selected)
        if any(modes):
            model.eval()
        model.register_forward_pre_hook(_poll)  # removed with every other new hook on exit
        yield
    finally:
        for p, grad, flag in zip(params, grads, flags, strict=True):
            p.grad = grad
            if p.requires_grad != flag:
                p.requires_grad_(flag)
        for module, mode in zip(modules, modes, strict=True):
            if module.training != mode:
                module.training = mode
        _drop_new_hooks(model, hooks)
        _set_rng_state(rng)


def parameters(modules: Sequence[torch.nn.Module]) -> list[torch.nn.Parameter]:
    """The distinct parameters of ``modules`` (from :func:`submodules`), as ``parameters()``."""
    return list(dict.fromkeys(p for m in modules for p in m._parameters.values() if p is not None))


def submodules(model: CausalLM | torch.nn.Module) -> list[torch.nn.Module]:
    """``model.modules()`` as a list: each module once, parents before children, in order.

    The same modules as the ``nn.Module`` walk, without building a name for each.
    """
    found: list[torch.nn.Module] = []
    seen: set[int] = set()
    pending: list[Any] = [model]
    while pending:
        module = pending.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        found.append(module)
        pending.extend(reversed([c for c in module._modules.values() if c is not None]))
    return found


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


def weights_checksum(
    model: CausalLM, params: Sequence[torch.nn.Parameter] | None = None
) -> torch.Tensor:
    """Per-parameter sum and norm of (a sample of) the weights, for edits no counter sees.

    Edits through ``.data`` bump no version counter. Small tensors are summed whole;
    large ones on every ``CHECKSUM_STRIDE``-th element, which sees any edit of a whole
    tensor, a row or a column (a single element of a large tensor edited through
    ``.data`` can go unseen; in-place edits under ``torch.no_grad()`` are always seen).
    Compared bit for bit, so NaN never matches. ``params``: the model's parameters as
    :func:`parameters` lists them, if the caller already has them.
    """
    if params is None:
        params = parameters(submodules(model))
    views = [
        p.detach().reshape(-1)
        if p.numel() < CHECKSUM_FULL_BELOW
        else p.detach().reshape(-1)[::CHECKSUM_STRIDE]
        for p in params
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
            norms = torch.stack(torch._foreach_norm(group)).float()
            sums = torch.stack([v.sum(dtype=torch.float32) for v in group])
            parts.append(torch.stack([norms, sums]).cpu())
    return torch.cat(parts, dim=1)


# Hook dicts of nn.Module (keyed by handle id, shared by the dicts of per-hook options),
# and the marker transformers sets when it installs its (normally permanent)
# output-capturing hooks on the first output_hidden_states call.
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_HOOK_OPTION_DICTS = (
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)
_HF_HOOK_MARKER = "_output_capturing_hooks_installed"
HookState = tuple[int, set[int]]


def _hook_state(modules: Sequence[torch.nn.Module]) -> HookState:
    """Where hook handle ids stand now, and which modules carry the transformers marker.

    Every hook handle takes the next id of one global counter, so the hooks added from
    here on are exactly those with an id at or above it.
    """
    marked = {id(m) for m in modules if _HF_HOOK_MARKER in m.__dict__}
    return RemovableHandle.next_id, marked


def _drop_new_hooks(model: CausalLM, before: HookState) -> None:
    """Remove every hook added while we held the model (ours, or the library's on our behalf)."""
    first_new, marked = before
    for module in submodules(model):
        for attr in HOOK_DICTS:
            hooks = getattr(module, attr, None)
            if hooks and max(hooks) >= first_new:
                for key in [k for k in hooks if k >= first_new]:
                    del hooks[key]
                    for options in _HOOK_OPTION_DICTS:
                        getattr(module, options, {}).pop(key, None)
        if _HF_HOOK_MARKER in module.__dict__ and id(module) not in marked:
            del module.__dict__[_HF_HOOK_MARKER]


class WeightSnapshot:
    """A bit-exact copy of some parameter storages, restorable in place."""

    def __init__(
        self,
        entries: Sequence[ParamEntry],
        *,
        take: bool = True,
        scratch: stacked.Workspace | None = None,
    ) -> None:
        """``scratch``: keep the stacked copies in its matrices, reused from call to call —
        only for a snapshot that is dropped before the next one taken into the same
        workspace (an isolated step's), never for one that is kept (undo)."""
        self.entries = list(entries)
        self.saved: list[torch.Tensor] = []
        self._scratch = scratch
        if take:
            self.take()

    def take(self) -> None:
        """Copy the current values (once; later calls keep the first copy).

        Small tensors of one size are copied as the rows of one matrix
        (:mod:`probekit.core.stacked`): one copy per size, and the statistics pass of a
        plain SGD step finds θ already stacked.
        """
        if not self.saved:
            params = self.params
            with torch.no_grad():
                saved: list[torch.Tensor | None] = [None] * len(params)
                targets: list[torch.Tensor] = []
                sources: list[torch.Tensor] = []
                for indices in stacked.groups(params):
                    members = [params[i] for i in indices]
                    if self._scratch is None:
                        copies = stacked.rows(stacked.stack(members), members)
                    else:
                        copies = self._scratch.rows_for("snapshot", members)
                        targets += copies
                        sources += members
                    for i, row in zip(indices, copies, strict=True):
                        saved[i] = row
                if targets:
                    torch._foreach_copy_(targets, sources)
                self.saved = [
                    p.clone() if s is None else s for p, s in zip(params, saved, strict=True)
                ]

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
