"""Result bundles: one result as a notebook keeps it, drawn again with no kernel.

Displaying a probe step, a trajectory, a token attribution or an attribution shift at the
end of a cell (their ``_repr_mimebundle_``) gives a short text summary (``text/plain``)
and the versioned ``application/vnd.probekit.result+json`` bundle: the rows of the board
panels that apply to that kind of result (``probekit.results.panels``), a title and a few
summary numbers. probekit's JupyterLab renderer draws it with the board's own charts. The
bundle is checked against ``schema/result.schema.json`` and bounded in size exactly as a
board snapshot is; a result too large for one shows its text summary alone. Long
trajectories keep at most ``MAX_STEPS`` steps in the step panels: the newest half in full
and every k-th older step, as the session viewer draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from probekit.errors import ProbekitError
from probekit.results import panels, snapshot
from probekit.results.attribution import AttributionShift, TokenAttribution
from probekit.results.labels import example_label
from probekit.results.probe import ProbeResult
from probekit.results.trajectory import Trajectory

FORMAT = "probekit.result"
VERSION = 1
MIME_TYPE = "application/vnd.probekit.result+json"
MAX_BYTES = snapshot.MAX_BYTES
MAX_STEPS = 1000
MAX_TITLE = 4096
KINDS = ("probe_step", "trajectory", "token_attribution", "attribution_shift")
_TOO_LARGE = "look at a slice of it (its frames, or fewer steps) instead"

Result = ProbeResult | Trajectory | TokenAttribution | AttributionShift
Rows = dict[str, list[panels.Row]]
Fact = tuple[str, Any]
T = TypeVar("T")


def result_bundle(result: Result) -> dict[str, Any]:
    """The bundle of ``result`` (format ``probekit.result``), validated against its schema.

    Raises :class:`ProbekitError` when the bundle would exceed ``MAX_BYTES`` of JSON.
    """
    kind, title, facts, rows, selected = _parts(result)
    from probekit import __version__

    bundle = {
        "format": FORMAT,
        "version": VERSION,
        "probekit_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "kind": kind,
        "title": _short(title, MAX_TITLE),
        "summary": [{"name": name, "value": snapshot.plain(value)} for name, value in facts],
        "selected_step": selected,
        "panels": {name: [snapshot.plain(row) for row in rows[name]] for name in rows},
    }
    return snapshot.checked(bundle, "result", "probekit result", _TOO_LARGE)


def validate_result(obj: Any) -> dict[str, Any]:
    """``obj`` (a parsed bundle) if it is a valid result bundle of this version; else raise."""
    snapshot.check_header(obj, "probekit result", FORMAT, VERSION)
    return snapshot.checked(obj, "result", "probekit result", _TOO_LARGE)


def summary_text(result: Result) -> str:
    """The plain-text form: the title, then one ``name: value`` line per summary number."""
    _kind, title, facts, _rows, _selected = _parts(result, rows=False)
    return "\n".join([title, *(f"  {name}: {_text(value)}" for name, value in facts)])


def mimebundle(result: Result) -> dict[str, Any]:
    """What a notebook shows for ``result``: the text summary and, if it fits, the bundle."""
    text = summary_text(result)
    try:
        bundle = result_bundle(result)
    except ProbekitError as exc:
        return {"text/plain": f"{text}\n  (charts left out: {exc})"}
    return {MIME_TYPE: bundle, "text/plain": text}


def _parts(result: Result, rows: bool = True) -> tuple[str, str, list[Fact], Rows, int | None]:
    """(kind, title, summary facts, panel rows, selected step) of any result kind."""
    if isinstance(result, ProbeResult):
        return ("probe_step", *_step(result, rows))
    if isinstance(result, Trajectory):
        return ("trajectory", *_trajectory(result, rows))
    if isinstance(result, TokenAttribution):
        return ("token_attribution", *_attribution(result, rows))
    if isinstance(result, AttributionShift):
        return ("attribution_shift", *_shift(result, rows))
    raise TypeError(f"no result bundle for a {type(result).__name__}")


def _step(result: ProbeResult, rows: bool) -> tuple[str, list[Fact], Rows, int | None]:
    label = example_label(result.prompt, result.target)
    title = f"probe step {result.step} ({panels.kind(result)}, {result.status}): {label}"
    largest = max(result.watch, key=lambda w: _finite(w.kl, -1.0), default=None)
    facts: list[Fact] = [
        ("‖Δθ‖₂", result.delta_l2),
        ("loss before", result.loss_before),
        ("loss after", result.loss_after),
        ("watch items", len(result.watch)),
        ("top-1 flips", sum(w.top1_flip for w in result.watch)),
    ]
    if largest is not None:
        facts.append(("largest KL", f"{largest.kl:.3g} ({_short(largest.label, 60)})"))
    facts += [("note", _short(note, 200)) for note in result.notes[:8]]
    return title, facts, _step_rows(result) if rows else {}, result.step


def _step_rows(result: ProbeResult) -> Rows:
    # the top-k of the example itself (the board's default), else of the first watch item
    shown = result.example or (result.watch[0] if result.watch else None)
    out: Rows = {
        "timeline": panels.timeline(result),
        "layers": panels.layers(result),
        "watch": panels.watch(result),
        "topk": panels.topk(result, shown.label) if shown is not None else [],
        "drift": panels.drift(result),
    }
    tokens = panels.step_tokens(result)
    if tokens:
        out["tokens"] = tokens
    return out


def _trajectory(run: Trajectory, rows: bool) -> tuple[str, list[Fact], Rows, int | None]:
    committed = [r for r in run.steps if r.committed]
    title = f"trajectory: {len(run.steps)} steps, {len(committed)} committed" + (
        " (interrupted)" if run.interrupted else ""
    )
    facts: list[Fact] = [
        ("path length", run.path_length),
        ("displacement", run.displacement),
        ("straightness", run.straightness),
        ("direction volatility", run.direction_volatility),
        ("magnitude volatility", run.magnitude_volatility),
        ("conflicts", run.conflicts),
        ("final loss", run.stream[-1].loss_after if run.stream else None),
        ("window", run.window),
    ]
    kept, every = downsample(run.steps)
    if every > 1:
        facts.append(("steps drawn", f"{len(kept)} of {len(run.steps)} (every {every}th older)"))
    newest = run.steps[-1] if run.steps else None
    if not rows:
        return title, facts, {}, newest.step if newest else None
    out: Rows = {
        "timeline": [row for r in kept for row in panels.timeline(r)],
        "layers": [row for r in kept for row in panels.layers(r)],
    }
    if newest is not None:
        newest_rows = _step_rows(newest)
        out.update({k: newest_rows[k] for k in ("watch", "topk", "drift") if k in newest_rows})
    # stream row i is the run's i-th committed step: drawn at that step's probe step
    stream = [
        {
            "step": committed[row.step].step if row.step < len(committed) else row.step,
            **{name: panels.number(getattr(row, name)) for name in panels.TRAJECTORY_KEYS[1:]},
        }
        for row in run.stream
    ]
    out["trajectory"] = downsample(stream)[0]
    if newest is not None and panels.step_tokens(newest):
        out["tokens"] = panels.step_tokens(newest)
    return title, facts, out, newest.step if newest else None


def _attribution(
    attribution: TokenAttribution, rows: bool
) -> tuple[str, list[Fact], Rows, int | None]:
    label = example_label(attribution.prompt, attribution.target)
    title = f"token attribution ({attribution.method}): {label}"
    ranked = sorted(
        zip(attribution.input_tokens, attribution.sequence, strict=True),
        key=lambda pair: -abs(_finite(pair[1], 0.0)),
    )
    facts: list[Fact] = [
        ("input tokens", len(attribution.input_tokens)),
        ("target tokens", len(attribution.target_tokens)),
        ("top tokens", ", ".join(f"{token!r} {score:.3g}" for token, score in ranked[:3])),
    ]
    if attribution.convergence_delta:
        facts.append(("convergence delta", attribution.sequence_delta))
    out = {"tokens": panels.tokens(attribution, step=None, when="current")} if rows else {}
    return title, facts, out, None


def _shift(shift: AttributionShift, rows: bool) -> tuple[str, list[Fact], Rows, int | None]:
    label = example_label(shift.before.prompt, shift.before.target)
    at = f" around step {shift.step.step}" if shift.step is not None else ""
    title = f"attribution shift ({shift.before.method}){at}: {label}"
    facts: list[Fact] = [("cosine distance", shift.cosine_distance), ("L1 change", shift.l1)]
    out: Rows = {}
    if shift.step is not None:
        facts.append(("‖Δθ‖₂ of the step", shift.step.delta_l2))
        if rows:
            out = {k: v for k, v in _step_rows(shift.step).items() if k != "tokens"}
    if rows:
        out["tokens"] = panels.token_shift(shift)
    return title, facts, out, shift.step.step if shift.step is not None else None


def downsample(items: Sequence[T], limit: int = MAX_STEPS) -> tuple[list[T], int]:
    """Every item up to ``limit``; else the newest half in full and every k-th older one.

    Returns (the items kept, k); the same choice as the extension's session viewer.
    """
    if len(items) <= limit:
        return list(items), 1
    recent = limit // 2
    older = items[: len(items) - recent]
    every = math.ceil(len(older) / (limit - recent))
    kept = [item for i, item in enumerate(older) if (len(older) - 1 - i) % every == 0]
    return [*kept, *items[len(items) - recent :]], every


def _finite(value: float, default: float) -> float:
    return value if math.isfinite(value) else default


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    return str(value)
