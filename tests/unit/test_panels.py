"""Panel rows against the ProbeResult fields they come from, computed naively here."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from probekit.results import panels
from probekit.results.attribution import AttributionShift, TokenAttribution
from probekit.results.probe import LayerDrift, ProbeResult, TensorDelta, WatchRow

NAN = math.nan


def tensor(name: str, layer: str, sum_sq: float, sum_abs: float, theta_sq: float = 4.0):
    return TensorDelta(name, layer, numel=10, sum_sq=sum_sq, sum_abs=sum_abs, max_abs=0.1,
                       changed=3, lost=0, theta_sq=theta_sq, grad_sq=1.0)  # fmt: skip


def watch_row(label: str, *, kl: float, is_example: bool = False, dlogp: float = NAN):
    return WatchRow(
        label=label, prompt=label, target=None, is_example=is_example, kl=kl,
        dlogp_target=dlogp, top1_flip=kl > 1, logit_l2=2 * kl,
        topk_before=(("a", 0.6), ("<b>", 0.3)), topk_after=(("<b>", 0.5), ("a", 0.4)),
        drift=(LayerDrift("embeddings", 0.0, 0.01), LayerDrift("block.0", kl / 10, kl)),
    )  # fmt: skip


def result(step: int = 0, *, delta: float = 1.0, committed: bool = False, status: str = "ok",
           loss_after: float = 0.5) -> ProbeResult:  # fmt: skip
    tensors = (
        tensor("h.1.w", "block.1", 0.25 * delta**2, 3 * delta),
        tensor("wte", "embeddings+lm_head", 0.5 * delta**2, 2 * delta),
        tensor("h.0.w", "block.0", 0.25 * delta**2, 1 * delta),
        tensor("ln_f", "final_norm", 0.0, 0.0),
    )
    return ProbeResult(
        step=step, committed=committed, status=status, prompt="<script>x</script> 2 plus 2 is",
        target=" 5", target_tokens=("5",), optimizer="sgd", lr=0.1, steps=1, loss_before=2.0,
        loss_after=loss_after, token_nll_before=(2.0,), token_nll_after=(loss_after,),
        tensors=tensors,
        watch=(watch_row("cat → meow", kl=0.01, dlogp=-0.2), watch_row("dog says", kl=3.0),
               watch_row("example", kl=5.0, is_example=True)),
        input_tokens=("2", "plus", "<i>"), token_grad=(0.1, 0.2, 0.3),
    )  # fmt: skip


def test_timeline_row_is_the_result_total_and_loss():
    r = result(3, delta=2.0, committed=True)
    (row,) = panels.timeline(r)
    assert set(row) == set(panels.TIMELINE_KEYS)
    assert row["delta_l2"] == pytest.approx(math.sqrt(4.0))  # Σ sum_sq = delta²
    assert row["delta_l1"] == pytest.approx(12.0)
    assert (row["step"], row["kind"], row["status"]) == (3, "committed", "ok")
    assert row["label"] == "<script>x</script> 2 plus 2 is → 5", "labels stay literal"
    assert panels.timeline(r, undone=True)[0]["status"] == "undone"


def test_timeline_kinds_and_missing_values():
    failed = result(1, status="non-finite loss", loss_after=NAN)
    (row,) = panels.timeline(failed)
    assert row["kind"] == "failed" and row["loss_after"] is None
    assert panels.timeline(result(0))[0]["kind"] == "isolated"
    json.dumps(row, allow_nan=False)


def test_layers_ordered_input_to_output_with_naive_norms():
    rows = panels.layers(result(delta=2.0))
    assert [r["layer"] for r in rows] == ["embeddings+lm_head", "block.0", "block.1", "final_norm"]
    assert [r["layer_index"] for r in rows] == [0, 1, 2, 3]
    by = {r["layer"]: r for r in rows}
    assert by["block.1"]["delta_l2"] == pytest.approx(math.sqrt(0.25 * 4))
    assert by["block.1"]["delta_rel"] == pytest.approx(1.0 / 2.0)  # ‖Δ‖ / ‖θ‖ = 1 / √4
    assert by["final_norm"]["delta_l2"] == 0.0
    assert all(set(r) == set(panels.LAYER_KEYS) for r in rows)


def test_watch_rows_leave_out_the_example_and_nan():
    rows = panels.watch(result(2))
    assert [r["label"] for r in rows] == ["cat → meow", "dog says"]
    assert rows[0]["dlogp_target"] == pytest.approx(-0.2) and rows[1]["dlogp_target"] is None
    assert rows[1]["top1_flip"] is True and rows[1]["logit_l2"] == pytest.approx(6.0)
    assert all(r["step"] == 2 and set(r) == set(panels.WATCH_KEYS) for r in rows)


def test_topk_rows_before_and_after_for_one_label():
    rows = panels.topk(result(), "dog says")
    assert [(r["when"], r["rank"], r["token"]) for r in rows] == [
        ("before", 0, "a"), ("before", 1, "<b>"), ("after", 0, "<b>"), ("after", 1, "a"),
    ]  # fmt: skip
    assert len(panels.topk(result())) == 3 * 4, "every watch row, the example included"


def test_drift_rows_per_item_and_layer():
    rows = panels.drift(result())
    assert len(rows) == 3 * 2
    row = next(r for r in rows if r["label"] == "dog says" and r["layer"] == "block.0")
    assert row["cos_drift"] == pytest.approx(0.3) and row["rel_l2_drift"] == pytest.approx(3.0)
    assert row["layer_index"] == 1


def test_trajectory_path_and_magnitude_from_results_alone():
    deltas = [1.0, 3.0, 2.0, 0.5]
    committed = [result(i, delta=d, committed=True) for i, d in enumerate(deltas)]
    rows = panels.trajectory(committed, [(None, None)] * 4, window=3)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    cumulative = [sum(deltas[: i + 1]) for i in range(4)]
    assert [r["path_length"] for r in rows] == pytest.approx(cumulative)
    for i, row in enumerate(rows[1:], start=1):
        window = deltas[max(0, i - 2) : i + 1]
        expected = statistics.pstdev(window) / statistics.fmean(window)
        assert row["magnitude_volatility"] == pytest.approx(expected)
        assert row["displacement"] is None and row["direction_volatility"] is None
    first = rows[0]
    assert first["displacement"] == pytest.approx(1.0) and first["straightness"] == 1.0
    assert first["direction_volatility"] == 0.0 and first["magnitude_volatility"] is None


def test_trajectory_uses_measured_distances():
    committed = [result(i, delta=d, committed=True) for i, d in enumerate([1.0, 1.0])]
    rows = panels.trajectory(committed, [(None, None), (0.5, 0.5)], window=8)
    assert rows[1]["displacement"] == 0.5
    assert rows[1]["straightness"] == pytest.approx(0.25)
    assert rows[1]["direction_volatility"] == pytest.approx(1 - 0.5 / 2.0)
    with pytest.raises(ValueError):
        panels.trajectory(committed, [(None, None)], window=8)


def _attribution(scores: tuple[float, ...]) -> TokenAttribution:
    return TokenAttribution(method="ig", prompt="p", target=" t", input_tokens=("<script>", "b"),
                            target_tokens=("t",), scores=(scores,), sequence=scores,
                            convergence_delta=(0.0,))  # fmt: skip


def test_token_rows_of_a_shift_and_of_a_steps_token_grad():
    step = result(7)
    shift = AttributionShift(_attribution((1.0, NAN)), _attribution((0.5, 0.25)), step)
    rows = panels.token_shift(shift)
    assert [(r["method"], r["when"]) for r in rows] == [
        ("ig", "before"), ("ig", "before"), ("ig", "after"), ("ig", "after"),
        ("token_grad", "before"), ("token_grad", "before"), ("token_grad", "before"),
    ]  # fmt: skip
    assert rows[0]["token"] == "<script>" and rows[1]["value"] is None
    assert {r["step"] for r in rows} == {7}
    assert [r["value"] for r in panels.step_tokens(step)] == [0.1, 0.2, 0.3]
    assert all(set(r) == set(panels.TOKEN_KEYS) for r in rows)
    json.dumps(rows, allow_nan=False)
