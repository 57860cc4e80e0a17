"""Ctrl-C that never lands in the middle of putting a model back.

Python raises ``KeyboardInterrupt`` wherever the interpreter happens to be when
SIGINT arrives — possibly inside the ``finally`` that restores the weights, or
between writing a committed step and recording it. Inside :func:`deferred` the
signal is only noted; it is raised at the next :func:`poll` (called between the
expensive parts of an operation, where unwinding is safe) or when the block ends,
after all the bookkeeping is done.

Signals are delivered to the main thread only: on any other thread there is no
SIGINT to defer and both functions do nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class _State:
    """Main-thread state: whether our handler is installed, and an interrupt is waiting."""

    active = False
    pending = False
    previous: Any = None


_STATE = _State()


def _note(signum: int, frame: FrameType | None) -> None:
    if _STATE.active:
        _STATE.pending = True
        return
    _forward(signum, frame)  # installed but no longer deferring: behave like the old handler


def _forward(signum: int, frame: FrameType | None) -> None:
    previous = _STATE.previous
    if callable(previous) and previous is not signal.default_int_handler:
        previous(signum, frame)
        return
    raise KeyboardInterrupt


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back Ctrl-C inside the block; raise it at :func:`poll` or when the block ends.

    Nested blocks share the outermost one. If the block is already unwinding with an
    exception, a held-back interrupt is dropped in its favour (the block was stopping
    anyway). Without a Python-level SIGINT handler (``SIG_IGN``/``SIG_DFL``), nothing
    changes.
    """
    if _STATE.active or not _on_main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is _note:  # left installed by a block that was itself interrupted
        previous = _STATE.previous
    if not callable(previous):
        yield
        return
    _STATE.previous, _STATE.pending = previous, False
    signal.signal(signal.SIGINT, _note)
    _STATE.active = True
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _STATE.active = False
        pending, _STATE.pending = _STATE.pending, False
        signal.signal(signal.SIGINT, previous)
        if pending and not failed:
            _forward(signal.SIGINT, None)


def poll() -> None:
    """Raise a held-back Ctrl-C now (call only where unwinding restores everything)."""
    if _STATE.active and _STATE.pending and _on_main_thread():
        _STATE.pending = False
        raise KeyboardInterrupt
