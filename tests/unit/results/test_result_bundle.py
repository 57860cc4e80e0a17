"""Single results in a notebook: a text summary and the versioned result bundle for the renderer.

The bundle of each result kind holds exactly the panel rows ``probekit.results.panels``
gives that result, fits ``result.schema.json``, is strict JSON and bounded in size; the
row definitions are the board snapshot's own.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import pytest

import probekit as pk
from probekit.errors import ProbekitError
from probekit.results import panels, result_bundle, snapshot, validation
from probekit.results.result_bundle import MIME_TYPE, downsample, mimebundle, validate_result
from probekit.results.trajectory import StreamRow, Trajectory

WATCH = [pk.Example("bob lives in", " rome"), "the cow says"]
HOSTILE = '<img src=x onerror="window.__probekit_pwned = 1">'


@pytest.fixture
def probe(tiny_gpt2):
    model, tok = tiny_gpt2
    return pk.Probe(model, tok, optimizer="sgd", lr=0.05, watch=WATCH, token_grad=True)


def roundtrip(bundle: dict) -> dict:
    """As a notebook file keeps it: strict JSON text, read back and validated."""
    return validate_result(json.loads(json.dumps(bundle, allow_nan=False)))


def test_a_probe_step_shows_its_step_panels(probe):
    result = probe.step(pk.Example("the dog says", " woof"), commit=True)
    shown = mimebundle(result)
    assert set(shown) == {MIME_TYPE, "text/plain"}
    bundle = roundtrip(shown[MIME_TYPE])
    assert (bundle["format"], bundle["version"], bundle["kind"]) == (
        "probekit.result",
        1,
        "probe_step",
    )
    assert bundle["selected_step"] == result.step
    expected = {
        "timeline": panels.timeline(result),
        "layers": panels.layers(result),
        "watch": panels.watch(result),
        "topk": panels.topk(result, "example"),
        "drift": panels.drift(result),
        "tokens": panels.step_tokens(result),
    }
    assert bundle["panels"] == expected
    assert all(expected.values()), "every panel of a step has rows here"
    assert "trajectory" not in bundle["panels"]
    text = shown["text/plain"]
    assert text.startswith("probe step 0 (committed, ok): the dog says → woof")
    assert f"‖Δθ‖₂: {result.delta_l2:.4g}" in text
    facts = dict((f["name"], f["value"]) for f in bundle["summary"])
    assert facts["loss before"] == result.loss_before and facts["watch items"] == 2


def test_the_display_formatter_picks_the_bundle(probe):
    from IPython.core.formatters import DisplayFormatter

    result = probe.step(pk.Example("the dog says", " woof"))
    data, _metadata = DisplayFormatter().format(result)
    assert MIME_TYPE in data and data["text/plain"].startswith("probe step 0 (isolated, ok)")
    assert repr(result).startswith("ProbeResult(step=0")  # repr() itself is unchanged


def test_a_trajectory_shows_every_step_and_the_stream_at_its_probe_steps(probe):
    probe.step(pk.Example("the sky is", " blue"))
    run = probe.run(
        [
            pk.Example("the cat says", " meow"),
            pk.Example("the cow says", " moo"),
            pk.Example("alice lives in", " oslo"),
        ],
        progress=False,
    )
    bundle = roundtrip(result_bundle.result_bundle(run))
    assert bundle["kind"] == "trajectory"
    newest = run.steps[-1]
    assert bundle["selected_step"] == newest.step
    assert [r["step"] for r in bundle["panels"]["timeline"]] == [r.step for r in run.steps]
    assert bundle["panels"]["watch"] == panels.watch(newest)
    # stream row i is the i-th committed step: drawn at that step's probe step (1, 2, 3)
    trajectory = bundle["panels"]["trajectory"]
    assert [r["step"] for r in trajectory] == [1, 2, 3]
    for row, stream in zip(trajectory, run.stream, strict=True):
        assert row["path_length"] == pytest.approx(stream.path_length)
        assert row["displacement"] == pytest.approx(stream.displacement)
    assert trajectory[0]["magnitude_volatility"] is None  # nan (one step): null in JSON
    facts = {f["name"]: f["value"] for f in bundle["summary"]}
    assert facts["path length"] == pytest.approx(run.path_length)


def test_a_long_trajectory_keeps_the_newest_half_and_every_kth_older_step(probe):
    step = probe.step(pk.Example("the cat says", " meow"), commit=True)
    steps = tuple(replace(step, step=i) for i in range(2500))
    row = StreamRow(0, "x", *(1.0,) * 10, False, 1.0, 1.0)
    run = Trajectory(steps, tuple(replace(row, step=i) for i in range(2500)), 8, 0.9)
    bundle = result_bundle.result_bundle(run)
    drawn = [r["step"] for r in bundle["panels"]["timeline"]]
    assert len(drawn) <= result_bundle.MAX_STEPS and drawn[-500:] == list(range(2000, 2500))
    assert drawn[-502:-500] == [1995, 1999] and drawn[0] == 3  # every 4th older step
    assert len(bundle["panels"]["trajectory"]) == len(drawn)
    assert any(f["name"] == "steps drawn" for f in bundle["summary"])


def test_downsample_matches_the_session_viewer():
    assert downsample(list(range(10)), 10) == (list(range(10)), 1)
    kept, every = downsample(list(range(25)), 10)
    assert every == 4 and kept == [3, 7, 11, 15, 19, 20, 21, 22, 23, 24]


def test_a_token_attribution_and_a_shift(probe):
    attribution = probe.attribute("the dog says", " woof", "grad_x_input")
    bundle = roundtrip(result_bundle.result_bundle(attribution))
    assert bundle["kind"] == "token_attribution" and bundle["selected_step"] is None
    assert bundle["panels"] == {"tokens": panels.tokens(attribution, step=None, when="current")}
    shift = probe.attribution_shift(
        "the dog says", " woof", pk.Example("the dog says", " meow"), method="ig"
    )
    shown = mimebundle(shift)
    bundle = roundtrip(shown[MIME_TYPE])
    assert bundle["kind"] == "attribution_shift" and bundle["selected_step"] == shift.step.step
    assert bundle["panels"]["tokens"] == panels.token_shift(shift)
    assert bundle["panels"]["timeline"] == panels.timeline(shift.step)
    assert shown["text/plain"].startswith("attribution shift (ig) around step 0: the dog says")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hostile_labels_stay_data(probe):
    result = probe.step(pk.Example(HOSTILE, " <script>x</script>"))
    bundle = roundtrip(mimebundle(result)[MIME_TYPE])
    assert bundle["panels"]["timeline"][0]["label"] == f"{HOSTILE} → <script>x</script>"
    assert bundle["title"].endswith(f"{HOSTILE} → <script>x</script>")


def test_a_result_too_large_for_a_bundle_shows_its_text_alone(probe, monkeypatch):
    result = probe.step(pk.Example("the dog says", " woof"))
    monkeypatch.setattr(snapshot, "MAX_BYTES", 1000)
    shown = mimebundle(result)
    assert set(shown) == {"text/plain"}
    assert "charts left out" in shown["text/plain"] and "over the limit" in shown["text/plain"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(version=2), "probekit result version 2"),
        (lambda b: b.update(format="probekit.board"), "not a probekit result"),
        (lambda b: b["panels"].update(spec=[]), 'unexpected field(s) "spec"'),
        (lambda b: b["panels"]["watch"][0].update(kl="1e400"), "panels.watch[0].kl"),
        (lambda b: b.update(kind="evil"), "kind"),
        (
            lambda b: b["summary"].append({"name": "x" * 65, "value": 1}),
            "].name: more than the limit of 64",
        ),
        (lambda b: b.update(title="t" * 4097), "title"),
    ],
)
def test_validation_names_what_is_wrong(probe, change, message):
    bundle = copy.deepcopy(
        result_bundle.result_bundle(probe.step(pk.Example("the dog says", " woof")))
    )
    validate_result(bundle)
    change(bundle)
    with pytest.raises(ProbekitError, match=None) as info:
        validate_result(bundle)
    assert message in str(info.value)


def test_non_finite_numbers_become_null(probe):
    result = probe.step(pk.Example("the dog says", " woof"))
    broken = replace(result, loss_after=math.inf)
    bundle = result_bundle.result_bundle(broken)
    assert bundle["panels"]["timeline"][0]["loss_after"] is None
    assert {"name": "loss after", "value": None} in bundle["summary"]
    json.dumps(bundle, allow_nan=False)


def test_rows_are_defined_once_for_boards_and_results():
    """The result schema's row definitions are the board snapshot's, word for word."""
    board, result = validation.schema("board"), validation.schema("result")
    shared = set(snapshot.PANELS) | {"num", "count", "index", "label", "name", "token", "scalar"}
    assert {k: result["definitions"][k] for k in shared} == {
        k: board["definitions"][k] for k in shared
    }
    assert set(result["properties"]["panels"]["properties"]) == set(snapshot.PANELS)
