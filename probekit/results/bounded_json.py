"""Reading JSON from files we did not write: bounded in size, depth and number range.

Everything here is a defence against hostile input, before and while parsing:

- :func:`read_text` reads at most ``max_bytes`` from a regular file (the size the file
  system reports is not trusted; devices and FIFOs are refused without blocking) and
  decodes it as strict UTF-8;
- :func:`check_depth` bounds the nesting depth *before* the recursive parser sees it;
- :func:`iter_object` parses a top-level object key by key and can hand out the
  elements of a large array one at a time, so a caller can convert and drop each one
  (a lean load) instead of holding the whole parsed tree;
- the literals ``NaN``/``Infinity`` and numbers too large for a float are rejected.

A failure raises :class:`BadJSON` (a ``ValueError``) with a message meant for people.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO

DEFAULT_MAX_DEPTH = 64

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# A number that could overflow a float: a 3-digit exponent or 300+ digits in a row.
_HUGE_NUMBER = re.compile(r"[eE]\+?0*[1-9]\d\d|\d{300}")


class BadJSON(ValueError):
    """The input is not acceptable JSON (too big, too deep, malformed, non-finite)."""


def read_text(source: str | os.PathLike[str] | BinaryIO, max_bytes: int | None) -> str:
    """The UTF-8 text of ``source`` (a path or a binary file object), at most ``max_bytes``."""
    if isinstance(source, str | os.PathLike):
        data = _read_path(os.fspath(source), max_bytes)
    else:
        data = _read_stream(source, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJSON(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _read_path(path: str, max_bytes: int | None) -> bytes:
    # O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked on the
    # open descriptor (no race between a check and the open).
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise BadJSON("not a regular file (a device, FIFO, socket or directory)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return _read_stream(f, max_bytes)
    finally:
        os.close(fd)


def _read_stream(stream: BinaryIO | io.BufferedReader, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        return stream.read()
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadJSON(f"larger than the limit of {max_bytes:,} bytes")
    return data


def check_depth(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Refuse ``text`` whose arrays/objects nest deeper than ``max_depth`` (or never close).

    Counts brackets outside strings in one pass, so that a recursive parser is only
    ever given input of bounded depth.
    """
    import numpy as np

    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii")
    chunk = 1 << 20
    depth = 0
    for start in range(0, len(brackets), chunk):
        codes = np.frombuffer(
            brackets, np.uint8, count=min(chunk, len(brackets) - start), offset=start
        )
        steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int64)
        levels = np.cumsum(steps) + depth
        if int(levels.max()) > max_depth:
            raise BadJSON(f"nested deeper than {max_depth} levels")
        depth = int(levels[-1])


def loads(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse a whole document: depth-checked, strict (no NaN/Infinity, no float overflow)."""
    check_depth(text, max_depth)
    value, end = _decode(text, _skip(text, 0))
    if _skip(text, end) != len(text):
        raise BadJSON(f"extra data after the JSON value at offset {end}")
    return value


def iter_object(text: str, streamed: frozenset[str] = frozenset()) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` for each member of the top-level object in ``text``.

    For a key in ``streamed`` whose value is an array, the value is an iterator over its
    elements, parsed one at a time as it is consumed (the rest is consumed before the
    next key). Duplicate top-level keys are refused. Call :func:`check_depth` first.
    """
    strict = _HUGE_NUMBER.search(text) is not None
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
            key, idx = _decode(text, idx, strict)
            if key in seen:
                raise BadJSON(f"duplicate key {key!r}")
            seen.add(key)
            idx = _expect(text, idx, ":")
            if key in streamed and text[idx : idx + 1] == "[":
                cursor = [idx + 1]
                items = _iter_array(text, cursor, strict)
                yield key, items
                for _ in items:  # whatever the caller left unread
                    pass
                idx = cursor[0]
            else:
                value, idx = _decode(text, idx, strict)
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


def _iter_array(text: str, cursor: list[int], strict: bool) -> Iterator[Any]:
    idx = _skip(text, cursor[0])
    if text[idx : idx + 1] == "]":
        cursor[0] = idx + 1
        return
    while True:
        value, idx = _decode(text, idx, strict)
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


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise BadJSON(f"the number {literal[:40]} is too large for a float")
    return value


_FAST = json.JSONDecoder(parse_constant=_reject_constant)
_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _decode(text: str, idx: int, strict: bool | None = None) -> tuple[Any, int]:
    if strict is None:
        strict = _HUGE_NUMBER.search(text) is not None
    try:
        return (_STRICT if strict else _FAST).raw_decode(text, idx)
    except BadJSON:
        raise
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise BadJSON(f"malformed JSON: {exc.msg} ({where})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4300 digits
        raise BadJSON(f"malformed JSON: {exc}") from None


def _skip(text: str, idx: int) -> int:
    match = _WS.match(text, idx)
    return match.end() if match else idx


def _expect(text: str, idx: int, char: str) -> int:
    idx = _skip(text, idx)
    if text[idx : idx + 1] != char:
        raise BadJSON(f"expected {char!r} at offset {idx}")
    return _skip(text, idx + 1)
