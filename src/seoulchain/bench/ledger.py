"""Single-validator ledger benchmark: pre-signed notary txs through admission and blocks.

Drives the node's own pipeline in-process — `Mempool.add` (decode, signature, nonce,
schema), then for each block what a lone validator's core does once it has decided
(`commit_next_block`: `Engine.prepare_proposal` over the mempool's candidates, its own
precommit as the commit, `Engine.commit` in one atomic SQLite transaction) — with no HTTP
and no consensus messages in between, so the figure is the ledger core's throughput on this
machine. Transactions are signed before the clock starts: signing is the clients' cost.
The chain it writes is a normal node home, so `seoulchain audit --home DIR` can then be
timed on it.

Each block's transactions are signed just before the block, outside the timed spans, so the
process holds one block of load at a time and its memory is the ledger's own: at chain
lengths 1k, 10k, 100k, 1M (and the end) it records the throughput of the span since the
last checkpoint, the process's resident memory and the disk bytes per committed tx — the
figures that must stay flat as the chain grows.

A bare anchor (a document hash and kind "bench") is the smallest notary tx; a target
`tx_bytes` is reached honestly, through the anchor's public `metadata` map within the
notary's schema (`compute_padding_metadata`), so the padded tx is admitted, executed and
stored like any other. The reported `tx_bytes` is the mean encoded size of what was signed.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from seoulchain.bench.mix import MIXES, Workload, list_runs
from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.crypto import SigningKey, is_valid_signature
from seoulchain.errors import LocalError
from seoulchain.execution.engine import CommittedBlock, Engine
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore, BlockWrite
from seoulchain.ledger.types import (
    Commit,
    CommitSig,
    Transaction,
    VoteType,
    compute_vote_sign_bytes,
)
from seoulchain.node.home import Home, init_home
from seoulchain.node.mempool import Mempool
from seoulchain.proofs.smt import SparseMerkleTree, TreeBatch
from seoulchain.services.notary import (
    METADATA_ENTRIES_MAX,
    METADATA_KEY_CHARS_MAX,
    METADATA_VALUE_CHARS_MAX,
)

Progress = Callable[[str, int, int], None]
# Distinct signers in the load; enough that a block of thousands of txs stays within each
# signer's nonce window.
BENCH_SIGNERS = 64
# Chain lengths (in txs) at which the growth figures are taken, beside the last one.
CHECKPOINT_TXS = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
LEDGER_BENCH_CHAIN_ID = "seoul-bench-1"
# Transaction bytes a bench block may carry: far above what --block-txs padded txs need, so
# the count alone cuts blocks.
BENCH_BLOCK_TX_BYTES_MAX = 64 << 20
# Padding metadata: keys "ref00".."ref15", values of one filler character. The notary's
# schema (services/notary.py) bounds it: METADATA_ENTRIES_MAX entries, keys of at most
# METADATA_KEY_CHARS_MAX characters, values of at most METADATA_VALUE_CHARS_MAX.
PADDING_KEY_FORMAT = "ref{:02d}"
PADDING_FILLER = "x"
# Measure-and-adjust rounds when sizing the padding: CBOR length headers grow by a byte at
# 24 and at 256 characters, so a round's correction can move a header; a few rounds settle.
PADDING_FIT_ROUNDS = 6
# The nonce and expiry of the probe anchor the padding is measured on: a fresh signer's
# first tx. Later nonces encode one or two bytes longer (CBOR: 24+, 256+).
PROBE_NONCE = 1
ANCHOR_EXPIRY_HEIGHT = 2**40
# Signatures of the last block checked alone, to split admission into verification and rest.
VERIFY_SAMPLE_TXS = 1000

assert len(PADDING_KEY_FORMAT.format(METADATA_ENTRIES_MAX - 1)) <= METADATA_KEY_CHARS_MAX


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
    # Where a tx's time goes, in µs per tx (see `StageTimes`).
    stages_us: dict[str, float] = field(default_factory=dict)
    # Process CPU time over the timed spans, per tx: on a shared machine this moves less
    # than the wall-clock figures.
    cpu_us_per_tx: float = 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class StageTimes:
    """Time spent in the state tree update and the store's block commit, by wrapping both.

    The bench drives the node's own engine; these two calls are where the block time not
    spent executing transactions goes, so timing them splits a block into execution, state
    tree and storage without touching the pipeline.
    """

    def __init__(self, engine: Engine) -> None:
        self.state_tree_s = 0.0
        self.store_commit_s = 0.0
        tree_apply = engine.state_tree.apply_batch
        store_commit = engine.store.commit_block

        def timed_apply(version: int, updates: Mapping[bytes, bytes | None]) -> TreeBatch:
            tick = time.perf_counter()
            try:
                return tree_apply(version, updates)
            finally:
                self.state_tree_s += time.perf_counter() - tick

        def timed_commit(write: BlockWrite) -> None:
            tick = time.perf_counter()
            try:
                store_commit(write)
            finally:
                self.store_commit_s += time.perf_counter() - tick

        engine.state_tree = _TimedTree(engine.state_tree, timed_apply)  # type: ignore[assignment]
        engine.store.commit_block = timed_commit  # type: ignore[method-assign]


class _TimedTree:
    """A state tree whose `apply_batch` is timed; everything else goes to the tree."""

    def __init__(self, tree: SparseMerkleTree,
                 apply_batch: Callable[[int, Mapping[bytes, bytes | None]], TreeBatch]) -> None:
        self._tree = tree
        self.apply_batch = apply_batch

    def __getattr__(self, name: str) -> object:
        return getattr(self._tree, name)


def measure_verify_us(raw_txs: Sequence[bytes]) -> float:
    """Return the mean time to check one of `raw_txs`' signatures alone, in µs."""
    txs = [Transaction.decode(raw) for raw in raw_txs]
    pairs = [(tx.signer, tx.sign_bytes(), tx.signature) for tx in txs]
    tick = time.perf_counter()
    for signer, message, signature in pairs:
        is_valid_signature(signer, message, signature)
    return 1e6 * (time.perf_counter() - tick) / max(len(pairs), 1)


def add_bench_issuers(home: Home, count: int) -> list[SigningKey]:
    """Rewrite the fresh home's genesis so that `count` new keys hold the notary.issuer role.

    Many signers, as in a city with many agency clerks: one signer's pipelined nonces are
    bounded by the mempool's nonce window.
    """
    keys = [SigningKey.generate() for _ in range(count)]
    genesis = home.load_genesis()
    roles = {"notary.issuer": tuple(key.public_key for key in keys)}
    dataclasses.replace(genesis, roles=roles).save(home.genesis_path)
    return keys


def presign_anchors(keys: list[SigningKey], chain_id: str, count: int,
                    progress: Progress, first_nonces: Sequence[int] | None = None, *,
                    metadata: Mapping[str, str] | None = None) -> list[bytes]:
    """Sign `count` notary anchors of random document hashes, round-robin over `keys`.

    Each key's nonces run from its entry in `first_nonces` (by default 1, a fresh signer);
    each anchor carries `metadata` (e.g. `compute_padding_metadata`'s), by default none.
    """
    txs = []
    for index in range(count):
        txs.append(sign_anchor(keys, chain_id, index, first_nonces, metadata=metadata))
        if (index + 1) % 5000 == 0 or index + 1 == count:
            progress("signing", index + 1, count)
    return txs


def sign_anchor(keys: list[SigningKey], chain_id: str, index: int,
                first_nonces: Sequence[int] | None = None, *,
                metadata: Mapping[str, str] | None = None) -> bytes:
    """Sign the `index`-th anchor of the round-robin load `presign_anchors` describes."""
    key = keys[index % len(keys)]
    first = 1 if first_nonces is None else first_nonces[index % len(keys)]
    return build_anchor(key, chain_id, first + index // len(keys), metadata).encode()


def build_anchor(key: SigningKey, chain_id: str, nonce: int,
                 metadata: Mapping[str, str] | None) -> Transaction:
    """Return a signed notary anchor of a random document hash (no metadata key if empty)."""
    args: dict[str, object] = {"doc_hash": os.urandom(32), "kind": "bench"}
    if metadata:
        args["metadata"] = dict(metadata)
    return Transaction.create(key, chain_id=chain_id, nonce=nonce,
                              expiry_height=ANCHOR_EXPIRY_HEIGHT, service="notary",
                              method="anchor", args=args)


def measure_anchor_bytes(chain_id: str, metadata: Mapping[str, str] | None) -> int:
    """Return the encoded length of a fresh signer's first anchor carrying `metadata`."""
    return len(build_anchor(SigningKey.generate(), chain_id, PROBE_NONCE, metadata).encode())


def build_filled_metadata(entries: int, value_chars: int) -> dict[str, str]:
    """Return `entries` padding entries holding `value_chars` filler characters, each entry
    full before the next.

    Full entries keep their length headers fixed, so only the last one or two entries move
    when the padding is adjusted.
    """
    metadata = {}
    for index in range(entries):
        chars = min(max(value_chars, 0), METADATA_VALUE_CHARS_MAX)
        metadata[PADDING_KEY_FORMAT.format(index)] = PADDING_FILLER * chars
        value_chars -= chars
    return metadata


def get_anchor_bytes_range(chain_id: str) -> tuple[int, int, int]:
    """Return the bare anchor's size and the smallest and largest padded anchor's sizes."""
    return (measure_anchor_bytes(chain_id, None),
            measure_anchor_bytes(chain_id, build_filled_metadata(1, 0)),
            measure_anchor_bytes(chain_id, build_filled_metadata(
                METADATA_ENTRIES_MAX, METADATA_ENTRIES_MAX * METADATA_VALUE_CHARS_MAX)))


def compute_padding_metadata(tx_bytes: int, chain_id: str) -> dict[str, str]:
    """Return the fewest metadata entries that make an anchor on `chain_id` encode to
    `tx_bytes` bytes (or a byte or two off: CBOR length headers skip a few sizes).

    Refuses, with the reachable sizes, a target the notary's schema cannot carry.
    """
    bare, smallest, largest = get_anchor_bytes_range(chain_id)
    if tx_bytes == bare:
        return {}
    if not smallest <= tx_bytes <= largest:
        raise LocalError(
            f"--tx-bytes {tx_bytes} is out of reach: a notary anchor on {chain_id} is "
            f"{bare} bytes bare or {smallest}..{largest} bytes with padding metadata (at most "
            f"{METADATA_ENTRIES_MAX} entries of {METADATA_VALUE_CHARS_MAX} characters)")
    entries = 1
    while measure_anchor_bytes(chain_id, build_filled_metadata(
            entries, entries * METADATA_VALUE_CHARS_MAX)) < tx_bytes:
        entries += 1
    value_chars = tx_bytes - measure_anchor_bytes(chain_id, build_filled_metadata(entries, 0))
    best: tuple[int, dict[str, str]] | None = None
    for _ in range(PADDING_FIT_ROUNDS):
        value_chars = min(max(value_chars, 0), entries * METADATA_VALUE_CHARS_MAX)
        metadata = build_filled_metadata(entries, value_chars)
        shortfall = tx_bytes - measure_anchor_bytes(chain_id, metadata)
        if best is None or abs(shortfall) < best[0]:
            best = (abs(shortfall), metadata)
        if shortfall == 0:
            break
        value_chars += shortfall
    assert best is not None
    return best[1]


def run_ledger_bench(directory: Path, txs: int, block_txs: int, progress: Progress,
                     tx_bytes: int | None = None,
                     workload: Workload | None = None) -> LedgerBenchResult:
    """Create a fresh chain in `directory` and push `txs` pre-signed txs through it: the
    `workload`'s (after its untimed setup blocks), by default notary anchors padded to about
    `tx_bytes` bytes (by default bare)."""
    metadata = None if tx_bytes is None else compute_padding_metadata(
        tx_bytes, LEDGER_BENCH_CHAIN_ID)
    if Home(directory).is_initialised():
        raise LocalError(f"{directory} already holds a chain; the benchmark needs a fresh one")
    home = init_home(directory, chain_id=LEDGER_BENCH_CHAIN_ID, moniker="bench")
    if workload is None:
        signers = add_bench_issuers(home, BENCH_SIGNERS)
    else:
        grant_genesis_roles(home, workload.roles())
    genesis = home.load_genesis()
    store = BlockStore(home.store_path)
    engine = Engine(genesis, store, load_services(), verify_evidence_bytes)
    setup_blocks = workload.setup_blocks(genesis.chain_id) if workload is not None else []
    room_txs = max([block_txs] + [len(setup) for setup in setup_blocks])
    mempool = Mempool(engine, txs_max=room_txs * 2, bytes_max=1 << 30)
    key = home.load_key("validator")
    stages = StageTimes(engine)
    admission_s = blocks_s = cpu_s = 0.0
    clock_ms = genesis.genesis_time_ms
    for setup in setup_blocks:
        clock_ms += 1
        admit_and_commit(engine, mempool, key, clock_ms, setup)
    signed_bytes = 0
    checkpoints: list[Checkpoint] = []
    span_txs, span_s = 0, 0.0
    marks = [mark for mark in CHECKPOINT_TXS if mark < txs] + [txs]
    for start in range(0, txs, block_txs):
        stop = min(start + block_txs, txs)
        batch = ([workload.sign_next(genesis.chain_id) for _ in range(start, stop)]
                 if workload is not None else
                 [sign_anchor(signers, genesis.chain_id, index, metadata=metadata)
                  for index in range(start, stop)])
        signed_bytes += sum(len(raw) for raw in batch)
        cpu_tick = time.process_time()
        tick = time.perf_counter()
        for raw in batch:
            check = mempool.add(raw)
            if not check.ok:
                raise LocalError(f"benchmark tx refused: {check.log}")
        tock = time.perf_counter()
        clock_ms += 1
        block = commit_next_block(engine, mempool, key, clock_ms, block_txs)
        done = time.perf_counter()
        cpu_s += time.process_time() - cpu_tick
        check_committed(block, len(batch))
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
    blocks = engine.height - len(setup_blocks)
    store.close()
    verify_us = measure_verify_us(batch[:VERIFY_SAMPLE_TXS])
    per_tx = 1e6 / txs
    stages_us = {
        "signature": verify_us,
        "admission_other": admission_s * per_tx - verify_us,
        "execution": (blocks_s - stages.state_tree_s - stages.store_commit_s) * per_tx,
        "state_tree": stages.state_tree_s * per_tx,
        "store_commit": stages.store_commit_s * per_tx,
    }
    return LedgerBenchResult(
        txs=txs, blocks=blocks, block_txs=block_txs, seconds=round(seconds, 3),
        tx_per_s=round(txs / seconds, 1), blocks_per_s=round(blocks / seconds, 2),
        admission_s=round(admission_s, 3), blocks_s=round(blocks_s, 3),
        tx_bytes=round(signed_bytes / txs), db_bytes=measure_disk_bytes(home),
        home=str(directory),
        checkpoints=tuple(checkpoints),
        stages_us={name: round(value, 1) for name, value in stages_us.items()},
        cpu_us_per_tx=round(cpu_s * per_tx, 1))


@dataclass(frozen=True)
class ServiceBenchResult:
    """Each service's run alone and the mix's, each on its own fresh chain."""

    txs: int
    block_txs: int
    home: str
    services: dict[str, LedgerBenchResult]
    mix: str | None = None
    mix_weights: dict[str, int] = field(default_factory=dict)
    mix_result: LedgerBenchResult | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def run_service_bench(directory: Path, txs: int, block_txs: int, progress: Progress,
                      services: Sequence[str], mix: str | None) -> ServiceBenchResult:
    """Run `txs` txs of each service in `services` alone and of the `mix`, each on a fresh
    chain in a subdirectory of `directory` named after the run."""
    if directory.exists() and any(directory.iterdir()):
        raise LocalError(f"{directory} is not empty; the benchmark needs a fresh directory")
    runs = list_runs(services, mix)
    results: dict[str, LedgerBenchResult] = {}
    for name, workload in runs:
        results[name] = run_ledger_bench(
            directory / name, txs, block_txs,
            lambda phase, done, total, name=name: progress(f"{name} {phase}", done, total),
            workload=workload)
    mix_result = results.pop(f"mix-{mix}") if mix is not None else None
    return ServiceBenchResult(
        txs=txs, block_txs=block_txs, home=str(directory), services=results, mix=mix,
        mix_weights=dict(MIXES[mix]) if mix is not None else {}, mix_result=mix_result)


def format_service_bench(result: ServiceBenchResult) -> list[str]:
    """Return the report's lines: each run's throughput, then where to audit the chains."""
    runs = dict(result.services)
    if result.mix_result is not None:
        runs[f"mix {result.mix}"] = result.mix_result
    lines = [f"{result.txs} txs per run in blocks of {result.block_txs}:"]
    width = max(len(name) for name in runs)
    for name, run in runs.items():
        lines.append(f"  {name:<{width}}  {run.tx_per_s:>8,.0f} tx/s  ({run.blocks} blocks, "
                     f"{run.tx_bytes} B/tx, {run.db_bytes / max(run.txs, 1):,.0f} disk B/tx, "
                     f"CPU {run.cpu_us_per_tx:,.0f} µs/tx)")
    if result.mix_result is not None:
        lines.append("  mix ratio: " + ", ".join(
            f"{name} {weight}" for name, weight in result.mix_weights.items()))
    lines.append(f"audit each with: seoulchain audit --home {result.home}/NAME")
    return lines


def grant_genesis_roles(home: Home, roles: Mapping[str, tuple[bytes, ...]]) -> None:
    """Rewrite the fresh home's genesis so that it grants `roles` (role → holders' keys)."""
    genesis = home.load_genesis()
    dataclasses.replace(genesis, roles=dict(roles)).save(home.genesis_path)


def admit_and_commit(engine: Engine, mempool: Mempool, key: SigningKey, time_ms: int,
                     batch: Sequence[bytes]) -> None:
    """Admit `batch` and commit it as one block, refusing any tx not admitted or not OK."""
    for raw in batch:
        check = mempool.add(raw)
        if not check.ok:
            raise LocalError(f"benchmark tx refused: {check.log}")
    check_committed(commit_next_block(engine, mempool, key, time_ms, len(batch)), len(batch))


def check_committed(block: CommittedBlock, expected: int) -> None:
    """Refuse a block that did not take all `expected` txs or whose txs did not succeed."""
    results = block.execution.results
    if len(results) != expected:
        raise LocalError(f"block {block.block.height} took {len(results)} of the "
                         f"{expected} benchmark txs")
    failed = next((result for result in results if not result.ok), None)
    if failed is not None:
        raise LocalError(f"benchmark tx failed in block {block.block.height}: "
                         f"{failed.code.name} {failed.log}")


def commit_next_block(engine: Engine, mempool: Mempool, key: SigningKey, time_ms: int,
                      txs_max: int) -> CommittedBlock:
    """Commit the next block as a lone validator's core does once it has decided: the
    mempool's candidates prepared into a block, its own precommit the block's commit."""
    candidates = mempool.reap(txs_max, BENCH_BLOCK_TX_BYTES_MAX)
    last_commit = engine.store.get_commit(engine.height) if engine.height else None
    block = engine.prepare_proposal(time_ms=time_ms, proposer=key.public_key,
                                    candidates=candidates, last_commit=last_commit,
                                    txs_max=txs_max, bytes_max=BENCH_BLOCK_TX_BYTES_MAX)
    block_id = block.block_id()
    signature = key.sign(compute_vote_sign_bytes(engine.chain_id, VoteType.PRECOMMIT,
                                                 block.height, 0, block_id))
    committed = engine.commit(block, Commit(block.height, 0, block_id,
                                            (CommitSig(key.public_key, signature),)))
    mempool.update(committed.execution.tx_hashes)
    return committed


def measure_disk_bytes(home: Home) -> int:
    """Return the bytes the node's data directory holds (store, its WAL and index)."""
    return sum(path.stat().st_size for path in home.data_dir.iterdir() if path.is_file())
