"""The board's Vega-Lite specs: named data, the selected-step param, no title of their own
(the panel's heading is the one title), log scales, lines broken at missing values; and the
widget layer's imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from probekit.charts import board as specs

LOG_SCALED = ("timeline", "layers", "watch", "drift")

SAMPLE = {
    "timeline": [{"step": 0, "kind": "isolated", "status": "ok", "label": "<script>x</script>",
                  "delta_l2": 1e-4, "delta_l1": 0.1, "loss_before": 1.0, "loss_after": 0.9},
                 {"step": 1, "kind": "committed", "status": "ok", "label": "b", "delta_l2": 0.5,
                  "delta_l1": 30.0, "loss_before": 2.0, "loss_after": None}],
    "layers": [{"step": 0, "layer": "block.0", "layer_index": 1, "delta_l2": 1e-5,
                "delta_rel": 1e-6}],
    "watch": [{"step": 1, "label": "<b>bold</b>", "kl": 1e-6, "dlogp_target": None,
               "top1_flip": False, "logit_l2": 0.1}],
    "topk": [{"step": 1, "label": "a", "when": "before", "rank": 0, "token": "<i>", "prob": 0.4}],
    "drift": [{"step": 1, "label": "a", "layer": "embeddings", "layer_index": 0,
               "cos_drift": 1e-5, "rel_l2_drift": 1e-3}],
    "trajectory": [{"step": 1, "path_length": 0.5, "displacement": 0.5, "straightness": 1.0,
                    "direction_volatility": 0.0, "magnitude_volatility": None}],
    "tokens": [{"step": 2, "method": "ig", "when": "before", "position": 0, "token": "<script>",
                "value": 0.3}],
}  # fmt: skip


def _parts(spec):
    yield spec
    for key in ("vconcat", "hconcat", "layer"):
        for part in spec.get(key, []):
            yield from _parts(part)


@pytest.mark.parametrize("name", list(specs.SPECS))
def test_named_data_selected_param_and_no_title_of_its_own(name):
    spec = specs.SPECS[name]()
    assert spec["data"] == {"name": "rows"}
    assert "datasets" not in spec
    assert all("data" not in part for part in list(_parts(spec))[1:]), "parts read the rows"
    assert {"name": "selected_step", "value": None} in spec["params"]
    assert [part for part in _parts(spec) if "title" in part] == [], (
        "the panel's heading is the chart's one title"
    )


@pytest.mark.parametrize("name", LOG_SCALED)
def test_log_scales_toggle(name):
    on, off = json.dumps(specs.SPECS[name](True)), json.dumps(specs.SPECS[name](False))
    assert '"type": "log"' in on and '"type": "log"' not in off


@pytest.mark.parametrize("name", list(specs.SPECS))
def test_renders_offline_with_labels_as_text(name):
    vlc = pytest.importorskip("vl_convert")
    spec = specs.SPECS[name]()
    spec["data"] = {"values": SAMPLE[name]}
    spec["params"][0]["value"] = 1
    svg = vlc.vegalite_to_svg(spec)
    assert "<script" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "role-title" not in svg  # no chart title drawn: the panel's heading is the title
    if name == "tokens":  # tooltips are not drawn; axis labels are
        assert "step 2" in svg


def _line_paths(svg: str) -> list[str]:
    """The ``d`` of every line drawn (one per metric), in drawing order."""
    groups = re.findall(r'<g class="mark-line[^"]*"[^>]*>(.*?)</g>', svg, re.S)
    return [d for group in groups for d in re.findall(r' d="([^"]*)"', group)]


@pytest.mark.parametrize("log", [False, True])
def test_trajectory_lines_break_where_a_value_is_missing(log):
    """A step without a value ends its line; the next value starts a new one (no bridge)."""
    vlc = pytest.importorskip("vl_convert")
    missing = {"displacement": {2, 3}, "direction_volatility": {5}}
    rows = [
        {
            "step": 10 + 2 * s,  # sparse steps: the isolated ones in between have no row
            "path_length": float(s + 1),
            "displacement": None if s in missing["displacement"] else float(s + 1) / 2,
            "straightness": None,
            # 0 cannot sit on a log axis: with log on, it breaks the line too
            "direction_volatility": None if s in missing["direction_volatility"] else 0.1 * s,
            "magnitude_volatility": 0.5,
        }
        for s in range(8)
    ]
    spec = specs.trajectory(log)
    spec["data"] = {"values": rows}
    paths = _line_paths(vlc.vegalite_to_svg(spec))
    # path_length, displacement | direction_volatility, magnitude_volatility
    assert [d.count("M") for d in paths] == [1, 2, 2, 1]
    # each piece joins only neighbouring rows: 2 + 4 points for displacement
    assert [piece.count("L") + 1 for piece in paths[1].split("M")[1:]] == [2, 4]
    # volatility is never on a log axis: step 0's 0.0 is drawn, step 5's gap breaks it
    assert [piece.count("L") + 1 for piece in paths[2].split("M")[1:]] == [5, 2]


def test_widget_layer_imports_no_torch():
    code = (
        "import sys, json\n"
        "import probekit.widgets.board, probekit.widgets.stream_chart\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    roots = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "torch" not in roots and "transformers" not in roots


def test_panel_rows_import_nothing_heavy():
    """Panel rows are plain results (altair itself loads IPython, so charts are not checked)."""
    code = (
        "import sys, json\n"
        "import probekit.results.panels\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    roots = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not roots & {"ipywidgets", "IPython", "anywidget", "torch", "altair"}
