"""The validator core: one driver coupling consensus, execution, mempool, WAL and safety rules.

Theory of operation: `ValidatorCore` is what a validator *is*, minus sockets and clocks. The
networked node and the fault simulator both drive it the same way, so what the simulator
proves is what runs:

    core = ValidatorCore(key=..., engine=..., mempool=..., wal=..., signing_store=...,
                         config=ValidatorConfig(ConsensusConfig(chain_id)), clock=now_ms)
    effects = core.start()                     # or ValidatorCore.recover(...) after a crash
    effects = core.handle(MessageArrived(sender, kind, data))   # or a fired timer's event

Effects are only `Send(data, kind, to)` (to=None: every peer), `SetTimer(duration_ms,
event)` (hand `event` back to `handle` after that long) and `Committed(block, ...)`. The
core reads no clock of its own: block time comes from the `clock` callback the driver
gives it (the simulator's skewed virtual clock, the node's wall clock).

Inside, it is the driver that `seoulchain.consensus.machine` describes: every consensus
event is appended to the WAL *before* the machine sees it, every own proposal or vote is
appended (as the matching received event) before it is sent, `RequestBlock` is answered
with `Engine.prepare_proposal` over the mempool's candidates, `RequestValidation` with
`Engine.process_proposal`, and `CommitBlock` commits through the engine, updates the
mempool and, after the commit pause (CometBFT's timeout_commit; `busy_commit_pause_ms`
instead while the mempool holds transactions), starts the next height
with `engine.validators` (the set for that height). The WAL is reset at each new height,
whose predecessor is then in the block store; the new WAL starts with StartHeight and the
messages for that height that arrived early, which the machine had buffered (the reset
must not lose them: a replay without the proposal a node locked on would unlock it).

With `create_empty_blocks` off, the machine waits at round 0 for transactions: the core
feeds it `TxsAvailable` when a height starts with a non-empty mempool and when a peer's
transaction is admitted during the wait; a client's (`submit_tx`, `submit_txs`) is
reported through a `TxsAdmitted` timer of 0 ms, so admission itself never writes the WAL.

Beyond the machine, three small mechanisms keep an honest cluster live on a lossy network:

- re-send: when a gossip tick finds the validator where the previous tick left it (same
  height, round and step), it re-sends its own messages of the last `RESENT_ROUNDS_MAX`
  rounds, relays the prevotes that justify its valid value (the proof of lock a re-proposal
  names as `pol_round`, which peers that lost those votes need to accept it), and
  broadcasts a `StatusMessage`; exact repeats received are dropped before the WAL
  (`SEEN_MESSAGES_MAX` per height);
- block sync: a peer whose status shows it behind gets up to `SYNC_BLOCKS_PER_REPLY_MAX`
  stored blocks with their commits; a block arriving this way is taken only if its commit
  verifies against our validator set for that height and the block passes
  `process_proposal`;
- transactions are sent to each peer once, by the validator a client submitted them to.

A block's id is its header's hash; the header commits to the body through `tx_root`,
`evidence_root` and `last_commit_hash`. Nothing downstream may take a body on trust for a
known id (the engine caches executions by block id), so every proposal and synced block
whose body does not match its header is dropped here, before the WAL
(`is_body_consistent`).

Evidence reported by the machine is kept in a bounded `EvidencePool` and offered to the
engine with each of our proposals until a committed block carries it or it is too old to
be carried (`EVIDENCE_AGE_BLOCKS_MAX`).
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from seoulchain.codec import decode, encode
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
    TxsAvailable,
    ValidationResult,
    VoteReceived,
    decode_event,
    encode_event,
)
from seoulchain.consensus.evidence import DuplicateVoteEvidence
from seoulchain.consensus.machine import (
    FUTURE_HEIGHT_BYTES_MAX,
    FUTURE_HEIGHT_MESSAGES_MAX,
    ConsensusConfig,
    ConsensusMachine,
)
from seoulchain.consensus.messages import (
    PROPOSAL_BYTES_MAX,
    VOTE_BYTES_MAX,
    Proposal,
    Vote,
    require_height,
    require_round,
    verify_commit,
)
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.consensus.safety import SafetyRules, SigningStateStore
from seoulchain.consensus.wal import Replay, TailReport
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, LocalError, RemoteError, StorageError
from seoulchain.execution.engine import (
    EVIDENCE_AGE_BLOCKS_MAX,
    EVIDENCE_PER_BLOCK_MAX,
    CommittedBlock,
    Engine,
    TxCheck,
)
from seoulchain.ledger.types import (
    BLOCK_BYTES_MAX,
    FORMAT_VERSION,
    TX_BYTES_MAX,
    VALIDATORS_MAX,
    Block,
    Commit,
    Height,
    Round,
    VoteType,
    find_body_defect,
    require_array,
    require_version,
)
from seoulchain.node.mempool import Mempool

# CometBFT's timeout_commit default: the pause after a commit before the next height starts,
# which gathers late precommits and sets the block rate when the chain is idle.
COMMIT_PAUSE_MS = 1000
# The pause when transactions are waiting in the mempool: long enough to gather the late
# precommits of a local network, short enough that a loaded chain is not held back by it.
BUSY_COMMIT_PAUSE_MS = 100
# Below the smallest consensus timeout (prevote/precommit, 1000 ms), so a validator stuck
# for lack of a lost message re-sends before its peers give up on the round.
GOSSIP_INTERVAL_MS = 1000
# Own messages re-sent when stuck: this round's and the previous one's, enough for a peer
# one round behind to reach the 2f + 1 it lacks or to skip rounds (paper line 55).
RESENT_ROUNDS_MAX = 2
# Distinct proposals and votes remembered per height to drop exact repeats before the WAL:
# three messages per validator per round for dozens of rounds at VALIDATORS_MAX.
SEEN_MESSAGES_MAX = 16_384
# Prevotes kept per (round, block id) for relaying a proof of lock, and buckets per height:
# a bucket holds at most one vote per validator (twice that if validators equivocate).
POL_VOTES_PER_BUCKET_MAX = 2 * VALIDATORS_MAX
POL_BUCKETS_MAX = 1024
# Next-height messages carried over the WAL reset: what the machine buffers for that height.
CARRIED_MESSAGES_MAX = FUTURE_HEIGHT_MESSAGES_MAX
CARRIED_BYTES_MAX = FUTURE_HEIGHT_BYTES_MAX
# Block sync: blocks per request (one window), windows in flight (spread over the peers
# that have them), gossip ticks an unanswered request waits before it goes to another peer,
# and ticks without a synced block after which a syncing validator rejoins consensus.
SYNC_WINDOW_BLOCKS = 16
SYNC_WINDOWS_MAX = 4
SYNC_REQUEST_TICKS = 2
SYNC_STALL_TICKS = 3
# Synced blocks held ahead of the next height, by encoded size: windows arrive out of order.
SYNC_BUFFER_BYTES_MAX = 64 * 1024 * 1024
# Peers whose reported heights are remembered (each validator of three consecutive sets).
PEER_HEIGHTS_MAX = 3 * VALIDATORS_MAX
# Evidence kept until committed; far more than f validators can produce between blocks.
EVIDENCE_POOL_MAX = 256
# Consensus events one input may cause (answers to RequestBlock/RequestValidation and the
# next StartHeight); each answer is one event, so a handful suffices.
INTERNAL_EVENTS_PER_INPUT_MAX = 64
# Transactions gossiped in one message: what one API batch admits, within a quarter of the
# transport's frame limit.
TXS_PER_MESSAGE_MAX = 1000
TXS_MESSAGE_BYTES_MAX = 2 * 1024 * 1024
# A status or a block request is three small integers.
STATUS_BYTES_MAX = 64
# A synced block and its commit (at most VALIDATORS_MAX signatures of about 100 bytes).
BLOCK_MESSAGE_BYTES_MAX = BLOCK_BYTES_MAX + 64 * 1024
# Transactions and bytes a block carries by default (the node's ChainConfig defaults):
# half the protocol's BLOCK_TXS_MAX and BLOCK_BYTES_MAX, leaving headroom for the rest.
BLOCK_TXS_DEFAULT = 5000
BLOCK_TX_BYTES_DEFAULT = 4 * 1024 * 1024


class MessageKind(enum.StrEnum):
    """What a peer message carries; the transport frames it beside the bytes."""

    PROPOSAL = "proposal"
    VOTE = "vote"
    TX = "tx"
    STATUS = "status"
    BLOCK = "block"
    BLOCK_REQUEST = "block_request"
    TXS = "txs"


class CoreDrop:
    """Why the core dropped an input before the machine: keys of `ValidatorCore.dropped`."""

    REPEAT = "repeat"
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    UNKNOWN_KIND = "unknown_kind"
    INCONSISTENT_BODY = "inconsistent_body"
    SYNC_NOT_NEXT = "sync_not_next"
    SYNC_STALE = "sync_stale"
    SYNC_BUFFER_FULL = "sync_buffer_full"
    SYNC_INVALID = "sync_invalid"
    STALE_TIMER = "stale_timer"
    STALE_MESSAGE = "stale_message"
    FUTURE_MESSAGE = "future_message"
    SYNCING = "syncing"


# ------------------------------------------------------------------------------ wire


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """Where a validator is: the height it works on and its round there."""

    height: Height
    round: Round
    version: int = FORMAT_VERSION

    def encode(self) -> bytes:
        return encode([self.version, self.height, self.round])

    @classmethod
    def decode(cls, data: bytes) -> StatusMessage:
        """Decode a status, or raise `DecodeError`."""
        fields = require_array(decode(data, STATUS_BYTES_MAX), "status", 3)
        require_version(fields[0], "status")
        return cls(require_height(fields[1], "status height"),
                   require_round(fields[2], "status round"), fields[0])


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Ask one peer for the committed blocks `start` .. `start + count - 1` it holds."""

    start: Height
    count: int
    version: int = FORMAT_VERSION

    def encode(self) -> bytes:
        return encode([self.version, self.start, self.count])

    @classmethod
    def decode(cls, data: bytes) -> BlockRequest:
        """Decode a block request, or raise `DecodeError`."""
        fields = require_array(decode(data, STATUS_BYTES_MAX), "block request", 3)
        require_version(fields[0], "block request")
        start = require_height(fields[1], "block request start")
        count = fields[2]
        if type(count) is not int or not 1 <= count <= SYNC_WINDOW_BLOCKS:
            raise DecodeError(f"block request count must be 1..{SYNC_WINDOW_BLOCKS}")
        return cls(start, count, fields[0])


def encode_txs_message(raws: Sequence[bytes]) -> bytes:
    """Encode transactions for gossip as one message (a CBOR array of tx bytes)."""
    return encode([FORMAT_VERSION, list(raws)])


def decode_txs_message(data: bytes) -> list[bytes]:
    """Decode a gossiped batch of transactions, or raise `DecodeError`."""
    fields = require_array(decode(data, TXS_MESSAGE_BYTES_MAX), "txs message", 2)
    require_version(fields[0], "txs message")
    raws = fields[1]
    if (type(raws) is not list or len(raws) > TXS_PER_MESSAGE_MAX
            or not all(type(raw) is bytes and 0 < len(raw) <= TX_BYTES_MAX for raw in raws)):
        raise DecodeError(f"txs message must hold 1..{TXS_PER_MESSAGE_MAX} transactions of "
                          f"at most {TX_BYTES_MAX} bytes")
    return raws


def split_txs_messages(raws: Sequence[bytes]) -> list[bytes]:
    """Encode `raws` as as few gossip messages as the count and byte bounds allow."""
    messages: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for raw in raws:
        if batch and (len(batch) == TXS_PER_MESSAGE_MAX
                      or size + len(raw) + 16 > TXS_MESSAGE_BYTES_MAX - 64):
            messages.append(encode_txs_message(batch))
            batch, size = [], 0
        batch.append(raw)
        size += len(raw) + 16
    if batch:
        messages.append(encode_txs_message(batch))
    return messages


@dataclass(frozen=True, slots=True)
class BlockMessage:
    """A committed block with the commit that proves it, for a peer catching up."""

    block: Block
    commit: Commit
    version: int = FORMAT_VERSION

    def encode(self) -> bytes:
        return encode([self.version, self.block.to_cbor(), self.commit.to_cbor()])

    @classmethod
    def decode(cls, data: bytes) -> BlockMessage:
        """Decode a block message, or raise `DecodeError`."""
        fields = require_array(decode(data, BLOCK_MESSAGE_BYTES_MAX), "block message", 3)
        require_version(fields[0], "block message")
        return cls(Block.from_cbor(fields[1]), Commit.from_cbor(fields[2]), fields[0])


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True)
class MessageArrived:
    """A peer (named by the public key the transport authenticated) sent `data`."""

    sender: bytes
    kind: str
    data: bytes


@dataclass(frozen=True, slots=True)
class GossipDue:
    """The gossip timer fired: re-send if stuck since the last one."""


@dataclass(frozen=True, slots=True)
class NextHeightDue:
    """The commit pause is over: start `height`."""

    height: Height


@dataclass(frozen=True, slots=True)
class TxsAdmitted:
    """A client's transactions entered the mempool: end a wait for them (set by `submit_*`,
    which themselves never touch the WAL or the machine)."""


TimerEvent = TimeoutFired | GossipDue | NextHeightDue | TxsAdmitted
Input = MessageArrived | TimerEvent


# ------------------------------------------------------------------------------ effects


@dataclass(frozen=True, slots=True)
class Send:
    """Send `data` of `kind` to the peer `to` (a public key), or to every peer if None."""

    data: bytes
    kind: str
    to: bytes | None = None


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Hand `event` back to `ValidatorCore.handle` after `duration_ms`; never cancelled."""

    duration_ms: int
    event: TimerEvent


@dataclass(frozen=True, slots=True)
class Committed:
    """`block` is in the store, proven by `commit`; `result` holds its execution."""

    block: Block
    commit: Commit
    result: CommittedBlock


Effect = Send | SetTimer | Committed


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """An outstanding block request: to whom, at which gossip tick, and its last height."""

    peer: bytes
    tick: int
    last: int


class WalWriter(Protocol):
    """The appending side of a write-ahead log (`node.wal.WriteAheadLog` or in memory)."""

    def append(self, payload: bytes, *, sync: bool = True) -> None: ...

    def reset(self) -> None: ...


Clock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class ValidatorConfig:
    """Consensus parameters plus the driver's own: commit pause, gossip, block size."""

    consensus: ConsensusConfig
    commit_pause_ms: int = COMMIT_PAUSE_MS
    busy_commit_pause_ms: int = BUSY_COMMIT_PAUSE_MS
    gossip_interval_ms: int = GOSSIP_INTERVAL_MS
    block_txs_max: int = BLOCK_TXS_DEFAULT
    block_tx_bytes_max: int = BLOCK_TX_BYTES_DEFAULT


@dataclass(frozen=True, slots=True)
class Recovery:
    """A core rebuilt after a crash, the effects to carry out, and what the WAL replay found."""

    core: ValidatorCore
    effects: list[Effect]
    tail: TailReport
    replayed_events: int


def decode_consensus_message(kind: MessageKind, data: bytes) -> Proposal | Vote | None:
    """Decode a proposal or vote, or return None if the bytes are not one."""
    try:
        return Proposal.decode(data) if kind == MessageKind.PROPOSAL else Vote.decode(data)
    except DecodeError:
        return None


def is_body_consistent(block: Block) -> bool:
    """Return True if the block's txs, evidence and last commit are those its header names."""
    return find_body_defect(block) is None


# ------------------------------------------------------------------------------ evidence


class EvidencePool:
    """Duplicate-vote evidence awaiting a block, bounded, oldest evicted first."""

    def __init__(self, capacity: int = EVIDENCE_POOL_MAX) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, DuplicateVoteEvidence] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, evidence: DuplicateVoteEvidence) -> None:
        """Keep `evidence` (once), evicting the oldest when full."""
        self._items[evidence.hash()] = evidence
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.evicted += 1

    def get_pending(self, count_max: int) -> list[DuplicateVoteEvidence]:
        """Return up to `count_max` pieces of evidence, oldest first."""
        return list(self._items.values())[:count_max]

    def remove_included(self, encoded: Sequence[bytes]) -> None:
        """Forget evidence that a committed block carries (as encoded bytes)."""
        for item in encoded:
            self._items.pop(sha256(item), None)

    def remove_older_than(self, height: int) -> None:
        """Forget evidence from heights below `height`: no block may carry it any more."""
        for key, evidence in list(self._items.items()):
            if evidence.vote_a.height < height:
                del self._items[key]


# ------------------------------------------------------------------------------ core


class ValidatorCore:
    """One validator: consensus machine, engine, mempool, WAL and safety rules, sans I/O."""

    def __init__(self, *, key: SigningKey, engine: Engine, mempool: Mempool, wal: WalWriter,
                 signing_store: SigningStateStore, config: ValidatorConfig, clock: Clock,
                 safety: SafetyRules | None = None) -> None:
        if config.consensus.chain_id != engine.chain_id:
            raise LocalError("consensus config and engine are for different chains")
        self.key = key
        self.engine = engine
        self.mempool = mempool
        self.wal = wal
        self.config = config
        self.clock = clock
        safety = safety or SafetyRules(key, engine.chain_id, signing_store)
        if safety.public_key != key.public_key:
            raise LocalError("safety rules hold another validator's key")
        self.machine = ConsensusMachine(config.consensus, safety)
        self.evidence = EvidencePool()
        self.dropped: Counter[str] = Counter()
        self.synced_blocks = 0
        self._own: dict[tuple[int, int], Send] = {}
        self._seen: set[bytes] = set()
        self._prevotes: dict[tuple[int, bytes], list[bytes]] = {}
        self._carried: list[tuple[MessageKind, bytes]] = []
        self._carried_bytes = 0
        self._last_commit: Commit | None = None
        self._progress_mark: tuple[int, ...] | None = None
        self._replaying = False
        self._replayed_payloads: frozenset[bytes] = frozenset()
        self._pending_blocks: dict[tuple[int, int], RequestBlock] = {}
        self._pending_validations: dict[bytes, RequestValidation] = {}
        self._pending_commit: CommitBlock | None = None
        self._started = False
        # Block sync (see _request_blocks): peers' reported heights, windows asked for by
        # window index, blocks received ahead of the next height, gossip ticks.
        self._syncing = False
        self._peer_heights: dict[bytes, int] = {}
        self._requests: dict[int, SyncRequest] = {}
        self._sync_buffer: dict[int, tuple[BlockMessage, int]] = {}
        self._sync_buffer_bytes = 0
        self._tick = 0
        self._sync_progress_tick = 0
        self._rotation = 0
        self.sync_requests = 0
        # The height whose start waits out the idle commit pause: the first transaction
        # admitted meanwhile brings its start forward to the busy pause.
        self._idle_pause_height: int | None = None
        # A `TxsAdmitted` timer is set and not yet handled (one is enough).
        self._txs_notice_pending = False

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    @property
    def height(self) -> int:
        """Height of the last committed block."""
        return self.engine.height

    @property
    def syncing(self) -> bool:
        """True while catching up by block sync, outside consensus."""
        return self._syncing

    @property
    def working_height(self) -> int:
        """The height this validator works on: its consensus height, or the next to sync."""
        return self.engine.height + 1 if self._syncing else self.machine.height

    # -------------------------------------------------------------------- start, recover

    @classmethod
    def recover(cls, *, key: SigningKey, engine: Engine, mempool: Mempool, wal: WalWriter,
                replay: Replay, signing_store: SigningStateStore, config: ValidatorConfig,
                clock: Clock, safety: SafetyRules | None = None) -> Recovery:
        """Rebuild a validator after a crash from its store (in `engine`), WAL and signing store.

        `replay` is the WAL's intact prefix with the report on its cut-off tail
        (`node.wal.replay(path)` for a file); `wal` must continue after that prefix.
        """
        core = cls(key=key, engine=engine, mempool=mempool, wal=wal,
                   signing_store=signing_store, config=config, clock=clock, safety=safety)
        effects = core.start(replay.payloads)
        return Recovery(core, effects, replay.tail, len(replay.payloads))

    def start(self, wal_payloads: Sequence[bytes] = ()) -> list[Effect]:
        """Start at the height after the store's tip, replaying the WAL if it is for that height."""
        if self._started:
            raise LocalError("the validator core is already started")
        self._started = True
        effects: list[Effect] = []
        if self.engine.height > 0:
            self._last_commit = self.engine.store.get_commit(self.engine.height)
            if self._last_commit is None:
                raise StorageError(f"the commit of stored height {self.engine.height} is missing")
        events = [self._decode_wal_payload(payload) for payload in wal_payloads]
        next_height = self.engine.height + 1
        first = events[0] if events else None
        if first is not None and not isinstance(first, StartHeight):
            raise StorageError("the consensus WAL does not begin with StartHeight")
        if first is not None and first.height > next_height:
            raise StorageError(f"the consensus WAL is at height {first.height}, ahead of the "
                               f"block store's next height {next_height}")
        if first is not None and first.height == next_height:
            self._replay(events, frozenset(wal_payloads), effects)
        else:  # no WAL, or one for a height the store already holds
            self._start_height(Height(next_height), effects)
        self._notify_txs_available(effects)
        effects.append(SetTimer(self.config.gossip_interval_ms, GossipDue()))
        return effects

    @staticmethod
    def _decode_wal_payload(payload: bytes) -> Event:
        try:
            return decode_event(payload)
        except DecodeError as exc:
            raise StorageError(f"the consensus WAL holds an undecodable event: {exc}") from exc

    def _replay(self, events: list[Event], payloads: frozenset[bytes],
                effects: list[Effect]) -> None:
        """Feed the WAL's events again; answer requests the WAL shows unanswered afterwards."""
        self._replaying, self._replayed_payloads = True, payloads
        try:
            for event in events:
                match event:
                    case ProposalValueReady(height, round_, _):
                        self._pending_blocks.pop((height, round_), None)
                    case ValidationResult(_, block_id, _):
                        self._pending_validations.pop(block_id, None)
                    case ProposalReceived(data):
                        self._note_replayed(MessageKind.PROPOSAL, data)
                    case VoteReceived(data):
                        self._note_replayed(MessageKind.VOTE, data)
                self._feed(event, effects)
        finally:
            self._replaying, self._replayed_payloads = False, frozenset()
        pending_commit, self._pending_commit = self._pending_commit, None
        if pending_commit is not None:
            self._commit(pending_commit.block, pending_commit.commit, effects)
            self._start_height(Height(pending_commit.block.height + 1), effects)
            return
        answers: list[Event] = []
        for request in self._pending_blocks.values():
            if (request.height, request.round) == (self.machine.height, self.machine.round):
                answers.append(self._answer_block_request(request))
        for validation in self._pending_validations.values():
            if validation.height == self.machine.height:
                answers.append(self._answer_validation(validation))
        self._pending_blocks.clear()
        self._pending_validations.clear()
        for answer in answers:
            self._feed(answer, effects)

    def _note_replayed(self, kind: MessageKind, data: bytes) -> None:
        """Rebuild what the core keeps beside the machine for a message the WAL replays."""
        self._remember_seen(data)
        message = decode_consensus_message(kind, data)
        if message is None:
            return
        self._note_message(kind, data, message)
        self._remember_if_own(kind, data, message)

    def _remember_if_own(self, kind: MessageKind, data: bytes,
                         message: Proposal | Vote) -> None:
        """Keep a replayed message of our own for re-sending, as if we had just sent it.

        The safety rules refuse to sign again anything below the last signed step, so an own
        vote the WAL restores may never come back as a broadcast; peers that lost it still
        need it.
        """
        if isinstance(message, Vote):
            # A late vote of ours for the previous height is in this WAL too: not for re-sending.
            if (message.validator == self.public_key
                    and message.height == self.engine.height + 1):
                self._own[(message.round, message.vote_type)] = Send(data, kind)
            return
        validators = self.engine.validators
        if (message.height == self.engine.height + 1 and compute_proposer(
                validators, message.height, message.round).public_key == self.public_key):
            self._own[(message.round, 0)] = Send(data, kind)

    # -------------------------------------------------------------------- inputs

    def handle(self, event: Input) -> list[Effect]:
        """Apply one input (a peer message or a fired timer); return the effects, in order."""
        if not self._started:
            raise LocalError("start (or recover) the validator core before handling inputs")
        effects: list[Effect] = []
        match event:
            case MessageArrived(sender, kind, data):
                self._on_message(sender, kind, data, effects)
            case TimeoutFired(_, height, round_):
                if (self._syncing or height != self.machine.height
                        or round_ != self.machine.round or self._is_decided()):
                    self.dropped[CoreDrop.STALE_TIMER] += 1  # the machine would ignore it
                else:
                    self._feed(event, effects)
            case GossipDue():
                self._on_gossip_due(effects)
            case NextHeightDue(height):
                self._on_next_height_due(height, effects)
            case TxsAdmitted():
                self._txs_notice_pending = False
                self._notify_txs_available(effects)
            case _:
                raise LocalError(f"not a validator input: {type(event).__name__}")
        return effects

    def submit_tx(self, raw: bytes) -> tuple[TxCheck, list[Effect]]:
        """Admit a client's transaction and send it to every peer once; return the check."""
        check = self.mempool.add(raw)
        effects: list[Effect] = []
        if check.ok:
            effects.append(Send(raw, MessageKind.TX))
            self._on_client_txs_admitted(effects)
        return check, effects

    def submit_txs(self, raws: Sequence[bytes]) -> tuple[list[TxCheck], list[Effect]]:
        """Admit a client's batch; send the admitted ones to every peer once, batched."""
        checks = [self.mempool.add(raw) for raw in raws]
        admitted = [raw for raw, check in zip(raws, checks, strict=True) if check.ok]
        effects: list[Effect] = [Send(data, MessageKind.TXS)
                                 for data in split_txs_messages(admitted)]
        if admitted:
            self._on_client_txs_admitted(effects)
        return checks, effects

    def receive_txs(self, raws: Sequence[bytes]) -> list[Effect]:
        """Admit the transactions of a peer's decoded `txs` message; return the effects."""
        effects: list[Effect] = []
        if [raw for raw in raws if self.mempool.add(raw).ok]:
            self._on_txs_admitted(effects)
        return effects

    def _on_txs_admitted(self, effects: list[Effect]) -> None:
        """Transactions entered the mempool: end an idle commit pause or a wait for them."""
        self._end_idle_pause(effects)
        self._notify_txs_available(effects)

    def _on_client_txs_admitted(self, effects: list[Effect]) -> None:
        """As `_on_txs_admitted`, but a wait for transactions ends through `TxsAdmitted`
        handed back at once: admitting a client's transaction writes nothing to the WAL."""
        self._end_idle_pause(effects)
        if self.machine.is_waiting_for_txs and not self._txs_notice_pending:
            self._txs_notice_pending = True
            effects.append(SetTimer(0, TxsAdmitted()))

    def _notify_txs_available(self, effects: list[Effect]) -> None:
        """Feed `TxsAvailable` if round 0 waits for transactions and the mempool has some."""
        if not self._syncing and self.machine.is_waiting_for_txs and len(self.mempool):
            self._feed(TxsAvailable(self.machine.height), effects)

    def _end_idle_pause(self, effects: list[Effect]) -> None:
        """A transaction arrived during an idle commit pause: start the next height after
        the busy pause instead (the idle pause's own timer then finds it started)."""
        height = self._idle_pause_height
        if height is not None and height == self.engine.height + 1 and self._is_decided():
            self._idle_pause_height = None
            effects.append(SetTimer(self._get_commit_pause_ms(), NextHeightDue(Height(height))))

    def _on_message(self, sender: bytes, kind: str, data: bytes,
                    effects: list[Effect]) -> None:
        if kind == MessageKind.PROPOSAL or kind == MessageKind.VOTE:
            self._on_consensus_message(MessageKind(kind), data, effects)
        elif kind == MessageKind.TX:
            if self.mempool.add(data).ok:
                self._on_txs_admitted(effects)
        elif kind == MessageKind.TXS:
            try:
                raws = decode_txs_message(data)
            except DecodeError:
                self.dropped[CoreDrop.MALFORMED] += 1
                return
            effects.extend(self.receive_txs(raws))
        elif kind == MessageKind.STATUS:
            try:
                status = StatusMessage.decode(data)
            except DecodeError:
                self.dropped[CoreDrop.MALFORMED] += 1
                return
            self._on_status(sender, status, effects)
        elif kind == MessageKind.BLOCK:
            try:
                message = BlockMessage.decode(data)
            except DecodeError:
                self.dropped[CoreDrop.MALFORMED] += 1
                return
            self._on_block_message(message, len(data), effects)
        elif kind == MessageKind.BLOCK_REQUEST:
            try:
                request = BlockRequest.decode(data)
            except DecodeError:
                self.dropped[CoreDrop.MALFORMED] += 1
                return
            self._on_block_request(sender, request, effects)
        else:
            self.dropped[CoreDrop.UNKNOWN_KIND] += 1

    def _remember_seen(self, data: bytes) -> bool:
        """Return False if `data` was already fed at this height; else remember it (bounded)."""
        key = data if len(data) <= VOTE_BYTES_MAX else sha256(data)
        if key in self._seen:
            return False
        if len(self._seen) < SEEN_MESSAGES_MAX:
            self._seen.add(key)
        return True

    def _on_consensus_message(self, kind: MessageKind, data: bytes,
                              effects: list[Effect]) -> None:
        """Check a peer's proposal or vote (size, repeat, shape, body) and feed it."""
        limit = PROPOSAL_BYTES_MAX if kind == MessageKind.PROPOSAL else VOTE_BYTES_MAX
        if len(data) > limit:
            self.dropped[CoreDrop.OVERSIZED] += 1
            return
        if not self._remember_seen(data):
            self.dropped[CoreDrop.REPEAT] += 1
            return
        message = decode_consensus_message(kind, data)
        if message is None:
            self.dropped[CoreDrop.MALFORMED] += 1
            return
        if self._syncing:
            self.dropped[CoreDrop.SYNCING] += 1
            return
        # What the machine would drop is dropped here, before it costs a WAL write.
        if message.height < self.machine.height or (message.height == self.machine.height
                                                    and self._is_decided()):
            self.dropped[CoreDrop.STALE_MESSAGE] += 1
            return
        if message.height > self.machine.height + 1:
            self.dropped[CoreDrop.FUTURE_MESSAGE] += 1
            return
        if isinstance(message, Proposal) and not is_body_consistent(message.block):
            self.dropped[CoreDrop.INCONSISTENT_BODY] += 1
            return
        self._note_message(kind, data, message)
        retryable = self.machine.retryable_drops
        self._feed(ProposalReceived(data) if kind == MessageKind.PROPOSAL
                   else VoteReceived(data), effects)
        if self.machine.retryable_drops != retryable:  # not taken yet: let a re-send in
            self._seen.discard(data if len(data) <= VOTE_BYTES_MAX else sha256(data))

    def _is_decided(self) -> bool:
        """True between committing the machine's height and starting the next one."""
        return self.engine.height == self.machine.height

    def _note_message(self, kind: MessageKind, data: bytes, message: Proposal | Vote) -> None:
        """Carry a next-height message over the WAL reset; index a current-height prevote."""
        if message.height == self.machine.height + 1:
            if (len(self._carried) < CARRIED_MESSAGES_MAX
                    and self._carried_bytes + len(data) <= CARRIED_BYTES_MAX):
                self._carried.append((kind, data))
                self._carried_bytes += len(data)
        elif message.height == self.machine.height and isinstance(message, Vote):
            self._index_prevote(message, data)

    def _index_prevote(self, vote: Vote, data: bytes) -> None:
        """Index a prevote for a block by (round, block id), for relaying proofs of lock."""
        if vote.vote_type != VoteType.PREVOTE or vote.is_nil:
            return
        key = (vote.round, vote.block_id)
        bucket = self._prevotes.get(key)
        if bucket is None:
            if len(self._prevotes) >= POL_BUCKETS_MAX:
                return
            bucket = self._prevotes[key] = []
        if len(bucket) < POL_VOTES_PER_BUCKET_MAX and data not in bucket:
            bucket.append(data)

    # -------------------------------------------------------------------- the machine

    def _feed(self, event: Event, effects: list[Effect], *, logged: bool = False) -> None:
        """Log `event` (unless replaying it or `logged`), hand it to the machine, carry out
        the actions.

        Events the actions produce (a built block, a verdict) are fed after the current
        action list is carried out, in order, each logged first.
        """
        queue: deque[Event] = deque([event])
        for _ in range(INTERNAL_EVENTS_PER_INPUT_MAX):
            if not queue:
                return
            current = queue.popleft()
            if not self._replaying and not (logged and current is event):
                # Not synced: inputs become durable with the next own message (see _send_own).
                self.wal.append(encode_event(current), sync=False)
            for action in self.machine.on_event(current):
                self._carry_out(action, queue, effects)
        raise AssertionError("one input caused more internal events than the limit")

    def _carry_out(self, action: Action, queue: deque[Event], effects: list[Effect]) -> None:
        match action:
            case BroadcastProposal(proposal):
                data = proposal.encode()
                self._send_own(proposal, ProposalReceived(data), (proposal.round, 0),
                               Send(data, MessageKind.PROPOSAL), effects)
            case BroadcastVote(vote):
                data = vote.encode()
                self._send_own(vote, VoteReceived(data), (vote.round, vote.vote_type),
                               Send(data, MessageKind.VOTE), effects)
            case ScheduleTimeout(kind, height, round_, duration_ms):
                effects.append(SetTimer(duration_ms, TimeoutFired(kind, height, round_)))
            case RequestBlock():
                if self._replaying:
                    self._pending_blocks[(action.height, action.round)] = action
                else:
                    queue.append(self._answer_block_request(action))
            case RequestValidation(_, block):
                if self._replaying:
                    self._pending_validations[block.block_id()] = action
                else:
                    queue.append(self._answer_validation(action))
            case CommitBlock(block, commit):
                if self._replaying:
                    self._pending_commit = action
                else:
                    self._commit(block, commit, effects)
                    pause = self._get_commit_pause_ms()
                    if pause == self.config.commit_pause_ms:
                        self._idle_pause_height = block.height + 1
                    effects.append(SetTimer(pause, NextHeightDue(Height(block.height + 1))))
            case ReportEvidence(evidence):
                self.evidence.add(evidence)

    def _get_commit_pause_ms(self) -> int:
        """The pause before the next height: shorter while transactions are waiting."""
        if len(self.mempool):
            return min(self.config.busy_commit_pause_ms, self.config.commit_pause_ms)
        return self.config.commit_pause_ms

    def _send_own(self, message: Proposal | Vote, logged: ProposalReceived | VoteReceived,
                  slot: tuple[int, int], send: Send, effects: list[Effect]) -> None:
        """Log an own message to the WAL, synced, then send it; keep it for re-sending.

        The sync is the one a height needs (as CometBFT's WriteSync of its own messages):
        it makes this message durable before anyone can see it, and with it every input
        logged before it — all that the message was decided on. Inputs logged since the last
        own message may be lost to a power cut; the node never acted on them, and peers
        re-send what it lacks.
        """
        payload = encode_event(logged)
        if not self._replaying or payload not in self._replayed_payloads:
            self.wal.append(payload, sync=True)
        self._remember_seen(logged.data)
        if isinstance(message, Vote):
            self._index_prevote(message, logged.data)
        self._own[slot] = send
        effects.append(send)

    def _answer_block_request(self, request: RequestBlock) -> ProposalValueReady:
        """Build our proposal: mempool candidates, block time from the driver's clock."""
        assert request.height == self.engine.height + 1
        candidates = self.mempool.reap(self.config.block_txs_max, self.config.block_tx_bytes_max)
        block = self.engine.prepare_proposal(
            time_ms=self.clock(), proposer=self.public_key, candidates=candidates,
            last_commit=request.last_commit, txs_max=self.config.block_txs_max,
            bytes_max=self.config.block_tx_bytes_max,
            evidence=[item.encode() for item in self.get_block_evidence()])
        return ProposalValueReady(request.height, request.round, block)

    def _answer_validation(self, request: RequestValidation) -> ValidationResult:
        """Return the application's verdict on a proposed block (process_proposal)."""
        return ValidationResult(request.height, request.block.block_id(),
                                self._is_valid_block(request.block))

    def _is_valid_block(self, block: Block) -> bool:
        try:
            self.engine.process_proposal(block)
        except RemoteError:
            return False
        return True

    def get_block_evidence(self) -> list[DuplicateVoteEvidence]:
        """Return the evidence our next proposal offers (the engine keeps what verifies)."""
        return self.evidence.get_pending(EVIDENCE_PER_BLOCK_MAX)

    # -------------------------------------------------------------------- heights

    def _commit(self, block: Block, commit: Commit, effects: list[Effect]) -> None:
        """Execute and store a decided block, then update the mempool and evidence pool."""
        assert block.height == self.engine.height + 1, "commit out of order"
        assert commit.height == block.height and commit.block_id == block.block_id()
        result = self.engine.commit(block, commit)
        assert self.engine.height == block.height
        self.mempool.update(result.execution.tx_hashes)
        self.evidence.remove_included(block.evidence)
        self.evidence.remove_older_than(block.height + 1 - EVIDENCE_AGE_BLOCKS_MAX)
        self._last_commit = commit
        effects.append(Committed(block, commit, result))

    def _start_height(self, height: Height, effects: list[Effect]) -> None:
        """Reset the WAL and start `height` with the validator set the engine holds for it.

        The new WAL begins with StartHeight followed by the messages for this height that
        arrived early (logged in the old WAL, buffered by the machine, which processes them
        inside StartHeight): without them a replay would lose a proposal the node locked on.
        Messages carried for another height (the machine's next one, when block sync moved
        past it) are dropped with the machine's buffer.
        """
        assert height == self.engine.height + 1
        # A node without a service version the chain runs from `height` stops here, before
        # it logs, proposes or votes anything of that height (UpgradeRequired is fatal).
        self.engine.check_next_height()
        self._idle_pause_height = None
        carried = self._carried if height == self.machine.height + 1 else []
        self._carried, self._carried_bytes = [], 0
        self._own.clear()
        self._seen.clear()
        self._prevotes.clear()
        event = StartHeight(height, self.engine.validators, self._last_commit)
        self.wal.reset()
        self.wal.append(encode_event(event), sync=False)
        for kind, data in carried:
            message = decode_consensus_message(kind, data)
            assert message is not None and message.height == height
            self.wal.append(encode_event(ProposalReceived(data) if kind == MessageKind.PROPOSAL
                                         else VoteReceived(data)), sync=False)
            self._remember_seen(data)
            if isinstance(message, Vote):
                self._index_prevote(message, data)
        self._feed(event, effects, logged=True)
        self._notify_txs_available(effects)  # a busy mempool does not wait

    def _on_next_height_due(self, height: Height, effects: list[Effect]) -> None:
        if self.machine.height != height - 1 or self.engine.height != height - 1:
            self.dropped[CoreDrop.STALE_TIMER] += 1  # a synced block started it already
            return
        self._start_height(height, effects)

    # -------------------------------------------------------------------- gossip and sync

    def _on_gossip_due(self, effects: list[Effect]) -> None:
        """Broadcast our status; if nothing moved since the last tick, re-send own messages
        and ask for the block we lack; while syncing, keep the block requests going."""
        self._tick += 1
        if self.engine.height + 1 in self._sync_buffer:  # consensus caught up to a kept block
            self._drain_sync_buffer(effects)
        machine = self.machine
        mark = (machine.height, machine.round, int(machine.step), self.engine.height)
        status = StatusMessage(Height(self.working_height), machine.round)
        effects.append(Send(status.encode(), MessageKind.STATUS))
        if self._syncing:
            self._on_sync_tick(effects)
        elif mark == self._progress_mark:
            oldest = machine.round - RESENT_ROUNDS_MAX + 1
            effects.extend(send for (round_, _), send in sorted(self._own.items())
                           if round_ >= oldest)
            state = machine.state
            if state.valid_block_id is not None:
                proof = self._prevotes.get((state.valid_round, state.valid_block_id), [])
                effects.extend(Send(data, MessageKind.VOTE) for data in proof)
            # Relay the votes of those rounds that we counted (the paper's gossip): a peer
            # that lacks one (an equivocator's, a withholder's sent only to us) may never get
            # the 2f + 1 that moved us on (lines 47 and 55), and would wait for us forever.
            sent = {effect.data for effect in effects if isinstance(effect, Send)}
            for round_ in range(max(0, oldest), machine.round + 1):
                for vote in machine.get_round_votes(Round(round_)):
                    if (data := vote.encode()) not in sent:
                        sent.add(data)
                        effects.append(Send(data, MessageKind.VOTE))
            self._request_blocks(effects)  # a peer one block ahead has what we wait for
        self._progress_mark = mark
        effects.append(SetTimer(self.config.gossip_interval_ms, GossipDue()))

    def _on_status(self, sender: bytes, status: StatusMessage, effects: list[Effect]) -> None:
        """Remember where a peer is; ask for blocks at once if it is two or more ahead.

        A peer one block ahead is the normal race at a commit (its precommits are on the
        way); that lag is only acted on at a tick that finds us stuck.
        """
        if sender in self._peer_heights or len(self._peer_heights) < PEER_HEIGHTS_MAX:
            self._peer_heights[sender] = status.height
        if not self._syncing and status.height - 1 >= self.engine.height + 2:
            self._request_blocks(effects)

    def _get_sync_target(self) -> int:
        """Return the highest height some peer reports as committed."""
        return max(self._peer_heights.values(), default=1) - 1

    def _request_blocks(self, effects: list[Effect]) -> None:
        """Ask peers for the committed blocks we lack, a window per request, spread over them.

        Windows are aligned (window w holds heights w*W+1 .. w*W+W), at most
        `SYNC_WINDOWS_MAX` ahead of the next height are in flight, and each goes to the next
        peer in turn among those reporting it committed. A request unanswered after
        `SYNC_REQUEST_TICKS` ticks is forgotten with the peer's report (its next status
        restores it) and asked again of another peer.
        """
        next_height = self.engine.height + 1
        for index, request in list(self._requests.items()):
            if request.last < next_height:
                del self._requests[index]
            elif self._tick - request.tick >= SYNC_REQUEST_TICKS:
                del self._requests[index]
                self._peer_heights.pop(request.peer, None)
        target = self._get_sync_target()
        if target < next_height:
            return
        first = (next_height - 1) // SYNC_WINDOW_BLOCKS
        last_window = min((target - 1) // SYNC_WINDOW_BLOCKS, first + SYNC_WINDOWS_MAX - 1)
        for index in range(first, last_window + 1):
            if index in self._requests:
                continue
            start = max(index * SYNC_WINDOW_BLOCKS + 1, next_height)
            holders = sorted(peer for peer, height in self._peer_heights.items()
                             if height - 1 >= start)
            if not holders:
                break
            peer = holders[self._rotation % len(holders)]
            self._rotation += 1
            last = min(index * SYNC_WINDOW_BLOCKS + SYNC_WINDOW_BLOCKS,
                       self._peer_heights[peer] - 1)
            self._requests[index] = SyncRequest(peer, self._tick, last)
            self.sync_requests += 1
            request = BlockRequest(Height(start), last - start + 1)
            effects.append(Send(request.encode(), MessageKind.BLOCK_REQUEST, to=peer))

    def _on_block_request(self, sender: bytes, request: BlockRequest,
                          effects: list[Effect]) -> None:
        """Send a peer the requested committed blocks we hold, with their commits."""
        last = min(self.engine.height, request.start + request.count - 1)
        for height in range(request.start, last + 1):
            block = self.engine.store.get_block(height)
            commit = self.engine.store.get_commit(height)
            if block is None or commit is None:
                continue  # below a state-synced store's first block: not ours to serve
            effects.append(Send(BlockMessage(block, commit).encode(), MessageKind.BLOCK,
                                to=sender))

    def _on_block_message(self, message: BlockMessage, size: int,
                          effects: list[Effect]) -> None:
        """Keep a synced block until it is our next one, then commit what checks out."""
        height = message.block.height
        next_height = self.engine.height + 1
        if height < next_height or height in self._sync_buffer:
            self.dropped[CoreDrop.SYNC_STALE] += 1
            if next_height in self._sync_buffer:  # kept before consensus reached its height
                self._drain_sync_buffer(effects)
            return
        if height >= next_height + SYNC_WINDOW_BLOCKS * SYNC_WINDOWS_MAX:
            self.dropped[CoreDrop.SYNC_NOT_NEXT] += 1
            return
        if self._sync_buffer_bytes + size > SYNC_BUFFER_BYTES_MAX and height != next_height:
            self.dropped[CoreDrop.SYNC_BUFFER_FULL] += 1
            return
        self._sync_buffer[height] = (message, size)
        self._sync_buffer_bytes += size
        if next_height in self._sync_buffer:
            self._drain_sync_buffer(effects)

    def _drain_sync_buffer(self, effects: list[Effect]) -> None:
        """Commit buffered blocks in height order; then keep syncing or rejoin consensus.

        A block is taken only if its body matches its header, its commit verifies against
        our validator set for that height, and it passes `process_proposal`; a block that
        fails is dropped and its window asked again of another peer.
        """
        committed = 0
        while (entry := self._sync_buffer.pop(self.engine.height + 1, None)) is not None:
            message, size = entry
            self._sync_buffer_bytes -= size
            if not self._is_valid_synced_block(message):
                self._requests.pop((message.block.height - 1) // SYNC_WINDOW_BLOCKS, None)
                break
            self.synced_blocks += 1
            committed += 1
            self._commit(message.block, message.commit, effects)
        for height in [height for height in self._sync_buffer if height <= self.engine.height]:
            self._sync_buffer_bytes -= self._sync_buffer.pop(height)[1]
        if not committed:
            return
        self._sync_progress_tick = self._tick
        if self._get_sync_target() > self.engine.height:
            self._syncing = True  # consensus waits until we reach the tip
            self._request_blocks(effects)
        else:
            self._rejoin_consensus(effects)

    def _is_valid_synced_block(self, message: BlockMessage) -> bool:
        block, commit = message.block, message.commit
        if not is_body_consistent(block):
            self.dropped[CoreDrop.INCONSISTENT_BODY] += 1
            return False
        try:
            verify_commit(self.engine.chain_id, self.engine.validators, commit,
                          block.block_id(), Height(block.height))
            self.engine.process_proposal(block)
        except RemoteError:
            self.dropped[CoreDrop.SYNC_INVALID] += 1
            return False
        return True

    def _on_sync_tick(self, effects: list[Effect]) -> None:
        """While syncing: rejoin consensus at the tip or when sync stalls; else ask again."""
        if (self._get_sync_target() <= self.engine.height
                or self._tick - self._sync_progress_tick >= SYNC_STALL_TICKS):
            self._rejoin_consensus(effects)
        else:
            self._request_blocks(effects)

    def _rejoin_consensus(self, effects: list[Effect]) -> None:
        """Leave block sync and start consensus at the height after the store's tip."""
        self._syncing = False
        self._requests.clear()
        self._start_height(Height(self.engine.height + 1), effects)
