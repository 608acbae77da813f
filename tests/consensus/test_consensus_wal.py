"""WAL: intact prefixes survive any truncation or corruption; the damaged tail is reported."""

from __future__ import annotations

from pathlib import Path

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.wal import (
    HEADER_BYTES,
    WAL_RECORD_BYTES_MAX,
    TailDefect,
    WriteAheadLog,
    compute_intact_prefix,
    compute_record,
    replay,
)
from seoulchain.errors import LocalError

PAYLOADS = st.lists(st.binary(min_size=1, max_size=64), max_size=12)


def record_ends(payloads: list[bytes]) -> list[int]:
    ends, offset = [0], 0
    for payload in payloads:
        offset += HEADER_BYTES + len(payload)
        ends.append(offset)
    return ends


def test_record_format_is_crc32c_length_payload() -> None:
    record = compute_record(b"abc")
    assert record[4:8] == (3).to_bytes(4, "big") and record[8:] == b"abc"
    assert int.from_bytes(record[:4], "big") == crc32c.crc32c(record[4:])


@settings(max_examples=200, deadline=None)
@given(PAYLOADS)
def test_clean_log_replays_every_record(payloads: list[bytes]) -> None:
    result = compute_intact_prefix(b"".join(compute_record(p) for p in payloads))
    assert result.payloads == payloads and result.tail.is_clean


@settings(max_examples=300, deadline=None)
@given(PAYLOADS, st.data())
def test_truncation_yields_the_whole_records_before_the_cut(payloads: list[bytes],
                                                            data: st.DataObject) -> None:
    log = b"".join(compute_record(p) for p in payloads)
    cut = data.draw(st.integers(0, len(log)))
    result = compute_intact_prefix(log[:cut])
    ends = record_ends(payloads)
    whole = max(index for index, end in enumerate(ends) if end <= cut)
    assert result.payloads == payloads[:whole]
    assert result.tail.intact_bytes == ends[whole]
    assert result.tail.discarded_bytes == cut - ends[whole]
    assert result.tail.is_clean == (cut == ends[whole])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=12), st.data())
def test_corruption_yields_an_intact_prefix_and_reports_the_tail(payloads: list[bytes],
                                                                 data: st.DataObject) -> None:
    log = bytearray(b"".join(compute_record(p) for p in payloads))
    position = data.draw(st.integers(0, len(log) - 1))
    log[position] ^= data.draw(st.integers(1, 255))
    result = compute_intact_prefix(bytes(log))
    ends = record_ends(payloads)
    damaged = max(index for index, end in enumerate(ends) if end <= position)
    assert result.payloads == payloads[:damaged]  # a CRC-32C false match has odds 2**-32
    assert not result.tail.is_clean
    assert result.tail.intact_bytes == ends[damaged]
    assert result.tail.intact_bytes + result.tail.discarded_bytes == len(log)


def test_zero_filled_tail_is_not_taken_for_an_empty_record() -> None:
    log = compute_record(b"one") + bytes(64)
    result = compute_intact_prefix(log)
    assert result.payloads == [b"one"] and result.tail.defect == TailDefect.BAD_LENGTH


def test_empty_and_oversized_payloads_are_refused() -> None:
    with pytest.raises(LocalError):
        compute_record(b"")
    with pytest.raises(LocalError):
        compute_record(bytes(WAL_RECORD_BYTES_MAX + 1))


def test_replay_truncates_the_file_and_appending_resumes(tmp_path: Path) -> None:
    path = tmp_path / "consensus.wal"
    assert replay(path).payloads == []
    with WriteAheadLog(path, fsync=True) as wal:
        for payload in (b"first", b"second", b"third"):
            wal.append(payload)
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size - 3)  # a torn write
    result = replay(path)
    assert result.payloads == [b"first", b"second"]
    assert result.tail.defect == TailDefect.TORN_PAYLOAD
    assert path.stat().st_size == result.tail.intact_bytes
    with WriteAheadLog(path, fsync=False) as wal:
        wal.append(b"fourth")
    again = replay(path)
    assert again.payloads == [b"first", b"second", b"fourth"] and again.tail.is_clean


def test_reset_empties_the_log(tmp_path: Path) -> None:
    path = tmp_path / "consensus.wal"
    with WriteAheadLog(path) as wal:
        wal.append(b"old height")
        wal.reset()
        wal.append(b"new height")
    assert replay(path).payloads == [b"new height"]
