"""Session files: probe results as versioned, strict JSON, written atomically.

Data only: strict JSON (no NaN literals — a missing value is ``null``), no pickle,
no model weights (the model is referenced by name). The format is described once, in
``schema/session.schema.json``; every result is checked against it when written and
when read. Reading is bounded (size, nesting depth) and lean: results are converted
one at a time, so a large file costs about its own size again in memory, not several
times that. Nothing read from a file is acted on: a model name is only data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from probekit.errors import ProbekitError
from probekit.results import bounded_json, validation
from probekit.results.probe import LayerDrift, ProbeResult, TensorDelta, WatchRow

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "probekit.session"
VERSION = 1
# Default read limit; pass ``max_bytes=`` to read larger files on purpose.
MAX_BYTES = 256 * 1024**2
TEMP_SUFFIX = ".probekit-tmp"
# A temp file this old is left over from a save that was killed; newer ones may be in use.
STALE_TEMP_SECONDS = 60.0


@dataclass(frozen=True)
class SavedSession:
    """What a session file holds: the probe results, oldest first, and the metadata.

    Only data: the model is named (``model``), never loaded.
    """

    results: tuple[ProbeResult, ...]
    meta: dict[str, Any]
    version: int = VERSION

    @property
    def model(self) -> dict[str, Any]:
        """The model the results came from, as recorded (``{"name": ...}`` at least)."""
        model = self.meta.get("model")
        if isinstance(model, dict):
            return dict(model)
        return {"name": model if isinstance(model, str) else ""}

    @property
    def created(self) -> str | None:
        return self.meta.get("created")

    @property
    def probekit_version(self) -> str | None:
        return self.meta.get("probekit_version")

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[ProbeResult]:
        return iter(self.results)

    def to_frame(self) -> pd.DataFrame:
        """All results' tidy frames, one after the other."""
        import pandas as pd

        from probekit.results.probe import FRAME_COLUMNS

        frames = [r.to_frame() for r in self.results]
        return (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=list(FRAME_COLUMNS))
        )


def to_json_value(value: Any) -> Any:
    """Dataclasses, tuples and floats as strict-JSON values (NaN/inf → null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_json(result: ProbeResult) -> dict[str, Any]:
    """One result as the session format's JSON object (with its derived ``total``)."""
    out: dict[str, Any] = to_json_value(result)
    out["total"] = to_json_value(result.total)
    return out


# -- writing ------------------------------------------------------------------------
def save(
    path: str | os.PathLike[str], results: Iterable[ProbeResult], meta: dict[str, Any]
) -> Path:
    """Write results and metadata to ``path`` atomically; the previous file survives failure.

    The file is written to a hidden temp file in the same folder, flushed to disk and
    renamed over ``path``. Temp files left beside ``path`` by a save that was killed are
    removed. The new file keeps the old one's permissions (else the umask's default).
    """
    target = Path(path)
    head = {"format": FORMAT, "version": VERSION, "meta": to_json_value(meta)}
    validation.check(head["meta"], "session", "meta", where=["meta"], what=f"cannot save {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for chunk in _chunks(head, results, target):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ProbekitError(
                f"could not save {target}: {exc}; the previous file (if any) is unchanged"
            ) from exc
        raise
    _sync_folder(target.parent)
    return target


def _chunks(head: dict[str, Any], results: Iterable[ProbeResult], target: Path) -> Iterator[str]:
    """The document as text pieces: the header, then one result per line."""
    yield _dumps(head)[:-1] + ', "results": [\n'
    for i, result in enumerate(results):
        raw = result_json(result)
        validation.check(
            raw, "session", "result", where=["results", i], what=f"cannot save {target}"
        )
        yield ("" if i == 0 else ",\n") + _dumps(raw)
    yield "\n]}\n"


def _dumps(value: Any) -> str:
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    # A lone surrogate (possible in a Python str) cannot be UTF-8 encoded: write it as
    # its JSON escape, which reads back as the same character.
    return _SURROGATE.sub(_escape, text) if _SURROGATE.search(text) else text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no other portable way to read it
    os.umask(mask)
    return mask


def _remove_stale_temps(target: Path) -> None:
    """Delete our own temp files for ``target`` left behind by a save that was killed."""
    own = re.compile(rf"^\.{re.escape(target.name)}\.[a-z0-9_]{{8}}(?:{re.escape(TEMP_SUFFIX)})?$")
    try:
        candidates = [p for p in target.parent.iterdir() if own.match(p.name)]
    except OSError:
        return
    now = time.time()
    for leftover in candidates:
        with contextlib.suppress(OSError):
            info = leftover.lstat()
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_TEMP_SECONDS:
                leftover.unlink()


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- reading ------------------------------------------------------------------------
def load_session(
    path: str | os.PathLike[str] | BinaryIO, *, max_bytes: int | None = MAX_BYTES
) -> SavedSession:
    """Read a session file written by :func:`save` (or ``probe.save``); data only.

    Rejects anything else with a :class:`ProbekitError` that names the problem: not a
    regular file, over ``max_bytes`` (default 256 MiB; ``None`` for no limit), not UTF-8,
    nested too deeply, ``NaN``/``Infinity`` literals, another format or version, or a
    field of the wrong type or size (the error names the field, e.g. ``results[3].prompt``).
    """
    name = _display_name(path)
    try:
        text = bounded_json.read_text(path, max_bytes)
        bounded_json.check_depth(text)
        return _parse(text, name)
    except bounded_json.BadJSON as exc:
        raise ProbekitError(f"{name} is not a readable probekit session file: {exc}") from None
    except OSError as exc:
        raise ProbekitError(f"cannot read {name}: {exc.strerror or exc}") from None


def load(path: str | os.PathLike[str]) -> tuple[list[ProbeResult], dict[str, Any]]:
    """Read a session file: ``(results, meta)``. See :func:`load_session`."""
    session = load_session(path)
    return list(session.results), session.meta


def _parse(text: str, name: str) -> SavedSession:
    header: dict[str, Any] = {}
    results: list[ProbeResult] | None = None
    pending: Any = None
    for key, value in bounded_json.iter_object(text, frozenset({"results"})):
        if key != "results":
            header[key] = value
            _check_envelope(header, name, complete=False)
        elif "format" in header and "version" in header:
            results = _convert_all(value, name)
        else:  # keys out of the usual order: check the envelope before anything else
            pending = list(value) if isinstance(value, Iterator) else value
    _check_envelope(header, name, complete=True)
    if pending is not None:
        results = _convert_all(pending, name)
    if results is None:
        raise ProbekitError(f"{name}: results: the required field is missing")
    unknown = sorted(set(header) - {"format", "version", "meta"})
    if unknown:
        raise ProbekitError(
            f"{name}: unexpected top-level field(s) {', '.join(map(repr, unknown[:5]))}"
        )
    meta = header.get("meta", {})
    validation.check(meta, "session", "meta", where=["meta"], what=name)
    _check_finite(meta, ["meta"], name)
    return SavedSession(tuple(results), dict(meta), VERSION)


def _check_envelope(header: dict[str, Any], name: str, *, complete: bool) -> None:
    if "format" in header and header["format"] != FORMAT:
        raise ProbekitError(f"{name} is not a probekit session file (its format is not {FORMAT!r})")
    version = header.get("version", VERSION)
    if version != VERSION or isinstance(version, bool):
        newer = " (the file is newer: upgrade probekit)" if _is_newer(version) else ""
        raise ProbekitError(
            f"{name} has session format version {validation.short(version)}; this probekit "
            f"reads version {VERSION}{newer}"
        )
    if complete and ("format" not in header or "version" not in header):
        raise ProbekitError(f"{name} is not a probekit session file (no format and version)")


def _is_newer(version: Any) -> bool:
    return isinstance(version, int) and not isinstance(version, bool) and version > VERSION


def _convert_all(items: Any, name: str) -> list[ProbeResult]:
    if not isinstance(items, Iterator | list):
        kind = validation.json_type(items)
        raise ProbekitError(f"{name}: results: expected array, got {kind}")
    out = []
    for i, raw in enumerate(items):
        validation.check(raw, "session", "result", where=["results", i], what=name)
        try:
            out.append(_result(raw))
        except (ValueError, OverflowError) as exc:
            raise ProbekitError(f"{name}: results[{i}]: {exc}") from None
    return out


def _check_finite(value: Any, where: list[str | int], name: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ProbekitError(f"{name}: {validation.field_path(where)}: not a finite number")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, [*where, k], name)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, [*where, i], name)


def _display_name(path: Any) -> str:
    if isinstance(path, str | os.PathLike):
        return str(path)
    return str(getattr(path, "name", "<stream>"))


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{str(value)[:40]} is not a finite number")
    return number


def _floats(values: Iterable[Any]) -> tuple[float, ...]:
    return tuple(_float(v) for v in values)


def _result(raw: dict[str, Any]) -> ProbeResult:
    return ProbeResult(
        step=int(raw["step"]),
        committed=raw["committed"],
        status=raw["status"],
        prompt=raw["prompt"],
        target=raw["target"],
        target_tokens=tuple(raw["target_tokens"]),
        optimizer=raw["optimizer"],
        lr=_float(raw["lr"]),
        steps=int(raw["steps"]),
        loss_before=_float(raw["loss_before"]),
        loss_after=_float(raw["loss_after"]),
        token_nll_before=_floats(raw["token_nll_before"]),
        token_nll_after=_floats(raw["token_nll_after"]),
        tensors=tuple(_tensor(t) for t in raw["tensors"]),
        watch=tuple(_watch(w) for w in raw["watch"]),
        self_influence=_float(raw.get("self_influence")),
        notes=tuple(raw["notes"]),
        input_tokens=tuple(raw.get("input_tokens", ())),
        token_grad=_floats(raw.get("token_grad", ())),
    )


def _tensor(raw: dict[str, Any]) -> TensorDelta:
    return TensorDelta(
        name=raw["name"],
        layer=raw["layer"],
        numel=int(raw["numel"]),
        sum_sq=_float(raw["sum_sq"]),
        sum_abs=_float(raw["sum_abs"]),
        max_abs=_float(raw["max_abs"]),
        changed=int(raw["changed"]),
        lost=int(raw["lost"]),
        theta_sq=_float(raw["theta_sq"]),
        grad_sq=_float(raw["grad_sq"]),
        decay_sq=_float(raw.get("decay_sq", 0.0)),
        aliases=tuple(raw.get("aliases", ())),
    )


def _watch(raw: dict[str, Any]) -> WatchRow:
    return WatchRow(
        label=raw["label"],
        prompt=raw["prompt"],
        target=raw["target"],
        is_example=raw["is_example"],
        kl=_float(raw["kl"]),
        dlogp_target=_float(raw["dlogp_target"]),
        top1_flip=raw["top1_flip"],
        logit_l2=_float(raw["logit_l2"]),
        topk_before=tuple((t, _float(p)) for t, p in raw["topk_before"]),
        topk_after=tuple((t, _float(p)) for t, p in raw["topk_after"]),
        drift=tuple(
            LayerDrift(d["layer"], _float(d["cos_drift"]), _float(d["rel_l2_drift"]))
            for d in raw["drift"]
        ),
        influence=_float(raw.get("influence")),
        dz_pred=_float(raw.get("dz_pred")),
        linear_residual=_float(raw.get("linear_residual")),
    )
