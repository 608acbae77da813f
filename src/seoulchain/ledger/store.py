"""The block store: blocks, commits, the transaction index, service state and log nodes.

Theory of operation: one SQLite database in WAL mode with `synchronous=FULL`. Everything
that one block changes — the block, its commit, its transactions' index rows and results,
the state writes, the state tree's new nodes (version = height), the new transparency-log
nodes and the chain tip — is written inside a single SQLite transaction by `commit_block`,
so after a crash (kill -9, power loss) the store holds either the whole block or none of
it; the previous height is always intact.

The `state` table holds the latest value of each key only; the state tree
(`proofs/smt.py`, tables `state_nodes` and `state_nodes_stale`) keeps every version's nodes
and is what `state_root` commits to (docs/spec/state-tree.md). With a retention set, a block's
transaction also prunes the versions that fell out of it (`prune_state_tree_rows`), keeping
the versions pinned in `meta` (snapshots, proofs being served), so pruning is exactly as
durable as the block that triggered it.

Every block read back — decoded or as raw CBOR — is checked against the id stored beside it
when it was committed: the header must hash to that id and the body (transactions, evidence,
the previous block's commit) must be the one the header names. A block that fails is never
handed out: the read raises `StorageError` naming the height and is logged. Commits are
decoded with the strict decoder. Any error SQLite reports (a damaged page: "database disk
image is malformed") surfaces as `StorageError` too, from every query on the store's
connection, so a damaged store stops with one clear line and never a driver traceback.
Tampering that still decodes and hashes consistently (a forged commit, altered state) is
what `seoulchain audit` detects by replaying from genesis.

`list_txs` lists committed transactions newest first, filtered by service, method, signer,
result and block time. A listing that names a service or a signer is answered from an
index (table `tx_kinds`: service, method, height, index, hash — written in the block's own
SQLite transaction); any other listing reads the blocks themselves, at most
`TX_SCAN_BLOCKS_MAX` blocks and `TX_SCAN_TXS_MAX` transactions per call, and returns the
position to resume at. A store of schema 3 gains the index when it is opened (one
transaction that reads every stored block; logged with its duration).

`read_snapshot` holds one SQLite read transaction: in WAL mode every read inside it sees
the store as of its first read, however many blocks commit meanwhile on other connections.

A `crash_hook` can be installed by tests: it is called between the writes of a block
(with the name of the step) so a crash can be injected at every point.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from seoulchain.codec import decode, encode
from seoulchain.crypto import sha256
from seoulchain.errors import DecodeError, LocalError, StorageError
from seoulchain.ledger.state_nodes import SqliteNodeStore
from seoulchain.ledger.types import (
    BLOCK_TXS_MAX,
    Block,
    BlockHeader,
    Commit,
    Transaction,
    ValidatorSet,
    find_body_defect,
)
from seoulchain.proofs.smt import (
    PRUNE_CHUNK_NODES,
    StaleNode,
    TreeBatch,
    VersionUnavailableError,
    encode_node_key,
    is_needed_by_versions,
)

log = logging.getLogger("seoulchain.store")
T = TypeVar("T")

# 2: the state root is the state tree's root (tables state_nodes, state_nodes_stale).
# 3: the validator set of every height (table validator_sets).
# 4: the service and method of every committed transaction (table tx_kinds).
SCHEMA_VERSION = 4
# The schema a store is brought up to date from when it is opened (`migrate_schema`).
SCHEMA_MIGRATES_FROM = 3
# Bounds a single index listing (txs by signer) so that an API call stays cheap.
LIST_LIMIT_MAX = 1000
# Blocks one filtered transaction listing reads at most (`list_txs`): bounded work per
# call, like the Atom feed's scan (about 17 minutes of chain at one block a second); a
# listing that reaches the bound stops early and says where to resume.
TX_SCAN_BLOCKS_MAX = 1000
# Transactions one listing decodes at most: about half a second of reads at the 0.1 ms per
# transaction (block check, decode, hash) measured on a 2-core development machine.
TX_SCAN_TXS_MAX = 5000
# State tree retention records in `meta`: the prune floor, how far the stale index has been
# scanned, and the versions pinned against pruning (snapshots, proofs being served).
STATE_TREE_FLOOR_KEY = "state_tree_floor"
STATE_TREE_CURSOR_KEY = "state_tree_prune_cursor"
STATE_TREE_PINS_KEY = "state_tree_pins"
# Each pin keeps up to a whole version of the tree on disk; a handful of snapshots is plenty.
STATE_PINS_MAX = 64
# A state-synced store starts at a snapshot: `meta` records its height, header and commit
# (docs/operations.md, "State sync"). Blocks are held from base + 1 on.
STATE_SYNC_BASE_KEY = "state_sync_base"
# What an operator does about a damaged store (docs/operations.md, "Storage errors").
RESYNC_ADVICE = ("stop the node, move its data/ directory aside (keeping a validator's "
                 "signing-state.cbor) and rebuild it from peers with `seoulchain state-sync`, "
                 "or restore it from a backup (docs/operations.md, \"Storage errors\")")
# SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
DAMAGED_FILE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, block_id BLOB NOT NULL UNIQUE, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS commits (height INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL,
    log_index INTEGER NOT NULL, signer BLOB NOT NULL, code INTEGER NOT NULL,
    result BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS txs_by_signer ON txs (signer, height, idx);
CREATE TABLE IF NOT EXISTS tx_kinds (
    service TEXT NOT NULL, method TEXT NOT NULL, height INTEGER NOT NULL,
    idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (service, method, height, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tx_kinds_by_service ON tx_kinds (service, height, idx);
CREATE INDEX IF NOT EXISTS tx_kinds_by_hash ON tx_kinds (hash);
CREATE TABLE IF NOT EXISTS state (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS validator_sets (height INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS log_nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Tip:
    """The last committed block as recorded by the store."""

    height: int
    block_id: bytes
    state_root: bytes
    log_size: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class TxRecord:
    """Where a committed transaction sits and what it did."""

    hash: bytes
    height: int
    index: int
    log_index: int
    signer: bytes
    code: int
    result: bytes


@dataclass(frozen=True, slots=True)
class TxFilter:
    """Which committed transactions a listing keeps; None matches anything."""

    service: str | None = None
    method: str | None = None
    signer: bytes | None = None
    ok: bool | None = None  # True: result code 0 only; False: failed ones only
    from_time_ms: int | None = None
    to_time_ms: int | None = None

    def matches(self, tx: Transaction) -> bool:
        """Return True if the transaction's service, method and signer are the wanted ones."""
        return ((self.service is None or tx.service == self.service)
                and (self.method is None or tx.method == self.method)
                and (self.signer is None or tx.signer == self.signer))


@dataclass(frozen=True, slots=True)
class TxListing:
    """One committed transaction as a listing shows it."""

    hash: bytes
    height: int
    index: int
    time_ms: int
    service: str
    method: str
    signer: bytes
    code: int


@dataclass(frozen=True, slots=True)
class TxPage:
    """One page of a transaction listing and the position the next page starts at."""

    items: list[TxListing]
    # The position (`tx_position`) to resume at, or None when nothing older can match.
    resume: int | None


def tx_position(height: int, index: int) -> int:
    """Return one integer ordering (height, index) pairs; blocks hold < BLOCK_TXS_MAX txs."""
    return height * BLOCK_TXS_MAX + index


def split_tx_position(position: int) -> tuple[int, int]:
    """Return the (height, index) of a `tx_position`."""
    return divmod(position, BLOCK_TXS_MAX)


@dataclass(frozen=True, slots=True)
class BlockWrite:
    """Everything one committed block changes, written atomically by `commit_block`."""

    block: Block
    commit: Commit
    txs: list[TxRecord]
    state_writes: dict[bytes, bytes | None]
    state_tree: TreeBatch
    log_nodes: list[tuple[int, int, bytes]]
    # With a value r, state tree versions below r (unless pinned) are pruned in the same
    # transaction (see `prune_state_tree`); None keeps every version.
    state_tree_prune_before: int | None = None
    # The validator set that signs height + 2 when it differs from the set of height + 1.
    next_validators: ValidatorSet | None = None


class BlockStore:
    """SQLite-backed store of one node's chain."""

    def __init__(self, path: Path | str, crash_hook: Callable[[str], None] | None = None,
                 durable: bool = True):
        """Open or create the store; `durable=False` skips fsync (scratch stores only)."""
        self.path = str(path)
        self.crash_hook = crash_hook
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                      factory=CheckedConnection)
            self.db.store_path = self.path
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
            self.db.executescript(SCHEMA)
            self.check_schema()
            self.state_tree = SqliteNodeStore(self.db)
        except (sqlite3.DatabaseError, StorageError) as exc:
            with contextlib.suppress(AttributeError):
                self.db.close()
            raise StorageError(f"cannot open block store {self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def check_schema(self) -> None:
        """Record the schema version on first use; refuse a store of another version."""
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                            (encode(SCHEMA_VERSION),))
        elif decode_stored(row[0]) == SCHEMA_MIGRATES_FROM:
            self.migrate_schema()
        elif decode_stored(row[0]) != SCHEMA_VERSION:
            raise StorageError(f"block store {self.path} has schema {row[0]!r}, "
                               f"this software reads {SCHEMA_VERSION}")

    def migrate_schema(self) -> None:
        """Bring a schema-3 store to schema 4: index the kind of every stored transaction,
        all in one SQLite transaction (a crash leaves the store at schema 3)."""
        started = time.monotonic()
        tip = self.get_tip()
        highest = 0 if tip is None else tip.height
        with self.transaction():
            for height in range(self.get_base_height() + 1, highest + 1):
                block = self.get_block(height)
                if block is None:
                    raise StorageError(f"block {height} is missing from the block store "
                                       f"{self.path}; {RESYNC_ADVICE}")
                self.db.executemany("INSERT OR REPLACE INTO tx_kinds VALUES (?, ?, ?, ?, ?)",
                                    list_tx_kinds(block))
            self.set_meta("schema_version", SCHEMA_VERSION)
        log.info("block store %s: indexed the transactions of %d blocks for schema %d in "
                 "%.1f s", self.path, highest, SCHEMA_VERSION, time.monotonic() - started)

    # ------------------------------------------------------------------ writes

    def set_meta(self, key: str, value: object) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, encode(value)))

    def write_genesis_state(self, genesis_hash: bytes, writes: dict[bytes, bytes | None],
                            state_tree: TreeBatch, validators: ValidatorSet) -> None:
        """Write the genesis state, its version-0 tree and the genesis validator set (which
        signs heights 1 and 2) once, binding the store to a genesis."""
        stored = self.get_meta("genesis_hash")
        if stored is not None:
            if stored != genesis_hash:
                raise StorageError("block store belongs to a different genesis")
            return
        check_tree_batch(state_tree, 0)
        with self.transaction():
            self.apply_state_writes(writes)
            self.state_tree.write_batch(state_tree)
            self.write_validator_set(1, validators)
            self.set_meta("genesis_state_root", state_tree.root)
            self.set_meta("genesis_hash", genesis_hash)

    def commit_block(self, write: BlockWrite) -> None:
        """Persist one block and everything it changed in a single SQLite transaction."""
        block = write.block
        header = block.header
        tip = self.get_tip()
        expected = 1 if tip is None else tip.height + 1
        if header.height != expected:
            raise LocalError(f"commit_block: height {header.height}, expected {expected}")
        if write.commit.block_id != block.block_id() or write.commit.height != header.height:
            raise LocalError("commit_block: commit does not match the block")
        if write.state_tree.root != header.state_root:
            raise LocalError("commit_block: the state tree batch's root is not the header's")
        check_tree_batch(write.state_tree, header.height)
        with self.transaction():
            self.hook("begin")
            self.db.execute("INSERT INTO blocks VALUES (?, ?, ?)",
                            (header.height, block.block_id(), block.encode()))
            self.hook("block")
            self.db.execute("INSERT INTO commits VALUES (?, ?)",
                            (header.height, write.commit.encode()))
            self.db.executemany(
                "INSERT INTO txs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(tx.hash, tx.height, tx.index, tx.log_index, tx.signer, tx.code, tx.result)
                 for tx in write.txs])
            self.db.executemany("INSERT INTO tx_kinds VALUES (?, ?, ?, ?, ?)",
                                list_tx_kinds(block))
            self.hook("txs")
            self.apply_state_writes(write.state_writes)
            self.hook("state")
            self.state_tree.write_batch(write.state_tree)
            if write.state_tree_prune_before is not None:
                self.prune_state_tree_rows(write.state_tree_prune_before)
            self.hook("state_tree")
            self.db.executemany("INSERT OR REPLACE INTO log_nodes VALUES (?, ?, ?)",
                                write.log_nodes)
            self.hook("log")
            if write.next_validators is not None:
                self.write_validator_set(header.height + 2, write.next_validators)
            tip_value = [header.height, block.block_id(), header.state_root, header.log_size,
                         header.time_ms]
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (encode(tip_value),))
            self.hook("tip")

    def write_validator_set(self, height: int, validators: ValidatorSet) -> None:
        """Record that `validators` signs `height` and later heights (caller's transaction)."""
        self.db.execute("INSERT OR REPLACE INTO validator_sets VALUES (?, ?)",
                        (height, encode(validators.to_cbor())))

    def apply_state_writes(self, writes: dict[bytes, bytes | None]) -> None:
        self.db.executemany("DELETE FROM state WHERE key = ?",
                            [(key,) for key, value in writes.items() if value is None])
        self.db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)",
                            [(key, value) for key, value in writes.items() if value is not None])

    def hook(self, step: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(step)

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Hold one read transaction: every read inside sees the store as of its start.

        Inside a transaction already open on this connection, the reads share that one.
        """
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            # In WAL mode the snapshot is taken by the first read, so take it now.
            self.db.execute("SELECT COUNT(*) FROM meta").fetchone()
            yield
        finally:
            self.db.execute("ROLLBACK")

    # ------------------------------------------------------------------ state sync restore

    def is_blank(self) -> bool:
        """Return True if nothing but the schema was ever written (a restore target)."""
        return (self.get_meta("genesis_hash") is None and self.get_tip() is None
                and self.db.execute("SELECT 1 FROM state LIMIT 1").fetchone() is None)

    def write_restored_rows(self, state: list[tuple[bytes, bytes]],
                            nodes: list[tuple[bytes, bytes]]) -> None:
        """Insert a verified snapshot chunk's state entries and tree nodes (caller's txn)."""
        try:
            self.db.executemany("INSERT INTO state VALUES (?, ?)", state)
            self.db.executemany(f"INSERT INTO {self.state_tree.table} VALUES (?, ?)", nodes)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot write restored state: {exc}") from exc

    def write_restored_base(self, genesis_hash: bytes, header: BlockHeader, commit: Commit,
                            log_nodes: list[tuple[int, int, bytes]]) -> None:
        """Record a restored snapshot as the store's base and tip (caller's transaction)."""
        height = header.height
        self.db.executemany("INSERT INTO log_nodes VALUES (?, ?, ?)", log_nodes)
        self.db.execute("INSERT INTO commits VALUES (?, ?)", (height, commit.encode()))
        self.set_meta(STATE_SYNC_BASE_KEY, [height, header.encode(), commit.encode()])
        self.set_meta("genesis_hash", genesis_hash)
        # Versions below the base were never here: the pruner starts at the base.
        self.set_meta(STATE_TREE_FLOOR_KEY, height)
        self.set_meta(STATE_TREE_CURSOR_KEY, height)
        self.set_meta(STATE_TREE_PINS_KEY, [height])
        self.set_meta("tip", [height, header.block_id(), header.state_root, header.log_size,
                              header.time_ms])

    def get_base_height(self) -> int:
        """Return the snapshot height a state-synced store starts at (0: from genesis)."""
        base = self.get_meta(STATE_SYNC_BASE_KEY)
        if base is None:
            return 0
        if not (isinstance(base, list) and len(base) == 3 and type(base[0]) is int):
            raise StorageError("the state sync base record is malformed")
        return base[0]

    def get_base_header(self) -> tuple[BlockHeader, Commit] | None:
        """Return the header and commit of a state-synced store's base, or None."""
        base = self.get_meta(STATE_SYNC_BASE_KEY)
        if base is None:
            return None
        self.get_base_height()
        try:
            return BlockHeader.decode(base[1]), Commit.decode(base[2])
        except DecodeError as exc:
            raise StorageError(f"the state sync base header is corrupt: {exc}") from exc

    # ------------------------------------------------------------------ reads

    def get_meta(self, key: str) -> object | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else decode_stored(row[0])

    def get_tip(self) -> Tip | None:
        """Return the last committed block's tip record, or None before the first block."""
        value = self.get_meta("tip")
        if value is None:
            return None
        if not (isinstance(value, list) and len(value) == 5):
            raise StorageError("tip record is malformed")
        return Tip(*value)

    def get_block(self, height: int) -> Block | None:
        """Return the block at `height`, checked against its stored id, or None."""
        row = self.db.execute("SELECT block_id, data FROM blocks WHERE height = ?",
                              (height,)).fetchone()
        return None if row is None else check_stored_block(height, row[0], row[1])

    def get_block_bytes(self, height: int) -> bytes | None:
        """Return the block at `height` as stored (canonical CBOR), checked, or None."""
        row = self.db.execute("SELECT block_id, data FROM blocks WHERE height = ?",
                              (height,)).fetchone()
        if row is None:
            return None
        check_stored_block(height, row[0], row[1])
        return row[1]

    def get_height_by_block_id(self, block_id: bytes) -> int | None:
        row = self.db.execute("SELECT height FROM blocks WHERE block_id = ?",
                              (block_id,)).fetchone()
        return None if row is None else row[0]

    def get_commit(self, height: int) -> Commit | None:
        """Return the commit of `height`, checked against the stored block's id, or None."""
        row = self.db.execute(
            "SELECT c.data, b.block_id FROM commits c LEFT JOIN blocks b "
            "ON b.height = c.height WHERE c.height = ?", (height,)).fetchone()
        if row is None:
            return None
        try:
            commit = Commit.decode(row[0])
        except DecodeError as exc:
            raise report_corrupt_record(f"commit {height}", f"it does not decode ({exc})") from exc
        if commit.height != height or (row[1] is not None and commit.block_id != row[1]):
            raise report_corrupt_record(f"commit {height}",
                                        "it is not for the block stored at that height")
        return commit

    def iter_blocks(self, start: int = 1) -> Iterator[tuple[int, bytes, bytes | None]]:
        """Yield (height, block bytes, commit bytes) in height order from `start`, unchecked.

        For the audit and other readers that check every block themselves.
        """
        cursor = self.db.execute(
            "SELECT b.height, b.data, c.data FROM blocks b LEFT JOIN commits c "
            "ON b.height = c.height WHERE b.height >= ? ORDER BY b.height", (start,))
        yield from cursor

    def get_validator_set(self, height: int) -> ValidatorSet | None:
        """Return the validator set that signs `height`, or None beyond the tip + 2 or
        before the heights this store holds."""
        tip = self.get_tip()
        if height < 1 or height > (0 if tip is None else tip.height) + 2:
            return None
        row = self.db.execute("SELECT height, data FROM validator_sets WHERE height <= ? "
                              "ORDER BY height DESC LIMIT 1", (height,)).fetchone()
        if row is None:
            return None
        try:
            return ValidatorSet.from_cbor(decode(row[1]))
        except DecodeError as exc:
            raise report_corrupt_record(f"validator set from height {row[0]}", str(exc)) from exc

    def iter_validator_sets(self) -> Iterator[tuple[int, bytes]]:
        """Yield (height, encoded set) of every stored validator set change, by height."""
        yield from self.db.execute("SELECT height, data FROM validator_sets ORDER BY height")

    def get_tx(self, tx_hash: bytes) -> TxRecord | None:
        row = self.db.execute("SELECT * FROM txs WHERE hash = ?", (tx_hash,)).fetchone()
        return None if row is None else TxRecord(*row)

    def list_txs_by_signer(self, signer: bytes, limit: int = 100) -> list[TxRecord]:
        """Return the signer's most recent transactions, newest first."""
        limit = max(1, min(limit, LIST_LIMIT_MAX))
        rows = self.db.execute(
            "SELECT * FROM txs WHERE signer = ? ORDER BY height DESC, idx DESC LIMIT ?",
            (signer, limit)).fetchall()
        return [TxRecord(*row) for row in rows]

    def list_txs(self, wanted: TxFilter, at_or_before: int | None, limit: int,
                 scan_blocks_max: int = TX_SCAN_BLOCKS_MAX,
                 scan_txs_max: int = TX_SCAN_TXS_MAX) -> TxPage:
        """Return committed transactions matching `wanted`, newest first, from a position.

        Reads at most `scan_blocks_max` blocks and `scan_txs_max` transactions; a page may
        hold fewer than `limit` items and still say where to resume. Block times strictly
        increase with height, so the time bounds narrow the heights read.
        """
        limit = max(1, min(limit, LIST_LIMIT_MAX))
        tip = self.get_tip()
        lowest = max(1, self.get_base_height() + 1)
        highest = 0 if tip is None else tip.height
        # Committed (height, index) positions never change, so pages need no snapshot.
        if wanted.to_time_ms is not None:
            highest = self.find_last_height_at(wanted.to_time_ms, lowest, highest)
        if wanted.from_time_ms is not None:
            lowest = self.find_last_height_at(wanted.from_time_ms - 1, lowest, highest) + 1
        start = tx_position(highest, BLOCK_TXS_MAX - 1)
        if at_or_before is not None:
            start = min(start, at_or_before)
        if wanted.service is not None or wanted.signer is not None:
            return self.find_txs(wanted, start, lowest, limit)
        return self.scan_txs(wanted, start, lowest, limit, (scan_blocks_max, scan_txs_max))

    def find_txs(self, wanted: TxFilter, start: int, lowest: int, limit: int) -> TxPage:
        """Collect up to `limit` matching txs at or before position `start`, down to `lowest`,
        from the index (the filter names a service or a signer)."""
        start_height, start_index = split_tx_position(start)
        # The listing walks one index newest first: the service's (with the method's) when
        # a service is named, else the signer's; row values keep the walk an index range.
        walk = "k" if wanted.service is not None else "t"
        clauses = [f"({walk}.height, {walk}.idx) <= (?, ?)", f"{walk}.height >= ?"]
        values: list[object] = [start_height, start_index, lowest]
        for column, value in (("k.service", wanted.service), ("k.method", wanted.method),
                              ("t.signer", wanted.signer)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if wanted.ok is not None:
            clauses.append("t.code = 0" if wanted.ok else "t.code != 0")
        rows = self.db.execute(
            "SELECT k.hash, k.height, k.idx, k.service, k.method, t.signer, t.code "
            "FROM tx_kinds k JOIN txs t ON t.hash = k.hash "
            f"WHERE {' AND '.join(clauses)} "
            f"ORDER BY {walk}.height DESC, {walk}.idx DESC LIMIT ?",
            (*values, limit + 1)).fetchall()
        times: dict[int, int] = {}
        items = [TxListing(tx_hash, height, index, self.get_block_time(height, times),
                           service, method, signer, code)
                 for tx_hash, height, index, service, method, signer, code in rows[:limit]]
        if len(rows) <= limit:
            return TxPage(items, None)
        return TxPage(items, tx_position(items[-1].height, items[-1].index) - 1)

    def get_block_time(self, height: int, times: dict[int, int]) -> int:
        """Return block `height`'s time, read once per listing (`times` caches it)."""
        if height not in times:
            block = self.get_block(height)
            if block is None:
                raise StorageError(f"block {height} is missing from the block store")
            times[height] = block.header.time_ms
        return times[height]

    def scan_txs(self, wanted: TxFilter, start: int, lowest: int, limit: int,
                 bounds: tuple[int, int]) -> TxPage:
        """Collect up to `limit` matching txs at or before position `start`, down to `lowest`."""
        start_height, start_index = split_tx_position(start)
        floor = max(lowest, start_height - bounds[0] + 1)
        items: list[TxListing] = []
        examined = 0
        for height in range(start_height, floor - 1, -1):
            block = self.get_block(height)
            if block is None:
                raise StorageError(f"block {height} is missing from the block store")
            last = min(len(block.txs) - 1, start_index if height == start_height
                       else BLOCK_TXS_MAX - 1)
            for index in range(last, -1, -1):
                listing = self.get_tx_listing(block, index, wanted)
                if listing is not None:
                    items.append(listing)
                examined += 1
                if len(items) == limit or examined == bounds[1]:
                    next_position = tx_position(height, index) - 1
                    more = next_position >= tx_position(lowest, 0)
                    return TxPage(items, next_position if more else None)
        more = floor > lowest
        return TxPage(items, tx_position(floor - 1, BLOCK_TXS_MAX - 1) if more else None)

    def get_tx_listing(self, block: Block, index: int, wanted: TxFilter) -> TxListing | None:
        """Return the listing of the block's tx `index` if `wanted` matches it, else None."""
        raw = block.txs[index]
        try:
            tx = Transaction.decode(raw)
        except DecodeError as exc:
            raise report_corrupt_record(f"tx {index} of block {block.height}", str(exc)) from exc
        if not wanted.matches(tx):
            return None
        tx_hash = sha256(raw)
        record = self.get_tx(tx_hash)
        if record is None:
            raise StorageError(f"tx {tx_hash.hex()} of block {block.height} has no stored result")
        if wanted.ok is not None and (record.code == 0) != wanted.ok:
            return None
        return TxListing(tx_hash, block.height, index, block.header.time_ms, tx.service,
                         tx.method, tx.signer, record.code)

    def find_last_height_at(self, time_ms: int, lowest: int, highest: int) -> int:
        """Return the highest height in [lowest, highest] whose block time is at most
        `time_ms`, or lowest - 1 when none is (block times strictly increase)."""
        below, above = lowest - 1, highest + 1
        while above - below > 1:
            middle = (below + above) // 2
            block = self.get_block(middle)
            if block is None:
                raise StorageError(f"block {middle} is missing from the block store")
            if block.header.time_ms <= time_ms:
                below = middle
            else:
                above = middle
        return below

    def count_txs(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM txs").fetchone()[0]

    def iter_tx_index(self) -> Iterator[tuple[bytes, int, int, int, bytes, int, bytes]]:
        """Yield every tx index row (hash, height, index, log index, signer, code, result)
        in hash order."""
        yield from self.db.execute("SELECT hash, height, idx, log_index, signer, code, result "
                                   "FROM txs ORDER BY hash")

    def get_state(self, key: bytes) -> bytes | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def iter_state(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self.db.execute("SELECT key, value FROM state ORDER BY key")

    def read_log_nodes(self, level: int, first: int, count: int) -> list[bytes]:
        """Return the stored log nodes (level, first) .. (level, first + count - 1)."""
        rows = self.db.execute(
            "SELECT idx, hash FROM log_nodes WHERE level = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx", (level, first, first + count)).fetchall()
        if len(rows) != count or (rows and (rows[0][0], rows[-1][0]) != (first,
                                                                       first + count - 1)):
            raise StorageError(f"transparency log nodes at level {level} from {first}, "
                               f"{count} of them, are not all stored")
        return [row[1] for row in rows]

    # ------------------------------------------------------------------ state tree retention

    def get_state_tree_floor(self) -> int:
        """Return the version below which unpinned state tree versions have been pruned."""
        value = self.get_meta(STATE_TREE_FLOOR_KEY)
        return 0 if value is None else int(value)  # type: ignore[call-overload]

    def get_pinned_state_versions(self) -> frozenset[int]:
        """Return the state tree versions the pruner keeps whatever their age."""
        value = self.get_meta(STATE_TREE_PINS_KEY)
        if value is None:
            return frozenset()
        if not isinstance(value, list) or not all(type(item) is int for item in value):
            raise StorageError("the pinned state tree versions record is malformed")
        return frozenset(value)

    def pin_state_version(self, version: int) -> None:
        """Keep state tree version `version` (a snapshot, a proof being served) from pruning."""
        with self.transaction():
            pins = self.get_pinned_state_versions()
            if version in pins:
                return
            tip = self.get_tip()
            if version < self.get_state_tree_floor() or version > (0 if tip is None
                                                                   else tip.height):
                raise VersionUnavailableError(
                    f"state tree version {version} cannot be pinned: it is pruned or not "
                    f"committed (floor {self.get_state_tree_floor()})")
            if len(pins) >= STATE_PINS_MAX:
                raise LocalError(f"at most {STATE_PINS_MAX} state tree versions can be pinned")
            self.set_meta(STATE_TREE_PINS_KEY, sorted(pins | {version}))

    def unpin_state_version(self, version: int) -> None:
        """Let the pruner remove version `version` again once it is below the floor."""
        with self.transaction():
            pins = self.get_pinned_state_versions()
            if version not in pins:
                return
            self.set_meta(STATE_TREE_PINS_KEY, sorted(pins - {version}))
            # Nodes kept only for this pin are stale since a version after it: rescan those.
            cursor = self.get_meta(STATE_TREE_CURSOR_KEY)
            if isinstance(cursor, int) and cursor > version:
                self.set_meta(STATE_TREE_CURSOR_KEY, version)
                self.prune_state_tree_rows(self.get_state_tree_floor())

    def prune_state_tree(self, before_version: int) -> int:
        """Prune state tree versions below `before_version` (unless pinned) in one transaction."""
        with self.transaction():
            return self.prune_state_tree_rows(before_version)

    def prune_state_tree_rows(self, before_version: int) -> int:
        """Delete nodes only unpinned versions below `before_version` need; return how many.

        Runs inside the caller's transaction. Idempotent: a cursor records how far the stale
        index has been scanned, so each call reads only entries stale since versions in
        (cursor, before_version], and a call that is lost is covered by the next one.
        """
        if before_version <= 0:
            return 0
        cursor = self.get_meta(STATE_TREE_CURSOR_KEY)
        cursor = cursor if isinstance(cursor, int) else 0
        if before_version <= cursor:
            return 0
        pins = sorted(self.get_pinned_state_versions())
        stale_table = self.state_tree.stale_table
        if not pins or pins[0] >= before_version:
            # Nothing pinned below the floor: every entry in range goes, in two statements.
            pruned = self.delete_stale_range(cursor, before_version)
            self.set_meta(STATE_TREE_CURSOR_KEY, before_version)
            self.set_meta(STATE_TREE_FLOOR_KEY, max(before_version, self.get_state_tree_floor()))
            return pruned
        pruned = 0
        after: tuple[int, bytes] = (cursor, b"\xff" * 64)
        while True:
            rows = self.db.execute(
                f"SELECT stale_since, node_key FROM {stale_table} WHERE stale_since <= ? AND "
                "(stale_since, node_key) > (?, ?) ORDER BY stale_since, node_key LIMIT ?",
                (before_version, *after, PRUNE_CHUNK_NODES)).fetchall()
            if not rows:
                break
            after = rows[-1]
            doomed = [entry for entry in (StaleNode(*row) for row in rows)
                      if not is_needed_by_versions(entry, pins)]
            self.state_tree.delete_stale(doomed)
            pruned += len(doomed)
        self.set_meta(STATE_TREE_CURSOR_KEY, before_version)
        self.set_meta(STATE_TREE_FLOOR_KEY, max(before_version, self.get_state_tree_floor()))
        return pruned

    def delete_stale_range(self, after_version: int, through_version: int) -> int:
        """Delete every state tree node stale since a version in (after, through]."""
        nodes, stale = self.state_tree.table, self.state_tree.stale_table
        try:
            self.db.execute(
                f"DELETE FROM {nodes} WHERE node_key IN (SELECT node_key FROM {stale} "
                "WHERE stale_since > ? AND stale_since <= ?)", (after_version, through_version))
            return self.db.execute(f"DELETE FROM {stale} WHERE stale_since > ? AND "
                                   "stale_since <= ?", (after_version, through_version)).rowcount
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot prune the state tree: {exc}") from exc

    def read_log_node(self, level: int, index: int) -> bytes:
        row = self.db.execute("SELECT hash FROM log_nodes WHERE level = ? AND idx = ?",
                              (level, index)).fetchone()
        if row is None:
            raise StorageError(f"transparency log node ({level}, {index}) is missing")
        return row[0]


def check_stored_block(height: int, block_id: bytes, data: bytes) -> Block:
    """Decode the block stored at `height` and check it is the one committed with `block_id`."""
    try:
        block = Block.decode(data)
    except DecodeError as exc:
        raise report_corrupt_record(f"block {height}", f"it does not decode ({exc})") from exc
    defect = find_block_defect(block, height, block_id)
    if defect is not None:
        raise report_corrupt_record(f"block {height}", defect)
    return block


def find_block_defect(block: Block, height: int, block_id: bytes) -> str | None:
    """Return how `block` differs from the block committed at `height` as `block_id`."""
    if block.height != height:
        return f"it says height {block.height}"
    if block.block_id() != block_id:
        return "its header does not hash to the block id stored when it was committed"
    return find_body_defect(block)


def list_tx_kinds(block: Block) -> list[tuple[str, str, int, int, bytes]]:
    """Return the `tx_kinds` rows of a block: service, method, height, index, hash."""
    rows = []
    for index, raw in enumerate(block.txs):
        try:
            tx = Transaction.decode(raw)
        except DecodeError as exc:
            raise report_corrupt_record(f"tx {index} of block {block.height}",
                                        str(exc)) from exc
        rows.append((tx.service, tx.method, block.height, index, sha256(raw)))
    return rows


def report_corrupt_record(what: str, defect: str) -> StorageError:
    """Log a damaged stored record and return the `StorageError` that refuses to serve it."""
    log.error("stored %s is corrupt: %s", what, defect)
    return StorageError(f"stored {what} is corrupt: {defect}; {RESYNC_ADVICE}")


def to_storage_error(path: str, exc: sqlite3.DatabaseError) -> StorageError:
    """Return the `StorageError` for an SQLite failure on the store at `path`."""
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF in DAMAGED_FILE_CODES:
        log.error("block store %s is damaged: %s", path, exc)
        return StorageError(f"block store {path} is damaged ({exc}); {RESYNC_ADVICE}")
    return StorageError(f"block store {path}: {exc}")


def reports_storage_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Wrap a cursor method so that SQLite's failures raise `StorageError` instead."""
    @functools.wraps(method)
    def wrapper(cursor: sqlite3.Cursor, *args: object) -> T:
        try:
            return method(cursor, *args)
        except sqlite3.ProgrammingError:
            raise  # misuse of the driver: a bug here, not damage on disk
        except sqlite3.DatabaseError as exc:
            raise to_storage_error(cursor.connection.store_path, exc) from exc  # type: ignore[attr-defined]
    return wrapper


class CheckedCursor(sqlite3.Cursor):
    """A cursor whose SQLite failures surface as `StorageError` naming the store."""

    execute = reports_storage_errors(sqlite3.Cursor.execute)
    executemany = reports_storage_errors(sqlite3.Cursor.executemany)
    executescript = reports_storage_errors(sqlite3.Cursor.executescript)
    fetchone = reports_storage_errors(sqlite3.Cursor.fetchone)
    fetchmany = reports_storage_errors(sqlite3.Cursor.fetchmany)
    fetchall = reports_storage_errors(sqlite3.Cursor.fetchall)
    __next__ = reports_storage_errors(sqlite3.Cursor.__next__)


class CheckedConnection(sqlite3.Connection):
    """The store's connection: every query runs on a `CheckedCursor`."""

    store_path = "block store"

    def cursor(self, factory: object = CheckedCursor) -> CheckedCursor:  # type: ignore[override]
        return super().cursor(factory)  # type: ignore[call-overload,no-any-return]

    def execute(self, sql: str, parameters: object = (), /) -> CheckedCursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: object, /) -> CheckedCursor:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> CheckedCursor:  # type: ignore[override]
        return self.cursor().executescript(sql_script)


def check_tree_batch(batch: TreeBatch, version: int) -> None:
    """Raise `LocalError` unless `batch` is a whole state tree version `version`."""
    # Every version writes its own root node, and only nodes of its own version.
    prefix = version.to_bytes(8, "big")
    if not batch.new_nodes or batch.new_nodes[0][0] != encode_node_key(version, ""):
        raise LocalError(f"state tree batch has no root node for version {version}")
    if any(node_key[:8] != prefix for node_key, _ in batch.new_nodes):
        raise LocalError(f"state tree batch holds nodes of a version other than {version}")
    if any(entry.stale_since_version != version for entry in batch.stale_nodes):
        raise LocalError(f"state tree batch retires nodes at a version other than {version}")


class _Transaction:
    """Context manager for one SQLite write transaction: commit on success, else roll back."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


def decode_stored(data: bytes) -> object:
    try:
        return decode(data)
    except DecodeError as exc:
        raise StorageError(f"stored metadata is corrupt: {exc}") from exc

