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

Validator-set changes: standbys (keys outside the genesis set) follow the chain as
observers; `change_validators(add=[...], remove=[...])` has the cluster's admin sign
`validators.set_validator` transactions, which the engine applies at h + 2, from when the
added nodes vote. The checkers verify each block's commit against the set its header names.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.consensus.machine import ConsensusConfig
from seoulchain.consensus.safety import InMemorySigningStateStore
from seoulchain.consensus.wal import TailReport
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import LocalError
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import Service, load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction, Validator, ValidatorSet
from seoulchain.node.mempool import Mempool
from seoulchain.node.validator import (
    Committed,
    Effect,
    Input,
    MessageArrived,
    Send,
    SetTimer,
    ValidatorConfig,
    ValidatorCore,
)
from seoulchain.sim.byzantine import Adversary, Behaviour, make_behaviour
from seoulchain.sim.checkers import Violation, check_cluster
from seoulchain.sim.network import Network, NetworkFaults
from seoulchain.sim.wal import CrashInjected, MemoryWAL

T = TypeVar("T")

CHAIN_ID = "seoul-sim"
GENESIS_TIME_MS = 1_700_000_000_000
ISSUER_ROLE = "notary.issuer"
ADMIN_ROLE = "validators.admin"
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

_DELIVER, _TIMER, _CALL = 0, 1, 2


class SafetyViolation(AssertionError):
    """A checker found a violation of agreement, validity, integrity or state identity."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__("; ".join(str(violation) for violation in violations))


class LivenessFailure(AssertionError):
    """Honest nodes did not reach the required height within the virtual time bound."""


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
    crashes: int = 0
    assertion_failures: int = 0
    recoveries: list[TailReport] = field(default_factory=list)
    commits: dict[int, bytes] = field(default_factory=dict)
    state_roots: dict[int, bytes] = field(default_factory=dict)

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

    def crash(self, *, torn_write: bool = False, zero_fill: bool = False) -> NodeHandle:
        """Crash now; with `torn_write`, the node instead dies inside its next WAL append."""
        self.cluster.crash(self.index, torn_write=torn_write, zero_fill=zero_fill)
        return self

    def crash_during_commit(self, step: str = "state") -> NodeHandle:
        """Crash inside the next block's store transaction, at `step` (rolled back)."""
        self.sim.crash_mid_commit_step = step
        return self

    def crash_after_lock(self) -> NodeHandle:
        """Crash right after the node next locks on a block (its lock must survive)."""
        self.sim.crash_after_lock = True
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
                 rng: random.Random | None = None) -> None:
        if n < 1:
            raise LocalError("a cluster has at least one validator")
        byzantine = dict(byzantine or {})
        if len(byzantine) > (n - 1) // 3:
            raise LocalError(f"{len(byzantine)} Byzantine validators exceed f = {(n - 1) // 3}")
        self.seed = seed
        self.rng = rng or random.Random(seed)
        self.now_ms = 0
        self.chain_id = CHAIN_ID
        self.config = ValidatorConfig(
            ConsensusConfig(CHAIN_ID, canary_ignore_lock=canary),
            commit_pause_ms=SIM_COMMIT_PAUSE_MS, block_txs_max=SIM_BLOCK_TXS_MAX,
            block_tx_bytes_max=SIM_BLOCK_TX_BYTES_MAX)
        self.services: dict[str, Service] = load_services()
        validator_keys = [make_sim_key(seed, "validator", index) for index in range(n)]
        self.clients = [SimClient(make_sim_key(seed, "client", index)) for index in range(clients)]
        self.admin = SimClient(make_sim_key(seed, "admin", 0))
        self.genesis = Genesis(
            CHAIN_ID, GENESIS_TIME_MS,
            ValidatorSet.of([Validator(key.public_key, 1, f"v{index}")
                             for index, key in enumerate(validator_keys)]),
            {ISSUER_ROLE: tuple(sorted(client.key.public_key for client in self.clients)),
             ADMIN_ROLE: (self.admin.key.public_key,)})
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
        self._push(max(time_ms, self.now_ms), _CALL, -1, 0, call)
        return self

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
        """Have the admin add nodes (power 1) and remove others, effective two heights after
        the block that carries the request; the request goes to every live node."""
        changes = [(index, 1) for index in add] + [(index, 0) for index in remove]
        for index, power in changes:
            key = self.nodes[index].key.public_key
            raw = self.sign_tx(self.admin, "validators", "set_validator",
                               {"public_key": key, "power": power, "name": f"node{index}"})
            for node in self.nodes:
                if not node.is_crashed:
                    self._submit_to(node, raw)
        return self

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

    def crash(self, index: int, *, torn_write: bool = False, zero_fill: bool = False) -> None:
        """Crash node `index` now, or arm a torn write that kills it inside its next append."""
        node = self.nodes[index]
        if node.is_crashed:
            return
        if torn_write:
            node.wal.arm_torn_write(self.rng.randint(1, 24), zero_fill)
            return
        self._kill(node)

    def restart(self, index: int) -> None:
        """Rebuild node `index` from its durable state; crash it first if it still runs."""
        node = self.nodes[index]
        if not node.is_crashed:
            self._kill(node)
        self._start(node)

    def _kill(self, node: SimNode) -> None:
        node.core = None
        node.incarnation += 1
        node.crashes += 1
        node.crash_mid_commit_step = None
        node.crash_after_lock = False
        self._record("crash", node.index, b"")

    def _start(self, node: SimNode) -> None:
        """Build the node's volatile parts over its durable ones and carry out the effects."""
        replay = node.wal.replay()
        engine = Engine(self.genesis, node.store, self.services, verify_evidence_bytes)
        mempool = Mempool(engine, SIM_MEMPOOL_TXS_MAX, SIM_MEMPOOL_BYTES_MAX)
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
        assert node.core is not None
        self._record("submit", node.index, raw)
        _, effects = node.core.submit_tx(raw)
        self._carry_out(node, effects)

    # ------------------------------------------------------------------ the event loop

    def run_while(self, condition: Callable[[], bool], deadline_ms: int) -> bool:
        """Process items while `condition()` holds and time is before the deadline.

        Return True if the condition stopped holding (and False at the deadline).
        """
        for _ in range(QUEUE_ITEMS_PER_RUN_MAX):
            if not condition():
                return True
            if not self._queue or self._queue[0][0] > deadline_ms:
                self.now_ms = max(self.now_ms, deadline_ms)
                return not condition()
            self._step()
        raise AssertionError("the simulation processed too many items in one run")

    def _push(self, time_ms: int, kind: int, index: int, incarnation: int, payload: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (time_ms, self._sequence, kind, index, incarnation, payload))

    def _step(self) -> None:
        time_ms, _, kind, index, incarnation, payload = heapq.heappop(self._queue)
        assert time_ms >= self.now_ms
        self.now_ms = time_ms
        self.items_processed += 1
        if kind == _CALL:
            payload()
            return
        node = self.nodes[index]
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

    def _handle(self, node: SimNode, event: Input) -> None:
        assert node.core is not None
        core = node.core
        effects = self._guard(node, lambda: core.handle(event))
        if effects is None:
            return
        self._carry_out(node, effects)
        if (node.crash_after_lock and node.core is not None
                and node.core.machine.state.locked_round >= 0):
            self._kill(node)

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
                    delay = duration_ms * PARTS_PER_MILLION // scale
                    self._push(self.now_ms + delay, _TIMER, node.index, node.incarnation, event)
                case Committed(block, _, result):
                    node.commits[block.height] = block.block_id()
                    node.state_roots[block.height] = result.execution.state_root
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
                self._push(self.now_ms + delay, _DELIVER, target.index, 0, message)

    def _record(self, what: str, index: int, data: bytes | str) -> None:
        self.trace.update(f"{self.now_ms} {what} {index} ".encode())
        self.trace.update(data if isinstance(data, bytes) else data.encode())
