"""Dataset maps for one model session (docs/metrics.md §5): committed passes, or isolated probes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class MapRow:
    """One example after P committed passes (Dataset Cartography, Toneva forgetting)."""

    label: str
    confidence: float
    variability: float
    correctness: float
    forgetting_events: int
    mean_update: float


@dataclass(frozen=True)
class DatasetMap:
    """Per example: confidence = mean p(target) over passes, variability = its std (population),
    correctness = share of passes with every target token top-1, forgetting events =
    correct → incorrect transitions over (start, pass 1, …, pass P), mean_update = mean
    ‖Δθ‖ of the example's own steps."""

    passes: int
    rows: tuple[MapRow, ...]
    prob: tuple[tuple[float, ...], ...]  # [pass][example]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{f.name: getattr(r, f.name) for f in fields(r)} for r in self.rows])


@dataclass(frozen=True)
class IsolatedRow:
    """One example probed alone from the base weights.

    ``loss_drop`` is loss before − loss after the step; on the first-order path it is
    the first-order prediction −∇L·Δθ, and ``disturbance`` (a KL, second order in Δθ)
    is NaN there.
    """

    label: str
    update_size: float
    loss_before: float
    loss_drop: float
    disturbance: float


@dataclass(frozen=True)
class Residual:
    """The first-order path checked against the exact path on a sample of examples.

    ``relative`` = ‖predicted − exact‖ / ‖exact‖ over the sample's Δlog p(target) on the
    watch items (finite entries); small means the first-order numbers can be trusted.
    ``note`` says why a value is NaN (no sample drawn, no watch item with a target).
    """

    indices: tuple[int, ...]
    predicted: tuple[tuple[float, ...], ...]  # [sample][watch] Δlog p(target)
    exact: tuple[tuple[float, ...], ...]
    max_abs: float
    relative: float
    loss_drop_relative: float  # the same for the example's own loss drop
    note: str = ""


@dataclass(frozen=True)
class IsolatedMap:
    """Every example probed from the same base state (nothing committed): how far each
    moves the model (``update_size`` = ‖Δθ‖), how much its own loss drops, and how much
    it disturbs the watch set (``disturbance`` = mean KL over the watch items).

    ``method`` says how it was computed: ``"exact"`` (batched per-example gradients and
    evaluations), ``"loop"`` (one probe step per example) or ``"first_order"`` (watch
    Δlog p predicted as ∇log p·Δθ; ``residual`` compares it with the exact path).
    ``kl``, ``dlogp`` and ``top1_flip`` are ``[example][watch item]`` matrices.
    """

    rows: tuple[IsolatedRow, ...]
    method: str = "loop"
    watch_labels: tuple[str, ...] = ()
    kl: tuple[tuple[float, ...], ...] = ()
    dlogp: tuple[tuple[float, ...], ...] = ()
    top1_flip: tuple[tuple[bool, ...], ...] = ()
    residual: Residual | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per example: label, update_size, loss_before, loss_drop, disturbance."""
        import pandas as pd

        return pd.DataFrame([{f.name: getattr(r, f.name) for f in fields(r)} for r in self.rows])

    def watch_frame(self) -> pd.DataFrame:
        """Long frame: one row per (example, watch item) with kl, dlogp, top1_flip."""
        import pandas as pd

        records = [
            {
                "example": row.label,
                "watch": watch,
                "kl": self.kl[i][j],
                "dlogp": self.dlogp[i][j],
                "top1_flip": self.top1_flip[i][j],
                "method": self.method,
            }
            for i, row in enumerate(self.rows)
            for j, watch in enumerate(self.watch_labels)
        ]
        columns = ["example", "watch", "kl", "dlogp", "top1_flip", "method"]
        return pd.DataFrame(records, columns=columns)
