"""What a result holds: the watch items apart from the example, one label format everywhere."""

from __future__ import annotations

import json

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
