"""Single-validator ledger benchmark: pre-signed notary txs through admission and blocks.

Drives the node's own pipeline in-process — `Mempool.add` (decode, signature, nonce,
schema), `SoloProducer.produce_block` (prepare, execute, commit precommit, atomic SQLite
commit) — with no HTTP in between, so the figure is the ledger core's throughput on this
machine. Transactions are signed before the clock starts: signing is the clients' cost.
The chain it writes is a normal node home, so `seoulchain audit --home DIR` can then be
timed on it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction
from seoulchain.node.config import ChainConfig
from seoulchain.node.home import Home, init_home
from seoulchain.node.mempool import Mempool
from seoulchain.node.producer import SoloProducer

Progress = Callable[[str, int, int], None]
# Distinct signers in the load; enough that a block of thousands of txs stays within each
# signer's nonce window.
BENCH_SIGNERS = 64


@dataclass(frozen=True)
class LedgerBenchResult:
    txs: int
    blocks: int
    block_txs: int
    seconds: float
    tx_per_s: float
    blocks_per_s: float
    admission_s: float
    blocks_s: float
    tx_bytes: int
    db_bytes: int
    home: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def add_bench_issuers(home: Home, count: int) -> list[SigningKey]:
    """Rewrite the fresh home's genesis so that `count` new keys hold the notary.issuer role.

    Many signers, as in a city with many agency clerks: one signer's pipelined nonces are
    bounded by the mempool's nonce window.
    """
    keys = [SigningKey.generate() for _ in range(count)]
    genesis = home.load_genesis()
    roles = {"notary.issuer": tuple(key.public_key for key in keys)}
    Genesis(genesis.chain_id, genesis.genesis_time_ms, genesis.validators, roles).save(
        home.genesis_path)
    return keys


def presign_anchors(keys: list[SigningKey], chain_id: str, count: int,
                    progress: Progress, first_nonces: Sequence[int] | None = None
                    ) -> list[bytes]:
    """Sign `count` notary anchors of random document hashes, round-robin over `keys`.

    Each key's nonces run from its entry in `first_nonces` (by default 1, a fresh signer).
    """
    txs = []
    for index in range(count):
        key = keys[index % len(keys)]
        first = 1 if first_nonces is None else first_nonces[index % len(keys)]
        tx = Transaction.create(key, chain_id=chain_id, nonce=first + index // len(keys),
                                expiry_height=2**40, service="notary", method="anchor",
                                args={"doc_hash": os.urandom(32), "kind": "bench"})
        txs.append(tx.encode())
        if (index + 1) % 5000 == 0 or index + 1 == count:
            progress("signing", index + 1, count)
    return txs


def run_ledger_bench(directory: Path, txs: int, block_txs: int,
                     progress: Progress) -> LedgerBenchResult:
    """Create a fresh chain in `directory` and push `txs` pre-signed txs through it."""
    if Home(directory).is_initialised():
        raise LocalError(f"{directory} already holds a chain; the benchmark needs a fresh one")
    home = init_home(directory, chain_id="seoul-bench-1", moniker="bench")
    signers = add_bench_issuers(home, BENCH_SIGNERS)
    genesis = home.load_genesis()
    raw_txs = presign_anchors(signers, genesis.chain_id, txs, progress)
    store = BlockStore(home.store_path)
    engine = Engine(genesis, store, load_services(), verify_evidence_bytes)
    mempool = Mempool(engine, txs_max=block_txs * 2, bytes_max=1 << 30)
    config = ChainConfig(block_txs_max=block_txs, block_tx_bytes_max=64 << 20)
    producer = SoloProducer(engine, mempool, home.load_key("validator"), config, lambda c: None)
    admission_s = blocks_s = 0.0
    clock_ms = genesis.genesis_time_ms
    started = time.perf_counter()
    for start in range(0, txs, block_txs):
        tick = time.perf_counter()
        for raw in raw_txs[start:start + block_txs]:
            check = mempool.add(raw)
            if not check.ok:
                raise LocalError(f"benchmark tx refused: {check.log}")
        tock = time.perf_counter()
        clock_ms += 1
        producer.produce_block(clock_ms)
        blocks_s += time.perf_counter() - tock
        admission_s += tock - tick
        progress("committing", min(start + block_txs, txs), txs)
    seconds = time.perf_counter() - started
    blocks = engine.height
    store.close()
    return LedgerBenchResult(
        txs=txs, blocks=blocks, block_txs=block_txs, seconds=round(seconds, 3),
        tx_per_s=round(txs / seconds, 1), blocks_per_s=round(blocks / seconds, 2),
        admission_s=round(admission_s, 3), blocks_s=round(blocks_s, 3),
        tx_bytes=len(raw_txs[0]) if raw_txs else 0,
        db_bytes=sum(path.stat().st_size for path in home.data_dir.iterdir()),
        home=str(directory))
