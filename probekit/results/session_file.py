"""Session files: probe results as versioned, strict JSON, written atomically.

Data only: strict JSON (no NaN literals — a missing value is ``null``), no pickle,
no model weights (the model is referenced by name). Reading checks the format
name, the version and a size limit before parsing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from probekit.errors import ProbekitError
from probekit.results.probe import LayerDrift, ProbeResult, TensorDelta, WatchRow

FORMAT = "probekit.session"
VERSION = 1
MAX_BYTES = 256 * 1024**2


def to_json_value(value: Any) -> Any:
    """Dataclasses, tuples and floats as strict-JSON values (NaN/inf → null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save(path: str | os.PathLike[str], results: list[ProbeResult], meta: dict[str, Any]) -> Path:
    """Write results and metadata to ``path`` atomically (temp file, fsync, rename)."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "meta": to_json_value(meta),
        "results": [to_json_value(r) | {"total": to_json_value(r.total)} for r in results],
    }
    text = json.dumps(doc, allow_nan=False, ensure_ascii=False, indent=1)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load(path: str | os.PathLike[str]) -> tuple[list[ProbeResult], dict[str, Any]]:
    """Read a session file written by :func:`save`; rejects anything else with a clear error."""
    source = Path(path)
    if source.stat().st_size > MAX_BYTES:
        raise ProbekitError(f"{source} is larger than {MAX_BYTES} bytes; not a session file")
    try:
        doc = json.loads(source.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProbekitError(f"{source} is not a probekit session file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProbekitError(f"{source} is not a probekit session file (no format marker)")
    if doc.get("version") != VERSION:
        raise ProbekitError(
            f"{source} has session format version {doc.get('version')!r}; this probekit reads "
            f"version {VERSION}"
        )
    try:
        return [_result(r) for r in doc["results"]], dict(doc.get("meta") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbekitError(f"{source} has a malformed result: {exc}") from exc


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a session file")


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _result(raw: dict[str, Any]) -> ProbeResult:
    fields = {f.name for f in dataclasses.fields(ProbeResult)}
    data = {k: v for k, v in raw.items() if k in fields}
    data["tensors"] = tuple(_tensor(t) for t in raw["tensors"])
    data["watch"] = tuple(_watch(w) for w in raw["watch"])
    data["example"] = _watch(raw["example"]) if raw.get("example") else None
    for key in ("loss_before", "loss_after", "lr", "self_influence"):
        data[key] = _float(raw.get(key))
    for key in ("token_nll_before", "token_nll_after"):
        data[key] = tuple(_float(v) for v in raw[key])
    for key in ("target_tokens", "notes"):
        data[key] = tuple(str(v) for v in raw[key])
    data["input_tokens"] = tuple(str(v) for v in raw.get("input_tokens", ()))
    data["token_grad"] = tuple(_float(v) for v in raw.get("token_grad", ()))
    return ProbeResult(**data)


def _tensor(raw: dict[str, Any]) -> TensorDelta:
    floats = ("sum_sq", "sum_abs", "max_abs", "theta_sq", "grad_sq", "decay_sq")
    values = {k: _float(raw[k]) for k in floats}
    return TensorDelta(
        name=str(raw["name"]),
        layer=str(raw["layer"]),
        numel=int(raw["numel"]),
        changed=int(raw["changed"]),
        lost=int(raw["lost"]),
        aliases=tuple(str(a) for a in raw.get("aliases", ())),
        **values,
    )


def _watch(raw: dict[str, Any]) -> WatchRow:
    def pairs(items: list[Any]) -> tuple[tuple[str, float], ...]:
        return tuple((str(t), _float(p)) for t, p in items)

    return WatchRow(
        label=str(raw["label"]),
        prompt=str(raw["prompt"]),
        target=None if raw["target"] is None else str(raw["target"]),
        is_example=bool(raw["is_example"]),
        kl=_float(raw["kl"]),
        dlogp_target=_float(raw["dlogp_target"]),
        top1_flip=bool(raw["top1_flip"]),
        logit_l2=_float(raw["logit_l2"]),
        topk_before=pairs(raw["topk_before"]),
        topk_after=pairs(raw["topk_after"]),
        drift=tuple(
            LayerDrift(str(d["layer"]), _float(d["cos_drift"]), _float(d["rel_l2_drift"]))
            for d in raw["drift"]
        ),
        influence=_float(raw.get("influence")),
        dz_pred=_float(raw.get("dz_pred")),
        linear_residual=_float(raw.get("linear_residual")),
    )
