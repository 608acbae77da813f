"""Twins: a second process holding our key runs the same honest code (n=4, f=1, me=twin).

As the paper would have it with the honest code run twice, each twin proposes and votes on
its own; to each, the other's different proposal or vote is a conflicting message from our
key (evidence, for a vote), never a broken invariant.
"""

from __future__ import annotations

from consensus_solo import PREVOTE, Solo, only, votes_of

from seoulchain.consensus.events import (
    BroadcastProposal,
    ProposalValueReady,
    ReportEvidence,
    RequestBlock,
    TimeoutKind,
)
from seoulchain.consensus.machine import DropReason
from seoulchain.consensus.messages import NIL_BLOCK_ID


def test_twins_proposal_arriving_while_our_block_is_built_is_kept_and_ours_still_goes_out() -> None:
    """twins: we propose round 0; our twin's block arrives before ours is built."""
    solo = Solo(me=0)
    assert solo.start() == [RequestBlock(1, 0, None)]
    theirs, ours = solo.block("twin"), solo.block("ours")
    solo.propose(0, theirs)  # signed with our key, by our twin
    actions = solo.feed(ProposalValueReady(1, 0, ours))
    assert [action.proposal.block_id for action in only(actions, BroadcastProposal)] == [
        ours.block_id()]
    assert solo.machine.dropped[DropReason.CONFLICTING_PROPOSAL] == 1
    # The round's proposal is the one received first: ours is only the conflicting one.
    assert votes_of(solo.validate(theirs)) == [(PREVOTE, 0, theirs.block_id())]


def test_twins_proposal_validated_before_our_block_is_built_gets_our_prevote_first() -> None:
    """twins: having prevoted our twin's block, we may no longer sign a proposal (refused)."""
    solo = Solo(me=0)
    solo.start()
    theirs, ours = solo.block("twin"), solo.block("ours")
    solo.propose(0, theirs)
    assert votes_of(solo.validate(theirs)) == [(PREVOTE, 0, theirs.block_id())]
    assert solo.feed(ProposalValueReady(1, 0, ours)) == []
    assert solo.machine.refused_signatures == 1


def test_twins_vote_arriving_before_ours_makes_ours_a_conflicting_vote_with_evidence() -> None:
    """twins: our twin prevoted v; we time out and prevote nil, which is broadcast anyway."""
    solo = Solo(me=3)
    solo.start()
    block = solo.block("v")
    solo.vote([3], PREVOTE, 0, block.block_id())  # our key's vote, signed by our twin
    actions = solo.timeout(TimeoutKind.PROPOSE, 0)
    assert votes_of(actions) == [(PREVOTE, 0, NIL_BLOCK_ID)]
    evidence = [action.evidence for action in only(actions, ReportEvidence)]
    assert len(evidence) == 1 and evidence[0].validator == solo.keys[3].public_key
    assert solo.machine.dropped[DropReason.CONFLICTING_VOTE] == 1
