"""Whole clusters of honest machines on a deterministic virtual network."""

from __future__ import annotations

import pytest
from consensus_harness import Cluster, make_block, proposer_index

from seoulchain.consensus.messages import verify_commit


@pytest.mark.parametrize("count", [1, 4, 7])
def test_cluster_decides_with_agreement(count: int) -> None:
    """cluster: honest network (n=1, 4, 7) decides five heights in round 0."""
    cluster = Cluster(count).start().run_until(5)
    cluster.assert_agreement()
    for node in cluster.nodes:
        for height in range(1, 6):
            commit = node.commits[height]
            assert commit.round == 0
            verify_commit("seoul-test", cluster.validator_set, commit, node.decisions[height],
                          height)
            if height > 1:
                assert node.blocks[height].last_commit is not None
                assert node.blocks[height].header.prev_block_id == node.decisions[height - 1]
        assert node.machine.refused_signatures == 0
        assert not node.evidence
        # Only votes that arrive after the decision are dropped (late precommits).
        assert set(node.machine.dropped) <= {"already_decided"}


def test_cluster_with_weighted_power_decides() -> None:
    """cluster: powers 1, 2, 3, 4 (n=4) decide ten heights."""
    cluster = Cluster(4, [1, 2, 3, 4]).start().run_until(10)
    cluster.assert_agreement()


def test_cluster_survives_a_crashed_validator() -> None:
    """cluster: one validator crashed (n=4, f=1): its rounds time out, heights still decide."""
    cluster = Cluster(4)
    cluster.node(1).crashed = True
    cluster.start().run_until(6)
    cluster.assert_agreement()
    rounds = {cluster.node(0).commits[height].round for height in range(1, 7)}
    assert rounds == {0, 1}


def test_cluster_moves_past_an_invalid_proposal() -> None:
    """cluster: the application rejects round 0's block (n=4): round 1 decides another."""
    cluster = Cluster(4)
    first = proposer_index(cluster.validator_set, cluster.keys, 1, 0)
    bad = make_block(1, cluster.validator_set, cluster.keys[first].public_key, tag=b"h1r0n%d"
                     % first)
    cluster.invalid_block_ids.add(bad.block_id())
    cluster.start().run_until(1)
    cluster.assert_agreement()
    assert cluster.node(0).commits[1].round == 1
    assert cluster.node(0).decisions[1] != bad.block_id()


def test_cluster_runs_are_reproducible() -> None:
    """cluster: two runs of the same scenario give the same decisions at the same times."""
    first = Cluster(4, [1, 1, 2, 3])
    first.node(2).crashed = True
    first.start().run_until(4)
    second = Cluster(4, [1, 1, 2, 3])
    second.node(2).crashed = True
    second.start().run_until(4)
    assert first.now_ms == second.now_ms
    assert [n.decisions for n in first.nodes] == [n.decisions for n in second.nodes]
