"""A trajectory: a stream of committed probe steps and how the model travelled (docs/metrics.md §4).

The volatility index is the pair (``direction_volatility``, ``magnitude_volatility``).
High variability alone does not mean "not understood": in Dataset Cartography the most
variable examples are the ambiguous ones. Read it together with loss and confidence.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from probekit.results.probe import ProbeResult

if TYPE_CHECKING:
    import pandas as pd

STREAM_METRICS = (
    "delta_l2",
    "grad_l2",
    "loss_before",
    "loss_after",
    "path_length",
    "displacement",
    "straightness",
    "direction_volatility",
    "magnitude_volatility",
    "grad_consistency",
    "spike_score",
    "step_share",
)


@dataclass(frozen=True)
class StreamRow:
    """Where the trajectory stands after committed step ``step`` (0-based within the run)."""

    step: int
    label: str
    delta_l2: float
    grad_l2: float
    loss_before: float
    loss_after: float
    path_length: float
    displacement: float
    straightness: float
    direction_volatility: float
    magnitude_volatility: float
    grad_consistency: float
    conflict: bool
    spike_score: float
    step_share: float


@dataclass(frozen=True)
class Trajectory:
    """Every step of a run (``steps``) and the stream metrics after each committed one."""

    steps: tuple[ProbeResult, ...]
    stream: tuple[StreamRow, ...]
    window: int
    ema_beta: float
    interrupted: bool = False

    @property
    def path_length(self) -> float:
        return self.stream[-1].path_length if self.stream else 0.0

    @property
    def displacement(self) -> float:
        return self.stream[-1].displacement if self.stream else 0.0

    @property
    def straightness(self) -> float:
        return self.stream[-1].straightness if self.stream else math.nan

    @property
    def direction_volatility(self) -> float:
        """Mean over the run of the windowed direction volatility."""
        return _mean(r.direction_volatility for r in self.stream)

    @property
    def magnitude_volatility(self) -> float:
        """Mean over the run of the windowed magnitude volatility."""
        return _mean(r.magnitude_volatility for r in self.stream)

    @property
    def conflicts(self) -> int:
        return sum(r.conflict for r in self.stream)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """A text summary and the ``application/vnd.probekit.result+json`` charts bundle."""
        from probekit.results.result_bundle import mimebundle

        return mimebundle(self)

    def summary(self) -> dict[str, float]:
        """The run in a handful of numbers (one row of a comparison table)."""
        return {
            "steps": float(len(self.stream)),
            "path_length": self.path_length,
            "displacement": self.displacement,
            "straightness": self.straightness,
            "direction_volatility": self.direction_volatility,
            "magnitude_volatility": self.magnitude_volatility,
            "conflicts": float(self.conflicts),
            "final_loss": self.stream[-1].loss_after if self.stream else math.nan,
        }

    def to_frame(self) -> pd.DataFrame:
        """Long tidy frame: step, label, metric, value — one row per stream metric and step."""
        import pandas as pd

        records = [
            (row.step, row.label, name, float(getattr(row, name)))
            for row in self.stream
            for name in (*STREAM_METRICS, "conflict")
        ]
        return pd.DataFrame(records, columns=["step", "label", "metric", "value"])

    def wide(self) -> pd.DataFrame:
        """One row per committed step, one column per stream metric."""
        import pandas as pd

        return pd.DataFrame([{f.name: getattr(r, f.name) for f in fields(r)} for r in self.stream])


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else math.nan
