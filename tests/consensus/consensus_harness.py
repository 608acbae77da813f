"""Test helpers: deterministic keys, blocks, signed messages, and a small in-test cluster.

The cluster wires n consensus machines through an honest, in-order virtual network with a
fixed delay and a virtual clock; the application builds trivial blocks and accepts every
block unless told otherwise. Nothing here is random: the same run gives the same trace.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from seoulchain.consensus.events import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    CommitBlock,
    Event,
    ProposalReceived,
    ProposalValueReady,
    ReportEvidence,
    RequestBlock,
    RequestValidation,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    ValidationResult,
    VoteReceived,
)
from seoulchain.consensus.machine import ConsensusConfig, ConsensusMachine
from seoulchain.consensus.messages import NO_ROUND, Proposal, Vote, verify_commit
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.consensus.safety import InMemorySigningStateStore, SafetyRules
from seoulchain.crypto import SigningKey, sha256
from seoulchain.ledger.types import (
    Block,
    BlockHeader,
    Commit,
    Validator,
    ValidatorSet,
    compute_vote_sign_bytes,
)

CHAIN_ID = "seoul-test"
NETWORK_DELAY_MS = 10
COMMIT_DELAY_MS = 100
CLUSTER_EVENTS_MAX = 200_000


def make_keys(count: int) -> list[SigningKey]:
    """Return `count` deterministic keys, sorted by public key (the validator set order)."""
    keys = [SigningKey(sha256(f"validator-{index}".encode())) for index in range(count)]
    return sorted(keys, key=lambda key: key.public_key)


def make_validator_set(keys: list[SigningKey], powers: list[int] | None = None) -> ValidatorSet:
    powers = powers or [1] * len(keys)
    return ValidatorSet.of([Validator(key.public_key, power, f"v{index}")
                            for index, (key, power) in enumerate(zip(keys, powers, strict=True))])


def make_block(height: int, validator_set: ValidatorSet, proposer: bytes, *, tag: bytes = b"",
               last_commit: Commit | None = None, prev_block_id: bytes = b"",
               chain_id: str = CHAIN_ID) -> Block:
    """Return a well-formed block; `tag` varies its content (and so its id)."""
    if height > 1 and last_commit is None:
        last_commit = Commit(height - 1, 0, sha256(b"previous"),
                             ())  # structurally fine placeholder for unit tests
    if height > 1 and not prev_block_id:
        prev_block_id = last_commit.block_id  # type: ignore[union-attr]
    root = sha256(b"root", tag)
    header = BlockHeader(
        chain_id=chain_id, height=height, time_ms=height * 1000, prev_block_id=prev_block_id,
        tx_root=root, log_root=root, log_size=0, state_root=root, results_root=root,
        evidence_root=root, validators_hash=validator_set.hash(),
        next_validators_hash=validator_set.hash(), proposer=proposer,
        last_commit_hash=b"" if last_commit is None else last_commit.hash())
    return Block(header, (tag,) if tag else (), last_commit)


def sign_vote(key: SigningKey, vote_type: int, height: int, round_: int, block_id: bytes,
              chain_id: str = CHAIN_ID) -> Vote:
    signature = key.sign(compute_vote_sign_bytes(chain_id, vote_type, height, round_, block_id))
    return Vote(vote_type, height, round_, block_id, key.public_key, signature)


def sign_proposal(key: SigningKey, height: int, round_: int, block: Block,
                  pol_round: int = NO_ROUND, chain_id: str = CHAIN_ID) -> Proposal:
    unsigned = Proposal(height, round_, pol_round, block, b"")
    return Proposal(height, round_, pol_round, block, key.sign(unsigned.sign_bytes(chain_id)))


@dataclass
class Node:
    """One validator of the cluster: its machine and what its application saw."""

    machine: ConsensusMachine
    store: InMemorySigningStateStore
    decisions: dict[int, bytes] = field(default_factory=dict)
    commits: dict[int, Commit] = field(default_factory=dict)
    blocks: dict[int, Block] = field(default_factory=dict)
    evidence: list[object] = field(default_factory=list)
    crashed: bool = False


class Cluster:
    """n machines on a virtual network with a virtual clock, run deterministically."""

    def __init__(self, count: int, powers: list[int] | None = None, *,
                 config: ConsensusConfig | None = None) -> None:
        self.keys = make_keys(count)
        self.validator_set = make_validator_set(self.keys, powers)
        self.config = config or ConsensusConfig(CHAIN_ID)
        self.nodes = []
        for key in self.keys:
            store = InMemorySigningStateStore()
            machine = ConsensusMachine(self.config, SafetyRules(key, CHAIN_ID, store))
            self.nodes.append(Node(machine, store))
        self.now_ms = 0
        self._queue: list[tuple[int, int, int, Event]] = []
        self._sequence = 0
        self.invalid_block_ids: set[bytes] = set()

    def node(self, index: int) -> Node:
        return self.nodes[index]

    def start(self) -> Cluster:
        for index in range(len(self.nodes)):
            self._push(0, index, StartHeight(1, self.validator_set, None))
        return self

    def run_until(self, height: int) -> Cluster:
        """Run until every live node has decided `height`."""
        for _ in range(CLUSTER_EVENTS_MAX):
            live = [node for node in self.nodes if not node.crashed]
            if all(height in node.decisions for node in live):
                return self
            if not self._queue:
                raise AssertionError("cluster stalled")
            self.now_ms, _, index, event = heapq.heappop(self._queue)
            if self.nodes[index].crashed:
                continue
            self._carry_out(index, self.nodes[index].machine.on_event(event))
        raise AssertionError("cluster did not reach the height")

    def _push(self, delay_ms: int, index: int, event: Event) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (self.now_ms + delay_ms, self._sequence, index, event))

    def _broadcast(self, sender: int, event: Event) -> None:
        for index in range(len(self.nodes)):
            if index != sender:
                self._push(NETWORK_DELAY_MS, index, event)

    def _carry_out(self, index: int, actions: list[Action]) -> None:
        node = self.nodes[index]
        for action in actions:
            match action:
                case BroadcastProposal(proposal):
                    self._broadcast(index, ProposalReceived(proposal.encode()))
                case BroadcastVote(vote):
                    self._broadcast(index, VoteReceived(vote.encode()))
                case ScheduleTimeout(kind, height, round_, duration_ms):
                    self._push(duration_ms, index, TimeoutFired(kind, height, round_))
                case RequestBlock(height, round_, last_commit):
                    block = make_block(height, self.validator_set, node.machine.public_key,
                                       tag=f"h{height}r{round_}n{index}".encode(),
                                       last_commit=last_commit,
                                       prev_block_id=node.decisions.get(height - 1, b""))
                    self._push(0, index, ProposalValueReady(height, round_, block))
                case RequestValidation(height, block):
                    is_valid = block.block_id() not in self.invalid_block_ids
                    self._push(0, index, ValidationResult(height, block.block_id(), is_valid))
                case CommitBlock(block, commit):
                    verify_commit(CHAIN_ID, self.validator_set, commit, block.block_id(),
                                  block.height)
                    node.decisions[block.height] = block.block_id()
                    node.commits[block.height] = commit
                    node.blocks[block.height] = block
                    self._push(COMMIT_DELAY_MS, index,
                               StartHeight(block.height + 1, self.validator_set, commit))
                case ReportEvidence(evidence):
                    node.evidence.append(evidence)

    def assert_agreement(self) -> None:
        """Assert that no two nodes decided different blocks at any height."""
        decided: dict[int, bytes] = {}
        for node in self.nodes:
            for height, block_id in node.decisions.items():
                assert decided.setdefault(height, block_id) == block_id, f"fork at {height}"


def proposer_index(validator_set: ValidatorSet, keys: list[SigningKey], height: int,
                   round_: int) -> int:
    proposer = compute_proposer(validator_set, height, round_).public_key
    return [key.public_key for key in keys].index(proposer)
