"""Chart builders: pure functions from a tidy result frame to an Altair chart (no I/O)."""

from probekit.charts.cartography import dataset_map
from probekit.charts.dynamics import race_summary, stream, update_vs_disturbance, watch_disturbance
from probekit.charts.probe import delta_by_layer, hidden_drift, topk_bars, watch_shift
from probekit.charts.tokens import token_heatmap

__all__ = [
    "dataset_map",
    "delta_by_layer",
    "hidden_drift",
    "race_summary",
    "stream",
    "token_heatmap",
    "topk_bars",
    "update_vs_disturbance",
    "watch_disturbance",
    "watch_shift",
]
