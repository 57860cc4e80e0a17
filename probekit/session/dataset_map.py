"""Dataset maps for one model session: committed passes (cartography) or isolated probes."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable
from typing import TYPE_CHECKING

from probekit.core.inputs import Example, as_example
from probekit.errors import InputError
from probekit.results.dataset_map import DatasetMap, IsolatedMap, IsolatedRow, MapRow

if TYPE_CHECKING:
    from probekit.session.probe import Probe, WatchItem


def dataset_map(probe: Probe, examples: Iterable[WatchItem], passes: int = 3) -> DatasetMap:
    """``passes`` committed passes over ``examples`` in order, measured after each, rolled back."""
    if not isinstance(passes, int) or passes < 1:
        raise InputError(f"passes must be a positive integer, got {passes!r}")
    items = [as_example(e) for e in examples]
    updates: list[list[float]] = [[] for _ in items]
    probs, correct = [], [list(probe.evaluate(items).correct)]
    with probe.checkpoint():
        for _ in range(passes):
            for i, example in enumerate(items):
                updates[i].append(probe.step(example, commit=True).delta_l2)
            evaluation = probe.evaluate(items)
            probs.append(evaluation.prob)
            correct.append(list(evaluation.correct))
    rows = tuple(
        MapRow(
            label=_label(example),
            confidence=statistics.fmean(p[i] for p in probs),
            variability=statistics.pstdev([p[i] for p in probs]),
            correctness=statistics.fmean(float(c[i]) for c in correct[1:]),
            forgetting_events=sum(a[i] and not b[i] for a, b in itertools.pairwise(correct)),
            mean_update=statistics.fmean(updates[i]),
        )
        for i, example in enumerate(items)
    )
    return DatasetMap(passes, rows, tuple(probs))


def isolated_map(probe: Probe, examples: Iterable[WatchItem]) -> IsolatedMap:
    """Every example probed alone from the current weights (nothing is committed)."""
    rows = []
    for example in (as_example(e) for e in examples):
        r = probe.step(example)
        kls = [w.kl for w in r.watch if not w.is_example]
        rows.append(
            IsolatedRow(
                label=_label(example),
                update_size=r.delta_l2,
                loss_before=r.loss_before,
                loss_drop=r.loss_before - r.loss_after,
                disturbance=statistics.fmean(kls) if kls else math.nan,
            )
        )
    return IsolatedMap(tuple(rows))


def _label(example: Example) -> str:
    return example.prompt + (example.target or "")
