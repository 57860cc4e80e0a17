"""The model as a pure function of its selected parameters, for per-example work with torch.func.

``vmap(grad(...))`` over :func:`torch.func.functional_call` gives every example its
own gradient in one batched call, and ``vmap`` over stacked parameters evaluates a
chunk of differently-stepped models at once — the live weights are never written.

A model whose forward cannot run under these transforms (an ``autograd.Function``
without a ``setup_context``, as in BLOOM's GELU, or an operation without a batching
rule) raises :class:`Unsupported`; :meth:`Functional.looped` computes the same
quantities one example at a time with plain autograd instead.

Examples are right-padded to a common width. Causal attention never looks right, so
a real token's computation does not depend on the padding after it: the forward is
called with an all-ones attention mask and explicit position ids, which keeps it free
of the data-dependent branches that ``vmap`` cannot trace. Attention runs on SDPA's
math backend, whose operations all have batching rules (the fused CPU kernels fall
back to a slow per-example loop under ``vmap``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call, grad_and_value, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from probekit.core.batch import make_batch
from probekit.core.inputs import EncodedExample
from probekit.core.logprob import mean_target_nll, sum_target_logp
from probekit.core.params import ParamEntry

Params = dict[str, torch.Tensor]


class Unsupported(Exception):
    """A batched per-example path cannot run on this model; the caller falls back.

    The one exception every batched isolated path raises for "not on this model" —
    a forward that ``torch.func`` cannot transform, or a module the gradient-factor
    rules do not cover — so that a fallback never has to guess from a message.
    """


# Messages of torch.func when a model's forward cannot be transformed.
_TRANSFORM_ERRORS = ("vmap", "functorch", "setup_context", "batching rule")


@contextmanager
def declining() -> Iterator[None]:
    """Turn torch.func's "cannot transform this model" errors into :class:`Unsupported`."""
    try:
        yield
    except RuntimeError as err:
        if isinstance(err, torch.OutOfMemoryError) or not any(
            k in str(err) for k in _TRANSFORM_ERRORS
        ):
            raise
        raise Unsupported(str(err).splitlines()[0][:200]) from err


@dataclass(frozen=True)
class Stacked:
    """Examples right-padded to one width, with what to read at each position."""

    ids: torch.Tensor  # (N, T) token ids, pad after the real tokens
    targets: torch.Tensor  # (N, T) token predicted at each position, -1 where none is read
    counts: torch.Tensor  # (N,) target tokens per example (float32)

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


def stack(
    items: Sequence[EncodedExample], pad_id: int, device: torch.device, width: int | None = None
) -> Stacked:
    """Stack examples that have targets (every read position predicts a target token)."""
    batch = make_batch(items, pad_id, device)
    ids = pad_right(batch.input_ids, width or batch.input_ids.shape[1], pad_id)
    targets = torch.full_like(ids, -1)
    targets[batch.read_rows, batch.read_cols] = batch.targets
    return Stacked(ids, targets, (targets >= 0).sum(1).float())


def pad_right(ids: torch.Tensor, width: int, pad_id: int) -> torch.Tensor:
    """(B, T) ids right-padded to ``width`` columns (the same tensor if already that wide)."""
    if ids.shape[1] == width:
        return ids
    out = torch.full((ids.shape[0], width), pad_id, dtype=ids.dtype, device=ids.device)
    out[:, : ids.shape[1]] = ids
    return out


class Functional:
    """Forward passes of ``model`` with its ``entries`` replaced by given tensors.

    Per-example gradients and stepped evaluations use ``torch.func.vmap``; a looped
    instance (:meth:`looped`) computes the same quantities one example at a time.
    """

    def __init__(self, model: Any, entries: Sequence[ParamEntry], *, loop: bool = False) -> None:
        self.model = model
        self.entries = list(entries)
        self.names = [e.name for e in entries]
        self.base: Params = {e.name: e.param.detach() for e in entries}
        self.loop = loop

    def looped(self) -> Functional:
        """The same functions, one example at a time with plain autograd (no ``vmap``)."""
        return Functional(self.model, self.entries, loop=True)

    def logits(self, params: Params, ids: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) in float32 for ids (B, T) at ``params``."""
        batch, width = ids.shape
        with sdpa_kernel([SDPBackend.MATH]):  # the fused kernels have no vmap batching rule
            out = self._call(params, ids, batch, width)
        return out.logits.float()

    def _call(self, params: Params, ids: torch.Tensor, batch: int, width: int) -> Any:
        return functional_call(
            self.model,
            params,
            args=(),
            kwargs={
                "input_ids": ids,
                "attention_mask": torch.ones((batch, width), dtype=torch.long, device=ids.device),
                "position_ids": torch.arange(width, device=ids.device).expand(batch, width),
                "use_cache": False,
            },
        )

    def loss(self, params: Params, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean target-token NLL of one example (ids, targets: (T,))."""
        return mean_target_nll(self.logits(params, ids[None])[0], targets)

    def target_logp(self, params: Params, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(target) of one example, summed over its target tokens."""
        return sum_target_logp(self.logits(params, ids[None])[0], targets)

    def grads(
        self, params: Params, chunk: Stacked, stacked_params: bool
    ) -> tuple[Params, torch.Tensor]:
        """Per-example gradients of the mean NLL (stacked), and each example's loss."""
        if self.loop:
            return self._grads_looped(self.loss, params, chunk, stacked_params)
        in_dims = (0 if stacked_params else None, 0, 0)
        g, loss = vmap(grad_and_value(self.loss), in_dims=in_dims)(params, chunk.ids, chunk.targets)
        return g, loss

    def logp_grads(self, chunk: Stacked) -> Params:
        """Per-example gradients of log p(target) (summed over target tokens) at the base."""
        if self.loop:
            return self._grads_looped(self.target_logp, self.base, chunk, False)[0]
        g, _ = vmap(grad_and_value(self.target_logp), in_dims=(None, 0, 0))(
            self.base, chunk.ids, chunk.targets
        )
        return g

    def _grads_looped(
        self,
        fn: Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor],
        params: Params,
        chunk: Stacked,
        stacked_params: bool,
    ) -> tuple[Params, torch.Tensor]:
        grads: dict[str, list[torch.Tensor]] = {n: [] for n in params}
        values = []
        for i in range(chunk.size):
            leaves = {
                n: (p[i] if stacked_params else p).detach().requires_grad_(True)
                for n, p in params.items()
            }
            with torch.enable_grad():
                value = fn(leaves, chunk.ids[i], chunk.targets[i])
                found = torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
            for (n, leaf), g in zip(leaves.items(), found, strict=True):
                grads[n].append(torch.zeros_like(leaf) if g is None else g)
            values.append(value.detach())
        return {n: torch.stack(g) for n, g in grads.items()}, torch.stack(values)

    def stepped_logits(
        self, params: Params, chunk_ids: torch.Tensor, shared_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """Logits of each example's own row, then the shared rows, at that example's params.

        ``params`` and ``chunk_ids`` (C, T) are stacked; ``shared_ids`` (S, T) is the same
        for every example. Returns (C, 1 + S, T, V).
        """

        def one(p: Params, ids: torch.Tensor) -> torch.Tensor:
            rows = ids[None] if shared_ids is None else torch.cat([ids[None], shared_ids])
            return self.logits(p, rows)

        if self.loop:
            return torch.stack(
                [one({n: p[i] for n, p in params.items()}, ids) for i, ids in enumerate(chunk_ids)]
            )
        return vmap(one)(params, chunk_ids)
