"""The trajectory panel's rows: how far the committed steps have carried the model.

Path length and magnitude volatility follow from the results alone (sums and spreads of
‖Δθ‖), so they are computed per step for free. Displacement and direction volatility need
‖θ_t − θ_s‖ against earlier weights θ_s — the probe's undo snapshots, one pass over the
parameters each — so they are measured once per request (after a Commit, at the end of a
feed), for its newest committed step; rows in between leave them empty.
"""

from __future__ import annotations

import time
from typing import Any

from probekit.results import panels
from probekit.results.probe import ProbeResult

Row = dict[str, Any]


class PathTracker:
    """Trajectory rows over the probe's committed steps (window ``window`` for volatility)."""

    def __init__(self, window: int = 8, measure: bool = True) -> None:
        self.window = window
        self.measure = measure
        self.due = False  # a committed step is waiting for its distances
        self.seconds = 0.0  # CPU time spent measuring distances

    def row(self, probe: Any, result: ProbeResult, last: Row | None) -> Row | None:
        """The row of a newly committed ``result`` (distances left for :meth:`measured`)."""
        committed = probe.committed
        if not committed or committed[-1] is not result:
            return None
        self.due = self.measure
        path_before = float(last["path_length"] or 0.0) if last else 0.0
        recent = committed[-self.window :]
        return panels.trajectory_row(recent, path_before=path_before, displacement=None, span=None)

    def measured(self, probe: Any, rows: list[Row]) -> list[Row] | None:
        """``rows`` with the newest committed step's distances filled in (``None``: no change)."""
        self.due = False
        committed = probe.committed
        if len(committed) < 2 or not rows or rows[-1]["step"] != committed[-1].step:
            return None
        start = time.thread_time()
        recent = committed[-self.window :]
        displacement, span = distances(probe, len(committed), len(recent))
        path_before = float(rows[-1]["path_length"] or 0.0) - committed[-1].delta_l2
        rows = list(rows)
        rows[-1] = panels.trajectory_row(
            recent, path_before=path_before, displacement=displacement, span=span
        )
        self.seconds += time.thread_time() - start
        return rows

    def history(self, probe: Any) -> list[Row]:
        """Rows for commits made before the board came (their distances are not known)."""
        committed = probe.committed
        return panels.trajectory(committed, [(None, None)] * len(committed), window=self.window)


def distances(probe: Any, committed: int, width: int) -> tuple[float | None, float | None]:
    """‖θ_t − θ₀‖ and ‖θ_t − θ_{t−width}‖ from the probe's undo snapshots (one pass each)."""
    from probekit.session.trajectory import distance

    origin, back = probe.snapshot_back(committed), probe.snapshot_back(width)
    displacement = distance(origin) if origin is not None else None
    if back is origin:  # the window reaches back to the origin: one pass serves both
        return displacement, displacement
    return displacement, distance(back) if back is not None else None
