"""Validator core: the one driver of consensus, engine, mempool, WAL and safety rules.

Most tests drive one real core by hand as validator 0 of four, playing the three peers with
their raw keys; the networked behaviour is covered by the simulator's scenarios
(tests/sim). Crashes are simulated the way the simulator does: the core object is dropped,
the block store, WAL bytes and signing store are kept, and `ValidatorCore.recover` runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.codec import encode
from seoulchain.consensus.events import (
    ProposalReceived,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    TxsAvailable,
    VoteReceived,
    decode_event,
    encode_event,
)
from seoulchain.consensus.evidence import DuplicateVoteEvidence, verify_evidence_bytes
from seoulchain.consensus.machine import ConsensusConfig
from seoulchain.consensus.messages import NIL_BLOCK_ID, Proposal, Step, Vote
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.consensus.safety import InMemorySigningStateStore
from seoulchain.consensus.wal import TailDefect, compute_intact_prefix
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, LocalError, StorageError
from seoulchain.execution.engine import Engine, InvalidBlock
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Block, Commit, Transaction, Validator, ValidatorSet, VoteType
from seoulchain.node.mempool import Mempool
from seoulchain.node.validator import (
    RESENT_ROUNDS_MAX,
    SYNC_REQUEST_TICKS,
    SYNC_WINDOW_BLOCKS,
    SYNC_WINDOWS_MAX,
    TXS_MESSAGE_BYTES_MAX,
    TXS_PER_MESSAGE_MAX,
    BlockMessage,
    BlockRequest,
    Committed,
    CoreDrop,
    EvidencePool,
    GossipDue,
    MessageArrived,
    MessageKind,
    NextHeightDue,
    Send,
    SetTimer,
    StatusMessage,
    TxsAdmitted,
    ValidatorConfig,
    ValidatorCore,
    decode_txs_message,
    encode_txs_message,
    is_body_consistent,
    split_txs_messages,
)
from seoulchain.sim.byzantine import sign_raw_proposal, sign_raw_vote
from seoulchain.sim.wal import CrashInjected, MemoryWAL

CHAIN_ID = "seoul-core-test"
GENESIS_TIME_MS = 1_700_000_000_000
SERVICES = load_services()


def make_key(name: str) -> SigningKey:
    return SigningKey(sha256(f"core-test/{name}".encode()))


ISSUER = make_key("issuer")


def make_genesis(keys: list[SigningKey]) -> Genesis:
    validators = ValidatorSet.of([Validator(key.public_key, 1, f"v{index}")
                                  for index, key in enumerate(keys)])
    return Genesis(CHAIN_ID, GENESIS_TIME_MS, validators, {"notary.issuer": (ISSUER.public_key,)})


def make_tx(nonce: int) -> bytes:
    return Transaction.create(ISSUER, chain_id=CHAIN_ID, nonce=nonce, expiry_height=10**6,
                              service="notary", method="anchor",
                              args={"doc_hash": sha256(b"doc %d" % nonce), "kind": "permit"}
                              ).encode()


@dataclass
class Disk:
    """What survives a crash: block store, WAL bytes and signing store."""

    store: BlockStore = field(default_factory=lambda: BlockStore(":memory:"))
    wal: MemoryWAL = field(default_factory=MemoryWAL)
    signing: InMemorySigningStateStore = field(default_factory=InMemorySigningStateStore)


class Scene:
    """Validator 0's real core among peers 1..n-1 played by hand; the clock is settable."""

    def __init__(self, count: int = 4, consensus: ConsensusConfig | None = None) -> None:
        self.consensus = consensus or ConsensusConfig(CHAIN_ID)
        self.keys = [make_key(f"validator-{index}") for index in range(count)]
        self.genesis = make_genesis(self.keys)
        self.now_ms = GENESIS_TIME_MS + 1000
        self.disk = Disk()
        self.core = self.build_core()
        self.effects: list[object] = []

    def build_core(self) -> ValidatorCore:
        engine = Engine(self.genesis, self.disk.store, SERVICES, verify_evidence_bytes)
        return ValidatorCore(key=self.keys[0], engine=engine,
                             mempool=Mempool(engine, 1000, 10**7), wal=self.disk.wal,
                             signing_store=self.disk.signing,
                             config=ValidatorConfig(self.consensus),
                             clock=lambda: self.now_ms)

    def start(self) -> list[object]:
        self.effects = list(self.core.start())
        return self.effects

    def handle(self, event: object) -> list[object]:
        self.effects = list(self.core.handle(event))  # type: ignore[arg-type]
        return self.effects

    def crash_and_recover(self) -> list[object]:
        """Drop every volatile part and rebuild the core from the disk."""
        replay = self.disk.wal.replay()
        engine = Engine(self.genesis, self.disk.store, SERVICES, verify_evidence_bytes)
        recovery = ValidatorCore.recover(
            key=self.keys[0], engine=engine, mempool=Mempool(engine, 1000, 10**7),
            wal=self.disk.wal, replay=replay, signing_store=self.disk.signing,
            config=ValidatorConfig(self.consensus), clock=lambda: self.now_ms)
        self.core = recovery.core
        self.recovery = recovery
        self.effects = list(recovery.effects)
        return self.effects

    def proposer_of(self, height: int, round_: int) -> int:
        key = compute_proposer(self.genesis.validators, height, round_).public_key  # type: ignore[arg-type]
        return [item.public_key for item in self.keys].index(key)

    def peer_block(self, proposer: int, *, txs: list[bytes] | None = None) -> Block:
        """Build the next block as peer `proposer` would, on a copy of our chain."""
        engine = Engine(self.genesis, self.disk.store, SERVICES)
        last = self.disk.store.get_commit(engine.height) if engine.height else None
        return engine.prepare_proposal(time_ms=self.now_ms, proposer=self.keys[proposer].public_key,
                                       candidates=txs or [], last_commit=last)

    def from_peer(self, peer: int, kind: str, data: bytes) -> list[object]:
        return self.handle(MessageArrived(self.keys[peer].public_key, kind, data))

    def propose(self, peer: int, block: Block, round_: int = 0) -> list[object]:
        proposal = sign_raw_proposal(self.keys[peer], CHAIN_ID, block.height, round_, -1, block)
        return self.from_peer(peer, MessageKind.PROPOSAL, proposal.encode())

    def vote(self, peer: int, vote_type: int, height: int, block_id: bytes,
             round_: int = 0) -> list[object]:
        vote = sign_raw_vote(self.keys[peer], CHAIN_ID, vote_type, height, round_, block_id)
        return self.from_peer(peer, MessageKind.VOTE, vote.encode())

    def wal_events(self) -> list[object]:
        return [decode_event(payload)
                for payload in compute_intact_prefix(bytes(self.disk.wal.data)).payloads]

    def sent(self, kind: str) -> list[Send]:
        return [effect for effect in self.effects
                if isinstance(effect, Send) and effect.kind == kind]


def first_non_proposer_scene() -> tuple[Scene, int]:
    """Return a scene at height 1 where validator 0 is not the round-0 proposer."""
    scene = Scene()
    proposer = scene.proposer_of(1, 0)
    assert proposer != 0, "test keys must not make validator 0 the first proposer"
    scene.start()
    return scene, proposer


def lock_on_a_block(scene: Scene, proposer: int) -> Block:
    """Round 0: a peer proposes v, everyone prevotes v; validator 0 locks and precommits v."""
    block = scene.peer_block(proposer)
    scene.propose(proposer, block)
    others = [peer for peer in (1, 2, 3)][:2]
    for peer in others:
        scene.vote(peer, VoteType.PREVOTE, 1, block.block_id())
    assert scene.core.machine.state.locked_block_id == block.block_id()
    return block


# ------------------------------------------------------------------------------ one validator


def test_validator_core_a_lone_validator_commits_mempool_txs_at_the_driver_clock() -> None:
    """validator core: n=1 decides at once; the block holds the txs and the clock's time."""
    scene = Scene(count=1)
    check, effects = scene.core.submit_tx(make_tx(1))
    assert check.ok and effects == [Send(make_tx(1), MessageKind.TX)]
    effects = scene.start()
    committed = [effect for effect in effects if isinstance(effect, Committed)]
    assert len(committed) == 1
    block = committed[0].block
    assert block.height == 1 and block.txs == (make_tx(1),)
    assert block.header.time_ms == scene.now_ms
    assert scene.core.height == 1 and len(scene.core.mempool) == 0
    assert SetTimer(scene.core.config.commit_pause_ms, NextHeightDue(2)) in effects
    scene.now_ms += 700
    effects = scene.handle(NextHeightDue(2))
    assert [effect.block.header.time_ms for effect in effects if isinstance(effect, Committed)] \
        == [scene.now_ms]


def test_validator_core_logs_every_event_and_own_message_before_sending_it() -> None:
    """validator core: the WAL holds StartHeight first and every own proposal/vote sent."""
    scene = Scene(count=1)
    effects = scene.start()
    events = scene.wal_events()
    assert isinstance(events[0], StartHeight) and events[0].height == 1
    logged = {encode_event(event) for event in events}
    sends = [effect for effect in effects if isinstance(effect, Send)]
    assert {send.kind for send in sends} == {MessageKind.PROPOSAL, MessageKind.VOTE}
    for send in sends:
        event = (ProposalReceived(send.data) if send.kind == MessageKind.PROPOSAL
                 else VoteReceived(send.data))
        assert encode_event(event) in logged


def test_validator_core_refuses_inputs_before_start_and_a_second_start() -> None:
    scene = Scene(count=1)
    with pytest.raises(LocalError, match="start"):
        scene.handle(GossipDue())
    scene.start()
    with pytest.raises(LocalError, match="already started"):
        scene.core.start()


# ------------------------------------------------------------------------------ four validators


def test_validator_core_a_tx_arriving_in_an_idle_pause_brings_the_next_height_forward() -> None:
    """validator core (n=4): an empty mempool at the commit means the idle pause; the first
    tx admitted during it (from a client or a peer) schedules the start after the busy pause,
    once; the idle pause's own timer then finds the height started."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    effects = scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    config = scene.core.config
    assert SetTimer(config.commit_pause_ms, NextHeightDue(2)) in effects
    scene.from_peer(1, MessageKind.TXS, encode_txs_message([make_tx(1)]))
    assert SetTimer(config.busy_commit_pause_ms, NextHeightDue(2)) in scene.effects
    _, effects = scene.core.submit_tx(make_tx(2))
    assert not any(isinstance(effect, SetTimer) for effect in effects)  # once per pause
    scene.handle(NextHeightDue(2))
    assert scene.core.machine.height == 2
    scene.handle(NextHeightDue(2))
    assert scene.core.dropped[CoreDrop.STALE_TIMER] == 1


def test_validator_core_shortens_the_commit_pause_while_transactions_wait() -> None:
    """validator core (n=4): a block decided without the tx waiting in our mempool is
    followed by the busy pause, not the idle one."""
    scene, proposer = first_non_proposer_scene()
    check, _ = scene.core.submit_tx(make_tx(1))
    assert check.ok
    block = lock_on_a_block(scene, proposer)  # the peer's block does not carry it
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    effects = scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    config = scene.core.config
    assert config.busy_commit_pause_ms < config.commit_pause_ms
    assert SetTimer(config.busy_commit_pause_ms, NextHeightDue(2)) in effects


def test_validator_core_follows_peers_to_a_decision_and_pauses_before_the_next_height() -> None:
    """validator core (n=4): proposal, polka, 2f + 1 precommits → Committed, then the pause."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    assert [Vote.decode(send.data).vote_type for send in scene.sent(MessageKind.VOTE)] \
        == [VoteType.PRECOMMIT]
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    effects = scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    assert [effect.block for effect in effects if isinstance(effect, Committed)] == [block]
    assert SetTimer(scene.core.config.commit_pause_ms, NextHeightDue(2)) in effects
    assert scene.core.machine.height == 1  # paused: height 2 starts on NextHeightDue
    scene.handle(NextHeightDue(2))
    assert scene.core.machine.height == 2
    events = scene.wal_events()  # the WAL was reset: height 1 is in the store
    assert isinstance(events[0], StartHeight) and events[0].height == 2
    assert not any(isinstance(event, StartHeight) for event in events[1:])


# ------------------------------------------------------------------------------ empty blocks

WAIT_MS = 30_000
NO_EMPTY_BLOCKS = ConsensusConfig(CHAIN_ID, create_empty_blocks=False,
                                  create_empty_blocks_interval_ms=WAIT_MS)
WAIT_TIMER = SetTimer(WAIT_MS, TimeoutFired(TimeoutKind.WAIT_FOR_TXS, 2, 0))


def commit_height_1(scene: Scene) -> None:
    """Start validator 0 and follow its peers to a decision on height 1 (no txs in it)."""
    scene.start()
    proposer = scene.proposer_of(1, 0)
    block = lock_on_a_block(scene, proposer)
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    assert scene.core.height == 1
    assert scene.proposer_of(2, 0) == 0, "test keys must make validator 0 propose height 2"


def proposed_blocks(effects: list[object]) -> list[Block]:
    return [Proposal.decode(effect.data).block for effect in effects
            if isinstance(effect, Send) and effect.kind == MessageKind.PROPOSAL]


def test_validator_core_without_empty_blocks_waits_for_a_tx_then_proposes_it() -> None:
    """validator core (n=4, create_empty_blocks off): the proposer of height 2 proposes
    nothing while idle (gossip ticks included); the first tx admitted is proposed at once."""
    scene = Scene(consensus=NO_EMPTY_BLOCKS)
    commit_height_1(scene)
    effects = scene.handle(NextHeightDue(2))
    assert proposed_blocks(effects) == [] and WAIT_TIMER in effects
    assert scene.core.machine.is_waiting_for_txs
    assert proposed_blocks(scene.handle(GossipDue())) == []
    logged = bytes(scene.disk.wal.data)
    _, effects = scene.core.submit_tx(make_tx(1))
    _, more = scene.core.submit_txs([make_tx(2)])
    assert bytes(scene.disk.wal.data) == logged  # admission itself writes no WAL record
    assert [effect for effect in effects + more if isinstance(effect, SetTimer)] \
        == [SetTimer(0, TxsAdmitted())]  # one notice for both
    effects = scene.handle(TxsAdmitted())
    assert [block.txs for block in proposed_blocks(effects)] == [(make_tx(1), make_tx(2))]
    assert TxsAvailable(2) in scene.wal_events()


def test_validator_core_without_empty_blocks_a_peers_tx_ends_the_wait() -> None:
    """validator core (n=4, create_empty_blocks off): a tx gossiped by a peer ends the wait
    within the same input."""
    scene = Scene(consensus=NO_EMPTY_BLOCKS)
    commit_height_1(scene)
    scene.handle(NextHeightDue(2))
    effects = scene.from_peer(1, MessageKind.TX, make_tx(1))
    assert [block.txs for block in proposed_blocks(effects)] == [(make_tx(1),)]


def test_validator_core_without_empty_blocks_proposes_at_once_when_txs_wait() -> None:
    """validator core (n=4, create_empty_blocks off): a tx left in the mempool after a
    commit starts the next height's proposal at once, without the wait."""
    scene = Scene(consensus=NO_EMPTY_BLOCKS)
    scene.core.submit_tx(make_tx(1))
    commit_height_1(scene)  # the peer's block does not carry our tx
    effects = scene.handle(NextHeightDue(2))
    assert [block.txs for block in proposed_blocks(effects)] == [(make_tx(1),)]
    assert not scene.core.machine.is_waiting_for_txs  # its wait timer is now stale


def test_validator_core_without_empty_blocks_proposes_an_empty_block_each_interval() -> None:
    """validator core (n=4, create_empty_blocks off): the proof-of-life timer proposes an
    empty block; a wait restored from the WAL after a crash schedules it again."""
    scene = Scene(consensus=NO_EMPTY_BLOCKS)
    commit_height_1(scene)
    scene.handle(NextHeightDue(2))
    effects = scene.crash_and_recover()
    assert WAIT_TIMER in effects and proposed_blocks(effects) == []
    assert scene.core.machine.is_waiting_for_txs
    effects = scene.handle(WAIT_TIMER.event)
    assert [block.txs for block in proposed_blocks(effects)] == [()]


def test_validator_core_drops_exact_repeats_before_the_wal() -> None:
    scene, proposer = first_non_proposer_scene()
    block = scene.peer_block(proposer)
    scene.propose(proposer, block)
    appends = scene.disk.wal.appends
    scene.propose(proposer, block)
    scene.vote(1, VoteType.PREVOTE, 1, block.block_id())
    scene.vote(1, VoteType.PREVOTE, 1, block.block_id())
    assert scene.core.dropped[CoreDrop.REPEAT] == 2
    assert scene.disk.wal.appends == appends + 1


def test_validator_core_drops_a_proposal_whose_body_is_not_the_one_its_header_names() -> None:
    """validator core (n=4): a known header with an extra tx (same block id) never gets in."""
    scene, proposer = first_non_proposer_scene()
    block = scene.peer_block(proposer)
    swapped = Block(block.header, (*block.txs, make_tx(1)), block.last_commit)
    assert swapped.block_id() == block.block_id() and not is_body_consistent(swapped)
    effects = scene.propose(proposer, swapped)
    assert scene.core.dropped[CoreDrop.INCONSISTENT_BODY] == 1
    assert effects == [] and len(scene.wal_events()) == 1


def test_engine_rejects_a_swapped_body_for_an_already_validated_block_id() -> None:
    scene = Scene()
    block = scene.peer_block(1)
    engine = scene.core.engine
    engine.process_proposal(block)
    swapped = Block(block.header, (*block.txs, make_tx(1)), block.last_commit)
    with pytest.raises(InvalidBlock):
        engine.process_proposal(swapped)


def test_validator_core_re_sends_only_when_stuck_with_status_and_recent_own_messages() -> None:
    """validator core (n=4): a tick after progress sends only our status; a tick with none
    re-sends."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    assert [effect.kind for effect in scene.handle(GossipDue())
            if isinstance(effect, Send)] == [MessageKind.STATUS]
    resent = scene.handle(GossipDue())
    kinds = [effect.kind for effect in resent if isinstance(effect, Send)]
    assert kinds[0] == MessageKind.STATUS
    assert StatusMessage.decode(resent[0].data) == StatusMessage(1, 0)  # type: ignore[union-attr]
    votes = [Vote.decode(effect.data) for effect in resent
             if isinstance(effect, Send) and effect.kind == MessageKind.VOTE]
    assert {(vote.validator, vote.vote_type) for vote in votes} >= {
        (scene.keys[0].public_key, VoteType.PREVOTE), (scene.keys[0].public_key,
                                                        VoteType.PRECOMMIT)}
    # The prevotes that justify the valid value (its proof of lock) are relayed too.
    relayed = {vote.validator for vote in votes if vote.vote_type == VoteType.PREVOTE
               and vote.block_id == block.block_id()}
    assert relayed == {scene.keys[index].public_key for index in (0, 1, 2)}
    assert isinstance(resent[-1], SetTimer) and resent[-1].event == GossipDue()
    assert RESENT_ROUNDS_MAX == 2


# ------------------------------------------------------------------------------ recovery


def test_validator_core_recovers_its_lock_and_votes_from_the_wal() -> None:
    """validator core (n=4): locked and precommitted, crash; the WAL restores the lock."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    before = scene.core.machine.state
    effects = scene.crash_and_recover()
    assert scene.recovery.tail.is_clean and scene.recovery.replayed_events > 3
    assert scene.core.machine.state == before
    assert scene.core.machine.step == Step.PRECOMMIT
    assert any(isinstance(effect, SetTimer) and effect.event == GossipDue() for effect in effects)
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    committed = scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    assert [effect.block for effect in committed if isinstance(effect, Committed)] == [block]


def test_validator_core_syncs_the_wal_before_each_own_message_only() -> None:
    """validator core (n=4): a peer's message or a timeout is logged without a sync; an own
    vote is logged with one, before it is sent, making every earlier input durable too."""
    scene, proposer = first_non_proposer_scene()
    block = scene.peer_block(proposer)
    syncs = scene.disk.wal.syncs
    assert scene.propose(proposer, block) and scene.sent(MessageKind.VOTE)  # own prevote
    assert scene.disk.wal.syncs == syncs + 1
    assert scene.disk.wal.synced_bytes == len(scene.disk.wal.data)
    syncs = scene.disk.wal.syncs
    assert scene.vote(1, VoteType.PREVOTE, 1, block.block_id()) == []  # no own message
    assert scene.disk.wal.syncs == syncs
    assert scene.disk.wal.synced_bytes < len(scene.disk.wal.data)


def test_validator_core_keeps_its_lock_through_a_power_cut() -> None:
    """validator core (n=4): locked and precommitted, then a power cut loses the WAL's
    unsynced tail: the precommit's sync kept the prevotes it was decided on, so the lock and
    the vote survive; a peer's precommit logged after it is lost, and peers re-send it."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    before = scene.core.machine.state
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    scene.disk.wal.lose_unsynced()
    scene.crash_and_recover()
    assert scene.recovery.tail.is_clean
    assert scene.core.machine.state == before
    assert scene.core.machine.step == Step.PRECOMMIT
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    committed = scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    assert [effect.block for effect in committed if isinstance(effect, Committed)] == [block]


def test_validator_core_re_sends_own_votes_that_only_the_wal_restored() -> None:
    """validator core (n=4): nil prevote, nil precommit, crash. Replaying, the safety rules
    refuse to sign the prevote again (the precommit came later), so only the WAL restores
    it; a stuck node must still re-send it to peers that lost it."""
    scene, _ = first_non_proposer_scene()
    scene.handle(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    for peer in (1, 2):
        scene.vote(peer, VoteType.PREVOTE, 1, NIL_BLOCK_ID)
    assert scene.core.machine.step == Step.PRECOMMIT
    scene.crash_and_recover()
    assert scene.core.machine.refused_signatures == 1
    scene.handle(GossipDue())
    resent = [Vote.decode(send.data) for send in scene.handle(GossipDue())
              if isinstance(send, Send) and send.kind == MessageKind.VOTE]
    own = {vote.vote_type for vote in resent if vote.validator == scene.keys[0].public_key}
    assert own == {VoteType.PREVOTE, VoteType.PRECOMMIT}


def test_validator_core_truncates_and_reports_a_torn_wal_tail() -> None:
    """validator core (n=4): the crash tears the append of a prevote; replay cuts it off."""
    scene, proposer = first_non_proposer_scene()
    block = scene.peer_block(proposer)
    scene.propose(proposer, block)
    state = scene.core.machine.state
    scene.disk.wal.arm_torn_write(5)
    with pytest.raises(CrashInjected):
        scene.vote(1, VoteType.PREVOTE, 1, block.block_id())
    scene.crash_and_recover()
    assert scene.recovery.tail.defect == TailDefect.TORN_HEADER
    assert scene.recovery.tail.discarded_bytes == 5
    assert scene.core.machine.state == state
    # The peer's re-sent prevote is not a repeat: the torn copy never reached the machine.
    scene.vote(1, VoteType.PREVOTE, 1, block.block_id())
    scene.vote(2, VoteType.PREVOTE, 1, block.block_id())
    assert scene.core.machine.state.locked_block_id == block.block_id()


def test_validator_core_commits_a_decision_whose_store_write_was_rolled_back() -> None:
    """validator core (n=4): the crash hits inside the block's SQLite transaction."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())

    def crash(step: str) -> None:
        if step == "state":
            raise CrashInjected(step)

    scene.disk.store.crash_hook = crash
    with pytest.raises(CrashInjected):
        scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    assert scene.disk.store.get_tip() is None
    scene.disk.store.crash_hook = None
    effects = scene.crash_and_recover()
    assert [effect.block for effect in effects if isinstance(effect, Committed)] == [block]
    assert scene.core.height == 1 and scene.core.machine.height == 2


def test_validator_core_starts_the_next_height_when_the_wal_is_for_a_stored_one() -> None:
    """validator core (n=4): crash during the commit pause; the store already has height 1."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    scene.vote(1, VoteType.PRECOMMIT, 1, block.block_id())
    scene.vote(2, VoteType.PRECOMMIT, 1, block.block_id())
    scene.crash_and_recover()
    assert scene.core.machine.height == 2 and scene.recovery.replayed_events > 0
    events = scene.wal_events()
    assert isinstance(events[0], StartHeight) and events[0].height == 2
    assert events[0].last_commit is not None and events[0].last_commit.block_id == block.block_id()


def test_validator_core_keeps_early_next_height_messages_across_the_wal_reset() -> None:
    """validator core (n=4): height 3's proposal and prevotes arrive during the commit pause
    of height 2 (the machine buffers them); the node locks at height 3, then crashes. The
    reset WAL must still hold them, or the replayed node would have lost its lock."""
    scene, proposer = first_non_proposer_scene()
    first = lock_on_a_block(scene, proposer)
    for peer in (1, 2):
        scene.vote(peer, VoteType.PRECOMMIT, 1, first.block_id())
    scene.now_ms += 1000
    scene.handle(NextHeightDue(2))
    own = [Proposal.decode(send.data) for send in scene.sent(MessageKind.PROPOSAL)]
    assert scene.proposer_of(2, 0) == 0 and len(own) == 1
    for peer in (1, 2):
        scene.vote(peer, VoteType.PREVOTE, 2, own[0].block_id)
    for peer in (1, 2):
        scene.vote(peer, VoteType.PRECOMMIT, 2, own[0].block_id)
    assert scene.core.height == 2 and scene.core.machine.height == 2
    scene.now_ms += 100
    third = scene.peer_block(scene.proposer_of(3, 0))
    scene.propose(scene.proposer_of(3, 0), third)
    for peer in (1, 2):
        scene.vote(peer, VoteType.PREVOTE, 3, third.block_id())
    scene.handle(NextHeightDue(3))
    locked = scene.core.machine.state
    assert locked.height == 3 and locked.locked_block_id == third.block_id()
    scene.crash_and_recover()
    assert scene.core.machine.state == locked


def test_validator_core_refuses_a_wal_ahead_of_the_store_or_without_start_height() -> None:
    scene = Scene()
    ahead = StartHeight(5, scene.genesis.validators, Commit(4, 0, sha256(b"x"), ()))
    with pytest.raises(StorageError, match="ahead"):
        scene.build_core().start([encode_event(ahead)])
    timeout = TimeoutFired(TimeoutKind.PROPOSE, 1, 0)
    with pytest.raises(StorageError, match="does not begin"):
        scene.build_core().start([encode_event(timeout)])
    with pytest.raises(StorageError, match="undecodable"):
        scene.build_core().start([b"\xff"])


# ------------------------------------------------------------------------------ block sync


def make_standby(genesis: Genesis, key: SigningKey) -> ValidatorCore:
    """Return a started core whose key holds no voting power: it can only follow."""
    engine = Engine(genesis, BlockStore(":memory:"), SERVICES)
    core = ValidatorCore(key=key, engine=engine, mempool=Mempool(engine, 10, 10**6),
                         wal=MemoryWAL(), signing_store=InMemorySigningStateStore(),
                         config=ValidatorConfig(ConsensusConfig(CHAIN_ID)),
                         clock=lambda: GENESIS_TIME_MS)
    core.start()
    return core


def make_lone_chain(heights: int) -> Scene:
    """Return a lone validator's scene that has committed `heights` blocks."""
    leader = Scene(count=1)
    leader.start()
    for height in range(2, heights + 1):
        leader.now_ms += 1000
        leader.handle(NextHeightDue(height))
    assert leader.core.height == heights
    return leader


def deliver(follower: ValidatorCore, sender: bytes, sends: list[Send]) -> list[object]:
    """Hand `sends` (from `sender`) to the follower; return every effect it produced."""
    effects: list[object] = []
    for send in sends:
        effects.extend(follower.handle(MessageArrived(sender, send.kind, send.data)))
    return effects


def serve(leader: Scene, follower_key: bytes, requests: list[object]) -> list[list[Send]]:
    """Answer each block request sent to the leader; return the replies per request."""
    replies = []
    for request in requests:
        assert isinstance(request, Send) and request.kind == MessageKind.BLOCK_REQUEST
        effects = leader.handle(MessageArrived(follower_key, request.kind, request.data))
        replies.append([effect for effect in effects if isinstance(effect, Send)])
    return replies


def test_validator_core_syncs_in_windows_each_block_once_then_rejoins_consensus() -> None:
    """validator core: a standby 40 blocks behind asks for aligned windows of blocks, takes
    them out of order, commits each once without running consensus for those heights, and
    starts consensus only at the tip."""
    leader = make_lone_chain(40)
    leader_key = leader.keys[0].public_key
    follower_key = make_key("standby")
    follower = make_standby(leader.genesis, follower_key)
    wal = follower.wal
    assert isinstance(wal, MemoryWAL)
    wal_before = bytes(wal.data)
    effects = follower.handle(MessageArrived(leader_key, MessageKind.STATUS,
                                             StatusMessage(41, 0).encode()))
    requests = [BlockRequest.decode(effect.data) for effect in effects
                if isinstance(effect, Send) and effect.kind == MessageKind.BLOCK_REQUEST]
    assert [(request.start, request.count) for request in requests] == [
        (1, SYNC_WINDOW_BLOCKS), (17, SYNC_WINDOW_BLOCKS), (33, 8)]
    assert all(isinstance(effect, Send) and effect.to == leader_key for effect in effects)
    replies = serve(leader, follower_key.public_key, effects)
    assert [len(reply) for reply in replies] == [16, 16, 8]
    deliver(follower, leader_key, replies[2] + replies[1])  # out of order: kept
    assert follower.height == 0 and not follower.syncing
    deliver(follower, leader_key, replies[0][:5])
    assert follower.height == 5 and follower.syncing and follower.machine.height == 1
    effects = deliver(follower, leader_key, replies[0][5:])
    assert follower.height == 40 and follower.synced_blocks == 40 and not follower.syncing
    assert follower.machine.height == 41 and follower.engine.tip == leader.core.engine.tip
    assert follower.sync_requests == 3
    # No height between was started: the WAL went from height 1 straight to height 41.
    starts = [event.height for event in map(decode_event, compute_intact_prefix(
        bytes(wal.data)).payloads) if isinstance(event, StartHeight)]
    assert wal_before and starts == [41]


def test_validator_core_sync_window_cap_and_resend_to_another_peer() -> None:
    """validator core: at most SYNC_WINDOWS_MAX windows are in flight; one unanswered for
    SYNC_REQUEST_TICKS ticks goes to the other peer that has it."""
    leader = make_lone_chain(3)
    follower = make_standby(leader.genesis, make_key("standby"))
    peers = [make_key("peer-a").public_key, make_key("peer-b").public_key]
    tip = SYNC_WINDOW_BLOCKS * (SYNC_WINDOWS_MAX + 2)
    sent: list[Send] = []
    for peer in peers:
        sent += [effect for effect in follower.handle(MessageArrived(
            peer, MessageKind.STATUS, StatusMessage(tip + 1, 0).encode()))
            if isinstance(effect, Send) and effect.kind == MessageKind.BLOCK_REQUEST]
    assert len(sent) == SYNC_WINDOWS_MAX
    first = BlockRequest.decode(sent[0].data)
    assert (first.start, first.count) == (1, SYNC_WINDOW_BLOCKS)
    first_peer = sent[0].to
    again: list[Send] = []
    for _ in range(SYNC_REQUEST_TICKS + 1):
        again += [effect for effect in follower.handle(GossipDue())
                  if isinstance(effect, Send) and effect.kind == MessageKind.BLOCK_REQUEST]
    window_one = [send for send in again if BlockRequest.decode(send.data).start == 1]
    assert window_one and window_one[0].to != first_peer
    assert not follower.syncing  # claims alone never take a validator out of consensus


def test_validator_core_drops_consensus_input_while_syncing_and_stale_input_before_wal() -> None:
    """validator core: while syncing, peers' proposals and votes and our old timers are
    dropped before the WAL; so are messages for a past height."""
    leader = make_lone_chain(20)
    leader_key = leader.keys[0].public_key
    follower_key = make_key("standby")
    follower = make_standby(leader.genesis, follower_key)
    effects = follower.handle(MessageArrived(leader_key, MessageKind.STATUS,
                                             StatusMessage(21, 0).encode()))
    replies = serve(leader, follower_key.public_key, effects)
    assert len(replies) == 2
    deliver(follower, leader_key, replies[0][:3])
    assert follower.syncing and follower.height == 3
    wal = follower.wal
    assert isinstance(wal, MemoryWAL)
    size = len(wal.data)
    vote = sign_raw_vote(leader.keys[0], CHAIN_ID, VoteType.PREVOTE, 4, 0, sha256(b"x"))
    follower.handle(MessageArrived(leader_key, MessageKind.VOTE, vote.encode()))
    follower.handle(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    assert follower.dropped[CoreDrop.SYNCING] == 1
    assert follower.dropped[CoreDrop.STALE_TIMER] == 1 and len(wal.data) == size
    deliver(follower, leader_key, replies[0][3:] + replies[1])
    assert follower.height == 20 and follower.machine.height == 21 and not follower.syncing
    size = len(wal.data)
    old = sign_raw_vote(leader.keys[0], CHAIN_ID, VoteType.PREVOTE, 20, 0, sha256(b"x"))
    follower.handle(MessageArrived(leader_key, MessageKind.VOTE, old.encode()))
    assert follower.dropped[CoreDrop.STALE_MESSAGE] == 1 and len(wal.data) == size


def test_validator_core_refuses_a_synced_block_without_a_valid_commit() -> None:
    leader = Scene(count=1)
    leader.start()
    block = leader.disk.store.get_block(1)
    commit = leader.disk.store.get_commit(1)
    assert block is not None and commit is not None
    forged = dataclasses.replace(commit, signatures=(dataclasses.replace(
        commit.signatures[0], signature=bytes(64)),))
    follower = make_standby(leader.genesis, make_key("standby"))
    sender = leader.keys[0].public_key
    follower.handle(MessageArrived(sender, MessageKind.BLOCK,
                                   BlockMessage(block, forged).encode()))
    assert follower.dropped[CoreDrop.SYNC_INVALID] == 1 and follower.height == 0
    follower.handle(MessageArrived(sender, MessageKind.BLOCK_REQUEST,
                                   encode([1, 0, SYNC_WINDOW_BLOCKS + 1])))
    assert follower.dropped[CoreDrop.MALFORMED] == 1
    follower.handle(MessageArrived(sender, MessageKind.BLOCK,
                                   BlockMessage(block, commit).encode()))
    assert follower.height == 1


# ------------------------------------------------------------------------------ evidence, wire


def make_evidence(index: int) -> DuplicateVoteEvidence:
    key = make_key("equivocator")
    first = sign_raw_vote(key, CHAIN_ID, VoteType.PREVOTE, index + 1, 0, sha256(b"a"))
    second = sign_raw_vote(key, CHAIN_ID, VoteType.PREVOTE, index + 1, 0, NIL_BLOCK_ID)
    return DuplicateVoteEvidence.create(first, second)


def test_evidence_pool_is_bounded_and_forgets_committed_evidence() -> None:
    pool = EvidencePool(capacity=3)
    for index in range(5):
        pool.add(make_evidence(index))
    pool.add(make_evidence(4))
    assert len(pool) == 3 and pool.evicted == 2
    assert pool.get_pending(2) == [make_evidence(2), make_evidence(3)]
    pool.remove_included([make_evidence(3).encode()])
    assert pool.get_pending(10) == [make_evidence(2), make_evidence(4)]
    pool.remove_older_than(5)  # make_evidence(index) is from height index + 1
    assert pool.get_pending(10) == [make_evidence(4)]


def test_validator_core_puts_reported_equivocation_in_its_next_proposal() -> None:
    """validator core (n=4): a peer's two prevotes at height 1 become evidence; our own
    proposal at height 2 carries it, and committing that block empties the pool."""
    scene, proposer = first_non_proposer_scene()
    block = lock_on_a_block(scene, proposer)
    scene.vote(3, VoteType.PREVOTE, 1, block.block_id())
    scene.vote(3, VoteType.PREVOTE, 1, NIL_BLOCK_ID)
    evidence = scene.core.get_block_evidence()
    assert len(evidence) == 1 and evidence[0].validator == scene.keys[3].public_key
    for peer in (1, 2):
        scene.vote(peer, VoteType.PRECOMMIT, 1, block.block_id())
    scene.handle(NextHeightDue(2))
    assert scene.proposer_of(2, 0) == 0
    proposal = Proposal.decode(scene.sent(MessageKind.PROPOSAL)[0].data)
    assert proposal.block.evidence == (evidence[0].encode(),)
    for vote_type in (VoteType.PREVOTE, VoteType.PRECOMMIT):
        for peer in (1, 2):
            scene.vote(peer, vote_type, 2, proposal.block_id)
    assert scene.core.height == 2 and scene.core.get_block_evidence() == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_status_and_block_decoders_return_a_value_or_raise_decode_error(data: bytes) -> None:
    for decoder in (StatusMessage.decode, BlockMessage.decode, BlockRequest.decode):
        with contextlib.suppress(DecodeError):
            decoder(data)


def test_wire_messages_round_trip() -> None:
    assert StatusMessage.decode(StatusMessage(9, 2).encode()) == StatusMessage(9, 2)
    assert BlockRequest.decode(BlockRequest(9, 3).encode()) == BlockRequest(9, 3)
    leader = Scene(count=1)
    leader.start()
    block, commit = leader.disk.store.get_block(1), leader.disk.store.get_commit(1)
    assert block is not None and commit is not None
    decoded = BlockMessage.decode(BlockMessage(block, commit).encode())
    assert decoded.block.block_id() == block.block_id() and decoded.commit == commit


def test_transactions_from_peers_are_admitted_but_not_forwarded() -> None:
    scene, _ = first_non_proposer_scene()
    effects = scene.from_peer(1, MessageKind.TX, make_tx(1))
    assert effects == [] and len(scene.core.mempool) == 1
    check, _ = scene.core.submit_tx(make_tx(1))
    assert check.code == ResultCode.DUPLICATE


def test_unknown_message_kinds_and_malformed_messages_are_counted() -> None:
    scene, _ = first_non_proposer_scene()
    scene.from_peer(1, "gossip", b"x")
    scene.from_peer(1, MessageKind.STATUS, b"\x00")
    scene.from_peer(1, MessageKind.VOTE, b"\x00" * 300)
    assert scene.core.dropped == {CoreDrop.UNKNOWN_KIND: 1, CoreDrop.MALFORMED: 1,
                                  CoreDrop.OVERSIZED: 1}


def test_proposals_name_the_block_they_carry() -> None:
    """Sanity for the scene helpers: a signed proposal verifies for its round's proposer."""
    scene, proposer = first_non_proposer_scene()
    block = scene.peer_block(proposer)
    proposal = sign_raw_proposal(scene.keys[proposer], CHAIN_ID, 1, 0, -1, block)
    Proposal.decode(proposal.encode()).verify(CHAIN_ID, scene.genesis.validators)


def test_validator_core_gossips_a_client_batch_as_one_message_peers_admit_it() -> None:
    """validator core (n=4): a batch of txs goes to peers as one txs message; a peer admits
    each tx; a malformed txs message is counted and changes nothing."""
    scene = Scene()
    scene.start()
    raws = [make_tx(nonce) for nonce in range(1, 6)]
    checks, effects = scene.core.submit_txs([*raws, raws[0]])
    assert [check.ok for check in checks] == [True] * 5 + [False]
    assert len(effects) == 1 and isinstance(effects[0], Send)
    assert effects[0].kind == MessageKind.TXS and effects[0].to is None
    assert decode_txs_message(effects[0].data) == raws
    peer = Scene()
    peer.start()
    peer.from_peer(1, MessageKind.TXS, effects[0].data)
    assert len(peer.core.mempool) == 5
    peer.from_peer(1, MessageKind.TXS, encode([1, [b""]]))
    assert peer.core.dropped[CoreDrop.MALFORMED] == 1 and len(peer.core.mempool) == 5


def test_txs_messages_split_by_count_and_bytes() -> None:
    raws = [bytes([index % 256]) * 1000 for index in range(2500)]
    messages = split_txs_messages(raws)
    decoded = [decode_txs_message(message) for message in messages]
    assert [raw for batch in decoded for raw in batch] == raws
    assert all(len(batch) <= TXS_PER_MESSAGE_MAX for batch in decoded)
    assert all(len(message) <= TXS_MESSAGE_BYTES_MAX for message in messages)
