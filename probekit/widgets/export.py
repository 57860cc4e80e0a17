"""What the board writes and leaves behind: session files, chart images, the static snapshot.

A snapshot is a display output with two representations: a PNG of every panel (what
any viewer shows) and the versioned ``application/vnd.probekit.board+json`` bundle of
the panel rows (what probekit's JupyterLab renderer draws), so a saved notebook still
shows the board's last state with no kernel running.
"""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path
from typing import Any

from probekit.charts.board import SELECTED
from probekit.results.snapshot import board_snapshot

MIME = "application/vnd.probekit.board+json"


def save_session(probe: Any, path: str | os.PathLike[str]) -> Path:
    """The probe's history as a session file (strict JSON, written atomically)."""
    return Path(probe.save(path))


def chart_files(charts: dict[str, Any], folder: str | os.PathLike[str]) -> int:
    """Write every chart as ``<name>.png`` and ``<name>.svg`` into ``folder``; file count."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name, chart in charts.items():
        (target / f"{name}.png").write_bytes(chart.to_png())
        (target / f"{name}.svg").write_text(chart.to_svg(), encoding="utf-8")
    return 2 * len(charts)


def settings(probe: Any, steps: int) -> dict[str, Any]:
    """The settings the board's next steps use, for session files and snapshots.

    A probe of LoRA adapters (``pk.LoraProbe``) adds ``lora``: the adapters' configuration
    (``lora_settings()``), as its session files do.
    """
    spec = probe.spec
    found: dict[str, Any] = {
        "optimizer": spec.name,
        "lr": spec.lr,
        "steps": steps,
        "momentum": spec.momentum,
        "weight_decay": spec.weight_decay,
        "n_tensors": len(probe.entries),
        "watch": list(probe.watch_labels),
    }
    lora = getattr(probe, "lora_settings", None)  # by duck type: no torch/peft import here
    if callable(lora):
        found["lora"] = lora()
    return found


def bundle(
    panels: dict[str, list[dict[str, Any]]],
    *,
    model: dict[str, Any],
    settings: dict[str, Any],
    selected_step: int | None,
) -> dict[str, Any]:
    """The board snapshot bundle (format ``probekit.board``), validated against its schema."""
    return dict(board_snapshot(panels, model=model, settings=settings, selected_step=selected_step))


def composite_spec(
    charts: list[tuple[dict[str, Any], list[dict[str, Any]]]], selected_step: int | None
) -> dict[str, Any]:
    """One static Vega-Lite spec stacking every (spec, rows) with its rows inlined.

    Panels without rows are left out (nothing to show, and Vega cannot size some of them).
    """
    parts = []
    for spec, rows in charts:
        if not rows:
            continue
        part = copy.deepcopy(spec)
        for key in ("$schema", "config", "params"):
            part.pop(key, None)
        part["data"] = {"values": rows}
        parts.append(part)
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "params": [{"name": SELECTED, "value": selected_step}],
        "vconcat": parts,
        "spacing": 30,
    }


def png(spec: dict[str, Any], scale: float = 1) -> bytes:
    import vl_convert as vlc

    return bytes(vlc.vegalite_to_png(spec, scale=scale))


def publish(image: bytes, data: dict[str, Any], text: str) -> None:
    """Display the snapshot as a static output (PNG + bundle + a line of text)."""
    from IPython.display import publish_display_data

    publish_display_data(
        {"image/png": base64.b64encode(image).decode("ascii"), MIME: data, "text/plain": text}
    )
