"""Simulator building blocks: the seeded network's cuts and faults, the in-memory WAL."""

from __future__ import annotations

import random

import pytest

from seoulchain.consensus.wal import TailDefect, compute_intact_prefix, compute_record
from seoulchain.sim.network import Network, NetworkFaults
from seoulchain.sim.wal import CrashInjected, MemoryWAL


def test_partition_halves_cuts_both_ways_and_heal_restores() -> None:
    network = Network(random.Random(1), 4)
    network.partition([0, 1], [2, 3])
    assert network.is_cut(0, 2) and network.is_cut(3, 1) and not network.is_cut(0, 1)
    assert network.compute_delays(1, 2) == []
    network.heal()
    assert not network.is_partitioned and len(network.compute_delays(1, 2)) == 1


def test_unlisted_nodes_form_their_own_side_and_isolate_cuts_one_node() -> None:
    network = Network(random.Random(1), 5)
    network.partition([0, 1])
    assert network.is_cut(0, 4) and not network.is_cut(2, 4)
    network.heal()
    network.isolate(3)
    assert network.is_cut(3, 0) and network.is_cut(0, 3) and not network.is_cut(0, 1)


def test_one_way_cut_leaves_the_other_direction_open() -> None:
    network = Network(random.Random(1), 4)
    network.cut_one_way([0], [1, 2])
    assert network.is_cut(0, 1) and not network.is_cut(1, 0)


def test_loss_duplication_and_delay_follow_the_rates() -> None:
    faults = NetworkFaults(loss=0.3, duplicate=0.5, delay_min_ms=10, delay_spread_ms=40)
    network = Network(random.Random(5), 2, faults)
    copies = [len(network.compute_delays(0, 1)) for _ in range(4000)]
    assert 0.25 < copies.count(0) / 4000 < 0.35
    assert 0.30 < copies.count(2) / 4000 < 0.40  # half of the 70 % delivered
    delays = [delay for _ in range(500) for delay in network.compute_delays(0, 1)]
    assert min(delays) >= 10 and max(delays) <= 50


def test_reliable_messages_ignore_cuts_and_loss_but_slow_nodes_still_delay() -> None:
    network = Network(random.Random(5), 2, NetworkFaults(loss=1.0, delay_spread_ms=0))
    network.isolate(0)
    network.slow_ms[1] = 300
    assert network.compute_delays(0, 1) == []
    assert network.compute_delays(0, 1, reliable=True) == [305]


def test_same_seed_same_draws() -> None:
    faults = NetworkFaults(loss=0.2, duplicate=0.2, delay_spread_ms=100)
    first, second = Network(random.Random(9), 3, faults), Network(random.Random(9), 3, faults)
    assert [first.compute_delays(0, 2) for _ in range(50)] == [
        second.compute_delays(0, 2) for _ in range(50)]


def test_memory_wal_keeps_records_in_the_file_format() -> None:
    wal = MemoryWAL()
    wal.append(b"one")
    wal.append(b"two")
    assert bytes(wal.data) == compute_record(b"one") + compute_record(b"two")
    replay = wal.replay()
    assert replay.payloads == [b"one", b"two"] and replay.tail.is_clean
    wal.reset()
    assert wal.replay().payloads == []


@pytest.mark.parametrize(("keep", "zero_fill", "defect"), [
    (3, False, TailDefect.TORN_HEADER),
    (9, False, TailDefect.TORN_PAYLOAD),
    (9, True, TailDefect.CHECKSUM_MISMATCH),
    (2, True, TailDefect.BAD_LENGTH),
])
def test_torn_write_crashes_the_append_and_replay_cuts_it(keep: int, zero_fill: bool,
                                                          defect: str) -> None:
    wal = MemoryWAL()
    wal.append(b"intact")
    wal.arm_torn_write(keep, zero_fill)
    with pytest.raises(CrashInjected):
        wal.append(b"the torn record")
    replay = wal.replay()
    assert replay.payloads == [b"intact"] and replay.tail.defect == defect
    assert bytes(wal.data) == compute_record(b"intact")
    assert compute_intact_prefix(bytes(wal.data)).tail.is_clean
    wal.append(b"after")
    assert wal.replay().payloads == [b"intact", b"after"]


def test_disarm_cancels_a_torn_write() -> None:
    wal = MemoryWAL()
    wal.arm_torn_write(3)
    wal.disarm()
    wal.append(b"fine")
    assert wal.replay().payloads == [b"fine"]
