"""Names the README and the error messages promise exist, and docs they point to are in the repo."""

from __future__ import annotations

import pathlib
import re

import pytest

import probekit as pk

ROOT = pathlib.Path(pk.__file__).parents[1]


def test_out_of_memory_error_is_exported():
    from probekit.errors import OutOfMemoryError

    assert pk.OutOfMemoryError is OutOfMemoryError
    assert issubclass(pk.OutOfMemoryError, pk.ProbekitError)
    assert "OutOfMemoryError" in pk.__all__


def test_token_heatmap_is_a_chart_builder():
    import probekit.charts as charts
    from probekit.charts.tokens import token_heatmap

    assert charts.token_heatmap is token_heatmap and "token_heatmap" in charts.__all__


def test_every_pk_name_in_the_package_and_readme_exists():
    sources = [*ROOT.joinpath("probekit").rglob("*.py"), ROOT / "README.md"]
    named = {m for p in sources for m in re.findall(r"\bpk\.([A-Za-z_]\w*)", p.read_text())}
    missing = sorted(n for n in named if not hasattr(pk, n))
    assert not missing, f"pk.{missing} named but not defined"


def test_docs_pointed_to_from_the_package_exist():
    sources = [*ROOT.joinpath("probekit").rglob("*.py"), ROOT / "README.md"]
    pointed = {m for p in sources for m in re.findall(r"docs/[\w-]+\.md", p.read_text())}
    assert "docs/metrics.md" in pointed
    for doc in pointed - {"docs/guarantees.md"}:  # written alongside the reliability work
        assert (ROOT / doc).is_file(), doc
    for p in sources:
        assert "METRICS.md" not in p.read_text() and "RELIABILITY.md" not in p.read_text(), p


def test_a_layer_that_matches_nothing_names_the_layers(tiny_gpt2):
    model, tok = tiny_gpt2
    layers = r"the layers are embeddings\+lm_head, embeddings, block\.0"
    with pytest.raises(pk.InputError, match=layers):
        pk.Probe(model, tok, pattern="no_such_parameter")


def test_the_printed_jupyter_command_works_as_root(monkeypatch):
    from probekit import cli

    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    assert cli._root_flag() == " --allow-root"
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert cli._root_flag() == ""
    makefile = (ROOT / "Makefile").read_text()
    assert "--allow-root" in makefile and "test-fast:" in makefile
