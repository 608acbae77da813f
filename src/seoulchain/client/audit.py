"""Offline audit: re-verify a node's whole chain from genesis, trusting nothing stored.

Theory of operation: the audit opens the node's store read-only in spirit (it never writes
to it) and reads it inside one SQLite read transaction (`BlockStore.read_snapshot`), so a
node that keeps committing meanwhile does not move the tip, the blocks or the state under
it: everything is checked as of the moment the audit began. It replays every block into a
fresh engine over a scratch store in a temporary directory — the same
execution code that validators run. For each height it checks, in order: the block decodes
canonically, it links to the previous block, its commit carries valid signatures from more
than 2/3 of the voting power, the previous block's commit embedded in it is valid too, and
re-executing its transactions reproduces every root in the header (tx, log, state, results).
Transaction signatures are verified on worker threads, one per core, ahead of execution.
After the last block it compares the stored service state, state tree, transaction
index and validator set history (the set of every height, which proofs and light clients
are served from) with the replayed ones. The state tree is deterministic — version h's nodes are a
function of the state after block h - 1 and block h's writes — so the stored tree must
equal the replay's node for node; the first differing node names its version, the height
that wrote it. Last, each service that declares invariants of its own state
(`Service.check_invariants`, such as mileage's supply) checks them on the replayed state.
The first failure stops the audit and names the height and the check.

A node run under CometBFT stores unsigned commit records; its audit (given CometBFT's app
hashes) checks instead that each is the record of its block and that the replayed block id
of h is the app hash in CometBFT's header h + 1 (docs/operations.md, "The CometBFT engine").

A state-synced store holds no blocks up to its base height h (the snapshot it was restored
from). Its audit checks from the snapshot on: it restores the kept snapshot (DATA/snapshots
beside the store) into the scratch store, verifying every chunk against the manifest and
the manifest's roots against the stored base header; it checks that header's commit
against the validator set the restored state records for h; then it replays the blocks
after h as above. What happened before h is not re-checked here: the restore proved header
h from the genesis with the light client (docs/operations.md, "State sync").
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from seoulchain.codec import decode
from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.consensus.messages import verify_commit
from seoulchain.errors import RemoteError, SeoulchainError
from seoulchain.execution.engine import Engine
from seoulchain.execution.platform import get_upgrades
from seoulchain.execution.service import Service
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import STATE_TREE_PINS_KEY, BlockStore
from seoulchain.ledger.types import Block, Commit
from seoulchain.proofs.smt import SparseMerkleTree, decode_node_key

ProgressCallback = Callable[[int, int], None]
# Under the CometBFT engine: the app hash CometBFT's header of a height carries.
AppHashSource = Callable[[int], bytes]


@dataclass(frozen=True)
class AuditReport:
    """What an audit checked and the first failure, if any."""

    blocks: int
    txs: int
    tip_height: int
    elapsed_s: float
    bad_height: int | None = None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class AuditFailure(SeoulchainError):
    """A check failed at `height` (0 for chain-wide checks)."""

    def __init__(self, height: int, message: str):
        super().__init__(message)
        self.height = height


def audit_chain(genesis: Genesis, store: BlockStore, services: dict[str, Service],
                progress: ProgressCallback | None = None,
                app_hashes: AppHashSource | None = None) -> AuditReport:
    """Replay and verify every block in `store` from `genesis`; never raises on bad data.

    With `app_hashes` (a chain run under CometBFT) each block's stored commit is the
    unsigned record of its id, and the replayed block id of h must be the app hash in
    CometBFT's header h + 1 instead."""
    started = time.monotonic()
    scratch = tempfile.TemporaryDirectory(prefix="seoulchain-audit-")
    replay_store = BlockStore(Path(scratch.name) / "replay.sqlite", durable=False)
    counts = [0, 0]
    tip_height = 0
    try:
        with store.read_snapshot():
            tip = store.get_tip()
            tip_height = 0 if tip is None else tip.height
            replay_chain(genesis, store, replay_store, services, tip_height, counts, progress,
                         app_hashes)
    except AuditFailure as failure:
        return AuditReport(counts[0], counts[1], tip_height, time.monotonic() - started,
                           failure.height, str(failure))
    finally:
        replay_store.close()
        scratch.cleanup()
    return AuditReport(counts[0], counts[1], tip_height, time.monotonic() - started)


def replay_chain(genesis: Genesis, store: BlockStore, replay_store: BlockStore,
                 services: dict[str, Service], tip_height: int, counts: list[int],
                 progress: ProgressCallback | None, app_hashes: AppHashSource | None = None
                 ) -> None:
    """Check the store's chain up to `tip_height` by replaying it into `replay_store`."""
    if store.get_meta("genesis_hash") != genesis.hash():
        raise AuditFailure(0, "the store was not created from this genesis file")
    if store.get_base_height() > 0:
        restore_base(genesis, store, replay_store)
    # Versions the audited chain upgrades to later may be installed from the first block on.
    engine = Engine(genesis, replay_store, services, verify_evidence_bytes,
                    known_upgrades=get_upgrades(store))
    if store.get_base_height() > 0:
        check_base_commit(engine, store)
    replay_blocks(engine, store, tip_height, counts, progress, app_hashes)
    check_final_state(engine, store, replay_store, tip_height)
    check_service_invariants(services, replay_store, tip_height)


def restore_base(genesis: Genesis, store: BlockStore, replay_store: BlockStore) -> None:
    """Restore a state-synced store's base snapshot into the replay store, verifying it."""
    from seoulchain.light.snapshot import Manifest, check_manifest_hashes
    from seoulchain.node.statesync import SnapshotFiles, restore_snapshot

    base_height = store.get_base_height()
    base = store.get_base_header()
    assert base is not None
    files = SnapshotFiles(Path(store.path).parent / "snapshots")
    try:
        manifest = Manifest.decode(files.read_manifest(base_height))
        if manifest.header != base[0] or manifest.commit != base[1]:
            raise AuditFailure(base_height, "the kept snapshot is not the store's base")
        check_manifest_hashes(manifest)
        restore_snapshot(replay_store, genesis, manifest,
                         [lambda index: files.read_chunk(base_height, index)])
    except AuditFailure:
        raise
    except SeoulchainError as exc:
        raise AuditFailure(base_height, f"the state sync base snapshot does not verify: "
                                        f"{exc}") from exc


def check_base_commit(engine: Engine, store: BlockStore) -> None:
    """Check the base header's commit against the set the restored state says signed it."""
    base = store.get_base_header()
    assert base is not None
    header, commit = base
    if engine.last_validators.hash() != header.validators_hash:
        raise AuditFailure(header.height, "the restored validator set is not the base "
                                          "header's validators_hash")
    try:
        verify_commit(engine.chain_id, engine.last_validators, commit, header.block_id(),
                      header.height)
    except RemoteError as exc:
        raise AuditFailure(header.height, f"the base header's commit does not verify: "
                                          f"{exc}") from exc


def replay_blocks(engine: Engine, store: BlockStore, tip_height: int, counts: list[int],
                  progress: ProgressCallback | None,
                  app_hashes: AppHashSource | None = None) -> None:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for height, block_bytes, commit_bytes in store.iter_blocks():
            if height != engine.height + 1:
                raise AuditFailure(engine.height + 1, f"block {engine.height + 1} is missing")
            block, commit = decode_block_and_commit(height, block_bytes, commit_bytes)
            engine.preverify(list(block.txs), pool)
            replay_block(engine, block, commit, counts, app_hashes)
            if progress is not None:
                progress(height, tip_height)
    if engine.height != tip_height:
        raise AuditFailure(engine.height + 1,
                           f"the store's tip is height {tip_height} but blocks stop at "
                           f"{engine.height}")


def replay_block(engine: Engine, block: Block, commit: Commit, counts: list[int],
                 app_hashes: AppHashSource | None = None) -> None:
    """Check one block against the replayed chain, then apply it."""
    if app_hashes is None:
        check_block(engine, block, commit)
    else:
        check_cometbft_block(engine, block, commit, app_hashes)
    engine.commit(block, commit)
    counts[0] += 1
    counts[1] += len(block.txs)


def decode_block_and_commit(height: int, block_bytes: bytes,
                            commit_bytes: bytes | None) -> tuple[Block, Commit]:
    try:
        block = Block.decode(block_bytes)
    except RemoteError as exc:
        raise AuditFailure(height, f"block bytes do not decode: {exc}") from exc
    if block.height != height:
        raise AuditFailure(height, f"block stored at height {height} says height {block.height}")
    if commit_bytes is None:
        raise AuditFailure(height, "the block's commit is missing")
    try:
        commit = Commit.decode(commit_bytes)
    except RemoteError as exc:
        raise AuditFailure(height, f"commit bytes do not decode: {exc}") from exc
    return block, commit


def check_block(engine: Engine, block: Block, commit: Commit) -> None:
    """Verify the block's commits, links and roots against the replayed chain."""
    height = block.height
    chain_id = engine.chain_id
    try:
        verify_commit(chain_id, engine.validators, commit, block.block_id(), height)
    except RemoteError as exc:
        raise AuditFailure(height, f"commit signatures do not verify: {exc}") from exc
    if block.last_commit is not None:
        try:
            verify_commit(chain_id, engine.last_validators, block.last_commit,
                          engine.tip.block_id, height - 1)
        except RemoteError as exc:
            raise AuditFailure(height, f"embedded commit of block {height - 1} does not "
                                       f"verify: {exc}") from exc
    try:
        engine.process_proposal(block)
    except RemoteError as exc:
        raise AuditFailure(height, str(exc)) from exc


def check_cometbft_block(engine: Engine, block: Block, commit: Commit,
                         app_hashes: AppHashSource) -> None:
    """Under CometBFT: unsigned commit records, replayed roots, and the block id of h equal
    to the app hash CometBFT's header h + 1 carries."""
    height = block.height
    if commit != Commit(height, 0, block.block_id(), ()):
        raise AuditFailure(height, "the stored commit is not the unsigned record of the block")
    if block.last_commit not in (None, Commit(height - 1, 0, engine.tip.block_id, ())):
        raise AuditFailure(height, f"the block does not link to block {height - 1}")
    try:
        engine.process_proposal(block)
    except RemoteError as exc:
        raise AuditFailure(height, str(exc)) from exc
    try:
        app_hash = app_hashes(height + 1)
    except SeoulchainError as exc:
        raise AuditFailure(height, f"CometBFT's header {height + 1} is unavailable: "
                                   f"{exc}") from exc
    if app_hash != block.block_id():
        raise AuditFailure(height, f"CometBFT's header {height + 1} carries app hash "
                                   f"{app_hash.hex()}, the replayed block {height} has id "
                                   f"{block.block_id().hex()}")


def check_final_state(engine: Engine, store: BlockStore, replay_store: BlockStore,
                      tip_height: int) -> None:
    """Compare stored state and tx index with the replay, naming the first difference."""
    stored_tip = store.get_tip()
    if stored_tip is not None and stored_tip != engine.tip:
        raise AuditFailure(tip_height, "the store's tip record does not match the last block")
    for stored_item, replayed_item in zip_longest(store.iter_state(),
                                                  replay_store.iter_state()):
        if stored_item is None or replayed_item is None:
            raise AuditFailure(tip_height, "stored state has a different number of keys than "
                                           "the replay")
        if stored_item != replayed_item:
            key = min(stored_item[0], replayed_item[0])
            raise AuditFailure(tip_height,
                               f"stored state differs from the replay at key {key!r}")
    check_validator_sets(store, replay_store, tip_height)
    mirror_state_tree_retention(store, replay_store)
    check_state_tree(store, replay_store, tip_height, engine.tip.state_root)
    for stored_row, replayed_row in zip(store.iter_tx_index(), replay_store.iter_tx_index(),
                                        strict=False):
        if stored_row != replayed_row:
            raise AuditFailure(stored_row[1], f"transaction index entry {stored_row[0].hex()} "
                                              f"differs from the replay")
    if store.count_txs() != replay_store.count_txs():
        raise AuditFailure(tip_height, "the transaction index has a different number of "
                                       "entries than the replay")


def check_service_invariants(services: dict[str, Service], replay_store: BlockStore,
                             tip_height: int) -> None:
    """Ask each service that checks its own invariants to check the replayed state."""
    for name in sorted(services):
        service = services[name]
        if type(service).check_invariants is Service.check_invariants:
            continue  # declares none: skip the scan
        prefix = name.encode() + b"/"
        entries = ((key[len(prefix):], decode(value))
                   for key, value in replay_store.iter_state() if key.startswith(prefix))
        try:
            problems = service.check_invariants(entries)
        except Exception as exc:  # a malformed record is a failed check, not a crash
            problems = [f"its state could not be checked: {type(exc).__name__}: {exc}"]
        if problems:
            raise AuditFailure(tip_height, f"service {name!r} breaks its invariants: "
                                           f"{'; '.join(problems[:5])}")


def check_validator_sets(store: BlockStore, replay_store: BlockStore, tip_height: int) -> None:
    """Compare the stored validator set of every height (what proofs and light clients are
    served) with the sets the replay decided, naming the first height that differs."""
    for stored, replayed in zip_longest(store.iter_validator_sets(),
                                        replay_store.iter_validator_sets()):
        if stored != replayed:
            height = min(row[0] for row in (stored, replayed) if row is not None)
            raise AuditFailure(min(height, tip_height),
                               f"the stored validator set from height {height} differs from "
                               "the replay")


def mirror_state_tree_retention(store: BlockStore, replay_store: BlockStore) -> None:
    """Prune the replay's state tree as the audited store's was: same floor, same pins."""
    # The replay keeps every version; what a node keeps is a function of its prune floor
    # and pinned versions only, so pruning the replay to the same ones must give the same
    # rows (the comparison below then also checks the node pruned nothing it should keep).
    try:
        floor = store.get_state_tree_floor()
        pins = store.get_pinned_state_versions()
    except SeoulchainError as exc:
        raise AuditFailure(0, f"the state tree retention records are damaged: {exc}") from exc
    if pins:
        replay_store.set_meta(STATE_TREE_PINS_KEY, sorted(pins))
    replay_store.prune_state_tree(floor)


def check_state_tree(store: BlockStore, replay_store: BlockStore, tip_height: int,
                     state_root: bytes) -> None:
    """Check the stored state tree's root at the tip, then every node against the replay."""
    try:
        stored_root = SparseMerkleTree(store.state_tree).get_root(tip_height)
    except SeoulchainError as exc:
        raise AuditFailure(tip_height, f"the stored state tree has no readable root at the "
                                       f"tip: {exc}") from exc
    if stored_root != state_root:
        raise AuditFailure(tip_height, "the stored state tree's root is not the tip header's "
                                       "state_root")
    for table in (store.state_tree.table, store.state_tree.stale_table):
        for stored_row, replayed_row in zip_longest(store.state_tree.iter_rows(table),
                                                    replay_store.state_tree.iter_rows(table)):
            if stored_row != replayed_row:
                height = min(compute_row_height(row) for row in (stored_row, replayed_row)
                             if row is not None)
                raise AuditFailure(height, f"state tree table {table} differs from the replay "
                                           f"at height {height}")


def compute_row_height(row: tuple[object, ...]) -> int:
    """Return the height that wrote a state tree row (its node's version, or stale_since)."""
    first = row[0]
    if type(first) is int:
        return first
    try:
        return decode_node_key(first)[0] if isinstance(first, bytes) else 0
    except SeoulchainError:
        return 0  # a node key too damaged to name a version: a chain-wide failure
