"""One lock per model: two probekit operations never interleave on the same weights.

Every operation that touches a model — a step, undo, reset, a checkpoint, an
evaluation, an attribution, a new watch set, a second ``Probe`` being built — holds
the model for its whole duration. A request from another thread while the model is
held is refused at once with :class:`~probekit.errors.StateError` (it never waits:
a caller such as a UI can tell the user instead of freezing). The lock is
re-entrant, so an operation built from others (a run of steps, an attribution
shift) holds it throughout on its own thread.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from probekit.core import interrupts
from probekit.errors import StateError


class _ModelLock:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.holder = ""
        self.depth = 0


_LOCKS: weakref.WeakKeyDictionary[Any, _ModelLock] = weakref.WeakKeyDictionary()
_REGISTRY = threading.Lock()


def _lock_of(model: Any) -> _ModelLock:
    with _REGISTRY:
        found = _LOCKS.get(model)
        if found is None:
            found = _LOCKS[model] = _ModelLock()
        return found


@contextmanager
def exclusive(model: Any, what: str) -> Iterator[None]:
    """Hold ``model`` while the block runs; refuse immediately if another thread holds it."""
    held = _lock_of(model)
    if not held.lock.acquire(blocking=False):
        raise StateError(
            f"cannot run {what}: {held.holder or 'another operation'} is already running on "
            "this model in another thread; wait for it to finish and try again"
        )
    try:
        held.depth += 1
        if held.depth == 1:
            held.holder = what
        yield
    finally:
        held.depth -= 1
        if held.depth == 0:
            held.holder = ""
        held.lock.release()


def busy(model: Any) -> bool:
    """Whether some thread holds ``model`` right now."""
    held = _lock_of(model)
    if not held.lock.acquire(blocking=False):
        return True
    held.lock.release()
    return held.depth > 0


@contextmanager
def guarded(model: Any, what: str) -> Iterator[None]:
    """:func:`exclusive`, with Ctrl-C held back until the model is consistent again.

    The interrupt is raised at the operation's next safe point
    (:func:`probekit.core.interrupts.poll`) or after the lock is released.
    """
    with interrupts.deferred(), exclusive(model, what):
        yield
