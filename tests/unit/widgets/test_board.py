"""The ProbeBoard driven by button clicks: rows the charts got, selection, status, model state."""

from __future__ import annotations

import threading
import time

import ipywidgets as widgets
import pytest

import probekit as pk
from probekit.results import panels, session_file
from probekit.widgets import export
from probekit.widgets.board import ProbeBoard
from probekit.widgets.feed import as_examples

WATCH = [pk.Example("the cat says", " meow"), "alice lives in"]
FEED = [pk.Example(f"{a} plus {b} is", f" {a + b}") for a in range(6) for b in range(5)]


@pytest.fixture
def board(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="sgd", lr=0.1, watch=WATCH, token_grad=True)
    b = ProbeBoard(probe, prompt="the dog says", target=" woof", trajectory_window=3)
    yield b
    b.wait(30)
    b.close()


def click(board: ProbeBoard, button: widgets.Button) -> None:
    button.click()
    assert board.wait(60), "the board did not become idle"


def eventually(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def rows(board: ProbeBoard, name: str) -> list[dict]:
    return board.charts[name].rows


def test_isolated_clicks_leave_the_model_bit_identical(board):
    start = board.probe.fingerprint()
    for _ in range(3):
        click(board, board.actions.probe)
    assert board.probe.fingerprint().differences(start) == []
    assert [(r["step"], r["kind"]) for r in rows(board, "timeline")] == [
        (0, "isolated"), (1, "isolated"), (2, "isolated"),
    ]  # fmt: skip
    n_layers = len(board.probe.history[0].layers)
    assert len(rows(board, "layers")) == 3 * n_layers
    assert {r["step"] for r in rows(board, "watch")} == {2}, "the newest step is shown"
    assert [r["label"] for r in rows(board, "watch")] == list(board.probe.watch_labels)
    assert board.panels.shown == 2
    assert all("step 2" in board.charts[n].title for n in ("watch", "topk", "drift", "layers"))
    assert rows(board, "trajectory") == []
    assert board.status.state.value.startswith("idle")
    assert "step 2: isolated" in board.status.message.value


def test_rows_match_the_probe_results(board):
    click(board, board.actions.probe)
    result = board.probe.history[-1]
    assert rows(board, "timeline") == panels.timeline(result)
    assert rows(board, "layers") == panels.layers(result)
    assert rows(board, "drift") == panels.drift(result)
    assert rows(board, "topk") == panels.topk(result, board.panels.topk_label.value)


def test_commit_undo_reset(board):
    start = board.probe.fingerprint()
    click(board, board.actions.commit)
    after_first = board.probe.fingerprint()
    click(board, board.actions.commit)
    assert len(board.probe.committed) == 2
    assert [r["step"] for r in rows(board, "trajectory")] == [0, 1]
    click(board, board.actions.undo)
    assert board.probe.fingerprint().differences(after_first) == []
    assert [r["status"] for r in rows(board, "timeline")] == ["ok", "undone"]
    assert [r["step"] for r in rows(board, "trajectory")] == [0]
    click(board, board.actions.reset)
    assert board.probe.fingerprint().differences(start) == []
    assert board.probe.history == []
    assert all(chart.rows == [] for chart in board.charts.values())
    assert board.status.message.value.startswith("reset: the model is back")
    click(board, board.actions.undo)
    assert "nothing to undo" in board.status.last_error


@pytest.mark.parametrize(("n", "window"), [(5, 3), (3, 8)])
def test_committed_stream_matches_probe_run(tiny_gpt2, tiny_tokenizer, n, window):
    """The trajectory panel's last row against ``probe.run`` on an identical model."""
    from tests import tiny

    model, tok = tiny_gpt2
    examples = FEED[:n]
    probe = pk.Probe(model, tok, optimizer="sgd", lr=0.1, watch=WATCH)
    b = ProbeBoard(probe, trajectory_window=window)
    assert b.feed(examples, commit=True) and b.wait(60)
    other = pk.Probe(tiny.make_gpt2(tiny_tokenizer), tok, optimizer="sgd", lr=0.1, watch=WATCH)
    final = other.run(examples, window=window).stream[-1]
    row = rows(b, "trajectory")[-1]
    assert row["step"] == n - 1
    for key in panels.TRAJECTORY_KEYS[1:]:
        assert row[key] == pytest.approx(getattr(final, key), rel=1e-5), key
    b.close()


def test_clicking_a_step_shows_it_everywhere(board):
    for target in (" woof", " meow", " moo"):
        board.example.target.value = target
        click(board, board.actions.probe)
    board.charts["timeline"].selected = 0  # what a click on step 0 in the view does
    assert board.panels.shown == 0
    for name in ("watch", "topk", "drift"):
        assert {r["step"] for r in rows(board, name)} == {0}, name
        assert board.charts[name].title.endswith("step 0")
    click(board, board.actions.probe)
    assert board.panels.shown == 0, "a new step does not take the view from a chosen old one"
    board.charts["timeline"].selected = 3
    click(board, board.actions.probe)
    assert board.panels.shown == 4, "while the newest is shown, the view follows new steps"


def test_feed_stops_within_one_step(board):
    stop_after = 3

    def listener(result):
        if len(board.probe.history) == stop_after:
            board.stop()

    board.probe.subscribe(listener)
    assert board.feed(FEED)
    assert board.wait(60)
    assert len(board.probe.history) == stop_after
    assert board.feed_controls.progress.value == stop_after
    assert "stopped" in board.status.message.value
    assert not board.actions.probe.disabled and board.feed_controls.stop.disabled


def test_stop_button_mid_feed(board):
    started = threading.Event()
    board.probe.subscribe(lambda _r: started.set())
    board.feed_controls.text.value = "\n".join(f"{e.prompt} | {e.target}" for e in FEED)
    board.feed_controls.run.click()
    assert started.wait(30)
    assert eventually(lambda: board.feed_controls.run.disabled)
    assert not board.feed_controls.stop.disabled
    board.feed_controls.stop.click()
    assert board.wait(60)
    assert 1 <= len(board.probe.history) < len(FEED)
    assert len(board.probe.committed) == len(board.probe.history)
    assert len(rows(board, "timeline")) == len(board.probe.history)


def test_failing_step_says_why_and_keeps_history(board):
    click(board, board.actions.probe)
    start = board.probe.fingerprint()
    board.example.target.value = ""
    assert board.example.tokens.value.startswith("cannot step on this")
    click(board, board.actions.commit)
    assert "target has no tokens" in board.status.message.value
    assert "target has no tokens" in board.status.last_error
    assert len(board.probe.history) == 1 and board.probe.committed == ()
    assert board.probe.fingerprint().differences(start) == []
    assert board.status.state.value.startswith("idle")


def test_second_request_refused_while_busy(board):
    inside, release = threading.Event(), threading.Event()

    def hold(_result):
        inside.set()
        release.wait(30)

    board.probe.subscribe(hold)
    board.actions.commit.click()
    assert inside.wait(30)
    try:
        assert board.status.state.value.startswith("busy: commit")
        board.actions.probe.click()  # refused even before the buttons are greyed out
        assert "was not started" in board.status.message.value
        assert eventually(lambda: board.actions.probe.disabled and board.actions.undo.disabled)
        board.actions.probe.click()  # a second request while the first one runs
        assert "was not started" in board.status.message.value
    finally:
        release.set()
    assert board.wait(60)
    assert [r.committed for r in board.probe.history] == [True], "nothing interleaved"
    assert not board.actions.probe.disabled and board.feed_controls.stop.disabled


def test_a_quick_request_does_not_toggle_the_buttons(board):
    changes = []
    board.actions.probe.observe(lambda change: changes.append(change["new"]), names="disabled")
    board.feed_controls.stop.observe(lambda change: changes.append(change["new"]), names="disabled")
    assert board._request("quick", lambda _stop: None)
    assert board.wait(10)
    time.sleep(0.3)  # past DISABLE_AFTER: a late timer must not grey anything out
    assert changes == []
    assert not board.actions.probe.disabled and board.feed_controls.stop.disabled


def test_hostile_text_stays_literal(board):
    hostile = "<script>alert(1)</script> the cat says"
    board.example.prompt.value = hostile
    click(board, board.actions.probe)
    assert rows(board, "timeline")[0]["label"] == hostile + " → woof"
    board.watch_editor.prompt.value = "<img src=x onerror=alert(1)>"
    click(board, board.watch_editor.add)
    assert "<img src=x onerror=alert(1)>" in [
        label for label, _ in board.watch_editor.items.options
    ]
    for widget in _walk(board.widget):
        if isinstance(widget, widgets.HTML | widgets.HTMLMath):
            assert "<script" not in widget.value and "<img" not in widget.value


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_target_tokens_and_boundary_warning(board):
    assert "'woof'" in board.example.tokens.value
    board.example.target.value = " WOOF"  # the tokenizer lowercases: decodes to 'woof'
    assert "decodes to" in board.example.warning.value


def test_settings_change_keeps_history(board):
    click(board, board.actions.probe)
    old = board.probe
    board.settings.lr.value = 0.5
    board.settings.layers.value = "0"
    click(board, board.settings.apply)
    assert board.probe is not old and board.probe.spec.lr == 0.5
    assert {e.layer for e in board.probe.entries} == {"block.0"}
    assert len(board.probe.history) == 1
    click(board, board.actions.probe)
    assert [r["step"] for r in rows(board, "timeline")] == [0, 1]
    assert board.probe.history[1].lr == 0.5
    click(board, board.actions.commit)
    board.settings.lr.value = 0.01
    click(board, board.settings.apply)
    assert "Undo them or Reset" in board.status.message.value
    assert board.probe.spec.lr == 0.5


def test_steps_setting_needs_no_new_probe(board):
    probe = board.probe
    board.settings.steps.value = 2
    click(board, board.settings.apply)
    click(board, board.actions.probe)
    assert board.probe is probe and probe.history[-1].steps == 2


def test_watch_editor_add_and_remove(board):
    board.watch_editor.prompt.value = "bob lives in"
    board.watch_editor.target.value = " oslo"
    click(board, board.watch_editor.add)
    assert board.probe.watch[-1] == pk.Example("bob lives in", " oslo")
    board.watch_editor.items.value = 0
    click(board, board.watch_editor.remove)
    assert [e.prompt for e in board.probe.watch] == ["alice lives in", "bob lives in"]
    click(board, board.actions.probe)
    assert [r["label"] for r in rows(board, "watch")] == list(board.probe.watch_labels)


def test_token_attribution_on_demand(board):
    start = board.probe.fingerprint()
    click(board, board.actions.attribute)
    tokens = rows(board, "tokens")
    assert {(r["method"], r["when"]) for r in tokens} == {
        ("ig", "before"), ("ig", "after"), ("token_grad", "before"),
    }  # fmt: skip
    assert {r["step"] for r in tokens} == {0}
    assert rows(board, "timeline")[0]["kind"] == "isolated"
    assert board.probe.fingerprint().differences(start) == []


def test_snapshot_bundle_and_png(board, monkeypatch):
    click(board, board.actions.probe)
    click(board, board.actions.commit)
    shown = {}
    monkeypatch.setattr(export, "publish", lambda image, data, text: shown.update(
        image=image, data=data, text=text))  # fmt: skip
    board.snapshot()
    assert shown["image"].startswith(b"\x89PNG")
    data = shown["data"]
    assert (data["format"], data["version"], data["selected_step"]) == ("probekit.board", 1, 1)
    assert set(data["panels"]) == set(panels.PANELS)
    assert len(data["panels"]["timeline"]) == 2
    assert data["model"]["n_params"] == sum(p.numel() for p in board.probe.model.parameters())
    assert data["settings"]["optimizer"] == "sgd"
    import json

    json.dumps(data, allow_nan=False)


def test_save_session_and_charts(board, tmp_path):
    click(board, board.actions.probe)
    board.save_path.value = str(tmp_path / "s.json")
    click(board, board.save)
    results, _meta = session_file.load(tmp_path / "s.json")
    assert len(results) == 1 and results[0].prompt == "the dog says"
    assert board.save_chart_files(tmp_path / "charts") == 14
    assert (tmp_path / "charts" / "timeline.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (tmp_path / "charts" / "layers.svg").read_text()


def test_feed_inputs():
    got = as_examples("2 plus 2 is | 4\n\n the cat says|meow ")
    assert got == [pk.Example("2 plus 2 is", " 4"), pk.Example(" the cat says", " meow")]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"prompt": ["a"], "target": [" b"]})
    assert as_examples(frame) == [pk.Example("a", " b")]
    assert as_examples([("a", " b"), "c | d"]) == [pk.Example("a", " b"), pk.Example("c", " d")]
    with pytest.raises(pk.InputError, match="no '\\|'"):
        as_examples("no separator here")


def test_feed_with_a_bad_line_is_refused_on_screen(board):
    board.feed_controls.text.value = "no separator"
    board.feed_controls.run.click()
    assert "feed not started" in board.status.message.value
    assert board.probe.history == []


def test_board_factory_and_lazy_names(tiny_gpt2):
    model, tok = tiny_gpt2
    b = pk.board(model, tok, lr=0.05, watch=WATCH, prompt="the cat says", target=" meow")
    assert isinstance(b, pk.ProbeBoard) and b.probe.token_grad and b.probe.spec.lr == 0.05
    n_params = sum(p.numel() for p in model.parameters())
    assert (
        b.status.state.value
        == f"idle · {type(model).__name__} · cpu · float32 · {n_params:,} parameters"
    )
    b.close()


def test_a_chart_failure_is_shown_not_lost(board, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("<b>no</b> chart")

    monkeypatch.setattr(board.panels, "add", broken)
    click(board, board.actions.probe)
    assert (
        "step 0 was taken but not drawn: RuntimeError: <b>no</b> chart" in board.status.last_error
    )


def test_a_step_that_breaks_the_weights_is_rolled_back_and_explained(tiny_gpt2):
    model, tok = tiny_gpt2
    probe = pk.Probe(model, tok, optimizer="sgd", lr=1e38, watch=WATCH)
    b = ProbeBoard(probe, prompt="the dog says", target=" woof")
    start = probe.fingerprint()
    click(b, b.actions.commit)
    assert rows(b, "timeline")[0]["kind"] == "failed"
    assert "failed" in b.status.message.value and "rolled back" in b.status.last_error
    assert probe.committed == () and len(probe.history) == 1
    assert probe.fingerprint().differences(start) == []
    assert rows(b, "trajectory") == []
    b.close()
