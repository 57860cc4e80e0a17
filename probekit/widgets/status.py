"""The board's status line: busy or idle, the model it works on, and the last error in words.

Text only (``Label`` widgets render text, never markup), so a prompt such as
``<script>`` in an error message shows up as typed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from probekit.demo import WEIGHTS_DIR
from probekit.errors import ProbekitError


@dataclass(frozen=True)
class ModelInfo:
    """What the status line and the snapshot say about the model."""

    name: str
    revision: str | None
    source: str  # "hub" | "local" | "demo" | "object"
    device: str
    dtype: str
    n_params: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "revision": self.revision,
            "source": self.source,
            "device": self.device,
            "dtype": self.dtype,
            "n_params": self.n_params,
        }

    def describe(self) -> str:
        return f"{self.name} · {self.device} · {self.dtype} · {self.n_params:,} parameters"


def model_info(model: Any) -> ModelInfo:
    """Name, origin, device, dtype and parameter count of a model (shared storages once)."""
    path = str(getattr(model, "name_or_path", "") or "")
    if path and os.path.realpath(path) == os.path.realpath(WEIGHTS_DIR):
        name, source = "probekit demo", "demo"
    elif path:
        name, source = path, "local" if os.path.isdir(path) else "hub"
    else:
        name, source = type(model).__name__, "object"
    config = getattr(model, "config", None)
    revision = getattr(config, "_commit_hash", None) if source == "hub" else None
    params = list(model.parameters())
    first = params[0] if params else None
    return ModelInfo(
        name=name,
        revision=str(revision) if revision else None,
        source=source,
        device=str(first.device) if first is not None else "?",
        dtype=str(first.dtype).removeprefix("torch.") if first is not None else "?",
        n_params=sum(int(p.numel()) for p in params),
    )


def explain(error: BaseException) -> str:
    """An error in plain words: probekit's own message, or the exception's type and message."""
    if isinstance(error, ProbekitError):
        return str(error)
    return f"{type(error).__name__}: {error}"


class StatusLine:
    """Two lines of text: state and model; the last message (error or note)."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.state = widgets.Label()
        self.message = widgets.Label(value="")
        self.widget = widgets.VBox([self.state, self.message])
        self.last_error: str | None = None
        self.set_busy(False)

    def set_busy(self, busy: bool, what: str = "") -> None:
        state = f"busy: {what}" if busy else "idle"
        self.state.value = f"{state} · {self.info.describe()}"

    def error(self, text: str) -> None:
        self.last_error = text
        self.message.value = f"error: {text}"
        self.message.style.text_color = "#b00020"

    def note(self, text: str) -> None:
        self.message.value = text
        self.message.style.text_color = None
