"""The board's optimizer, learning-rate, steps and parameter-subset controls.

``steps`` is a per-request option: changing it needs nothing rebuilt. The optimizer,
learning rate and subset are fixed when a probe is made (its optimizer state and undo
snapshots belong to them), so applying a change builds a new probe over the same model
— only while no committed step is on the model, because only the old probe could undo
it. The history carries over; the new settings apply from the next step on.
"""

from __future__ import annotations

import re
from typing import Any

import ipywidgets as widgets

from probekit.errors import InputError, StateError

OPTIMIZERS = ("sgd", "adam", "adamw")
KEEP, ALL = "", "all"


def parse_layers(text: str) -> list[int | str] | None:
    """``"0, -1, lm_head"`` → ``[0, -1, "lm_head"]``; ``"all"`` → ``None`` (every parameter)."""
    if text.strip().lower() == ALL:
        return None
    items: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        items.append(int(part) if re.fullmatch(r"-?\d+", part) else part)
    if not items:
        raise InputError("no layer given: write block indices or labels, e.g. 0, -1, lm_head")
    return items


def rebuild(probe: Any, *, optimizer: str, lr: float, layers: str, pattern: str) -> Any:
    """A new probe over the same model with new settings; the history carries over.

    ``layers``/``pattern`` blank keep the current parameter subset; ``layers="all"``
    selects every trainable parameter. Refused while committed steps are on the model.
    """
    if probe.committed:
        raise StateError(
            f"{len(probe.committed)} committed step(s) are on the model and only the current "
            "probe can undo them; Undo them or Reset first, then apply the new settings"
        )
    chosen_layers: list[int | str] | None = None
    chosen_pattern: str | None = pattern.strip() or None
    if layers.strip():
        chosen_layers = parse_layers(layers)
    elif chosen_pattern is None and not _selects_everything(probe):
        names = "|".join(re.escape(e.name) for e in probe.entries)
        chosen_pattern = f"^(?:{names})$"  # exactly the tensors stepped so far
    spec = probe.spec
    same = optimizer == spec.name
    options = dict(
        optimizer=optimizer,
        lr=float(lr),
        steps=probe.steps,
        watch=probe.watch,
        layers=chosen_layers,
        pattern=chosen_pattern,
        momentum=spec.momentum if optimizer == "sgd" else 0.0,
        weight_decay=spec.weight_decay if same else None,
        top_k=probe.top_k,
        influence=probe.influence,
        linearize=probe.linearize,
        token_grad=probe.token_grad,
        truncation=probe.truncation,
    )
    if hasattr(probe, "with_options"):  # a LoraProbe hands its adapters over
        new = probe.with_options(**options)
    else:
        new = type(probe)(probe.model, probe.tokenizer, **options)
    new.history.extend(probe.history)
    return new


def _selects_everything(probe: Any) -> bool:
    trainable = sum(1 for p in probe.model.parameters() if p.requires_grad)
    return len(probe.entries) == trainable


class Settings:
    """Controls for the next steps' optimizer, learning rate, steps and stepped parameters."""

    def __init__(self, probe: Any) -> None:
        style = {"description_width": "70px"}
        self.optimizer = widgets.Dropdown(
            options=OPTIMIZERS, value=probe.spec.name, description="optimizer", style=style
        )
        self.lr = widgets.FloatText(value=probe.spec.lr, description="lr", style=style)
        self.steps = widgets.BoundedIntText(
            value=probe.steps, min=1, max=1000, description="steps", style=style
        )
        self.layers = widgets.Text(
            description="layers", placeholder="blank: keep · all · 0, -1, lm_head", style=style
        )
        self.pattern = widgets.Text(
            description="pattern", placeholder="regex on parameter names", style=style
        )
        self.apply = widgets.Button(description="Apply settings", icon="check")
        self.subset = widgets.Label()
        self.explained = widgets.Label(
            value="steps apply at once; optimizer, lr and subset make a new probe over the same "
            "model (history kept), only with no committed step on the model"
        )
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.optimizer, self.lr, self.steps]),
                widgets.HBox([self.layers, self.pattern, self.apply]),
                self.subset,
                self.explained,
            ]
        )
        self.show(probe)

    def show(self, probe: Any) -> None:
        """Reflect the probe's current settings."""
        self.optimizer.value = probe.spec.name
        self.lr.value = probe.spec.lr
        layers = ", ".join(dict.fromkeys(e.layer for e in probe.entries))
        self.subset.value = f"stepping {len(probe.entries)} parameter tensors ({layers})"

    def changed(self, probe: Any) -> bool:
        """Whether applying needs a new probe (anything but ``steps`` differs)."""
        return bool(
            self.optimizer.value != probe.spec.name
            or float(self.lr.value) != probe.spec.lr
            or self.layers.value.strip()
            or self.pattern.value.strip()
        )
