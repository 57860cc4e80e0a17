"""The dataset-map and race charts read their results' frames; labels stay literal text."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import probekit as pk
from probekit import charts
from probekit.charts.export import FacetChart, LayerChart
from probekit.results.labels import example_label

HOSTILE = "<img src=x onerror=alert(1)>"
pytestmark = pytest.mark.filterwarnings("ignore:prompt .* is tokenised:UserWarning")


def _rows(spec: dict, part: dict) -> list[dict]:
    return spec["datasets"][part["data"]["name"]]


@pytest.fixture
def probe(tiny_gpt2):
    model, tok = tiny_gpt2
    return pk.Probe(model, tok, optimizer="sgd", lr=0.05, watch=["the cat says"])


@pytest.fixture
def examples():
    return [pk.Example(HOSTILE, " woof"), pk.Example("the dog says", " woof"),
            pk.Example("bob lives in", " rome")]  # fmt: skip


@pytest.fixture
def mapped(probe, examples):
    return pk.dataset_map(probe, examples, passes=2).to_frame()


def test_dataset_map_plots_every_example_by_variability_and_confidence(mapped, examples):
    chart = charts.dataset_map(mapped)
    assert isinstance(chart, LayerChart)
    spec = chart.to_dict()
    points = spec["layer"][-1]  # drawn last: the points sit over the notes
    assert points["encoding"]["x"]["field"] == "variability"
    assert points["encoding"]["y"]["field"] == "confidence"
    assert points["encoding"]["x"]["scale"]["domain"] == [0, 0.5]  # the whole range of a std
    assert points["encoding"]["y"]["scale"]["domain"] == [0, 1]
    color = points["encoding"]["color"]
    assert (color["field"], color["type"]) == ("correctness", "ordinal")  # a share of P passes
    assert "label" in [t["field"] for t in points["encoding"]["tooltip"]]
    rows = spec["datasets"][spec["data"]["name"]]
    assert [r["label"] for r in rows] == [example_label(e.prompt, e.target) for e in examples]
    assert [r["confidence"] for r in rows] == pytest.approx(list(mapped.confidence))
    assert [r["variability"] for r in rows] == pytest.approx(list(mapped.variability))


def test_dataset_map_names_the_three_regions_without_thresholds(mapped):
    spec = charts.dataset_map(mapped).to_dict()
    notes = [r for part in spec["layer"][:-1] for r in _rows(spec, part)]
    assert {r["note"] for r in notes} == {"easy-to-learn", "hard-to-learn", "ambiguous"}
    where = {r["note"]: (r["variability"], r["confidence"]) for r in notes}
    assert where["easy-to-learn"][1] > 0.9 > 0.1 > where["hard-to-learn"][1]
    assert where["ambiguous"][0] > 0.4 > where["easy-to-learn"][0]  # at the edges of the axes
    assert not any(key in json.dumps(spec) for key in ('"rule"', '"rect"')), "no boundary drawn"


def test_dataset_map_colours_and_splits_by_user_columns(mapped):
    frame = pd.concat([mapped.assign(lr=0.01), mapped.assign(lr=0.003)])
    frame["group"] = ["a", "b", "c"] * 2
    chart = charts.dataset_map(frame, color="group", column="lr", title="two maps")
    assert isinstance(chart, FacetChart)
    spec = chart.to_dict()
    assert spec["facet"] == {"field": "lr", "type": "nominal", "title": "learning rate"}
    assert spec["spec"]["layer"][-1]["encoding"]["color"]["field"] == "group"
    assert spec["spec"]["layer"][-1]["encoding"]["color"]["type"] == "nominal"
    assert len(spec["datasets"][spec["data"]["name"]]) == 6
    with pytest.raises(pk.InputError, match=r"\['nope'\]"):
        charts.dataset_map(frame, color="nope")


def test_hostile_labels_are_data_in_the_spec_and_escaped_in_html(mapped):
    chart = charts.dataset_map(mapped.assign(lr=0.01), column="lr")
    assert json.dumps(HOSTILE)[1:-1] in json.dumps(chart.to_dict())  # verbatim, as a value
    for built in (chart, charts.dataset_map(mapped)):
        html = built.to_html()
        assert "<img" not in html and "\\u003cimg src=x onerror=alert(1)\\u003e" in html


@pytest.fixture
def races(probe, examples):
    orders = ["given", "hard_to_easy", HOSTILE]
    frames = []
    for seed in range(2):
        result = pk.race(probe, examples, orders={o: p for o, p in zip(
            orders, ([0, 1, 2], [2, 1, 0], [1, 0, 2]), strict=True)}, seed=seed)  # fmt: skip
        frames.append(result.summary().assign(lr=0.05, draw=seed))
    return pd.concat(frames, ignore_index=True)


def test_race_summary_draws_a_line_per_order_across_draws(races):
    spec = charts.race_summary(races).to_dict()
    enc = spec["encoding"]
    assert spec["mark"] == {"type": "line", "point": True}
    assert (enc["x"]["field"], enc["x"]["type"]) == ("draw", "ordinal")
    assert enc["y"]["field"] == "final_loss" and "scale" not in enc["y"]
    assert enc["color"]["field"] == "order"
    assert enc["column"]["field"] == "lr" and enc["column"]["title"] == "learning rate"
    assert spec["title"] == "final loss per draw and order"
    rows = spec["datasets"][spec["data"]["name"]]
    assert [r["final_loss"] for r in rows] == pytest.approx(list(races.final_loss))
    assert HOSTILE in {r["order"] for r in rows}
    assert "<img" not in charts.race_summary(races).to_html()


def test_race_summary_reads_the_long_frame_and_one_race(probe, examples, races):
    result = pk.race(probe, examples, orders=["given", "hard_to_easy"])
    long = result.to_frame().assign(draw=0)
    spec = charts.race_summary(long, metric="path_length", log=True).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    expected = [t.summary()["path_length"] for t in result.trajectories]
    assert [r["path_length"] for r in rows] == pytest.approx(expected)
    assert spec["encoding"]["y"]["scale"] == {"type": "log"}
    assert "column" not in spec["encoding"], "no lr column: one panel"
    one = charts.race_summary(result.summary()).to_dict()  # no draw column: one race
    assert one["mark"]["type"] == "point" and one["encoding"]["x"]["field"] == "order"
    with pytest.raises(pk.InputError, match="final_kl"):
        charts.race_summary(races, metric="no_such_metric")
    with pytest.raises(pk.InputError, match="'curriculum'"):
        charts.race_summary(races, color="curriculum")


def test_both_charts_render_offline(mapped, races):
    vlc = pytest.importorskip("vl_convert")
    frame = mapped.assign(lr=0.01)
    for chart in (charts.dataset_map(frame), charts.dataset_map(frame, column="lr"),
                  charts.race_summary(races)):  # fmt: skip
        svg = vlc.vegalite_to_svg(chart.to_dict())
        assert svg.startswith("<svg") and "<img" not in svg
    svg = vlc.vegalite_to_svg(charts.dataset_map(frame).to_dict())
    assert all(note in svg for note in ("easy-to-learn", "hard-to-learn", "ambiguous"))
