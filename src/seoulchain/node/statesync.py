"""State sync: take, keep and serve snapshots; fetch, verify and restore one into a new store.

Theory of operation. The formats and every check live in `light/snapshot.py`; this module
is the I/O around them.

Serving. `take_snapshot` reads a store's tip inside one SQLite read transaction (WAL lets
it run on its own connection beside the committing node), builds the snapshot and checks
that it folds to the header's roots. `SnapshotFiles` keeps snapshots as files, one
directory per height (`manifest.cbor`, `chunk-NNNNN.cbor`), written under a temporary name
and renamed, so a crash never leaves half a snapshot that looks whole. `SnapshotService`
takes one every `interval_blocks` blocks or on request, pins its state tree version in the
block store so pruning keeps it, and keeps the newest `keep` snapshots.

Restoring. `restore_snapshot` takes a manifest already verified against a trusted
validator set, and for each chunk asks the sources in turn (a different one first for each
chunk) until one returns bytes that verify; a source that sends a bad chunk is simply asked
no further for that chunk. All writes — state, tree nodes, log frontier, commit, base and
tip — happen in one SQLite transaction on a blank store: a crash at any point leaves either
nothing or the complete restore. `sync_from_peers` is the whole client: list the peers'
snapshots, choose the newest, verify its header from the genesis through the light client,
restore (it lives in `cli/statesync.py`, above the HTTP client). Each chunk is tried at most
`CHUNK_ATTEMPTS_MAX` times, so a sync either progresses or fails naming the chunk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from seoulchain.errors import LocalError, RemoteError, SeoulchainError, StorageError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.light.snapshot import (
    BadChunk,
    ChunkRows,
    Manifest,
    Snapshot,
    SnapshotRestorer,
    build_snapshot,
)
from seoulchain.proofs.logtree import LogFrontier

log = logging.getLogger("seoulchain.statesync")

# A node takes a snapshot every this many blocks: at one block a second, one every ~17
# minutes; about as often as a joining node would want one, rarely enough to cost nothing.
SNAPSHOT_INTERVAL_BLOCKS_DEFAULT = 1000
# Snapshots kept on disk (each pins a state tree version): a few, so a syncing peer's
# chosen snapshot survives the next one being taken.
SNAPSHOTS_KEPT_DEFAULT = 3
# A chunk is tried at most this many times across all sources before the sync gives up.
CHUNK_ATTEMPTS_MAX = 8
MANIFEST_FILE = "manifest.cbor"

ChunkSource = Callable[[int], bytes]
ProgressCallback = Callable[[int, int], None]


class StateSyncFailed(RemoteError):
    """No source supplied a verifiable snapshot or chunk; the message says which step."""


# --------------------------------------------------------------------------- serving


def take_snapshot(store: BlockStore) -> Snapshot:
    """Build a snapshot of the store's tip from one consistent read."""
    with store.read_snapshot():
        tip = store.get_tip()
        if tip is None:
            raise LocalError("no block has been committed yet: nothing to snapshot")
        block = store.get_block(tip.height)
        commit = store.get_commit(tip.height)
        if block is not None:
            header = block.header
        else:  # a state-synced store still at its base
            base = store.get_base_header()
            if base is None or base[0].height != tip.height:
                raise StorageError(f"the block of tip height {tip.height} is missing")
            header = base[0]
        if commit is None:
            raise StorageError(f"the commit of tip height {tip.height} is missing")
        frontier = LogFrontier.from_reader(tip.log_size, store.read_log_node)
        return build_snapshot(header, commit, frontier.roots, store.iter_state())


class SnapshotFiles:
    """Snapshots on disk: DIR/<height>/manifest.cbor and chunk-NNNNN.cbor."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path_of(self, height: int) -> Path:
        return self.directory / f"{height:012d}"

    def list_heights(self) -> list[int]:
        """Return the heights of complete snapshots, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(int(entry.name) for entry in self.directory.iterdir()
                      if entry.name.isdigit() and (entry / MANIFEST_FILE).is_file())

    def save(self, snapshot: Snapshot) -> None:
        """Write a snapshot under a temporary name, then rename it into place."""
        height = snapshot.manifest.height
        final = self.path_of(height)
        if final.exists():
            return
        staging = self.directory / f".{height:012d}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for index, data in enumerate(snapshot.chunks):
            (staging / f"chunk-{index:05d}.cbor").write_bytes(data)
        (staging / MANIFEST_FILE).write_bytes(snapshot.manifest.encode())
        staging.rename(final)

    def read_manifest(self, height: int) -> bytes:
        return self.read(height, MANIFEST_FILE)

    def read_chunk(self, height: int, index: int) -> bytes:
        if type(index) is not int or index < 0:
            raise LocalError(f"no chunk {index}")
        return self.read(height, f"chunk-{index:05d}.cbor")

    def read(self, height: int, name: str) -> bytes:
        try:
            return (self.path_of(height) / name).read_bytes()
        except OSError as exc:
            raise LocalError(f"snapshot {height} has no {name}") from exc

    def remove(self, height: int) -> None:
        shutil.rmtree(self.path_of(height), ignore_errors=True)


@dataclass
class SnapshotService:
    """A node's snapshots: taken every `interval_blocks` or on request, the newest kept."""

    files: SnapshotFiles
    store: BlockStore
    interval_blocks: int = SNAPSHOT_INTERVAL_BLOCKS_DEFAULT
    keep: int = SNAPSHOTS_KEPT_DEFAULT
    busy: bool = False

    def on_commit(self, height: int) -> None:
        """Start a snapshot in the background when `height` is on the interval."""
        if self.interval_blocks <= 0 or height % self.interval_blocks or self.busy:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven synchronously (tests, tools): snapshots only on request
        task = loop.create_task(self.take())
        task.add_done_callback(lambda done: done.exception() and log.warning(
            "snapshot failed: %s", done.exception()))

    async def take(self) -> int:
        """Take a snapshot of the current tip on a worker thread; return its height."""
        if self.busy:
            raise LocalError("a snapshot is already being taken")
        self.busy = True
        try:
            height = await asyncio.to_thread(self.take_to_files)
            self.retire_old()
            return height
        finally:
            self.busy = False

    def take_to_files(self) -> int:
        """Snapshot the tip through a separate connection, write it and pin its version."""
        reader = BlockStore(self.store.path)
        try:
            snapshot = take_snapshot(reader)
            self.files.save(snapshot)
            height = snapshot.manifest.height
            try:
                reader.pin_state_version(height)
            except SeoulchainError as exc:  # pruned already: chunks are whole files anyway
                log.warning("snapshot %d: state tree version not pinned: %s", height, exc)
        finally:
            reader.close()
        log.info("snapshot taken at height %d", height)
        return height

    def retire_old(self) -> None:
        """Delete all but the newest `keep` snapshots and release their pins."""
        heights = self.files.list_heights()
        base = self.store.get_base_height()
        for height in heights[:max(0, len(heights) - self.keep)]:
            if height == base:
                continue  # a state-synced store's base: the audit replays from it
            self.files.remove(height)
            self.store.unpin_state_version(height)


# --------------------------------------------------------------------------- restoring


def restore_snapshot(store: BlockStore, genesis: Genesis, manifest: Manifest,
                     sources: Sequence[ChunkSource], progress: ProgressCallback | None = None,
                     files: SnapshotFiles | None = None) -> int:
    """Fetch, verify and write every chunk of a verified manifest into a blank store.

    One transaction: a crash leaves the store blank or fully restored. With `files`, the
    verified snapshot is also kept on disk (the node serves it and the audit replays from it).
    Returns the number of state entries restored.
    """
    if not sources:
        raise LocalError("state sync needs at least one source")
    if not store.is_blank():
        raise LocalError(f"the store {store.path} is not empty; state sync restores only "
                         "into a new node's store")
    restorer = SnapshotRestorer(manifest)
    chunks: list[bytes] = []
    with store.transaction():
        store.hook("restore_begin")
        for index in range(manifest.chunk_count):
            data, rows = fetch_verified_chunk(restorer, index, sources)
            store.write_restored_rows(rows.state, rows.nodes)
            chunks.append(data)
            store.hook("restore_chunk")
            if progress is not None:
                progress(index + 1, manifest.chunk_count)
        store.write_restored_rows([], restorer.finish())
        store.hook("restore_tree")
        store.write_restored_base(genesis.hash(), manifest.header, manifest.commit,
                                  restorer.compute_log_nodes())
        store.hook("restore_base")
    if files is not None:
        files.save(Snapshot(manifest, tuple(chunks)))
    return restorer.entries


def fetch_verified_chunk(restorer: SnapshotRestorer, index: int,
                         sources: Sequence[ChunkSource]) -> tuple[bytes, ChunkRows]:
    """Return (bytes, rows) of chunk `index` from the first source whose copy verifies."""
    failures: list[str] = []
    for attempt in range(min(CHUNK_ATTEMPTS_MAX, max(len(sources), 1) * 2)):
        source = sources[(index + attempt) % len(sources)]
        try:
            data = source(index)
            return data, restorer.add_chunk(index, data)
        except BadChunk as exc:
            failures.append(str(exc))
        except RemoteError as exc:
            failures.append(f"chunk {index}: {exc}")
        except LocalError as exc:  # a source that cannot be reached or has no such chunk
            failures.append(f"chunk {index}: {exc}")
    raise StateSyncFailed(f"no source gave a valid copy of snapshot chunk {index} of height "
                          f"{restorer.manifest.height}: {'; '.join(failures[-3:])}")
