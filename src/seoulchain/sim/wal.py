"""An in-memory write-ahead log with the file WAL's record format and injectable torn writes.

Theory of operation: `MemoryWAL` keeps the bytes a `node.wal.WriteAheadLog` would keep
on disk — the same `crc32c | length | payload` records from `compute_record` — in a
bytearray that outlives a simulated crash, as a disk does. `arm_torn_write` makes the next
append write only part of its record (optionally zero-filled to full length, as a file
system that extended the file but lost the data would) and then raise `CrashInjected`: the
validator dies in the middle of the append, before it could send anything the record
covers. `replay` parses the intact prefix with the same pure function the file WAL uses,
cuts a torn tail and reports it, and, as the file WAL does, refuses damage that intact
records follow (`WalDamaged`).
"""

from __future__ import annotations

from seoulchain.consensus.wal import (
    Replay,
    compute_intact_prefix,
    compute_record,
    require_torn_tail,
)


class CrashInjected(BaseException):
    """The simulator killed the validator here; nothing after this point happened.

    A `BaseException`, so no `except Exception` on the way up can swallow the crash.
    """


class MemoryWAL:
    """A write-ahead log in memory: append, reset, replay; torn writes on request."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.appends = 0
        # Synced appends (resets included): what a file WAL pays an fsync for.
        self.syncs = 0
        # The bytes a power cut keeps: everything up to the last sync.
        self.synced_bytes = 0
        self._torn_keep_bytes: int | None = None
        self._torn_zero_fill = False

    def append(self, payload: bytes, *, sync: bool = True) -> None:
        """Append one record, or a torn part of it and crash if a torn write is armed."""
        record = compute_record(payload)
        if self._torn_keep_bytes is not None:
            keep = min(self._torn_keep_bytes, len(record) - 1)
            self.data += record[:keep]
            if self._torn_zero_fill:
                self.data += bytes(len(record) - keep)
            self._torn_keep_bytes = None
            raise CrashInjected("torn WAL write")
        self.data += record
        self.appends += 1
        if sync:
            self.syncs += 1
            self.synced_bytes = len(self.data)

    def reset(self) -> None:
        """Empty the log (synced, as the file WAL's truncate is)."""
        self.data.clear()
        self.syncs += 1
        self.synced_bytes = 0

    def lose_unsynced(self, keep_bytes: int = 0) -> None:
        """Cut the log as a power cut would: to the last sync, plus `keep_bytes` of what
        followed (the OS may have written some of it, up to a torn record)."""
        del self.data[self.synced_bytes + max(0, keep_bytes):]

    def close(self) -> None:
        """Nothing to release; the bytes stay, as on a disk."""

    def arm_torn_write(self, keep_bytes: int, zero_fill: bool = False) -> None:
        """Make the next append write only `keep_bytes` of its record, then crash."""
        self._torn_keep_bytes = max(0, keep_bytes)
        self._torn_zero_fill = zero_fill

    def disarm(self) -> None:
        """Cancel an armed torn write."""
        self._torn_keep_bytes = None

    def replay(self) -> Replay:
        """Return the intact records and the tail report, cutting a torn tail off."""
        self.disarm()
        result = compute_intact_prefix(bytes(self.data))
        require_torn_tail("the in-memory consensus WAL", result)
        del self.data[result.tail.intact_bytes:]
        return result
