"""What a session file records about how its results were made: the model and settings.

The model is described by reference (name, revision, where it came from, device, dtype,
size) — never its weights, and never anything that could load it again on its own. A
probe of LoRA adapters it attached (``LoraProbe``) adds ``settings.lora``: the adapters'
configuration (rank, alpha, target modules, dropout ...), so the file says that only
adapters were stepped, and how they were shaped.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probekit.results import session_file

if TYPE_CHECKING:
    from probekit.session.probe import Probe


def save_probe(probe: Probe, path: str | os.PathLike[str]) -> Path:
    """Write ``probe.history`` and its metadata to ``path`` (see ``session_file.save``)."""
    return session_file.save(path, list(probe.history), probe_meta(probe))


def probe_meta(probe: Probe) -> dict[str, Any]:
    from probekit import __version__
    from probekit.session.lora import LoraProbe

    spec = probe.spec
    settings: dict[str, Any] = {
        "optimizer": spec.name,
        "lr": spec.lr,
        "steps": probe.steps,
        "momentum": spec.momentum,
        "weight_decay": spec.weight_decay,
        "top_k": probe.top_k,
        "watch": [e.prompt if e.target is None else [e.prompt, e.target] for e in probe.watch],
    }
    model = describe_model(probe.model)
    if isinstance(probe, LoraProbe):
        settings["lora"] = probe.lora_settings()
        model = describe_model(probe.base_model)  # named as loaded, not as peft's wrapper
        model["n_params"] -= _adapter_numbers(probe.base_model)  # its own size
    return {
        "probekit_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "model": model,
        "settings": settings,
    }


def describe_model(model: Any) -> dict[str, Any]:
    """``{name, revision, source, device, dtype, n_params}`` of a loaded model.

    ``source`` is ``"demo"`` (the embedded demo model), ``"hub"`` (a hub id),
    ``"local"`` (a folder: only its name is recorded, not the full path) or
    ``"object"`` (built in memory).
    """
    config = getattr(model, "config", None)
    where = str(getattr(config, "_name_or_path", "") or getattr(model, "name_or_path", "") or "")
    source, name = _source(where)
    if source == "object":
        name = type(model).__name__
    revision = getattr(config, "_commit_hash", None)
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    first = params[0] if params else None
    return {
        "name": name,
        "revision": revision if isinstance(revision, str) else None,
        "source": source,
        "device": str(getattr(first, "device", "cpu")),
        "dtype": str(getattr(first, "dtype", "")).removeprefix("torch."),
        "n_params": sum(int(p.numel()) for p in {id(p): p for p in params}.values()),
    }


def _adapter_numbers(model: Any) -> int:
    """How many numbers the LoRA tensors attached inside ``model`` hold (0 once removed)."""
    seen = {id(p): p for n, p in model.named_parameters() if "lora_" in n}
    return sum(int(p.numel()) for p in seen.values())


def _source(where: str) -> tuple[str, str]:
    if not where:
        return "object", ""
    from probekit.demo import WEIGHTS_DIR

    path = Path(where)
    try:
        if path.resolve() == Path(WEIGHTS_DIR).resolve():
            return "demo", "probekit demo"
        if path.is_dir():
            return "local", path.name
    except OSError:
        pass
    return "hub", where
