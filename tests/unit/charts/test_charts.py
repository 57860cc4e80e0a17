"""Charts are pure functions of result frames; hostile tokens stay literal text."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import probekit as pk
from probekit import charts
from probekit.results.labels import example_label

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "😀 ‏مرحبا", "[EOS]"]


@pytest.fixture
def result(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=[*HOSTILE, "the cat says"])
    return probe.step(pk.Example("the dog says", " woof"))


def test_builders_return_specs_over_the_frames(result):
    frame = result.to_frame()
    specs = {
        "layers": charts.delta_by_layer(frame).to_dict(),
        "watch": charts.watch_shift(frame).to_dict(),
        "drift": charts.hidden_drift(frame).to_dict(),
        "topk": charts.topk_bars(result.topk_frame(), result.watch[0].label).to_dict(),
    }
    layers = specs["layers"]["datasets"][specs["layers"]["data"]["name"]]
    assert {row["label"] for row in layers} == set(result.layers)
    assert all(row["metric"] == "delta_l2" for row in layers)
    drift = specs["drift"]["datasets"][specs["drift"]["data"]["name"]]
    assert len(drift) == len(result.rows) * len(result.watch[0].drift)


def test_hostile_labels_are_data_not_markup(result):
    spec = json.dumps(charts.watch_shift(result.to_frame()).to_dict())
    for text in HOSTILE:
        assert json.dumps(text)[1:-1] in spec  # present verbatim as a JSON string value


def test_frame_columns_are_stable(result):
    frame = result.to_frame()
    assert list(frame.columns) == ["step", "metric", "scope", "label", "layer", "value"]
    assert set(frame["scope"]) == {"example", "total", "layer", "tensor", "watch"}
    assert frame["value"].dtype.kind == "f"
    assert isinstance(pd.concat([frame, frame]), pd.DataFrame)


def test_dynamics_builders_read_isolated_maps_and_streams(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(
        model, tok, lr=0.05, watch=["the cat says", pk.Example("bob lives in", " rome")]
    )
    examples = [pk.Example(t, " woof") for t in HOSTILE]
    frame = pk.isolated_map(probe, examples).to_frame().assign(group="hostile")
    spec = charts.update_vs_disturbance(frame, color="group").to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [r["label"] for r in rows] == [r for r in frame.label if r], "labels kept verbatim"
    assert spec["encoding"]["x"]["scale"]["type"] == "log"
    with probe.checkpoint():
        trajectory = probe.run(examples, progress=False)
    spec = charts.stream(trajectory.to_frame(), metric="path_length").to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [r["value"] for r in rows] == pytest.approx([s.path_length for s in trajectory.stream])
    assert {r["label"] for r in rows} == {example_label(e.prompt, e.target) for e in examples}


def test_log_axes_leave_out_what_they_cannot_show(result):
    frame = result.to_frame()
    spec = charts.delta_by_layer(frame, log=True).to_dict()
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    spec = charts.watch_shift(frame, metric="kl", log=True).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert spec["encoding"]["x"]["scale"]["type"] == "log"
    assert all(r["value"] > 0 for r in rows)
    assert "scale" not in charts.watch_shift(frame, metric="kl").to_dict()["encoding"]["x"]
