"""Simulator scenarios: each fault class by name, told as a story over real validator cores.

Every scenario ends with `cluster.check()`: agreement, validity, integrity and identical
state over every honest node's store. Timeouts are virtual milliseconds.
"""

from __future__ import annotations

import pytest

from seoulchain.consensus.evidence import DuplicateVoteEvidence
from seoulchain.consensus.wal import TailDefect
from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode
from seoulchain.node.validator import CoreDrop
from seoulchain.sim.byzantine import InvalidProposal
from seoulchain.sim.cluster import Cluster, LivenessFailure

MINUTE_MS = 60_000


def commit_heights(cluster: Cluster, count: int, timeout_ms: int = 2 * MINUTE_MS) -> int:
    """Run until every live honest node is `count` heights past the highest; return that."""
    target = max(node.height for node in cluster.honest_nodes) + count
    cluster.run_until(height=target, timeout_ms=timeout_ms)
    return target


# ------------------------------------------------------------------------------ healthy


@pytest.mark.parametrize("n", [1, 4, 5, 7])
def test_sim_healthy_network_commits_every_submitted_tx(n: int) -> None:
    """sim: no faults (n=1, 4, 5, 7): ten anchors submitted to random nodes all commit."""
    cluster = Cluster(n=n, seed=7)
    cluster.submit(10, spread_ms=3_000)
    assert cluster.run_while(
        lambda: any(node.store.count_txs() < 10 for node in cluster.nodes),
        deadline_ms=cluster.now_ms + MINUTE_MS), "not every node committed the ten anchors"
    cluster.run_until(height=max(node.core.height for node in cluster.nodes) + 2,
                      timeout_ms=MINUTE_MS)
    cluster.check()
    for node in cluster.nodes:
        assert node.store.count_txs() == 10
        assert all(node.store.get_tx(tx_hash).code == ResultCode.OK  # type: ignore[union-attr]
                   for tx_hash in cluster.submitted)


def test_sim_cluster_refuses_more_byzantine_validators_than_f() -> None:
    with pytest.raises(LocalError, match="exceed f"):
        Cluster(n=4, seed=1, byzantine={0: "silent", 1: "silent"})
    with pytest.raises(LocalError, match="unknown behaviour"):
        Cluster(n=4, seed=1, byzantine={0: "gremlin"})


def test_sim_run_until_reports_the_heights_when_liveness_fails() -> None:
    """sim: halves (n=4) cannot make a quorum; run_until says where every node stands."""
    cluster = Cluster(n=4, seed=3).partition([0, 1], [2, 3])
    with pytest.raises(LivenessFailure, match="0:0, 1:0, 2:0, 3:0"):
        cluster.run_until(height=1, timeout_ms=20_000)


# ------------------------------------------------------------------------------ network faults


def test_sim_partition_halves_heals_and_converges() -> None:
    """sim: partition halves (n=4): no side has a quorum, so nothing commits; heal; converge."""
    cluster = Cluster(n=4, seed=11)
    cluster.submit(12, spread_ms=40_000)
    stalled = commit_heights(cluster, 3)
    cluster.partition([0, 1], [2, 3])
    cluster.run_for(15_000)
    assert max(node.height for node in cluster.nodes) <= stalled + 1
    cluster.heal()
    commit_heights(cluster, 4)
    cluster.check()


def test_sim_isolated_node_catches_up_by_block_sync() -> None:
    """sim: isolate one (n=5): the other four go on; healed, the fifth syncs the blocks."""
    cluster = Cluster(n=5, seed=12)
    cluster.submit(10, spread_ms=20_000)
    commit_heights(cluster, 2)
    cluster.isolate(4)
    cluster.run_for(20_000)
    lagging = cluster.node(4).height
    assert min(node.height for node in cluster.nodes[:4]) >= lagging + 5
    cluster.heal()
    commit_heights(cluster, 2)
    assert cluster.node(4).core.synced_blocks >= 4
    cluster.check()


def test_sim_one_way_partition_does_not_break_safety() -> None:
    """sim: one-way partition (n=4): 0 and 1 hear 2 and 3 but cannot reach them; then heal."""
    cluster = Cluster(n=4, seed=13)
    cluster.submit(8, spread_ms=20_000)
    commit_heights(cluster, 2)
    cluster.partition_one_way([0, 1], [2, 3])
    cluster.run_for(15_000)
    cluster.heal()
    commit_heights(cluster, 3)
    cluster.check()


def test_sim_message_loss_and_duplication_under_partition_churn() -> None:
    """sim: 30 % loss, 50 % duplication (n=7, f=2): progress by re-sends; nothing breaks."""
    cluster = Cluster(n=7, seed=14).set_faults(loss=0.3, duplicate=0.5)
    cluster.submit(10, spread_ms=20_000)
    commit_heights(cluster, 4, timeout_ms=3 * MINUTE_MS)
    cluster.partition([0, 1, 2], [3, 4, 5, 6])
    cluster.run_for(5_000)
    cluster.heal()
    commit_heights(cluster, 2, timeout_ms=3 * MINUTE_MS)
    cluster.check()


def test_sim_reordering_and_delay_spread() -> None:
    """sim: delays spread over 0.8 s (n=4): messages overtake each other; still agreement."""
    cluster = Cluster(n=4, seed=15).set_faults(delay_min_ms=1, delay_spread_ms=800)
    cluster.submit(10, spread_ms=10_000)
    commit_heights(cluster, 6)
    cluster.check()


def test_sim_slow_node_keeps_up_eventually() -> None:
    """sim: a slow node (+900 ms each way, n=4) lags; the others commit without waiting."""
    cluster = Cluster(n=4, seed=16)
    cluster.node(3).slow(900)
    cluster.submit(8, spread_ms=10_000)
    commit_heights(cluster, 5)
    cluster.check()


def test_sim_clock_skew_and_drift_leave_block_time_increasing() -> None:
    """sim: clocks off by ±5 s and drifting ±2 % (n=4): block time still increases."""
    cluster = Cluster(n=4, seed=17)
    cluster.node(0).skew(-5_000, -20_000)
    cluster.node(1).skew(4_000, 20_000)
    cluster.node(2).skew(1_500, 5_000)
    cluster.submit(6, spread_ms=10_000)
    commit_heights(cluster, 8)
    cluster.check()
    store = cluster.nodes[3].store
    times = [store.get_block(height).header.time_ms  # type: ignore[union-attr]
             for height in range(1, cluster.height + 1)]
    assert times == sorted(set(times))


# ------------------------------------------------------------------------------ crashes


def test_sim_crash_and_restart_from_the_wal() -> None:
    """sim: crash one (n=4): three make a quorum; restarted, it replays its WAL and catches up."""
    cluster = Cluster(n=4, seed=21)
    cluster.submit(10, spread_ms=20_000)
    commit_heights(cluster, 3)
    cluster.node(2).crash()
    commit_heights(cluster, 3)
    cluster.node(2).restart()
    assert cluster.node(2).sim.recoveries[-1].is_clean
    commit_heights(cluster, 3)
    cluster.check()


@pytest.mark.parametrize("zero_fill", [False, True])
def test_sim_torn_wal_write_is_truncated_and_reported(zero_fill: bool) -> None:
    """sim: a crash tears a WAL append (n=4), with or without a zero-filled tail."""
    cluster = Cluster(n=4, seed=22)
    commit_heights(cluster, 2)
    cluster.node(1).crash(torn_write=True, zero_fill=zero_fill)
    cluster.run_for(3_000)
    assert cluster.node(1).is_crashed
    cluster.node(1).restart()
    tail = cluster.node(1).sim.recoveries[-1]
    assert not tail.is_clean and tail.discarded_bytes > 0
    if not zero_fill:
        assert tail.defect in (TailDefect.TORN_HEADER, TailDefect.TORN_PAYLOAD)
    commit_heights(cluster, 3)
    cluster.check()


def test_sim_crash_inside_a_block_commit_rolls_back_and_recovers() -> None:
    """sim: a crash inside the block's SQLite transaction (n=4): the store keeps the previous
    height; on restart the decision in the WAL is committed again."""
    cluster = Cluster(n=4, seed=23)
    commit_heights(cluster, 2)
    cluster.node(3).crash_during_commit("log")
    cluster.run_for(5_000)
    assert cluster.node(3).is_crashed
    stored = cluster.node(3).height
    cluster.node(3).restart()
    assert cluster.node(3).height == stored + 1
    commit_heights(cluster, 2)
    cluster.check()


@pytest.mark.parametrize("power_loss", [False, True])
def test_sim_crash_right_after_locking_keeps_the_lock(power_loss: bool) -> None:
    """sim: two honest nodes crash the moment they lock (n=4, f=1, lock-split attacker), by
    a kill or by a power cut (the WAL then keeps only what its last sync covered: the own
    precommit and the prevotes before it); restarted from their WALs they keep their
    locks, so the attack finds no fork."""
    cluster = Cluster(n=4, seed=26 if power_loss else 25, byzantine={1: "lock_split"})
    cluster.submit(6, spread_ms=20_000)
    for _ in range(4):
        cluster.node(0).crash_after_lock(power_loss=power_loss)
        cluster.node(3).crash_after_lock(power_loss=power_loss)
        cluster.run_for(4_000)
        for index in (0, 3):
            if cluster.node(index).is_crashed:
                cluster.node(index).restart()
    assert cluster.nodes[0].crashes + cluster.nodes[3].crashes >= 6
    commit_heights(cluster, 3, timeout_ms=3 * MINUTE_MS)
    cluster.check()


@pytest.mark.parametrize("seed", range(40, 48))
def test_sim_power_cuts_under_load_keep_safety_and_liveness(seed: int) -> None:
    """sim: power cuts at random moments (n=4), one node at a time, each losing a random
    part of its WAL's unsynced tail; every restarted node rejoins and the chain agrees."""
    cluster = Cluster(n=4, seed=seed)
    cluster.submit(40, spread_ms=30_000)
    for round_ in range(6):
        index = (seed + round_) % 4
        cluster.run_for(700 + 450 * round_)
        cluster.node(index).crash(power_loss=True)
        cluster.run_for(1_500)
        cluster.node(index).restart()
    commit_heights(cluster, 3)
    cluster.check()
    assert sum(node.crashes for node in cluster.nodes) == 6


def test_sim_every_node_crashes_and_the_chain_resumes() -> None:
    """sim: all four crash at once (n=4), restart together; safety rules and WALs hold."""
    cluster = Cluster(n=4, seed=24)
    cluster.submit(6, spread_ms=5_000)
    commit_heights(cluster, 3)
    for index in range(4):
        cluster.node(index).crash()
    cluster.run_for(2_000)
    for index in range(4):
        cluster.node(index).restart()
    commit_heights(cluster, 3)
    cluster.check()


# ------------------------------------------------------------------------------ Byzantine


def test_sim_equivocating_proposer_cannot_split_the_honest_nodes() -> None:
    """sim: equivocating proposer (n=4, f=1) sends two blocks per round; agreement holds."""
    cluster = Cluster(n=4, seed=31, byzantine={1: "equivocate"})
    cluster.submit(8, spread_ms=20_000)
    commit_heights(cluster, 8)
    cluster.check()
    assert sum(node.core.machine.dropped["conflicting_proposal"]
               for node in cluster.honest_nodes) > 0


def test_sim_double_voting_is_committed_as_evidence() -> None:
    """sim: double voting (n=4, f=1): honest proposers put the evidence on chain."""
    cluster = Cluster(n=4, seed=32, byzantine={2: "double_vote"})
    cluster.submit(8, spread_ms=20_000)
    commit_heights(cluster, 8)
    cluster.check()
    store = cluster.nodes[0].store
    evidence = [DuplicateVoteEvidence.decode(item) for height in range(1, store.get_tip().height)
                for item in store.get_block(height).evidence]  # type: ignore[union-attr]
    assert evidence and {item.validator for item in evidence} == {cluster.nodes[2].key.public_key}
    assert len({item.hash() for item in evidence}) == len(evidence)


def test_sim_twins_sharing_a_key_cannot_break_agreement() -> None:
    """sim: twins (n=4, f=1): two honest-code nodes share one key; they equivocate."""
    cluster = Cluster(n=4, seed=33, byzantine={3: "twins"})
    assert len(cluster.nodes) == 5
    cluster.submit(8, spread_ms=20_000)
    commit_heights(cluster, 8)
    cluster.check()
    # Each twin runs the honest code to the end: the other's messages are only conflicting.
    assert [node.assertion_failures for node in cluster.nodes if not node.is_honest] == [0, 0]


def test_sim_silent_validator_withholds_everything() -> None:
    """sim: withholding (n=4, f=1): the silent validator's proposer turns time out."""
    cluster = Cluster(n=4, seed=34, byzantine={0: "silent"})
    cluster.submit(8, spread_ms=20_000)
    commit_heights(cluster, 6)
    cluster.check()


def test_sim_partial_withholding_by_two_validators() -> None:
    """sim: withholding to some peers (n=7, f=2): two validators talk to subsets only."""
    cluster = Cluster(n=7, seed=35, byzantine={1: "partial", 5: "partial"})
    cluster.submit(8, spread_ms=20_000)
    commit_heights(cluster, 5)
    cluster.check()


def test_sim_invalid_proposals_are_rejected() -> None:
    """sim: invalid proposals (n=4, f=1): forged roots, bad txs, stale times, swapped bodies."""
    cluster = Cluster(n=4, seed=36, byzantine={0: "invalid_proposal"})
    cluster.submit(10, spread_ms=30_000)
    commit_heights(cluster, 24)
    cluster.check()
    proposer_key = cluster.nodes[0].key.public_key
    for node in cluster.honest_nodes:
        for height in range(1, node.height + 1):
            assert node.store.get_block(height).header.proposer != proposer_key  # type: ignore[union-attr]
    behaviour = cluster.nodes[0].behaviour
    assert isinstance(behaviour, InvalidProposal)
    assert set(behaviour.sent) == set(InvalidProposal.CORRUPTIONS)
    assert sum(node.core.dropped[CoreDrop.INCONSISTENT_BODY] for node in cluster.honest_nodes)


def test_sim_lock_split_attack_fails_against_honest_locks() -> None:
    """sim: lock-split attack (n=4, f=1): Y is led to round 1 and offered w; locked on v, it
    prevotes nil, so no fork; after the attack, block sync brings Y to v."""
    cluster = Cluster(n=4, seed=37, byzantine={1: "lock_split"})
    cluster.submit(8, spread_ms=30_000)
    commit_heights(cluster, 8, timeout_ms=4 * MINUTE_MS)
    assert cluster.adversary.injections >= 1
    cluster.check()


def test_sim_standby_node_follows_the_chain() -> None:
    """sim: a standby (no voting power, n=4 + 1) follows by consensus messages and block sync."""
    cluster = Cluster(n=4, seed=38, standbys=1)
    cluster.submit(5, spread_ms=5_000)
    commit_heights(cluster, 5)
    cluster.check()
    assert cluster.nodes[4].commits == cluster.nodes[0].commits


def test_sim_validator_set_change_takes_effect_two_heights_later() -> None:
    """sim: validator-set change (n=4 + 1 standby): three of the four agencies (k = 3) pass
    proposals to add node 4 and remove node 0. Once they apply, node 0 crashes and node 1
    too: only with the new member do 2, 3 and 4 make a quorum — and they do."""
    cluster = Cluster(n=4, seed=39, standbys=1)
    cluster.submit(6, spread_ms=20_000)
    commit_heights(cluster, 2)
    cluster.change_validators(add=[4], remove=[0])
    commit_heights(cluster, 8)
    new_key, old_key = cluster.nodes[4].key.public_key, cluster.nodes[0].key.public_key
    validators = cluster.nodes[2].core.engine.validators
    assert validators.get_power(new_key) == 1 and validators.get_power(old_key) == 0
    cluster.node(0).crash()
    cluster.node(1).crash()
    commit_heights(cluster, 3)
    cluster.check()
    last = cluster.nodes[2].store.get_commit(cluster.nodes[2].height)
    assert last is not None
    assert {sig.validator for sig in last.signatures} == {
        cluster.nodes[index].key.public_key for index in (2, 3, 4)}
