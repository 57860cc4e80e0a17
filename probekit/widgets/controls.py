"""The board's inputs: the example being probed, the action buttons, the watch-set editor.

Everything typed is shown back as text (``Label``, ``Select`` options), never as markup.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

import probekit
from probekit.widgets.preview import preview


class ExampleInput:
    """Prompt and target, with the exact target tokens a step would train on."""

    def __init__(self, probe: Any, prompt: str = "", target: str = "") -> None:
        self.probe = probe
        self.prompt = widgets.Text(
            value=prompt,
            description="prompt",
            continuous_update=False,
            layout=widgets.Layout(width="420px"),
        )
        self.target = widgets.Text(
            value=target,
            description="target",
            placeholder="include the leading space: ' 4'",
            continuous_update=False,
            layout=widgets.Layout(width="260px"),
        )
        self.tokens = widgets.Label()
        self.warning = widgets.Label()
        self.warning.style.text_color = "#9a6700"
        for field in (self.prompt, self.target):
            field.observe(lambda _change: self.refresh(), names="value")
        self.widget = widgets.VBox(
            [widgets.HBox([self.prompt, self.target]), self.tokens, self.warning]
        )
        self.refresh()

    def example(self) -> Any:
        return probekit.Example(self.prompt.value, self.target.value)

    def refresh(self) -> None:
        """Re-tokenise after an edit: target tokens and boundary warnings."""
        if not self.prompt.value and not self.target.value:
            self.tokens.value, self.warning.value = "type a prompt and its target", ""
            return
        shown = preview(self.probe, self.prompt.value, self.target.value)
        self.tokens.value = shown.describe()
        self.warning.value = " · ".join(shown.notes)


class Actions:
    """The step buttons."""

    def __init__(self) -> None:
        self.probe = widgets.Button(
            description="Probe",
            tooltip="one isolated step: the model is left untouched",
            button_style="primary",
        )
        self.commit = widgets.Button(description="Commit", tooltip="one step the model keeps")
        self.undo = widgets.Button(description="Undo", tooltip="revert the last committed step")
        self.reset = widgets.Button(
            description="Reset", tooltip="back to before the first commit; clears the history"
        )
        self.attribute = widgets.Button(
            description="Token attribution",
            tooltip="integrated gradients of the target before and after an isolated step",
        )
        self.log = widgets.Checkbox(value=True, description="log scales", indent=False)
        self.widget = widgets.HBox(
            [self.probe, self.commit, self.undo, self.reset, self.attribute, self.log]
        )

    @property
    def buttons(self) -> list[widgets.Button]:
        return [self.probe, self.commit, self.undo, self.reset, self.attribute]


class WatchEditor:
    """Add and remove watch items (a prompt with an optional target)."""

    def __init__(self, probe: Any) -> None:
        self.items = widgets.Select(options=[], rows=5, layout=widgets.Layout(width="420px"))
        self.prompt = widgets.Text(description="watch", placeholder="prompt")
        self.target = widgets.Text(placeholder="target (optional)", layout={"width": "160px"})
        self.add = widgets.Button(description="Add", icon="plus")
        self.remove = widgets.Button(description="Remove selected", icon="minus")
        self.widget = widgets.VBox(
            [widgets.HBox([self.prompt, self.target, self.add]), self.items, self.remove]
        )
        self.show(probe)

    def show(self, probe: Any) -> None:
        """List the probe's watch items by their labels (values are the item positions)."""
        self.items.options = [(label, i) for i, label in enumerate(probe.watch_labels)]

    def added(self, probe: Any) -> list[Any]:
        """The watch set with the typed item appended."""
        target = self.target.value or None
        return [*probe.watch, probekit.Example(self.prompt.value, target)]

    def removed(self, probe: Any) -> list[Any]:
        """The watch set without the selected item."""
        index = self.items.value
        return [item for i, item in enumerate(probe.watch) if i != index]

    @property
    def buttons(self) -> list[widgets.Button]:
        return [self.add, self.remove]
