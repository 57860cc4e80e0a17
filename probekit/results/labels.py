"""How an example is named in every result, frame and chart: ``prompt → target``."""

from __future__ import annotations

from collections.abc import Iterable

ARROW = " → "


def example_label(prompt: str, target: str | None) -> str:
    """``"2 plus 2 is → 5"``: the prompt, then the target without its leading space, if any."""
    return prompt + (f"{ARROW}{target.strip()}" if target else "")


def unique_labels(pairs: Iterable[tuple[str, str | None]]) -> tuple[str, ...]:
    """:func:`example_label` of each (prompt, target), numbered ``#2``, ``#3`` … when repeated."""
    labels: list[str] = []
    for prompt, target in pairs:
        base = example_label(prompt, target)
        label, n = base, 2
        while label in labels:
            label, n = f"{base} #{n}", n + 1
        labels.append(label)
    return tuple(labels)
