"""Write the JupyterLab extension's generated inputs: its chart templates and test fixtures.

* ``labextension/src/renderer/templates.ts``: the board's Vega-Lite specs
  (``probekit.charts.board``, log scales on, as the board starts) as fixed TypeScript
  constants, so saved results are drawn exactly like the live board.
* ``labextension/test/fixtures/``: a session file and a board snapshot bundle written from
  real steps on the demo model, which the TypeScript tests validate against the same
  JSON Schemas (the round trip of the formats).

Run from the repository root: ``python scripts/extension_assets.py [templates|fixtures]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "labextension" / "src" / "renderer" / "templates.ts"
FIXTURES = ROOT / "labextension" / "test" / "fixtures"
HEADER = """\
/**
 * The board's chart templates: fixed Vega-Lite specs, generated from probekit/charts/board.py
 * by scripts/extension_assets.py (do not edit by hand; a Python test checks they are current).
 * Each reads the named dataset "rows" and the param "selected_step"; nothing in a file
 * changes them, saved rows only fill them.
 */
"""


def templates_source() -> str:
    """The TypeScript module holding every panel's spec."""
    from probekit.charts.board import SPECS

    specs: dict[str, Any] = {}
    for name, build in SPECS.items():
        spec = build()
        spec.pop("$schema", None)
        specs[name] = spec
    body = json.dumps(specs, indent=2, ensure_ascii=False, sort_keys=True)
    return f"{HEADER}\nexport const TEMPLATES = {body} as const;\n"


def write_templates() -> Path:
    TEMPLATES.write_text(templates_source(), encoding="utf-8")
    return TEMPLATES


def write_fixtures() -> list[Path]:
    """A session file and a board snapshot from three steps on the demo model."""
    import probekit as pk
    from probekit.results import panels
    from probekit.results.snapshot import board_snapshot
    from probekit.session.saving import describe_model

    model, tok = pk.load_demo()
    probe = pk.Probe(
        model,
        tok,
        lr=0.05,
        watch=[("The capital of France is", " paris"), ("2 plus 3 is", " 5")],
        token_grad=True,
    )
    probe.step(pk.Example("2 plus 2 is", " 5"))
    probe.step(pk.Example("2 plus 2 is", " 4"), commit=True)
    probe.step(pk.Example("The capital of France is", " oslo"), commit=True)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    session = probe.save(FIXTURES / "demo.probekit.json")
    newest = probe.history[-1]
    rows: dict[str, list[dict[str, Any]]] = {
        "timeline": [r for result in probe.history for r in panels.timeline(result)],
        "layers": [r for result in probe.history for r in panels.layers(result)],
        "watch": panels.watch(newest),
        "topk": panels.topk(newest, newest.rows[0].label),
        "drift": panels.drift(newest),
        # ‖θ_t − θ₀‖ is measured by the board from its undo snapshots; left unmeasured here.
        "trajectory": panels.trajectory(probe.committed, [(None, None)] * len(probe.committed)),
        "tokens": panels.step_tokens(newest),
    }
    settings = {"optimizer": probe.spec.name, "lr": probe.spec.lr, "steps": probe.steps}
    bundle = board_snapshot(
        rows, model=describe_model(model), settings=settings, selected_step=newest.step
    )
    snapshot = FIXTURES / "demo.board.json"
    snapshot.write_text(json.dumps(bundle, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    return [session, snapshot]


if __name__ == "__main__":
    what = sys.argv[1:] or ["templates", "fixtures"]
    if "templates" in what:
        print(write_templates())
    if "fixtures" in what:
        for path in write_fixtures():
            print(path, path.stat().st_size, "bytes")
