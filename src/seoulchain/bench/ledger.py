"""Single-validator ledger benchmark: pre-signed notary txs through admission and blocks.

Drives the node's own pipeline in-process — `Mempool.add` (decode, signature, nonce,
schema), `SoloProducer.produce_block` (prepare, execute, commit precommit, atomic SQLite
commit) — with no HTTP in between, so the figure is the ledger core's throughput on this
machine. Transactions are signed before the clock starts: signing is the clients' cost.
The chain it writes is a normal node home, so `seoulchain audit --home DIR` can then be
timed on it.

Each block's transactions are signed just before the block, outside the timed spans, so the
process holds one block of load at a time and its memory is the ledger's own: at chain
lengths 1k, 10k, 100k, 1M (and the end) it records the throughput of the span since the
last checkpoint, the process's resident memory and the disk bytes per committed tx — the
figures that must stay flat as the chain grows.
"""

from __future__ import annotations

import os
import resource
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
# Chain lengths (in txs) at which the growth figures are taken, beside the last one.
CHECKPOINT_TXS = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)


@dataclass(frozen=True)
class Checkpoint:
    """The chain after `txs` transactions: the span's rate, memory and disk per tx."""

    txs: int
    span_tx_per_s: float
    rss_mb: float
    peak_rss_mb: float
    disk_bytes_per_tx: float


def read_rss_mb() -> float:
    """Return this process's resident memory now, in MiB (Linux /proc; else the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return read_peak_rss_mb()


def read_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    checkpoints: tuple[Checkpoint, ...] = ()

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
        txs.append(sign_anchor(keys, chain_id, index, first_nonces))
        if (index + 1) % 5000 == 0 or index + 1 == count:
            progress("signing", index + 1, count)
    return txs


def sign_anchor(keys: list[SigningKey], chain_id: str, index: int,
                first_nonces: Sequence[int] | None = None) -> bytes:
    """Sign the `index`-th anchor of the round-robin load `presign_anchors` describes."""
    key = keys[index % len(keys)]
    first = 1 if first_nonces is None else first_nonces[index % len(keys)]
    return Transaction.create(key, chain_id=chain_id, nonce=first + index // len(keys),
                              expiry_height=2**40, service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "bench"}).encode()


def run_ledger_bench(directory: Path, txs: int, block_txs: int,
                     progress: Progress) -> LedgerBenchResult:
    """Create a fresh chain in `directory` and push `txs` pre-signed txs through it."""
    if Home(directory).is_initialised():
        raise LocalError(f"{directory} already holds a chain; the benchmark needs a fresh one")
    home = init_home(directory, chain_id="seoul-bench-1", moniker="bench")
    signers = add_bench_issuers(home, BENCH_SIGNERS)
    genesis = home.load_genesis()
    store = BlockStore(home.store_path)
    engine = Engine(genesis, store, load_services(), verify_evidence_bytes)
    mempool = Mempool(engine, txs_max=block_txs * 2, bytes_max=1 << 30)
    config = ChainConfig(block_txs_max=block_txs, block_tx_bytes_max=64 << 20)
    producer = SoloProducer(engine, mempool, home.load_key("validator"), config, lambda c: None)
    admission_s = blocks_s = 0.0
    clock_ms = genesis.genesis_time_ms
    tx_bytes = 0
    checkpoints: list[Checkpoint] = []
    span_txs, span_s = 0, 0.0
    marks = [mark for mark in CHECKPOINT_TXS if mark < txs] + [txs]
    for start in range(0, txs, block_txs):
        batch = [sign_anchor(signers, genesis.chain_id, index)
                 for index in range(start, min(start + block_txs, txs))]
        tx_bytes = tx_bytes or len(batch[0])
        tick = time.perf_counter()
        for raw in batch:
            check = mempool.add(raw)
            if not check.ok:
                raise LocalError(f"benchmark tx refused: {check.log}")
        tock = time.perf_counter()
        clock_ms += 1
        producer.produce_block(clock_ms)
        done = time.perf_counter()
        blocks_s += done - tock
        admission_s += tock - tick
        span_s += done - tick
        committed = start + len(batch)
        span_txs += len(batch)
        if committed >= marks[0]:
            while marks and committed >= marks[0]:
                marks.pop(0)
            checkpoints.append(Checkpoint(
                txs=committed, span_tx_per_s=round(span_txs / span_s, 1),
                rss_mb=round(read_rss_mb(), 1), peak_rss_mb=round(read_peak_rss_mb(), 1),
                disk_bytes_per_tx=round(measure_disk_bytes(home) / committed, 1)))
            span_txs, span_s = 0, 0.0
        progress("committing", committed, txs)
    seconds = admission_s + blocks_s
    blocks = engine.height
    store.close()
    return LedgerBenchResult(
        txs=txs, blocks=blocks, block_txs=block_txs, seconds=round(seconds, 3),
        tx_per_s=round(txs / seconds, 1), blocks_per_s=round(blocks / seconds, 2),
        admission_s=round(admission_s, 3), blocks_s=round(blocks_s, 3),
        tx_bytes=tx_bytes, db_bytes=measure_disk_bytes(home), home=str(directory),
        checkpoints=tuple(checkpoints))


def measure_disk_bytes(home: Home) -> int:
    """Return the bytes the node's data directory holds (store, its WAL and index)."""
    return sum(path.stat().st_size for path in home.data_dir.iterdir() if path.is_file())
