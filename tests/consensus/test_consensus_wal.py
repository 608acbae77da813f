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
    WalDamaged,
    WriteAheadLog,
    compute_intact_prefix,
    compute_record,
    replay,
)
from seoulchain.errors import LocalError, StorageError
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


MANY_RECORDS = 60


def write_log(path: Path, count: int = MANY_RECORDS) -> list[bytes]:
    payloads = [f"event {index} ".encode() * (1 + index % 5) for index in range(count)]
    with WriteAheadLog(path, fsync=False) as wal:
        for payload in payloads:
            wal.append(payload)
    return payloads


@pytest.mark.parametrize("position", ["checksum", "length_low", "length_high", "payload"])
def test_byte_flip_in_the_middle_record_is_reported_and_nothing_is_cut(tmp_path: Path,
                                                                       position: str) -> None:
    path = tmp_path / "consensus.wal"
    payloads = write_log(path)
    middle = MANY_RECORDS // 2
    start = record_ends(payloads)[middle]
    offset = start + {"checksum": 1, "length_low": 7, "length_high": 5, "payload": 12}[position]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(WalDamaged, match=f"damaged at byte {start} .*seoulchain repair-wal"
                       ) as raised:
        replay(path)
    assert isinstance(raised.value, StorageError)
    assert raised.value.tail.next_intact_offset == record_ends(payloads)[middle + 1]
    assert path.read_bytes() == bytes(data)  # the intact records after it are all still there


def test_operator_may_truncate_at_damage_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "consensus.wal"
    payloads = write_log(path)
    ends = record_ends(payloads)
    data = bytearray(path.read_bytes())
    data[ends[10] + 9] ^= 0x01
    path.write_bytes(bytes(data))
    result = replay(path, truncate_damage=True)
    assert result.payloads == payloads[:10] and result.tail.is_damaged_middle
    assert path.stat().st_size == ends[10]
    assert replay(path).payloads == payloads[:10]


@pytest.mark.parametrize("tail", ["cut", "zero_filled", "garbage_filled", "flipped_last"])
def test_torn_tail_of_a_long_log_is_cut_quietly(tmp_path: Path, tail: str) -> None:
    path = tmp_path / "consensus.wal"
    payloads = write_log(path)
    ends = record_ends(payloads)
    data = path.read_bytes()
    last = ends[-2]
    torn = {"cut": data[:-3],
            "zero_filled": data[:last + 6] + bytes(len(data) - last - 6),
            "garbage_filled": data[:last + 10] + b"\xa5" * (len(data) - last - 10),
            "flipped_last": data[:-1] + bytes([data[-1] ^ 0x01])}[tail]
    path.write_bytes(torn)
    result = replay(path)
    assert result.payloads == payloads[:-1] and not result.tail.is_damaged_middle
    assert path.stat().st_size == last


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
