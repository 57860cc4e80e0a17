"""``ProbeBoard``: type an example, press a button, watch the model move.

Thin handlers: each reads the controls, hands one ``Probe`` call to the board's worker
thread and returns; results reach the charts through one listener subscribed to the
probe. A second request while one runs is refused, never queued. A request that runs
longer than a blink (``DISABLE_AFTER``) also greys out the buttons and turns Stop on;
a single quick step only changes the status line, so the buttons do not flicker and the
new chart rows are not queued behind a dozen button messages. Errors are shown on the
status line in plain words.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from probekit.results import panels
from probekit.results.probe import ProbeResult
from probekit.widgets import export
from probekit.widgets.controls import Actions, ExampleInput, WatchEditor
from probekit.widgets.feed import FeedControls, as_examples, run_feed
from probekit.widgets.panels import BoardCharts
from probekit.widgets.path import PathTracker
from probekit.widgets.runner import Runner
from probekit.widgets.settings import Settings, rebuild
from probekit.widgets.status import StatusLine, explain, model_info

# Seconds a request runs before the buttons are greyed out (quick steps never toggle them).
DISABLE_AFTER = 0.15
# Requests that take long by nature: their buttons are greyed out (and Stop on) at once.
LONG_REQUESTS = frozenset({"feed"})


@dataclass
class Timing:
    """Seconds the board spent on its own work (benchmarks compare them with the steps)."""

    results: int = 0
    handler: float = 0.0  # the result listener: panel rows and chart messages


class ProbeBoard:
    """A live board over a :class:`probekit.Probe` (display it, or ``board.widget``).

    ``window`` bounds the rows each chart keeps (the full history stays in the probe);
    ``trajectory_window`` is the W of the volatility pair. ``measure_path`` measures the
    displacement and direction volatility of the newest committed step after each request
    (two passes over the weights); without it those two stay empty.
    """

    def __init__(
        self,
        probe: Any,
        *,
        prompt: str = "",
        target: str = "",
        window: int = 1000,
        trajectory_window: int = 8,
        measure_path: bool = True,
    ) -> None:
        self.probe = probe
        self.path = PathTracker(trajectory_window, measure_path)
        self.timing = Timing()
        self.info = model_info(probe.model)
        self.status = StatusLine(self.info)
        self.example = ExampleInput(probe, prompt, target)
        self.actions = Actions()
        self.settings = Settings(probe)
        self.watch_editor = WatchEditor(probe)
        self.feed_controls = FeedControls()
        self.save_path = widgets.Text(value="session.probekit.json", description="save to")
        self.save = widgets.Button(description="Save session", icon="save")
        self.save_charts = widgets.Button(description="Save charts (PNG+SVG)")
        self.panels = BoardCharts(lambda: self.probe.history, window)
        self.charts = self.panels.charts
        self._controls_lock = threading.Lock()
        self._busy_now = False
        self._disable_timer: threading.Timer | None = None
        self.runner = Runner(self._busy)
        self._buttons = [
            *self.actions.buttons,
            self.settings.apply,
            *self.watch_editor.buttons,
            self.feed_controls.run,
            self.save,
            self.save_charts,
        ]
        self._wire()
        self._subscribe(probe)
        self._load(probe)
        self.widget = self._layout()

    # -- display ---------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _layout(self) -> widgets.Widget:
        c = self.charts
        wrap = widgets.Layout(flex_flow="row wrap")  # a narrow notebook stacks the charts
        controls = widgets.Tab(
            children=[
                self.feed_controls.widget,
                self.settings.widget,
                self.watch_editor.widget,
                widgets.HBox([self.save_path, self.save, self.save_charts]),
            ],
            titles=("feed", "settings", "watch set", "export"),
        )
        return widgets.VBox(
            [
                self.status.widget,
                self.example.widget,
                self.actions.widget,
                controls,
                widgets.HBox([c["timeline"], c["layers"]], layout=wrap),
                widgets.HBox(
                    [c["watch"], widgets.VBox([self.panels.topk_label, c["topk"]])], layout=wrap
                ),
                widgets.HBox([c["drift"], c["trajectory"]], layout=wrap),
                c["tokens"],
            ]
        )

    # -- requests --------------------------------------------------------------------
    def _wire(self) -> None:
        a, f = self.actions, self.feed_controls
        a.probe.on_click(lambda _b: self._step(commit=False))
        a.commit.on_click(lambda _b: self._step(commit=True))
        a.undo.on_click(
            lambda _b: self._request("undo", lambda _s: self.probe.undo(), self._undone)
        )
        a.reset.on_click(
            lambda _b: self._request("reset", lambda _s: self.probe.reset(), self._was_reset)
        )
        a.attribute.on_click(lambda _b: self._attribute())
        a.log.observe(lambda ch: self.panels.set_log(bool(ch["new"])), names="value")
        f.run.on_click(lambda _b: self._feed_text())
        f.stop.on_click(lambda _b: self.stop())
        self.settings.apply.on_click(lambda _b: self._apply_settings())
        self.watch_editor.add.on_click(lambda _b: self._set_watch(self.watch_editor.added))
        self.watch_editor.remove.on_click(lambda _b: self._set_watch(self.watch_editor.removed))
        self.save.on_click(lambda _b: self._save())
        self.save_charts.on_click(lambda _b: self._save_charts())

    def _request(
        self, name: str, job: Callable[[Any], Any], done: Callable[[Any], None] | None = None
    ) -> bool:
        def finish(value: Any, error: BaseException | None) -> None:
            if self.path.due:
                rows = self.path.measured(self.probe, self.charts["trajectory"].rows)
                if rows is not None:
                    self.charts["trajectory"].replace(rows)
            if error is not None:
                self.status.error(f"{name} failed: {explain(error)}")
            elif done is not None:
                done(value)

        if self.runner.submit(name, job, finish):
            return True
        self.status.note(
            f"busy with {self.runner.current}: {name} was not started (press Stop "
            "or wait for it to finish)"
        )
        return False

    def _step(self, *, commit: bool) -> bool:
        example, steps = self.example.example(), int(self.settings.steps.value)
        return self._request(
            "commit" if commit else "probe",
            lambda _s: self.probe.step(example, commit=commit, steps=steps),
            self._stepped,
        )

    def _stepped(self, result: ProbeResult) -> None:
        if result.ok:
            kind = "committed" if result.committed else "isolated; model untouched"
            self.status.note(f"step {result.step}: {kind}")

    def _undone(self, result: ProbeResult) -> None:
        self.panels.undone(result.step)
        self.status.note(f"undid step {result.step}: the model is back to before it")

    def _was_reset(self, _value: Any) -> None:
        self.panels.clear()
        self.status.note("reset: the model is back to before the first commit; history cleared")

    def _attribute(self) -> bool:
        example = self.example.example()

        def job(_stop: Any) -> Any:
            return self.probe.attribution_shift(example.prompt, example.target, example)

        def done(shift: Any) -> None:
            step = shift.step.step if shift.step is not None else None
            self.panels.tokens(
                panels.token_shift(shift), f"token attribution before/after step {step}"
            )

        return self._request("token attribution", job, done)

    def feed(self, items: Any, *, commit: bool | None = None) -> bool:
        """Step on every example in turn (lines ``prompt | target``, a list or a frame).

        Runs in the background; Stop (or :meth:`stop`) ends it before the next step.
        """
        try:
            examples = as_examples(items)
        except Exception as exc:
            self.status.error(f"feed not started: {explain(exc)}")
            return False
        keep = self.feed_controls.commit.value if commit is None else commit
        steps, controls = int(self.settings.steps.value), self.feed_controls
        controls.start(len(examples))

        def job(stop: Any) -> tuple[int, str | None]:
            step = partial(self.probe.step, commit=keep, steps=steps)
            return run_feed(step, examples, stop, controls.advance)

        def finished(value: tuple[int, str | None]) -> None:
            done, error = value
            if error is not None:
                self.status.error(f"feed stopped at {error}")
            else:
                self.status.note(
                    f"feed: {done} of {len(examples)} steps taken"
                    + (" (stopped)" if done < len(examples) else "")
                )

        return self._request("feed", job, finished)

    def _feed_text(self) -> bool:
        return self.feed(self.feed_controls.text.value)

    def stop(self) -> None:
        """Stop a running feed before its next step."""
        self.runner.stop()
        if self.runner.busy:
            self.status.note("stopping after the current step")

    def wait(self, timeout: float | None = 60) -> bool:
        """Block until the board is idle (for scripts and tests); ``False`` on timeout."""
        return self.runner.wait(timeout)

    def _apply_settings(self) -> bool:
        if not self.settings.changed(self.probe):
            self.status.note(f"steps per probe: {self.settings.steps.value} (from the next step)")
            return True
        s = self.settings
        options = {
            "optimizer": s.optimizer.value,
            "lr": float(s.lr.value),
            "layers": s.layers.value,
            "pattern": s.pattern.value,
        }
        return self._request(
            "apply settings", lambda _s: rebuild(self.probe, **options), self._adopt
        )

    def _adopt(self, probe: Any) -> None:
        """Work on ``probe`` from now on (same model, new settings, history carried over)."""
        self.probe = probe
        self._subscribe(probe)
        self.example.probe = probe
        self.settings.layers.value = self.settings.pattern.value = ""
        self.settings.show(probe)
        self.watch_editor.show(probe)
        self.status.note(
            f"new settings from the next step: {probe.spec.name}, lr {probe.spec.lr:g}, "
            f"{len(probe.entries)} tensors; history kept. A new probe was made over the same "
            "model: use board.probe (callbacks added to the old probe stay with it)"
        )

    def _set_watch(self, items: Callable[[Any], list[Any]]) -> bool:
        def job(_stop: Any) -> None:
            self.probe.watch = items(self.probe)

        return self._request("watch set", job, lambda _v: self.watch_editor.show(self.probe))

    # -- results -----------------------------------------------------------------------
    def _subscribe(self, probe: Any) -> None:
        probe.subscribe(lambda result: self._on_result(probe, result))

    def _on_result(self, probe: Any, result: ProbeResult) -> None:
        """The one listener: every new result of the board's probe reaches the charts here."""
        if probe is not self.probe:
            return
        start = time.thread_time()
        try:
            last = self.panels.last_trajectory() if result.committed else None
            row = self.path.row(probe, result, last) if result.committed else None
            self.panels.add(result, row)
        except Exception as exc:  # shown on screen, not lost in a warning
            self.status.error(f"step {result.step} was taken but not drawn: {explain(exc)}")
            return
        if not result.ok:
            notes = "; ".join(result.notes)
            self.status.error(
                f"step {result.step} failed ({result.status}) and was rolled back: "
                f"the model is as it was. {notes}"
            )
        self.timing.results += 1
        self.timing.handler += time.thread_time() - start

    def _load(self, probe: Any) -> None:
        """Show a probe's existing history (distances of past commits are not known)."""
        for result in probe.history:
            self.panels.add(result)
        active = {r.step for r in probe.committed}
        for result in probe.history:
            if result.committed and result.step not in active:
                self.panels.undone(result.step)
        self.charts["trajectory"].append(self.path.history(probe))

    def _busy(self, busy: bool, name: str) -> None:
        """Status at once; buttons off (Stop on) once a request outlasts ``DISABLE_AFTER``.

        A feed greys them out (and turns Stop on) at once.

        Fields stay editable for the next request either way; the runner refuses a
        second request while one runs, greyed out or not.
        """
        self.status.set_busy(busy, name)
        with self._controls_lock:
            self._busy_now = busy
            if self._disable_timer is not None:
                self._disable_timer.cancel()
                self._disable_timer = None
            if busy and name in LONG_REQUESTS:  # Stop matters from the first moment
                self._set_controls(busy=True)
            elif busy:
                self._disable_timer = threading.Timer(DISABLE_AFTER, self._disable_if_busy)
                self._disable_timer.daemon = True
                self._disable_timer.start()
            else:
                self._set_controls(busy=False)

    def _disable_if_busy(self) -> None:
        with self._controls_lock:
            if self._busy_now:
                self._set_controls(busy=True)

    def _set_controls(self, *, busy: bool) -> None:
        for button in self._buttons:
            if button.disabled != busy:
                button.disabled = busy
        if self.feed_controls.stop.disabled == busy:
            self.feed_controls.stop.disabled = not busy

    # -- export ------------------------------------------------------------------------
    def _save(self) -> bool:
        path = self.save_path.value
        return self._request(
            "save session",
            lambda _s: export.save_session(self.probe, path),
            lambda p: self.status.note(f"session saved to {p}"),
        )

    def _save_charts(self) -> bool:
        folder = Path(self.save_path.value).with_suffix("")
        return self._request(
            "save charts",
            lambda _s: self.save_chart_files(folder),
            lambda n: self.status.note(f"{n} files written to {folder}/"),
        )

    def save_chart_files(self, folder: str | Path) -> int:
        """Write every chart as ``<name>.png`` and ``<name>.svg`` into ``folder``."""
        return export.chart_files(self.charts, folder)

    def settings_dict(self) -> dict[str, Any]:
        return export.settings(self.probe, int(self.settings.steps.value))

    def snapshot_data(self) -> dict[str, Any]:
        """The board's current state as the ``probekit.board`` bundle."""
        rows = {name: chart.rows for name, chart in self.charts.items()}
        return export.bundle(rows, model=self.info.as_dict(), settings=self.settings_dict(),
                             selected_step=self.panels.shown)  # fmt: skip

    def snapshot(self) -> None:
        """Display a static picture of the board (PNG + data bundle) that outlives the kernel."""
        # each panel's heading goes on the image as its title (the specs carry none)
        parts = [
            ({**chart.spec, "title": chart.title}, chart.rows) for chart in self.charts.values()
        ]
        image = export.png(export.composite_spec(parts, self.panels.shown))
        text = f"probekit board: {len(self.probe.history)} steps on {self.info.name}"
        export.publish(image, self.snapshot_data(), text)

    def close(self) -> None:
        self.runner.close()


def board(
    model: Any, tokenizer: Any, *, prompt: str = "", target: str = "", **probe_options: Any
) -> ProbeBoard:
    """A :class:`ProbeBoard` over a new probe (``probe_options`` are those of ``pk.Probe``).

    ``token_grad`` is on by default here (it is free and feeds the attribution panel).
    """
    import probekit

    probe_options.setdefault("token_grad", True)
    probe = probekit.Probe(model, tokenizer, **probe_options)
    return ProbeBoard(probe, prompt=prompt, target=target)
