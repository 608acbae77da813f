"""The state tree's nodes in SQLite tables of the block store's database.

Theory of operation: `SqliteNodeStore` is the `NodeStore` (and `PrunableNodeStore`) of
`proofs/smt.py` over two tables (docs/spec/state-tree.md): `{table}` maps node_key -> node
and `{table}_stale` indexes (stale_since_version, node_key) for pruning. It never begins or
ends a transaction: the block store commits a block's nodes with the block. The tree itself
stays pure; this module is where its nodes meet SQL, as every SQL statement lives in ledger/.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from seoulchain.errors import LocalError, StorageError
from seoulchain.proofs.smt import StaleNode, TreeBatch, Version

# A table name is spliced into SQL, so only plain identifiers are accepted.
TABLE_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,47}")


class SqliteNodeStore:
    """Nodes in SQLite tables, written inside whatever transaction the caller has open."""

    # `{table}` maps node_key -> node (node keys sort by version, then path); `{table}_stale`
    # indexes (stale_since_version, node_key) for pruning. This class never begins or ends
    # a transaction: the block store commits a block's nodes with the block.

    def __init__(self, connection: sqlite3.Connection, table: str = "state_nodes") -> None:
        if not isinstance(table, str) or not TABLE_PATTERN.fullmatch(table):
            raise LocalError(f"table name {table!r} is not a plain lower-case identifier")
        self.db = connection
        self.table = table
        self.stale_table = f"{table}_stale"
        try:
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "node_key BLOB PRIMARY KEY, node BLOB NOT NULL) WITHOUT ROWID")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.stale_table} ("
                "stale_since INTEGER NOT NULL, node_key BLOB NOT NULL, "
                "PRIMARY KEY (stale_since, node_key)) WITHOUT ROWID")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot create state tree table {table}: {exc}") from exc

    def get_node(self, node_key: bytes) -> bytes | None:
        """Return the encoded node stored under `node_key`, or None."""
        try:
            row = self.db.execute(f"SELECT node FROM {self.table} WHERE node_key = ?",
                                  (node_key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot read state tree node: {exc}") from exc
        if row is not None and not isinstance(row[0], bytes):
            raise StorageError(f"state tree node {node_key.hex()} is not a blob")
        return None if row is None else row[0]

    def write_batch(self, batch: TreeBatch) -> None:
        """Insert a batch's nodes and stale entries (no transaction of its own)."""
        try:
            self.db.executemany(f"INSERT INTO {self.table} VALUES (?, ?)", batch.new_nodes)
            self.db.executemany(f"INSERT INTO {self.stale_table} VALUES (?, ?)",
                                batch.stale_nodes)
        except sqlite3.IntegrityError as exc:
            raise StorageError(f"state tree batch overlaps stored nodes: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot write state tree batch: {exc}") from exc

    def list_stale(self, before_version: Version, limit: int) -> list[StaleNode]:
        """Return up to `limit` stale entries with stale_since_version <= `before_version`."""
        try:
            rows = self.db.execute(
                f"SELECT stale_since, node_key FROM {self.stale_table} WHERE stale_since <= ? "
                "ORDER BY stale_since, node_key LIMIT ?", (before_version, limit)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot read the stale node index: {exc}") from exc
        return [StaleNode(since, node_key) for since, node_key in rows]

    def delete_stale(self, entries: Sequence[StaleNode]) -> None:
        """Delete the given stale nodes and their stale entries (no transaction of its own)."""
        try:
            self.db.executemany(f"DELETE FROM {self.table} WHERE node_key = ?",
                                [(entry.node_key,) for entry in entries])
            self.db.executemany(
                f"DELETE FROM {self.stale_table} WHERE stale_since = ? AND node_key = ?",
                entries)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot delete stale state tree nodes: {exc}") from exc

    def iter_rows(self, table: str) -> Iterator[tuple[object, ...]]:
        """Yield the rows of `table` (this store's node or stale table) in key order."""
        if table not in (self.table, self.stale_table):
            raise LocalError(f"{table!r} is not a table of this state tree")
        # Both tables sort by version first: node_key starts with it, stale_since is it.
        yield from self.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")

    def measure_nodes(self) -> tuple[int, int]:
        """Return how many nodes are stored and their bytes (node keys and nodes)."""
        try:
            count, size = self.db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(LENGTH(node_key) + LENGTH(node)), 0) "
                f"FROM {self.table}").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot measure state tree table {self.table}: {exc}") from exc
        return count, size


class StateNodeDatabase:
    """A database file holding only a state tree, as the block store keeps it (benchmarks)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.nodes = SqliteNodeStore(self.db)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold one write transaction, committed on success and rolled back on error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def checkpoint(self) -> None:
        """Move the SQLite WAL into the database file, so its size is the data's."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.db.close()
