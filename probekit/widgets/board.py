"""``ProbeBoard``: type an example, press a button, watch the model move.

Thin handlers: each reads the controls, hands one ``Probe`` call to the board's worker
thread and returns; results reach the charts through one listener subscribed to the
probe. While a request runs the controls are disabled (Stop stays on), and a second
request is refused, never queued. Errors are shown on the status line in plain words.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from probekit.results import panels
from probekit.results.probe import ProbeResult
from probekit.widgets import export
from probekit.widgets.controls import Actions, ExampleInput, WatchEditor
from probekit.widgets.feed import FeedControls, as_examples
from probekit.widgets.panels import BoardCharts
from probekit.widgets.runner import Runner
from probekit.widgets.settings import Settings, rebuild
from probekit.widgets.status import StatusLine, explain, model_info


@dataclass
class Timing:
    """Seconds the board spent on its own work (benchmarks compare them with the steps)."""

    results: int = 0
    handler: float = 0.0  # the result listener: panel rows and chart messages
    measure: float = 0.0  # weight-space distances for the trajectory panel


class ProbeBoard:
    """A live board over a :class:`probekit.Probe` (display it, or ``board.widget``)."""

    def __init__(
        self,
        probe: Any,
        *,
        prompt: str = "",
        target: str = "",
        window: int = 1000,
        trajectory_window: int = 8,
    ) -> None:
        self.probe = probe
        self.trajectory_window = trajectory_window
        self.timing = Timing()
        self._measure_due = False
        self.info = model_info(probe.model)
        self.status = StatusLine(self.info)
        self.example = ExampleInput(probe, prompt, target)
        self.actions = Actions()
        self.settings = Settings(probe)
        self.watch_editor = WatchEditor(probe)
        self.feed_controls = FeedControls()
        self.save_path = widgets.Text(value="probekit-session.json", description="save to")
        self.save = widgets.Button(description="Save session", icon="save")
        self.save_charts = widgets.Button(description="Save charts (PNG+SVG)")
        self.panels = BoardCharts(lambda: self.probe.history, window)
        self.charts = self.panels.charts
        self.runner = Runner(self._busy)
        self._wire()
        self._subscribe(probe)
        self._load(probe)
        self.widget = self._layout()

    # -- display ---------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _layout(self) -> widgets.Widget:
        c = self.charts
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
                widgets.HBox([c["timeline"], c["layers"]]),
                widgets.HBox([c["watch"], widgets.VBox([self.panels.topk_label, c["topk"]])]),
                widgets.HBox([c["drift"], c["trajectory"]]),
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
            lambda _b: self._request(
                "reset", lambda _s: self.probe.reset(), lambda _v: self.panels.clear()
            )
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
            if self._measure_due:
                self._measure_trajectory()
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
            for done, example in enumerate(examples):
                if stop.is_set():
                    return done, None
                try:
                    self.probe.step(example, commit=keep, steps=steps)
                except Exception as exc:
                    return done, f"item {done + 1} ({example.prompt!r}): {explain(exc)}"
                controls.advance(done + 1, len(examples))
            return len(examples), None

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
        start = time.perf_counter()
        row = self._trajectory_row(probe, result) if result.committed else None
        self.panels.add(result, row)
        if not result.ok:
            notes = "; ".join(result.notes)
            self.status.error(
                f"step {result.step} failed ({result.status}) and was rolled back: "
                f"the model is as it was. {notes}"
            )
        self.timing.results += 1
        self.timing.handler += time.perf_counter() - start

    def _trajectory_row(self, probe: Any, result: ProbeResult) -> dict[str, Any] | None:
        """Path length and magnitude volatility from the results (free); the distances later."""
        committed = probe.committed
        if not committed or committed[-1] is not result:
            return None
        self._measure_due = True
        last = self.panels.last_trajectory()
        path_before = float(last["path_length"] or 0.0) if last else 0.0
        recent = committed[-self.trajectory_window :]
        return panels.trajectory_row(recent, path_before=path_before, displacement=None, span=None)

    def _measure_trajectory(self) -> None:
        """Measure displacement and direction volatility of the newest committed step.

        Both need ‖θ_t − θ_s‖ for earlier weights θ_s, a pass over every parameter each, so
        they are measured once per request (after a Commit, at the end of a feed), not per
        step of a feed: rows in between show them as missing.
        """
        self._measure_due = False
        committed = self.probe.committed
        rows = self.charts["trajectory"].rows
        if len(committed) < 2 or not rows or rows[-1]["step"] != committed[-1].step:
            return
        start = time.perf_counter()
        recent = committed[-self.trajectory_window :]
        displacement, span = _distances(self.probe, len(committed), len(recent))
        path_before = float(rows[-1]["path_length"] or 0.0) - committed[-1].delta_l2
        rows[-1] = panels.trajectory_row(
            recent, path_before=path_before, displacement=displacement, span=span
        )
        self.charts["trajectory"].replace(rows)
        self.timing.measure += time.perf_counter() - start

    def _load(self, probe: Any) -> None:
        """Show a probe's existing history (distances of past commits are not known)."""
        for result in probe.history:
            self.panels.add(result)
        active = {r.step for r in probe.committed}
        for result in probe.history:
            if result.committed and result.step not in active:
                self.panels.undone(result.step)
        window = self.trajectory_window
        rows = panels.trajectory(
            probe.committed, [(None, None)] * len(probe.committed), window=window
        )
        self.charts["trajectory"].append(rows)

    def _busy(self, busy: bool, name: str) -> None:
        for control in (
            *self.actions.controls,
            *self.settings.controls,
            *self.watch_editor.controls,
            *self.feed_controls.controls,
            self.save,
            self.save_charts,
        ):
            control.disabled = busy
        self.feed_controls.stop.disabled = not busy
        self.status.set_busy(busy, name)

    # -- export ------------------------------------------------------------------------
    def _save(self) -> bool:
        path = self.save_path.value
        meta = {"model": self.info.name, "board": self.settings_dict()}
        return self._request(
            "save session",
            lambda _s: export.save_session(self.probe, path, meta),
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
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        for name, chart in self.charts.items():
            (target / f"{name}.png").write_bytes(chart.to_png())
            (target / f"{name}.svg").write_text(chart.to_svg(), encoding="utf-8")
        return 2 * len(self.charts)

    def settings_dict(self) -> dict[str, Any]:
        spec = self.probe.spec
        return {
            "optimizer": spec.name,
            "lr": spec.lr,
            "steps": int(self.settings.steps.value),
            "momentum": spec.momentum,
            "weight_decay": spec.weight_decay,
            "n_tensors": len(self.probe.entries),
            "watch": list(self.probe.watch_labels),
        }

    def snapshot_data(self) -> dict[str, Any]:
        """The board's current state as the ``probekit.board`` bundle."""
        rows = {name: chart.rows for name, chart in self.charts.items()}
        return export.bundle(
            rows,
            model=self.info.as_dict(),
            settings=self.settings_dict(),
            selected_step=self.panels.shown,
        )

    def snapshot(self) -> None:
        """Display a static picture of the board (PNG + data bundle) that outlives the kernel."""
        parts = [(chart.spec, chart.rows) for chart in self.charts.values()]
        image = export.png(export.composite_spec(parts, self.panels.shown))
        text = f"probekit board: {len(self.probe.history)} steps on {self.info.name}"
        export.publish(image, self.snapshot_data(), text)

    def close(self) -> None:
        self.runner.close()


def _distances(probe: Any, committed: int, width: int) -> tuple[float | None, float | None]:
    """‖θ_t − θ₀‖ and ‖θ_t − θ_{t−width}‖ from the probe's undo snapshots (one pass each)."""
    from probekit.session.trajectory import distance

    origin, back = probe.snapshot_back(committed), probe.snapshot_back(width)
    return (
        distance(origin) if origin is not None else None,
        distance(back) if back is not None else None,
    )


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
