"""Write-ahead log of consensus inputs: checksummed, length-framed records in one file.

Theory of operation: a record is `crc32c (4 bytes, big-endian) | length (4 bytes,
big-endian) | payload`, the CRC-32C taken over the length bytes and the payload, so a
corrupted length is caught as surely as a corrupted payload. Records are only appended.

A crash can leave a torn last record; a bad disk can corrupt any byte. On replay the log is
read up to the first record that is incomplete, oversized, empty (a zero-filled tail would
otherwise look like a valid empty record) or fails its checksum, and the rest is searched
for an intact record starting at any later byte and followed by what may follow a record
(`is_log_continuation`). If none is found, the damage is a *torn tail* — what a crash in the
middle of an append leaves — and it is cut off (the file is truncated to the intact prefix)
and described in a `TailReport`. If an intact record follows, the damage is in the *middle*:
records that were written whole were damaged afterwards, and cutting there would silently
drop the intact records behind it. `replay` then raises `WalDamaged` (a `StorageError`)
naming the offsets, and leaves the file as it is; the operator may choose to truncate at the
damage (`truncate_damage`, `seoulchain repair-wal`).

This module is the pure part: framing (`compute_record`), parsing (`compute_intact_prefix`,
which never raises) and the torn-tail rule (`require_torn_tail`). The file itself — append,
fsync, replay from disk, truncation — is `node/wal.py`'s, beside the node's other I/O; the
simulator keeps the same records in memory (`sim/wal.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import crc32c

from seoulchain.errors import LocalError, StorageError
from seoulchain.ledger.types import BLOCK_BYTES_MAX

HEADER_BYTES = 8
# A record holds one encoded consensus event; the largest is a proposal carrying a whole
# block, so the block limit plus room for the event's own fields.
WAL_RECORD_BYTES_MAX = BLOCK_BYTES_MAX + 64 * 1024
# Every record length is below 2**24, so a length field is a zero byte and three bytes not
# all zero: the places a record could start are found by this pattern, in C, before any
# checksum is computed.
assert WAL_RECORD_BYTES_MAX < 1 << 24
RECORD_START_PATTERN = re.compile(rb"(?=.{4}\x00(?!\x00\x00\x00))", re.DOTALL)


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
    # Where the first intact record after the damage starts: None when nothing intact
    # follows (a torn tail), else the damage is in the middle of the log.
    next_intact_offset: int | None = None

    @property
    def is_clean(self) -> bool:
        return self.defect is None

    @property
    def is_damaged_middle(self) -> bool:
        """True if intact records follow the damage: not a torn write, damaged data."""
        return self.next_intact_offset is not None


class WalDamaged(StorageError):
    """The log is damaged before its end: intact records follow a bad one."""

    def __init__(self, where: str, tail: TailReport):
        super().__init__(
            f"{where} is damaged at byte {tail.intact_bytes} (after {tail.records} intact "
            f"records: {tail.defect}) and intact records follow from byte "
            f"{tail.next_intact_offset}: data written whole was damaged later, not torn by "
            "a crash. Check the disk; then restore the data directory, or discard the log "
            "from the damage on with `seoulchain repair-wal` (docs/operations.md, "
            '"Storage errors")')
        self.tail = tail


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
    next_intact = None if defect is None else find_intact_record(data, offset + 1)
    return Replay(payloads, TailReport(len(payloads), offset, len(data) - offset, defect,
                                       next_intact))


def find_intact_record(data: bytes, start: int) -> int | None:
    """Return the offset of the first intact record starting at or after `start`, or None."""
    view = memoryview(data)
    zeros_from = len(data.rstrip(b"\x00"))
    for match in RECORD_START_PATTERN.finditer(data, start):
        offset = match.start()
        end = offset + HEADER_BYTES + int.from_bytes(data[offset + 4:offset + 8], "big")
        if (end <= len(data) and is_log_continuation(data, end, zeros_from)
                and crc32c.crc32c(view[offset + 4:end])
                == int.from_bytes(data[offset:offset + 4], "big")):
            return offset
    return None


def is_log_continuation(data: bytes, offset: int, zeros_from: int) -> bool:
    """Return True if the bytes from `offset` could follow an intact record."""
    # The end of the log, a torn or zero-filled tail, or another record's header. Checking
    # this before the checksum skips almost every false start in a torn multi-MB record.
    return (offset >= zeros_from or len(data) - offset < HEADER_BYTES
            or RECORD_START_PATTERN.match(data, offset) is not None)


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


def require_torn_tail(where: str, result: Replay) -> None:
    """Raise `WalDamaged` if the damage `result` reports is not a torn tail."""
    if result.tail.is_damaged_middle:
        raise WalDamaged(where, result.tail)
