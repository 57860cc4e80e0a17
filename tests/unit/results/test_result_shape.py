"""What a result holds: the watch items apart from the example, one label format everywhere."""

from __future__ import annotations

import json
import math

import probekit as pk
from probekit.results import session_file
from probekit.results.labels import example_label, unique_labels

EXAMPLE = pk.Example("the dog says", " woof")
WATCH = [pk.Example("bob lives in", " rome"), "the cow says"]


def test_watch_holds_the_watch_items_and_example_the_step_itself(tiny_gpt2):
    model, tok = tiny_gpt2
    r = pk.Probe(model, tok, lr=0.05, watch=WATCH).step(EXAMPLE)
    assert [w.label for w in r.watch] == ["bob lives in → rome", "the cow says"]
    assert r.example is not None and r.example.is_example and r.example.prompt == EXAMPLE.prompt
    assert r.rows == (*r.watch, r.example)
    assert r.watch_row("example") == r.example
    frame = r.to_frame()
    assert set(frame[frame.scope == "watch"].label) == {w.label for w in r.watch}
    assert set(frame[(frame.scope == "example") & (frame.metric == "kl")].label) == {"example"}


def test_session_files_with_the_example_among_the_watch_rows_still_load(tiny_gpt2, tmp_path):
    model, tok = tiny_gpt2
    r = pk.Probe(model, tok, lr=0.05, watch=WATCH).step(EXAMPLE)
    path = session_file.save(tmp_path / "new.json", [r], {})
    doc = json.loads(path.read_text())
    for raw in doc["results"]:  # the layout written before `example` had its own field
        raw["watch"].append(raw.pop("example"))
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    for p in (path, old):
        (loaded,), _ = session_file.load(p)
        assert loaded.example is not None and loaded.example.label == "example"
        assert [w.label for w in loaded.watch] == [w.label for w in r.watch]


def test_one_label_format_across_results(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, lr=0.05, watch=[EXAMPLE, EXAMPLE, "the cow says"])
    assert probe.watch_labels == ("the dog says → woof", "the dog says → woof #2", "the cow says")
    assert unique_labels([("a", None), ("a", "")]) == ("a", "a #2")
    with probe.checkpoint():
        stream = probe.run([EXAMPLE], progress=False).stream
    imap = pk.isolated_map(probe, [EXAMPLE])
    dmap = pk.dataset_map(probe, [EXAMPLE], passes=1)
    label = example_label(EXAMPLE.prompt, EXAMPLE.target)
    assert stream[0].label == imap.rows[0].label == dmap.rows[0].label == label


def test_token_grad_has_the_same_shape_from_a_step_and_standalone(tiny_gpt2):
    model, tok = tiny_gpt2
    standalone = pk.token_grad(model, tok, EXAMPLE.prompt, EXAMPLE.target)
    assert standalone.convergence_delta == () and math.isnan(standalone.sequence_delta)
    shown = pk.Probe(model, tok, lr=0.05, token_grad=True).step(EXAMPLE).token_attribution()
    assert shown is not None
    assert shown.target_tokens == standalone.target_tokens
    assert [len(r) for r in shown.scores] == [len(r) for r in standalone.scores]
    assert all(math.isnan(v) for row in shown.scores for v in row)  # not measured by a step
    assert list(shown.to_frame().columns) == list(standalone.to_frame().columns)
    assert len(shown.to_frame()) == len(standalone.to_frame())


def test_only_integrated_gradients_report_a_convergence_delta(tiny_gpt2):
    model, tok = tiny_gpt2
    ig = pk.attribute(model, tok, EXAMPLE.prompt, EXAMPLE.target, n_steps=4)
    assert len(ig.convergence_delta) == len(ig.target_tokens)
    for method in ("grad_x_input", "ablation"):
        other = pk.attribute(model, tok, EXAMPLE.prompt, EXAMPLE.target, method=method)
        assert other.convergence_delta == () and math.isnan(other.sequence_delta)
