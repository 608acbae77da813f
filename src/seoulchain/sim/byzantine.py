"""Byzantine validators: raw signing keys, message tampering, and the lock-split adversary.

Theory of operation: a Byzantine node runs the honest `ValidatorCore` with its safety rules
replaced by `RawSigner` (signs anything, remembers nothing), and a `Behaviour` that sees
every message it receives (`on_receive`) and rewrites every message it sends (`on_send`).
Each behaviour is one fault class:

- `silent` — withholds everything; `partial` — sends only to a fixed subset of its peers;
- `equivocate` — as proposer, signs a second block for the same height and round and sends
  each peer one of the two;
- `double_vote` — signs a conflicting vote beside each vote and sends peers one, the other,
  or both;
- `invalid_proposal` — as proposer, sends a block that fails `process_proposal` (a forged
  state root, a transaction with a broken signature, or a time that does not increase),
  or its real header with another body (the same block id: only the body check catches it);
- `twins` — two nodes with one key, both running honest code with separate signing stores;
- `lock_split` — the attack that forks a validator ignoring its lock (the canary), run by
  the `Adversary`, which also controls the network, with global knowledge of every node.

The lock-split attack, at a height h whose round-1 proposer is an attacker: the honest
validators are split into X and Y, with |Y| + attackers = a quorum. Everyone locks on the
round-0 block v; X receives every precommit and decides v; Y never receives X's precommits
(the network drops them), and the attackers precommit v to X but nil to Y, so Y moves to
round 1. There the attacker proposes another block w, prevotes and precommits it. An honest
Y, locked on v, prevotes nil: no fork. A canary Y prevotes w and decides it: a fork that the
agreement checker must report. Catch-up (block sync) to Y is blocked while the attack lasts.
In half of the attempts the adversary also crashes a Y node right after it locks and
restarts it from its WAL (amnesia): a lock lost in recovery is a fork.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

from seoulchain.consensus.messages import (
    NIL_BLOCK_ID,
    NO_ROUND,
    Proposal,
    Step,
    Vote,
    compute_proposal_sign_bytes,
)
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.consensus.safety import SafetyRules, SigningStateStore
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, LocalError
from seoulchain.ledger.types import (
    Block,
    Height,
    Round,
    Transaction,
    VoteType,
    compute_vote_sign_bytes,
)
from seoulchain.node.validator import MessageArrived, MessageKind, Send
from seoulchain.proofs.logtree import compute_leaf_hash, compute_root

if TYPE_CHECKING:
    from seoulchain.sim.cluster import Cluster, SimNode

# How long the adversary holds the network split for one lock-split attempt (virtual ms):
# several rounds' worth of timeouts, after which it lets block sync heal the split.
ATTACK_WINDOW_MS = 15_000
# Half of the attempts on honest validators also crash a Y node right after it locks (an
# amnesia attack) and restart it after a downtime shorter than round 1's propose timeout.
AMNESIA_PROBABILITY = 0.5
AMNESIA_DOWNTIME_MS = 1_500
BEHAVIOURS = ("honest", "silent", "partial", "equivocate", "double_vote", "invalid_proposal",
              "twins", "lock_split")
BYZANTINE_BEHAVIOURS = BEHAVIOURS[1:]

Outgoing = list[tuple[Send, bool]]


class RawSigner(SafetyRules):
    """A Byzantine validator's signer: signs whatever it is asked, with no record and no refusal."""

    def sign_vote(self, vote_type: int, height: Height, round_: Round, block_id: bytes) -> Vote:
        return sign_raw_vote(self._key, self.chain_id, vote_type, height, round_, block_id)

    def sign_proposal(self, height: Height, round_: Round, pol_round: Round,
                      block: Block) -> Proposal:
        return sign_raw_proposal(self._key, self.chain_id, height, round_, pol_round, block)


def sign_raw_vote(key: SigningKey, chain_id: str, vote_type: int, height: int, round_: int,
                  block_id: bytes) -> Vote:
    """Sign a vote with no safety rules."""
    signature = key.sign(compute_vote_sign_bytes(chain_id, vote_type, height, round_, block_id))
    return Vote(vote_type, Height(height), Round(round_), block_id, key.public_key, signature)


def sign_raw_proposal(key: SigningKey, chain_id: str, height: int, round_: int, pol_round: int,
                      block: Block) -> Proposal:
    """Sign a proposal with no safety rules."""
    signature = key.sign(compute_proposal_sign_bytes(chain_id, height, round_, pol_round,
                                                     block.block_id()))
    return Proposal(Height(height), Round(round_), Round(pol_round), block, signature)


def decode_or_none(kind: str, data: bytes) -> Proposal | Vote | None:
    """Decode a consensus message, or return None for anything else or anything malformed."""
    try:
        if kind == MessageKind.PROPOSAL:
            return Proposal.decode(data)
        if kind == MessageKind.VOTE:
            return Vote.decode(data)
    except DecodeError:
        return None
    return None


# ------------------------------------------------------------------------------ behaviours


class Behaviour:
    """Honest behaviour: messages pass unchanged, signing goes through the safety rules."""

    name = "honest"
    is_honest = True

    def __init__(self, cluster: Cluster, validator_index: int) -> None:
        self.cluster = cluster
        self.validator_index = validator_index

    def make_safety(self, key: SigningKey, chain_id: str,
                    store: SigningStateStore) -> SafetyRules | None:
        """Return the signer to use instead of the safety rules (None: the honest ones)."""
        return None

    def on_receive(self, node: SimNode, message: MessageArrived) -> None:
        """Observe a message before the node's core handles it."""

    def on_send(self, node: SimNode, send: Send) -> Outgoing:
        """Return what actually goes out for `send`, each with a reliability flag."""
        return [(send, False)]

    def get_peer_keys(self, node: SimNode) -> list[bytes]:
        """Return the other validators' and standbys' keys, in node order, once each."""
        keys: list[bytes] = []
        for other in self.cluster.nodes:
            key = other.key.public_key
            if key != node.key.public_key and key not in keys:
                keys.append(key)
        return keys

    def split(self, node: SimNode, first: Send, second: Send) -> Outgoing:
        """Send each peer `first`, `second`, or both in a random order."""
        outgoing: Outgoing = []
        for key in self.get_peer_keys(node):
            choice = self.cluster.rng.randrange(4)
            pair = [first, second] if choice < 2 else [second, first]
            for message in pair[:1] if choice in (0, 2) else pair:
                outgoing.append((dataclasses.replace(message, to=key), False))
        return outgoing


class ByzantineBehaviour(Behaviour):
    """Base of the Byzantine behaviours: signs with the raw key."""

    name = "byzantine"
    is_honest = False

    def make_safety(self, key: SigningKey, chain_id: str,
                    store: SigningStateStore) -> SafetyRules | None:
        return RawSigner(key, chain_id, store)


class Silent(ByzantineBehaviour):
    """Withholds every message it should send."""

    name = "silent"

    def on_send(self, node: SimNode, send: Send) -> Outgoing:
        return []


class Partial(ByzantineBehaviour):
    """Sends only to a fixed, randomly drawn subset of its peers."""

    name = "partial"

    def __init__(self, cluster: Cluster, validator_index: int) -> None:
        super().__init__(cluster, validator_index)
        self.allowed: list[bytes] | None = None

    def on_send(self, node: SimNode, send: Send) -> Outgoing:
        if self.allowed is None:
            peers = self.get_peer_keys(node)
            count = self.cluster.rng.randint(0, max(0, len(peers) - 1))
            self.allowed = self.cluster.rng.sample(peers, count)
        if send.to is not None:
            return [(send, False)] if send.to in self.allowed else []
        return [(dataclasses.replace(send, to=key), False) for key in self.allowed]


class Equivocate(ByzantineBehaviour):
    """As proposer, signs two different blocks for one (height, round)."""

    name = "equivocate"

    def on_send(self, node: SimNode, send: Send) -> Outgoing:
        proposal = decode_or_none(send.kind, send.data)
        if not isinstance(proposal, Proposal) or proposal.pol_round != NO_ROUND:
            return [(send, False)]
        core = node.core
        assert core is not None
        if core.engine.height != proposal.height - 1:
            return [(send, False)]
        block = proposal.block
        other = core.engine.prepare_proposal(
            time_ms=block.header.time_ms + 1, proposer=node.key.public_key,
            candidates=list(block.txs[:-1]), last_commit=block.last_commit,
            txs_max=self.cluster.config.block_txs_max)
        twin = sign_raw_proposal(node.key, self.cluster.chain_id, proposal.height,
                                 proposal.round, NO_ROUND, other)
        return self.split(node, send, Send(twin.encode(), MessageKind.PROPOSAL))


class DoubleVote(ByzantineBehaviour):
    """Signs a conflicting vote beside each of its votes."""

    name = "double_vote"

    def on_send(self, node: SimNode, send: Send) -> Outgoing:
        vote = decode_or_none(send.kind, send.data)
        if not isinstance(vote, Vote):
            return [(send, False)]
        other_id = self.cluster.rng.randbytes(32) if vote.is_nil else NIL_BLOCK_ID
        other = sign_raw_vote(node.key, self.cluster.chain_id, vote.vote_type, vote.height,
                              vote.round, other_id)
        return self.split(node, send, Send(other.encode(), MessageKind.VOTE))


class InvalidProposal(ByzantineBehaviour):
    """As proposer, sends a block that fails process_proposal instead of its real one."""

    name = "invalid_proposal"
    CORRUPTIONS = ("state_root", "bad_tx", "stale_time", "body_swap")

    def __init__(self, cluster: Cluster, validator_index: int) -> None:
        super().__init__(cluster, validator_index)
        self.sent: Counter[str] = Counter()

    def on_send(self, node: SimNode, send: Send) -> Outgoing:
        proposal = decode_or_none(send.kind, send.data)
        if not isinstance(proposal, Proposal):
            return [(send, False)]
        block = self.corrupt(node, proposal.block)
        forged = sign_raw_proposal(node.key, self.cluster.chain_id, proposal.height,
                                   proposal.round, proposal.pol_round, block)
        return [(Send(forged.encode(), MessageKind.PROPOSAL, send.to), False)]

    def corrupt(self, node: SimNode, block: Block) -> Block:
        """Return `block` broken in one of four ways, taking turns."""
        header = block.header
        corruption = self.CORRUPTIONS[sum(self.sent.values()) % len(self.CORRUPTIONS)]
        self.sent[corruption] += 1
        if corruption == "state_root":
            header = dataclasses.replace(header, state_root=sha256(b"forged state"))
            return Block(header, block.txs, block.last_commit)
        if corruption in ("bad_tx", "body_swap"):
            tx = Transaction.create(node.key, chain_id=self.cluster.chain_id, nonce=1,
                                    expiry_height=10**9, service="notary", method="anchor",
                                    args={"doc_hash": self.cluster.rng.randbytes(32),
                                          "kind": "forged"})
            txs = (*block.txs, dataclasses.replace(tx, signature=bytes(64)).encode())
            if corruption == "bad_tx":
                header = dataclasses.replace(header, tx_root=compute_root(
                    [compute_leaf_hash(raw) for raw in txs]))
            return Block(header, txs, block.last_commit)
        previous = header.time_ms - 1 if header.height == 1 else header.time_ms - 10**6
        header = dataclasses.replace(header, time_ms=max(0, previous))
        return Block(header, block.txs, block.last_commit)


class Twins(Behaviour):
    """One of two nodes sharing a validator key, each running honest code."""

    name = "twins"
    is_honest = False


class LockSplit(ByzantineBehaviour):
    """An attacker of the lock-split adversary: splits its precommits during an attack."""

    name = "lock_split"

    def on_receive(self, node: SimNode, message: MessageArrived) -> None:
        self.cluster.adversary.on_attacker_receive(node, message)

    def on_send(self, node: SimNode, send: Send) -> Outgoing:
        return self.cluster.adversary.on_attacker_send(node, send)


BEHAVIOUR_CLASSES: dict[str, type[Behaviour]] = {
    "honest": Behaviour, "silent": Silent, "partial": Partial, "equivocate": Equivocate,
    "double_vote": DoubleVote, "invalid_proposal": InvalidProposal, "twins": Twins,
    "lock_split": LockSplit,
}


def make_behaviour(name: str, cluster: Cluster, validator_index: int) -> Behaviour:
    """Return the behaviour called `name` for the validator at `validator_index`."""
    if name not in BEHAVIOUR_CLASSES:
        raise LocalError(f"unknown behaviour {name!r}; known: {', '.join(BEHAVIOURS)}")
    return BEHAVIOUR_CLASSES[name](cluster, validator_index)


# ------------------------------------------------------------------------------ adversary


@dataclasses.dataclass
class Attack:
    """One lock-split attempt at `height`: who decides v (x), who is led to w (y)."""

    height: int
    proposer: int
    x: list[int]
    y: list[int]
    deadline_ms: int
    other_block: Block | None = None
    injected: set[int] = dataclasses.field(default_factory=set)
    nil_senders: set[int] = dataclasses.field(default_factory=set)


class Adversary:
    """Coordinates lock-split attackers and the network with knowledge of every node."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.enabled = True
        self.attack: Attack | None = None
        self.attempts = 0
        self.injections = 0
        self._tried: set[int] = set()
        self._has_attackers: bool | None = None
        self._round0_height = 0
        self._round0_block: Block | None = None

    @property
    def attackers(self) -> list[SimNode]:
        return [node for node in self.cluster.nodes if node.behaviour.name == "lock_split"]

    @property
    def is_active(self) -> bool:
        if self._has_attackers is None:
            self._has_attackers = bool(self.attackers)
        return self.enabled and self._has_attackers

    def stop(self) -> None:
        """End the current attempt and attack no more (the liveness phase)."""
        self.enabled = False
        self.attack = None

    # ------------------------------------------------------------------ network control

    def allows(self, source: SimNode, target: SimNode, send: Send) -> bool:
        """Return False for what the attack keeps from Y: synced blocks and the precommits of
        the attacked height signed by anyone but Y, whoever sends or relays them (its own
        nil precommits the adversary delivers to Y itself, reliably)."""
        attack = self.attack
        if attack is None or target.index not in attack.y:
            return True
        if send.kind == MessageKind.BLOCK:
            return False
        if send.kind != MessageKind.VOTE:
            return True
        vote = decode_or_none(send.kind, send.data)
        y_keys = {self.cluster.nodes[index].key.public_key for index in attack.y}
        return not (isinstance(vote, Vote) and vote.height == attack.height
                    and vote.vote_type == VoteType.PRECOMMIT and vote.validator not in y_keys)

    # ------------------------------------------------------------------ attacker hooks

    def on_attacker_receive(self, node: SimNode, message: MessageArrived) -> None:
        """Remember the latest round-0 block an attacker saw: w is built beside it."""
        if message.kind != MessageKind.PROPOSAL:
            return
        proposal = decode_or_none(message.kind, message.data)
        if (isinstance(proposal, Proposal) and proposal.round == 0
                and proposal.height >= self._round0_height):
            self._round0_height, self._round0_block = proposal.height, proposal.block

    def build_other_block(self, attack: Attack) -> None:
        """Have the round-1 proposer build w, a valid block other than v, while it still can."""
        proposer = self.cluster.nodes[attack.proposer]
        block = self._round0_block
        if (block is None or self._round0_height != attack.height or proposer.core is None
                or proposer.core.engine.height != attack.height - 1):
            return
        attack.other_block = proposer.core.engine.prepare_proposal(
            time_ms=block.header.time_ms + 1, proposer=proposer.key.public_key, candidates=[],
            last_commit=block.last_commit)

    def on_attacker_send(self, node: SimNode, send: Send) -> Outgoing:
        """Precommit v to X and nil to Y at round 0 of the attacked height."""
        attack = self.attack
        vote = decode_or_none(send.kind, send.data) if attack is not None else None
        if (attack is None or not isinstance(vote, Vote) or vote.height != attack.height
                or vote.round != 0 or vote.vote_type != VoteType.PRECOMMIT or vote.is_nil
                or vote.validator != node.key.public_key):  # others' votes it relays pass
            return [(send, False)]
        attack.nil_senders.add(node.index)
        nil = self.sign_nil_precommit(node, attack).encode()
        outgoing: Outgoing = []
        for other in self.cluster.nodes:
            if other.index != node.index:
                message = nil if other.index in attack.y else send.data
                outgoing.append((Send(message, MessageKind.VOTE, other.key.public_key), True))
        return outgoing

    def sign_nil_precommit(self, node: SimNode, attack: Attack) -> Vote:
        return sign_raw_vote(node.key, self.cluster.chain_id, VoteType.PRECOMMIT, attack.height,
                             0, NIL_BLOCK_ID)

    def send_missing_nils(self, attack: Attack, y_nodes: list[SimNode]) -> None:
        """Once Y has precommitted v, make sure every attacker's nil reaches Y.

        An attacker that decided v from others' precommits never precommitted itself.
        """
        if not all(node.core is not None and node.core.machine.height == attack.height
                   and node.core.machine.step == Step.PRECOMMIT for node in y_nodes):
            return
        for attacker in self.attackers:
            if attacker.index not in attack.nil_senders:
                attack.nil_senders.add(attacker.index)
                nil = self.sign_nil_precommit(attacker, attack).encode()
                for node in y_nodes:
                    self.cluster.send(attacker, Send(nil, MessageKind.VOTE, node.key.public_key),
                                      reliable=True)

    # ------------------------------------------------------------------ the attack

    def after_step(self) -> None:
        """Start, advance or end the current attempt from what every node's state shows."""
        if self.attack is None:
            self.maybe_start()
            return
        attack = self.attack
        cluster = self.cluster
        y_nodes = [cluster.nodes[index] for index in attack.y]
        if all(node.height >= attack.height for node in y_nodes) or (
                cluster.now_ms >= attack.deadline_ms):
            self.attack = None
            return
        if attack.other_block is None:
            self.build_other_block(attack)
        if len(attack.nil_senders) < len(self.attackers):
            self.send_missing_nils(attack, y_nodes)
        if attack.other_block is None or len(attack.injected) == len(y_nodes) or not all(
                cluster.nodes[index].height >= attack.height for index in attack.x):
            return
        for node in y_nodes:
            if (node.index not in attack.injected and node.core is not None
                    and node.core.machine.height == attack.height
                    and node.core.machine.round >= 1):
                self.inject(attack, node)

    def maybe_start(self) -> None:
        """Begin an attempt when every honest validator starts a height we can attack."""
        cluster = self.cluster
        honest = cluster.honest_validators
        if not honest or any(node.core is None for node in honest):
            return
        height = honest[0].core.machine.height  # type: ignore[union-attr]
        if height in self._tried or any(
                node.core.machine.height != height or node.height != height - 1  # type: ignore[union-attr]
                for node in honest):
            return
        self._tried.add(height)
        attackers = self.attackers
        proposer_key = compute_proposer(cluster.genesis.validators, Height(height),
                                        Round(1)).public_key
        proposer = [node.index for node in attackers if node.key.public_key == proposer_key]
        quorum = 2 * len(cluster.genesis.validators.validators) // 3 + 1
        y_size = quorum - len(attackers)
        if not proposer or not 1 <= y_size < len(honest):
            return
        order = [node.index for node in honest]
        cluster.rng.shuffle(order)
        self.attack = Attack(height, proposer[0], sorted(order[y_size:]), sorted(order[:y_size]),
                             cluster.now_ms + ATTACK_WINDOW_MS)
        self.attempts += 1
        canary = cluster.config.consensus.canary_ignore_lock
        if not canary and cluster.rng.random() < AMNESIA_PROBABILITY:
            self.crash_after_lock(cluster.nodes[order[0]])

    def crash_after_lock(self, victim: SimNode) -> None:
        """Amnesia: crash a Y node the moment it locks on v, restart it a little later.

        If its WAL did not give the lock back, the attack would fork honest nodes.
        """
        victim.crash_after_lock = True

        def restart() -> None:
            victim.crash_after_lock = False
            if victim.is_crashed and self.cluster.faults_active:
                self.cluster.restart(victim.index)

        self.cluster.at(self.cluster.now_ms + AMNESIA_DOWNTIME_MS, restart)

    def inject(self, attack: Attack, target: SimNode) -> None:
        """Send a Y node, now in round 1, the proposal of w and the attackers' votes for it."""
        cluster = self.cluster
        assert attack.other_block is not None
        if not attack.injected:
            self.injections += 1
        attack.injected.add(target.index)
        proposer = cluster.nodes[attack.proposer]
        block = attack.other_block
        proposal = sign_raw_proposal(proposer.key, cluster.chain_id, attack.height, 1,
                                     NO_ROUND, block)
        messages = [(proposer, Send(proposal.encode(), MessageKind.PROPOSAL))]
        for attacker in self.attackers:
            for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
                vote = sign_raw_vote(attacker.key, cluster.chain_id, vote_type, attack.height,
                                     1, block.block_id())
                messages.append((attacker, Send(vote.encode(), MessageKind.VOTE)))
        for sender, send in messages:
            cluster.send(sender, dataclasses.replace(send, to=target.key.public_key),
                         reliable=True)
