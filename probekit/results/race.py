"""A curriculum race: the same examples in several orders from one start (docs/metrics.md §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from probekit.results.trajectory import Trajectory

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RaceResult:
    """One trajectory per order, plus what each order left behind.

    ``final_loss``: mean loss on the examples after the order; ``final_kl``: mean KL
    of the watch set against the start (what the order disturbed).
    """

    orders: tuple[str, ...]
    permutations: tuple[tuple[int, ...], ...]
    trajectories: tuple[Trajectory, ...]
    start_loss: tuple[float, ...]
    final_loss: tuple[float, ...]
    final_kl: tuple[float, ...]

    def trajectory(self, order: str) -> Trajectory:
        return self.trajectories[self.orders.index(order)]

    def summary(self) -> pd.DataFrame:
        """One row per order: path length, displacement, straightness, volatility, losses, KL."""
        import pandas as pd

        rows = []
        for name, traj, loss, kl in zip(
            self.orders, self.trajectories, self.final_loss, self.final_kl, strict=True
        ):
            s = traj.summary()
            rows.append(
                {
                    "order": name,
                    "path_length": s["path_length"],
                    "displacement": s["displacement"],
                    "straightness": s["straightness"],
                    "direction_volatility": s["direction_volatility"],
                    "magnitude_volatility": s["magnitude_volatility"],
                    "final_loss": loss,
                    "final_kl": kl,
                }
            )
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        """Long tidy frame of the summary: order, metric, value."""
        return self.summary().melt(id_vars="order", var_name="metric", value_name="value")

    def steps_frame(self) -> pd.DataFrame:
        """Every order's stream metrics per step: order, step, label, metric, value."""
        import pandas as pd

        frames = [
            t.to_frame().assign(order=o)
            for o, t in zip(self.orders, self.trajectories, strict=True)
        ]
        return pd.concat(frames, ignore_index=True)[["order", "step", "label", "metric", "value"]]
