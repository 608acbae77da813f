"""Empty blocks: with create_empty_blocks off, round 0 waits for transactions (n=4, f=1).

As CometBFT's create_empty_blocks / create_empty_blocks_interval: at round 0 of every height
but the first, the proposer proposes only once the driver reports transactions
(`TxsAvailable`) or the proof-of-life interval passes (`TimeoutFired(WAIT_FOR_TXS)`); the
others start their propose timeout only then, but take the round's proposal and vote on it
whenever it comes. Later rounds never wait. With equal powers the proposer of (h, r) is
validator (h - 1 + r) mod 4, so validator 1 proposes (2, 0) and validator 3 does not.
"""

from __future__ import annotations

import pytest
from consensus_harness import CHAIN_ID, Cluster
from consensus_solo import PREVOTE, Solo, only, votes_of

from seoulchain.consensus.events import (
    ProposalValueReady,
    RequestBlock,
    ScheduleTimeout,
    TimeoutFired,
    TimeoutKind,
    TxsAvailable,
    decode_event,
    encode_event,
)
from seoulchain.consensus.machine import ConsensusConfig, DropReason
from seoulchain.crypto import sha256
from seoulchain.errors import DecodeError, LocalError
from seoulchain.ledger.types import Commit

INTERVAL_MS = 30_000
WAITING = ConsensusConfig(CHAIN_ID, create_empty_blocks=False,
                          create_empty_blocks_interval_ms=INTERVAL_MS)
LAST_COMMIT = Commit(1, 0, sha256(b"block 1"), ())
WAIT_TIMER = ScheduleTimeout(TimeoutKind.WAIT_FOR_TXS, 2, 0, INTERVAL_MS)


def waiting_at_height_2(me: int, config: ConsensusConfig = WAITING) -> tuple[Solo, list]:
    """Return validator `me`'s machine started at height 2, and what the start did."""
    solo = Solo(me=me, config=config)
    actions = solo.start(2, LAST_COMMIT)
    return solo, actions


def test_empty_blocks_the_first_height_never_waits() -> None:
    """empty blocks: height 1 is proposed at once (the chain's first block shows it is live)."""
    solo = Solo(me=0, config=WAITING)
    assert solo.start() == [RequestBlock(1, 0, None)]
    assert not solo.machine.is_waiting_for_txs


def test_empty_blocks_the_proposer_waits_then_proposes_when_txs_arrive() -> None:
    """empty blocks (proposer): round 0 waits with the proof-of-life timer; TxsAvailable
    makes it ask for a block at once; a second one is stale."""
    solo, actions = waiting_at_height_2(me=1)
    assert actions == [WAIT_TIMER]
    assert solo.machine.is_waiting_for_txs and solo.machine.state.is_waiting_for_txs
    assert solo.feed(TxsAvailable(2)) == [RequestBlock(2, 0, LAST_COMMIT)]
    assert not solo.machine.is_waiting_for_txs
    assert solo.feed(TxsAvailable(2)) == []
    assert solo.machine.dropped[DropReason.STALE_EVENT] == 1


def test_empty_blocks_the_proof_of_life_interval_proposes_an_empty_block() -> None:
    """empty blocks (proposer): without transactions, the interval's timeout proposes."""
    solo, _ = waiting_at_height_2(me=1)
    assert solo.timeout(TimeoutKind.WAIT_FOR_TXS, 0, height=2) == [RequestBlock(2, 0, LAST_COMMIT)]
    block = solo.block("empty", height=2)
    actions = solo.feed(ProposalValueReady(2, 0, block))
    assert votes_of(actions) == [(PREVOTE, 0, block.block_id())]


def test_empty_blocks_interval_zero_waits_for_transactions_only() -> None:
    """empty blocks: with interval 0 nothing is scheduled; only TxsAvailable moves on."""
    config = ConsensusConfig(CHAIN_ID, create_empty_blocks=False)
    solo, actions = waiting_at_height_2(me=1, config=config)
    assert actions == [] and solo.machine.is_waiting_for_txs
    assert solo.feed(TxsAvailable(2)) == [RequestBlock(2, 0, LAST_COMMIT)]


def test_empty_blocks_a_waiting_non_proposer_follows_the_proposal() -> None:
    """empty blocks (non-proposer, empty mempool): no propose timeout while waiting, but the
    proposer's block (it had transactions) is taken and prevoted at once."""
    solo, actions = waiting_at_height_2(me=3)
    assert actions == [WAIT_TIMER]
    block = solo.block("with txs", height=2)
    solo.propose(0, block)
    actions = solo.validate(block)
    assert votes_of(actions) == [(PREVOTE, 0, block.block_id())]
    assert not solo.machine.is_waiting_for_txs
    assert solo.feed(TxsAvailable(2)) == []  # moved on: no propose timeout any more
    assert solo.timeout(TimeoutKind.WAIT_FOR_TXS, 0, height=2) == []


def test_empty_blocks_a_non_proposer_with_txs_starts_its_propose_timeout() -> None:
    """empty blocks (non-proposer): its own transactions end the wait with the propose
    timeout, so a silent proposer costs one timeout, as without the wait."""
    solo, _ = waiting_at_height_2(me=3)
    assert solo.feed(TxsAvailable(2)) == [ScheduleTimeout(TimeoutKind.PROPOSE, 2, 0, 3000)]


def test_empty_blocks_a_later_round_never_waits() -> None:
    """empty blocks: f + 1 messages of round 1 move a waiting validator to round 1, where it
    schedules its propose timeout at once."""
    solo, _ = waiting_at_height_2(me=3)
    actions = solo.vote([0, 1], PREVOTE, 1, b"", height=2)
    assert solo.machine.round == 1 and not solo.machine.is_waiting_for_txs
    assert only(actions, ScheduleTimeout) == [ScheduleTimeout(TimeoutKind.PROPOSE, 2, 1, 3500)]


def test_empty_blocks_events_round_trip_through_the_wal_codec() -> None:
    for event in (TxsAvailable(7), TimeoutFired(TimeoutKind.WAIT_FOR_TXS, 7, 0)):
        assert decode_event(encode_event(event)) == event
    assert encode_event(TxsAvailable(7)).hex() == "820707"
    with pytest.raises(DecodeError):
        decode_event(bytes.fromhex("820700"))  # height 0


def test_empty_blocks_interval_out_of_range_is_refused() -> None:
    with pytest.raises(LocalError, match="create_empty_blocks_interval_ms"):
        ConsensusConfig(CHAIN_ID, create_empty_blocks_interval_ms=-1)


def test_empty_blocks_an_idle_cluster_makes_one_block_per_interval() -> None:
    """empty blocks (n=4): with no transactions, heights after the first come one interval
    apart, and every node agrees."""
    config = ConsensusConfig(CHAIN_ID, create_empty_blocks=False,
                             create_empty_blocks_interval_ms=5000)
    cluster = Cluster(4, config=config).start().run_until(1)
    first_ms = cluster.now_ms
    cluster.run_until(3)
    assert cluster.now_ms - first_ms >= 2 * 5000
    cluster.assert_agreement()
