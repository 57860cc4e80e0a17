"""The settings of a probe, checked when it is built — before any forward pass or step.

A setting that cannot work is refused with an :class:`~probekit.errors.InputError`
that names it; one that works but is almost certainly a slip (an lr of 1e6, momentum
given to Adam) gets a warning. Nothing here touches the model.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from typing import get_args

from probekit.core.inputs import TruncationPolicy
from probekit.errors import InputError

# Above this, one step moves weights far more than any fine-tuning rate would (1e-6 … 1e-1).
ABSURD_LR = 10.0


def check(
    *,
    optimizer: object,
    lr: object,
    steps: object,
    momentum: object,
    weight_decay: object,
    top_k: object,
    truncation: object,
    max_undo: object,
    flags: dict[str, object],
    on_result: object,
    vocab_size: int,
    layers: object = None,
    pattern: object = None,
) -> None:
    """Raise :class:`InputError` for the first setting that cannot work; warn about slips.

    The optimizer's name is checked where the update rule is built.
    """
    rate = number(lr, "lr")
    number(momentum, "momentum")
    if weight_decay is not None:
        number(weight_decay, "weight_decay")
    positive_int(steps, "steps")
    positive_int(top_k, "top_k")
    if isinstance(top_k, int) and top_k > vocab_size:
        raise InputError(f"top_k={top_k} is more than the model's {vocab_size} tokens")
    if max_undo is not None:
        positive_int(max_undo, "max_undo", hint=" (or None for as many as 2 GiB hold)")
    if truncation not in get_args(TruncationPolicy):
        raise InputError(
            f"truncation must be 'left' (drop prompt tokens from the left to fit the context) "
            f"or 'error', got {truncation!r}"
        )
    _check_selection(layers, pattern)
    for name, value in flags.items():
        if not isinstance(value, bool) and type(value).__name__ != "bool_":  # numpy's too
            raise InputError(f"{name} must be True or False, got {value!r}")
    if on_result is not None and not callable(on_result):
        raise InputError(f"on_result must be a function taking a result, got {on_result!r}")
    if rate > ABSURD_LR:
        warnings.warn(
            f"lr={rate:g} is far above fine-tuning rates (1e-6 to 1e-1): one step will likely "
            "overshoot or make the weights non-finite",
            UserWarning,
            stacklevel=3,
        )
    if optimizer in ("adam", "adamw") and momentum:
        warnings.warn(
            f"momentum={momentum!r} is ignored by {optimizer} (it uses betas); it applies to sgd",
            UserWarning,
            stacklevel=3,
        )


def _check_selection(layers: object, pattern: object) -> None:
    """``layers`` is a list of block indices / labels; ``pattern`` a valid regular expression."""
    if layers is not None:
        items = layers if isinstance(layers, list | tuple | set | range) else None
        if items is None or not all(
            isinstance(i, str) or (isinstance(i, numbers.Integral) and not isinstance(i, bool))
            for i in items
        ):
            raise InputError(
                f"layers must be a list of block indices and layer labels, e.g. layers=[-1] or "
                f"layers=[0, 'lm_head'], got {layers!r}"
            )
    if pattern is not None:
        if not isinstance(pattern, str):
            raise InputError(f"pattern must be a regular expression string, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InputError(
                f"pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from None


def number(value: object, name: str) -> float:
    """A real, finite number ≥ 0 (a string such as ``"0.1"`` is refused, not parsed)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(float(value)) or float(value) < 0:  # type: ignore[arg-type]
        raise InputError(f"{name} must be a finite number ≥ 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def positive_int(value: object, name: str, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InputError(f"{name} must be a positive integer{hint}, got {value!r}")
    return int(value)
