"""`probekit demo` (the main job) writes a real report, and the quickstart notebook runs."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from probekit import cli
from probekit.results import session_file

ROOT = Path(__file__).resolve().parents[2]


def test_demo_command_writes_a_report(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "demo"
    assert str((folder / "index.html").resolve()) in out
    assert "jupyter lab notebooks/quickstart.ipynb" in out, out
    for name in ("index.html", "session.json", "summary.csv", "update_size.png", "layers.png"):
        assert (folder / name).stat().st_size > 0, name
    results, meta = session_file.load(folder / "session.json")
    assert meta["model"] == "probekit demo" and len(results) == 21
    page = (folder / "index.html").read_text()
    assert "<script" not in page, "the report is static and carries no script"
    assert "bit-exactly: <b>yes</b>" in page
    first = results[0]
    assert f"{first.delta_l2:.4g}" in page, "the page shows the measured numbers"
    for name in ("summary.csv", "session.json", "update_size.png", "layers.png", "means.png"):
        assert f"href='{name}'" in page, f"the page links {name}"
    assert stat.S_IMODE((folder / "session.json").stat().st_mode) == 0o644
    assert "How far one step moves the model" in page  # every chart has a title


def _execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """Run a notebook in a fresh kernel; its outputs (no cell may raise)."""
    # The kernel is started from tmp_path with this interpreter; a relative sys.executable
    # (an interpreter found through a relative PATH entry) would not resolve from there.
    monkeypatch.setattr(sys, "executable", os.path.abspath(sys.executable))
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # one thread in the kernel, like the test process: two busy processes with a thread pool
    # each on a small machine slow tiny-model work down by an order of magnitude
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    outputs = _execute("quickstart.ipynb", tmp_path, monkeypatch)
    text = json.dumps([o.get("text", "") for o in outputs])
    assert "restored bit-exactly: True" in text
    assert any("image/svg+xml" in o.get("data", {}) for o in outputs), "charts render statically"

