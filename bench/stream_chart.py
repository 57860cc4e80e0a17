"""What a live chart costs on the wire: StreamChart vs re-assigning an ``alt.JupyterChart``'s chart.

One run prints, with a history of 5,000 points on screen:
- comm bytes per chart update (one new step): StreamChart sends the new row (and, now and then,
  the keys its bounded window thins out); JupyterChart re-sends the whole spec with every row;
- JavaScript bytes per board: probekit's extension assets, fetched once per page from the
  Jupyter server however many charts a board has, vs ``JupyterChart.enable_offline()``, whose
  ~1 MB bundle is a trait of every chart instance (sent over the comm, per chart).

Both widgets run against a recording comm (no kernel needed): the bytes counted are the JSON of
the messages ipywidgets hands to the comm.

    python bench/stream_chart.py [--history 5000] [--updates 200] [--baseline-updates 5]
                                 [--charts-per-board 6]

(JupyterChart updates are slow to build, ~1 MB of JSON each: a few are enough for the baseline.)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any, ClassVar

import altair as alt
from comm.base_comm import BaseComm
from ipywidgets.widgets import widget as ipywidget_module

from probekit.widgets.stream_chart import StreamChart

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "probekit" / "labextension" / "static"


class RecordingComm(BaseComm):
    """A comm that records the size of every message instead of sending it."""

    log: ClassVar[list[tuple[str, int, dict[str, Any]]]] = []

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:  # fmt: skip
        size = len(json.dumps(data, separators=(",", ":"), default=str))
        size += sum(len(b) for b in buffers or ())
        RecordingComm.log.append((msg_type, size, data or {}))


def recorded(fn: Any) -> list[tuple[str, int, dict[str, Any]]]:
    start = len(RecordingComm.log)
    fn()
    return RecordingComm.log[start:]


def row(step: int) -> dict[str, Any]:
    """One timeline row, shaped like the board's (floats with full precision)."""
    return {
        "step": step,
        "kind": "isolated" if step % 3 else "committed",
        "status": "ok",
        "label": f"example {step} → target",
        "delta_l2": 1e-3 * (1 + step % 17) / 7,
        "delta_l1": 0.31 * (1 + step % 11) / 3,
        "loss_before": 2.5 + (step % 13) / 9,
        "loss_after": 2.4 + (step % 7) / 11,
    }


def base_chart(data: Any) -> alt.Chart:
    return (
        alt.Chart(data)
        .mark_circle()
        .encode(x="step:Q", y=alt.Y("delta_l2:Q", scale=alt.Scale(type="log")), color="kind:N")
        .add_params(alt.param(name="selected_step", value=None))
    )


def stream_chart_updates(history: int, updates: int) -> tuple[list[int], int]:
    chart = StreamChart(base_chart(alt.NamedData("rows")).to_dict(), window=history)
    chart.append([row(s) for s in range(history)])
    sizes = []
    for s in range(history, history + updates):
        messages = recorded(lambda s=s: chart.append([row(s)]))
        sizes.append(sum(size for kind, size, _ in messages if kind == "comm_msg"))
    assert len(chart.rows) <= history
    return sizes, chart.bytes_sent


def jupyter_chart_updates(history: int, updates: int) -> list[int]:
    rows = [row(s) for s in range(history)]
    jc = alt.JupyterChart(base_chart(alt.Data(values=rows)))
    sizes = []
    for s in range(history, history + updates):
        rows = [*rows[1:], row(s)]  # the same 5,000 points on screen (Altair's row limit)
        messages = recorded(
            lambda rows=rows: setattr(jc, "chart", base_chart(alt.Data(values=rows)))
        )
        sizes.append(sum(size for kind, size, _ in messages if kind == "comm_msg"))
    return sizes


def jupyter_chart_js_bytes() -> int:
    """Bytes of JavaScript one offline JupyterChart carries in its comm-open state."""
    alt.JupyterChart.enable_offline()
    messages = recorded(lambda: alt.JupyterChart(base_chart(alt.Data(values=[row(0)]))))
    opened = [data for kind, _, data in messages if kind == "comm_open"]
    esm = [len(d["state"]["_esm"].encode()) for d in opened if "_esm" in d.get("state", {})]
    return sum(esm)


def extension_js_bytes() -> tuple[int, int]:
    """(all JavaScript the extension ships, the Vega chunk alone), in bytes."""
    if not STATIC.is_dir():
        raise SystemExit("build the extension first: bash scripts/setup.sh")
    files = list(STATIC.glob("*.js"))
    return sum(f.stat().st_size for f in files), max(f.stat().st_size for f in files)


def stream_chart_open_bytes() -> int:
    messages = recorded(lambda: StreamChart(base_chart(alt.NamedData("rows")).to_dict()))
    return sum(size for kind, size, _ in messages if kind == "comm_open")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--baseline-updates", type=int, default=5)
    parser.add_argument("--charts-per-board", type=int, default=6)
    args = parser.parse_args()
    ipywidget_module.comm.create_comm = RecordingComm  # type: ignore[attr-defined]

    stream, _ = stream_chart_updates(args.history, args.updates)
    jupyter = jupyter_chart_updates(args.history, args.baseline_updates)
    s_med, s_mean = statistics.median(stream), statistics.fmean(stream)
    j_med, j_mean = statistics.median(jupyter), statistics.fmean(jupyter)
    print(f"comm bytes per chart update (one new step), {args.history:,}-point history")
    print(f"  StreamChart.append        median {s_med:>11,.0f}   mean {s_mean:>11,.0f}   "
          f"max {max(stream):>9,}  over {args.updates} updates (the mean includes the "
          "window's thinning)")  # fmt: skip
    print(f"  JupyterChart.chart = ...  median {j_med:>11,.0f}   mean {j_mean:>11,.0f}   "
          f"over {args.baseline_updates} updates")  # fmt: skip
    print(f"  ratio (JupyterChart / StreamChart): median {j_med / s_med:,.0f}x, "
          f"mean {j_mean / s_mean:,.0f}x   (target >= 50x)")  # fmt: skip

    n = args.charts_per_board
    ext_total, vega_chunk = extension_js_bytes()
    per_chart = jupyter_chart_js_bytes()
    print(f"\nJavaScript bytes sent to the browser per board of {n} charts")
    print(f"  probekit extension  {ext_total:>11,}  once per page, from the server's static files "
          f"(Vega chunk {vega_chunk:,}); 0 over the comm; spec state per chart "
          f"{stream_chart_open_bytes():,}")  # fmt: skip
    print(f"  JupyterChart offline {per_chart:>10,}  per chart over the comm -> {n * per_chart:,} "
          f"per board ({n * per_chart / ext_total:.1f}x the extension)")  # fmt: skip


if __name__ == "__main__":
    main()
