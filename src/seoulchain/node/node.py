"""A running node: store, engine, mempool and block producer, behind one small facade.

The API layer talks only to `Node`; the producer (solo today, BFT consensus next) commits
blocks through the engine and tells the node, which wakes clients waiting for their
transactions. A node holds its home's lock (`node/lock.py`) from before it opens the store
until `close`, so no second process can run the same home beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from seoulchain.codec import decode
from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.errors import LocalError
from seoulchain.execution.engine import CommittedBlock, Engine, TxCheck
from seoulchain.execution.results import TxResult
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.node.bft import BftProducer
from seoulchain.node.config import NodeConfig
from seoulchain.node.home import Home
from seoulchain.node.mempool import Mempool
from seoulchain.node.producer import BlockProducer, SoloProducer
from seoulchain.node.statesync import SnapshotFiles, SnapshotService
from seoulchain.node.verify import SignatureVerifier

log = logging.getLogger("seoulchain.node")
# Longest a client may ask the node to hold a request open waiting for a commit.
WAIT_TIMEOUT_S_MAX = 60.0


@dataclass(frozen=True)
class TxStatus:
    """Where a transaction is: unknown, pending in the mempool, or committed with a result."""

    status: str
    height: int | None = None
    index: int | None = None
    log_index: int | None = None
    result: TxResult | None = None


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
        self.producer: BlockProducer
        if self.is_networked():
            self.producer = BftProducer(home, self.engine, self.mempool, self.config,
                                        self.on_commit, self.verifier)
        else:
            self.producer = SoloProducer(self.engine, self.mempool, self.key,
                                         self.config.chain, self.on_commit)
        self.commit_event = asyncio.Event()
        self.last_commit_time_ms: int | None = None
        # State sync snapshots this node serves (docs/operations.md, "State sync").
        self.snapshots = SnapshotService(SnapshotFiles(home.data_dir / "snapshots"), self.store)

    def is_networked(self) -> bool:
        """True when this node runs BFT consensus with peers rather than alone."""
        return len(self.genesis.validators.validators) > 1 or bool(self.config.p2p.peers)

    def close(self) -> None:
        self.verifier.close()
        self.store.close()
        self.lock.release()

    def submit(self, raw: bytes) -> TxCheck:
        """Admit a transaction into the mempool."""
        return self.producer.submit(raw)

    async def submit_batch(self, raws: list[bytes]) -> list[TxCheck]:
        """Admit a batch, its signatures checked on worker threads first."""
        await self.verifier.preverify(raws)
        return self.producer.submit_batch(raws)

    def on_commit(self, committed: CommittedBlock) -> None:
        block = committed.block
        self.last_commit_time_ms = int(time.time() * 1000)
        log.info("committed height=%d txs=%d block_id=%s", block.height, len(block.txs),
                 block.block_id().hex()[:16])
        self.commit_event.set()
        self.commit_event = asyncio.Event()
        self.snapshots.on_commit(block.height)

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
