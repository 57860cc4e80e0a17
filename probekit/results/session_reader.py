"""Reading session files: bounded, checked against the schema, lean, data only.

:func:`load_session` refuses anything but a regular file of at most ``max_bytes``,
bounds the nesting depth before parsing, and checks every result against
``schema/session.schema.json`` (an error names the field, e.g. ``results[3].prompt``).
Files in the layout ``session_file.save`` writes are read one line at a time, so a long
history costs about the size of its results in memory, not several times the file.
Nothing read is acted on: a model named in a file is returned as data, never loaded.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from probekit.errors import ProbekitError
from probekit.results import bounded_json, session_codec, validation
from probekit.results.probe import ProbeResult
from probekit.results.session_codec import FORMAT, VERSION

if TYPE_CHECKING:
    import pandas as pd

# Default read limit; pass ``max_bytes=None`` to read larger files on purpose.
MAX_BYTES = 256 * 1024**2


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
    def lora(self) -> dict[str, Any] | None:
        """The LoRA adapters' configuration when a ``LoraProbe`` made the results, else None."""
        settings = self.meta.get("settings")
        lora = settings.get("lora") if isinstance(settings, dict) else None
        return dict(lora) if isinstance(lora, dict) else None

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


def load_session(
    path: str | os.PathLike[str] | BinaryIO, *, max_bytes: int | None = MAX_BYTES
) -> SavedSession:
    """Read a session file written by :func:`save` (or ``probe.save``); data only.

    Rejects anything else with a :class:`ProbekitError` that names the problem: not a
    regular file, over ``max_bytes`` (default 256 MiB; ``None`` for no limit), not UTF-8,
    nested too deeply, ``NaN``/``Infinity`` literals, another format or version, or a
    field of the wrong type or size (the error names the field, e.g. ``results[3].prompt``).
    Nothing in the file is acted on: a model named in it is returned as data.
    """
    name = _display_name(path)
    try:
        if isinstance(path, str | os.PathLike):
            with bounded_json.open_regular(path) as f:
                saved = _read_lines(f, name, max_bytes)
                if saved is None:
                    f.seek(0)
                    saved = _parse(bounded_json.read_text(f, max_bytes), name)
            return saved
        return _parse(bounded_json.read_text(path, max_bytes), name)
    except bounded_json.BadJSON as exc:
        hint = ""
        if "limit of" in str(exc):
            hint = (
                " (pass max_bytes=None to read it anyway; it needs a few times its size in memory)"
            )
        raise ProbekitError(
            f"{name} is not a readable probekit session file: {exc}{hint}"
        ) from None
    except OSError as exc:
        raise ProbekitError(f"cannot read {name}: {exc.strerror or exc}") from None


def load(path: str | os.PathLike[str]) -> tuple[list[ProbeResult], dict[str, Any]]:
    """Read a session file: ``(results, meta)``. See :func:`load_session`."""
    session = load_session(path)
    return list(session.results), session.meta


_LINE_HEAD = b'{"format": "probekit.session", "version": 1, "meta": '
_LINE_OPEN = b', "results": [\n'


def _read_lines(f: BinaryIO, name: str, max_bytes: int | None) -> SavedSession | None:
    """The lean path for the layout :func:`save` writes: a header line, one result per
    line, a closing line — each line parsed, checked and converted on its own, so only
    one line of text is held at a time. ``None`` (read it as a whole instead) for any
    other layout or any surprise; whatever is wrong is then reported by the full reader.
    """
    limit = sys.maxsize - 1 if max_bytes is None else max_bytes
    budget = limit

    def line() -> bytes:
        nonlocal budget
        text = f.readline(budget + 1)
        budget -= len(text)
        if budget < 0:
            raise bounded_json.BadJSON(f"larger than the limit of {limit:,} bytes")
        return text

    first = line()
    if not (first.startswith(_LINE_HEAD) and first.endswith(_LINE_OPEN)):
        return None
    try:
        head = _parse(first[:-1].decode("utf-8") + "]}", name)
    except (bounded_json.BadJSON, UnicodeDecodeError):
        return None
    results: list[ProbeResult] = []
    memo: dict[str, str] = {}
    more = True
    while True:
        body = line().strip()
        if not body:
            if f.read(1):  # a blank line (the one of an empty history): read on
                f.seek(-1, os.SEEK_CUR)
                continue
            return None  # ended before the closing line
        if body == b"]}":
            while chunk := f.read(min(budget + 1, 1 << 16)):  # only whitespace may follow
                budget -= len(chunk)
                if chunk.strip() or budget < 0:
                    return None
            return SavedSession(tuple(results), head.meta, VERSION)
        if not more:
            return None
        more = body.endswith(b",")
        try:
            text = (body[:-1] if more else body).decode("utf-8")
            raw = bounded_json.loads(text, finite=False)
        except (bounded_json.BadJSON, UnicodeDecodeError):
            return None
        results.append(_convert(len(results), raw, name, memo))


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
    bounded_json.check_finite(meta, "meta")
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
    memo: dict[str, str] = {}
    return [_convert(i, raw, name, memo) for i, raw in enumerate(items)]


def _convert(i: int, raw: Any, name: str, memo: dict[str, str]) -> ProbeResult:
    validation.check(raw, "session", "result", where=["results", i], what=name)
    try:
        return session_codec.result_from_json(raw, memo)
    except (ValueError, OverflowError) as exc:
        raise ProbekitError(f"{name}: results[{i}]: {exc}") from None


def _display_name(path: Any) -> str:
    if isinstance(path, str | os.PathLike):
        return str(path)
    return str(getattr(path, "name", "<stream>"))
