"""Curriculum races: the same examples in several orders from one start, always rolled back."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from probekit.core.metrics.logit_shift import logit_shift
from probekit.errors import InputError, StateError
from probekit.results.race import RaceResult
from probekit.session.trajectory import checked

if TYPE_CHECKING:
    from probekit.session.probe import Probe, WatchItem

DEFAULT_ORDERS = ("given", "shuffled", "easy_to_hard", "hard_to_easy")


def race(
    probe: Probe,
    examples: Iterable[WatchItem],
    orders: Sequence[str] | Mapping[str, Sequence[int]] = DEFAULT_ORDERS,
    *,
    seed: int = 0,
    window: int = 8,
) -> RaceResult:
    """Run ``examples`` in each order from the current state; the state is restored after each.

    Named orders: ``given``, ``shuffled`` (``seed``; or ``shuffled:N`` for seed N),
    ``easy_to_hard`` / ``hard_to_easy`` (by each example's loss at the start). A mapping
    gives explicit permutations by name. Every example is checked before anything runs.
    Ctrl-C stops the race: the start state is restored, then ``KeyboardInterrupt`` is
    raised again.
    """
    items = checked(probe, examples)
    start = probe.fingerprint()
    start_eval = probe.evaluate(items)
    perms = _permutations(orders, start_eval.loss, seed)
    base = probe.watch_outputs()
    trajectories, final_loss, final_kl = [], [], []
    interrupted = False
    for perm in perms.values():
        with probe.checkpoint():
            run = probe.run([items[i] for i in perm], window=window, progress=False)
            interrupted = run.interrupted
            if not interrupted:
                trajectories.append(run)
                final_loss.append(statistics.fmean(probe.evaluate(items).loss))
                final_kl.append(_watch_kl(probe, base))
        if interrupted:
            break
    if probe.fingerprint().differences(start):
        raise StateError("the race did not restore the start state; please report this")
    if interrupted:
        raise KeyboardInterrupt("race interrupted; the model is back at its start state")
    return RaceResult(
        orders=tuple(perms),
        permutations=tuple(tuple(p) for p in perms.values()),
        trajectories=tuple(trajectories),
        start_loss=start_eval.loss,
        final_loss=tuple(final_loss),
        final_kl=tuple(final_kl),
    )


def _permutations(
    orders: Sequence[str] | Mapping[str, Sequence[int]], losses: Sequence[float], seed: int
) -> dict[str, list[int]]:
    n = len(losses)
    if isinstance(orders, Mapping):
        perms = {str(k): list(v) for k, v in orders.items()}
    else:
        perms = {name: _named_order(name, losses, seed) for name in orders}
    for name, perm in perms.items():
        if sorted(perm) != list(range(n)):
            raise InputError(f"order {name!r} is not a permutation of the {n} examples")
    if not perms:
        raise InputError("give at least one order")
    return perms


def _named_order(name: str, losses: Sequence[float], seed: int) -> list[int]:
    n = len(losses)
    if name == "given":
        return list(range(n))
    if name == "shuffled" or name.startswith("shuffled:"):
        perm = list(range(n))
        random.Random(int(name.split(":", 1)[1]) if ":" in name else seed).shuffle(perm)
        return perm
    if name in ("easy_to_hard", "hard_to_easy"):
        return sorted(range(n), key=lambda i: losses[i], reverse=name == "hard_to_easy")
    raise InputError(
        f"unknown order {name!r}; use given, shuffled, shuffled:SEED, easy_to_hard, hard_to_easy "
        "or pass {name: permutation}"
    )


def _watch_kl(probe: Probe, base: object) -> float:
    """Mean KL of the watch set between the outputs in ``base`` and the current weights."""
    before = getattr(base, "before", None)
    batch = getattr(base, "batch", None)
    if before is None or batch is None:
        return math.nan
    now = probe.watch_outputs().before
    assert now is not None
    shift = logit_shift(before.logits, now.logits, batch.targets, batch.read_counts, 1)
    return statistics.fmean(shift.kl)
