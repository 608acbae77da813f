"""Issues the simulator found outside its own code, each kept as the smallest story showing it.

A fixed issue's story stays as a regression test; one still open is pinned with a strict
expected failure, so that fixing it turns the marker into a failure to remove.
"""

from __future__ import annotations

from seoulchain.consensus.events import (
    BroadcastVote,
    ProposalReceived,
    RequestValidation,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    ValidationResult,
    VoteReceived,
)
from seoulchain.consensus.machine import ConsensusConfig, ConsensusMachine
from seoulchain.consensus.messages import NIL_BLOCK_ID
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.consensus.safety import InMemorySigningStateStore, SafetyRules
from seoulchain.crypto import SigningKey, sha256
from seoulchain.ledger.types import Block, BlockHeader, Validator, ValidatorSet, VoteType
from seoulchain.sim.byzantine import sign_raw_proposal, sign_raw_vote

CHAIN_ID = "seoul-known-issues"


def make_block(validator_set: ValidatorSet, proposer: bytes) -> Block:
    root = sha256(b"root")
    header = BlockHeader(CHAIN_ID, 1, 1000, b"", root, root, 0, root, root, root,
                         validator_set.hash(), validator_set.hash(), proposer, b"")
    return Block(header, (), None)


def test_sim_an_equivocators_polka_vote_that_arrives_second_still_counts() -> None:
    """known issue (n=4, f=1): B prevotes v to A and C but nil to D; A and C lock on v. D, who
    timed out and prevoted nil, later receives B's v prevote relayed. In round 1, v is
    re-proposed with pol_round 0: D must see the polka {A, C, B} and prevote v."""
    keys = sorted((SigningKey(sha256(f"issue/{index}".encode())) for index in range(4)),
                  key=lambda key: key.public_key)
    validator_set = ValidatorSet.of([Validator(key.public_key, 1) for key in keys])
    round_1_proposer = compute_proposer(validator_set, 1, 1).public_key
    proposers = {compute_proposer(validator_set, 1, 0).public_key, round_1_proposer}
    d_key = next(key for key in keys if key.public_key not in proposers)
    b_key, a_key, c_key = [key for key in keys if key != d_key]
    d = ConsensusMachine(ConsensusConfig(CHAIN_ID),
                         SafetyRules(d_key, CHAIN_ID, InMemorySigningStateStore()))

    def vote(key: SigningKey, vote_type: int, round_: int, block_id: bytes) -> VoteReceived:
        return VoteReceived(sign_raw_vote(key, CHAIN_ID, vote_type, 1, round_, block_id).encode())

    d.on_event(StartHeight(1, validator_set, None))
    d.on_event(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))  # D prevotes nil
    round_0_key = compute_proposer(validator_set, 1, 0).public_key
    round_0_proposer = next(key for key in keys if key.public_key == round_0_key)
    v = make_block(validator_set, round_0_proposer.public_key)
    proposal = sign_raw_proposal(round_0_proposer, CHAIN_ID, 1, 0, -1, v)
    for action in d.on_event(ProposalReceived(proposal.encode())):
        assert isinstance(action, RequestValidation)
        d.on_event(ValidationResult(1, v.block_id(), True))
    d.on_event(vote(b_key, VoteType.PREVOTE, 0, NIL_BLOCK_ID))  # B's nil reaches D first
    d.on_event(vote(a_key, VoteType.PREVOTE, 0, v.block_id()))
    d.on_event(vote(c_key, VoteType.PREVOTE, 0, v.block_id()))
    d.on_event(TimeoutFired(TimeoutKind.PREVOTE, 1, 0))  # D precommits nil
    d.on_event(vote(b_key, VoteType.PREVOTE, 0, v.block_id()))  # relayed by A: B's v prevote
    d.on_event(vote(a_key, VoteType.PRECOMMIT, 0, v.block_id()))
    d.on_event(vote(c_key, VoteType.PRECOMMIT, 0, v.block_id()))
    d.on_event(TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    assert d.round == 1
    proposer_key = next(key for key in keys if key.public_key == round_1_proposer)
    reproposal = sign_raw_proposal(proposer_key, CHAIN_ID, 1, 1, 0, v)
    actions = d.on_event(ProposalReceived(reproposal.encode()))
    prevotes = [action.vote for action in actions if isinstance(action, BroadcastVote)]
    assert [(vote.round, vote.block_id) for vote in prevotes] == [(1, v.block_id())]
