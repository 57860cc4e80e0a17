"""The shard plan and the output folder that makes a sweep resumable.

The valid examples are cut into shards of ``shard_size`` consecutive examples. Each
finished shard is written as its own Parquet part file, atomically (a temporary file
renamed into place), so a part file exists if and only if its shard is complete: a
sweep killed at any moment loses at most the shards in flight, and a resumed sweep
computes exactly the shards whose part files are missing.

Folder layout::

    OUT/manifest.json               settings of the sweep and its shard plan
    OUT/parts/shard-000000.parquet  per-example rows of shard 0 (one file per shard)
    OUT/parts/watch-000000.parquet  per-(example, watch item) rows (with --watch-matrix)
    OUT/results.parquet             all shards, in dataset order (written at the end)
    OUT/watch.parquet               the same for the watch table (with --watch-matrix)
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probekit.errors import InputError
from probekit.sweep.dataset import Record

MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = 1


@dataclass(frozen=True)
class Shard:
    """Consecutive valid examples measured and written together."""

    index: int
    records: tuple[Record, ...]


def plan(records: Sequence[Record], shard_size: int) -> list[Shard]:
    """Consecutive shards of ``shard_size`` records (the last one may be shorter)."""
    return [
        Shard(k, tuple(records[start : start + shard_size]))
        for k, start in enumerate(range(0, len(records), shard_size))
    ]


class OutputFolder:
    """A sweep's output folder: its manifest, its part files and its final files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.parts = self.root / "parts"
        self._lock_fd: int | None = None

    @classmethod
    def open(
        cls, root: str | Path, settings: dict[str, Any], shards: int, *, restart: bool = False
    ) -> OutputFolder:
        """Create the folder, or continue the sweep it holds if the settings match.

        The folder stays locked (one sweep writes to it at a time) until :meth:`close`
        or the end of the process, however it ends.
        """
        folder = cls(root)
        folder.root.mkdir(parents=True, exist_ok=True)
        folder._lock()
        try:
            folder._prepare(settings, shards, restart)
        except BaseException:
            folder.close()
            raise
        return folder

    def _prepare(self, settings: dict[str, Any], shards: int, restart: bool) -> None:
        manifest = self.root / MANIFEST
        if restart:
            self.clear()
        if manifest.exists():
            self._check(json.loads(manifest.read_text()), settings, shards)
        elif self._foreign():
            raise InputError(
                f"{self.root} is not empty and holds no sweep; choose an empty or new folder"
            )
        self.remove_temporaries()
        if not manifest.exists():
            record = {"format": FORMAT, "shards": shards, "settings": settings}
            write_atomic(manifest, json.dumps(record, indent=2, sort_keys=True).encode())
        self.parts.mkdir(exist_ok=True)

    def close(self) -> None:
        """Release the folder's lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    def part(self, index: int, kind: str = "shard") -> Path:
        return self.parts / f"{kind}-{index:06d}.parquet"

    def done(self, index: int) -> bool:
        """Whether shard ``index`` is complete (its per-example part is written last)."""
        return self.part(index).exists()

    def remove_temporaries(self) -> None:
        """Half-written files of an interrupted run (never renamed into place)."""
        for path in (*self.parts.glob("*.tmp"), *self.root.glob("*.tmp")):  # parts may not exist
            path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove a previous sweep's files (only what a sweep writes)."""
        if not (self.root / MANIFEST).exists():
            if self._foreign():
                raise InputError(f"{self.root} holds no sweep; refusing to clear it")
            return
        shutil.rmtree(self.parts, ignore_errors=True)
        for name in (MANIFEST, "results.parquet", "watch.parquet"):
            (self.root / name).unlink(missing_ok=True)

    def _foreign(self) -> bool:
        """Whether the folder holds anything but a sweep's lock and temporary files."""
        return any(p.name != LOCK and not p.name.endswith(".tmp") for p in self.root.iterdir())

    def _lock(self) -> None:
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"another sweep is writing to {self.root}; wait for it or choose another --out"
            ) from None
        self._lock_fd = fd

    def _check(self, manifest: dict[str, Any], settings: dict[str, Any], shards: int) -> None:
        old = manifest.get("settings", {})
        changed = sorted(k for k in old.keys() | settings.keys() if old.get(k) != settings.get(k))
        if manifest.get("format") != FORMAT or changed or manifest.get("shards") != shards:
            what = ", ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in changed[:5])
            raise InputError(
                f"{self.root} holds a sweep with other settings ({what or 'shard plan'}); "
                "resume it with the same settings, choose another --out, or pass --restart"
            )


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete."""
    with atomic(path) as temporary:
        temporary.write_bytes(data)


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path to write; renamed to ``path`` once written and flushed to disk."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
