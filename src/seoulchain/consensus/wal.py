"""Write-ahead log of consensus inputs: checksummed, length-framed records in one file.

Theory of operation: a record is `crc32c (4 bytes, big-endian) | length (4 bytes,
big-endian) | payload`, the CRC-32C taken over the length bytes and the payload, so a
corrupted length is caught as surely as a corrupted payload. Records are only appended.
A crash can leave a torn last record; a bad disk can corrupt any byte. On replay the log is
read up to the first record that is incomplete, oversized, empty (a zero-filled tail would
otherwise look like a valid empty record) or fails its checksum; everything from there on
is cut off (the file is truncated to the intact prefix) and described in a `TailReport` —
never an exception. This is the one consensus module that touches files; parsing itself
(`compute_intact_prefix`) is pure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import crc32c

from seoulchain.errors import LocalError
from seoulchain.ledger.types import BLOCK_BYTES_MAX

HEADER_BYTES = 8
# A record holds one encoded consensus event; the largest is a proposal carrying a whole
# block, so the block limit plus room for the event's own fields.
WAL_RECORD_BYTES_MAX = BLOCK_BYTES_MAX + 64 * 1024


class TailDefect:
    """Why the log's tail was cut off: the values of `TailReport.defect`."""

    TORN_HEADER = "torn_header"
    TORN_PAYLOAD = "torn_payload"
    BAD_LENGTH = "bad_length"
    CHECKSUM_MISMATCH = "checksum_mismatch"


@dataclass(frozen=True, slots=True)
class TailReport:
    """What replay found: intact records, where they end, and what was cut after them."""

    records: int
    intact_bytes: int
    discarded_bytes: int
    defect: str | None

    @property
    def is_clean(self) -> bool:
        return self.defect is None


@dataclass(frozen=True, slots=True)
class Replay:
    """The intact records' payloads, in order, and the report on the tail."""

    payloads: list[bytes]
    tail: TailReport


def compute_record(payload: bytes) -> bytes:
    """Return the framed record for `payload`."""
    if not 0 < len(payload) <= WAL_RECORD_BYTES_MAX:
        raise LocalError(f"WAL payload must be 1..{WAL_RECORD_BYTES_MAX} bytes")
    length = len(payload).to_bytes(4, "big")
    checksum = crc32c.crc32c(length + payload).to_bytes(4, "big")
    return checksum + length + payload


def compute_intact_prefix(data: bytes) -> Replay:
    """Parse `data` into the payloads of its intact prefix and a report on the rest."""
    payloads: list[bytes] = []
    offset = 0
    defect = None
    while offset < len(data):
        defect = compute_record_defect(data, offset)
        if defect is not None:
            break
        length = int.from_bytes(data[offset + 4:offset + 8], "big")
        payloads.append(data[offset + HEADER_BYTES:offset + HEADER_BYTES + length])
        offset += HEADER_BYTES + length
    assert offset <= len(data) and (defect is None) == (offset == len(data))
    return Replay(payloads, TailReport(len(payloads), offset, len(data) - offset, defect))


def compute_record_defect(data: bytes, offset: int) -> str | None:
    """Return what is wrong with the record at `offset`, or None if it is intact."""
    if len(data) - offset < HEADER_BYTES:
        return TailDefect.TORN_HEADER
    length_bytes = data[offset + 4:offset + 8]
    length = int.from_bytes(length_bytes, "big")
    if not 0 < length <= WAL_RECORD_BYTES_MAX:
        return TailDefect.BAD_LENGTH
    end = offset + HEADER_BYTES + length
    if end > len(data):
        return TailDefect.TORN_PAYLOAD
    checksum = int.from_bytes(data[offset:offset + 4], "big")
    if crc32c.crc32c(length_bytes + data[offset + HEADER_BYTES:end]) != checksum:
        return TailDefect.CHECKSUM_MISMATCH
    return None


def replay(path: Path) -> Replay:
    """Read the log at `path`, truncate any damaged tail on disk, and return what was intact."""
    if not path.exists():
        return Replay([], TailReport(0, 0, 0, None))
    result = compute_intact_prefix(path.read_bytes())
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
