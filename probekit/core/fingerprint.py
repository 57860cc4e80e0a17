"""A bit-level fingerprint of everything a probe could disturb in a model.

Two fingerprints are equal exactly when parameter and buffer bits, tie structure,
train/eval flags, ``requires_grad``, existing ``.grad`` bits, hook counts,
optimizer state bits and the RNG state are all the same. Bits, not values:
``torch.equal`` says NaN ≠ NaN, a hash of the bytes does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from probekit.core.protocols import CausalLM

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


@dataclass(frozen=True)
class Fingerprint:
    """Hashes of a model's state, one field per kind; equal exactly when nothing changed.

    ``differences(other)`` names the fields that differ, which says what was disturbed.
    """

    storages: tuple[tuple[str, str], ...]
    ties: tuple[tuple[str, ...], ...]
    training: tuple[tuple[str, bool], ...]
    requires_grad: tuple[tuple[str, bool], ...]
    grads: tuple[tuple[str, str], ...]
    hooks: tuple[tuple[str, int], ...]
    optimizer: str
    rng: str

    def differences(self, other: Fingerprint) -> list[str]:
        """Names of the fields that differ (empty when identical)."""
        return [f for f in self.__dataclass_fields__ if getattr(self, f) != getattr(other, f)]


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and raw bytes (no bytes on the meta device)."""
    if tensor.is_meta:  # offloaded by accelerate: no data here to disturb
        return hashlib.sha256(f"meta{tensor.dtype}{tuple(tensor.shape)}".encode()).hexdigest()
    data = tensor.detach().contiguous().cpu()
    digest = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    if data.numel():
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def fingerprint(model: CausalLM, optimizer: Any = None) -> Fingerprint:
    """Fingerprint ``model`` (and an optimizer's state, if given)."""
    names_by_id: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names_by_id.setdefault(id(p), []).append(name)
    params = dict(model.named_parameters())
    storages = [(n, tensor_digest(p)) for n, p in params.items()]
    storages += [(f"buffer:{n}", tensor_digest(b)) for n, b in model.named_buffers()]
    grads = [(n, "none" if p.grad is None else tensor_digest(p.grad)) for n, p in params.items()]
    hooks = [
        (f"{name}:{attr}", len(getattr(module, attr, {}) or {}))
        for name, module in model.named_modules()
        for attr in _HOOK_DICTS
    ]
    return Fingerprint(
        storages=tuple(storages),
        ties=tuple(sorted(tuple(v) for v in names_by_id.values() if len(v) > 1)),
        training=tuple((n, m.training) for n, m in model.named_modules()),
        requires_grad=tuple((n, p.requires_grad) for n, p in params.items()),
        grads=tuple(grads),
        hooks=tuple(hooks),
        optimizer=_optimizer_digest(optimizer),
        rng=_rng_digest(),
    )


def _optimizer_digest(optimizer: Any) -> str:
    if optimizer is None:
        return ""
    state = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
    digest = hashlib.sha256()
    _feed(digest, state)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(tensor_digest(value).encode())
    elif isinstance(value, dict):
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        for item in value:
            _feed(digest, item)
    else:
        digest.update(repr(value).encode())


def _rng_digest() -> str:
    states = [torch.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states += list(torch.cuda.get_rng_state_all())
    return hashlib.sha256(b"".join(s.numpy().tobytes() for s in states)).hexdigest()
