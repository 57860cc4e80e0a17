"""The board's worker: one background thread that runs one request at a time.

Probe steps run here, off the kernel's main thread, so the kernel keeps handling
clicks (Stop) and widget messages while a feed runs. A request made while another
is running is refused at once — requests never queue up or interleave.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Job = Callable[[threading.Event], Any]
Done = Callable[[Any, BaseException | None], None]


@dataclass
class _Request:
    name: str
    job: Job
    done: Done


class Runner:
    """Run jobs on one daemon thread; ``on_busy(busy)`` is called when the state changes.

    A job receives the stop event: long jobs (feeds) check it between steps. ``done``
    is called on the worker thread with the job's value or the exception it raised.
    """

    def __init__(self, on_busy: Callable[[bool, str], None] | None = None) -> None:
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.stop_event = threading.Event()
        self.current: str | None = None
        self.overhead = 0.0  # seconds spent handing jobs over and reporting (not in jobs)
        self._on_busy = on_busy
        self.internal_error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="probekit-board", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def submit(self, name: str, job: Job, done: Done) -> bool:
        """Start ``job`` unless one is running; returns whether it was accepted."""
        with self._lock:
            if self.busy or not self._thread.is_alive():
                return False
            self._idle.clear()
            self.current = name
            self.stop_event.clear()
        self._notify(True, name)
        self._queue.put(_Request(name, job, done))
        return True

    def stop(self) -> None:
        """Ask the running job to stop at its next check (a feed: before its next step)."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job runs; returns ``False`` on timeout."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            request = self._queue.get()
            if request is None:
                return
            value: Any = None
            error: BaseException | None = None
            try:
                value = request.job(self.stop_event)
            except Exception as exc:  # reported on screen by ``done``
                error = exc
            start = time.thread_time()
            try:
                request.done(value, error)
            except Exception as exc:  # the worker must outlive a failing report
                self.internal_error = exc
            finally:
                self._notify(False, request.name)  # controls back on, then accept requests
                self.overhead += time.thread_time() - start
                with self._lock:
                    self.current = None
                    self._idle.set()

    def _notify(self, busy: bool, name: str) -> None:
        if self._on_busy is not None:
            self._on_busy(busy, name)
