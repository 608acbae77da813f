"""Simulator: validators that do not create empty blocks (create_empty_blocks = false).

An idle network commits one empty block per proof-of-life interval (after its first block,
which is never held back); a transaction ends the wait at once, so it commits in about a
round trip, not an interval; and under loss, duplication, partitions, crashes and a silent
validator, the checkers still find every honest store in agreement and every transaction
committed. Times are virtual milliseconds.
"""

from __future__ import annotations

import itertools

import pytest

from seoulchain.sim.cluster import Cluster

INTERVAL_MS = 5_000
IDLE_MS = 60_000
# A transaction commits within a few network round trips and the busy pause: far below
# the interval it would otherwise wait for.
TX_COMMIT_MS_MAX = 1_500
MINUTE_MS = 60_000


def block_times_ms(cluster: Cluster, index: int) -> list[int]:
    """Return the header times of node `index`'s blocks, from height 1 up."""
    store = cluster.nodes[index].store
    return [store.get_block(height).header.time_ms  # type: ignore[union-attr]
            for height in range(1, cluster.nodes[index].height + 1)]


@pytest.mark.parametrize(("n", "seed"), [(1, 1), (1, 2), (4, 1), (4, 2), (4, 3)])
def test_sim_idle_network_commits_one_empty_block_per_interval(n: int, seed: int) -> None:
    """sim (n=1 and 4, create_empty_blocks off, interval 5 s): in a minute of idling,
    heights 2 and up come an interval apart and carry nothing; with empty blocks on, dozens
    come."""
    waiting = Cluster(n=n, seed=seed, empty_blocks_interval_ms=INTERVAL_MS)
    waiting.run_for(IDLE_MS)
    eager = Cluster(n=n, seed=seed)
    eager.run_for(IDLE_MS)
    heights = [node.height for node in waiting.nodes]
    assert min(heights) >= IDLE_MS // (INTERVAL_MS + 1_000)  # not stalled
    assert max(heights) <= 1 + IDLE_MS // INTERVAL_MS
    assert min(node.height for node in eager.nodes) > 4 * max(heights)
    times = block_times_ms(waiting, 0)
    assert all(later - earlier >= INTERVAL_MS for earlier, later in itertools.pairwise(times[1:]))
    assert all(node.store.count_txs() == 0 for node in waiting.nodes)
    waiting.check()


@pytest.mark.parametrize(("n", "seed"), [(1, 1), (1, 2), (4, 1), (4, 2), (4, 3)])
def test_sim_a_transaction_ends_the_wait_and_commits_promptly(n: int, seed: int) -> None:
    """sim (n=1 and 4, create_empty_blocks off): a tx submitted to any node of an idle
    network commits on every node well within the interval, whoever proposes the height."""
    cluster = Cluster(n=n, seed=seed, empty_blocks_interval_ms=INTERVAL_MS)
    cluster.run_for(INTERVAL_MS + 2_000)
    for count in range(1, 4):
        cluster.run_for(INTERVAL_MS // 2)  # mid-wait
        submitted_ms = cluster.now_ms
        cluster.submit(1)
        assert cluster.run_while(
            lambda count=count: any(node.store.count_txs() < count for node in cluster.nodes),
            deadline_ms=cluster.now_ms + INTERVAL_MS), "the tx waited for the interval"
        assert cluster.now_ms - submitted_ms <= TX_COMMIT_MS_MAX
    cluster.check()


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_sim_waiting_for_txs_keeps_safety_and_liveness_under_faults(seed: int) -> None:
    """sim (n=4, f=1 silent, create_empty_blocks off): loss, duplication, a partition and a
    crash while clients submit; once faults stop, the honest nodes add three heights within
    the campaign's bound, every tx an honest node holds commits, and the stores agree."""
    cluster = Cluster(n=4, seed=seed, byzantine={seed % 4: "silent"},
                      empty_blocks_interval_ms=INTERVAL_MS)
    cluster.set_faults(loss=0.2, duplicate=0.3, delay_spread_ms=200)
    cluster.submit(12, spread_ms=20_000)
    victim = (seed + 1) % 4
    cluster.at(4_000, lambda: cluster.partition([victim], [i for i in range(4) if i != victim]))
    cluster.at(9_000, cluster.heal)
    cluster.at(12_000, lambda: cluster.node(victim).crash())
    cluster.at(15_000, lambda: cluster.node(victim).restart())
    cluster.run_for(25_000)
    cluster.set_faults(loss=0.0, duplicate=0.0)
    honest = cluster.honest_nodes
    target = max(node.height for node in honest) + 3
    cluster.run_until(height=target, timeout_ms=2 * MINUTE_MS + 3 * INTERVAL_MS)
    assert cluster.run_while(
        lambda: any(len(node.core.mempool) for node in honest),  # type: ignore[union-attr]
        deadline_ms=cluster.now_ms + 2 * INTERVAL_MS), "a tx an honest node holds never commits"
    assert len({node.store.count_txs() for node in honest}) == 1
    assert honest[0].store.count_txs() > 0
    cluster.check()
