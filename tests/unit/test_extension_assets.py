"""The extension's generated inputs are current: its chart templates are the board's specs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from probekit.results.snapshot import validate_snapshot

ROOT = Path(__file__).resolve().parents[2]


def _assets():
    spec = importlib.util.spec_from_file_location(
        "extension_assets", ROOT / "scripts" / "extension_assets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_extension_draws_with_the_boards_own_chart_specs() -> None:
    assets = _assets()
    current = assets.TEMPLATES.read_text(encoding="utf-8")
    assert current == assets.templates_source(), (
        "labextension/src/renderer/templates.ts is out of date with probekit/charts/board.py: "
        "run `python scripts/extension_assets.py templates` and rebuild the extension"
    )


@pytest.mark.parametrize("name", ["demo.board.json", "demo.probekit.json", "demo.results.json"])
def test_the_committed_fixtures_fit_the_schemas(name: str) -> None:
    from probekit.results.result_bundle import KINDS, validate_result
    from probekit.results.session_reader import load_session

    path = ROOT / "labextension" / "test" / "fixtures" / name
    if name.endswith(".board.json"):
        validate_snapshot(json.loads(path.read_text(encoding="utf-8")))
    elif name.endswith(".results.json"):
        bundles = json.loads(path.read_text(encoding="utf-8"))
        assert [validate_result(b)["kind"] for b in bundles] == list(KINDS)
    else:
        assert len(load_session(path).results) == 3


def test_the_schema_cases_carry_the_reference_validators_verdicts() -> None:
    """The TypeScript validator is checked against these verdicts: they must be current."""
    from probekit.results import validation

    path = ROOT / "labextension" / "test" / "fixtures" / "schema_cases.json"
    cases = json.loads(path.read_text(encoding="utf-8"))
    assert {(c["kind"], c["valid"]) for c in cases} == {
        ("board", True), ("board", False), ("result", True), ("result", False),
        ("session", True), ("session", False),
    }  # fmt: skip
    stale = [
        c["name"] for c in cases if (not validation.errors(c["value"], c["kind"])) != c["valid"]
    ]
    assert stale == [], "run `python scripts/extension_assets.py fixtures`: verdicts changed"
