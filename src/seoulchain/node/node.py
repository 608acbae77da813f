"""A running node: store, engine, mempool and block producer, behind one small facade.

The API layer talks only to `Node` — its read methods (`get_block`, `get_account`,
`query`, the proofs, the log and the snapshots) are the whole of what the API sees of the
store and the engine; the producer (`node/bft.py`: BFT consensus, with one validator
or many) commits blocks through the engine and tells the node, which wakes clients
waiting for their transactions. A node holds its home's lock (`node/lock.py`) from before
it opens the store until `close`, so no second process can run the same home beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seoulchain.codec import decode
from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.errors import LocalError
from seoulchain.execution.engine import CommittedBlock, Engine, TxCheck
from seoulchain.execution.results import TxResult
from seoulchain.execution.service import describe_service, load_services
from seoulchain.ledger.store import BlockStore, TxFilter, TxPage, TxRecord
from seoulchain.ledger.types import Block, Commit, Validator
from seoulchain.node.bft import BftProducer
from seoulchain.node.config import NodeConfig
from seoulchain.node.home import Home
from seoulchain.node.mempool import Mempool
from seoulchain.node.metrics import NodeMetrics
from seoulchain.node.prechecks import PrecheckPool
from seoulchain.node.proofs import StoreProofSource
from seoulchain.node.statesync import SnapshotFiles, SnapshotService
from seoulchain.node.validator import TXS_PER_MESSAGE_MAX
from seoulchain.node.verify import SignatureVerifier
from seoulchain.proofs.logtree import (
    compute_checkpoint_consistency,
    compute_checkpoint_inclusion,
)

if TYPE_CHECKING:
    from seoulchain.light.bundle import TxProof
    from seoulchain.light.lightclient import LightBlock
    from seoulchain.proofs import StateProof

log = logging.getLogger("seoulchain.node")
# Longest a client may ask the node to hold a request open waiting for a commit.
WAIT_TIMEOUT_S_MAX = 60.0
# Transactions one batch submission admits (POST /v1/txs/batch): one gossip message's worth,
# so a batch travels to the other validators whole.
BATCH_TXS_MAX = TXS_PER_MESSAGE_MAX


@dataclass(frozen=True)
class TxStatus:
    """Where a transaction is: unknown, pending in the mempool, or committed with a result."""

    status: str
    height: int | None = None
    index: int | None = None
    log_index: int | None = None
    result: TxResult | None = None


@dataclass(frozen=True)
class Account:
    """What the chain knows of a key: its next nonce, its roles, its latest transactions."""

    public_key: bytes
    next_nonce: int
    roles: list[str]
    recent_txs: list[TxRecord]


@dataclass(frozen=True)
class LogProof:
    """An RFC 9162 proof against one or two checkpoints of the transparency log."""

    size: int
    root: bytes
    proof: list[bytes]
    # The leaf hash of an inclusion proof, or the older root of a consistency proof.
    other: bytes


class Node:
    """One validator's node process state."""

    def __init__(self, home: Home):
        home.require_initialised()
        self.lock = home.lock("seoulchain node")
        try:
            self.open(home)
        except BaseException:
            self.lock.release()
            raise

    def open(self, home: Home) -> None:
        """Open the store, engine, mempool and producer of `home` (its lock is held)."""
        self.home = home
        self.config: NodeConfig = home.load_config()
        self.genesis = home.load_genesis()
        home.data_dir.mkdir(exist_ok=True)
        self.store = BlockStore(home.store_path)
        self.engine = Engine(self.genesis, self.store, load_services(), verify_evidence_bytes,
                             state_retention_versions=self.config.state.retention_versions)
        self.mempool = Mempool(self.engine, self.config.mempool.txs_max,
                               self.config.mempool.bytes_max)
        self.key = home.load_key("validator")
        self.verifier = SignatureVerifier(self.engine)
        self.prechecks = PrecheckPool(self.engine, self.config.precheck.workers)
        self.producer = BftProducer(home, self.engine, self.mempool, self.config,
                                    self.on_commit, self.verifier, self.prechecks)
        self.commit_event = asyncio.Event()
        # Called with each committed block after the node's own bookkeeping (the API's
        # event subscribers); a hook that fails is logged, never stops the node.
        self.commit_hooks: list[Callable[[CommittedBlock], None]] = []
        self.last_commit_time_ms: int | None = None
        # State sync snapshots this node serves (docs/operations.md, "State sync").
        self.snapshots = SnapshotService(SnapshotFiles(home.data_dir / "snapshots"), self.store)
        self._proof_source: StoreProofSource | None = None
        self.metrics = NodeMetrics()
        self.watch_metrics()

    def watch_metrics(self) -> None:
        """Connect the engine, mempool, verifier and producer to this node's metrics."""
        self.engine.on_duration = self.metrics.observe_duration
        self.mempool.on_refused = self.metrics.observe_refused
        self.producer.metrics = self.metrics
        self.metrics.watch(lambda: self.engine.height, lambda: len(self.mempool),
                           lambda: self.mempool.bytes_total,
                           lambda: len(self.producer.get_peers()))
        self.metrics.watch_prechecks(self.prechecks)

    def close(self) -> None:
        self.verifier.close()
        self.prechecks.close()
        self.store.close()
        self.lock.release()

    def submit(self, raw: bytes) -> TxCheck:
        """Admit a transaction into the mempool (its checks on the loop, unless
        `check_ahead` ran them first)."""
        return self.producer.submit(raw)

    async def check_ahead(self, raws: list[bytes]) -> None:
        """Run the expensive checks of `raws` off the event loop (signatures on threads,
        prechecks such as ballot proofs in processes), so that admission finds them done."""
        await self.producer.check_ahead(raws)

    async def submit_batch(self, raws: list[bytes]) -> list[TxCheck]:
        """Admit a batch, its expensive checks run off the event loop first."""
        await self.check_ahead(raws)
        return self.producer.submit_batch(raws)

    def on_commit(self, committed: CommittedBlock) -> None:
        block = committed.block
        self.last_commit_time_ms = int(time.time() * 1000)
        self.metrics.observe_commit(list(block.txs))
        log.info("committed height=%d txs=%d block_id=%s", block.height, len(block.txs),
                 block.block_id().hex()[:16])
        self.commit_event.set()
        self.commit_event = asyncio.Event()
        self.snapshots.on_commit(block.height)
        for hook in self.commit_hooks:
            try:
                hook(committed)
            except Exception:
                log.exception("a commit hook failed at height %d", block.height)

    def get_tx_status(self, tx_hash: bytes) -> TxStatus:
        record = self.store.get_tx(tx_hash)
        if record is not None:
            result = TxResult.from_cbor(decode(record.result))
            return TxStatus("committed", record.height, record.index, record.log_index, result)
        if tx_hash in self.mempool:
            return TxStatus("pending")
        return TxStatus("unknown")

    async def wait_for_tx(self, tx_hash: bytes, timeout_s: float) -> TxStatus:
        """Return the tx's status once committed, or its current status after `timeout_s`."""
        # Written so that NaN fails too: a NaN deadline would corrupt the event loop's timers.
        if not 0 <= timeout_s <= WAIT_TIMEOUT_S_MAX:
            raise LocalError(f"a wait is a finite number of seconds, 0 to {WAIT_TIMEOUT_S_MAX}")
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.get_tx_status(tx_hash)
            remaining = deadline - time.monotonic()
            if status.status == "committed" or remaining <= 0:
                return status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.commit_event.wait(), timeout=remaining)

    def get_status(self) -> dict[str, Any]:
        tip = self.engine.tip
        return {
            "chain_id": self.engine.chain_id,
            "moniker": self.config.moniker,
            "validator": self.key.public_key,
            "height": tip.height,
            "block_id": tip.block_id,
            "state_root": tip.state_root,
            "log_size": tip.log_size,
            "block_time_ms": tip.time_ms,
            "last_commit_time_ms": self.last_commit_time_ms,
            "mempool_txs": len(self.mempool),
            "mempool_bytes": self.mempool.bytes_total,
            "peers": self.producer.get_peers(),
            "genesis_hash": self.genesis.hash(),
        }

    # ----------------------------------------------------------------- reads for the API

    def get_height(self) -> int:
        """Return the height of the last committed block (0 before the first)."""
        return self.engine.height

    def get_block(self, height: int) -> tuple[Block, Commit | None] | None:
        """Return the block at `height` and its commit, or None if there is none."""
        block = self.store.get_block(height)
        if block is None:
            return None
        return block, self.store.get_commit(height)

    def get_block_bytes(self, height: int) -> bytes | None:
        """Return the canonical encoding of the block at `height` (checked against its id)."""
        return self.store.get_block_bytes(height)

    def get_account(self, public_key: bytes, txs_max: int) -> Account:
        """Return a key's next nonce, roles and at most `txs_max` of its latest transactions."""
        return Account(public_key, self.engine.get_next_nonce(self.engine.state, public_key),
                       self.engine.get_roles(public_key),
                       self.store.list_txs_by_signer(public_key, txs_max))

    def list_txs(self, wanted: TxFilter, at_or_before: int | None, limit: int) -> TxPage:
        """Return committed transactions matching `wanted`, newest first, from a position."""
        return self.store.list_txs(wanted, at_or_before, limit)

    def query(self, service: str, name: str, args: dict[str, Any]) -> Any:
        """Run a service query on committed state (LocalError for a bad query)."""
        return self.engine.query(service, name, args)

    def get_mempool_status(self) -> dict[str, int]:
        """Return how full the mempool is, in transactions and bytes, and its bounds."""
        return {"txs": len(self.mempool), "bytes": self.mempool.bytes_total,
                "txs_max": self.mempool.txs_max, "bytes_max": self.mempool.bytes_max}

    def get_block_tx_codes(self, tx_hashes: list[bytes]) -> list[int | None]:
        """Return the result code of each committed transaction (None if not stored)."""
        records = [self.store.get_tx(tx_hash) for tx_hash in tx_hashes]
        return [None if record is None else record.code for record in records]

    def get_validators(self, height: int) -> list[dict[str, Any]]:
        """Return the validator set that signed `height`, each with the agency running it.

        The agency is the governance member whose validator the key is now, else the
        genesis agency with that key or that name; None when neither names one.
        """
        return self.describe_validators(self.get_light_block(height).validators.validators)

    def describe_validators(self, validators: Sequence[Validator]) -> list[dict[str, Any]]:
        """Return each validator with its power, name and agency (see `get_validators`)."""
        agencies = {agency.public_key: agency.name for agency in self.genesis.agencies}
        names = set(agencies.values())
        if "gov" in self.engine.services:
            for member in self.engine.query("gov", "members", {})["members"]:
                if member["validator"] is not None:
                    agencies[bytes.fromhex(member["validator"])] = member["name"]
        return [{"public_key": item.public_key.hex(), "power": item.power, "name": item.name,
                 "agency": agencies.get(item.public_key,
                                        item.name if item.name in names else None)}
                for item in validators]

    def describe_services(self) -> list[dict[str, Any]]:
        """Return each installed service's declaration: version, methods, queries, params."""
        return [describe_service(self.engine.services[name])
                for name in sorted(self.engine.services)]

    def is_tx_committed(self, tx_hash: bytes) -> bool:
        """Return True if the transaction with `tx_hash` is in a committed block."""
        return self.store.get_tx(tx_hash) is not None

    def get_light_block(self, height: int) -> LightBlock:
        """Return the header, commit and validator set of a committed height."""
        return self.get_proof_source().get_light_block(height)

    def get_tx_proof(self, tx_hash: bytes) -> TxProof:
        """Return a committed transaction's log and result inclusion proofs."""
        return self.get_proof_source().get_tx_proof(tx_hash)

    def get_state_proof(self, service: str, key: bytes) -> StateProof:
        """Return a state key's value (or absence) at the tip with its tree proof."""
        return self.engine.get_state_proof(service, key)

    def get_proof_source(self) -> StoreProofSource:
        """Return the proof assembler over this node's store, built on first use."""
        if self._proof_source is None:
            self._proof_source = StoreProofSource(self.genesis, self.store)
        return self._proof_source

    def get_log_size(self) -> int:
        """Return the number of leaves in the transparency log at the tip."""
        return self.engine.tip.log_size

    def get_log_consistency(self, old_size: int, new_size: int) -> LogProof:
        """Return the RFC 9162 consistency proof between two log sizes up to the tip's."""
        old_root, new_root, proof = compute_checkpoint_consistency(old_size, new_size,
                                                                   self.store.read_log_node)
        return LogProof(new_size, new_root, proof, old_root)

    def get_log_inclusion(self, index: int, size: int) -> LogProof:
        """Return the RFC 9162 inclusion proof of leaf `index` in the log of `size` leaves."""
        leaf_hash, root, proof = compute_checkpoint_inclusion(index, size,
                                                              self.store.read_log_node)
        return LogProof(size, root, proof, leaf_hash)

    def get_base_height(self) -> int:
        """Return the lowest height whose block this node stores (above 0 after state sync)."""
        return self.store.get_base_height()

    def list_snapshot_heights(self) -> list[int]:
        """Return the heights of the state sync snapshots this node serves."""
        return self.snapshots.files.list_heights()

    def get_snapshot_manifest(self, height: int) -> bytes | None:
        """Return the encoded manifest of the snapshot at `height`, or None if there is none."""
        if height not in self.snapshots.files.list_heights():
            return None
        return self.snapshots.files.read_manifest(height)

    def get_snapshot_chunk(self, height: int, index: int) -> bytes:
        """Return one encoded chunk of a snapshot (LocalError if there is no such chunk)."""
        return self.snapshots.files.read_chunk(height, index)

    def is_taking_snapshot(self) -> bool:
        """Return True while a snapshot is being written."""
        return self.snapshots.busy

    async def take_snapshot(self) -> int:
        """Take a snapshot of the tip now and return its height."""
        return await self.snapshots.take()
