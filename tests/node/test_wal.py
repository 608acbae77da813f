"""The consensus WAL file: a torn tail is cut, damage in the middle refused, appends resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from seoulchain.consensus.wal import HEADER_BYTES, TailDefect, WalDamaged
from seoulchain.errors import StorageError
from seoulchain.node.wal import WriteAheadLog, replay


def record_ends(payloads: list[bytes]) -> list[int]:
    ends, offset = [0], 0
    for payload in payloads:
        offset += HEADER_BYTES + len(payload)
        ends.append(offset)
    return ends


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
