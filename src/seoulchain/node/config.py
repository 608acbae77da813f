"""Node configuration: a TOML file with documented defaults (docs/operations.md).

Every option has a default, so a missing file section means "use the defaults". Unknown
sections or keys are refused with the list of known ones, so a typo is never silently
ignored. Numbers are checked by what their names say: a `*_ms` duration is 0 ms to a day, a
`*_max` bound at least 1, a port 0..65535, any float finite (never NaN or infinite).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from seoulchain.consensus import machine
from seoulchain.errors import LocalError
from seoulchain.execution.engine import STATE_RETENTION_VERSIONS_DEFAULT
from seoulchain.execution.service import INTEGER_MAX  # TOML integers are signed 64-bit too
from seoulchain.ledger.types import BLOCK_BYTES_MAX, BLOCK_TXS_MAX
from seoulchain.node import prechecks, transport, validator

# A faster status/re-send tick would spend the node's time on gossip.
GOSSIP_INTERVAL_MS_MIN = 50
# The longest duration option: a day (the longest default, [p2p] ban_duration_ms, is 10 min).
DURATION_MS_MAX = 24 * 3600 * 1000
PORT_MAX = 65535
# An idle chain commits an empty block this often: a header a light client or monitor can see
# advance twice a minute, at about 2,900 blocks a day instead of one every commit pause.
CREATE_EMPTY_BLOCKS_INTERVAL_MS = 30_000


# Per-client API rate limit: a portal page makes a few dozen requests at once and a polling
# client one a second; 20 a second sustained with bursts of 100 leaves both far from it.
API_RATE_LIMIT_PER_S = 20.0
API_RATE_LIMIT_BURST = 100


@dataclass
class ApiConfig:
    """The HTTP API (docs/api.md): address, per-client rate limit, browser origins."""

    host: str = "127.0.0.1"
    port: int = 26657
    # Token bucket per client IP: refills at rate_limit_per_s, holds rate_limit_burst
    # requests; 0 turns the limit off. Requests with the admin token are never limited.
    rate_limit_per_s: float = API_RATE_LIMIT_PER_S
    rate_limit_burst: int = API_RATE_LIMIT_BURST
    # Client addresses never limited: by default this host's own tools (CLI, load
    # generator). A reverse proxy on this host that sets X-Forwarded-For passes on each
    # client's own address (docs/api.md, "Rate limits").
    rate_limit_exempt_hosts: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Web origins (scheme://host:port) whose pages may call the API from a browser; empty
    # allows the node's own origin only, "*" any origin (reads and submissions, never
    # the admin token).
    cors_allowed_origins: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rate_limit_per_s < 0 or self.rate_limit_burst < 1:
            raise LocalError(f"[api] rate_limit_per_s must be 0 (off) or more and "
                             f"rate_limit_burst at least 1, got {self.rate_limit_per_s} and "
                             f"{self.rate_limit_burst}")
        for name in ("rate_limit_exempt_hosts", "cors_allowed_origins"):
            if not all(isinstance(item, str) for item in getattr(self, name)):
                raise LocalError(f"[api] {name} must be a list of strings")


@dataclass
class ChainConfig:
    # Not used: accepted so that config files written when a single validator cut a block
    # every interval still load (every node now paces blocks by the commit pauses below).
    block_interval_ms: int = 200
    # The pause after a commit before the next height starts (CometBFT's timeout_commit);
    # it gathers late votes and sets the idle block rate.
    commit_pause_ms: int = validator.COMMIT_PAUSE_MS
    # The same pause while transactions wait in the mempool (at most commit_pause_ms): a
    # busy chain starts its next height almost at once, an idle one makes few empty blocks.
    busy_commit_pause_ms: int = validator.BUSY_COMMIT_PAUSE_MS
    # Produce blocks even when no transaction is waiting (a block every commit pause).
    create_empty_blocks: bool = False
    # With create_empty_blocks = false: the longest an idle chain goes without a block, a
    # proof of life (CometBFT's create_empty_blocks_interval); 0 waits for transactions only.
    create_empty_blocks_interval_ms: int = CREATE_EMPTY_BLOCKS_INTERVAL_MS
    # The most transactions and bytes of transactions put into one block (at most the
    # protocol's BLOCK_TXS_MAX and BLOCK_BYTES_MAX, which every validator enforces).
    block_txs_max: int = validator.BLOCK_TXS_DEFAULT
    block_tx_bytes_max: int = validator.BLOCK_TX_BYTES_DEFAULT

    def __post_init__(self) -> None:
        for name, value, bound in (("block_txs_max", self.block_txs_max, BLOCK_TXS_MAX),
                                   ("block_tx_bytes_max", self.block_tx_bytes_max,
                                    BLOCK_BYTES_MAX)):
            if value > bound:
                raise LocalError(f"[chain] {name} must be at most {bound} (a larger block is "
                                 f"invalid to every validator), got {value}")
        interval = self.create_empty_blocks_interval_ms
        if not 0 <= interval <= machine.CREATE_EMPTY_BLOCKS_INTERVAL_MS_MAX:
            raise LocalError(f"[chain] create_empty_blocks_interval_ms must be 0 (no empty "
                             f"blocks) to {machine.CREATE_EMPTY_BLOCKS_INTERVAL_MS_MAX}, "
                             f"got {interval}")


@dataclass
class ConsensusTimeouts:
    """Tendermint round timeouts: base + delta x round (defaults as the consensus machine)."""

    timeout_propose_ms: int = machine.TIMEOUT_PROPOSE_MS
    timeout_propose_delta_ms: int = machine.TIMEOUT_PROPOSE_DELTA_MS
    timeout_prevote_ms: int = machine.TIMEOUT_PREVOTE_MS
    timeout_prevote_delta_ms: int = machine.TIMEOUT_PREVOTE_DELTA_MS
    timeout_precommit_ms: int = machine.TIMEOUT_PRECOMMIT_MS
    timeout_precommit_delta_ms: int = machine.TIMEOUT_PRECOMMIT_DELTA_MS

    def to_consensus_config(self, chain_id: str) -> machine.ConsensusConfig:
        return machine.ConsensusConfig(chain_id, **asdict(self))


@dataclass
class MempoolConfig:
    txs_max: int = 50_000
    bytes_max: int = 128 * 1024 * 1024


@dataclass
class P2PConfig:
    """Validator-to-validator transport (docs/spec/transport.md), limits as its constants."""

    # Peers on other hosts must reach this; only pinned validator keys complete a handshake.
    listen_host: str = "0.0.0.0"
    listen_port: int = 26656
    # "pubkeyhex@host:port" for each validator to dial (IPv6 hosts in brackets).
    peers: list[str] = field(default_factory=list)
    # Status broadcast and re-send of a stuck validator's messages (below the consensus
    # timeouts, so a lost message is re-sent before peers give up on the round).
    gossip_interval_ms: int = validator.GOSSIP_INTERVAL_MS
    frame_bytes_max: int = transport.FRAME_BYTES_MAX
    send_queue_frames_max: int = transport.SEND_QUEUE_FRAMES_MAX
    send_queue_bytes_max: int = transport.SEND_QUEUE_BYTES_MAX
    receive_queue_frames_max: int = transport.RECEIVE_QUEUE_FRAMES_MAX
    connect_timeout_ms: int = transport.CONNECT_TIMEOUT_MS
    handshake_timeout_ms: int = transport.HANDSHAKE_TIMEOUT_MS
    idle_timeout_ms: int = transport.IDLE_TIMEOUT_MS
    keepalive_interval_ms: int = transport.KEEPALIVE_INTERVAL_MS
    write_timeout_ms: int = transport.WRITE_TIMEOUT_MS
    dial_backoff_min_ms: int = transport.DIAL_BACKOFF_MIN_MS
    dial_backoff_max_ms: int = transport.DIAL_BACKOFF_MAX_MS
    ban_duration_ms: int = transport.BAN_DURATION_MS
    handshakes_pending_max: int = transport.HANDSHAKES_PENDING_MAX

    def __post_init__(self) -> None:
        if self.gossip_interval_ms < GOSSIP_INTERVAL_MS_MIN:
            raise LocalError(f"[p2p] gossip_interval_ms must be at least "
                             f"{GOSSIP_INTERVAL_MS_MIN}, got {self.gossip_interval_ms}")

    def get_peer_addresses(self) -> list[transport.PeerAddress]:
        """Parse `peers`, raising `LocalError` naming the first malformed entry."""
        return [transport.parse_peer_address(text) for text in self.peers]

    def get_limits(self) -> transport.TransportLimits:
        """Return the transport limits these options set, checked for consistency."""
        limits = transport.TransportLimits(**{
            item.name: getattr(self, item.name) for item in fields(transport.TransportLimits)})
        limits.check()
        return limits


@dataclass
class StateConfig:
    """The state tree on disk (docs/operations.md, "State tree retention")."""

    # Keep state tree versions tip - N .. tip (and any pinned one); older versions are
    # pruned as each block commits. 0 keeps every version (an archive node).
    retention_versions: int = STATE_RETENTION_VERSIONS_DEFAULT

    def __post_init__(self) -> None:
        if self.retention_versions < 0:
            raise LocalError(f"[state] retention_versions must be 0 (keep all) or more, got "
                             f"{self.retention_versions}")


@dataclass
class PrecheckConfig:
    """Worker processes that run services' expensive checks (ballot proofs) off the event
    loop (docs/operations.md, "Configuration"; node/prechecks.py)."""

    # 0: one per core this process may run on.
    workers: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.workers <= prechecks.PRECHECK_WORKERS_MAX:
            raise LocalError(f"[precheck] workers must be 0 (one per core) to "
                             f"{prechecks.PRECHECK_WORKERS_MAX}, got {self.workers}")


@dataclass
class NodeConfig:
    moniker: str = "node"
    api: ApiConfig = field(default_factory=ApiConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    consensus: ConsensusTimeouts = field(default_factory=ConsensusTimeouts)
    p2p: P2PConfig = field(default_factory=P2PConfig)
    state: StateConfig = field(default_factory=StateConfig)
    precheck: PrecheckConfig = field(default_factory=PrecheckConfig)

    def save(self, path: Path) -> None:
        path.write_text(tomli_w.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise LocalError(f"cannot read config {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise LocalError(f"config {path} is not valid TOML: {exc}") from exc
        return from_dict(cls, data, str(path))


def from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Build dataclass `cls` from a TOML table, refusing unknown keys and wrong types."""
    known = {item.name: item for item in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise LocalError(f"{where}: unknown option(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    defaults = cls()
    for name, value in data.items():
        default = getattr(defaults, name)
        if hasattr(default, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise LocalError(f"{where}: [{name}] must be a table")
            values[name] = from_dict(type(default), value, f"{where} [{name}]")
        elif type(value) is not type(default):
            raise LocalError(f"{where}: {name} must be {type(default).__name__}, got {value!r}")
        else:
            check_number_range(name, value, where)
            values[name] = value
    return cls(**values)


def check_number_range(name: str, value: Any, where: str) -> None:
    """Refuse a number outside the range its option's name implies (duration, bound, port)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise LocalError(f"{where}: {name} must be a finite number, got {value!r}")
    if type(value) is not int:
        return
    low, high, unit = -INTEGER_MAX - 1, INTEGER_MAX, ""
    if name.endswith("_ms"):
        low, high, unit = 0, DURATION_MS_MAX, " ms"
    elif name.endswith("_max"):
        low = 1
    elif name.endswith("port"):
        low, high = 0, PORT_MAX
    if not low <= value <= high:
        raise LocalError(f"{where}: {name} must be {low} to {high}{unit}, got {value}")
