"""`probekit demo` (the main job) writes a real report."""

from __future__ import annotations

import stat

from probekit import cli
from probekit.results import session_file


def test_demo_command_writes_a_report(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "demo"
    assert str((folder / "index.html").resolve()) in out
    assert "jupyter lab notebooks/01_quickstart.ipynb" in out, out
    for name in (
        "index.html",
        "session.probekit.json",
        "summary.csv",
        "update_size.png",
        "layers.png",
    ):
        assert (folder / name).stat().st_size > 0, name
    results, meta = session_file.load(folder / "session.probekit.json")
    assert meta["model"] == "probekit demo" and len(results) == 21
    page = (folder / "index.html").read_text()
    assert "<script" not in page, "the report is static and carries no script"
    assert "bit-exactly: <b>yes</b>" in page
    first = results[0]
    assert f"{first.delta_l2:.4g}" in page, "the page shows the measured numbers"
    for name in (
        "summary.csv",
        "session.probekit.json",
        "update_size.png",
        "layers.png",
        "means.png",
    ):
        assert f"href='{name}'" in page, f"the page links {name}"
    assert stat.S_IMODE((folder / "session.probekit.json").stat().st_mode) == 0o644
    assert "How far one step moves the model" in page  # every chart has a title
