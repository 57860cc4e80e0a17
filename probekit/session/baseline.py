"""The watch set's outputs at the current weights, kept while the weights are unchanged.

An isolated step compares the watch set after the step with its outputs before; while
the weights are unchanged those "before" outputs are the same every step, so they are
measured once and kept. Version counters and storage addresses catch in-place changes
and swapped tensors; a checksum catches edits through ``.data``, which bump no counter.
Per-tensor Σ θ² from a fused plain-SGD step is kept under the same check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from probekit.core import batch as batching
from probekit.core.params import ParamEntry
from probekit.core.protocols import CausalLM
from probekit.core.sandbox import parameters, preserved, submodules, weights_checksum
from probekit.core.step import StepOutcome, Watched


class Baseline:
    """The watch outputs of one probe's model, measured again only when its weights change."""

    def __init__(self, model: CausalLM) -> None:
        self.model = model
        self.watched: Watched | None = None
        self.theta_sq: tuple[float, ...] | None = None  # Σ θ² per stepped tensor
        self._versions: tuple[Any, ...] = ()
        self._checksum: torch.Tensor | None = None

    def watch(self, items: tuple[Any, ...], labels: tuple[str, ...]) -> None:
        """A new watch set: its outputs are measured at the next :meth:`current`."""
        self.watched = Watched(items, labels, None, None)

    def current(self, entries: Sequence[ParamEntry], pad_id: int) -> Watched:
        """The watch set's outputs at the current weights, measured if they changed."""
        assert self.watched is not None
        if not self.watched.items:  # nothing vouches for the weights: measure Σ θ² anew
            self.theta_sq = None
            return self.watched
        params = parameters(submodules(self.model))
        now = _versions(params)
        if self.watched.before is not None and now == self._versions and self._unedited(params):
            return self.watched
        self.theta_sq = None
        batch = batching.make_batch(self.watched.items, pad_id, entries[0].param.device)
        with preserved(self.model, entries), torch.no_grad():
            before = batching.detach(batching.forward(self.model, batch))
        self.watched = Watched(self.watched.items, self.watched.labels, batch, before)
        self._versions, self._checksum = now, weights_checksum(self.model, params)
        return self.watched

    def after_isolated(self, theta_sq: tuple[float, ...] | None) -> None:
        """After a reverted step: our own revert bumped the counters, the bits are unchanged."""
        if self._versions:
            self._versions = _versions(parameters(submodules(self.model)))
            if theta_sq is not None:
                self.theta_sq = theta_sq

    def after_commit(self, outcome: StepOutcome) -> None:
        """The watch outputs measured after a committed step are the new baseline."""
        watched = self.watched
        if watched is None or watched.batch is None or outcome.after_watch is None:
            self.invalidate()
            return
        self.watched = Watched(watched.items, watched.labels, watched.batch, outcome.after_watch)
        self.theta_sq = None  # those of the weights before the step
        params = parameters(submodules(self.model))
        self._versions, self._checksum = _versions(params), weights_checksum(self.model, params)

    def invalidate(self) -> None:
        """The weights were changed by us (undo, reset, rollback): measure again next time."""
        self.theta_sq = None
        if self.watched is not None:
            self.watched = Watched(self.watched.items, self.watched.labels, None, None)
        self._versions, self._checksum = (), None

    def _unedited(self, params: Sequence[torch.nn.Parameter]) -> bool:
        """Edits through ``.data`` bump no version counter; the checksum sees them."""
        return self._checksum is not None and bool(
            torch.equal(self._checksum, weights_checksum(self.model, params))
        )


def _versions(params: Sequence[torch.nn.Parameter]) -> tuple[Any, ...]:
    """Version counters and storage addresses (a ``.data =`` swap changes the address)."""
    return tuple((p._version, p.data_ptr()) for p in params)
