"""The result of one probe step: inert, frozen data with tidy frame views.

Nothing here refers to a model. Floats are plain Python floats; ``nan`` marks a
value that does not apply (``dlogp_target`` of a watch item without a target).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from probekit.results.attribution import TokenAttribution

FRAME_COLUMNS = ("step", "metric", "scope", "label", "layer", "value")
DELTA_METRICS = ("delta_l2", "delta_rel", "delta_l1", "delta_linf", "frac_changed", "lost_updates")
WATCH_METRICS = ("kl", "dlogp_target", "top1_flip", "logit_l2")


@dataclass(frozen=True)
class TensorDelta:
    """How one parameter storage moved in one step (raw sums, so scopes can be combined)."""

    name: str
    layer: str
    numel: int
    sum_sq: float
    sum_abs: float
    max_abs: float
    changed: int
    lost: int
    theta_sq: float
    grad_sq: float
    decay_sq: float = 0.0
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeltaSummary:
    """Parameter-delta metrics over a set of tensors (the whole model, a layer, one tensor)."""

    delta_l2: float
    delta_rel: float
    delta_l1: float
    delta_linf: float
    frac_changed: float
    lost_updates: int
    grad_l2: float
    decay_l2: float

    @classmethod
    def of(cls, rows: Iterable[TensorDelta]) -> DeltaSummary:
        rows = list(rows)
        numel = sum(r.numel for r in rows)
        sum_sq = sum(r.sum_sq for r in rows)
        theta = math.sqrt(sum(r.theta_sq for r in rows))
        l2 = math.sqrt(sum_sq)
        return cls(
            delta_l2=l2,
            delta_rel=l2 / theta if theta > 0 else (0.0 if l2 == 0 else math.inf),
            delta_l1=sum(r.sum_abs for r in rows),
            delta_linf=max((r.max_abs for r in rows), default=0.0),
            frac_changed=sum(r.changed for r in rows) / numel if numel else 0.0,
            lost_updates=sum(r.lost for r in rows),
            grad_l2=math.sqrt(sum(r.grad_sq for r in rows)),
            decay_l2=math.sqrt(sum(r.decay_sq for r in rows)),
        )


@dataclass(frozen=True)
class LayerDrift:
    layer: str
    cos_drift: float
    rel_l2_drift: float


@dataclass(frozen=True)
class WatchRow:
    """How one watch item (or the example itself) responded to the step."""

    label: str
    prompt: str
    target: str | None
    is_example: bool
    kl: float
    dlogp_target: float
    top1_flip: bool
    logit_l2: float
    topk_before: tuple[tuple[str, float], ...]
    topk_after: tuple[tuple[str, float], ...]
    drift: tuple[LayerDrift, ...]
    influence: float = math.nan
    dz_pred: float = math.nan
    linear_residual: float = math.nan


StepStatus = Literal["ok", "nonfinite_loss", "nonfinite_grad", "nonfinite_weights"]


@dataclass(frozen=True)
class ProbeResult:
    """Everything one probe step measured. ``status`` is ``"ok"`` or names what went wrong.

    ``watch`` holds one row per watch item, in the probe's order; ``example`` is the same
    measurement on the stepped example itself (its label is ``"example"``); ``rows`` is
    both, watch items first. A row marked ``is_example`` given in ``watch`` (as older
    session files have it) is moved to ``example``.
    """

    step: int
    committed: bool
    status: StepStatus
    prompt: str
    target: str
    target_tokens: tuple[str, ...]
    optimizer: str
    lr: float
    steps: int
    loss_before: float
    loss_after: float
    token_nll_before: tuple[float, ...]
    token_nll_after: tuple[float, ...]
    tensors: tuple[TensorDelta, ...]
    watch: tuple[WatchRow, ...]
    self_influence: float = math.nan
    notes: tuple[str, ...] = field(default_factory=tuple)
    input_tokens: tuple[str, ...] = ()  # prompt + target[:-1], when token_grad was asked for
    token_grad: tuple[float, ...] = ()  # ‖∂L/∂eᵢ‖ per input token, from the step's backward
    example: WatchRow | None = None

    def __post_init__(self) -> None:
        own = [row for row in self.watch if row.is_example]
        if own:
            if len(own) > 1 or self.example is not None:
                raise ValueError("a probe result has one example row")
            object.__setattr__(self, "watch", tuple(r for r in self.watch if not r.is_example))
            object.__setattr__(self, "example", own[0])

    @property
    def rows(self) -> tuple[WatchRow, ...]:
        """Every measured row: the watch items, then the example itself (when measured)."""
        return self.watch if self.example is None else (*self.watch, self.example)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """A text summary and the ``application/vnd.probekit.result+json`` charts bundle."""
        from probekit.results.result_bundle import mimebundle

        return mimebundle(self)

    def token_attribution(self) -> TokenAttribution | None:
        """``token_grad`` as a :class:`TokenAttribution`, if it was taken.

        The same shape as :func:`probekit.token_grad`: the sequence row is the step's own
        ‖∂L/∂eᵢ‖; the per-target-token rows are ``nan`` (the step's backward does not
        separate them — ``pk.token_grad`` computes them).
        """
        if not self.token_grad:
            return None
        from probekit.results.attribution import TokenAttribution

        unmeasured = (math.nan,) * len(self.input_tokens)
        return TokenAttribution(
            method="token_grad",
            prompt=self.prompt,
            target=self.target,
            input_tokens=self.input_tokens,
            target_tokens=self.target_tokens,
            scores=tuple(unmeasured for _ in self.target_tokens),
            sequence=self.token_grad,
            convergence_delta=(),
        )

    @property
    def total(self) -> DeltaSummary:
        return DeltaSummary.of(self.tensors)

    def layer(self, label: str) -> DeltaSummary:
        return DeltaSummary.of(t for t in self.tensors if t.layer == label)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.layer for t in self.tensors))

    @property
    def delta_l2(self) -> float:
        return self.total.delta_l2

    @property
    def grad_l2(self) -> float:
        return self.total.grad_l2

    def watch_row(self, label: str) -> WatchRow:
        """The row of the watch item called ``label`` (``"example"``: the example's own row)."""
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(label)

    def to_frame(self) -> pd.DataFrame:
        """Long tidy frame: one row per (metric, scope, label, layer) with a ``step`` column."""
        import pandas as pd

        return pd.DataFrame(list(self._records()), columns=list(FRAME_COLUMNS))

    def token_frame(self) -> pd.DataFrame:
        """Per-target-token NLL before and after: step, position, token, nll_before, nll_after."""
        import pandas as pd

        return pd.DataFrame(
            {
                "step": self.step,
                "position": range(len(self.target_tokens)),
                "token": list(self.target_tokens),
                "nll_before": list(self.token_nll_before),
                "nll_after": list(self.token_nll_after),
            }
        )

    def topk_frame(self) -> pd.DataFrame:
        """Top-k next-token probabilities before/after for every watch row."""
        import pandas as pd

        records = [
            (self.step, row.label, when, rank, token, prob)
            for row in self.rows
            for when, pairs in (("before", row.topk_before), ("after", row.topk_after))
            for rank, (token, prob) in enumerate(pairs)
        ]
        return pd.DataFrame(records, columns=["step", "label", "when", "rank", "token", "prob"])

    def _records(self) -> Iterable[tuple[Any, ...]]:
        s = self.step
        yield (s, "loss_before", "example", "example", "", self.loss_before)
        yield (s, "loss_after", "example", "example", "", self.loss_after)
        if not math.isnan(self.self_influence):
            yield (s, "self_influence", "example", "example", "", self.self_influence)
        yield from _delta_records(s, "total", "all", "", self.total)
        for layer in self.layers:
            yield from _delta_records(s, "layer", layer, layer, self.layer(layer))
        for t in self.tensors:
            yield from _delta_records(s, "tensor", t.name, t.layer, DeltaSummary.of([t]))
        for row in self.rows:
            scope = "example" if row.is_example else "watch"
            values = (row.kl, row.dlogp_target, float(row.top1_flip), row.logit_l2)
            for metric, value in zip(WATCH_METRICS, values, strict=True):
                yield (s, metric, scope, row.label, "", value)
            for name in ("influence", "dz_pred", "linear_residual"):
                if not math.isnan(getattr(row, name)):
                    yield (s, name, scope, row.label, "", getattr(row, name))
            for d in row.drift:
                yield (s, "cos_drift", scope, row.label, d.layer, d.cos_drift)
                yield (s, "rel_l2_drift", scope, row.label, d.layer, d.rel_l2_drift)


def _delta_records(
    step: int, scope: str, label: str, layer: str, summary: DeltaSummary
) -> Iterable[tuple[Any, ...]]:
    yield (step, "grad_l2", scope, label, layer, summary.grad_l2)
    for metric in DELTA_METRICS:
        yield (step, metric, scope, label, layer, float(getattr(summary, metric)))
    if summary.decay_l2:
        yield (step, "decay_l2", scope, label, layer, summary.decay_l2)
