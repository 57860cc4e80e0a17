"""Dataset maps for one model session: committed passes (cartography) or isolated probes."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import statistics
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import torch

from probekit.core import isolated
from probekit.core.inputs import EncodedExample, Example, as_example
from probekit.errors import InputError
from probekit.results.dataset_map import DatasetMap, IsolatedMap, IsolatedRow, MapRow, Residual
from probekit.results.labels import example_label
from probekit.session.trajectory import checked

if TYPE_CHECKING:
    from probekit.session.probe import Probe, WatchItem


def dataset_map(probe: Probe, examples: Iterable[WatchItem], passes: int = 3) -> DatasetMap:
    """``passes`` committed passes over ``examples`` in order, measured after each, rolled back."""
    if not isinstance(passes, int) or passes < 1:
        raise InputError(f"passes must be a positive integer, got {passes!r}")
    items = checked(probe, examples)
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


IsolatedMethod = Literal["exact", "first_order", "loop"]


def isolated_map(
    probe: Probe,
    examples: Iterable[WatchItem],
    *,
    method: IsolatedMethod = "exact",
    chunk_size: int | None = None,
    sample: int = 8,
    seed: int = 0,
    progress: bool | None = None,
) -> IsolatedMap:
    """Every example probed alone from the current weights (nothing is committed).

    ``method="exact"`` computes per-example gradients with ``torch.func`` and evaluates
    each example's stepped parameters in batched chunks (``chunk_size`` examples per
    call, sized to free memory when not given); the live weights are never written.
    ``"first_order"`` predicts Δlog p on the watch items as ∇log p·Δθ instead of
    evaluating them, and checks the prediction against the exact path on ``sample``
    examples drawn with ``seed`` (``sample=0`` skips the check; ``residual.note`` says
    why a value is NaN). ``"loop"`` takes one isolated probe step per example. On a
    model whose forward cannot run under ``torch.func.vmap``, ``"exact"`` falls back to
    the loop and ``"first_order"`` computes the same predictions one example at a time,
    each with a warning; ``method`` says what ran. ``progress`` shows a progress bar (by
    default from 256 examples on).
    """
    items = [as_example(e) for e in examples]
    if not items:
        raise InputError("isolated_map needs at least one example")
    if method not in ("exact", "first_order", "loop"):
        raise InputError(f"unknown method {method!r}; use 'exact', 'first_order' or 'loop'")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if method == "loop":
        return _loop_map(probe, checked(probe, items))
    try:
        return _batched_map(probe, items, method, chunk_size, sample, seed, progress)
    except isolated.Unsupported as why:
        if method == "first_order":
            warnings.warn(
                f"torch.func.vmap cannot run this model ({why}); computing the first-order "
                "predictions one example at a time instead (same numbers, slower)",
                RuntimeWarning,
                stacklevel=2,
            )
            return _batched_map(probe, items, method, chunk_size, sample, seed, progress, True)
        warnings.warn(
            f"the batched isolated map cannot run on this model under torch.func.vmap "
            f"({why}); using one probe step per example instead (same numbers, slower)",
            RuntimeWarning,
            stacklevel=2,
        )
        return _loop_map(probe, items)


def _batched_map(
    probe: Probe,
    items: list[Example],
    method: IsolatedMethod,
    chunk_size: int | None,
    sample: int,
    seed: int,
    progress: bool | None,
    looped: bool = False,
) -> IsolatedMap:
    encoded = [probe.encode(e) for e in items]
    with probe.functional(chunk_size) as shared, _bar(len(items), progress) as tick:
        fn = shared.fn.looped() if looped else shared.fn
        setup = dataclasses.replace(shared, fn=fn, progress=tick)
        if method == "exact":
            numbers = isolated.exact(setup, encoded)
            residual = None
        else:
            numbers = isolated.first_order(setup, encoded)
            picked = _sample(len(encoded), sample, seed)
            check = dataclasses.replace(setup, progress=None)
            residual = _check(numbers, check, [encoded[i] for i in picked], picked)
    if method == "exact":
        drop = numbers.loss_before - numbers.loss_after
        disturbance = _row_means(numbers.kl)
    else:
        drop = numbers.loss_drop_pred
        disturbance = [math.nan] * len(items)
    rows = tuple(
        IsolatedRow(
            label=_label(example),
            update_size=float(numbers.update_size[i]),
            loss_before=float(numbers.loss_before[i]),
            loss_drop=float(drop[i]),
            disturbance=float(disturbance[i]),
        )
        for i, example in enumerate(items)
    )
    return IsolatedMap(
        rows,
        method=method,
        watch_labels=probe.watch_labels,
        kl=_matrix(numbers.kl),
        dlogp=_matrix(numbers.dlogp),
        top1_flip=tuple(tuple(bool(v) for v in row) for row in numbers.top1_flip.tolist()),
        residual=residual,
    )


def _loop_map(probe: Probe, items: list[Example]) -> IsolatedMap:
    rows, kl, dlogp, flips = [], [], [], []
    for example in items:
        r = probe.step(example)
        watch = r.watch
        kls = [w.kl for w in watch]
        kl.append(tuple(kls))
        dlogp.append(tuple(w.dlogp_target for w in watch))
        flips.append(tuple(w.top1_flip for w in watch))
        rows.append(
            IsolatedRow(
                label=_label(example),
                update_size=r.delta_l2,
                loss_before=r.loss_before,
                loss_drop=r.loss_before - r.loss_after,
                disturbance=statistics.fmean(kls) if kls else math.nan,
            )
        )
    return IsolatedMap(
        tuple(rows), method="loop", watch_labels=probe.watch_labels, kl=tuple(kl),
        dlogp=tuple(dlogp), top1_flip=tuple(flips),
    )  # fmt: skip


@contextmanager
def _bar(total: int, enabled: bool | None) -> Iterator[Callable[[int], object] | None]:
    """A tqdm bar's ``update`` (notebook-aware), or None when no bar is wanted."""
    if enabled is False or (enabled is None and total < 256):
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="probekit", unit="example") as bar:
        yield bar.update


def _sample(n: int, size: int, seed: int) -> list[int]:
    if size <= 0:
        return []
    return sorted(random.Random(seed).sample(range(n), min(size, n)))


def _check(
    numbers: isolated.Numbers,
    check: isolated.Setup,
    sample: list[EncodedExample],
    picked: list[int],
) -> Residual:
    """The first-order numbers against the exact path on the sample (looped if need be)."""
    if not picked:
        nan = math.nan
        return Residual((), (), (), nan, nan, nan, note="not checked: sample=0 drew no example")
    try:
        truth = isolated.exact(check, sample)
    except isolated.Unsupported:  # the first-order path ran without vmap: so does its check
        truth = isolated.exact(dataclasses.replace(check, fn=check.fn.looped()), sample)
    found = _residual(numbers, truth, picked)
    if not any(e.target_ids for e in check.watch):
        why = "no watch item" if not check.watch else "no watch item has a target"
        note = (
            f"{why}, so there is no Δlog p(target) to compare (relative and max_abs are NaN); "
            "loss_drop_relative still checks the examples' own loss drop"
        )
        found = dataclasses.replace(found, note=note)
    return found


def _residual(numbers: isolated.Numbers, truth: isolated.Numbers, picked: list[int]) -> Residual:
    predicted = numbers.dlogp[picked]
    exact = truth.dlogp
    finite = torch.isfinite(predicted) & torch.isfinite(exact)
    diff = (predicted - exact)[finite]
    drop_pred = numbers.loss_drop_pred[picked]
    drop_true = truth.loss_before - truth.loss_after
    return Residual(
        indices=tuple(picked),
        predicted=_matrix(predicted),
        exact=_matrix(exact),
        max_abs=float(diff.abs().max()) if diff.numel() else math.nan,
        relative=_relative(diff, exact[finite]),
        loss_drop_relative=_relative(drop_pred - drop_true, drop_true),
    )


def _relative(diff: torch.Tensor, truth: torch.Tensor) -> float:
    scale = float(truth.norm())
    return float(diff.norm()) / scale if scale > 0 else math.nan


def _row_means(values: torch.Tensor) -> list[float]:
    if values.shape[1] == 0:
        return [math.nan] * values.shape[0]
    return values.mean(1).tolist()


def _matrix(values: torch.Tensor) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(row) for row in values.tolist())


def _label(example: Example) -> str:
    return example_label(example.prompt, example.target)
