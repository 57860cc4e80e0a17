"""Probe results to and from the session format's JSON values (see ``session_file``).

Writing: dataclasses become objects, tuples arrays, non-finite floats ``null``.
Reading (of values already checked against the schema): the reverse, with ``null`` as
NaN; repeated strings (tensor names, layers, tokens, labels) share one object, which
keeps a long history small in memory.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from probekit.results.probe import LayerDrift, ProbeResult, TensorDelta, WatchRow

FORMAT = "probekit.session"
VERSION = 1


def to_json_value(value: Any) -> Any:
    """Dataclasses, tuples and floats as strict-JSON values (NaN/inf → null)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is list or kind is tuple:
        return [to_json_value(v) for v in value]
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: to_json_value(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, float):  # a float subclass (numpy)
        return to_json_value(float(value))
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    return value


_FIELDS: dict[type, tuple[str, ...]] = {}


def result_json(result: ProbeResult) -> dict[str, Any]:
    """One result as the session format's JSON object (with its derived ``total``)."""
    out: dict[str, Any] = to_json_value(result)
    out["total"] = to_json_value(result.total)
    return out


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{str(value)[:40]} is not a finite number")
    return number


def _floats(values: Iterable[Any]) -> tuple[float, ...]:
    return tuple(_float(v) for v in values)


def result_from_json(raw: dict[str, Any], memo: dict[str, str] | None = None) -> ProbeResult:
    """A :class:`ProbeResult` from its (schema-valid) JSON object; ``memo`` shares strings."""
    same = (memo if memo is not None else {}).setdefault

    return ProbeResult(
        step=int(raw["step"]),
        committed=raw["committed"],
        status=raw["status"],
        prompt=raw["prompt"],
        target=raw["target"],
        target_tokens=tuple(same(t, t) for t in raw["target_tokens"]),
        optimizer=raw["optimizer"],
        lr=_float(raw["lr"]),
        steps=int(raw["steps"]),
        loss_before=_float(raw["loss_before"]),
        loss_after=_float(raw["loss_after"]),
        token_nll_before=_floats(raw["token_nll_before"]),
        token_nll_after=_floats(raw["token_nll_after"]),
        tensors=tuple(_tensor(t, same) for t in raw["tensors"]),
        watch=tuple(_watch(w, same) for w in raw["watch"]),
        example=_watch(raw["example"], same) if raw.get("example") is not None else None,
        self_influence=_float(raw.get("self_influence")),
        notes=tuple(raw["notes"]),
        input_tokens=tuple(same(t, t) for t in raw.get("input_tokens", ())),
        token_grad=_floats(raw.get("token_grad", ())),
    )


def _tensor(raw: dict[str, Any], same: Any) -> TensorDelta:
    return TensorDelta(
        name=same(raw["name"], raw["name"]),
        layer=same(raw["layer"], raw["layer"]),
        numel=int(raw["numel"]),
        sum_sq=_float(raw["sum_sq"]),
        sum_abs=_float(raw["sum_abs"]),
        max_abs=_float(raw["max_abs"]),
        changed=int(raw["changed"]),
        lost=int(raw["lost"]),
        theta_sq=_float(raw["theta_sq"]),
        grad_sq=_float(raw["grad_sq"]),
        decay_sq=_float(raw.get("decay_sq", 0.0)),
        aliases=tuple(same(a, a) for a in raw.get("aliases", ())),
    )


def _watch(raw: dict[str, Any], same: Any) -> WatchRow:
    return WatchRow(
        label=same(raw["label"], raw["label"]),
        prompt=same(raw["prompt"], raw["prompt"]),
        target=raw["target"] if raw["target"] is None else same(raw["target"], raw["target"]),
        is_example=raw["is_example"],
        kl=_float(raw["kl"]),
        dlogp_target=_float(raw["dlogp_target"]),
        top1_flip=raw["top1_flip"],
        logit_l2=_float(raw["logit_l2"]),
        topk_before=tuple((same(t, t), _float(p)) for t, p in raw["topk_before"]),
        topk_after=tuple((same(t, t), _float(p)) for t, p in raw["topk_after"]),
        drift=tuple(
            LayerDrift(
                same(d["layer"], d["layer"]), _float(d["cos_drift"]), _float(d["rel_l2_drift"])
            )
            for d in raw["drift"]
        ),
        influence=_float(raw.get("influence")),
        dz_pred=_float(raw.get("dz_pred")),
        linear_residual=_float(raw.get("linear_residual")),
    )
