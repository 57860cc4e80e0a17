"""Feeding many examples, one step each: parsing the list, progress, Stop.

Lines read ``prompt | target``; the target gets one leading space (the space a
tokenizer expects after a prompt), so ``2 plus 2 is | 4`` trains on ``" 4"``. A list
of ``Example``s, ``(prompt, target)`` pairs or a pandas frame with ``prompt`` and
``target`` columns is taken as given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets

import probekit
from probekit.errors import InputError
from probekit.widgets.status import explain


def parse_lines(text: str) -> list[Any]:
    """One example per non-empty line, ``prompt | target`` (split at the last ``|``)."""
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "|" not in line:
            raise InputError(f"line {number} has no '|': write 'prompt | target', got {line!r}")
        prompt, target = line.rsplit("|", 1)
        examples.append(probekit.Example(prompt.rstrip(), " " + target.strip()))
    return examples


def as_examples(items: Any) -> list[Any]:
    """Examples from text lines, a list (Examples, pairs or lines) or a prompt/target frame."""
    if isinstance(items, str):
        return parse_lines(items)
    columns = getattr(items, "columns", None)
    if columns is not None:
        if not {"prompt", "target"} <= set(columns):
            raise InputError(
                f"a feed frame needs 'prompt' and 'target' columns, got {list(columns)}"
            )
        return [
            probekit.Example(str(p), str(t))
            for p, t in zip(items["prompt"], items["target"], strict=True)
        ]
    out = []
    for item in _iterate(items):
        if isinstance(item, str):
            out.extend(parse_lines(item))
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(probekit.Example(item[0], item[1]))
        else:
            out.append(item)
    return out


def _iterate(items: Any) -> Iterable[Any]:
    try:
        return iter(items)
    except TypeError:
        raise InputError(
            f"cannot feed {type(items).__name__}: pass lines, a list or a frame"
        ) from None


def run_feed(
    step: Callable[[Any], Any],
    examples: list[Any],
    stop: threading.Event,
    advance: Callable[[int, int], None],
) -> tuple[int, str | None]:
    """Step on each example until done or ``stop`` is set (checked before every step).

    Returns how many steps were taken and, if one raised, what went wrong (the feed ends
    there; steps taken before it are kept).
    """
    for done, example in enumerate(examples):
        if stop.is_set():
            return done, None
        try:
            step(example)
        except Exception as exc:
            return done, f"item {done + 1} ({example.prompt!r}): {explain(exc)}"
        advance(done + 1, len(examples))
    return len(examples), None


class FeedControls:
    """A text area of examples, commit-or-isolated choice, progress bar and Stop."""

    def __init__(self) -> None:
        self.text = widgets.Textarea(
            placeholder="one example per line: prompt | target",
            layout=widgets.Layout(width="520px", height="90px"),
        )
        self.commit = widgets.Checkbox(value=True, description="commit each step", indent=False)
        self.run = widgets.Button(description="Feed list", icon="play")
        self.stop = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="feed")
        self.count = widgets.Label()
        self.widget = widgets.VBox(
            [
                self.text,
                widgets.HBox([self.commit, self.run, self.stop]),
                widgets.HBox([self.progress, self.count]),
            ]
        )

    def start(self, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = 0
        self.count.value = f"0 / {total}"

    def advance(self, done: int, total: int) -> None:
        self.progress.value = done
        self.count.value = f"{done} / {total}"
