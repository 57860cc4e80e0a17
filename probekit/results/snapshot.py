"""Board snapshots: the data behind every panel of a board, as one versioned JSON bundle.

A snapshot is what a saved notebook keeps of a board (MIME type
``application/vnd.probekit.board+json``): it renders without a kernel. It is built from
the panels' rows (``probekit.results.panels``), checked against
``schema/board.schema.json`` and bounded in size; it is strict JSON (a non-finite
number becomes ``null``). Reading one back validates it the same way.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from probekit.errors import ProbekitError
from probekit.results import bounded_json, validation

FORMAT = "probekit.board"
VERSION = 1
MIME_TYPE = "application/vnd.probekit.board+json"
PANELS = ("timeline", "layers", "watch", "topk", "drift", "trajectory", "tokens")
# A snapshot travels inside a notebook: keep it well below what a notebook should hold.
MAX_BYTES = 16 * 1024**2


def board_snapshot(
    panels: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    model: Mapping[str, Any],
    settings: Mapping[str, Any],
    selected_step: int | None,
) -> dict[str, Any]:
    """The snapshot bundle for these panel rows (a panel left out is empty).

    Raises :class:`ProbekitError` naming the field when a row does not fit the schema,
    and when the bundle would exceed ``MAX_BYTES`` of JSON.
    """
    unknown = sorted(set(panels) - set(PANELS))
    if unknown:
        raise ProbekitError(f"unknown panel(s) {unknown}; the panels are {', '.join(PANELS)}")
    from probekit import __version__

    bundle = {
        "format": FORMAT,
        "version": VERSION,
        "probekit_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "model": plain(dict(model)),
        "settings": plain(dict(settings)),
        "selected_step": plain(selected_step),
        "panels": {name: [plain(dict(row)) for row in panels.get(name, ())] for name in PANELS},
    }
    return checked(bundle, "board", "board snapshot")


def validate_snapshot(obj: Any) -> dict[str, Any]:
    """``obj`` (a parsed bundle, or its JSON text/bytes) if it is a valid snapshot; else raise."""
    if isinstance(obj, str | bytes | bytearray):
        raw = obj.encode("utf-8") if isinstance(obj, str) else bytes(obj)
        if len(raw) > MAX_BYTES:
            raise ProbekitError(f"board snapshot: larger than the limit of {MAX_BYTES:,} bytes")
        try:
            obj = bounded_json.loads(raw.decode("utf-8"))
        except (bounded_json.BadJSON, UnicodeDecodeError) as exc:
            raise ProbekitError(f"board snapshot: not readable JSON: {exc}") from None
    check_header(obj, "board snapshot", FORMAT, VERSION)
    return checked(obj, "board", "board snapshot")


def check_header(obj: Any, what: str, format: str, version: int) -> None:
    """Raise unless ``obj`` is an object of this ``format`` and ``version`` (a ``what``)."""
    if not isinstance(obj, dict):
        raise ProbekitError(f"{what}: expected an object, got {validation.json_type(obj)}")
    if obj.get("format") != format:
        raise ProbekitError(f"not a {what} (its format is not {format!r})")
    if obj.get("version") != version or isinstance(obj.get("version"), bool):
        raise ProbekitError(
            f"{what} version {validation.short(obj.get('version'))}; this probekit "
            f"reads version {version}"
        )


def checked(
    bundle: dict[str, Any],
    schema: str,
    what: str,
    too_large: str = "show fewer steps (the board's chart window) before taking a snapshot",
) -> dict[str, Any]:
    """``bundle`` if it fits ``schema`` and is at most ``MAX_BYTES`` of strict JSON; else raise.

    ``too_large`` is the advice given when it is over the size limit.
    """
    validation.check(bundle, schema, what=what)
    try:
        text = json.dumps(bundle, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:  # a NaN/inf a caller put in by hand
        raise ProbekitError(f"{what}: {exc} (strict JSON: use null)") from None
    except RecursionError:
        raise ProbekitError(f"{what}: nested too deeply") from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ProbekitError(
            f"{what}: {size:,} bytes of JSON, over the limit of {MAX_BYTES:,}; {too_large}"
        )
    return bundle


def plain(value: Any) -> Any:
    """Rows as plain JSON values: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        return plain(item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
