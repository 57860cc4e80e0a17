"""Write the JupyterLab extension's generated inputs: its chart templates and test fixtures.

* ``labextension/src/renderer/templates.ts``: the board's Vega-Lite specs
  (``probekit.charts.board``, log scales on, as the board starts) as fixed TypeScript
  constants, so saved results are drawn exactly like the live board.
* ``labextension/test/fixtures/``: a session file, a board snapshot bundle and single
  result bundles (one of each kind) written from real steps on the demo model, which the
  TypeScript tests validate against the same JSON Schemas (the round trip of the formats);
  and ``schema_cases.json``: variations of each, with the verdict of the reference
  validator (jsonschema), which the TypeScript validator must reproduce.

Run from the repository root:
``python scripts/extension_assets.py [templates|fixtures|results]`` (``results`` writes the
result bundles and the cases only).
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
    return [session, snapshot, *write_result_fixtures()]


def write_result_fixtures() -> list[Path]:
    """One result bundle of each kind from real steps on the demo model, then the cases."""
    import probekit as pk
    from probekit.results.result_bundle import result_bundle

    model, tok = pk.load_demo()
    watch = [("The capital of France is", " paris"), ("2 plus 3 is", " 5")]
    probe = pk.Probe(model, tok, lr=0.05, watch=watch, token_grad=True)
    step = probe.step(pk.Example("2 plus 2 is", " 5"))
    run = probe.run(
        [pk.Example("2 plus 2 is", " 4"), pk.Example("The capital of France is", " oslo")],
        progress=False,
    )
    attribution = probe.attribute("2 plus 2 is", " 4", "grad_x_input")
    shift = probe.attribution_shift("2 plus 2 is", " 4", pk.Example("2 plus 2 is", " 5"))
    bundles = [result_bundle(r) for r in (step, run, attribution, shift)]
    results = FIXTURES / "demo.results.json"
    results.write_text(json.dumps(bundles, ensure_ascii=False, allow_nan=False), "utf-8")
    return [results, write_cases()]


def write_cases() -> Path:
    """``schema_cases.json`` from the fixture files on disk."""

    def read(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))

    cases = FIXTURES / "schema_cases.json"
    value = schema_cases(
        read("demo.board.json"), read("demo.probekit.json"), read("demo.results.json")[0]
    )
    cases.write_text(json.dumps(value), "utf-8")
    return cases


def _changed(value: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    """A deep copy of ``value`` with the field at ``path`` (``a.b.0.c``) set, or deleted."""
    copy = json.loads(json.dumps(value))
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if new is _DELETE:
        del target[key]
    else:
        target[key] = new
    return copy


_DELETE = object()
# settings.lora as a LoraProbe writes it (LoraProbe.lora_settings)
_LORA: dict[str, Any] = {
    "r": 4,
    "alpha": 8.0,
    "target_modules": ["c_attn", "c_fc"],
    "dropout": 0.0,
    "bias": "none",
    "fan_in_fan_out": True,
    "use_rslora": False,
    "use_dora": False,
    "exclude_modules": None,
    "rank_pattern": {"c_fc": 2},
    "alpha_pattern": {},
    "seed": 0,
}
BOARD_CHANGES: list[tuple[str, Any]] = [
    ("version", 2),
    ("format", "probekit.session"),
    ("spec", {"mark": "text"}),
    ("panels.tokens", _DELETE),
    ("panels.watch.0.kl", "1e400"),
    ("panels.watch.0.kl", None),
    ("panels.layers.0.step", -1),
    ("selected_step", 1.5),
    ("selected_step", None),
    ("panels.timeline.0.kind", "evil"),
    ("panels.timeline.0.href", "javascript:alert(1)"),
    ("panels.topk.0.token", "x" * 4097),
    ("panels.topk.0.token", "😀" * 4096),  # 4096 code points (8192 UTF-16 units): fits
    ("panels.topk.0.token", "😀" * 4097),
    ("panels.topk.0.rank", 1.0),
    ("panels.tokens.0.step", None),
    ("model.source", "evil"),
    ("model.n_params", -5),
    ("model.revision", None),
    ("settings.extra", [1, "a", None]),
    ("settings.nested", {"a": 1}),
    ("settings." + "k" * 65, 1),
    ("settings.lr", "0.1"),
    ("settings.lora", _LORA),
    ("settings.lora", {**_LORA, "target_modules": "all-linear", "seed": None}),
    ("settings.lora", {**_LORA, "r": 0}),
    ("settings.lora", {k: v for k, v in _LORA.items() if k != "alpha"}),
    ("settings.lora", {**_LORA, "rank_pattern": {"c_attn": "8"}}),
    ("settings.lora", [4]),
]
RESULT_CHANGES: list[tuple[str, Any]] = [
    ("version", 2),
    ("format", "probekit.board"),
    ("kind", "evil"),
    ("title", "t" * 4097),
    ("panels.spec", []),
    ("panels.trajectory", []),
    ("panels.tokens", _DELETE),
    ("panels.watch.0.kl", "1e400"),
    ("panels.timeline.0.href", "javascript:alert(1)"),
    ("summary.0.value", {"a": 1}),
    ("summary.0.value", "x" * 4097),
    ("summary.0.name", "n" * 65),
    ("summary.0.extra", 1),
    ("selected_step", -1),
    ("model", {"name": "x"}),
]
SESSION_CHANGES: list[tuple[str, Any]] = [
    ("version", 99),
    ("results.0.prompt", _DELETE),
    ("results.0.example.topk_before.0", ["a", 0.5, "extra"]),
    ("results.0.example.topk_before.0", [1, 0.5]),
    ("results.0.example", None),
    ("results.0.example.drift.0.layer", _DELETE),
    ("results.0.tensors.0.evil", 1),
    ("results.0.notes", [1]),
    ("results.0.token_grad", [None, 1.5]),
    ("meta.model", "gpt2"),
    ("meta.model", {"revision": "abc"}),
    ("meta.anything", {"deep": [{"x": None}]}),
    ("meta.settings", {"watch": [["a", "b"]]}),
    ("meta.probekit_version", 3),
    ("meta.settings.lora", _LORA),
    ("meta.settings.lora", {**_LORA, "target_modules": "all-linear", "seed": None}),
    ("meta.settings.lora", {**_LORA, "target_modules": None, "extra": [1]}),
    ("meta.settings.lora", {**_LORA, "r": 0}),
    ("meta.settings.lora", {**_LORA, "r": 2.5}),
    ("meta.settings.lora", {**_LORA, "alpha": "16"}),
    ("meta.settings.lora", {**_LORA, "dropout": 1.5}),
    ("meta.settings.lora", {**_LORA, "target_modules": [1]}),
    ("meta.settings.lora", {**_LORA, "rank_pattern": {"c_attn": "8"}}),
    ("meta.settings.lora", {k: v for k, v in _LORA.items() if k != "alpha"}),
    ("meta.settings.lora", [4]),
]


def schema_cases(
    bundle: dict[str, Any], session: dict[str, Any], result: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each variation with the reference validator's verdict."""
    from probekit.results import validation

    bundle = {**bundle, "panels": {name: rows[:2] for name, rows in bundle["panels"].items()}}
    result = {**result, "panels": {name: rows[:2] for name, rows in result["panels"].items()}}
    session = {**session, "results": session["results"][:1]}
    session["results"][0] = {
        **session["results"][0],
        "tensors": session["results"][0]["tensors"][:2],
    }
    cases = []
    for kind, base, changes in (
        ("board", bundle, BOARD_CHANGES),
        ("result", result, RESULT_CHANGES),
        ("session", session, SESSION_CHANGES),
    ):
        for path, new in [("", None), *changes]:
            value = _changed(base, path, new) if path else base
            if not path:
                name = f"{kind}: unchanged"
            elif new is _DELETE:
                name = f"{kind}: {path} deleted"
            else:
                name = f"{kind}: {path[:40]} = {json.dumps(new, ensure_ascii=False)[:40]}"
            valid = not validation.errors(value, kind)
            cases.append({"kind": kind, "name": name, "valid": valid, "value": value})
    return cases


if __name__ == "__main__":
    what = sys.argv[1:] or ["templates", "fixtures"]
    if "templates" in what:
        print(write_templates())
    written = write_fixtures() if "fixtures" in what else []
    if "results" in what and "fixtures" not in what:
        written = write_result_fixtures()
    for path in written:
        print(path, path.stat().st_size, "bytes")
