"""A single machine under test, fed hand-made signed messages from the other validators."""

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
    Action,
    BroadcastProposal,
    BroadcastVote,
    Event,
    ProposalReceived,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    ValidationResult,
    VoteReceived,
)
from seoulchain.consensus.machine import ConsensusConfig, ConsensusMachine
from seoulchain.consensus.messages import NO_ROUND, Proposal
from seoulchain.consensus.safety import InMemorySigningStateStore, SafetyRules
from seoulchain.ledger.types import Block, Commit, VoteType

PREVOTE = VoteType.PREVOTE
PRECOMMIT = VoteType.PRECOMMIT


class Solo:
    """Validator `me` of `count` equal-power validators; the test plays everyone else.

    With equal powers the proposer of (1, r) is validator r mod count (in key order), so
    with the default me = 3 of 4, rounds 0, 1 and 2 are proposed by others.
    """

    def __init__(self, count: int = 4, me: int = 3, *, canary: bool = False,
                 store: InMemorySigningStateStore | None = None,
                 config: ConsensusConfig | None = None) -> None:
        self.keys = make_keys(count)
        self.validator_set = make_validator_set(self.keys)
        self.me = me
        self.store = store or InMemorySigningStateStore()
        self.config = config or ConsensusConfig(CHAIN_ID, canary_ignore_lock=canary)
        self.machine = ConsensusMachine(
            self.config, SafetyRules(self.keys[me], CHAIN_ID, self.store))
        self.log: list[Event] = []

    def feed(self, event: Event) -> list[Action]:
        """Hand `event` to the machine, logging it and our own messages as a node's WAL would."""
        self.log.append(event)
        actions = self.machine.on_event(event)
        for action in actions:
            if isinstance(action, BroadcastVote):
                self.log.append(VoteReceived(action.vote.encode()))
            elif isinstance(action, BroadcastProposal):
                self.log.append(ProposalReceived(action.proposal.encode()))
        return actions

    def start(self, height: int = 1, last_commit: Commit | None = None) -> list[Action]:
        return self.feed(StartHeight(height, self.validator_set, last_commit))

    def block(self, tag: str, height: int = 1) -> Block:
        return make_block(height, self.validator_set, self.keys[0].public_key, tag=tag.encode())

    def signed_proposal(self, round_: int, block: Block, pol_round: int = NO_ROUND) -> Proposal:
        signer = self.keys[proposer_index(self.validator_set, self.keys, block.height, round_)]
        return sign_proposal(signer, block.height, round_, block, pol_round)

    def propose(self, round_: int, block: Block, pol_round: int = NO_ROUND) -> list[Action]:
        return self.feed(ProposalReceived(self.signed_proposal(round_, block, pol_round).encode()))

    def vote(self, voters: list[int], vote_type: int, round_: int, block_id: bytes,
             height: int = 1) -> list[Action]:
        actions: list[Action] = []
        for voter in voters:
            vote = sign_vote(self.keys[voter], vote_type, height, round_, block_id)
            actions.extend(self.feed(VoteReceived(vote.encode())))
        return actions

    def validate(self, block: Block, is_valid: bool = True) -> list[Action]:
        return self.feed(ValidationResult(block.height, block.block_id(), is_valid))

    def timeout(self, kind: TimeoutKind, round_: int, height: int = 1) -> list[Action]:
        return self.feed(TimeoutFired(kind, height, round_))

    def others(self) -> list[int]:
        return [index for index in range(len(self.keys)) if index != self.me]


def votes_of(actions: list[Action]) -> list[tuple[int, int, bytes]]:
    """Return our broadcast votes as (type, round, block id)."""
    return [(action.vote.vote_type, action.vote.round, action.vote.block_id)
            for action in actions if isinstance(action, BroadcastVote)]


def only(actions: list[Action], kind: type) -> list:
    return [action for action in actions if isinstance(action, kind)]
