"""StreamChart, Python side: the messages it sends, its bounded window, selection and export."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from probekit.widgets.stream_chart import MAX_ROWS, MODULE_VERSION, StreamChart

ROOT = Path(__file__).resolve().parents[2]


def spec(**extra):
    base = {
        "data": {"name": "rows"},
        "mark": "point",
        "encoding": {
            "x": {"field": "step", "type": "quantitative"},
            "y": {"field": "v", "type": "quantitative"},
        },
        "params": [{"name": "selected_step", "value": None}],
    }
    return {**base, **extra}


def make(**kwargs):
    """A chart whose outgoing messages are captured instead of sent."""
    chart = StreamChart(spec(), **kwargs)
    sent: list[dict] = []
    chart.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    return chart, sent


def steps(rows):
    return sorted({r["step"] for r in rows})


def test_append_sends_only_the_new_rows_as_a_change():
    chart, sent = make()
    chart.append([{"step": 0, "v": 1.0}])
    chart.append([{"step": 1, "v": 2.0}, {"step": 1, "v": 3.0}])
    assert sent == [
        {"type": "change", "insert": [{"step": 0, "v": 1.0}], "remove": []},
        {"type": "change", "insert": [{"step": 1, "v": 2.0}, {"step": 1, "v": 3.0}], "remove": []},
    ]
    assert chart.rows == [{"step": 0, "v": 1.0}, {"step": 1, "v": 2.0}, {"step": 1, "v": 3.0}]


def test_bytes_sent_counts_the_json_of_data_messages_only():
    chart, sent = make()
    chart.append([{"step": 0, "v": 1.5}])
    chart.select(0)
    expected = len(json.dumps(sent[0], separators=(",", ":")))
    assert chart.bytes_sent == expected


def test_non_finite_floats_become_null_and_numpy_scalars_plain():
    np = pytest.importorskip("numpy")
    chart, sent = make()
    chart.append([{"step": np.int64(0), "v": math.nan, "w": np.float32(0.5), "z": -math.inf}])
    row = sent[0]["insert"][0]
    assert row == {"step": 0, "v": None, "w": 0.5, "z": None}
    assert type(row["step"]) is int
    json.dumps(sent[0], allow_nan=False)  # strict JSON


def test_rows_that_are_not_json_are_refused_clearly():
    chart, _ = make()
    with pytest.raises(TypeError, match=r"row 0\.v is a object"):
        chart.append([{"step": 0, "v": object()}])
    with pytest.raises(TypeError, match="list of dicts"):
        chart.append({"step": 0})
    assert chart.rows == []


def test_window_thins_old_steps_and_keeps_the_newest_at_full_resolution():
    chart, sent = make(window=10)
    for s in range(11):
        chart.append([{"step": s, "v": float(s)}])
    # step 11 overflowed the window of 10: every other step of the older half went, oldest kept
    assert sent[-1] == {"type": "change", "insert": [{"step": 10, "v": 10.0}], "remove": [1, 3, 5]}
    assert steps(chart.rows) == [0, 2, 4, 6, 7, 8, 9, 10]
    for s in range(11, 500):
        chart.append([{"step": s, "v": float(s)}])
    kept = steps(chart.rows)
    assert len(kept) <= 10
    assert kept[0] == 0 and kept[-5:] == [495, 496, 497, 498, 499]


def test_window_replayed_from_messages_matches_rows():
    """Applying every change the way the view does reproduces the Python-side window."""
    chart, sent = make(window=16)
    for s in range(300):
        chart.append([{"step": s, "layer": i, "v": float(i)} for i in range(3)])
    view: list[dict] = []
    for msg in sent:
        drop = set(msg["remove"])
        view = [r for r in view if r["step"] not in drop] + msg["insert"]
    assert sorted(map(json.dumps, view)) == sorted(map(json.dumps, chart.rows))
    assert len(steps(view)) <= 16


def test_never_more_than_max_rows():
    chart, _ = make(window=5000)
    for s in range(40):
        chart.append([{"step": s, "i": i} for i in range(300)])
        assert len(chart.rows) <= MAX_ROWS
    assert steps(chart.rows)[-1] == 39
    with pytest.raises(ValueError, match="at most 5000 rows"):
        chart.append([{"step": 99, "i": i} for i in range(MAX_ROWS + 1)])


def test_a_bulk_append_larger_than_the_window_inserts_only_what_stays():
    chart, sent = make(window=4)
    chart.append([{"step": s} for s in range(10)])
    msg = sent[-1]
    assert [r["step"] for r in msg["insert"]] == steps(chart.rows)
    assert len(steps(chart.rows)) <= 4


def test_replace_sends_a_reset_of_every_row():
    chart, sent = make()
    chart.append([{"step": 0, "v": 1.0}])
    chart.replace([{"step": 3, "v": 9.0}])
    assert sent[-1] == {"type": "reset", "rows": [{"step": 3, "v": 9.0}]}
    assert chart.rows == [{"step": 3, "v": 9.0}]


def test_select_sends_the_signal_value_and_no_data():
    chart, sent = make()
    chart.append([{"step": 0}])
    before = chart.bytes_sent
    chart.select(0)
    chart.select(None)
    assert sent[-2:] == [{"type": "select", "step": 0}, {"type": "select", "step": None}]
    assert chart.bytes_sent == before
    with pytest.raises(TypeError):
        chart.select(1.5)  # type: ignore[arg-type]


def test_a_view_that_renders_gets_the_window_and_the_selection():
    chart, sent = make()
    chart.append([{"step": 0, "v": 1.0}, {"step": 1, "v": 2.0}])
    chart.select(1)
    sent.clear()
    chart._handle_custom_msg({"type": "ready"}, [])
    assert sent == [
        {"type": "reset", "rows": [{"step": 0, "v": 1.0}, {"step": 1, "v": 2.0}]},
        {"type": "select", "step": 1},
    ]


def test_a_click_sets_selected_and_observers_hear_it():
    chart, _ = make()
    heard = []
    chart.observe(lambda change: heard.append(change["new"]), names="selected")
    chart.set_state({"selected": 4})  # what a click in the view syncs
    assert chart.selected == 4 and heard == [4]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"mark": "point", "data": {"values": [{"a": 1}]}}, '"name": "rows"'),
        ({"mark": "point", "data": {"url": "https://example.org/x.json"}}, "URL"),
        ("not a spec", "Vega-Lite dict"),
    ],
)
def test_specs_must_draw_from_the_named_rows(bad, error):
    with pytest.raises((ValueError, TypeError), match=error):
        StreamChart(bad)


def test_layered_specs_may_name_rows_in_a_layer():
    layered = {"layer": [{"data": {"name": "rows"}, "mark": "line"}]}
    assert StreamChart(layered).spec == layered


def test_the_widgets_package_names_stream_chart_lazily():
    import probekit.widgets as w

    assert w.StreamChart is StreamChart
    with pytest.raises(AttributeError):
        _ = w.NotAWidget


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window"):
        StreamChart(spec(), window=0)


def test_export_inlines_the_rows_and_the_selection():
    chart, _ = make()
    chart.append([{"step": s, "v": float(s)} for s in range(3)])
    chart.select(2)
    exported = chart.export_spec()
    assert exported["datasets"]["rows"] == chart.rows
    assert exported["params"][0]["value"] == 2
    assert chart.spec["params"][0]["value"] is None  # the live spec is untouched
    svg = chart.to_svg()
    assert svg.lstrip().startswith("<svg") and svg.count("<path") >= 3
    assert chart.to_png(scale=1)[:8] == b"\x89PNG\r\n\x1a\n"


def test_module_version_matches_the_extension_package():
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["name"] == "probekit"
    assert package["version"] == MODULE_VERSION
    ts = (ROOT / "labextension" / "src" / "version.ts").read_text()
    assert f"MODULE_VERSION = '{MODULE_VERSION}'" in ts


def test_widgets_package_imports_no_torch_and_says_what_is_missing():
    code = (
        "import sys, json; import probekit.widgets.stream_chart; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    env_path = f"{ROOT}"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert "torch" not in json.loads(out.stdout)
    # with ipywidgets hidden, the package says how to install it
    hide = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'ipywidgets' else real(n, *a)\n"
        "import probekit.widgets\n"
    )
    failed = subprocess.run(
        [sys.executable, "-c", hide],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert failed.returncode != 0
    assert "pip install 'ipywidgets" in failed.stderr
