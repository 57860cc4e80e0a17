"""Many examples, each stepped alone from the same weights — batched, the live weights untouched.

Two paths over the same per-example gradients (``vmap(grad)`` over ``functional_call``):

* :func:`exact` — each example's stepped parameters are built from its gradient with
  the probe's update rule (:mod:`probekit.core.update_rule`), then the example and the
  watch set are evaluated at them, a chunk of examples per ``vmap`` call;
* :func:`first_order` — Δlog p(target) on each watch item predicted as
  ∇θ log p(target)·Δθ (TracIn), from W watch gradients computed once; no forward at
  the stepped parameters at all.

A model these batched paths cannot handle raises :class:`Unsupported` (one typed
exception for every case); ``setup.fn.looped()`` runs the same computations one
example at a time, without ``vmap``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from probekit.core import ghost, logprob, update_rule
from probekit.core.batch import make_batch
from probekit.core.inputs import EncodedExample
from probekit.core.optimizer import OptimizerSpec, OptimizerState
from probekit.core.params import ParamEntry
from probekit.core.per_example import (
    Functional,
    Params,
    Stacked,
    Unsupported,
    declining,
    pad_right,
    stack,
)

__all__ = ["Numbers", "Setup", "Unsupported", "exact", "first_order"]

MAX_CHUNK_CPU = 64
MAX_CHUNK_GPU = 256


@dataclass(frozen=True)
class Numbers:
    """Per example (rows) and per watch item (columns); float64 on the CPU."""

    loss_before: torch.Tensor  # (N,)
    loss_after: torch.Tensor  # (N,) NaN on the first-order path (not evaluated)
    loss_drop_pred: torch.Tensor  # (N,) first-order loss drop −∇L·Δθ; NaN on the exact path
    update_size: torch.Tensor  # (N,) ‖Δθ‖
    kl: torch.Tensor  # (N, W) NaN on the first-order path
    dlogp: torch.Tensor  # (N, W) exact, or predicted on the first-order path
    top1_flip: torch.Tensor  # (N, W) bool; False on the first-order path


@dataclass(frozen=True)
class Setup:
    """What every path needs: the model as a function, the update rule and the watch set."""

    fn: Functional
    entries: Sequence[ParamEntry]
    spec: OptimizerSpec
    state: OptimizerState
    steps: int
    watch: Sequence[EncodedExample]
    pad_id: int
    chunk_size: int | None = None
    progress: Callable[[int], object] | None = None  # told how many examples each chunk did


def exact(setup: Setup, examples: Sequence[EncodedExample]) -> Numbers:
    """Every example stepped and measured exactly, chunk by chunk."""
    with declining():
        return _exact(setup, examples)


def _exact(setup: Setup, examples: Sequence[EncodedExample]) -> Numbers:
    device = setup.entries[0].param.device
    watch = _WatchRows.build(setup, device)
    chunk = setup.chunk_size or _chunk_size(setup, _width(examples, setup.watch), len(setup.watch))
    parts = []
    for indices in _chunks(examples, chunk):
        width = _width([examples[i] for i in indices], setup.watch)
        stacked = stack([examples[i] for i in indices], setup.pad_id, device, width)
        parts.append((indices, _exact_chunk(setup, stacked, watch.padded(width, setup.pad_id))))
        _advance(setup, indices)
    return _cat(parts)


def first_order(setup: Setup, examples: Sequence[EncodedExample]) -> Numbers:
    """Exact update sizes and own losses; watch Δlog p predicted to first order.

    Plain SGD (one step) takes the ghost path: norms and dot products from gradient
    factors, no per-example gradient is ever materialised. Other update rules, and
    models the factor rules do not cover, build each example's Δθ from its gradient;
    either way the numbers are the same first-order predictions.
    """
    if _plain_sgd_once(setup):
        try:
            return _beyond_first_order(setup, _first_order_ghost(setup, examples))
        except Unsupported:
            pass
    with declining():
        return _beyond_first_order(setup, _first_order_materialised(setup, examples))


def _beyond_first_order(setup: Setup, numbers: Numbers) -> Numbers:
    """Predictions for updates larger than the weights themselves are NaN, with a warning.

    A first-order prediction extrapolates linearly; when ‖Δθ‖ exceeds ‖θ‖ (a huge lr)
    the exact step typically makes the outputs inf/NaN, and a huge finite prediction
    would only look trustworthy.
    """
    with torch.no_grad():
        theta = math.sqrt(
            sum(float(e.param.detach().double().square().sum()) for e in setup.entries)
        )
    wild = ~(numbers.update_size <= theta)
    if not bool(wild.any()):
        return numbers
    warnings.warn(
        f"{int(wild.sum())} examples have an update larger than the weights themselves "
        "(‖Δθ‖ > ‖θ‖; lr too large?): their first-order predictions are set to NaN; "
        "method='exact' evaluates them",
        stacklevel=4,
    )
    nan = torch.tensor(math.nan, dtype=torch.float64)
    return dataclasses.replace(
        numbers,
        loss_drop_pred=torch.where(wild, nan, numbers.loss_drop_pred.double()),
        dlogp=torch.where(wild[:, None], nan, numbers.dlogp),
    )


def _first_order_ghost(setup: Setup, examples: Sequence[EncodedExample]) -> Numbers:
    device = setup.entries[0].param.device
    model, lr = setup.fn.model, setup.spec.lr
    has_target = torch.tensor([bool(e.target_ids) for e in setup.watch], dtype=torch.bool)
    items = [e for e in setup.watch if e.target_ids]
    watch_factors: ghost.Factors = {}
    if items:
        rows = stack(items, setup.pad_id, device)
        watch_factors, _ = ghost.factors(
            model, setup.entries, rows.ids, _target_logp(rows.targets), verify=True
        )
    chunk = setup.chunk_size or _chunk_size(setup, _width(examples, ()), 0)
    parts = []
    for k, indices in enumerate(_chunks(examples, chunk)):
        stacked = stack([examples[i] for i in indices], setup.pad_id, device)
        own, loss = ghost.factors(
            model, setup.entries, stacked.ids, _mean_nll(stacked.targets), verify=k == 0
        )
        n, w = stacked.size, len(setup.watch)
        norm_sq = ghost.self_products(own, n)
        pred = torch.full((n, w), math.nan, dtype=torch.float64)
        if items:
            pred[:, has_target] = -lr * ghost.cross_products(own, watch_factors, n, len(items))
        numbers = Numbers(
            loss_before=loss.double().cpu(),
            loss_after=torch.full((n,), math.nan, dtype=torch.float64),
            loss_drop_pred=lr * norm_sq,
            update_size=lr * norm_sq.sqrt(),
            kl=torch.full((n, w), math.nan, dtype=torch.float64),
            dlogp=pred,
            top1_flip=torch.zeros((n, w), dtype=torch.bool),
        )
        parts.append((indices, numbers))
        _advance(setup, indices)
    return _cat(parts)


def _advance(setup: Setup, indices: list[int]) -> None:
    if setup.progress is not None:
        setup.progress(len(indices))


def _mean_nll(targets: torch.Tensor) -> ghost.Objective:
    """Each row's mean target-token NLL from its logits (R, T, V)."""

    return lambda logits: logprob.mean_target_nll(logits, targets)


def _target_logp(targets: torch.Tensor) -> ghost.Objective:
    """Each row's log p(target), summed over its target tokens."""
    return lambda logits: logprob.sum_target_logp(logits, targets)


def _first_order_materialised(setup: Setup, examples: Sequence[EncodedExample]) -> Numbers:
    device = setup.entries[0].param.device
    watch_grads, has_target = _watch_grads(setup, device)
    chunk = setup.chunk_size or _chunk_size(setup, _width(examples, ()), 0)
    parts = []
    for indices in _chunks(examples, chunk):
        stacked = stack([examples[i] for i in indices], setup.pad_id, device)
        if _plain_sgd_once(setup):
            # Δθ = −η g: sizes and dot products straight from the gradients.
            grads, loss = setup.fn.grads(setup.fn.base, stacked, stacked_params=False)
            flat = {n: g.flatten(1) for n, g in grads.items()}
            size = _norms(flat) * setup.spec.lr
            drop = size**2 / setup.spec.lr if setup.spec.lr > 0 else torch.zeros_like(size)
            dots = _dots(flat, watch_grads) * -setup.spec.lr if watch_grads else None
        else:
            params, loss, first_grads = _descend(setup, stacked)
            deltas = _deltas(setup.fn.base, params)
            size, drop = _norms(deltas), -_pairwise(first_grads, deltas)
            dots = _dots(deltas, watch_grads) if watch_grads else None
        n, w = stacked.size, len(setup.watch)
        pred = torch.full((n, w), math.nan, dtype=torch.float64)
        if dots is not None:
            pred[:, has_target] = dots.cpu()[:, has_target]
        numbers = Numbers(
                loss_before=loss.double().cpu(),
                loss_after=torch.full((n,), math.nan, dtype=torch.float64),
                loss_drop_pred=drop,
                update_size=size,
                kl=torch.full((n, w), math.nan, dtype=torch.float64),
                dlogp=pred,
                top1_flip=torch.zeros((n, w), dtype=torch.bool),
        )  # fmt: skip
        parts.append((indices, numbers))
        _advance(setup, indices)
    return _cat(parts)


@dataclass(frozen=True)
class _WatchRows:
    ids: torch.Tensor | None  # (W, T)
    rows: torch.Tensor  # (R,) watch row of each read position
    cols: torch.Tensor  # (R,)
    targets: torch.Tensor  # (R,) -1 without a target
    counts: tuple[int, ...]
    logp_before: torch.Tensor  # (R, V) float64

    @classmethod
    def build(cls, setup: Setup, device: torch.device) -> _WatchRows:
        """The watch batch and its log-probabilities at the base parameters."""
        if not setup.watch:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return cls(None, empty, empty, empty, (), torch.zeros(0, 0, dtype=torch.float64))
        batch = make_batch(setup.watch, setup.pad_id, device)
        with torch.no_grad():
            logits = setup.fn.logits(setup.fn.base, batch.input_ids)
        logp = torch.log_softmax(logits[batch.read_rows, batch.read_cols].double(), dim=-1)
        return cls(
            batch.input_ids, batch.read_rows, batch.read_cols, batch.targets, batch.read_counts,
            logp,
        )  # fmt: skip

    def padded(self, width: int, pad_id: int) -> _WatchRows:
        """The same rows right-padded to ``width`` tokens (the read positions do not move)."""
        if self.ids is None:
            return self
        return dataclasses.replace(self, ids=pad_right(self.ids, width, pad_id))


def _exact_chunk(setup: Setup, stacked: Stacked, watch: _WatchRows) -> Numbers:
    params, loss, _ = _descend(setup, stacked)
    deltas = _deltas(setup.fn.base, params)
    with torch.no_grad():
        logits = setup.fn.stepped_logits(params, stacked.ids, watch.ids)
    loss_after = logprob.mean_target_nll(logits[:, 0].double(), stacked.targets)
    kl, dlogp, flips = _watch_shift(logits, watch)
    return Numbers(
        loss_before=loss.double().cpu(),
        loss_after=loss_after.cpu(),
        loss_drop_pred=torch.full_like(loss_after, math.nan).cpu(),  # measured, not predicted
        update_size=_norms(deltas),
        kl=kl.cpu(),
        dlogp=dlogp.cpu(),
        top1_flip=flips.cpu(),
    )


def _descend(setup: Setup, stacked: Stacked) -> tuple[Params, torch.Tensor, Params]:
    """``steps`` rounds of the update rule per example; stacked params, first loss and grads."""
    params: Params = setup.fn.base
    rule = setup.spec.rule
    for saved in setup.state.values():
        rule.check_state(saved)
    states = {
        e.name: update_rule.TensorState.of(setup.state.get(i)) for i, e in enumerate(setup.entries)
    }
    loss_before = torch.empty(0)
    first: Params = {}
    for round_ in range(setup.steps):
        grads, loss = setup.fn.grads(params, stacked, stacked_params=round_ > 0)
        if round_ == 0:
            loss_before, first = loss.detach(), grads
        stepped: Params = {}
        for name, theta in params.items():
            stepped[name], states[name] = update_rule.apply(
                setup.spec, theta, grads[name], states[name]
            )
        params = stepped
    return params, loss_before, first


def _plain_sgd_once(setup: Setup) -> bool:
    return setup.spec.plain_sgd and setup.steps == 1


def _deltas(base: Params, params: Params) -> Params:
    """Δθ per example in float32, (C, numel) per tensor: the stored change."""
    return {n: (params[n].float() - base[n].float()).flatten(1) for n in base}


def _norms(deltas: Params) -> torch.Tensor:
    squares = [torch.linalg.vector_norm(d, dim=1).double() ** 2 for d in deltas.values()]
    return torch.stack(squares).sum(0).sqrt().cpu()


def _pairwise(a: Params, b: Params) -> torch.Tensor:
    """Per-example dot products Σ_tensors ⟨a_i, b_i⟩ (float64)."""
    dots = [(a[n].float().flatten(1) * b[n]).sum(1).double() for n in b]
    return torch.stack(dots).sum(0).cpu()


def _dots(deltas: Params, watch_grads: Params) -> torch.Tensor:
    """(C, W): Σ_tensors Δ_i · G_w, with ``watch_grads`` as (numel, W) per tensor."""
    total = None
    for name, d in deltas.items():
        part = (d.float() @ watch_grads[name]).double()
        total = part if total is None else total + part
    assert total is not None
    return total


def _watch_grads(setup: Setup, device: torch.device) -> tuple[Params, torch.Tensor]:
    """∇θ log p(target) of every watch item with a target (zeros for the others), laid out
    as a (numel, W) float32 matrix per tensor for the dot products."""
    has_target = torch.tensor([bool(e.target_ids) for e in setup.watch], dtype=torch.bool)
    if not bool(has_target.any()):
        return {}, has_target
    items = [e for e in setup.watch if e.target_ids]
    grads = setup.fn.logp_grads(stack(items, setup.pad_id, device))
    full: Params = {}
    for name, g in grads.items():
        out = torch.zeros((len(setup.watch), *g.shape[1:]), dtype=g.dtype, device=g.device)
        out[has_target.to(device)] = g
        full[name] = out.flatten(1).float().T.contiguous()
    return full, has_target


def _watch_shift(
    logits: torch.Tensor, watch: _WatchRows
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KL(p_θ ‖ p_θ'), Δlog p(target) and top-1 flips per (example, watch item)."""
    n = logits.shape[0]
    if watch.ids is None:
        empty = torch.zeros((n, 0), dtype=torch.float64)
        return empty, empty, empty.bool()
    after = torch.log_softmax(logits[:, 1 + watch.rows, watch.cols].double(), dim=-1)
    before = watch.logp_before.to(after.device)
    kl = logprob.kl(before, after)  # (C, R)
    targets = watch.targets.to(after.device)
    dlogp = logprob.target_logp(after, targets) - logprob.target_logp(before, targets)
    flips = (after.argmax(-1) != before.argmax(-1)).double()
    counts = watch.counts
    return (
        logprob.segment_mean(kl, counts),
        logprob.segment_sum(dlogp, counts),
        logprob.segment_sum(flips, counts) > 0,
    )


def _width(examples: Sequence[EncodedExample], watch: Sequence[EncodedExample]) -> int:
    return max(len(e.input_ids) for e in [*examples, *watch])


def _chunk_size(setup: Setup, width: int, watch_rows: int) -> int:
    """Examples per vmap call: what fits in a share of the free memory (at least one)."""
    device = setup.entries[0].param.device
    n_params = sum(e.param.numel() for e in setup.entries)
    config = getattr(setup.fn.model, "config", None)
    vocab = int(getattr(config, "vocab_size", 50_000))
    hidden = int(getattr(config, "hidden_size", 1024))
    layers = int(getattr(config, "num_hidden_layers", 12))
    rows = 1 + watch_rows
    per_example = 4 * (
        4 * n_params  # gradient, stepped parameters, Δθ and optimizer moments
        + 4 * rows * width * vocab  # logits and their log-softmax
        + 24 * rows * width * hidden * layers  # activations kept for the backward
    )
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
        ceiling = MAX_CHUNK_GPU
    else:
        free = _free_host_memory()
        ceiling = MAX_CHUNK_CPU
    return max(1, min(ceiling, int(0.4 * free) // max(per_example, 1)))


def _free_host_memory() -> int:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def _chunks(examples: Sequence[EncodedExample], size: int) -> list[list[int]]:
    """Example indices in chunks of ``size``, similar lengths together (less padding)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    return [order[start : start + size] for start in range(0, len(order), size)]


def _cat(parts: list[tuple[list[int], Numbers]]) -> Numbers:
    """Chunks back into the examples' original order."""
    order = torch.tensor([i for indices, _ in parts for i in indices])
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    return Numbers(
        *(
            torch.cat([getattr(p, f) for _, p in parts])[inverse]
            for f in Numbers.__dataclass_fields__
        )
    )
