"""The canary (lock ignored) forks under one Byzantine validator; the honest machine does not.

Scenario (n=4, f=1; validator 1 is Byzantine, played by the test; proposer of round r is
validator r): in round 0 everyone locks on v and validator 0 decides v, the Byzantine
validator having sent its precommit for v to 0 only and nil to 2 and 3, who move to round
1. There the Byzantine proposer proposes w without a proof of lock. Locked validators must
prevote nil (line 22); canaries prevote w, form a polka with the Byzantine prevote, and
decide w — a fork the simulator's checkers must catch.
"""

from __future__ import annotations

from consensus_harness import (
    CHAIN_ID,
    make_block,
    make_keys,
    make_validator_set,
    proposer_index,
    sign_proposal,
    sign_vote,
)

from seoulchain.consensus.events import (
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    Event,
    ProposalReceived,
    ProposalValueReady,
    RequestBlock,
    RequestValidation,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    ValidationResult,
    VoteReceived,
)
from seoulchain.consensus.machine import ConsensusConfig, ConsensusMachine
from seoulchain.consensus.safety import InMemorySigningStateStore, SafetyRules
from seoulchain.ledger.types import VoteType

PROPOSAL, PREVOTE, PRECOMMIT = 0, VoteType.PREVOTE, VoteType.PRECOMMIT
BYZANTINE = 1
HONEST = (0, 2, 3)


class Scene:
    """Three real machines and a scripted Byzantine validator, with hand-routed messages."""

    def __init__(self, canary: bool) -> None:
        self.keys = make_keys(4)
        self.validator_set = make_validator_set(self.keys)
        assert [proposer_index(self.validator_set, self.keys, 1, r) for r in (0, 1)] == [0, 1]
        config = ConsensusConfig(CHAIN_ID, canary_ignore_lock=canary)
        self.machines = {index: ConsensusMachine(config, SafetyRules(
            self.keys[index], CHAIN_ID, InMemorySigningStateStore())) for index in HONEST}
        self.sent: dict[int, list[tuple[int, Event]]] = {index: [] for index in HONEST}
        self.decisions: dict[int, bytes] = {}

    def feed(self, index: int, event: Event) -> None:
        for action in self.machines[index].on_event(event):
            match action:
                case BroadcastProposal(proposal):
                    self.sent[index].append((PROPOSAL, ProposalReceived(proposal.encode())))
                case BroadcastVote(vote):
                    self.sent[index].append((vote.vote_type, VoteReceived(vote.encode())))
                case RequestBlock(height, round_, _):
                    block = make_block(height, self.validator_set, self.keys[index].public_key,
                                       tag=b"v")
                    self.feed(index, ProposalValueReady(height, round_, block))
                case RequestValidation(height, block):
                    self.feed(index, ValidationResult(height, block.block_id(), True))
                case CommitBlock(block, _):
                    self.decisions[index] = block.block_id()

    def relay(self, sender: int, kind: int, receivers: tuple[int, ...]) -> None:
        """Deliver the messages of `kind` that `sender` sent so far to `receivers`."""
        events = [event for sent_kind, event in self.sent[sender] if sent_kind == kind]
        self.sent[sender] = [item for item in self.sent[sender] if item[0] != kind]
        for receiver in receivers:
            for event in events:
                self.feed(receiver, event)

    def byzantine_vote(self, receivers: tuple[int, ...], vote_type: int, round_: int,
                       block_id: bytes) -> None:
        vote = sign_vote(self.keys[BYZANTINE], vote_type, 1, round_, block_id)
        for receiver in receivers:
            self.feed(receiver, VoteReceived(vote.encode()))


def run_scene(canary: bool) -> dict[int, bytes]:
    scene = Scene(canary)
    for index in HONEST:
        scene.feed(index, StartHeight(1, scene.validator_set, None))
    # Round 0: validator 0 proposes v; all prevote v and lock on it.
    scene.relay(0, PROPOSAL, (2, 3))
    for sender in HONEST:
        scene.relay(sender, PREVOTE, tuple(other for other in HONEST if other != sender))
    v = make_block(1, scene.validator_set, scene.keys[0].public_key, tag=b"v").block_id()
    assert all(machine.state.locked_block_id == v for machine in scene.machines.values())
    # Precommits: 0 sees 2's and the Byzantine v; 2 and 3 see each other and a Byzantine nil.
    scene.relay(2, PRECOMMIT, (0, 3))
    scene.relay(3, PRECOMMIT, (2,))
    assert scene.decisions == {}
    scene.byzantine_vote((0,), PRECOMMIT, 0, v)
    scene.byzantine_vote((2, 3), PRECOMMIT, 0, b"")
    assert scene.decisions == {0: v}
    for index in (2, 3):
        scene.feed(index, TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
        assert scene.machines[index].round == 1
    # Round 1: the Byzantine proposer proposes w with no proof of lock, and votes for it.
    w_block = make_block(1, scene.validator_set, scene.keys[BYZANTINE].public_key, tag=b"w")
    proposal = sign_proposal(scene.keys[BYZANTINE], 1, 1, w_block)
    for index in (2, 3):
        scene.feed(index, ProposalReceived(proposal.encode()))
    scene.byzantine_vote((2, 3), PREVOTE, 1, w_block.block_id())
    scene.relay(2, PREVOTE, (3,))
    scene.relay(3, PREVOTE, (2,))
    scene.byzantine_vote((2, 3), PRECOMMIT, 1, w_block.block_id())
    scene.relay(2, PRECOMMIT, (3,))
    scene.relay(3, PRECOMMIT, (2,))
    return scene.decisions


def test_honest_machines_keep_agreement_against_an_unlocked_proposal() -> None:
    """canary off (n=4, f=1): locked validators prevote nil in round 1; no fork."""
    decisions = run_scene(canary=False)
    assert len(set(decisions.values())) == 1


def test_canary_machines_fork_against_an_unlocked_proposal() -> None:
    """canary on (n=4, f=1): lock ignored, round 1 decides w after 0 decided v: a fork."""
    decisions = run_scene(canary=True)
    assert len(set(decisions.values())) == 2
