"""The scripted demo session behind ``probekit demo``: probe the embedded model, write a report.

It asks the question probekit exists for, on the demo model: does an example that
contradicts what the model knows move it more — and disturb more of what it knew —
than one that agrees? Every number in the report is measured in this run.
"""

from __future__ import annotations

import html
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from probekit.core.fingerprint import fingerprint
from probekit.core.inputs import Example
from probekit.core.loading import load_demo
from probekit.demo import corpus
from probekit.demo.training import evaluate
from probekit.results import session_file
from probekit.results.probe import ProbeResult
from probekit.session.probe import Probe

LR = 0.01
# (family, index) of the facts probed with their true and a contradicting target
PROBED = [("addition", 23), ("lives_in", 0), ("animal_sound", 1), ("colour", 0),
          ("addition", 57), ("lives_in", 7), ("animal_sound", 4), ("colour", 5)]  # fmt: skip


@dataclass(frozen=True)
class DemoReport:
    directory: Path
    index: Path
    summary: pd.DataFrame
    accuracy: dict[str, float]
    restored: bool


def run(out: Path, log: Callable[[str], None] = print) -> DemoReport:
    """Run the scripted session; write the report, PNGs and ``session.probekit.json`` to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model, tok = load_demo(device="cpu")
    held = [f for fam in corpus.HELD_OUT_FAMILIES for f in corpus.held_out(fam)]
    accuracy = evaluate(model, tok, corpus.facts() + held)
    log("demo model accuracy (greedy top-1 on its facts): " + _fmt(accuracy))
    watch = _watch_set()
    probe = Probe(model, tok, optimizer="sgd", lr=LR, watch=watch)
    start = fingerprint(model)
    isolated = _compare_true_vs_contradiction(probe, log)
    committed = _commit_contradictions(probe, log)
    probe.reset()
    restored = fingerprint(model).differences(start) == []
    log(f"after reset the model is bit-identical to the start: {'yes' if restored else 'NO'}")
    summary = _summary(isolated)
    results = [r for _, r in isolated] + committed
    session = session_file.save(
        out / "session.probekit.json", results, {"model": "probekit demo", "lr": LR}
    )
    os.chmod(session, 0o644)  # an ordinary file: readable by whoever may read the report
    summary.to_csv(out / "summary.csv", index=False)
    index = _write_report(out, summary, isolated, committed, accuracy, restored)
    return DemoReport(out, index, summary, accuracy, restored)


def _watch_set() -> list[Example]:
    known = corpus.facts()
    picks = [known[i] for i in (3, 25, 31, 44, 60, 90)]
    picks.append(corpus.held_out("addition_large")[5])
    return [Example(f.prompt, f.target) for f in picks]


def _compare_true_vs_contradiction(
    probe: Probe, log: Callable[[str], None]
) -> list[tuple[str, ProbeResult]]:
    results = []
    for family, index in PROBED:
        fact = corpus.facts(family)[index]
        for kind, version in (("agrees", fact), ("contradicts", corpus.contradiction(fact))):
            r = probe.step(Example(version.prompt, version.target))
            results.append((kind, r))
            log(
                f"  {kind:<11} {version.prompt + version.target!r:<34} loss {r.loss_before:6.3f}"
                f" → {r.loss_after:6.3f}   |Δθ| {r.delta_l2:.4f}   watch KL {_watch_kl(r):.2e}"
            )
    return results


def _commit_contradictions(probe: Probe, log: Callable[[str], None]) -> list[ProbeResult]:
    fact = corpus.facts("addition")[23]
    wrong = corpus.contradiction(fact)
    log(f"committing 5 steps on the contradiction {wrong.prompt + wrong.target!r}:")
    results = []
    for _ in range(5):
        r = probe.step(Example(wrong.prompt, wrong.target), commit=True)
        results.append(r)
        log(
            f"  step {r.step}: loss {r.loss_before:.3f} → {r.loss_after:.3f}, "
            f"watch KL {_watch_kl(r):.2e}, flips {_flips(r)}"
        )
    return results


def _flips(r: ProbeResult) -> int:
    return sum(w.top1_flip for w in r.watch)


def _watch_kl(r: ProbeResult) -> float:
    values = [w.kl for w in r.watch]
    return statistics.fmean(values) if values else float("nan")


def _summary(isolated: list[tuple[str, ProbeResult]]) -> pd.DataFrame:
    rows = [
        {
            "kind": kind,
            "example": r.prompt + r.target,
            "loss_before": r.loss_before,
            "loss_after": r.loss_after,
            "delta_l2": r.delta_l2,
            "delta_l1": r.total.delta_l1,
            "grad_l2": r.grad_l2,
            "watch_kl": _watch_kl(r),
            "watch_flips": _flips(r),
        }
        for kind, r in isolated
    ]
    return pd.DataFrame(rows)


# name → (title, what the chart shows); the titles are drawn on the charts themselves
CHARTS = {
    "update_size": ("How far one step moves the model",
                    "|Δθ| of one isolated SGD step per example (log scale)"),
    "means": ("What one step disturbs",
              "mean KL on the watch set, agreeing vs contradicting examples (log scale)"),
    "layers": ("Where the step lands",
               "|Δθ| per layer for the first fact and its contradiction (log scale)"),
    "drift": ("How deep the change reaches",
              "hidden-state drift (1 − cos) per layer after the first committed step"),
    "kl_trail": ("What five committed steps on a contradiction disturb",
                 "KL on each watch item after each committed step (log scale)"),
}  # fmt: skip


def _charts(
    summary: pd.DataFrame, isolated: list[tuple[str, ProbeResult]], committed: list[ProbeResult]
) -> dict[str, Any]:
    import altair as alt

    from probekit import charts

    log = alt.Scale(type="log")

    frames = []
    for kind, r in isolated[:2]:
        frame = r.to_frame()
        frame["group"] = kind
        frames.append(frame)
    pair = pd.concat(frames)
    trail = pd.concat([r.to_frame() for r in committed])
    means = summary.groupby("kind", as_index=False)[["delta_l2", "watch_kl"]].mean()
    built = {
        "update_size": alt.Chart(summary)
        .mark_bar()
        .encode(
            y=alt.Y("example:N", sort=None, title=None),
            x=alt.X(
                "delta_l2:Q",
                title="delta_l2",
                scale=log,
                stack=None,
                axis=alt.Axis(labelOverlap=True),
            ),
            color=alt.Color("kind:N"),
            tooltip=["example:N", "kind:N", alt.Tooltip("delta_l2:Q", format=".4f")],
        ),
        "means": alt.Chart(means)
        .mark_bar()
        .encode(
            x="kind:N",
            y=alt.Y("watch_kl:Q", title="mean KL on the watch set", scale=log, stack=None),
            color="kind:N",
        ),
        "layers": charts.delta_by_layer(pair, color="group", log=True),
        "drift": charts.hidden_drift(trail[trail["step"] == trail["step"].min()]),
        "kl_trail": charts.watch_shift(trail, metric="kl", color="step", log=True),
    }
    return {
        name: chart.properties(title=alt.TitleParams(CHARTS[name][0], subtitle=CHARTS[name][1]))
        for name, chart in built.items()
    }


def _write_report(
    out: Path,
    summary: pd.DataFrame,
    isolated: list[tuple[str, ProbeResult]],
    committed: list[ProbeResult],
    accuracy: dict[str, float],
    restored: bool,
) -> Path:
    import vl_convert as vlc

    figures = []
    for name, chart in _charts(summary, isolated, committed).items():
        spec = chart.properties(width=420).to_dict()
        (out / f"{name}.png").write_bytes(vlc.vegalite_to_png(spec, scale=2))
        title, caption = CHARTS[name]
        figures += [
            f"<h3>{html.escape(title)}</h3>",
            f"<p>{html.escape(caption)} — <a href='{name}.png'>{name}.png</a></p>",
            vlc.vegalite_to_svg(spec),
        ]
    means = summary.groupby("kind")[["delta_l2", "delta_l1", "watch_kl", "watch_flips"]].mean()
    body = [
        "<h1>probekit demo</h1>",
        "<p>One SGD step (lr " + html.escape(str(LR)) + ") on each example, isolated: the "
        "model is restored after every probe. Then five committed steps on one "
        "contradiction, and a reset.</p>",
        "<h2>What the demo model knows</h2>",
        _table(pd.DataFrame([accuracy])),
        "<h2>Agreeing vs contradicting examples (means)</h2>",
        _table(means.reset_index()),
        "<h2>Every probe</h2>",
        _table(summary),
        "<h2>Charts</h2>",
        *figures,
        f"<p>Reset restored the model bit-exactly: <b>{'yes' if restored else 'no'}</b>.</p>",
        "<h2>Files</h2>",
        "<ul>",
        "<li><a href='summary.csv'>summary.csv</a>: the table of every probe above</li>",
        "<li><a href='session.probekit.json'>session.probekit.json</a>: every result, as strict"
        " JSON (double-click it in JupyterLab to see the charts)</li>",
        *(
            f"<li><a href='{n}.png'>{n}.png</a>: {html.escape(t)}</li>"
            for n, (t, _) in CHARTS.items()
        ),
        "</ul>",
    ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>probekit demo</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "</style></head><body>" + "\n".join(body) + "</body></html>"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _table(frame: pd.DataFrame) -> str:
    """An HTML table with every cell escaped (examples are data, never markup)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _cell(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in values.items())
