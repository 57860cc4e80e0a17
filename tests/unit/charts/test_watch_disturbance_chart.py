"""The watch-set disturbance chart reads ``IsolatedMap.watch_frame()``; labels stay text."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import probekit as pk
from probekit import charts
from probekit.charts.export import Chart
from probekit.errors import InputError

HOSTILE = "</script><script>alert(1)</script>"
pytestmark = pytest.mark.filterwarnings("ignore:prompt .* is tokenised:UserWarning")


@pytest.fixture
def frame() -> pd.DataFrame:
    """A watch frame as ``watch_frame()`` lays it out, with a group and a colour column."""
    return pd.DataFrame(
        {
            "example": [HOSTILE, HOSTILE, "b → c", "b → c", "d → e", "d → e"],
            "watch": ["w1", "w2", "w1", "w2", "w1", "w2"],
            "kl": [1e-7, 0.0, 2e-2, 3e-4, 5e-1, 1e-3],
            "dlogp": [-1e-6, 0.0, -0.5, -1e-2, -2.0, 1e-3],
            "top1_flip": [0, 0, 0, 0, 1, 0],
            "method": ["exact"] * 6,
            "group": ["agrees", "agrees", "contradicts", "contradicts", "new", "new"],
            "same_family": [True, False, True, False, True, False],
        }
    )


def _rows(spec: dict) -> list[dict]:
    return spec["datasets"][spec["data"]["name"]]


def test_one_tick_per_pair_on_a_log_kl_axis_by_group(frame):
    chart = charts.watch_disturbance(frame, color="same_family")
    assert isinstance(chart, Chart)
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "tick"
    enc = spec["encoding"]
    assert (enc["x"]["field"], enc["x"]["type"]) == ("kl", "quantitative")
    assert enc["x"]["scale"] == {"type": "log"}
    assert (enc["y"]["field"], enc["y"]["type"]) == ("group", "nominal")
    assert (enc["color"]["field"], enc["color"]["title"]) == ("same_family", "same family")
    assert [t["field"] for t in enc["tooltip"]] == ["example", "watch", "kl", "dlogp"]
    assert spec["title"] == "watch-set KL per (example, watch item)"
    rows = _rows(spec)
    # the pair with kl == 0 cannot sit on a log axis; every other pair is one tick
    assert [r["kl"] for r in rows] == [1e-7, 2e-2, 3e-4, 5e-1, 1e-3]
    assert [r["group"] for r in rows] == ["agrees", "contradicts", "contradicts", "new", "new"]
    assert [r["same_family"] for r in rows] == [True, True, False, True, False]


def test_without_a_group_column_one_row_and_no_colour(frame):
    enc = charts.watch_disturbance(frame.drop(columns="group")).to_dict()["encoding"]
    assert "y" not in enc and "color" not in enc
    enc = charts.watch_disturbance(frame, y=None).to_dict()["encoding"]
    assert "y" not in enc


def test_missing_columns_are_named(frame):
    with pytest.raises(InputError, match=r"\['kl'\].*watch_frame"):
        charts.watch_disturbance(frame.drop(columns="kl"))
    with pytest.raises(InputError, match="colour"):
        charts.watch_disturbance(frame, color="family")


def test_hostile_label_is_data_in_the_spec_and_escaped_in_html(frame):
    chart = charts.watch_disturbance(frame)
    assert HOSTILE in {r["example"] for r in _rows(chart.to_dict())}
    html = chart.to_html()
    assert "</script><script>alert" not in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in html


def test_reads_a_real_watch_frame_and_renders_offline(tiny_gpt2):
    vlc = pytest.importorskip("vl_convert")
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="sgd", lr=0.05, watch=["the cat says", "bob lives"])
    examples = [pk.Example("the dog says", " woof"), pk.Example("anna lives in", " rome")]
    wf = pk.isolated_map(probe, examples).watch_frame().assign(group=["a", "a", "b", "b"])
    chart = charts.watch_disturbance(wf)
    rows = _rows(chart.to_dict())
    assert len(rows) == int((wf.kl > 0).sum()) > 0
    assert json.loads(json.dumps(rows))[0]["watch"] in set(wf.watch)
    svg = vlc.vegalite_to_svg(chart.to_dict())
    assert svg.startswith("<svg") and "kl (log scale)" in svg
