"""Same-size tensors as the rows of one matrix, so per-tensor work is one call per size.

A small model has many small parameter tensors (biases, norms, one matrix shape per
block); element-wise work and per-tensor reductions over them cost one kernel call per
tensor on the CPU, which dwarfs the arithmetic. Transformers repeat the same shapes in
every block, so stacking the tensors of one (device, dtype, size) as the rows of a
``(k, n)`` matrix turns ``k`` calls into one (a reduction along ``dim=1`` gives the
``k`` per-tensor values).

The weight snapshot stores small tensors this way (its saved tensors are row views of
the stacked matrices), so the statistics pass of a step finds θ already stacked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

# Tensors with fewer entries than this are stacked; larger ones are worked on one by one
# (each is big enough for its own kernel calls to be cheap in comparison).
STACK_BELOW = 262_144


def groups(tensors: Sequence[torch.Tensor], below: int = STACK_BELOW) -> list[list[int]]:
    """Indices of the tensors smaller than ``below``, grouped by (device, dtype, size), in order."""
    found: dict[tuple[torch.device, torch.dtype, int], list[int]] = {}
    for i, t in enumerate(tensors):
        if t.numel() < below:
            found.setdefault((t.device, t.dtype, t.numel()), []).append(i)
    return list(found.values())


def stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """A new ``(k, n)`` matrix whose rows are the (flattened) ``tensors``."""
    return torch.stack([t.detach().reshape(-1) for t in tensors])


def rows(matrix: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The rows of ``matrix`` as views shaped like ``like``."""
    return [row.view(t.shape) for row, t in zip(matrix, like, strict=True)]


def matrix_of(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ``(k, n)`` matrix whose rows are ``tensors``: theirs if they are exactly the rows
    of one (as a snapshot's are), else a stacked copy."""
    base = tensors[0]._base
    if base is not None and base.dim() == 2 and base.is_contiguous():
        start, step = base.data_ptr(), base.shape[1] * base.element_size()
        if base.shape[0] == len(tensors) and all(
            t._base is base and t.numel() == base.shape[1] and t.data_ptr() == start + j * step
            for j, t in enumerate(tensors)
        ):
            return base
    return stack(tensors)


class Workspace:
    """Scratch matrices kept from one step to the next.

    Writing into memory that was written before is several times faster than into a
    fresh allocation (a large one is new pages from the system, each faulted in on first
    touch), so the stacked passes of a step reuse the same matrices every time. Holds
    at most three matrices per size of stacked tensors (a small share of a model): the
    gradient and delta of the statistics pass, and an isolated step's copy of θ.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.Size, torch.dtype, torch.device], torch.Tensor] = {}
        self._views: dict[tuple[Any, ...], list[torch.Tensor]] = {}

    def matrix(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised matrix of ``like``'s shape, dtype and device, the same every call."""
        key = (name, like.shape, like.dtype, like.device)
        found = self._buffers.get(key)
        if found is None:
            found = self._buffers[key] = torch.empty_like(
                like, memory_format=torch.contiguous_format
            )
        return found

    def rows(
        self, name: str, like: torch.Tensor, members: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """The rows of :meth:`matrix` as views shaped like ``members`` (made once)."""
        key = (name, like.shape, like.dtype, like.device, tuple(m.shape for m in members))
        found = self._views.get(key)
        if found is None:
            found = self._views[key] = rows(self.matrix(name, like), members)
        return found

    def rows_for(self, name: str, members: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Rows shaped like ``members`` (same size, dtype, device) of one ``(k, n)`` matrix,
        the same every call (made once)."""
        first = members[0]
        key: tuple[Any, ...] = (name, len(members), first.numel(), first.dtype, first.device)
        key += tuple(m.shape for m in members)
        found = self._views.get(key)
        if found is None:
            shape = (len(members), first.numel())
            matrix = torch.empty(shape, dtype=first.dtype, device=first.device)
            self._buffers[(name, torch.Size(shape), first.dtype, first.device)] = matrix
            found = self._views[key] = rows(matrix, members)
        return found

    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._buffers.values())
