"""Reading JSON from files we did not write: bounded in size, depth and number range.

Everything here is a defence against hostile input, before and while parsing:

- :func:`read_text` reads at most ``max_bytes`` from a regular file (the size the file
  system reports is not trusted; devices and FIFOs are refused without blocking) and
  decodes it as strict UTF-8;
- :func:`check_depth` bounds the nesting depth *before* the recursive parser sees it;
- :func:`iter_object` parses a top-level object key by key and can hand out the
  elements of a large array one at a time, so a caller can convert and drop each one
  (a lean load) instead of holding the whole parsed tree;
- the literals ``NaN``/``Infinity`` are rejected (and :func:`check_finite` catches a
  number too large for a float, which Python parses as infinity).

A failure raises :class:`BadJSON` (a ``ValueError``) with a message meant for people.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

DEFAULT_MAX_DEPTH = 64

_WS = re.compile(r"[ \t\n\r]*")
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')


class BadJSON(ValueError):
    """The input is not acceptable JSON (too big, too deep, malformed, non-finite)."""


def read_text(
    source: str | os.PathLike[str] | BinaryIO,
    max_bytes: int | None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> str:
    """The UTF-8 text of ``source`` (a path or a binary file object), depth-checked.

    Reads at most ``max_bytes`` (``None``: no limit) and refuses nesting deeper than
    ``max_depth`` (see :func:`check_depth`) before decoding.
    """
    if isinstance(source, str | os.PathLike):
        data = _read_path(os.fspath(source), max_bytes)
    else:
        data = _read_stream(source, max_bytes)
    check_depth(data, max_depth)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJSON(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for binary reading; refuse devices, FIFOs, sockets, folders.

    Opened without blocking (a FIFO must not wait for a writer); the type is checked on
    the open descriptor, so nothing can be swapped in between.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadJSON("not a regular file (a device, FIFO, socket or directory)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_path(path: str, max_bytes: int | None) -> bytes:
    with open_regular(path) as f:
        return _read_stream(f, max_bytes)


def _read_stream(stream: BinaryIO, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        return stream.read()
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadJSON(f"larger than the limit of {max_bytes:,} bytes")
    return data


def check_depth(data: bytes | str, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Refuse JSON whose arrays/objects nest deeper than ``max_depth`` (or never close).

    Counts brackets outside strings in one pass over the bytes, so that a recursive
    parser is only ever given input of bounded depth. (In UTF-8 every byte of a
    multi-byte character is >= 0x80, so ASCII brackets and quotes are found exactly.)
    """
    import numpy as np

    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    # Escapes only occur inside strings; dropping them leaves every quote a real one.
    raw = _ESCAPE.sub(b"", raw) if b"\\" in raw else raw
    # Keep only brackets and quotes; then drop the strings: first every `""` (an empty
    # string, or the close and open of two strings with nothing between them — removing
    # such a pair never moves a bracket into or out of a string), then the rest.
    marks = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    marks = _STRING.sub(b"", marks) if b'"' in marks else marks
    levels_at = 0
    chunk = 1 << 20
    for start in range(0, len(marks), chunk):
        codes = np.frombuffer(marks, np.uint8, count=min(chunk, len(marks) - start), offset=start)
        steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int64)
        levels = np.cumsum(steps) + levels_at
        if int(levels.max()) > max_depth:
            raise BadJSON(f"nested deeper than {max_depth} levels")
        levels_at = int(levels[-1])


def loads(text: str, max_depth: int = DEFAULT_MAX_DEPTH, *, finite: bool = True) -> Any:
    """Parse one whole document: depth-checked, strict (no NaN/Infinity literals; with
    ``finite``, no number too large for a float either)."""
    check_depth(text, max_depth)
    value, end = _decode(text, _skip(text, 0))
    if _skip(text, end) != len(text):
        raise BadJSON(f"extra data after the JSON value at offset {end}")
    if finite:
        check_finite(value)
    return value


def iter_object(text: str, streamed: frozenset[str] = frozenset()) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` for each member of the top-level object in ``text``.

    For a key in ``streamed`` whose value is an array, the value is an iterator over its
    elements, parsed one at a time as it is consumed (the rest is consumed before the
    next key). Duplicate top-level keys are refused. Call :func:`check_depth` first, and
    check numbers for overflow (``1e999`` parses as ``inf``) where they are used.
    """
    idx = _skip(text, 0)
    if text[idx : idx + 1] != "{":
        raise BadJSON("not a JSON object")
    idx = _skip(text, idx + 1)
    seen: set[str] = set()
    if text[idx : idx + 1] == "}":
        idx += 1
    else:
        while True:
            if text[idx : idx + 1] != '"':
                raise BadJSON(f"expected a key at offset {idx}")
            key, idx = _decode(text, idx)
            if key in seen:
                raise BadJSON(f"duplicate key {key!r}")
            seen.add(key)
            idx = _expect(text, idx, ":")
            if key in streamed and text[idx : idx + 1] == "[":
                cursor = [idx + 1]
                items = _iter_array(text, cursor)
                yield key, items
                for _ in items:  # whatever the caller left unread
                    pass
                idx = cursor[0]
            else:
                value, idx = _decode(text, idx)
                yield key, value
            idx = _skip(text, idx)
            if text[idx : idx + 1] == ",":
                idx = _skip(text, idx + 1)
                continue
            if text[idx : idx + 1] == "}":
                idx += 1
                break
            raise BadJSON(f"expected ',' or '}}' at offset {idx}")
    if _skip(text, idx) != len(text):
        raise BadJSON(f"extra data after the JSON value at offset {idx}")


def _iter_array(text: str, cursor: list[int]) -> Iterator[Any]:
    idx = _skip(text, cursor[0])
    if text[idx : idx + 1] == "]":
        cursor[0] = idx + 1
        return
    while True:
        value, idx = _decode(text, idx)
        idx = _skip(text, idx)
        cursor[0] = idx
        yield value
        if text[idx : idx + 1] == ",":
            idx = _skip(text, idx + 1)
            cursor[0] = idx
            continue
        if text[idx : idx + 1] == "]":
            cursor[0] = idx + 1
            return
        raise BadJSON(f"expected ',' or ']' at offset {idx}")


def _reject_constant(name: str) -> None:
    raise BadJSON(f"{name} is not allowed (strict JSON: a missing number is null)")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode(text: str, idx: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, idx)
    except BadJSON:
        raise
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise BadJSON(f"malformed JSON: {exc.msg} ({where})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4300 digits
        raise BadJSON(f"malformed JSON: {exc}") from None


def check_finite(value: Any, where: str = "") -> None:
    """Refuse a float that is not finite anywhere in ``value`` (``1e999`` parses as inf)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadJSON(f"{where or 'a value'}: a number too large for a float")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_finite(item, f"{where}[{i}]")


def _skip(text: str, idx: int) -> int:
    match = _WS.match(text, idx)
    return match.end() if match else idx


def _expect(text: str, idx: int, char: str) -> int:
    idx = _skip(text, idx)
    if text[idx : idx + 1] != char:
        raise BadJSON(f"expected {char!r} at offset {idx}")
    return _skip(text, idx + 1)
