"""Reading a sweep's dataset (JSONL, one example a line) and its watch file, with line numbers.

Dataset: every non-blank line is a JSON object with a non-empty string ``prompt`` and
a non-empty string ``target`` (other keys are ignored). Blank lines are skipped
silently. Any other line is a *bad line*: reported with its 1-based line number, then
skipped or fatal (``on_bad_line``).

Watch file: a ``.jsonl`` file holds one JSON object a line with a ``prompt`` and an
optional ``target``; any other file holds one prompt a line. Blank lines are skipped;
a bad watch line is always fatal (the watch set is small and every sweep uses it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from probekit.errors import InputError

OnBadLine = Literal["skip", "error"]
# How many bad lines a fatal error lists before "and N more".
_LISTED = 20


@dataclass(frozen=True)
class Record:
    """One valid example of the dataset: its position among valid examples and its line."""

    index: int
    line: int
    prompt: str
    target: str


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Dataset:
    records: tuple[Record, ...]
    bad: tuple[BadLine, ...]
    sha256: str  # of the file's bytes


@dataclass(frozen=True)
class WatchItem:
    prompt: str
    target: str | None


@dataclass(frozen=True)
class WatchSet:
    items: tuple[WatchItem, ...]
    sha256: str


def read_dataset(path: str | Path, on_bad_line: OnBadLine = "error") -> Dataset:
    """The valid examples of a JSONL file; bad lines kept with their reasons.

    With ``on_bad_line="error"`` any bad line raises :class:`InputError` listing them.
    """
    if on_bad_line not in ("skip", "error"):
        raise InputError(f"on_bad_line must be 'skip' or 'error', got {on_bad_line!r}")
    data = _read_bytes(path, "dataset")
    records: list[Record] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        parsed = _parse_object(raw, require_target=True)
        if isinstance(parsed, str):
            bad.append(BadLine(number, parsed))
        else:
            prompt, target = parsed
            assert target is not None
            records.append(Record(len(records), number, prompt, target))
    if bad and on_bad_line == "error":
        raise InputError(
            f"{path}: {len(bad)} bad line(s):\n{describe(bad)}\n"
            "fix them, or pass --on-bad-line skip to leave them out"
        )
    if not records:
        raise InputError(
            f'{path} holds no valid example (one JSON object a line with "prompt" and "target")'
        )
    return Dataset(tuple(records), tuple(bad), hashlib.sha256(data).hexdigest())


def read_watch(path: str | Path) -> WatchSet:
    """The watch items of a ``.jsonl`` file (``prompt``, optional ``target``) or a text file."""
    data = _read_bytes(path, "watch file")
    jsonl = Path(path).suffix.lower() == ".jsonl"
    items: list[WatchItem] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        if jsonl:
            parsed = _parse_object(raw, require_target=False)
            if isinstance(parsed, str):
                bad.append(BadLine(number, parsed))
            else:
                items.append(WatchItem(*parsed))
            continue
        try:
            items.append(WatchItem(raw.decode("utf-8").strip("\r"), None))
        except UnicodeDecodeError as err:
            bad.append(BadLine(number, f"not UTF-8 ({err.reason})"))
    if bad:
        raise InputError(f"{path}: {len(bad)} bad watch line(s):\n{describe(bad)}")
    return WatchSet(tuple(items), hashlib.sha256(data).hexdigest())


def describe(bad: tuple[BadLine, ...] | list[BadLine]) -> str:
    """Bad lines one per line, the first few only."""
    shown = [f"  {b}" for b in bad[:_LISTED]]
    if len(bad) > _LISTED:
        shown.append(f"  ... and {len(bad) - _LISTED} more")
    return "\n".join(shown)


def _read_bytes(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"the {what} {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"the {what} {path} is a folder; give a file") from None


def _parse_object(raw: bytes, *, require_target: bool) -> tuple[str, str | None] | str:
    """``(prompt, target)`` of one JSON line, or the reason it cannot be used."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        return f"not UTF-8 ({err.reason})"
    except json.JSONDecodeError as err:
        return f"not valid JSON ({err.msg} at column {err.colno})"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    prompt = value.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return '"prompt" is missing or not a non-empty string'
    target = value.get("target")
    if target is None and not require_target:
        return prompt, None
    if not isinstance(target, str) or not target:
        return '"target" is missing or not a non-empty string'
    return prompt, target
