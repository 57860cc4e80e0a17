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
    with probe.exclusive():
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
    with probe.quiet(), probe.checkpoint():  # the rolled-back commit is not news
        step = probe.step(example, commit=True)
        after = attribute(probe, prompt, target, method, **options) if step.ok else before
    step = probe.record(dataclasses.replace(step, committed=False))
    return AttributionShift(before, after, step)
