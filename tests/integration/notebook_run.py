"""Running a teaching notebook the way the tests do, and reading its numbers back.

Every notebook prints the numbers its prose relies on; the notebook tests execute it in a
fresh kernel, offline, on the demo model, and check each statement against the printed
values.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FLOAT = r"([+-]?(?:[0-9][0-9,]*\.?[0-9]*(?:e[+-]?[0-9]+)?|nan))"


class Executed:
    """A notebook run in a fresh kernel offline: its printed text per code cell, its outputs."""

    def __init__(self, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        nbformat = pytest.importorskip("nbformat")
        nbclient = pytest.importorskip("nbclient")
        # the kernel starts in tmp_path: a relative interpreter path would not resolve there
        monkeypatch.setattr(sys, "executable", os.path.abspath(sys.executable))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()
        cells = [cell for cell in nb.cells if cell.cell_type == "code"]
        self.outputs = [o for cell in cells for o in cell.outputs]
        errors = [o for o in self.outputs if o.output_type == "error"]
        assert not errors, errors[0].get("evalue") if errors else ""
        self.cells = [
            "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
            for cell in cells
        ]
        self.text = "".join(self.cells)

    def cell(self, marker: str) -> str:
        """The printed text of the one code cell whose output contains ``marker``."""
        found = [text for text in self.cells if marker in text]
        assert len(found) == 1, f"{len(found)} cells print {marker!r}"
        return found[0]

    def number(self, pattern: str, text: str | None = None) -> float:
        return number(pattern.replace("{F}", FLOAT), self.text if text is None else text)

    def numbers(self, pattern: str, text: str | None = None) -> list[float]:
        found = re.findall(pattern.replace("{F}", FLOAT), self.text if text is None else text)
        assert found, f"the notebook no longer prints {pattern!r}"
        return [float(v.replace(",", "")) for v in found]

    def has(self, mime: str) -> bool:
        return any(mime in o.get("data", {}) for o in self.outputs)

    def count(self, mime: str) -> int:
        return sum(mime in o.get("data", {}) for o in self.outputs)


def number(pattern: str, text: str) -> float:
    """The first group of ``pattern`` in ``text`` as a number (thousands separators allowed)."""
    match = re.search(pattern, text)
    assert match, f"the notebook no longer prints {pattern!r}"
    return float(match.group(1).replace(",", ""))


def run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list]:
    """Execute a notebook; (its printed text, all outputs)."""
    executed = Executed(name, tmp_path, monkeypatch)
    return executed.text, executed.outputs
