"""Token attribution on a probe: at its weights, and before vs after one of its steps."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from probekit.core import attribution
from probekit.core.attribution import Method
from probekit.results.attribution import AttributionShift, TokenAttribution

if TYPE_CHECKING:
    from probekit.session.probe import Probe, WatchItem


def attribute(
    probe: Probe, prompt: str, target: str, method: Method = "ig", **options: Any
) -> TokenAttribution:
    """:func:`probekit.attribute` at the probe's current weights, holding the probe."""
    with probe._exclusive():
        return attribution.attribute(probe.model, probe.tokenizer, prompt, target, method,
                                     **options)  # fmt: skip


def attribution_shift(
    probe: Probe,
    prompt: str,
    target: str,
    example: WatchItem,
    *,
    commit: bool,
    method: Method,
    **options: Any,
) -> AttributionShift:
    """Attribute, step on ``example`` (kept only with ``commit``), attribute again."""
    before = attribute(probe, prompt, target, method, **options)
    if commit:
        step = probe.step(example, commit=True)
        after = attribute(probe, prompt, target, method, **options) if step.ok else before
        return AttributionShift(before, after, step)
    listeners, probe._listeners = probe._listeners, []  # the rolled-back commit is not news
    try:
        with probe.checkpoint():
            step = probe.step(example, commit=True)
            after = attribute(probe, prompt, target, method, **options) if step.ok else before
    finally:
        probe._listeners = listeners
    step = dataclasses.replace(step, step=len(probe.history), committed=False)
    probe.history.append(step)
    probe._notify(step)
    return AttributionShift(before, after, step)
