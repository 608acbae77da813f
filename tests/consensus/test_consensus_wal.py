"""WAL: intact prefixes survive any truncation or corruption; the damaged tail is reported."""

from __future__ import annotations

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.wal import (
    HEADER_BYTES,
    WAL_RECORD_BYTES_MAX,
    TailDefect,
    WalDamaged,
    compute_intact_prefix,
    compute_record,
)
from seoulchain.errors import LocalError
from seoulchain.sim.wal import MemoryWAL

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
    # Damage to the last record is a torn tail; damage before it, with intact records
    # after, is damage in the middle and names where the intact records resume.
    is_last = damaged == len(payloads) - 1
    assert result.tail.is_damaged_middle == (not is_last)
    assert result.tail.next_intact_offset == (None if is_last else ends[damaged + 1])


def test_zero_filled_tail_is_not_taken_for_an_empty_record() -> None:
    log = compute_record(b"one") + bytes(64)
    result = compute_intact_prefix(log)
    assert result.payloads == [b"one"] and result.tail.defect == TailDefect.BAD_LENGTH


def test_empty_and_oversized_payloads_are_refused() -> None:
    with pytest.raises(LocalError):
        compute_record(b"")
    with pytest.raises(LocalError):
        compute_record(bytes(WAL_RECORD_BYTES_MAX + 1))


@pytest.mark.parametrize(("zero_fill", "defect"), [(0, TailDefect.TORN_PAYLOAD),
                                                   (4096, TailDefect.CHECKSUM_MISMATCH)])
def test_torn_megabyte_record_is_not_taken_for_damage(zero_fill: int, defect: str) -> None:
    records = b"".join(compute_record(bytes([index]) * 100) for index in range(1, 20))
    torn_proposal = compute_record(bytes(range(256)) * 4096)[:-100]
    result = compute_intact_prefix(records + torn_proposal + bytes(zero_fill))
    assert result.payloads == [bytes([index]) * 100 for index in range(1, 20)]
    assert result.tail.defect == defect and not result.tail.is_damaged_middle


def test_memory_wal_refuses_damage_in_the_middle_as_the_file_wal_does() -> None:
    wal = MemoryWAL()
    for payload in (b"one", b"two", b"three"):
        wal.append(payload)
    wal.data[HEADER_BYTES + 1] ^= 0x01
    with pytest.raises(WalDamaged, match="damaged at byte 0"):
        wal.replay()
