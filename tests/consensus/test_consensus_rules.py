"""One test per rule of Algorithm 1 (arXiv:1807.04938), on one machine (n=4, f=1, me=3)."""

from __future__ import annotations

from consensus_solo import PRECOMMIT, PREVOTE, Solo, only, votes_of

from seoulchain.consensus.events import (
    BroadcastProposal,
    CommitBlock,
    ProposalValueReady,
    RequestBlock,
    RequestValidation,
    ScheduleTimeout,
    TimeoutKind,
)
from seoulchain.consensus.machine import (
    ConsensusConfig,
    is_acceptable_fresh,
    is_acceptable_with_pol,
)
from seoulchain.consensus.messages import NIL_BLOCK_ID, NO_ROUND, Step, verify_commit
from seoulchain.ledger.types import Block

NIL = NIL_BLOCK_ID


def lock_on(solo: Solo, block: Block, round_: int = 0) -> None:
    """Receive the round's proposal of `block` and a polka for it, so we lock on it."""
    solo.propose(round_, block)
    solo.validate(block)
    solo.vote([0, 1], PREVOTE, round_, block.block_id())
    assert solo.machine.state.locked_round == round_


def finish_round(solo: Solo, round_: int) -> None:
    """From any step of `round_`, reach precommit, see 2f + 1 precommits, fire the timeout."""
    solo.timeout(TimeoutKind.PROPOSE, round_)
    solo.vote([0, 1], PREVOTE, round_, NIL)
    solo.timeout(TimeoutKind.PREVOTE, round_)
    solo.vote([0, 1], PRECOMMIT, round_, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, round_)
    assert solo.machine.round == round_ + 1


# ---------------------------------------------------------------- lines 11-21 StartRound


def test_start_round_non_proposer_schedules_propose_timeout() -> None:
    solo = Solo()
    assert solo.start() == [ScheduleTimeout(TimeoutKind.PROPOSE, 1, 0, 3000)]
    assert solo.machine.step == Step.PROPOSE


def test_start_round_proposer_asks_for_a_block_then_proposes_and_prevotes_it() -> None:
    solo = Solo(me=0)
    assert solo.start() == [RequestBlock(1, 0, None)]
    block = solo.block("mine")
    actions = solo.feed(ProposalValueReady(1, 0, block))
    assert [a.proposal.block_id for a in only(actions, BroadcastProposal)] == [block.block_id()]
    assert only(actions, BroadcastProposal)[0].proposal.pol_round == NO_ROUND
    assert votes_of(actions) == [(PREVOTE, 0, block.block_id())]


def test_start_round_proposer_reproposes_valid_value_with_its_valid_round() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.timeout(TimeoutKind.PROPOSE, 0)  # no proposal yet: prevote nil
    solo.vote([0, 1, 2], PREVOTE, 0, block.block_id())  # the others have a polka
    solo.timeout(TimeoutKind.PREVOTE, 0)  # precommit nil, not locked
    solo.propose(0, block)
    solo.validate(block)  # lines 36-43 with step_p = precommit: valid value only
    state = solo.machine.state
    assert (state.valid_round, state.locked_round) == (0, NO_ROUND)
    actions = solo.vote([0, 1], PREVOTE, 3, NIL)  # f + 1 in round 3, where we propose
    proposals = [a.proposal for a in only(actions, BroadcastProposal)]
    assert [(p.round, p.pol_round, p.block_id) for p in proposals] == [(3, 0, block.block_id())]
    assert votes_of(actions) == [(PREVOTE, 3, block.block_id())]


# ---------------------------------------------------------------- lines 22-27


def test_line_22_prevotes_a_valid_fresh_proposal_once_validated() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    actions = solo.propose(0, block)
    assert actions == [RequestValidation(1, block)]
    assert solo.machine.step == Step.PROPOSE
    assert votes_of(solo.validate(block)) == [(PREVOTE, 0, block.block_id())]
    assert solo.machine.step == Step.PREVOTE


def test_line_22_prevotes_nil_for_an_invalid_proposal() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("bad")
    solo.propose(0, block)
    assert votes_of(solo.validate(block, is_valid=False)) == [(PREVOTE, 0, NIL)]


def test_line_22_locked_validator_prevotes_nil_for_another_value() -> None:
    solo = Solo()
    solo.start()
    locked, other = solo.block("a"), solo.block("b")
    lock_on(solo, locked)
    solo.vote([0, 1], PRECOMMIT, 0, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    solo.propose(1, other)
    assert votes_of(solo.validate(other)) == [(PREVOTE, 1, NIL)]


def test_line_22_locked_validator_prevotes_its_locked_value() -> None:
    solo = Solo()
    solo.start()
    locked = solo.block("a")
    lock_on(solo, locked)
    solo.vote([0, 1], PRECOMMIT, 0, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    assert votes_of(solo.propose(1, locked)) == [(PREVOTE, 1, locked.block_id())]


def test_line_22_canary_ignores_the_lock() -> None:
    solo = Solo(canary=True)
    solo.start()
    locked, other = solo.block("a"), solo.block("b")
    lock_on(solo, locked)
    solo.vote([0, 1], PRECOMMIT, 0, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    solo.propose(1, other)
    assert votes_of(solo.validate(other)) == [(PREVOTE, 1, other.block_id())]


def test_line_23_predicate() -> None:
    assert is_acceptable_fresh(True, NO_ROUND, None, b"v")
    assert is_acceptable_fresh(True, 2, b"v", b"v")
    assert not is_acceptable_fresh(True, 2, b"w", b"v")
    assert not is_acceptable_fresh(False, NO_ROUND, None, b"v")


# ---------------------------------------------------------------- lines 28-33


def test_line_28_polka_from_a_later_round_releases_the_lock() -> None:
    solo = Solo()
    solo.start()
    locked, other = solo.block("a"), solo.block("b")
    lock_on(solo, locked)
    solo.vote([0, 1], PRECOMMIT, 0, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    solo.timeout(TimeoutKind.PROPOSE, 1)  # no proposal seen in round 1: prevote nil
    solo.vote([0, 1, 2], PREVOTE, 1, other.block_id())  # ... but the others had a polka
    solo.timeout(TimeoutKind.PREVOTE, 1)
    solo.vote([0, 1], PRECOMMIT, 1, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 1)
    solo.propose(2, other, pol_round=1)
    assert votes_of(solo.validate(other)) == [(PREVOTE, 2, other.block_id())]


def test_line_28_polka_older_than_the_lock_does_not_release_it() -> None:
    solo = Solo()
    solo.start()
    old, locked = solo.block("old"), solo.block("locked")
    solo.timeout(TimeoutKind.PROPOSE, 0)
    solo.vote([0, 1, 2], PREVOTE, 0, old.block_id())  # polka for `old` in round 0, unseen
    solo.timeout(TimeoutKind.PREVOTE, 0)
    solo.vote([0, 1], PRECOMMIT, 0, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    lock_on(solo, locked, round_=1)
    solo.vote([0, 1], PRECOMMIT, 1, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 1)
    solo.propose(2, old, pol_round=0)
    assert votes_of(solo.validate(old)) == [(PREVOTE, 2, NIL)]


def test_line_28_waits_for_the_polka_it_cites() -> None:
    solo = Solo()
    solo.start()
    finish_round(solo, 0)
    block = solo.block("b")
    solo.propose(1, block, pol_round=0)
    assert votes_of(solo.validate(block)) == []
    assert solo.machine.step == Step.PROPOSE


def test_line_29_predicate_and_canary() -> None:
    assert is_acceptable_with_pol(True, 1, b"w", b"v", 1)
    assert is_acceptable_with_pol(True, 3, b"v", b"v", 1)
    assert not is_acceptable_with_pol(True, 2, b"w", b"v", 1)
    assert not is_acceptable_with_pol(False, NO_ROUND, None, b"v", 1)


def test_line_28_canary_ignores_the_lock() -> None:
    solo = Solo(canary=True)
    solo.start()
    old, locked = solo.block("old"), solo.block("locked")
    solo.timeout(TimeoutKind.PROPOSE, 0)
    solo.vote([0, 1, 2], PREVOTE, 0, old.block_id())
    solo.timeout(TimeoutKind.PREVOTE, 0)
    solo.vote([0, 1], PRECOMMIT, 0, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    lock_on(solo, locked, round_=1)
    solo.vote([0, 1], PRECOMMIT, 1, NIL)
    solo.timeout(TimeoutKind.PRECOMMIT, 1)
    solo.propose(2, old, pol_round=0)
    assert votes_of(solo.validate(old)) == [(PREVOTE, 2, old.block_id())]


# ---------------------------------------------------------------- lines 34-35


def test_line_34_schedules_the_prevote_timeout_once_on_any_quorum() -> None:
    solo = Solo()
    solo.start()
    solo.timeout(TimeoutKind.PROPOSE, 0)
    assert solo.vote([0], PREVOTE, 0, solo.block("a").block_id()) == []
    actions = solo.vote([1], PREVOTE, 0, solo.block("b").block_id())
    assert actions == [ScheduleTimeout(TimeoutKind.PREVOTE, 1, 0, 1000)]
    assert solo.vote([2], PREVOTE, 0, NIL) == []


def test_line_61_prevote_timeout_precommits_nil() -> None:
    solo = Solo()
    solo.start()
    solo.timeout(TimeoutKind.PROPOSE, 0)
    assert votes_of(solo.timeout(TimeoutKind.PREVOTE, 0)) == [(PRECOMMIT, 0, NIL)]
    assert solo.machine.step == Step.PRECOMMIT


# ---------------------------------------------------------------- lines 36-43


def test_line_36_polka_locks_and_precommits() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.propose(0, block)
    solo.validate(block)
    assert solo.vote([0], PREVOTE, 0, block.block_id()) == []
    actions = solo.vote([1], PREVOTE, 0, block.block_id())
    assert votes_of(actions) == [(PRECOMMIT, 0, block.block_id())]
    state = solo.machine.state
    assert (state.locked_round, state.locked_block_id) == (0, block.block_id())
    assert (state.valid_round, state.valid_block_id) == (0, block.block_id())
    assert solo.vote([2], PREVOTE, 0, block.block_id()) == []  # first time only


def test_line_36_polka_after_precommit_updates_only_the_valid_value() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.timeout(TimeoutKind.PROPOSE, 0)
    solo.vote([0, 1, 2], PREVOTE, 0, block.block_id())
    solo.timeout(TimeoutKind.PREVOTE, 0)
    solo.propose(0, block)
    assert votes_of(solo.validate(block)) == []
    state = solo.machine.state
    assert (state.valid_round, state.valid_block_id) == (0, block.block_id())
    assert state.locked_round == NO_ROUND


def test_line_36_needs_a_valid_value() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.propose(0, block)
    solo.vote([0, 1, 2], PREVOTE, 0, block.block_id())
    solo.validate(block, is_valid=False)
    assert solo.machine.state.locked_round == NO_ROUND


# ---------------------------------------------------------------- lines 44-46


def test_line_44_nil_polka_precommits_nil() -> None:
    solo = Solo()
    solo.start()
    solo.timeout(TimeoutKind.PROPOSE, 0)
    assert votes_of(solo.vote([0, 1], PREVOTE, 0, NIL)) == [(PRECOMMIT, 0, NIL)]


# ---------------------------------------------------------------- lines 47-48, 65-67


def test_line_47_precommit_timeout_then_next_round() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    assert solo.vote([0, 1], PRECOMMIT, 0, block.block_id()) == []
    actions = solo.vote([2], PRECOMMIT, 0, NIL)
    assert actions == [ScheduleTimeout(TimeoutKind.PRECOMMIT, 1, 0, 1000)]
    assert solo.machine.step == Step.PROPOSE  # line 47 has no step condition
    actions = solo.timeout(TimeoutKind.PRECOMMIT, 0)
    assert actions == [ScheduleTimeout(TimeoutKind.PROPOSE, 1, 1, 3500)]
    assert (solo.machine.round, solo.machine.step) == (1, Step.PROPOSE)


# ---------------------------------------------------------------- lines 49-54


def test_line_49_decides_with_a_verifying_commit() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.propose(0, block)
    solo.validate(block)
    actions = solo.vote([0, 1, 2], PRECOMMIT, 0, block.block_id())
    (commit_block,) = only(actions, CommitBlock)
    assert commit_block.block == block
    verify_commit(solo.config.chain_id, solo.validator_set, commit_block.commit,
                  block.block_id(), 1)
    assert solo.machine.state.is_decided


def test_line_49_decides_a_value_of_an_earlier_round() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.propose(0, block)
    solo.timeout(TimeoutKind.PROPOSE, 0)
    solo.vote([0, 1], PREVOTE, 0, NIL)
    solo.vote([0, 1], PRECOMMIT, 0, block.block_id())
    solo.timeout(TimeoutKind.PRECOMMIT, 0)
    assert solo.machine.round == 1
    solo.validate(block)
    assert only(solo.vote([2], PRECOMMIT, 0, block.block_id()), CommitBlock)


def test_line_50_waits_for_valid_v() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.propose(0, block)
    assert not only(solo.vote([0, 1, 2], PRECOMMIT, 0, block.block_id()), CommitBlock)
    assert only(solo.validate(block), CommitBlock)


def test_line_52_next_height_starts_at_round_zero_with_reset_locks() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    lock_on(solo, block)
    (decision,) = only(solo.vote([0, 1], PRECOMMIT, 0, block.block_id()), CommitBlock)
    assert solo.start(2, decision.commit) == [ScheduleTimeout(TimeoutKind.PROPOSE, 2, 0, 3000)]
    state = solo.machine.state
    assert (state.height, state.round, state.locked_round, state.valid_round) == (
        2, 0, NO_ROUND, NO_ROUND)


# ---------------------------------------------------------------- lines 55-56


def test_line_55_skips_to_a_round_with_f_plus_one_messages() -> None:
    solo = Solo()
    solo.start()
    assert solo.vote([0], PREVOTE, 5, NIL) == []
    assert solo.machine.round == 0
    actions = solo.vote([1], PRECOMMIT, 5, NIL)
    assert actions == [ScheduleTimeout(TimeoutKind.PROPOSE, 1, 5, 5500)]
    assert solo.machine.round == 5


def test_line_55_counts_a_proposal_as_its_proposers_message() -> None:
    solo = Solo()
    solo.start()
    block = solo.block("a")
    solo.propose(2, block)
    assert solo.machine.round == 0
    solo.vote([0], PREVOTE, 2, NIL)
    assert solo.machine.round == 2


# ---------------------------------------------------------------- lines 57-64: timeouts


def test_line_57_propose_timeout_prevotes_nil_and_stale_timeouts_are_ignored() -> None:
    solo = Solo()
    solo.start()
    assert votes_of(solo.timeout(TimeoutKind.PROPOSE, 0)) == [(PREVOTE, 0, NIL)]
    before = solo.machine.state
    assert solo.timeout(TimeoutKind.PROPOSE, 0) == []
    assert solo.timeout(TimeoutKind.PRECOMMIT, 7) == []
    assert solo.timeout(TimeoutKind.PREVOTE, 0, height=9) == []
    assert solo.machine.state == before


def test_timeouts_grow_linearly_per_round() -> None:
    config = ConsensusConfig("c", timeout_propose_ms=100, timeout_propose_delta_ms=10)
    assert [config.compute_timeout_ms(TimeoutKind.PROPOSE, r) for r in range(3)] == [
        100, 110, 120]
    assert config.compute_timeout_ms(TimeoutKind.PRECOMMIT, 2) == 2000
    assert config.compute_timeout_ms(TimeoutKind.PREVOTE, 2**31 - 1) == 10 * 60 * 1000
