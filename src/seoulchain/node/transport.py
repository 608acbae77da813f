"""Peer-to-peer transport: mutually authenticated TLS 1.3 between validators, framed messages.

Theory of operation (docs/spec/transport.md is the normative text):

- Identity is the Ed25519 validator key (see `seoulchain.node.tls`). A connection counts only
  after TLS 1.3 with both certificates verified against the pinned keys' anchors, the
  peer's certificate key re-checked against the pinned set (and, when dialing, against the
  key dialed), and a HELLO frame exchanged both ways naming the same transport version
  and network. No application frame is read before that.
- Frames: 4-byte big-endian length L, then L bytes: a 1-byte kind and the payload
  (1 <= L <= frame_bytes_max). Kinds below `KIND_APP_MIN` belong to the transport (HELLO,
  PING); the rest are the application's, handed to `receive()` untouched. A malformed or
  oversized frame is a `ProtocolError`: the peer is scored down and disconnected.
- One connection per peer pair. Both sides dial; when two connections to the same peer
  exist, the one dialed by the lower key is kept (both sides apply the same rule), except
  that a newer connection from the same dialer replaces an older one (a restarted peer).
- Sending never blocks: `send`/`broadcast` put frames in a bounded per-peer queue (frames
  and bytes) that outlives connections; when full, a kind's `DropPolicy` drops either the
  oldest queued frame of that kind or the new frame, and counts it. Delivery is
  at-most-once and in order per connection.
- Scores: every peer key and every remote address starts at `SCORE_MAX`, loses a named
  penalty for each bad handshake, malformed or oversized frame, and recovers slowly; at or
  below `SCORE_BAN_THRESHOLD` it is disconnected and refused for `ban_duration_ms`.
  Unauthenticated failures (before a pinned key is known) are charged to the address.
- Everything a peer can cause ends in a counted reason (`TransportStats`), never in an
  exception escaping a task: a misbehaving peer costs one connection, not the node.

The pure parts (frame codec, send queue, score book, backoff) carry no I/O and are tested
on their own; `Transport` is the asyncio shell around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import ssl
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from seoulchain.codec import decode, encode
from seoulchain.crypto import PUBLIC_KEY_BYTES, SigningKey
from seoulchain.errors import DecodeError, LocalError, RemoteError
from seoulchain.ledger.types import BLOCK_BYTES_MAX
from seoulchain.node.tls import PeerIdentityError, get_peer_key, make_context

log = logging.getLogger("seoulchain.node.transport")

# Wire format version carried in HELLO; a peer speaking another version is refused.
TRANSPORT_VERSION = 1
FRAME_HEADER_BYTES = 4
FRAME_KIND_BYTES = 1
FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + FRAME_KIND_BYTES
# The largest message is a synced block with its commit (validator.BLOCK_MESSAGE_BYTES_MAX
# = BLOCK_BYTES_MAX + 64 KiB) or a proposal (BLOCK_BYTES_MAX + 256); 128 KiB of room.
FRAME_BYTES_MAX = BLOCK_BYTES_MAX + 128 * 1024
KIND_HELLO = 0x00
KIND_PING = 0x01
# Kinds 0x00-0x0F are reserved for the transport; the application owns 0x10-0xFF.
KIND_APP_MIN = 0x10
KIND_MAX = 0xFF
# HELLO is [version, network id]; a chain id is at most 64 characters.
HELLO_BYTES_MAX = 256
# Per-peer send queue: a few seconds of consensus traffic plus a burst of transactions
# (each tx is sent to each peer once); payloads are shared between queues, not copied.
SEND_QUEUE_FRAMES_MAX = 4096
# Room for two largest frames, so a block sync reply never starves a proposal.
SEND_QUEUE_BYTES_MAX = 2 * FRAME_BYTES_MAX
# Received frames waiting for the application; when full, readers stop reading (TCP
# back-pressure on the senders) instead of dropping.
RECEIVE_QUEUE_FRAMES_MAX = 4096
READ_CHUNK_BYTES = 64 * 1024
CONNECT_TIMEOUT_MS = 3_000
# TLS plus HELLO; Ed25519 handshakes take well under a millisecond of CPU.
HANDSHAKE_TIMEOUT_MS = 5_000
# A connection silent this long is dead (a crashed host leaves no FIN behind).
IDLE_TIMEOUT_MS = 30_000
# A PING goes out after this long without sending anything: a third of the idle timeout.
KEEPALIVE_INTERVAL_MS = 10_000
# A peer that reads nothing for this long is disconnected; its queue keeps filling/dropping.
WRITE_TIMEOUT_MS = 15_000
# How long a graceful TLS close may wait for the peer before the socket is aborted.
CLOSE_TIMEOUT_MS = 1_000
# Redial backoff: min * 2**attempt capped at max, with "equal jitter" (half fixed, half random).
DIAL_BACKOFF_MIN_MS = 250
DIAL_BACKOFF_MAX_MS = 30_000
# Unauthenticated inbound handshakes in flight; more are refused before TLS (a cheap DoS bound).
HANDSHAKES_PENDING_MAX = 64
# Scores: start full, recover one point a second, banned at or below the threshold.
SCORE_MAX = 100
SCORE_BAN_THRESHOLD = 0
# After a ban a peer starts half-forgiven, so a repeat offender is banned again sooner.
SCORE_AFTER_BAN = SCORE_MAX // 2
SCORE_RECOVERY_PER_S = 1.0
BAN_DURATION_MS = 10 * 60_000
# Addresses remembered by the score book (least recently penalised forgotten first).
SCORE_ENTRIES_MAX = 4096


class ProtocolError(RemoteError):
    """A peer sent bytes that break the transport protocol; the peer is disconnected."""


class FrameTooLargeError(ProtocolError):
    """A frame header announced more than the frame size limit."""


class HelloError(ProtocolError):
    """A peer's HELLO names another transport version or network."""


class DropPolicy(enum.Enum):
    """What a full send queue gives up for a new frame of a kind."""

    OLDEST = "drop-oldest"
    NEWEST = "drop-newest"


class Reason(enum.StrEnum):
    """Why a frame was dropped, a connection refused or a connection closed."""

    ADDRESS_BANNED = "address_banned"
    HANDSHAKES_BUSY = "handshakes_busy"
    DIAL_FAILED = "dial_failed"
    HANDSHAKE_FAILED = "handshake_failed"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HANDSHAKE_CLOSED = "handshake_closed"
    REJECTED_BY_PEER = "rejected_by_peer"
    UNKNOWN_KEY = "unknown_key"
    WRONG_KEY = "wrong_key"
    SELF = "self"
    BANNED = "banned"
    BAD_HELLO = "bad_hello"
    DUPLICATE = "duplicate"
    MALFORMED_FRAME = "malformed_frame"
    OVERSIZED_FRAME = "oversized_frame"
    IDLE_TIMEOUT = "idle_timeout"
    WRITE_TIMEOUT = "write_timeout"
    CLOSED_BY_PEER = "closed_by_peer"
    REPLACED = "replaced"
    PENALIZED = "penalized"
    UNTRUSTED = "untrusted"
    STOPPED = "stopped"
    INTERNAL_ERROR = "internal_error"
    QUEUE_FULL_OLDEST = "queue_full_oldest"
    QUEUE_FULL_NEWEST = "queue_full_newest"


# Score lost per offence: two oversized frames, three malformed ones or four failed
# handshakes within a couple of minutes get a peer banned. Configuration mistakes
# (network mismatch, a peer refusing us) and plain disconnects cost nothing.
PENALTIES: Mapping[Reason, int] = {
    Reason.OVERSIZED_FRAME: 60,
    Reason.MALFORMED_FRAME: 40,
    Reason.HANDSHAKE_FAILED: 25,
    Reason.UNKNOWN_KEY: 25,
    Reason.WRONG_KEY: 25,
    Reason.HANDSHAKE_TIMEOUT: 10,
    Reason.PENALIZED: 40,
}


# --- frames (pure) -----------------------------------------------------------------------


class Frame(NamedTuple):
    """One decoded frame: its kind byte and payload."""

    kind: int
    payload: bytes


def encode_frame_header(kind: int, payload_bytes: int,
                        frame_bytes_max: int = FRAME_BYTES_MAX) -> bytes:
    """Return the 5 bytes (length, kind) that precede a payload of `payload_bytes`."""
    if not 0 <= kind <= KIND_MAX:
        raise LocalError(f"frame kind {kind} is not a byte")
    length = FRAME_KIND_BYTES + payload_bytes
    if length > frame_bytes_max:
        raise LocalError(f"frame of {length} bytes exceeds the limit of {frame_bytes_max}")
    return length.to_bytes(FRAME_HEADER_BYTES, "big") + bytes([kind])


def encode_frame(kind: int, payload: bytes, frame_bytes_max: int = FRAME_BYTES_MAX) -> bytes:
    """Return the wire bytes of one frame."""
    return encode_frame_header(kind, len(payload), frame_bytes_max) + payload


class FrameDecoder:
    """Splits a byte stream into frames, or raises `ProtocolError` at the first bad one."""

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX) -> None:
        self.frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._failed = False

    @property
    def buffered_bytes(self) -> int:
        """Return how many received bytes wait for the rest of their frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes and return every frame they complete, in order."""
        if self._failed:
            raise ProtocolError("the stream already broke the protocol")
        self._buffer += data
        frames: list[Frame] = []
        try:
            while len(self._buffer) >= FRAME_HEADER_BYTES:
                length = int.from_bytes(self._buffer[:FRAME_HEADER_BYTES], "big")
                self._check_length(length)
                end = FRAME_HEADER_BYTES + length
                if len(self._buffer) < end:
                    break
                kind = self._buffer[FRAME_HEADER_BYTES]
                frames.append(Frame(kind, bytes(self._buffer[FRAME_OVERHEAD_BYTES:end])))
                del self._buffer[:end]
        except ProtocolError:
            self._failed = True
            self._buffer.clear()
            raise
        return frames

    def _check_length(self, length: int) -> None:
        """Raise unless a header's length lies in 1..frame_bytes_max."""
        if length == 0:
            raise ProtocolError("frame length 0 has no room for the kind byte")
        if length > self.frame_bytes_max:
            raise FrameTooLargeError(f"frame of {length} bytes exceeds the limit of "
                                     f"{self.frame_bytes_max}")


def encode_hello(network_id: str) -> bytes:
    """Return the HELLO payload: CBOR [TRANSPORT_VERSION, network id]."""
    return encode([TRANSPORT_VERSION, network_id])


def check_hello(payload: bytes, network_id: str) -> None:
    """Raise `HelloError` unless a HELLO payload names our version and network."""
    try:
        value = decode(payload, HELLO_BYTES_MAX)
    except DecodeError as exc:
        raise HelloError(f"HELLO is not valid CBOR: {exc}") from exc
    if not isinstance(value, list) or len(value) != 2:
        raise HelloError("HELLO must be [version, network id]")
    version, network = value
    if type(version) is not int or version != TRANSPORT_VERSION:
        raise HelloError(f"transport version {version!r} is not {TRANSPORT_VERSION}")
    if network != network_id:
        raise HelloError(f"peer network {network!r} is not {network_id!r}")


# --- send queue (pure) -------------------------------------------------------------------


class Pushed(NamedTuple):
    """The outcome of a push: was the new frame kept, and how many older ones it evicted."""

    accepted: bool
    evicted: int


class SendQueue:
    """A FIFO of frames bounded in count and bytes, full-queue behaviour chosen per kind."""

    def __init__(self, frames_max: int, bytes_max: int,
                 policies: Mapping[int, DropPolicy] | None = None,
                 default_policy: DropPolicy = DropPolicy.OLDEST) -> None:
        if frames_max < 1 or bytes_max < FRAME_OVERHEAD_BYTES:
            raise LocalError("a send queue needs room for at least one frame")
        self.frames_max = frames_max
        self.bytes_max = bytes_max
        self.policies = dict(policies or {})
        self.default_policy = default_policy
        self._frames: deque[Frame] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def queued_bytes(self) -> int:
        """Return the bytes the queued frames take on the wire."""
        return self._bytes

    def push(self, kind: int, payload: bytes) -> Pushed:
        """Queue a frame, evicting older frames of its kind if its policy says so."""
        size = FRAME_OVERHEAD_BYTES + len(payload)
        if size > self.bytes_max:
            return Pushed(False, 0)
        victims = self._choose_victims(kind, size)
        if victims is None:
            return Pushed(False, 0)
        for victim in reversed(victims):
            self._bytes -= FRAME_OVERHEAD_BYTES + len(self._frames[victim].payload)
            del self._frames[victim]
        self._frames.append(Frame(kind, payload))
        self._bytes += size
        assert len(self._frames) <= self.frames_max and self._bytes <= self.bytes_max
        return Pushed(True, len(victims))

    def _choose_victims(self, kind: int, size: int) -> list[int] | None:
        """Return indexes of the oldest same-kind frames to evict for room, or None."""
        count, queued = len(self._frames), self._bytes
        if count < self.frames_max and queued + size <= self.bytes_max:
            return []
        if self.policies.get(kind, self.default_policy) is DropPolicy.NEWEST:
            return None
        victims: list[int] = []
        for index, frame in enumerate(self._frames):
            if count < self.frames_max and queued + size <= self.bytes_max:
                break
            if frame.kind == kind:
                victims.append(index)
                count -= 1
                queued -= FRAME_OVERHEAD_BYTES + len(frame.payload)
        if count < self.frames_max and queued + size <= self.bytes_max:
            return victims
        return None

    def pop(self) -> Frame | None:
        """Remove and return the oldest frame, or None if the queue is empty."""
        if not self._frames:
            return None
        frame = self._frames.popleft()
        self._bytes -= FRAME_OVERHEAD_BYTES + len(frame.payload)
        return frame

    def clear(self) -> int:
        """Drop every queued frame and return how many there were."""
        count = len(self._frames)
        self._frames.clear()
        self._bytes = 0
        return count


# --- scores and bans (pure) --------------------------------------------------------------

K = TypeVar("K", bound=Hashable)


@dataclass
class Score:
    """One peer's or address's standing."""

    points: float
    updated_s: float
    banned_until_s: float = 0.0


class ScoreBook(Generic[K]):
    """Scores that fall with each offence, recover with time, and ban at the threshold."""

    def __init__(self, *, ban_duration_s: float, clock: Callable[[], float],
                 entries_max: int = SCORE_ENTRIES_MAX) -> None:
        self.ban_duration_s = ban_duration_s
        self.clock = clock
        self.entries_max = entries_max
        self._entries: OrderedDict[K, Score] = OrderedDict()

    def _get(self, key: K) -> Score | None:
        """Return the up-to-date score of `key` (recovered, ban lifted), or None if clean."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if entry.banned_until_s and now >= entry.banned_until_s:
            entry.banned_until_s = 0.0
            entry.points = SCORE_AFTER_BAN
            entry.updated_s = now
        if not entry.banned_until_s:
            elapsed = max(0.0, now - entry.updated_s)
            entry.points = min(float(SCORE_MAX), entry.points + elapsed * SCORE_RECOVERY_PER_S)
            entry.updated_s = now
            if entry.points >= SCORE_MAX:
                del self._entries[key]
                return None
        return entry

    def get_points(self, key: K) -> int:
        """Return the current score of `key` (SCORE_MAX if it never misbehaved)."""
        entry = self._get(key)
        return SCORE_MAX if entry is None else int(entry.points)

    def penalize(self, key: K, penalty: int) -> bool:
        """Lower the score of `key`; return True if this offence bans it."""
        entry = self._get(key)
        now = self.clock()
        if entry is None:
            entry = Score(float(SCORE_MAX), now)
            self._entries[key] = entry
            while len(self._entries) > self.entries_max:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        if entry.banned_until_s:
            return False
        entry.points -= penalty
        if entry.points <= SCORE_BAN_THRESHOLD:
            entry.banned_until_s = now + self.ban_duration_s
            return True
        return False

    def get_ban_remaining_s(self, key: K) -> float:
        """Return how many seconds `key` stays banned (0.0 if it is not banned)."""
        entry = self._get(key)
        if entry is None or not entry.banned_until_s:
            return 0.0
        return entry.banned_until_s - self.clock()

    def is_banned(self, key: K) -> bool:
        """Return True if `key` is banned now."""
        return self.get_ban_remaining_s(key) > 0.0

    def get_banned(self) -> list[K]:
        """Return every key banned now."""
        return [key for key in list(self._entries) if self.is_banned(key)]


def compute_backoff_ms(attempt: int, min_ms: int, max_ms: int, rng: random.Random) -> int:
    """Return the delay before redial number `attempt` (0-based): capped, equal jitter."""
    ceiling = min(max_ms, min_ms * 2 ** min(attempt, 32))
    return ceiling // 2 + int(rng.random() * (ceiling - ceiling // 2))


# --- configuration -----------------------------------------------------------------------


class PeerAddress(NamedTuple):
    """A pinned peer: its validator key and where to dial it."""

    public_key: bytes
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.public_key.hex()}@{host}:{self.port}"


def parse_peer_address(text: str) -> PeerAddress:
    """Parse "pubkeyhex@host:port" (IPv6 hosts in brackets), raising `LocalError`."""
    key_hex, at, address = text.strip().partition("@")
    host, colon, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        public_key = bytes.fromhex(key_hex)
        port = int(port_text)
    except ValueError as exc:
        raise LocalError(f"peer {text!r} is not pubkeyhex@host:port") from exc
    if not at or not colon or not host or len(public_key) != PUBLIC_KEY_BYTES:
        raise LocalError(f"peer {text!r} is not pubkeyhex@host:port (32-byte key in hex)")
    if not 0 < port < 65536:
        raise LocalError(f"peer {text!r} has port {port} outside 1..65535")
    return PeerAddress(public_key, host, port)


@dataclass(frozen=True)
class TransportLimits:
    """Every bound the transport enforces; the defaults are the named constants above."""

    frame_bytes_max: int = FRAME_BYTES_MAX
    send_queue_frames_max: int = SEND_QUEUE_FRAMES_MAX
    send_queue_bytes_max: int = SEND_QUEUE_BYTES_MAX
    receive_queue_frames_max: int = RECEIVE_QUEUE_FRAMES_MAX
    connect_timeout_ms: int = CONNECT_TIMEOUT_MS
    handshake_timeout_ms: int = HANDSHAKE_TIMEOUT_MS
    idle_timeout_ms: int = IDLE_TIMEOUT_MS
    keepalive_interval_ms: int = KEEPALIVE_INTERVAL_MS
    write_timeout_ms: int = WRITE_TIMEOUT_MS
    dial_backoff_min_ms: int = DIAL_BACKOFF_MIN_MS
    dial_backoff_max_ms: int = DIAL_BACKOFF_MAX_MS
    ban_duration_ms: int = BAN_DURATION_MS
    handshakes_pending_max: int = HANDSHAKES_PENDING_MAX

    def check(self) -> None:
        """Raise `LocalError` if the limits contradict each other or the hard ceilings."""
        if not FRAME_OVERHEAD_BYTES < self.frame_bytes_max <= FRAME_BYTES_MAX:
            raise LocalError(f"frame_bytes_max must be in {FRAME_OVERHEAD_BYTES + 1}.."
                             f"{FRAME_BYTES_MAX}")
        if self.send_queue_bytes_max < self.frame_bytes_max + FRAME_HEADER_BYTES:
            raise LocalError("send_queue_bytes_max must hold at least one largest frame")
        for name in ("send_queue_frames_max", "receive_queue_frames_max", "connect_timeout_ms",
                     "handshake_timeout_ms", "write_timeout_ms", "dial_backoff_min_ms",
                     "ban_duration_ms", "handshakes_pending_max"):
            if getattr(self, name) < 1:
                raise LocalError(f"{name} must be at least 1")
        if not 0 < self.keepalive_interval_ms < self.idle_timeout_ms:
            raise LocalError("keepalive_interval_ms must be positive and below idle_timeout_ms")
        if self.dial_backoff_max_ms < self.dial_backoff_min_ms:
            raise LocalError("dial_backoff_max_ms must be at least dial_backoff_min_ms")


# --- status ------------------------------------------------------------------------------


class Received(NamedTuple):
    """A frame an authenticated peer sent: who, which kind, and the payload."""

    peer_key: bytes
    kind: int
    payload: bytes


@dataclass(frozen=True)
class PeerStatus:
    """One connected peer, for `seoulchain status`."""

    public_key: bytes
    address: str
    outbound: bool
    connected_ms: int
    frames_sent: int
    frames_received: int
    bytes_sent: int
    bytes_received: int
    frames_dropped: int
    send_queue_frames: int
    score: int

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready view with the key in hex."""
        return {"public_key": self.public_key.hex(), "address": self.address,
                "direction": "outbound" if self.outbound else "inbound",
                "connected_ms": self.connected_ms, "frames_sent": self.frames_sent,
                "frames_received": self.frames_received, "bytes_sent": self.bytes_sent,
                "bytes_received": self.bytes_received, "frames_dropped": self.frames_dropped,
                "send_queue_frames": self.send_queue_frames, "score": self.score}


@dataclass(frozen=True)
class TransportStats:
    """Counters of everything dropped, refused and disconnected, by reason."""

    listen_port: int
    peers_connected: int
    peers_known: int
    dropped: dict[str, int]
    refused: dict[str, int]
    disconnected: dict[str, int]
    banned_keys: list[bytes]
    banned_addresses: list[str]

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready view with keys in hex."""
        return {"listen_port": self.listen_port, "peers_connected": self.peers_connected,
                "peers_known": self.peers_known, "dropped": self.dropped,
                "refused": self.refused, "disconnected": self.disconnected,
                "banned_keys": [key.hex() for key in self.banned_keys],
                "banned_addresses": self.banned_addresses}


# --- the asyncio shell -------------------------------------------------------------------


@dataclass(eq=False)
class Connection:
    """One authenticated connection (internal): streams, direction and counters."""

    peer_key: bytes
    dialer: bytes
    outbound: bool
    address: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    decoder: FrameDecoder
    connected_s: float
    pending: list[Frame] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_requested: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: Reason | None = None
    ping_due: bool = False
    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass(eq=False)
class Peer:
    """A pinned peer key (internal): its send queue, address and current connection."""

    public_key: bytes
    address: PeerAddress | None
    queue: SendQueue
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    conn: Connection | None = None
    dial_task: asyncio.Task[None] | None = None
    frames_dropped: int = 0


class Transport:
    """Authenticated, framed, bounded message transport between pinned validators."""

    def __init__(self, key: SigningKey, *, network_id: str, trusted_keys: Iterable[bytes],
                 peers: Iterable[PeerAddress] = (), listen_host: str = "127.0.0.1",
                 listen_port: int = 0, limits: TransportLimits | None = None,
                 drop_policies: Mapping[int, DropPolicy] | None = None,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.key = key
        self.public_key = key.public_key
        self.network_id = network_id
        self.listen_host = listen_host
        self.limits = limits or TransportLimits()
        self.limits.check()
        self.drop_policies = dict(drop_policies or {})
        self.rng = rng or random.Random()
        self.clock = clock
        ban_s = self.limits.ban_duration_ms / 1000
        self.peer_scores: ScoreBook[bytes] = ScoreBook(ban_duration_s=ban_s, clock=clock)
        self.address_scores: ScoreBook[str] = ScoreBook(ban_duration_s=ban_s, clock=clock)
        self._listen_port = listen_port
        self._peers: dict[bytes, Peer] = {}
        self._trusted: frozenset[bytes] = frozenset()
        self._protected_hosts: frozenset[str] = frozenset()
        self._server_context: ssl.SSLContext | None = None
        self._client_context: ssl.SSLContext | None = None
        self._received: asyncio.Queue[Received] = asyncio.Queue(
            self.limits.receive_queue_frames_max)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._handshakes_pending = 0
        self._started = False
        self._stopping = False
        self.dropped: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.disconnected: Counter[str] = Counter()
        self._set_peers(trusted_keys, peers)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def listen_port(self) -> int:
        """Return the port the server listens on (the bound one once started)."""
        return self._listen_port

    async def start(self) -> None:
        """Listen for peers and start dialing every peer with a known address."""
        if self._started:
            raise LocalError("a Transport starts once; make a new one to restart")
        self._started = True
        self._server = await asyncio.start_server(self._on_inbound, self.listen_host,
                                                  self._listen_port)
        self._listen_port = self._server.sockets[0].getsockname()[1]
        for peer in self._peers.values():
            self._start_dialing(peer)
        log.info("transport %s listening on %s:%d", self.public_key.hex()[:12],
                 self.listen_host, self._listen_port)

    async def stop(self) -> None:
        """Close the listener and every connection, and wait for every task to end."""
        if self._stopping:
            return
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for peer in self._peers.values():
            if peer.conn is not None:
                self._request_close(peer.conn, Reason.STOPPED)
        for task in list(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await asyncio.gather(*list(self._handlers), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def update_peers(self, trusted_keys: Iterable[bytes],
                     peers: Iterable[PeerAddress] = ()) -> None:
        """Replace the pinned keys and dial list (a validator set change); drop the removed."""
        removed = self._set_peers(trusted_keys, peers)
        for peer in removed:
            if peer.dial_task is not None:
                peer.dial_task.cancel()
            if peer.conn is not None:
                self._request_close(peer.conn, Reason.UNTRUSTED)
        if self._started and not self._stopping:
            for peer in self._peers.values():
                self._start_dialing(peer)

    def _set_peers(self, trusted_keys: Iterable[bytes],
                   peers: Iterable[PeerAddress]) -> list[Peer]:
        """Install a new pinned set and dial list; return the peers no longer pinned."""
        addresses = {address.public_key: address for address in peers}
        trusted = frozenset(trusted_keys) | frozenset(addresses)
        for public_key in trusted:
            if len(public_key) != PUBLIC_KEY_BYTES:
                raise LocalError(f"a pinned key is {PUBLIC_KEY_BYTES} bytes, got "
                                 f"{len(public_key)}")
        anchors = trusted | {self.public_key}
        self._server_context = make_context(self.key, anchors, server_side=True)
        self._client_context = make_context(self.key, anchors, server_side=False)
        self._trusted = trusted - {self.public_key}
        self._protected_hosts = frozenset(address.host for address in addresses.values())
        removed = [peer for key, peer in self._peers.items() if key not in self._trusted]
        for peer in removed:
            del self._peers[peer.public_key]
        for public_key in sorted(self._trusted):
            peer = self._peers.get(public_key)
            if peer is None:
                queue = SendQueue(self.limits.send_queue_frames_max,
                                  self.limits.send_queue_bytes_max, self.drop_policies)
                self._peers[public_key] = Peer(public_key, addresses.get(public_key), queue)
            else:
                peer.address = addresses.get(public_key)
        return removed

    # -- the application's side -----------------------------------------------------------

    def send(self, peer_key: bytes, kind: int, payload: bytes) -> bool:
        """Queue a frame for one peer without blocking; return False if it was dropped."""
        peer = self._peers.get(peer_key)
        if peer is None:
            raise LocalError(f"{peer_key.hex()} is not a pinned peer")
        self._check_outgoing(kind, payload)
        return self._push(peer, kind, payload)

    def broadcast(self, kind: int, payload: bytes) -> int:
        """Queue a frame for every pinned peer; return how many queues accepted it."""
        self._check_outgoing(kind, payload)
        return sum(self._push(peer, kind, payload) for peer in self._peers.values())

    async def receive(self) -> Received:
        """Wait for and return the next frame an authenticated peer sent."""
        return await self._received.get()

    def penalize(self, peer_key: bytes, reason: str = Reason.PENALIZED,
                 penalty: int = PENALTIES[Reason.PENALIZED]) -> bool:
        """Lower a peer's score for an application-level offence; return True if banned."""
        if peer_key not in self._peers:
            return False
        log.warning("peer %s penalised by %d: %s", peer_key.hex()[:12], penalty, reason)
        banned = self.peer_scores.penalize(peer_key, penalty)
        conn = self._peers[peer_key].conn
        if banned and conn is not None:
            self._request_close(conn, Reason.BANNED)
        return banned

    def peers(self) -> list[PeerStatus]:
        """Return the connected peers, by key, with their traffic counters and scores."""
        now = self.clock()
        statuses = []
        for key, peer in sorted(self._peers.items()):
            conn = peer.conn
            if conn is None or conn.closed.is_set():
                continue
            statuses.append(PeerStatus(
                key, conn.address, conn.outbound, int((now - conn.connected_s) * 1000),
                conn.frames_sent, conn.frames_received, conn.bytes_sent, conn.bytes_received,
                peer.frames_dropped, len(peer.queue), self.peer_scores.get_points(key)))
        return statuses

    def stats(self) -> TransportStats:
        """Return the drop, refusal and disconnect counters and the current bans."""
        return TransportStats(
            self._listen_port, len(self.peers()), len(self._peers), dict(self.dropped),
            dict(self.refused), dict(self.disconnected), self.peer_scores.get_banned(),
            self.address_scores.get_banned())

    def _check_outgoing(self, kind: int, payload: bytes) -> None:
        """Raise `LocalError` unless an application frame is well formed and within limits."""
        if not isinstance(payload, bytes):
            raise LocalError(f"payload must be bytes, got {type(payload).__name__}")
        if not KIND_APP_MIN <= kind <= KIND_MAX:
            raise LocalError(f"application kinds are {KIND_APP_MIN}..{KIND_MAX}, got {kind}")
        if FRAME_KIND_BYTES + len(payload) > self.limits.frame_bytes_max:
            raise LocalError(f"payload of {len(payload)} bytes exceeds the frame limit of "
                             f"{self.limits.frame_bytes_max}")

    def _push(self, peer: Peer, kind: int, payload: bytes) -> bool:
        """Queue one frame for `peer`, counting whatever the queue had to drop."""
        pushed = peer.queue.push(kind, payload)
        if pushed.evicted:
            self.dropped[Reason.QUEUE_FULL_OLDEST] += pushed.evicted
            peer.frames_dropped += pushed.evicted
        if not pushed.accepted:
            self.dropped[Reason.QUEUE_FULL_NEWEST] += 1
            peer.frames_dropped += 1
            return False
        peer.ready.set()
        return True

    # -- connecting -----------------------------------------------------------------------

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[Any]:
        """Start a task this transport tracks and cancels on stop."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_dialing(self, peer: Peer) -> None:
        """Start the redial loop of a peer with an address, unless one runs already."""
        if peer.address is None or (peer.dial_task and not peer.dial_task.done()):
            return
        peer.dial_task = self._spawn(self._dial_loop(peer), f"dial-{peer.public_key.hex()[:8]}")

    async def _dial_loop(self, peer: Peer) -> None:
        """Keep one connection to `peer`: dial, serve, and redial with capped jittered backoff."""
        attempt = 0
        while (not self._stopping and self._peers.get(peer.public_key) is peer
               and peer.address is not None):
            conn = peer.conn
            if conn is None:
                ban_s = self.peer_scores.get_ban_remaining_s(peer.public_key)
                if ban_s > 0:
                    await asyncio.sleep(ban_s)
                    continue
                conn = await self._dial(peer)
                if conn is not None:
                    await self._serve(conn)
            else:
                await conn.closed.wait()
            lived_ms = 0 if conn is None else (self.clock() - conn.connected_s) * 1000
            if lived_ms >= self.limits.dial_backoff_max_ms:
                attempt = 0
            delay_ms = compute_backoff_ms(attempt, self.limits.dial_backoff_min_ms,
                                          self.limits.dial_backoff_max_ms, self.rng)
            attempt += 1
            await asyncio.sleep(delay_ms / 1000)

    async def _dial(self, peer: Peer) -> Connection | None:
        """Dial `peer` and complete TLS and HELLO; return None (counted) on any failure."""
        address = peer.address
        assert address is not None
        writer: asyncio.StreamWriter | None = None
        tls_done = False
        peer_key: bytes | None = None
        try:
            async with asyncio.timeout(self.limits.connect_timeout_ms / 1000):
                reader, writer = await asyncio.open_connection(address.host, address.port)
            async with asyncio.timeout(self._handshake_s()):
                await writer.start_tls(self._client_context,
                                       ssl_handshake_timeout=2 * self._handshake_s())
            tls_done = True
            peer_key = self._identify(writer, peer.public_key)
            async with asyncio.timeout(self._handshake_s()):
                return await self._exchange_hello(reader, writer, peer_key, outbound=True,
                                                  address=f"{address.host}:{address.port}")
        except asyncio.CancelledError:
            if writer is not None:
                writer.transport.abort()
            raise
        except Exception as exc:  # every failure is counted; none may end the dial loop
            reason = classify_handshake_error(exc, tls_done=tls_done, outbound=True)
            # Only an authenticated key is charged: whoever answers at an address we dialed
            # proves nothing about the key we expected there, and redial backoff slows us.
            self._on_handshake_failure(reason, exc, peer_key, None)
            if writer is not None:
                writer.transport.abort()
            return None

    async def _on_inbound(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        """Serve an accepted connection in a task `stop` can cancel; never raise."""
        # The handler's first step runs before asyncio reads from the new socket; pause
        # reading now, or the ClientHello would land in the StreamReader, lost to TLS.
        writer.transport.pause_reading()
        # asyncio's server logs a cancelled handler task as an error, so the handler only
        # waits for a tracked task and returns normally, whatever happens to that task.
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            task = self._spawn(self._handle_inbound(reader, writer), "inbound")
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._handlers.discard(handler)

    async def _handle_inbound(self, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        """Authenticate an accepted connection and serve it until it closes."""
        conn = await self._accept(reader, writer)
        if conn is not None:
            await self._serve(conn)

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> Connection | None:
        """Run the server side of TLS and HELLO; return None (counted) on any failure."""
        peername = writer.get_extra_info("peername") or ("?", 0)
        host, port = str(peername[0]), int(peername[1])
        refusal = self._check_admission(host)
        if refusal is not None:
            self.refused[refusal] += 1
            writer.transport.abort()
            return None
        self._handshakes_pending += 1
        tls_done = False
        peer_key: bytes | None = None
        try:
            async with asyncio.timeout(self._handshake_s()):
                await writer.start_tls(self._server_context,
                                       ssl_handshake_timeout=2 * self._handshake_s())
            tls_done = True
            peer_key = self._identify(writer, None)
            async with asyncio.timeout(self._handshake_s()):
                return await self._exchange_hello(reader, writer, peer_key, outbound=False,
                                                  address=f"{host}:{port}")
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception as exc:  # every failure is counted; none may reach the server
            reason = classify_handshake_error(exc, tls_done=tls_done, outbound=False)
            self._on_handshake_failure(reason, exc, peer_key, host)
            writer.transport.abort()
            return None
        finally:
            self._handshakes_pending -= 1

    def _check_admission(self, host: str) -> Reason | None:
        """Return why an inbound connection is refused before TLS, or None to admit it."""
        if self._stopping:
            return Reason.STOPPED
        if self.address_scores.is_banned(host):
            return Reason.ADDRESS_BANNED
        if self._handshakes_pending >= self.limits.handshakes_pending_max:
            return Reason.HANDSHAKES_BUSY
        return None

    def _identify(self, writer: asyncio.StreamWriter, expected_key: bytes | None) -> bytes:
        """Return the pinned key the finished TLS handshake authenticated, or raise."""
        peer_key = get_peer_key(writer.get_extra_info("ssl_object"), self._trusted)
        if expected_key is not None and peer_key != expected_key:
            raise WrongPeerError(f"dialed {expected_key.hex()} but {peer_key.hex()} answered")
        if self.peer_scores.is_banned(peer_key):
            raise BannedPeerError(f"peer {peer_key.hex()} is banned")
        return peer_key

    async def _exchange_hello(self, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter, peer_key: bytes, *,
                              outbound: bool, address: str) -> Connection:
        """Send our HELLO, read and check the peer's, and return the new connection."""
        conn = Connection(peer_key, self.public_key if outbound else peer_key, outbound,
                          address, reader, writer, FrameDecoder(self.limits.frame_bytes_max),
                          self.clock())
        writer.write(encode_frame(KIND_HELLO, encode_hello(self.network_id)))
        await writer.drain()
        frames: list[Frame] = []
        while not frames:
            data = await reader.read(READ_CHUNK_BYTES)
            if not data:
                raise ConnectionResetError("the peer closed the connection before HELLO")
            conn.bytes_received += len(data)
            frames = conn.decoder.feed(data)
        if frames[0].kind != KIND_HELLO:
            raise ProtocolError(f"first frame has kind {frames[0].kind}, not HELLO")
        check_hello(frames[0].payload, self.network_id)
        conn.frames_received = 1
        conn.pending = frames[1:]
        return conn

    def _handshake_s(self) -> float:
        """Return the handshake timeout in seconds."""
        return self.limits.handshake_timeout_ms / 1000

    def _on_handshake_failure(self, reason: Reason, exc: BaseException,
                              peer_key: bytes | None, host: str | None) -> None:
        """Count a failed handshake; charge an authenticated key, else an inbound address."""
        self.refused[reason] += 1
        penalty = PENALTIES.get(reason, 0)
        label = peer_key.hex()[:12] if peer_key else host or "dialed peer"
        log.info("handshake with %s failed (%s): %s", label, reason, exc)
        if not penalty:
            return
        if peer_key is not None and peer_key in self._peers:
            if self.peer_scores.penalize(peer_key, penalty):
                log.warning("peer %s banned after %s", label, reason)
        elif host is None or host in self._protected_hosts:
            return  # a configured peer's host is never banned (a devnet shares 127.0.0.1)
        elif self.address_scores.penalize(host, penalty):
            log.warning("address %s banned after %s", host, reason)

    # -- serving --------------------------------------------------------------------------

    def _register(self, conn: Connection) -> Peer | None:
        """Make `conn` the peer's connection unless the one-per-pair rule keeps another."""
        peer = self._peers.get(conn.peer_key)
        if peer is None or self._stopping:
            return None
        current = peer.conn
        if current is not None and not current.close_requested.is_set():
            if not is_preferred_connection(conn.dialer, current.dialer, self.public_key,
                                           conn.peer_key):
                self.refused[Reason.DUPLICATE] += 1
                current.ping_due = True  # a half-open kept connection fails fast on a write
                peer.ready.set()
                return None
            self._request_close(current, Reason.REPLACED)
        peer.conn = conn
        return peer

    async def _serve(self, conn: Connection) -> None:
        """Run a registered connection's reader and writer until either ends, then close it."""
        peer = self._register(conn)
        if peer is None:
            await close_writer(conn.writer, graceful=True)
            conn.closed.set()
            return
        log.info("connected %s %s %s", conn.peer_key.hex()[:12],
                 "to" if conn.outbound else "from", conn.address)
        name = conn.peer_key.hex()[:8]
        reader = self._spawn(self._read_loop(conn), f"read-{name}")
        writer = self._spawn(self._write_loop(conn, peer), f"write-{name}")
        closer = self._spawn(conn.close_requested.wait(), f"close-{name}")
        reason: Reason | None = None
        try:
            done, _ = await asyncio.wait({reader, writer, closer},
                                         return_when=asyncio.FIRST_COMPLETED)
            reason = conn.close_reason or self._get_end_reason(conn, done.pop())
        finally:
            reason = reason or conn.close_reason or Reason.STOPPED
            for task in (reader, writer, closer):
                task.cancel()
            await asyncio.gather(reader, writer, closer, return_exceptions=True)
            self._unregister(conn, reason)
            await close_writer(conn.writer, graceful=reason not in PENALTIES)
            conn.closed.set()

    def _get_end_reason(self, conn: Connection, task: asyncio.Task[Any]) -> Reason:
        """Turn how a reader or writer task ended into a disconnect reason, charging offences."""
        exc = task.exception()
        reason = Reason.CLOSED_BY_PEER if exc is None else classify_connection_error(exc)
        if reason is Reason.INTERNAL_ERROR:
            log.error("connection to %s failed unexpectedly", conn.peer_key.hex()[:12],
                      exc_info=exc)
        penalty = PENALTIES.get(reason, 0)
        if penalty and self.peer_scores.penalize(conn.peer_key, penalty):
            log.warning("peer %s banned after %s", conn.peer_key.hex()[:12], reason)
        return reason

    def _unregister(self, conn: Connection, reason: Reason) -> None:
        """Forget a closed connection and count why it closed."""
        self.disconnected[reason] += 1
        peer = self._peers.get(conn.peer_key)
        if peer is not None and peer.conn is conn:
            peer.conn = None
        log.info("disconnected %s (%s)", conn.peer_key.hex()[:12], reason)

    def _request_close(self, conn: Connection, reason: Reason) -> None:
        """Ask a connection's serving task to close it for `reason`."""
        if not conn.close_requested.is_set():
            conn.close_reason = reason
            conn.close_requested.set()

    async def _read_loop(self, conn: Connection) -> None:
        """Read frames until the peer closes, goes idle or breaks the protocol."""
        for frame in conn.pending:
            await self._deliver(conn, frame)
        conn.pending = []
        idle_s = self.limits.idle_timeout_ms / 1000
        while True:
            async with asyncio.timeout(idle_s):
                data = await conn.reader.read(READ_CHUNK_BYTES)
            if not data:
                return
            conn.bytes_received += len(data)
            for frame in conn.decoder.feed(data):
                await self._deliver(conn, frame)

    async def _deliver(self, conn: Connection, frame: Frame) -> None:
        """Handle one received frame: transport kinds here, application kinds to the queue."""
        conn.frames_received += 1
        if frame.kind == KIND_PING:
            return
        if frame.kind < KIND_APP_MIN:
            raise ProtocolError(f"frame kind {frame.kind} is reserved or out of place")
        await self._received.put(Received(conn.peer_key, frame.kind, frame.payload))

    async def _write_loop(self, conn: Connection, peer: Peer) -> None:
        """Send the peer's queued frames, and a PING whenever the line has been quiet."""
        keepalive_s = self.limits.keepalive_interval_ms / 1000
        while True:
            frame = peer.queue.pop()
            if frame is None and conn.ping_due:
                frame = Frame(KIND_PING, b"")
            if frame is None:
                peer.ready.clear()
                try:
                    async with asyncio.timeout(keepalive_s):
                        await peer.ready.wait()
                    continue
                except TimeoutError:
                    frame = Frame(KIND_PING, b"")
            conn.ping_due = False
            header = encode_frame_header(frame.kind, len(frame.payload),
                                         self.limits.frame_bytes_max)
            conn.writer.writelines([header, frame.payload])
            conn.frames_sent += 1
            conn.bytes_sent += len(header) + len(frame.payload)
            try:
                async with asyncio.timeout(self.limits.write_timeout_ms / 1000):
                    await conn.writer.drain()
            except TimeoutError as exc:
                raise WriteTimeoutError("the peer stopped reading") from exc


class WrongPeerError(PeerIdentityError):
    """The peer at a dialed address authenticated as another pinned key."""


class BannedPeerError(RemoteError):
    """A banned peer authenticated; it is refused until its ban ends."""


class WriteTimeoutError(Exception):
    """The peer did not take our bytes within the write timeout."""


def is_preferred_connection(new_dialer: bytes, current_dialer: bytes, own_key: bytes,
                            peer_key: bytes) -> bool:
    """Return True if a new connection should replace the current one to the same peer."""
    if new_dialer == current_dialer:
        return True  # the dialer dialed again: its old connection is dead to it
    return new_dialer == min(own_key, peer_key)


def classify_handshake_error(exc: BaseException, *, tls_done: bool, outbound: bool) -> Reason:
    """Return the refusal reason for an exception raised while connecting."""
    if isinstance(exc, BannedPeerError):
        return Reason.BANNED
    if isinstance(exc, WrongPeerError):
        return Reason.WRONG_KEY
    if isinstance(exc, PeerIdentityError):
        return Reason.WRONG_KEY if outbound else Reason.UNKNOWN_KEY
    if isinstance(exc, HelloError):
        return Reason.BAD_HELLO
    if isinstance(exc, FrameTooLargeError):
        return Reason.OVERSIZED_FRAME
    if isinstance(exc, ProtocolError):
        return Reason.MALFORMED_FRAME
    if isinstance(exc, TimeoutError):
        return Reason.HANDSHAKE_TIMEOUT
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Reason.WRONG_KEY if outbound else Reason.HANDSHAKE_FAILED
    if isinstance(exc, ssl.SSLError):
        return Reason.REJECTED_BY_PEER if tls_done else Reason.HANDSHAKE_FAILED
    if outbound and not tls_done and isinstance(exc, OSError) and not isinstance(
            exc, ConnectionResetError | BrokenPipeError):
        return Reason.DIAL_FAILED
    if isinstance(exc, OSError | asyncio.IncompleteReadError | EOFError):
        return Reason.REJECTED_BY_PEER if outbound and tls_done else Reason.HANDSHAKE_CLOSED
    return Reason.INTERNAL_ERROR


def classify_connection_error(exc: BaseException) -> Reason:
    """Return the disconnect reason for an exception that ended a reader or writer."""
    if isinstance(exc, FrameTooLargeError):
        return Reason.OVERSIZED_FRAME
    if isinstance(exc, ProtocolError):
        return Reason.MALFORMED_FRAME
    if isinstance(exc, WriteTimeoutError):
        return Reason.WRITE_TIMEOUT
    if isinstance(exc, TimeoutError):
        return Reason.IDLE_TIMEOUT
    if isinstance(exc, OSError | asyncio.IncompleteReadError | EOFError):
        return Reason.CLOSED_BY_PEER
    return Reason.INTERNAL_ERROR


async def close_writer(writer: asyncio.StreamWriter, *, graceful: bool) -> None:
    """Close a stream: a bounded TLS close_notify when graceful, else abort the socket."""
    if not graceful:
        writer.transport.abort()
    writer.close()
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_MS / 1000):
            await writer.wait_closed()
    except Exception:  # whatever a closing peer does, the socket goes
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
