"""Issues the simulator found outside its own code, each kept as the smallest story showing it.

A fixed issue's story stays as a regression test; one still open is pinned with a strict
expected failure, so that fixing it turns the marker into a failure to remove. The seeds that
found an issue are run too, though a fix changes their runs: they replay another scenario.
"""

from __future__ import annotations

import pytest

from seoulchain.consensus.events import (
    BroadcastVote,
    ProposalReceived,
    RequestValidation,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    ValidationResult,
    VoteReceived,
    encode_event,
)
from seoulchain.consensus.machine import ConsensusConfig, ConsensusMachine, DropReason
from seoulchain.consensus.messages import NIL_BLOCK_ID, Step, Vote
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.consensus.safety import InMemorySigningStateStore, SafetyRules
from seoulchain.crypto import SigningKey, sha256
from seoulchain.ledger.types import (
    Block,
    BlockHeader,
    Commit,
    Validator,
    ValidatorSet,
    VoteType,
)
from seoulchain.node.validator import GossipDue, MessageArrived, MessageKind, Send, SetTimer
from seoulchain.sim.byzantine import sign_raw_proposal, sign_raw_vote
from seoulchain.sim.campaign import run_seed
from seoulchain.sim.cluster import CHAIN_ID as SIM_CHAIN_ID
from seoulchain.sim.cluster import Cluster, SimNode

CHAIN_ID = "seoul-known-issues"


def make_block(validator_set: ValidatorSet, proposer: bytes, height: int = 1) -> Block:
    root = sha256(b"root")
    last_commit = None if height == 1 else Commit(height - 1, 0, sha256(b"previous"), ())
    prev_block_id = b"" if last_commit is None else last_commit.block_id
    header = BlockHeader(CHAIN_ID, height, 1000 * height, prev_block_id, root, root, 0, root,
                         root, root, validator_set.hash(), validator_set.hash(), proposer,
                         b"" if last_commit is None else last_commit.hash())
    return Block(header, (), last_commit)


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


def test_sim_an_equivocators_conflicting_prevote_kept_for_the_next_height_still_counts() -> None:
    """found by seed 104768 (n=4, f=1, double_vote): while A and D still worked on height 1,
    the equivocator B's height-2 prevotes arrived, nil first, then v. The next-height buffer
    kept one vote per validator and round and dropped v as a duplicate, and the driver, having
    seen those bytes, dropped every later copy as a repeat. C locked on v at round 0 with
    {B, C, E}; A and D never saw that polka, so C's re-proposals of v (pol_round 0) got their
    nil prevotes and every other round C's: 120 s of rounds, no block. The buffer now keeps
    an equivocator's first conflicting vote, which the vote set counts."""
    keys = sorted((SigningKey(sha256(f"issue/{index}".encode())) for index in range(4)),
                  key=lambda key: key.public_key)
    validator_set = ValidatorSet.of([Validator(key.public_key, 1) for key in keys])
    proposer_key = compute_proposer(validator_set, 2, 0).public_key
    proposer = next(key for key in keys if key.public_key == proposer_key)
    d_key, b_key, c_key = [key for key in keys if key != proposer][:3]
    d = ConsensusMachine(ConsensusConfig(CHAIN_ID),
                         SafetyRules(d_key, CHAIN_ID, InMemorySigningStateStore()))

    def prevote(key: SigningKey, block_id: bytes) -> VoteReceived:
        return VoteReceived(sign_raw_vote(key, CHAIN_ID, VoteType.PREVOTE, 2, 0, block_id).encode())

    v = make_block(validator_set, proposer.public_key, height=2)
    d.on_event(StartHeight(1, validator_set, None))
    d.on_event(prevote(b_key, NIL_BLOCK_ID))  # height 2, kept for later
    d.on_event(prevote(b_key, v.block_id()))  # B's conflicting prevote: kept too
    assert d.dropped[DropReason.DUPLICATE] == 0
    d.on_event(StartHeight(2, validator_set, None))
    d.on_event(TimeoutFired(TimeoutKind.PROPOSE, 2, 0))  # D prevotes nil
    proposal = sign_raw_proposal(proposer, CHAIN_ID, 2, 0, -1, v)
    for action in d.on_event(ProposalReceived(proposal.encode())):
        assert isinstance(action, RequestValidation)
        d.on_event(ValidationResult(2, v.block_id(), True))
    d.on_event(prevote(proposer, v.block_id()))
    d.on_event(prevote(c_key, v.block_id()))  # the polka {proposer, C, B}: D locks (line 36)
    assert d.state.locked_block_id == v.block_id() and d.state.locked_round == 0


def find_keyed(cluster: Cluster, public_key: bytes) -> SimNode:
    return next(node for node in cluster.nodes if node.key.public_key == public_key)


def get_roles(cluster: Cluster, count: int) -> list[SimNode]:
    """Return `count` honest validators that propose neither round 0 nor round 1 of height 1."""
    proposers = {compute_proposer(cluster.genesis.validators, 1, round_).public_key
                 for round_ in (0, 1)}
    return [node for node in cluster.honest_validators
            if node.key.public_key not in proposers][:count]


def sign_sim_vote(node: SimNode, vote_type: int, round_: int, block_id: bytes = NIL_BLOCK_ID,
                  height: int = 1) -> bytes:
    return sign_raw_vote(node.key, SIM_CHAIN_ID, vote_type, height, round_, block_id).encode()


def deliver(cluster: Cluster, sender: SimNode, target: SimNode, data: bytes) -> list[object]:
    assert target.core is not None
    return list(target.core.handle(MessageArrived(sender.key.public_key, MessageKind.VOTE, data)))


def get_stuck_resends(node: SimNode) -> list[Send]:
    """Return what `node` sends at a gossip tick that finds it where the previous one did."""
    assert node.core is not None
    node.core.handle(GossipDue())
    return [effect for effect in node.core.handle(GossipDue()) if isinstance(effect, Send)]


def test_sim_a_stuck_validator_relays_a_withholders_vote_its_peers_lack() -> None:
    """found by seeds 108272 and 108834 (n=5, f=1, partial): A moved to round 1 on four
    round-0 precommits, one from the withholder W, which sent it to A only, so A never
    precommitted; B, C and D held three precommits and waited in round 0 for a fourth only A
    could give them, while A waited in round 1 for prevotes: 120 s, no block. Only own
    messages were re-sent; a stuck validator now also relays the votes of its last two
    rounds, as the paper's gossip would."""
    cluster = Cluster(n=5, seed=108272)
    a, b = get_roles(cluster, 2)
    w = find_keyed(cluster, compute_proposer(cluster.genesis.validators, 1, 0).public_key)
    c, d = [node for node in cluster.honest_validators if node not in (a, b, w)]
    for sender in (b, c, d, w):
        deliver(cluster, sender, a, sign_sim_vote(sender, VoteType.PRECOMMIT, 0))
    assert a.core is not None
    a.core.handle(TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    assert a.core.machine.round == 1
    relayed = {send.data for send in get_stuck_resends(a) if send.kind == MessageKind.VOTE}
    withheld = sign_sim_vote(w, VoteType.PRECOMMIT, 0)
    assert withheld in relayed

    assert b.core is not None
    b.core.handle(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))  # B prevotes nil
    for sender in (a, c, d):
        deliver(cluster, sender, b, sign_sim_vote(sender, VoteType.PREVOTE, 0))
    assert b.core.machine.step == Step.PRECOMMIT  # B precommitted nil (line 44)
    for sender in (c, d):
        deliver(cluster, sender, b, sign_sim_vote(sender, VoteType.PRECOMMIT, 0))
    precommit_timeout = TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0)
    effects = deliver(cluster, a, b, withheld)
    assert any(isinstance(effect, SetTimer) and effect.event == precommit_timeout
               for effect in effects)  # B can leave round 0 now (line 47)


def test_sim_a_restarted_validator_resends_its_vote_not_a_late_one_of_the_last_height() -> None:
    """found by seed 109697 (n=5, f=1, silent): A's own prevote of height 1 arrived late,
    during height 2, and went into that height's WAL. After a crash, the replay took it for
    A's round-0 prevote to re-send, in place of A's height-2 prevote; B never received the
    latter, waited in its prevote step for a fourth prevote, and the others for its
    precommit: 120 s, no block. Only own votes of the WAL's height are re-sent now."""
    cluster = Cluster(n=4, seed=109697)
    cluster.run_until(height=1, timeout_ms=60_000)
    a = get_roles(cluster, 1)[0]

    def has_prevoted() -> bool:
        machine = a.core.machine if a.core is not None else None
        return machine is not None and machine.height == 2 and machine.step >= Step.PREVOTE

    assert cluster.run_while(lambda: not has_prevoted(), cluster.now_ms + 30_000)
    commit = a.store.get_commit(1)
    assert commit is not None
    late = sign_sim_vote(a, VoteType.PREVOTE, commit.round, commit.block_id, height=1)
    cluster.node(a.index).crash()
    a.wal.append(encode_event(VoteReceived(late)))  # the late vote, logged at height 2
    cluster.node(a.index).restart()
    own_votes = [Vote.decode(send.data) for send in get_stuck_resends(a)
                 if send.kind == MessageKind.VOTE]
    own_votes = [vote for vote in own_votes if vote.validator == a.key.public_key]
    assert own_votes and {vote.height for vote in own_votes} == {2}


def test_sim_a_vote_dropped_for_the_round_budget_is_taken_when_sent_again() -> None:
    """The same pattern as seed 104768 within a height: the machine drops a vote from a
    validator already occupying two rounds above ours (the round budget), the driver had
    remembered its bytes and dropped every later copy as a repeat, so the vote was lost for
    good. A vote dropped for a reason that may pass is now let in again."""
    cluster = Cluster(n=4, seed=104768)
    a = get_roles(cluster, 1)[0]
    x, y, z = [node for node in cluster.honest_validators if node is not a]
    for round_ in (1, 2, 3):
        deliver(cluster, x, a, sign_sim_vote(x, VoteType.PREVOTE, round_))
    assert a.core is not None and a.core.machine.dropped[DropReason.FUTURE_ROUND_BUDGET] == 1
    for sender in (y, z):  # f + 1 in round 3: A skips to it (line 55)
        deliver(cluster, sender, a, sign_sim_vote(sender, VoteType.PREVOTE, 3))
    assert a.core.machine.round == 3
    deliver(cluster, x, a, sign_sim_vote(x, VoteType.PREVOTE, 3))  # x re-sends it
    assert x.key.public_key in {vote.validator for vote in a.core.machine.get_round_votes(3)}


@pytest.mark.parametrize("seed", [104768, 108272, 108834, 109697])
def test_sim_the_seeds_that_stalled_in_the_10000_seed_campaign_now_pass(seed: int) -> None:
    """sim: the four liveness failures of seeds 100000-109999 (n=5; double_vote, partial
    twice, silent) no longer fail (their runs differ now: they check other scenarios)."""
    result = run_seed(seed)
    assert not result.failed, (result.violations, result.liveness_failure)


def test_sim_seed_100074_a_kept_synced_block_is_taken_once_consensus_reaches_its_height() -> None:
    """found by seed 100074 (n=7): a validator kept block 8 from block sync while it still
    worked on height 7; it decided 7 by consensus, and every later copy of block 8 was
    dropped as already kept — it never took the kept one. Now a kept block for the next
    height is taken at the next copy or gossip tick."""
    result = run_seed(100074)
    assert not result.failed, (result.violations, result.liveness_failure)
