"""Board snapshot bundles: built from real probe results, checked against the schema."""

from __future__ import annotations

import copy
import json
import math

import pytest

import probekit as pk
from probekit.results import snapshot, validation
from probekit.results.probe import ProbeResult

MODEL = {
    "name": "tiny",
    "revision": None,
    "source": "object",
    "device": "cpu",
    "dtype": "float32",
    "n_params": 1234,
}
SETTINGS = {"optimizer": "sgd", "lr": 0.05, "steps": 1, "watch": ["the cat says"]}


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def rows(results: list[ProbeResult]) -> dict[str, list[dict]]:
    """Panel rows in the shapes the board's panels produce (one function per panel)."""
    panels: dict[str, list[dict]] = {name: [] for name in snapshot.PANELS}
    for r in results:
        total = r.total
        panels["timeline"].append(
            {
                "step": r.step,
                "kind": "committed" if r.committed else ("isolated" if r.ok else "failed"),
                "status": r.status,
                "label": f"{r.prompt} → {r.target}",
                "delta_l2": _num(total.delta_l2),
                "delta_l1": _num(total.delta_l1),
                "loss_before": _num(r.loss_before),
                "loss_after": _num(r.loss_after),
            }
        )
        for i, layer in enumerate(r.layers):
            summary = r.layer(layer)
            panels["layers"].append(
                {
                    "step": r.step,
                    "layer": layer,
                    "layer_index": i,
                    "delta_l2": _num(summary.delta_l2),
                    "delta_rel": _num(summary.delta_rel),
                }
            )
        for w in r.watch:
            panels["watch"].append(
                {
                    "step": r.step,
                    "label": w.label,
                    "kl": _num(w.kl),
                    "dlogp_target": _num(w.dlogp_target),
                    "top1_flip": w.top1_flip,
                    "logit_l2": _num(w.logit_l2),
                }
            )
            for when, pairs in (("before", w.topk_before), ("after", w.topk_after)):
                for rank, (token, prob) in enumerate(pairs):
                    panels["topk"].append(
                        {
                            "step": r.step,
                            "label": w.label,
                            "when": when,
                            "rank": rank,
                            "token": token,
                            "prob": _num(prob),
                        }
                    )
            for i, d in enumerate(w.drift):
                panels["drift"].append(
                    {
                        "step": r.step,
                        "label": w.label,
                        "layer": d.layer,
                        "layer_index": i,
                        "cos_drift": _num(d.cos_drift),
                        "rel_l2_drift": _num(d.rel_l2_drift),
                    }
                )
        for position, (token, value) in enumerate(zip(r.input_tokens, r.token_grad, strict=True)):
            panels["tokens"].append(
                {
                    "step": r.step,
                    "method": "token_grad",
                    "when": "current",
                    "position": position,
                    "token": token,
                    "value": _num(value),
                }
            )
    panels["trajectory"].append(
        {
            "step": results[-1].step,
            "path_length": 1.0,
            "displacement": 0.5,
            "straightness": 0.5,
            "direction_volatility": math.nan,
            "magnitude_volatility": None,
        }
    )
    return panels


@pytest.fixture
def results(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(
        model, tok, lr=0.05, token_grad=True, watch=["the cat says", "😀 <script>x</script>"]
    )
    return [
        probe.step(pk.Example("the dog says", " woof"), commit=True),
        probe.step(pk.Example('"><img src=x onerror=alert(1)>', " meow")),
    ]


def test_a_bundle_from_real_results_is_valid_strict_json(results):
    panels = rows(results)
    bundle = snapshot.board_snapshot(panels, model=MODEL, settings=SETTINGS, selected_step=1)
    assert bundle["format"] == "probekit.board" and bundle["version"] == 1
    assert bundle["created"].endswith("Z") and bundle["probekit_version"] == pk.__version__
    assert all(bundle["panels"][name] for name in snapshot.PANELS)
    text = json.dumps(bundle, allow_nan=False)  # strict JSON: NaN became null
    assert bundle["panels"]["trajectory"][0]["direction_volatility"] is None
    again = snapshot.validate_snapshot(text)
    assert again == json.loads(text)
    assert any("<script>x</script>" in row["label"] for row in again["panels"]["watch"])
    assert not validation.errors(again, "board")  # the reference validator agrees


def test_missing_panels_are_empty_and_unknown_ones_refused(results):
    bundle = snapshot.board_snapshot(
        {"timeline": rows(results)["timeline"]}, model=MODEL, settings=SETTINGS, selected_step=None
    )
    assert bundle["panels"]["layers"] == [] and len(bundle["panels"]["timeline"]) == 2
    with pytest.raises(pk.ProbekitError, match="unknown panel"):
        snapshot.board_snapshot({"heatmap": []}, model=MODEL, settings=SETTINGS, selected_step=0)


def test_numpy_scalars_become_plain_json():
    np = pytest.importorskip("numpy")
    row = {
        "step": np.int64(3),
        "path_length": np.float32(1.5),
        "displacement": np.float64("nan"),
        "straightness": 0.0,
        "direction_volatility": 0.1,
        "magnitude_volatility": 0.2,
    }
    bundle = snapshot.board_snapshot(
        {"trajectory": [row]}, model=MODEL, settings=SETTINGS, selected_step=np.int64(3)
    )
    (out,) = bundle["panels"]["trajectory"]
    assert out["step"] == 3 and type(out["step"]) is int and out["displacement"] is None
    json.dumps(bundle, allow_nan=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("panels", "timeline", 0, "kind", "exploded"), r"panels\.timeline\[0\]\.kind"),
        (("panels", "watch", 0, "extra", 1), r"panels\.watch\[0\]: unexpected field"),
        (("panels", "topk", 0, "rank", -1), r"panels\.topk\[0\]\.rank: -1 is out of range"),
        (("panels", "tokens", 0, "method", "shap"), r"panels\.tokens\[0\]\.method"),
        (("panels", "layers", 0, "delta_l2", "big"), r"expected number or null, got string"),
        (("model", "source", "url"), r"model\.source"),
        (("settings", "lr", None), r"settings\.lr: expected number"),
        (("selected_step", "3"), r"selected_step"),
        (("version", 2), r"version 2; this probekit reads version 1"),
        (("format", "probekit.session"), "not a board snapshot"),
    ],
)
def test_invalid_bundles_are_refused_naming_the_field(results, change, message):
    bundle = snapshot.board_snapshot(rows(results), model=MODEL, settings=SETTINGS, selected_step=1)
    bad = copy.deepcopy(bundle)
    node = bad
    *path, key, value = change
    for part in path:
        node = node[part]
    node[key] = value
    with pytest.raises(pk.ProbekitError, match=message):
        snapshot.validate_snapshot(bad)


def test_non_finite_numbers_and_oversized_bundles_are_refused(results, monkeypatch):
    bundle = snapshot.board_snapshot(rows(results), model=MODEL, settings=SETTINGS, selected_step=1)
    bad = copy.deepcopy(bundle)
    bad["panels"]["timeline"][0]["delta_l2"] = math.inf
    with pytest.raises(pk.ProbekitError, match="strict JSON"):
        snapshot.validate_snapshot(bad)
    with pytest.raises(pk.ProbekitError, match="NaN"):
        snapshot.validate_snapshot(json.dumps(bundle).replace("0.05", "NaN", 1))
    with pytest.raises(pk.ProbekitError, match="nested deeper"):
        snapshot.validate_snapshot("[" * 50_000)
    monkeypatch.setattr(snapshot, "MAX_BYTES", 2000)
    with pytest.raises(pk.ProbekitError, match="over the limit of 2,000"):
        snapshot.board_snapshot(rows(results), model=MODEL, settings=SETTINGS, selected_step=1)
    with pytest.raises(pk.ProbekitError, match="larger than the limit"):
        snapshot.validate_snapshot(json.dumps(bundle))
