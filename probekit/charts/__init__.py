"""Chart builders: pure functions from a tidy result frame to an Altair chart (no I/O)."""

from probekit.charts.probe import delta_by_layer, hidden_drift, topk_bars, watch_shift

__all__ = ["delta_by_layer", "hidden_drift", "topk_bars", "watch_shift"]
