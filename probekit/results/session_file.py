"""Session files: probe results as versioned, strict JSON, written atomically.

Data only: strict JSON (no NaN literals — a missing value is ``null``), no pickle,
no model weights (the model is referenced by name). The format is described once, in
``schema/session.schema.json``; every result is checked against it when written and
(by ``session_reader``, whose names this module re-exports) when read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from probekit.errors import ProbekitError
from probekit.results import validation
from probekit.results.probe import ProbeResult
from probekit.results.session_codec import FORMAT, VERSION, result_json, to_json_value
from probekit.results.session_reader import MAX_BYTES, SavedSession, load, load_session

TEMP_SUFFIX = ".probekit-tmp"
# A temp file this old is left over from a save that was killed; newer ones may be in use.
STALE_TEMP_SECONDS = 60.0

__all__ = ["FORMAT", "MAX_BYTES", "VERSION", "SavedSession", "load", "load_session", "save"]


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
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_escape, text)


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
    """Delete our own temp files for ``target`` left behind by a save that was killed.

    Only names of our pattern (``.<name>.<8 random>.probekit-tmp``, or the suffix-less
    name earlier releases used — those only if they hold the start of a session file),
    only regular files, and only once they are old enough not to belong to a save that
    is still running.
    """
    ours = re.compile(rf"^\.{re.escape(target.name)}\.[a-z0-9_]{{8}}({re.escape(TEMP_SUFFIX)})?$")
    try:
        candidates = [(p, m) for p in target.parent.iterdir() if (m := ours.match(p.name))]
    except OSError:
        return
    now = time.time()
    for leftover, match in candidates:
        with contextlib.suppress(OSError):
            info = leftover.lstat()
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime <= STALE_TEMP_SECONDS:
                continue
            if match.group(1) is None:
                with leftover.open("rb") as f:
                    if f.read(len(_LEGACY_START)) != _LEGACY_START:
                        continue
            leftover.unlink()


_LEGACY_START = b'{\n "format": "probekit.session"'


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
