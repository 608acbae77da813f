"""Bad, stale and surplus input: dropped, counted by reason, never raising, state unchanged."""

from __future__ import annotations

from consensus_harness import CHAIN_ID, make_block, sign_proposal, sign_vote
from consensus_solo import PRECOMMIT, PREVOTE, Solo, only
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.events import (
    CommitBlock,
    ProposalReceived,
    ReportEvidence,
    TimeoutKind,
    ValidationResult,
    VoteReceived,
)
from seoulchain.consensus.evidence import DuplicateVoteEvidence
from seoulchain.consensus.machine import FUTURE_HEIGHT_MESSAGES_MAX, DropReason
from seoulchain.consensus.messages import NIL_BLOCK_ID, Vote
from seoulchain.crypto import SigningKey, sha256


def assert_dropped(solo: Solo, event: object, reason: str) -> None:
    before = solo.machine.state
    count = solo.machine.dropped[reason]
    assert solo.feed(event) == []  # type: ignore[arg-type]
    assert solo.machine.dropped[reason] == count + 1
    assert solo.machine.state == before


def test_malformed_messages() -> None:
    solo = Solo()
    solo.start()
    assert_dropped(solo, VoteReceived(b"\xff\x00"), DropReason.MALFORMED)
    assert_dropped(solo, ProposalReceived(b""), DropReason.MALFORMED)


def test_unknown_validator_and_bad_signatures() -> None:
    solo = Solo()
    solo.start()
    stranger = SigningKey(sha256(b"stranger"))
    assert_dropped(solo, VoteReceived(sign_vote(stranger, PREVOTE, 1, 0, b"").encode()),
                   DropReason.UNKNOWN_VALIDATOR)
    other_chain = sign_vote(solo.keys[0], PREVOTE, 1, 0, b"", chain_id="other-chain")
    assert_dropped(solo, VoteReceived(other_chain.encode()), DropReason.INVALID_SIGNATURE)
    good = sign_vote(solo.keys[0], PREVOTE, 1, 0, b"")
    unsigned = Vote(good.vote_type, 1, 0, b"", good.validator, b"\x00" * 64)
    assert_dropped(solo, VoteReceived(unsigned.encode()), DropReason.INVALID_SIGNATURE)
    block = solo.block("a")
    not_the_proposer = sign_proposal(solo.keys[1], 1, 0, block)
    assert_dropped(solo, ProposalReceived(not_the_proposer.encode()),
                   DropReason.INVALID_SIGNATURE)
    foreign = make_block(1, solo.validator_set, solo.keys[0].public_key, chain_id="elsewhere")
    assert_dropped(solo, ProposalReceived(sign_proposal(solo.keys[0], 1, 0, foreign).encode()),
                   DropReason.INVALID_PROPOSAL)


def test_messages_before_start_and_for_old_heights() -> None:
    solo = Solo()
    vote = VoteReceived(sign_vote(solo.keys[0], PREVOTE, 1, 0, b"").encode())
    assert_dropped(solo, vote, DropReason.NOT_STARTED)
    solo.start(height=3)
    assert_dropped(solo, vote, DropReason.STALE_HEIGHT)


def test_next_height_messages_wait_for_start_height_and_further_ones_are_dropped() -> None:
    solo = Solo()
    solo.start()
    ahead = VoteReceived(sign_vote(solo.keys[0], PREVOTE, 2, 0, b"").encode())
    assert_dropped(solo, VoteReceived(sign_vote(solo.keys[0], PREVOTE, 3, 0, b"").encode()),
                   DropReason.FUTURE_HEIGHT)
    before = solo.machine.state
    assert solo.feed(ahead) == [] and solo.machine.state == before
    assert_dropped(solo, ahead, DropReason.DUPLICATE)
    block = solo.block("a")
    solo.propose(0, block)
    solo.validate(block)
    (decision,) = only(solo.vote([0, 1, 2], PRECOMMIT, 0, block.block_id()), CommitBlock)
    solo.start(2, decision.commit)
    assert solo.machine.dropped[DropReason.ALREADY_DECIDED] == 0
    assert_dropped(solo, ahead, DropReason.DUPLICATE)  # it was counted at StartHeight(2)


def test_next_height_buffer_is_bounded() -> None:
    solo = Solo()
    solo.start()
    for index in range(FUTURE_HEIGHT_MESSAGES_MAX):
        vote = Vote(PREVOTE, 2, index, b"", solo.keys[0].public_key, b"\x00" * 64)
        solo.feed(VoteReceived(vote.encode()))
    extra = Vote(PREVOTE, 2, 0, b"", solo.keys[1].public_key, b"\x00" * 64)
    assert_dropped(solo, VoteReceived(extra.encode()), DropReason.FUTURE_BUFFER_FULL)


def test_duplicates_and_late_messages() -> None:
    solo = Solo()
    solo.start()
    vote = VoteReceived(sign_vote(solo.keys[0], PREVOTE, 1, 0, b"").encode())
    solo.feed(vote)
    assert_dropped(solo, vote, DropReason.DUPLICATE)
    block = solo.block("a")
    solo.propose(0, block)
    assert_dropped(solo, ProposalReceived(solo.signed_proposal(0, block).encode()),
                   DropReason.DUPLICATE)
    assert_dropped(solo, ProposalReceived(solo.signed_proposal(0, solo.block("b")).encode()),
                   DropReason.CONFLICTING_PROPOSAL)
    assert_dropped(solo, ValidationResult(1, sha256(b"never asked"), True),
                   DropReason.UNREQUESTED)
    assert_dropped(solo, ValidationResult(2, block.block_id(), True), DropReason.STALE_EVENT)


def test_double_vote_is_reported_as_evidence_once() -> None:
    solo = Solo()
    solo.start()
    solo.vote([0], PREVOTE, 0, NIL_BLOCK_ID)
    before = solo.machine.state
    actions = solo.vote([0], PREVOTE, 0, sha256(b"x"))
    (report,) = only(actions, ReportEvidence)
    assert isinstance(report.evidence, DuplicateVoteEvidence)
    report.evidence.verify(CHAIN_ID, solo.validator_set)
    assert solo.machine.dropped[DropReason.CONFLICTING_VOTE] == 1
    assert solo.vote([0], PREVOTE, 0, sha256(b"y")) == []  # no proposal names "y"
    assert solo.machine.dropped[DropReason.IGNORED_CONFLICT] == 1
    assert solo.machine.state == before


def test_an_equivocators_further_vote_counts_for_a_proposed_block() -> None:
    """found by seed 100096 (n=4, f=1, double_vote): an equivocator's nil, then a random id,
    reached A first, its prevote for the proposed v third; only the first two counted, so A
    never saw the polka B locked on, and refused B's re-proposals of v for 120 s."""
    solo = Solo()
    solo.start()
    block = solo.block("v")
    solo.vote([0], PREVOTE, 0, NIL_BLOCK_ID)
    solo.vote([0], PREVOTE, 0, sha256(b"random"))
    assert solo.vote([0], PREVOTE, 0, block.block_id()) == []
    assert solo.machine.dropped[DropReason.IGNORED_CONFLICT] == 1  # v is not proposed yet
    solo.propose(0, block)
    solo.validate(block)
    solo.vote([0], PREVOTE, 0, block.block_id())  # relayed again: now it counts
    solo.vote([1], PREVOTE, 0, block.block_id())
    assert solo.machine.state.valid_block_id == block.block_id()  # the polka {0, 1, me}


def test_each_validator_gets_a_budget_of_future_rounds() -> None:
    solo = Solo()
    solo.start()
    solo.vote([0], PREVOTE, 5, NIL_BLOCK_ID)
    solo.vote([0], PREVOTE, 6, NIL_BLOCK_ID)
    solo.vote([0], PRECOMMIT, 6, NIL_BLOCK_ID)  # a round it already occupies
    vote = VoteReceived(sign_vote(solo.keys[0], PREVOTE, 1, 7, b"").encode())
    assert_dropped(solo, vote, DropReason.FUTURE_ROUND_BUDGET)
    assert solo.machine.round == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_arbitrary_bytes_never_raise_or_change_state(data: bytes, as_vote: bool) -> None:
    solo = Solo()
    solo.start()
    solo.timeout(TimeoutKind.PROPOSE, 0)
    before = solo.machine.state
    event = VoteReceived(data) if as_vote else ProposalReceived(data)
    assert solo.machine.on_event(event) == []
    assert solo.machine.state == before
