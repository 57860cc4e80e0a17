"""Chart builders: pure functions from a tidy result frame to an Altair chart (no I/O)."""

from probekit.charts.dynamics import stream, update_vs_disturbance
from probekit.charts.probe import delta_by_layer, hidden_drift, topk_bars, watch_shift

__all__ = [
    "delta_by_layer",
    "hidden_drift",
    "stream",
    "topk_bars",
    "update_vs_disturbance",
    "watch_shift",
]
