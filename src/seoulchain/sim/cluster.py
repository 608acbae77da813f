"""The simulated cluster and its scenario DSL: real validator cores on a virtual network.

Theory of operation: every node is a real `ValidatorCore` (consensus machine, engine with
the notary service over `BlockStore(":memory:")`, mempool, an in-memory WAL and signing
store) — the code the networked node runs. The cluster owns one event queue ordered by
(virtual time, sequence number) and one seeded `random.Random`; it pops the next item,
hands it to its node, and turns the effects into more items: each `Send` becomes one
delivery per copy the `Network` lets through, each `SetTimer` a timer on the node's own
(skewed, drifting) clock, each `Committed` a record for the checkers. Nothing reads the
wall clock or an unseeded random source, and nothing iterates a set of bytes, so a seed
replays exactly, whatever PYTHONHASHSEED is.

A crash drops the node's volatile state (core, engine caches, mempool, pending timers); its
block store, WAL bytes and signing store survive, as on disk, and `restart` rebuilds the
core with `ValidatorCore.recover`. A crash can also strike inside a WAL append (torn write)
or inside a block's store transaction (rolled back, as SQLite does).

    cluster = Cluster(n=4, seed=7)
    cluster.node(2).crash()
    cluster.partition([0, 1], [2, 3])
    cluster.run_for(5_000)
    cluster.heal()
    cluster.node(2).restart()
    cluster.run_until(height=20, timeout_ms=120_000)
    cluster.check()

Empty blocks: by default every height proposes at once (empty blocks every commit pause);
`Cluster(..., empty_blocks_interval_ms=N)` runs the validators as a node with
`create_empty_blocks = false` does: round 0 waits for transactions, or N ms (0: forever).

Validator-set changes: standbys (keys outside the genesis set) follow the chain as
observers; `change_validators(add=[...], remove=[...])` has the first of the cluster's four
agencies propose each change to the governance service (`gov`, k = 3), and two more approve
each proposal once they see it committed; the engine applies a change at h + 2 of the block
that reaches k, from when the added nodes vote. The checkers verify each block's commit
against the set its header names.

Modelled CPU costs (`Cluster(..., costs=CpuCosts())`, off by default): each node works on
one event at a time. An event arriving while its node works waits in the node's inbox; the
node handles it when free, the cluster measures what it did (`EventWork`: txs admitted,
blocks executed and committed, WAL syncs, signatures persisted) and the node's effects
are carried out when the priced work ends. Virtual time is kept in microseconds; without
costs every item still falls on a whole millisecond and the trace is the one from before.
`offer_load(rate_tps, duration_ms)` is an open-loop client for throughput studies
(`seoulchain.sim.costs`), with `SimLimits` giving the blocks and mempools real sizes.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.consensus.machine import ConsensusConfig
from seoulchain.consensus.safety import InMemorySigningStateStore
from seoulchain.consensus.wal import TailReport
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, LocalError
from seoulchain.execution.engine import Engine, decode_result
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.service import Service, load_services
from seoulchain.ledger.genesis import Agency, Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction, Validator, ValidatorSet
from seoulchain.node.mempool import Mempool
from seoulchain.node.validator import (
    Committed,
    Effect,
    Input,
    MessageArrived,
    MessageKind,
    Send,
    SetTimer,
    ValidatorConfig,
    ValidatorCore,
    decode_txs_message,
)
from seoulchain.sim.byzantine import Adversary, Behaviour, make_behaviour
from seoulchain.sim.checkers import Violation, check_cluster
from seoulchain.sim.costs import MICROS_PER_S, CpuCosts, EventWork
from seoulchain.sim.network import Network, NetworkFaults
from seoulchain.sim.wal import CrashInjected, MemoryWAL

T = TypeVar("T")

CHAIN_ID = "seoul-sim"
GENESIS_TIME_MS = 1_700_000_000_000
ISSUER_ROLE = "notary.issuer"
# The agencies that govern a simulated chain, k of n, as a devnet's four do.
SIM_AGENCIES = 4
SIM_THRESHOLD = 3
# Deadline of the agencies' validator-change proposals: beyond any simulated run's height.
SIM_PROPOSAL_DEADLINE_HEIGHT = 100_000
# Small blocks keep each seed's signature work small; txs still span several blocks.
SIM_BLOCK_TXS_MAX = 8
SIM_BLOCK_TX_BYTES_MAX = 64 * 1024
SIM_MEMPOOL_TXS_MAX = 1000
SIM_MEMPOOL_BYTES_MAX = 4 * 1024 * 1024
# Half of CometBFT's timeout_commit: heights come faster in virtual time, nothing else changes.
SIM_COMMIT_PAUSE_MS = 500
# Client transactions never expire within a simulation.
TX_EXPIRY_HEIGHT = 10**9
# One run_until/run_for call processes at most this many queue items (a livelock guard:
# virtual time always advances through gossip timers, so a deadline normally ends a run).
QUEUE_ITEMS_PER_RUN_MAX = 20_000_000
# Clients are the notary's issuers; a few interleave their nonces across nodes.
CLIENTS_DEFAULT = 3
PARTS_PER_MILLION = 1_000_000

# Virtual time is kept in microseconds (modelled costs are fractions of a millisecond);
# without costs every item falls on a whole millisecond, as before.
MICROS_PER_MS = 1000
# An open-loop load hands each tick's transactions, as one batch, to the next validator.
LOAD_TICK_MS = 10

_DELIVER, _TIMER, _CALL, _SUBMIT, _DONE = 0, 1, 2, 3, 4


class SafetyViolation(AssertionError):
    """A checker found a violation of agreement, validity, integrity or state identity."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__("; ".join(str(violation) for violation in violations))


class LivenessFailure(AssertionError):
    """Honest nodes did not reach the required height within the virtual time bound."""


def count_txs(data: bytes) -> int:
    """Return how many transactions a peer's txs message carries (0 if malformed)."""
    try:
        return len(decode_txs_message(data))
    except DecodeError:
        return 0


def make_sim_key(seed: int, role: str, index: int) -> SigningKey:
    """Return the deterministic key of a simulated validator or client."""
    return SigningKey(sha256(f"seoulchain-sim/{seed}/{role}/{index}".encode()))


@dataclass
class SimNode:
    """One simulated process: its durable parts, its volatile core, and what it committed."""

    index: int
    key: SigningKey
    store: BlockStore
    wal: MemoryWAL
    signing_store: InMemorySigningStateStore
    behaviour: Behaviour
    is_validator: bool
    core: ValidatorCore | None = None
    incarnation: int = 0
    clock_offset_ms: int = 0
    clock_drift_ppm: int = 0
    crash_mid_commit_step: str | None = None
    crash_after_lock: bool = False
    # The crash after locking is a power cut (the WAL keeps only what was synced).
    power_loss_after_lock: bool = False
    crashes: int = 0
    assertion_failures: int = 0
    recoveries: list[TailReport] = field(default_factory=list)
    commits: dict[int, bytes] = field(default_factory=dict)
    state_roots: dict[int, bytes] = field(default_factory=dict)
    txs_committed: int = 0
    # With modelled costs: events waiting while the node works, whether it works (an
    # effects item is pending), and its busy time so far (µs).
    inbox: deque[tuple[int, int, Any]] = field(default_factory=deque)
    is_working: bool = False
    busy_us: int = 0

    @property
    def is_crashed(self) -> bool:
        return self.core is None

    @property
    def is_honest(self) -> bool:
        return self.behaviour.is_honest

    @property
    def height(self) -> int:
        """Last height in this node's store (committed data survives crashes)."""
        if self.core is not None:
            return self.core.engine.height
        tip = self.store.get_tip()
        return 0 if tip is None else tip.height


@dataclass
class SimClient:
    """A notary issuer that signs anchors with increasing nonces and retries the oldest one."""

    key: SigningKey
    nonce: int = 0
    pending: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class SimLimits:
    """Block and mempool bounds of every simulated validator (small by default: each seed's
    signature work stays small; the scaling study uses the real node's sizes)."""

    block_txs_max: int = SIM_BLOCK_TXS_MAX
    block_tx_bytes_max: int = SIM_BLOCK_TX_BYTES_MAX
    mempool_txs_max: int = SIM_MEMPOOL_TXS_MAX
    mempool_bytes_max: int = SIM_MEMPOOL_BYTES_MAX


@dataclass(frozen=True, slots=True)
class Submission:
    """Client transactions handed to a node: one (`submit_tx`) or a batch (`submit_txs`)."""

    raws: tuple[bytes, ...]
    is_batch: bool


@dataclass
class LoadRecord:
    """An open-loop load: what was offered when, and when each tx committed at the node it
    was submitted to (virtual µs)."""

    rate_tps: int
    start_us: int
    end_us: int
    submitted: int = 0
    pending: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    submit_times_us: list[int] = field(default_factory=list)
    commit_times_us: list[int] = field(default_factory=list)
    latencies_us: list[int] = field(default_factory=list)
    # Per height: when the last node committed it, and the backlog just after.
    troughs: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def backlog(self) -> int:
        """Txs submitted and not yet committed at their node."""
        return len(self.pending)

    def on_commit(self, index: int, height: int, tx_hashes: list[bytes], now_us: int) -> None:
        """Record the txs of a block that node `index` committed at `now_us`."""
        for tx_hash in tx_hashes:
            entry = self.pending.get(tx_hash)
            if entry is not None and entry[1] == index:
                del self.pending[tx_hash]
                self.commit_times_us.append(now_us)
                self.latencies_us.append(now_us - entry[0])
        self.troughs[height] = (now_us, self.backlog)

    def compute_backlog_growth_tps(self) -> float:
        """Return how fast the backlog grew over the offered window after its first quarter
        (the pipeline filling).

        The backlog is a sawtooth, up between commits and down at each; it is sampled at one
        phase, just after the last node committed each height (`troughs`), and the growth is
        the least-squares slope of those samples (0 with fewer than two).
        """
        first = self.start_us + (self.end_us - self.start_us) // 4
        points = [(time_us, backlog) for time_us, backlog in self.troughs.values()
                  if first <= time_us <= self.end_us]
        if len(points) < 2:
            return 0.0
        mean_time = sum(time_us for time_us, _ in points) / len(points)
        mean_backlog = sum(backlog for _, backlog in points) / len(points)
        covariance = sum((time_us - mean_time) * (backlog - mean_backlog)
                         for time_us, backlog in points)
        variance = sum((time_us - mean_time) ** 2 for time_us, _ in points)
        return covariance / variance * MICROS_PER_S if variance else 0.0


class NodeHandle:
    """The scenario DSL's view of one node: `cluster.node(2).crash()`."""

    def __init__(self, cluster: Cluster, index: int) -> None:
        self.cluster = cluster
        self.index = index

    @property
    def sim(self) -> SimNode:
        return self.cluster.nodes[self.index]

    @property
    def core(self) -> ValidatorCore:
        if self.sim.core is None:
            raise LocalError(f"node {self.index} is crashed")
        return self.sim.core

    @property
    def height(self) -> int:
        return self.sim.height

    @property
    def is_crashed(self) -> bool:
        return self.sim.is_crashed

    def crash(self, *, torn_write: bool = False, zero_fill: bool = False,
              power_loss: bool = False) -> NodeHandle:
        """Crash now; with `torn_write`, the node instead dies inside its next WAL append;
        with `power_loss`, the WAL also loses what was written since its last sync."""
        self.cluster.crash(self.index, torn_write=torn_write, zero_fill=zero_fill,
                           power_loss=power_loss)
        return self

    def crash_during_commit(self, step: str = "state") -> NodeHandle:
        """Crash inside the next block's store transaction, at `step` (rolled back)."""
        self.sim.crash_mid_commit_step = step
        return self

    def crash_after_lock(self, *, power_loss: bool = False) -> NodeHandle:
        """Crash right after the node next locks on a block (its lock must survive), by a
        power cut with `power_loss`."""
        self.sim.crash_after_lock = True
        self.sim.power_loss_after_lock = power_loss
        return self

    def restart(self) -> NodeHandle:
        """Restart from the store, the WAL and the signing store."""
        self.cluster.restart(self.index)
        return self

    def slow(self, delay_ms: int) -> NodeHandle:
        """Add `delay_ms` to every message this node sends or receives."""
        self.cluster.network.slow_ms[self.index] = delay_ms
        return self

    def skew(self, offset_ms: int, drift_ppm: int = 0) -> NodeHandle:
        """Offset this node's clock and make it run fast (drift > 0) or slow."""
        assert -PARTS_PER_MILLION // 2 < drift_ppm < PARTS_PER_MILLION // 2
        self.sim.clock_offset_ms = offset_ms
        self.sim.clock_drift_ppm = drift_ppm
        return self


class Cluster:
    """n validators (plus twins and standbys) on a seeded virtual network, run deterministically."""

    def __init__(self, n: int, seed: int, *, byzantine: dict[int, str] | None = None,
                 canary: bool = False, faults: NetworkFaults | None = None,
                 clients: int = CLIENTS_DEFAULT, standbys: int = 0,
                 rng: random.Random | None = None, limits: SimLimits | None = None,
                 costs: CpuCosts | None = None,
                 empty_blocks_interval_ms: int | None = None) -> None:
        if n < 1:
            raise LocalError("a cluster has at least one validator")
        byzantine = dict(byzantine or {})
        if len(byzantine) > (n - 1) // 3:
            raise LocalError(f"{len(byzantine)} Byzantine validators exceed f = {(n - 1) // 3}")
        self.seed = seed
        self.rng = rng or random.Random(seed)
        self.now_us = 0
        self.chain_id = CHAIN_ID
        self.limits = limits or SimLimits()
        # All-zero costs are no costs: the model-free event loop, item for item.
        self.costs = None if costs is None or costs.is_zero() else costs
        # Called with (node index, start µs, end µs) for each busy interval (tests, tools).
        self.on_busy: Callable[[int, int, int], None] | None = None
        self.load: LoadRecord | None = None
        # None: an empty block every commit pause; else create_empty_blocks off, with this
        # proof-of-life interval (0: blocks only for transactions).
        self.empty_blocks_interval_ms = empty_blocks_interval_ms
        self.config = ValidatorConfig(
            ConsensusConfig(CHAIN_ID, canary_ignore_lock=canary,
                            create_empty_blocks=empty_blocks_interval_ms is None,
                            create_empty_blocks_interval_ms=empty_blocks_interval_ms or 0),
            commit_pause_ms=SIM_COMMIT_PAUSE_MS, block_txs_max=self.limits.block_txs_max,
            block_tx_bytes_max=self.limits.block_tx_bytes_max)
        self.services: dict[str, Service] = load_services()
        validator_keys = [make_sim_key(seed, "validator", index) for index in range(n)]
        self.clients = [SimClient(make_sim_key(seed, "client", index)) for index in range(clients)]
        self.agencies = [SimClient(make_sim_key(seed, "agency", index))
                         for index in range(SIM_AGENCIES)]
        # Validator-change proposals (tx hashes) not yet seen committed, to be approved.
        self.pending_proposals: list[bytes] = []
        # Genesis pins the installed services, as `init` and `devnet` do, so every node runs
        # the start-up and per-height version checks of a real node.
        self.genesis = Genesis(
            CHAIN_ID, GENESIS_TIME_MS,
            ValidatorSet.of([Validator(key.public_key, 1, f"v{index}")
                             for index, key in enumerate(validator_keys)]),
            {ISSUER_ROLE: tuple(sorted(client.key.public_key for client in self.clients))},
            tuple(Agency(f"agency-{index}", agency.key.public_key)
                  for index, agency in enumerate(self.agencies)),
            threshold=SIM_THRESHOLD, services=get_installed_versions(self.services))
        self.validator_sets: dict[bytes, ValidatorSet] = {
            self.genesis.validators.hash(): self.genesis.validators}
        self.network = Network(self.rng, 0, faults)
        self.adversary = Adversary(self)
        self.nodes: list[SimNode] = []
        for index, key in enumerate(validator_keys):
            behaviour = make_behaviour(byzantine.get(index, "honest"), self, index)
            self._add_node(key, behaviour, is_validator=True)
            if behaviour.name == "twins":
                self._add_node(key, make_behaviour("twins", self, index), is_validator=True)
        for index in range(standbys):
            self._add_node(make_sim_key(seed, "standby", index), make_behaviour("honest", self, 0),
                           is_validator=False)
        self.submitted: dict[bytes, bytes] = {}
        self.trace = hashlib.sha256()
        self.items_processed = 0
        self.faults_active = True
        self._queue: list[tuple[int, int, int, int, int, Any]] = []
        self._sequence = 0
        for node in self.nodes:
            self._start(node)

    @property
    def now_ms(self) -> int:
        """Virtual time, in whole milliseconds."""
        return self.now_us // MICROS_PER_MS

    # ------------------------------------------------------------------ the DSL

    def node(self, index: int) -> NodeHandle:
        if not 0 <= index < len(self.nodes):
            raise LocalError(f"no node {index}; the cluster has {len(self.nodes)}")
        return NodeHandle(self, index)

    def partition(self, *groups: Iterable[int]) -> Cluster:
        """Split the network into groups that cannot reach each other (both ways)."""
        self.network.partition(*groups)
        return self

    def partition_one_way(self, sources: Iterable[int], targets: Iterable[int]) -> Cluster:
        """Cut messages from `sources` to `targets`; the other direction still works."""
        self.network.cut_one_way(sources, targets)
        return self

    def isolate(self, index: int) -> Cluster:
        """Cut one node off from all others."""
        self.network.isolate(index)
        return self

    def heal(self) -> Cluster:
        """Remove every partition."""
        self.network.heal()
        return self

    def set_faults(self, **rates: Any) -> Cluster:
        """Change network fault rates, e.g. `set_faults(loss=0.2, duplicate=0.3)`."""
        self.network.faults = NetworkFaults(**{**vars(self.network.faults), **rates})
        return self

    def submit(self, count: int = 1, *, spread_ms: int = 0) -> Cluster:
        """Have clients submit `count` signed notary anchors to random nodes over `spread_ms`."""
        for _ in range(count):
            client = self.rng.randrange(len(self.clients))
            delay = self.rng.randint(0, spread_ms) if spread_ms else 0
            self.at(self.now_ms + delay, lambda client=client: self.submit_from(client))
        return self

    def at(self, time_ms: int, call: Callable[[], object]) -> Cluster:
        """Run `call` at virtual time `time_ms` (faults, submissions, scenario steps)."""
        self._push(max(time_ms * MICROS_PER_MS, self.now_us), _CALL, -1, 0, call)
        return self

    def offer_load(self, rate_tps: int, duration_ms: int) -> LoadRecord:
        """Offer `rate_tps` signed notary anchors a second, open loop, for `duration_ms`.

        Every `LOAD_TICK_MS` the txs that fell due go as one batch to the next validator in
        turn, signed by the clients assigned to it (client c to validator c mod n, so each
        mempool sees a signer's nonces in order); the returned record tracks each tx until
        the node it went to commits it.
        """
        validators = [node for node in self.nodes if node.is_validator]
        if rate_tps < 1 or duration_ms < LOAD_TICK_MS or len(self.clients) < len(validators):
            raise LocalError("a load needs a positive rate, a duration of at least one tick "
                             "and at least one client per validator")
        start_us = self.now_us
        load = self.load = LoadRecord(rate_tps, start_us, start_us + duration_ms * MICROS_PER_MS)
        for tick in range(duration_ms // LOAD_TICK_MS):
            due = (rate_tps * (tick + 1) * LOAD_TICK_MS // 1000
                   - rate_tps * tick * LOAD_TICK_MS // 1000)
            if due:
                target = validators[tick % len(validators)]
                self._push(start_us + tick * LOAD_TICK_MS * MICROS_PER_MS, _CALL, -1, 0,
                           lambda target=target, due=due: self._submit_load(target, due, load))
        return load

    def _submit_load(self, node: SimNode, count: int, load: LoadRecord) -> None:
        """Sign `count` anchors from the clients assigned to `node` and submit them as a batch."""
        validators = [item for item in self.nodes if item.is_validator]
        position = validators.index(node)
        clients = self.clients[position::len(validators)]
        raws = []
        for _ in range(count):
            client = clients[load.submitted % len(clients)]
            raw = self.sign_tx(client, "notary", "anchor",
                               {"doc_hash": self.rng.randbytes(32), "kind": "load"})
            load.pending[sha256(raw)] = (self.now_us, node.index)
            load.submit_times_us.append(self.now_us)
            load.submitted += 1
            raws.append(raw)
        if not node.is_crashed:
            self._submit_to_node(node, Submission(tuple(raws), is_batch=True))

    def run_for(self, duration_ms: int) -> Cluster:
        """Advance virtual time by `duration_ms`."""
        self.run_while(lambda: True, self.now_ms + duration_ms)
        return self

    def run_until(self, height: int, timeout_ms: int) -> Cluster:
        """Run until every live honest validator has committed `height`, or fail."""
        if not self.run_while(lambda: not self.has_reached(height), self.now_ms + timeout_ms):
            raise LivenessFailure(f"seed {self.seed}: not every live honest validator reached "
                                  f"height {height} within {timeout_ms} ms; heights: "
                                  f"{self.describe_heights()}")
        return self

    def check(self) -> Cluster:
        """Run every safety checker; raise `SafetyViolation` listing what they found."""
        violations = self.violations()
        if violations:
            raise SafetyViolation(violations)
        return self

    def violations(self) -> list[Violation]:
        """Return what the agreement, validity, integrity and state checkers find."""
        return check_cluster(self)

    def change_validators(self, add: Iterable[int] = (), remove: Iterable[int] = ()) -> Cluster:
        """Have the agencies add nodes (power 1) and remove others: the first agency proposes
        each change, two more approve it once committed, and it takes effect two heights
        after the block that reaches k. Every transaction goes to every live node."""
        changes = [(index, 1) for index in add] + [(index, 0) for index in remove]
        for index, power in changes:
            raw = self.sign_tx(self.agencies[0], "gov", "propose", {
                "kind": "set_validator", "public_key": self.nodes[index].key.public_key,
                "power": power, "name": f"node{index}",
                "deadline_height": SIM_PROPOSAL_DEADLINE_HEIGHT})
            self._submit_to_live(raw)
            self.pending_proposals.append(sha256(raw))
        self.at(self.now_ms + SIM_COMMIT_PAUSE_MS, self._approve_committed_proposals)
        return self

    def _approve_committed_proposals(self) -> None:
        """Approve, as the second and third agencies, each proposal a live node committed;
        look again a commit pause later while some are not committed yet."""
        live = [node for node in self.nodes if not node.is_crashed and node.is_honest]
        reader = max(live, key=lambda node: node.height) if live else None
        waiting = []
        for tx_hash in self.pending_proposals:
            record = None if reader is None else reader.store.get_tx(tx_hash)
            if record is None:
                waiting.append(tx_hash)
                continue
            result = decode_result(record.result)
            proposed = [event.attributes["proposal"] for event in result.events
                        if event.kind == "gov.proposed"]
            for proposal, agency in itertools.product(proposed, self.agencies[1:SIM_THRESHOLD]):
                self._submit_to_live(self.sign_tx(agency, "gov", "approve",
                                                  {"proposal": proposal}))
        self.pending_proposals = waiting
        if waiting:
            self.at(self.now_ms + SIM_COMMIT_PAUSE_MS, self._approve_committed_proposals)

    def _submit_to_live(self, raw: bytes) -> None:
        for node in self.nodes:
            if not node.is_crashed:
                self._submit_to(node, raw)

    def schedule_validator_change(self, at_ms: int, add: Iterable[int] = (),
                                  remove: Iterable[int] = ()) -> Cluster:
        """Request a validator-set change at virtual time `at_ms`."""
        add, remove = list(add), list(remove)
        return self.at(at_ms, lambda: self.change_validators(add, remove))

    # ------------------------------------------------------------------ observation

    @property
    def honest_nodes(self) -> list[SimNode]:
        return [node for node in self.nodes if node.is_honest]

    @property
    def honest_validators(self) -> list[SimNode]:
        return [node for node in self.nodes if node.is_honest and node.is_validator]

    @property
    def height(self) -> int:
        """Lowest height committed by a live honest node."""
        heights = [node.height for node in self.honest_nodes if not node.is_crashed]
        return min(heights, default=0)

    def has_reached(self, height: int) -> bool:
        """Return True if every live honest node has committed `height`."""
        return all(node.height >= height for node in self.honest_nodes if not node.is_crashed)

    def describe_heights(self) -> str:
        return ", ".join(
            f"{node.index}:{node.height}{'x' if node.is_crashed else ''}"
            f"{'' if node.is_honest else '(' + node.behaviour.name + ')'}"
            for node in self.nodes)

    def node_time_ms(self, node: SimNode) -> int:
        """Return `node`'s local clock: genesis time plus offset plus drifting virtual time."""
        drift = self.now_ms * node.clock_drift_ppm // PARTS_PER_MILLION
        return GENESIS_TIME_MS + node.clock_offset_ms + self.now_ms + drift

    def trace_digest(self) -> str:
        """Return a digest of every item processed so far (equal digests: equal runs)."""
        return self.trace.hexdigest()

    # ------------------------------------------------------------------ crash and restart

    def crash(self, index: int, *, torn_write: bool = False, zero_fill: bool = False,
              power_loss: bool = False) -> None:
        """Crash node `index` now, or arm a torn write that kills it inside its next append;
        a power cut also loses the WAL's unsynced tail."""
        node = self.nodes[index]
        if node.is_crashed:
            return
        if torn_write:
            node.wal.arm_torn_write(self.rng.randint(1, 24), zero_fill)
            return
        self._kill(node, power_loss=power_loss)

    def restart(self, index: int) -> None:
        """Rebuild node `index` from its durable state; crash it first if it still runs."""
        node = self.nodes[index]
        if not node.is_crashed:
            self._kill(node)
        self._start(node)

    def _kill(self, node: SimNode, *, power_loss: bool = False) -> None:
        if power_loss:
            # The OS may have written any part of the unsynced tail, up to a torn record.
            unsynced = len(node.wal.data) - node.wal.synced_bytes
            node.wal.lose_unsynced(self.rng.randint(0, unsynced))
        node.core = None
        node.incarnation += 1
        node.inbox.clear()
        node.is_working = False
        node.crashes += 1
        node.crash_mid_commit_step = None
        node.crash_after_lock = False
        self._record("crash", node.index, b"")

    def _start(self, node: SimNode) -> None:
        """Build the node's volatile parts over its durable ones and carry out the effects."""
        replay = node.wal.replay()
        engine = Engine(self.genesis, node.store, self.services, verify_evidence_bytes)
        mempool = Mempool(engine, self.limits.mempool_txs_max, self.limits.mempool_bytes_max)
        safety = node.behaviour.make_safety(node.key, self.chain_id, node.signing_store)
        node.incarnation += 1
        recovery = self._guard(node, lambda: ValidatorCore.recover(
            key=node.key, engine=engine, mempool=mempool, wal=node.wal, replay=replay,
            signing_store=node.signing_store, config=self.config,
            clock=lambda: self.node_time_ms(node), safety=safety))
        if recovery is None:
            return
        node.core = recovery.core
        node.recoveries.append(recovery.tail)
        self._record("start", node.index, replay.tail.defect or "")
        self._carry_out(node, recovery.effects)

    def _add_node(self, key: SigningKey, behaviour: Behaviour, *, is_validator: bool) -> SimNode:
        index = self.network.add_node()
        node = SimNode(index, key, BlockStore(":memory:"), MemoryWAL(),
                       InMemorySigningStateStore(), behaviour, is_validator)
        node.store.crash_hook = lambda step, node=node: self._on_store_step(node, step)
        self.nodes.append(node)
        return node

    def _on_store_step(self, node: SimNode, step: str) -> None:
        if node.crash_mid_commit_step == step:
            node.crash_mid_commit_step = None
            raise CrashInjected(f"crash inside the block store transaction at {step!r}")

    # ------------------------------------------------------------------ clients

    def submit_from(self, client_index: int) -> None:
        """Client signs a new anchor, sends it to a random live node, and retries its oldest."""
        live = [node for node in self.nodes if not node.is_crashed]
        if not live:
            return
        client = self.clients[client_index]
        raw = self.sign_tx(client, "notary", "anchor",
                           {"doc_hash": self.rng.randbytes(32), "kind": "sim"})
        client.pending.append((sha256(raw), raw))
        target = live[self.rng.randrange(len(live))]
        client.pending = [(pending_hash, pending_raw) for pending_hash, pending_raw
                          in client.pending if target.store.get_tx(pending_hash) is None]
        for _, pending_raw in client.pending[:2]:
            self._submit_to(target, pending_raw)

    def sign_tx(self, client: SimClient, service: str, method: str,
                args: dict[str, Any]) -> bytes:
        """Return the client's next transaction, signed, and remember it as submitted."""
        client.nonce += 1
        raw = Transaction.create(client.key, chain_id=self.chain_id, nonce=client.nonce,
                                 expiry_height=TX_EXPIRY_HEIGHT, service=service, method=method,
                                 args=args).encode()
        self.submitted[sha256(raw)] = raw
        return raw

    def _submit_to(self, node: SimNode, raw: bytes) -> None:
        if self.costs is not None:
            self._submit_to_node(node, Submission((raw,), is_batch=False))
            return
        assert node.core is not None
        self._record("submit", node.index, raw)
        _, effects = node.core.submit_tx(raw)
        self._carry_out(node, effects)

    def _submit_to_node(self, node: SimNode, submission: Submission) -> None:
        """Hand client transactions to a live node: at once, or behind its work with costs."""
        if self.costs is not None:
            self._enqueue(node, _SUBMIT, 0, submission)
            return
        self._handle_submission(node, submission)

    def _handle_submission(self, node: SimNode, submission: Submission) -> list[Effect]:
        """Let the node admit client transactions; carry out the effects without costs."""
        assert node.core is not None
        core = node.core
        for raw in submission.raws:
            self._record("submit", node.index, raw)
        if submission.is_batch:
            effects = core.submit_txs(list(submission.raws))[1]
        else:
            effects = [effect for raw in submission.raws for effect in core.submit_tx(raw)[1]]
        if self.costs is None:
            self._carry_out(node, effects)
        return effects

    # ------------------------------------------------------------------ the event loop

    def run_while(self, condition: Callable[[], bool], deadline_ms: int) -> bool:
        """Process items while `condition()` holds and time is before the deadline.

        Return True if the condition stopped holding (and False at the deadline).
        """
        deadline_us = deadline_ms * MICROS_PER_MS
        for _ in range(QUEUE_ITEMS_PER_RUN_MAX):
            if not condition():
                return True
            if not self._queue or self._queue[0][0] > deadline_us:
                self.now_us = max(self.now_us, deadline_us)
                return not condition()
            self._step()
        raise AssertionError("the simulation processed too many items in one run")

    def _push(self, time_us: int, kind: int, index: int, incarnation: int, payload: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (time_us, self._sequence, kind, index, incarnation, payload))

    def _step(self) -> None:
        time_us, _, kind, index, incarnation, payload = heapq.heappop(self._queue)
        assert time_us >= self.now_us
        self.now_us = time_us
        self.items_processed += 1
        if kind == _CALL:
            payload()
            return
        node = self.nodes[index]
        if kind == _DONE:
            self._finish_work(node, incarnation, payload)
            return
        if self.costs is not None:
            self._enqueue(node, kind, incarnation, payload)
            return
        if node.core is None or (kind == _TIMER and incarnation != node.incarnation):
            return
        if kind == _DELIVER:
            self._record("recv", index, payload.data)
            node.behaviour.on_receive(node, payload)
        else:
            self._record("timer", index, repr(payload))
        self._handle(node, payload)
        if self.adversary.is_active:
            self.adversary.after_step()

    # ------------------------------------------------------------------ modelled costs

    def _enqueue(self, node: SimNode, kind: int, incarnation: int, payload: Any) -> None:
        """Queue an event behind the node's work (FIFO); start it at once if the node idles."""
        if node.core is None:
            return
        node.inbox.append((kind, incarnation, payload))
        if not node.is_working:
            self._work_next(node)

    def _work_next(self, node: SimNode) -> None:
        """Start the node's next waiting event: handle it now, keep the node busy for its
        modelled cost, and carry out its effects when that ends."""
        assert self.costs is not None
        while node.inbox and not node.is_working and node.core is not None:
            kind, incarnation, payload = node.inbox.popleft()
            if kind == _TIMER and incarnation != node.incarnation:
                continue
            before = self._snapshot_work(node)
            if kind == _SUBMIT:
                effects: list[Effect] | None = self._handle_submission(node, payload)
            else:
                if kind == _DELIVER:
                    self._record("recv", node.index, payload.data)
                    node.behaviour.on_receive(node, payload)
                else:
                    self._record("timer", node.index, repr(payload))
                effects = self._handle(node, payload)
            if self.adversary.is_active:
                self.adversary.after_step()
            if effects is None or node.core is None:
                continue  # the node died handling it: nothing it did leaves the node
            busy_us = self.costs.compute_busy_us(
                self._measure_work(node, kind, payload, effects, before))
            node.busy_us += busy_us
            if self.on_busy is not None:
                self.on_busy(node.index, self.now_us, self.now_us + busy_us)
            node.is_working = True
            self._push(self.now_us + busy_us, _DONE, node.index, node.incarnation, effects)

    def _finish_work(self, node: SimNode, incarnation: int, effects: list[Effect]) -> None:
        """The node's work ends: its effects happen now, then its next event starts."""
        if incarnation != node.incarnation:
            return  # it crashed meanwhile: the work and its inbox died with it
        node.is_working = False
        self._carry_out(node, effects)
        self._work_next(node)

    def _snapshot_work(self, node: SimNode) -> tuple[int, int, frozenset[bytes]]:
        """Return the node's counters that an event's work moves: WAL syncs, signatures
        persisted, executions the engine holds."""
        assert node.core is not None
        return (node.wal.syncs, node.signing_store.saves,
                frozenset(node.core.engine.executions))

    def _measure_work(self, node: SimNode, kind: int, payload: Any, effects: list[Effect],
                      before: tuple[int, int, frozenset[bytes]]) -> EventWork:
        """Return what handling `payload` made the node do (for pricing by `CpuCosts`)."""
        assert node.core is not None
        syncs, saves, executions = before
        admitted = consensus = 0
        if kind == _SUBMIT:
            admitted = len(payload.raws)
        elif kind == _DELIVER:
            if payload.kind in (MessageKind.PROPOSAL, MessageKind.VOTE):
                consensus = 1
            elif payload.kind == MessageKind.TX:
                admitted = 1
            elif payload.kind == MessageKind.TXS:
                admitted = count_txs(payload.data)
        committed = [effect.block for effect in effects if isinstance(effect, Committed)]
        cached = node.core.engine.executions
        executed = [len(cached[block_id].txs) for block_id in cached
                    if block_id not in executions]
        executed += [len(block.txs) for block in committed
                     if block.block_id() not in executions and block.block_id() not in cached]
        return EventWork(
            consensus_messages=consensus, txs_admitted=admitted,
            blocks_executed=len(executed), txs_executed=sum(executed),
            blocks_committed=len(committed),
            txs_committed=sum(len(block.txs) for block in committed),
            fsyncs=(node.wal.syncs - syncs + 2 * (node.signing_store.saves - saves)
                    + len(committed)))

    def _guard(self, node: SimNode, call: Callable[[], T]) -> T | None:
        """Run a call into a node's core; an injected crash kills the node, an assertion
        (a twin's) fails it as Byzantine, and either returns None."""
        try:
            return call()
        except CrashInjected:
            self._kill(node)
        except AssertionError as exc:
            self._fail_byzantine(node, exc)
        return None

    def _handle(self, node: SimNode, event: Input) -> list[Effect] | None:
        """Hand `event` to the node's core; carry out the effects now unless costs defer them.

        Return the effects, or None if the node died handling the event.
        """
        assert node.core is not None
        core = node.core
        effects = self._guard(node, lambda: core.handle(event))
        if effects is None:
            return None
        if self.costs is None:
            self._carry_out(node, effects)
        if (node.crash_after_lock and node.core is not None
                and node.core.machine.state.locked_round >= 0):
            self._kill(node, power_loss=node.power_loss_after_lock)
        return effects

    def _fail_byzantine(self, node: SimNode, exc: AssertionError) -> None:
        """A Byzantine node's core broke an invariant (twins share a key): it dies.

        An honest node's broken invariant is a bug the run must report, so it propagates.
        """
        if node.is_honest:
            raise exc
        node.assertion_failures += 1
        self._kill(node)

    def _carry_out(self, node: SimNode, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Send():
                    for send, reliable in node.behaviour.on_send(node, effect):
                        self.send(node, send, reliable=reliable)
                case SetTimer(duration_ms, event):
                    scale = PARTS_PER_MILLION + node.clock_drift_ppm
                    delay_us = duration_ms * PARTS_PER_MILLION // scale * MICROS_PER_MS
                    self._push(self.now_us + delay_us, _TIMER, node.index, node.incarnation,
                               event)
                case Committed(block, _, result):
                    node.commits[block.height] = block.block_id()
                    node.state_roots[block.height] = result.execution.state_root
                    node.txs_committed += len(block.txs)
                    if self.load is not None:
                        self.load.on_commit(node.index, block.height,
                                            result.execution.tx_hashes, self.now_us)
                    assert node.core is not None
                    for validator_set in (node.core.engine.validators,
                                          node.core.engine.next_validators):
                        self.validator_sets.setdefault(validator_set.hash(), validator_set)

    def send(self, node: SimNode, send: Send, *, reliable: bool = False) -> None:
        """Put `send` from `node` on the network: one delivery per copy that gets through."""
        message = MessageArrived(node.key.public_key, send.kind, send.data)
        for target in self.nodes:
            if target.index == node.index:
                continue
            if send.to is not None and target.key.public_key != send.to:
                continue
            if (self.adversary.is_active and not reliable
                    and not self.adversary.allows(node, target, send)):
                continue
            for delay in self.network.compute_delays(node.index, target.index, reliable):
                self._push(self.now_us + delay * MICROS_PER_MS, _DELIVER, target.index, 0,
                           message)

    def _record(self, what: str, index: int, data: bytes | str) -> None:
        stamp = self.now_ms if self.costs is None else f"{self.now_us}us"
        self.trace.update(f"{stamp} {what} {index} ".encode())
        self.trace.update(data if isinstance(data, bytes) else data.encode())
