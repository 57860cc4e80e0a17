"""Errors raised by probekit.

Every error says what was wrong and what to do about it. All derive from
:class:`ProbekitError`, so ``except pk.ProbekitError`` catches everything we raise
on purpose. This module has no heavy imports.
"""

from __future__ import annotations


class ProbekitError(Exception):
    """Base class of every error probekit raises on purpose."""


class InputError(ProbekitError, ValueError):
    """An example, watch item or argument cannot be used (raised before any work starts)."""


class ModelLoadError(ProbekitError):
    """A model or tokenizer could not be loaded."""


class ModelNotAvailableError(ModelLoadError):
    """The model is neither a local directory nor in the local cache, and the hub is unreachable."""


class VocabMismatchError(ModelLoadError):
    """The tokenizer can produce token ids the model has no embedding for."""


class UnsupportedModelError(ProbekitError):
    """The model cannot be probed the way it was asked (no trainable parameters, sharded, …)."""


class NonFiniteError(ProbekitError):
    """A loss, gradient or updated weight was NaN or infinite; the model was left untouched."""


class StateError(ProbekitError):
    """An operation does not fit the current state (nothing to undo, a probe already running, …)."""


class OutOfMemoryError(ProbekitError, MemoryError):
    """The device ran out of memory, also after a retry with a smaller batch; model unchanged."""
