"""The undo stack of a probe: one entry per committed step, within a depth and a memory budget.

Each entry holds the weights from before its step (a bit-exact snapshot of the stepped
storages), the optimizer state from before it and the step's result. The oldest entry is
the origin: it is never trimmed, so ``reset`` can always return to the state before the
first commit, however deep the stack was cut.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from probekit.core.optimizer import OptimizerSpec, OptimizerState
from probekit.core.params import ParamEntry
from probekit.core.sandbox import WeightSnapshot
from probekit.errors import StateError
from probekit.results.probe import ProbeResult

# Default cap on the memory held by undo snapshots.
UNDO_BUDGET_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Commit:
    """What one committed step changed, kept so that it can be undone."""

    snapshot: WeightSnapshot
    optimizer_state: OptimizerState
    result: ProbeResult

    @functools.cached_property
    def nbytes(self) -> int:
        """Memory held: the weight snapshot and the optimizer state saved with it."""
        return self.snapshot.nbytes() + state_bytes(self.optimizer_state)


class UndoStack:
    """Committed steps, oldest first; at most ``depth`` undoable, plus the origin.

    With ``budget`` (bytes) the entries also stay within it, counting everything they
    hold (weights and optimizer state).
    """

    def __init__(self, depth: int, budget: int | None) -> None:
        self.depth = depth
        self.budget = budget
        self.entries: list[Commit] = []
        self.trimmed = False

    def push(self, commit: Commit) -> None:
        self.entries.append(commit)
        while len(self.entries) > self.depth + 1 or (
            self.budget is not None and len(self.entries) > 2 and self.nbytes() > self.budget
        ):
            del self.entries[1]
            self.trimmed = True

    def pop(self) -> Commit:
        """The newest entry, removed; a StateError when nothing can be undone."""
        if not self.entries:
            raise StateError("nothing to undo: no committed step is left")
        if self.trimmed and len(self.entries) == 1:
            raise StateError(
                f"undo reaches back {self.depth} steps (max_undo); reset() returns to "
                "the state before the first commit"
            )
        return self.entries.pop()

    @property
    def origin(self) -> Commit | None:
        """The entry of the first commit (the state ``reset`` returns to)."""
        return self.entries[0] if self.entries else None

    def clear(self) -> None:
        self.entries.clear()
        self.trimmed = False

    def back(self, width: int) -> WeightSnapshot | None:
        """The weights from ``width`` commits ago, if the stack still holds them contiguously."""
        if not 1 <= width <= min(len(self.entries), self.depth):
            return None
        return self.entries[-width].snapshot

    def results(self) -> tuple[ProbeResult, ...]:
        return tuple(c.result for c in self.entries)

    def nbytes(self) -> int:
        """Memory held by the stack: weight snapshots and optimizer states."""
        return sum(c.nbytes for c in self.entries)

    def mark(self) -> tuple[list[Commit], bool]:
        """The stack's current state, for :meth:`rewind`."""
        return list(self.entries), self.trimmed

    def rewind(self, mark: tuple[list[Commit], bool]) -> None:
        self.entries, self.trimmed = list(mark[0]), mark[1]


def default_depth(
    entries: Sequence[ParamEntry], spec: OptimizerSpec, budget: int = UNDO_BUDGET_BYTES
) -> int:
    """How many entries fit in ``budget`` bytes (between 1 and 1000)."""
    # tensors of optimizer state per parameter (the step count is a scalar; SGD keeps
    # no momentum buffer without momentum)
    n_state = sum(
        1
        for key in spec.rule.state_keys
        if key != "step" and (key != "momentum_buffer" or spec.momentum)
    )
    size = sum(
        e.param.numel() * (e.param.element_size() + n_state * max(e.param.element_size(), 4))
        for e in entries
    )
    return max(1, min(1000, budget // max(size, 1) - 1))


def state_bytes(state: OptimizerState) -> int:
    return sum(
        v.numel() * v.element_size()
        for values in state.values()
        for v in values.values()
        if torch.is_tensor(v)
    )
