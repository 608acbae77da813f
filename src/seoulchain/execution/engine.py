"""The execution engine: checks transactions and applies blocks, deterministically.

Theory of operation: the engine sits between consensus and the services, with an interface
shaped like CometBFT's ABCI++ so the same application can later be served to CometBFT:

  check_tx(raw)            mempool admission against committed state
  prepare_proposal(...)    the proposer orders candidate txs into a block and executes it
  process_proposal(block)  a validator re-executes a proposed block and checks every root
  finalize_block(block)    the block's execution (cached from the two calls above)
  commit(block, commit)    everything the block changed goes to the store atomically
  query(service, name, args)

A transaction is checked in a fixed order: size, decode, chain id, signature, nonce
(strictly the signer's next), expiry, then service, method, role and argument schema, and
only then applied. Failures up to expiry are *admission* failures: such a transaction never
enters a block. Later failures are recorded on chain with their code; the nonce is consumed
and nothing else changes. The header's roots describe the state *after* the block, so a
commit for height h certifies the state at h.

The state root is the root of version h of the state tree (`proofs/smt.py`): executing a
block applies its writes to version h - 1 as a pure batch (any number of proposals for one
height may be executed), and `commit` persists the chosen block's batch with the block.
Every height applies a batch, even one with no writes, so tree version == height. With a
state retention of N versions, committing height h also prunes (in the block's transaction)
the versions below h - N that the store has not pinned.

Service versions (execution/platform.py): an engine is not built over installed services
that differ from the ones the chain runs (`ServicesMismatch`), and before it proposes or
validates a height it checks that no upgrade it lacks applies there (`UpgradeRequired`,
which the node treats as fatal). Both read committed state only, so every node agrees.

The engine does no I/O of its own: it reads committed state through the store it is given
and writes only in `commit`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from seoulchain.codec import decode
from seoulchain.crypto import is_valid_signature, sha256
from seoulchain.errors import DecodeError, LocalError, RemoteError, StorageError
from seoulchain.execution.platform import (
    PLATFORM_NAMESPACE,
    PlatformAccess,
    Upgrade,
    check_installed,
    check_versions,
    compute_versions,
    describe_params,
    get_upgrades,
)
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.execution.service import (
    AUTH_NAMESPACE,
    Service,
    ServiceError,
    TxContext,
    compute_nonce_key,
    compute_updated_set,
    describe_validation_error,
    has_role,
    record_genesis_role,
)
from seoulchain.execution.state import (
    Overlay,
    ServiceState,
    StateCache,
    StateReader,
)
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore, BlockWrite, Tip, TxRecord
from seoulchain.ledger.types import (
    BLOCK_BYTES_MAX,
    BLOCK_TXS_MAX,
    TX_BYTES_MAX,
    Block,
    BlockHeader,
    Commit,
    Transaction,
    Validator,
    ValidatorSet,
)
from seoulchain.proofs import StateProof
from seoulchain.proofs.logtree import LogFrontier, compute_leaf_hash, compute_root
from seoulchain.proofs.smt import SparseMerkleTree, TreeBatch, compute_value_hash

# Signature checks remembered so that a tx verified at admission is not verified again when
# its block is validated. A committed tx's entry is dropped at commit, so the cache holds the
# txs still pending: a full mempool (50,000) and a few full blocks of others' proposals.
# About 140 bytes an entry.
VERIFIED_CACHE_MAX = 65_536
# Decoded transactions kept for reuse between admission and execution: the mempool's worth
# (committed txs are dropped at commit). About 1.3 KiB an entry: 65 MiB when full.
DECODED_CACHE_MAX = 50_000
# How far ahead of the signer's next nonce the mempool accepts (pipelined submissions).
NONCE_WINDOW = 256
# Executions of proposals kept for finalize_block; a few rounds' worth of proposals.
EXECUTION_CACHE_MAX = 8
# State tree versions a node keeps by default ([state] retention_versions): about three hours
# of blocks at one a second, ten times the evidence window, so proofs at recent headers stay
# servable; 0 keeps every version. Pinned versions are kept whatever their age.
STATE_RETENTION_VERSIONS_DEFAULT = 10_000


# Evidence older than this many blocks is no longer accepted (as CometBFT's max age).
EVIDENCE_AGE_BLOCKS_MAX = 1000
# Evidence items one block may carry: far more than f validators can produce in a height,
# few enough that verifying them (two signatures each) stays a small part of a block.
EVIDENCE_PER_BLOCK_MAX = 50
# Chain-level records kept by the engine itself, in the state (and so under the state root).
CHAIN_NAMESPACE = "chain"
LAST_VALIDATORS_KEY = b"validators/last"
VALIDATORS_KEY = b"validators/current"
NEXT_VALIDATORS_KEY = b"validators/next"
EVIDENCE_KEY_PREFIX = b"evidence/"

# Checks raw evidence against a validator set; returns (offending validator, height).
EvidenceVerifier = Callable[[bytes, str, ValidatorSet], tuple[bytes, int]]


# Signatures verified per worker-thread task; large enough to amortise the hand-off.
PREVERIFY_CHUNK = 256


# A tx awaiting signature verification: raw bytes, decoded tx, hash, signed bytes.
PendingSignature = tuple[bytes, Transaction, bytes, bytes]


def verify_chunk(items: list[PendingSignature]) -> list[bool]:
    """Verify each (raw, tx, hash, sign bytes) item's signature; runs on a worker thread."""
    return [is_valid_signature(tx.signer, sign_bytes, tx.signature)
            for _, tx, _, sign_bytes in items]


def compute_commit_hash(commit: Commit | None) -> bytes:
    """Return the header's `last_commit_hash` for `commit` (empty for the first block)."""
    return b"" if commit is None else commit.hash()


class InvalidBlock(RemoteError):
    """A proposed or stored block breaks a rule of the chain."""


@dataclass(frozen=True, slots=True)
class TxCheck:
    """The outcome of admission checks on raw transaction bytes."""

    code: ResultCode
    log: str
    tx: Transaction | None = None
    hash: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code == ResultCode.OK


@dataclass
class BlockExecution:
    """Everything executing one block's transactions produced."""

    height: int
    time_ms: int
    txs: list[bytes]
    tx_hashes: list[bytes]
    signers: list[bytes]
    results: list[TxResult]
    writes: dict[bytes, bytes | None]
    frontier: LogFrontier
    log_nodes: list[tuple[int, int, bytes]]
    tx_root: bytes
    results_root: bytes
    state_root: bytes
    validators: ValidatorSet
    next_validators: ValidatorSet
    evidence: list[bytes] = field(default_factory=list)
    skipped: dict[bytes, TxCheck] = field(default_factory=dict)
    # The state tree's new version (root == state_root), persisted by `commit`.
    state_tree: TreeBatch | None = None


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A block that reached the store, with its results, for notifying waiting clients."""

    block: Block
    execution: BlockExecution


class Engine:
    """The deterministic state machine of the application, over one node's store."""

    def __init__(self, genesis: Genesis, store: BlockStore, services: dict[str, Service],
                 evidence_verifier: EvidenceVerifier | None = None,
                 state_retention_versions: int = 0,
                 known_upgrades: list[Upgrade] | None = None):
        self.genesis = genesis
        if type(state_retention_versions) is not int or state_retention_versions < 0:
            raise LocalError("state_retention_versions must be an integer >= 0 (0 keeps all)")
        # After committing height h, state tree versions below h - retention are pruned
        # (unless pinned in the store) inside the block's transaction; 0 keeps every version.
        self.state_retention_versions = state_retention_versions
        self.chain_id = genesis.chain_id
        self.store = store
        # Committed state as execution reads it: the store behind a read cache.
        self.state = StateCache(store)
        # The authenticated tree over that state; version h is the state after block h.
        self.state_tree = SparseMerkleTree(store.state_tree)
        self.services = services
        self.evidence_verifier = evidence_verifier
        self.verified: OrderedDict[bytes, None] = OrderedDict()
        # Decoded, well-signed transactions by their raw bytes, so a block's execution does
        # not decode again what the mempool admitted (insertion-ordered, oldest evicted).
        # An OrderedDict: evicting the oldest entry of a plain dict (`next(iter(d))`) walks
        # every deleted slot before it, hundreds of microseconds at these sizes.
        self.decoded: OrderedDict[bytes, tuple[Transaction, bytes]] = OrderedDict()
        self.executions: OrderedDict[bytes, BlockExecution] = OrderedDict()
        # Upgrades known from elsewhere (an audit's source chain): their versions may be
        # installed ahead of their heights, as those of upgrades scheduled in this state.
        self.known_upgrades = list(known_upgrades or ())
        self.chain_versions: tuple[int, dict[str, str] | None] = (-1, None)
        # Told how long each execute and commit took (the node's metrics); never affects
        # results.
        self.on_duration: Callable[[str, float], None] | None = None
        tip = store.get_tip()
        check_installed(genesis.services, services, self.state,
                        1 if tip is None else tip.height + 1, self.known_upgrades)
        self.init_genesis_state()
        self.load_tip()

    # ------------------------------------------------------------------ startup

    def init_genesis_state(self) -> None:
        """Write the genesis roles and each service's genesis state the first time the store
        is opened."""
        overlay = Overlay(self.store)
        auth = ServiceState(overlay, AUTH_NAMESPACE)
        for role, keys in sorted(self.genesis.roles.items()):
            for key in sorted(set(keys)):
                record_genesis_role(auth, role, key)
        for name, service in sorted(self.services.items()):
            if self.genesis.services and name not in self.genesis.services:
                continue  # installed ahead of the upgrade that adds it: not run yet
            service.init_genesis(ServiceState(overlay, name), self.genesis)
        batch = self.state_tree.apply_batch(0, overlay.writes)
        self.store.write_genesis_state(self.genesis.hash(), overlay.writes, batch,
                                       self.genesis.validators)

    def load_tip(self) -> None:
        tip = self.store.get_tip()
        if tip is None:
            genesis_root = self.store.get_meta("genesis_state_root")
            assert isinstance(genesis_root, bytes)
            self.tip = Tip(0, b"", genesis_root, 0, self.genesis.genesis_time_ms)
        else:
            self.tip = tip
        self.check_state_tree()
        chain = ServiceState(self.store, CHAIN_NAMESPACE)
        # The set that signs the last committed block, the next block, and the one after.
        self.last_validators = self.load_validator_set(chain, LAST_VALIDATORS_KEY)
        self.validators = self.load_validator_set(chain, VALIDATORS_KEY)
        self.next_validators = self.load_validator_set(chain, NEXT_VALIDATORS_KEY)
        self.record_restored_validator_sets()
        self.frontier = LogFrontier.from_reader(self.tip.log_size, self.store.read_log_node)

    def record_restored_validator_sets(self) -> None:
        """Record the sets around the tip in the store's history if it starts there (a
        state-synced store holds no history before its base)."""
        if self.store.get_validator_set(self.tip.height + 2) is not None:
            return
        with self.store.transaction():
            for offset, validators in enumerate((self.last_validators, self.validators,
                                                 self.next_validators)):
                if self.tip.height + offset >= 1:
                    self.store.write_validator_set(self.tip.height + offset, validators)

    def check_state_tree(self) -> None:
        """Raise `StorageError` unless the stored state tree's root at the tip is the tip's."""
        try:
            root = self.state_tree.get_root(self.tip.height)
        except LocalError as exc:  # the version is not stored: the store is damaged
            raise StorageError(f"state tree at height {self.tip.height}: {exc}") from exc
        if root != self.tip.state_root:
            raise StorageError(f"the state tree at height {self.tip.height} does not match the "
                               "tip's state root")

    def load_validator_set(self, chain: ServiceState, key: bytes) -> ValidatorSet:
        value = chain.get(key)
        if value is None:
            return self.genesis.validators
        try:
            return ValidatorSet.from_cbor(value)
        except DecodeError as exc:
            raise StorageError(f"stored validator set {key!r} is corrupt: {exc}") from exc

    @property
    def height(self) -> int:
        """Height of the last committed block (0 before the first)."""
        return self.tip.height

    # ------------------------------------------------------------------ admission

    def check_admission(self, raw: bytes, state: StateReader, height: int,
                        exact_nonce: bool) -> TxCheck:
        """Run the admission checks (size .. expiry) for inclusion at `height`."""
        if len(raw) > TX_BYTES_MAX:
            return TxCheck(ResultCode.TOO_LARGE,
                           f"transaction is {len(raw)} bytes; the limit is {TX_BYTES_MAX}")
        cached = self.decoded.get(raw)
        if cached is not None:
            tx, tx_hash = cached
        else:
            try:
                tx = Transaction.decode(raw)
            except DecodeError as exc:
                return TxCheck(ResultCode.MALFORMED, f"transaction is malformed: {exc}")
            tx_hash = sha256(raw)
        if tx.chain_id != self.chain_id:
            return TxCheck(ResultCode.WRONG_CHAIN,
                           f"transaction is for chain {tx.chain_id!r}, this is {self.chain_id!r}",
                           tx, tx_hash)
        if not self.is_verified(tx, tx_hash):
            return TxCheck(ResultCode.BAD_SIGNATURE,
                           "signature does not verify for the signer's key", tx, tx_hash)
        if cached is None:
            self.remember_decoded(raw, tx, tx_hash)
        expected = self.get_next_nonce(state, tx.signer)
        if exact_nonce and tx.nonce != expected:
            return TxCheck(ResultCode.BAD_NONCE,
                           f"nonce {tx.nonce} is not the signer's next nonce ({expected})",
                           tx, tx_hash)
        if not expected <= tx.nonce < expected + NONCE_WINDOW:
            return TxCheck(ResultCode.BAD_NONCE,
                           f"nonce {tx.nonce} is outside the accepted window "
                           f"[{expected}, {expected + NONCE_WINDOW})", tx, tx_hash)
        if tx.expiry_height < height:
            return TxCheck(ResultCode.EXPIRED,
                           f"transaction expired at height {tx.expiry_height}; "
                           f"the next block is {height}", tx, tx_hash)
        return TxCheck(ResultCode.OK, "", tx, tx_hash)

    def is_verified(self, tx: Transaction, tx_hash: bytes) -> bool:
        """Return True if the signature is valid, checking each distinct tx only once."""
        if tx_hash in self.verified:
            self.verified.move_to_end(tx_hash)
            return True
        if not is_valid_signature(tx.signer, tx.sign_bytes(), tx.signature):
            return False
        self.remember_verified(tx_hash)
        return True

    def preverify(self, raws: list[bytes], pool: Executor) -> None:
        """Verify the signatures of many txs on worker threads (libsodium releases the GIL).

        Only remembers what verified; anything malformed or forged is left for the ordinary
        checks to refuse with its proper code.
        """
        pending = self.collect_unverified(raws)
        chunks = [pending[start:start + PREVERIFY_CHUNK]
                  for start in range(0, len(pending), PREVERIFY_CHUNK)]
        for chunk, results in zip(chunks, pool.map(verify_chunk, chunks), strict=True):
            self.record_verified(chunk, results)

    def collect_unverified(self, raws: list[bytes]) -> list[PendingSignature]:
        """Decode the txs whose signatures are not known yet, for `verify_chunk` elsewhere."""
        pending: list[PendingSignature] = []
        for raw in raws:
            if raw in self.decoded or len(raw) > TX_BYTES_MAX:
                continue
            try:
                tx = Transaction.decode(raw)
            except DecodeError:
                continue
            pending.append((raw, tx, sha256(raw), tx.sign_bytes()))
        return pending

    def record_verified(self, pending: list[PendingSignature], results: list[bool]) -> None:
        """Remember the txs `verify_chunk` found well signed (on the engine's own thread)."""
        for (raw, tx, tx_hash, _), is_valid in zip(pending, results, strict=True):
            if is_valid:
                self.remember_verified(tx_hash)
                self.remember_decoded(raw, tx, tx_hash)

    def remember_decoded(self, raw: bytes, tx: Transaction, tx_hash: bytes) -> None:
        """Keep a well-signed tx's decoding for reuse, evicting the oldest beyond the bound."""
        self.decoded[raw] = (tx, tx_hash)
        if len(self.decoded) > DECODED_CACHE_MAX:
            self.decoded.popitem(last=False)

    def remember_verified(self, tx_hash: bytes) -> None:
        """Record that `tx_hash`'s signature verified (also used by parallel verifiers)."""
        self.verified[tx_hash] = None
        if len(self.verified) > VERIFIED_CACHE_MAX:
            self.verified.popitem(last=False)

    def get_next_nonce(self, state: StateReader, signer: bytes) -> int:
        """Return the nonce the signer's next transaction must carry."""
        last = ServiceState(state, AUTH_NAMESPACE).get(compute_nonce_key(signer))
        return 1 if last is None else int(last) + 1

    def check_tx(self, raw: bytes) -> TxCheck:
        """Check a transaction for the mempool against committed state (ABCI CheckTx)."""
        check = self.check_admission(raw, self.state, self.height + 1, exact_nonce=False)
        if not check.ok:
            return check
        assert check.tx is not None
        routed = self.check_route(check.tx, ServiceState(self.state, AUTH_NAMESPACE))
        if isinstance(routed, TxResult):
            return TxCheck(routed.code, routed.log, check.tx, check.hash)
        if self.is_admitted_only(check.tx):
            # Dry-run against committed state, as the next block would see it.
            trial = self.apply_tx(Overlay(self.state), check.tx, check.hash, self.height + 1,
                                  self.tip.time_ms + 1, {})
            if not trial.ok:
                return TxCheck(trial.code, trial.log, check.tx, check.hash)
        return check

    def is_admitted_only(self, tx: Transaction) -> bool:
        """Return True if the tx's method enters a block only when it succeeds."""
        service = self.services.get(tx.service)
        spec = None if service is None else service.methods.get(tx.method)
        return spec is not None and spec.admitted_only

    def check_route(self, tx: Transaction, auth: ServiceState) -> TxResult | BaseModel:
        """Return the validated arguments, or a failure naming the wrong service, method,
        role or argument."""
        service = self.services.get(tx.service)
        running = self.get_chain_versions()
        if service is None or (running is not None and tx.service not in running):
            return TxResult(ResultCode.UNKNOWN_SERVICE,
                            f"no service named {tx.service!r}; known: "
                            f"{', '.join(sorted(self.services)) or 'none'}")
        spec = service.methods.get(tx.method)
        if spec is None:
            return TxResult(ResultCode.UNKNOWN_METHOD,
                            f"service {tx.service!r} has no method {tx.method!r}; it has: "
                            f"{', '.join(sorted(service.methods))}")
        if spec.roles is not None and not any(has_role(auth, tx.signer, role)
                                              for role in sorted(spec.roles)):
            return TxResult(ResultCode.UNAUTHORIZED,
                            f"{tx.service}.{tx.method} requires one of the roles "
                            f"{', '.join(sorted(spec.roles))}; the signer has none of them")
        try:
            return spec.args.model_validate(tx.args)
        except ValidationError as exc:
            return TxResult(ResultCode.BAD_ARGS,
                            f"arguments do not match {tx.service}.{tx.method}: "
                            f"{describe_validation_error(exc)}")

    # ------------------------------------------------------------------ execution

    def apply_tx(self, block_state: Overlay, tx: Transaction, tx_hash: bytes, height: int,
                 time_ms: int, updates: dict[bytes, Validator] | None = None) -> TxResult:
        """Apply an admitted transaction; on any failure its writes are discarded.

        `updates` collects the block's validator updates: a successful tx's requests are
        added to it, in order, for `advance_validators` to apply to the set of h+2.
        """
        if updates is None:
            updates = {}
        auth_view = ServiceState(block_state, AUTH_NAMESPACE)
        auth_view.set(compute_nonce_key(tx.signer), tx.nonce)
        args = self.check_route(tx, auth_view)
        if isinstance(args, TxResult):
            return args
        service = self.services[tx.service]
        spec = service.methods[tx.method]
        tx_state = block_state.child()
        ctx = TxContext(state=ServiceState(tx_state, service.name),
                        auth=ServiceState(tx_state, AUTH_NAMESPACE), signer=tx.signer,
                        height=height, time_ms=time_ms, tx_hash=tx_hash,
                        service_name=service.name, privileges=service.privileges,
                        next_validators=compute_updated_set(self.next_validators,
                                                            updates.values()),
                        platform=PlatformAccess(ServiceState(tx_state, PLATFORM_NAMESPACE),
                                                self.services, self.genesis.services, height))
        try:
            spec.handler(service, ctx, args)
        except ServiceError as exc:
            return TxResult(ResultCode.REFUSED, str(exc))
        except (LocalError, DecodeError) as exc:
            return TxResult(ResultCode.REFUSED, f"refused by {tx.service}: {exc}")
        except Exception as exc:  # a bug in a service must not halt the chain
            return TxResult(ResultCode.INTERNAL,
                            f"internal error in {tx.service}.{tx.method}: {type(exc).__name__}")
        tx_state.merge_into(block_state)
        for public_key, update in ctx.validator_updates.items():
            updates.pop(public_key, None)  # the latest request for a key wins, in tx order
            updates[public_key] = update
        return TxResult(ResultCode.OK, "", tuple(ctx.events))

    def execute_block(self, height: int, time_ms: int, raw_txs: list[bytes],
                      strict: bool, evidence: list[bytes] | None = None) -> BlockExecution:
        """Execute `raw_txs` at `height`; strict mode rejects admission failures, else skips."""
        started = time.perf_counter()
        block_state = Overlay(self.state)
        frontier = self.frontier.copy()
        execution = BlockExecution(height, time_ms, [], [], [], [], {}, frontier, [],
                                   b"", b"", b"", self.validators, self.next_validators)
        execution.evidence = self.apply_evidence(block_state, height, evidence or [], strict)
        leaf_hashes: list[bytes] = []  # the same leaves make the tx root and extend the log
        updates: dict[bytes, Validator] = {}  # validator updates of the block's good txs
        for raw in raw_txs:
            check = self.check_admission(raw, block_state, height, exact_nonce=True)
            if not check.ok:
                if strict:
                    raise InvalidBlock(f"block {height} tx {len(execution.txs)}: {check.log}")
                execution.skipped[check.hash or raw] = check
                continue
            assert check.tx is not None
            if self.is_admitted_only(check.tx):
                trial = block_state.child()
                result = self.apply_tx(trial, check.tx, check.hash, height, time_ms, updates)
                if not result.ok:
                    log = (f"{check.tx.service}.{check.tx.method} enters a block only when it "
                           f"succeeds: {result.log}")
                    if strict:
                        raise InvalidBlock(f"block {height} tx {len(execution.txs)}: {log}")
                    execution.skipped[check.hash] = TxCheck(result.code, log, check.tx,
                                                            check.hash)
                    continue
                trial.merge_into(block_state)
            else:
                result = self.apply_tx(block_state, check.tx, check.hash, height, time_ms,
                                       updates)
            execution.txs.append(raw)
            execution.tx_hashes.append(check.hash)
            execution.signers.append(check.tx.signer)
            execution.results.append(result)
            leaf_hash = compute_leaf_hash(raw)
            leaf_hashes.append(leaf_hash)
            execution.log_nodes.extend(frontier.append(leaf_hash))
        self.advance_validators(block_state, execution, updates)
        execution.writes = block_state.writes
        execution.tx_root = compute_root(leaf_hashes)
        execution.results_root = compute_root(
            [compute_leaf_hash(result.encode()) for result in execution.results])
        execution.state_tree = self.state_tree.apply_batch(height, block_state.writes)
        execution.state_root = execution.state_tree.root
        self.record_duration("execute", started)
        return execution

    def record_duration(self, phase: str, started: float) -> None:
        """Report the time since `started` (perf_counter) spent in `phase`, if anyone asks."""
        if self.on_duration is not None:
            self.on_duration(phase, time.perf_counter() - started)

    def advance_validators(self, block_state: Overlay, execution: BlockExecution,
                           updates: dict[bytes, Validator]) -> None:
        """Shift the validator sets by one height, applying this block's updates at h+2."""
        chain = ServiceState(block_state, CHAIN_NAMESPACE)
        next_validators = self.next_validators
        if updates:
            # Each update was checked against the set as it stood when its tx ran.
            next_validators = compute_updated_set(self.next_validators, updates.values())
        if self.validators != self.last_validators:
            chain.set(LAST_VALIDATORS_KEY, self.validators.to_cbor())
        if self.next_validators != self.validators:
            chain.set(VALIDATORS_KEY, self.next_validators.to_cbor())
        if next_validators != self.next_validators:
            chain.set(NEXT_VALIDATORS_KEY, next_validators.to_cbor())
        execution.validators = self.next_validators
        execution.next_validators = next_validators

    def apply_evidence(self, block_state: Overlay, height: int, evidence: list[bytes],
                       strict: bool) -> list[bytes]:
        """Record valid, new evidence of misbehaviour; strict mode rejects any invalid item."""
        accepted: list[bytes] = []
        records = ServiceState(block_state, CHAIN_NAMESPACE)
        for raw in evidence[:EVIDENCE_PER_BLOCK_MAX]:
            try:
                if self.evidence_verifier is None:
                    raise InvalidBlock("this engine has no evidence verifier")
                validator, evidence_height = self.evidence_verifier(raw, self.chain_id,
                                                                    self.validators)
                if not height - EVIDENCE_AGE_BLOCKS_MAX <= evidence_height < height:
                    raise InvalidBlock(f"evidence from height {evidence_height} is too old or "
                                       f"from the future")
                key = EVIDENCE_KEY_PREFIX + sha256(raw)
                if records.has(key) or raw in accepted:
                    raise InvalidBlock("evidence was already committed")
            except (RemoteError, InvalidBlock) as exc:
                if strict:
                    raise InvalidBlock(f"block {height}: invalid evidence: {exc}") from exc
                continue
            records.set(key, {"validator": validator, "height": evidence_height,
                              "committed_height": height})
            accepted.append(raw)
        if strict and len(evidence) > EVIDENCE_PER_BLOCK_MAX:
            raise InvalidBlock(f"block {height}: more than {EVIDENCE_PER_BLOCK_MAX} evidence items")
        return accepted

    def get_chain_versions(self) -> dict[str, str] | None:
        """Return the services the chain runs at the next height (None: genesis pins none)."""
        height, versions = self.chain_versions
        if height != self.height + 1:
            upgrades = get_upgrades(self.state)
            versions = None if not self.genesis.services and not upgrades else \
                compute_versions(self.genesis.services, upgrades, self.height + 1)
            self.chain_versions = (self.height + 1, versions)
        return versions

    def check_next_height(self) -> None:
        """Raise `UpgradeRequired` if the chain runs, from the next height on, a version of a
        service that this node does not have: it must stop before proposing, voting on or
        executing that height."""
        check_versions(self.genesis.services, self.services, self.state, self.height + 1,
                       self.known_upgrades)

    def prepare_proposal(self, *, time_ms: int, proposer: bytes, candidates: list[bytes],
                         last_commit: Commit | None, txs_max: int = BLOCK_TXS_MAX,
                         bytes_max: int = BLOCK_BYTES_MAX // 2,
                         evidence: list[bytes] | None = None) -> Block:
        """Build the next block from candidate txs in order, skipping any that fail admission."""
        self.check_next_height()
        height = self.height + 1
        time_ms = max(time_ms, self.tip.time_ms + 1)
        chosen: list[bytes] = []
        size = 0
        for raw in candidates:
            if len(chosen) >= txs_max or size + len(raw) > bytes_max:
                break
            chosen.append(raw)
            size += len(raw)
        execution = self.execute_block(height, time_ms, chosen, strict=False, evidence=evidence)
        header = self.make_header(execution, proposer, last_commit)
        block = Block(header, tuple(execution.txs), last_commit, tuple(execution.evidence))
        self.remember_execution(block.block_id(), execution)
        return block

    def make_header(self, execution: BlockExecution, proposer: bytes,
                    last_commit: Commit | None) -> BlockHeader:
        return BlockHeader(
            chain_id=self.chain_id, height=execution.height, time_ms=execution.time_ms,
            prev_block_id=self.tip.block_id, tx_root=execution.tx_root,
            log_root=execution.frontier.root(), log_size=execution.frontier.size,
            state_root=execution.state_root, results_root=execution.results_root,
            evidence_root=compute_root([compute_leaf_hash(raw) for raw in execution.evidence]),
            validators_hash=self.validators.hash(),
            next_validators_hash=self.next_validators.hash(), proposer=proposer,
            last_commit_hash=b"" if last_commit is None else last_commit.hash())

    def process_proposal(self, block: Block) -> BlockExecution:
        """Validate a proposed block by re-executing it; raise `InvalidBlock` naming the rule
        (or `UpgradeRequired`, which stops the node, if it lacks the chain's next versions)."""
        self.check_next_height()
        cached = self.executions.get(block.block_id())
        if cached is not None:
            if (list(block.txs) != cached.txs or list(block.evidence) != cached.evidence
                    or block.header.last_commit_hash != compute_commit_hash(block.last_commit)):
                raise InvalidBlock(f"block {block.height}: body does not match its header")
            return cached
        header = block.header
        self.check_header_links(block)
        execution = self.execute_block(header.height, header.time_ms, list(block.txs),
                                       strict=True, evidence=list(block.evidence))
        expected = self.make_header(execution, header.proposer, block.last_commit)
        for name in ("tx_root", "log_root", "log_size", "state_root", "results_root",
                     "evidence_root", "validators_hash", "next_validators_hash"):
            if getattr(header, name) != getattr(expected, name):
                raise InvalidBlock(f"block {header.height}: {name} does not match re-execution")
        self.remember_execution(block.block_id(), execution)
        return execution

    def check_header_links(self, block: Block) -> None:
        """Check the header's chain, height, time and links to the previous block."""
        header = block.header
        if header.chain_id != self.chain_id:
            raise InvalidBlock(f"block is for chain {header.chain_id!r}")
        if header.height != self.height + 1:
            raise InvalidBlock(f"block height {header.height}, expected {self.height + 1}")
        if header.prev_block_id != self.tip.block_id:
            raise InvalidBlock(f"block {header.height}: prev_block_id does not link to the tip")
        if header.time_ms <= self.tip.time_ms:
            raise InvalidBlock(f"block {header.height}: time does not increase")
        if self.validators.get_power(header.proposer) == 0:
            raise InvalidBlock(f"block {header.height}: proposer is not a validator")
        expected_commit_hash = b"" if block.last_commit is None else block.last_commit.hash()
        if header.last_commit_hash != expected_commit_hash:
            raise InvalidBlock(f"block {header.height}: last_commit_hash does not match")
        if block.last_commit is not None and (
                block.last_commit.height != self.height
                or block.last_commit.block_id != self.tip.block_id):
            raise InvalidBlock(f"block {header.height}: last_commit is not for the tip")

    def remember_execution(self, block_id: bytes, execution: BlockExecution) -> None:
        self.executions[block_id] = execution
        while len(self.executions) > EXECUTION_CACHE_MAX:
            self.executions.popitem(last=False)

    def finalize_block(self, block: Block) -> BlockExecution:
        """Return the block's execution, re-executing and validating it if not cached."""
        return self.process_proposal(block)

    def commit(self, block: Block, commit: Commit) -> CommittedBlock:
        """Persist the block and its effects atomically and advance the tip."""
        execution = self.finalize_block(block)
        log_start = self.tip.log_size
        records = [
            TxRecord(tx_hash, block.height, index, log_start + index, signer,
                     int(result.code), result.encode())
            for index, (tx_hash, signer, result) in enumerate(
                zip(execution.tx_hashes, execution.signers, execution.results, strict=True))
        ]
        assert execution.state_tree is not None
        changed = execution.next_validators != execution.validators
        started = time.perf_counter()
        self.store.commit_block(BlockWrite(block, commit, records, execution.writes,
                                           execution.state_tree, execution.log_nodes,
                                           self.compute_prune_before(block.height),
                                           execution.next_validators if changed else None))
        self.record_duration("commit", started)
        self.state.apply_committed(execution.writes)
        self.forget_committed(execution)
        header = block.header
        self.tip = Tip(header.height, block.block_id(), header.state_root, header.log_size,
                       header.time_ms)
        self.frontier = execution.frontier
        self.last_validators = self.validators
        self.validators = execution.validators
        self.next_validators = execution.next_validators
        self.executions.clear()
        return CommittedBlock(block, execution)

    def forget_committed(self, execution: BlockExecution) -> None:
        """Drop the committed txs from the admission caches: their nonces are used, so they
        can never be checked for inclusion again (a resubmission is verified afresh)."""
        for raw, tx_hash in zip(execution.txs, execution.tx_hashes, strict=True):
            self.decoded.pop(raw, None)
            self.verified.pop(tx_hash, None)

    def compute_prune_before(self, height: int) -> int | None:
        """Return the state tree version below which committing `height` prunes, or None."""
        if self.state_retention_versions == 0 or height <= self.state_retention_versions:
            return None
        return height - self.state_retention_versions

    # ------------------------------------------------------------------ queries

    def query(self, service_name: str, name: str, args: dict[str, Any]) -> Any:
        """Run a read-only query of a service against committed state."""
        service = self.services.get(service_name)
        if service is None:
            raise LocalError(f"no service named {service_name!r}; known: "
                             f"{', '.join(sorted(self.services))}")
        return service.run_query(ServiceState(self.state, service_name), name, args)

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        """Return `namespace/key`'s value (or None) and its state tree proof at the tip."""
        # Only the latest committed height: the `state` table holds latest values, so a
        # proof at an older height (the tree keeps those versions) needs a historical value
        # store first. Check the proof against the state_root of the header at `height`.
        if not isinstance(namespace, str) or not isinstance(key, bytes):
            raise LocalError("a state proof needs a namespace (str) and a key (bytes)")
        full_key = namespace.encode() + b"/" + key
        value = self.state.get_state(full_key)
        value_hash, proof = self.state_tree.get_with_proof(self.height, full_key)
        if value_hash != (None if value is None else compute_value_hash(value)):
            raise StorageError(f"state and state tree disagree at key {full_key!r}, "
                               f"height {self.height}")
        return StateProof(self.height, full_key, value, proof.encode())

    def get_params(self) -> list[dict[str, Any]]:
        """Return every chain parameter the services declare, with its committed value."""
        return describe_params(self.state, self.services)

    def get_roles(self, public_key: bytes) -> list[str]:
        """Return the genesis-known roles `public_key` currently holds."""
        auth = ServiceState(self.state, AUTH_NAMESPACE)
        names = {role for role in self.genesis.roles}
        for service in self.services.values():
            for spec in service.methods.values():
                names.update(spec.roles or ())
        return sorted(role for role in names if has_role(auth, public_key, role))


def decode_result(data: bytes) -> TxResult:
    """Decode a stored transaction result."""
    try:
        return TxResult.from_cbor(decode(data))
    except (DecodeError, ValueError, TypeError) as exc:
        raise DecodeError(f"stored result is malformed: {exc}") from exc

