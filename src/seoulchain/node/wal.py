"""The consensus write-ahead log on disk: replay a file, cut a torn tail, append records.

Theory of operation: the record format and the rules for damage are the pure
`consensus/wal.py` (docs/spec/consensus.md §9); this module does the file I/O around them.
`replay` reads a log file, truncates a torn tail (and fsyncs) and raises `WalDamaged` for
damage that intact records follow, unless the operator chose to cut there too
(`seoulchain repair-wal`). `WriteAheadLog` appends records, syncing when asked.
"""

from __future__ import annotations

import os
from pathlib import Path

from seoulchain.consensus.wal import (
    Replay,
    TailReport,
    compute_intact_prefix,
    compute_record,
    require_torn_tail,
)

__all__ = ["WriteAheadLog", "replay"]


def replay(path: Path, *, truncate_damage: bool = False) -> Replay:
    """Read the log at `path`, truncate a torn tail on disk, and return what was intact.

    Damage that intact records follow raises `WalDamaged` and changes nothing, unless
    `truncate_damage` (the operator's choice) cuts the log there too.
    """
    if not path.exists():
        return Replay([], TailReport(0, 0, 0, None))
    result = compute_intact_prefix(path.read_bytes())
    if not truncate_damage:
        require_torn_tail(f"consensus WAL {path}", result)
    if not result.tail.is_clean:
        with path.open("r+b") as handle:
            handle.truncate(result.tail.intact_bytes)
            handle.flush()
            os.fsync(handle.fileno())
    return result


class WriteAheadLog:
    """An append-only log file; call `replay` on the path before opening it for appending."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._handle = path.open("ab")

    def append(self, payload: bytes, *, sync: bool = True) -> None:
        """Append one record and hand it to the OS (it survives the process being killed);
        with `sync` (and `fsync`), return only once it and every record before it are on
        stable storage (they survive a power cut too)."""
        self._handle.write(compute_record(payload))
        self._handle.flush()
        if sync and self.fsync:
            os.fsync(self._handle.fileno())

    def reset(self) -> None:
        """Empty the log (e.g. when a new height starts and the old one is in the block store)."""
        self._handle.truncate(0)
        self._handle.flush()
        if self.fsync:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
