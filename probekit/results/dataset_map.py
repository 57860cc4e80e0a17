"""Dataset maps for one model session (METRICS.md §5): committed passes, or isolated probes."""

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
    """One example probed alone from the base weights."""

    label: str
    update_size: float
    loss_before: float
    loss_drop: float
    disturbance: float


@dataclass(frozen=True)
class IsolatedMap:
    """Every example probed from the same base state (nothing committed): how far each
    moves the model (``update_size`` = ‖Δθ‖), how much its own loss drops, and how much
    it disturbs the watch set (``disturbance`` = mean KL over the watch items)."""

    rows: tuple[IsolatedRow, ...]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{f.name: getattr(r, f.name) for f in fields(r)} for r in self.rows])
