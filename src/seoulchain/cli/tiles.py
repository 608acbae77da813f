"""`seoulchain export-tiles`: write the transparency log as C2SP tlog-tiles static files.

The checkpoint is the tip block's (log_size, log_root); it is certified by that block's
commit, which is written beside it as `checkpoint.certificate.json` (docs/spec/logtree.md
§12). Re-running on a grown chain writes only new tiles and replaces partial ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from seoulchain.api.views import commit_view, header_view
from seoulchain.cli.common import (
    HomeOption,
    NodeIndexOption,
    console,
    make_count_progress,
    reports_errors,
    resolve_node_home,
)
from seoulchain.errors import LocalError, StorageError
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Block, Commit
from seoulchain.proofs.logtree import compute_range_root
from seoulchain.proofs.tiles import (
    CHECKPOINT_NAME,
    TILE_HEIGHT,
    Checkpoint,
    ExportReport,
    TileWriter,
)

CERTIFICATE_FORMAT = "seoulchain/checkpoint-certificate/v1"
# Below this many tiles to write an export takes well under a second: no progress bar.
PROGRESS_TILES_MIN = 64


class LogEntryReader:
    """Reads the log's leaves (committed transactions, in order) from the block store."""

    def __init__(self, store: BlockStore, tip_height: int):
        self.store = store
        self.tip_height = tip_height
        self._height = 0
        self._first = 0
        self._txs: Sequence[bytes] = ()
        self._log_sizes: dict[int, int] = {0: 0}

    def read(self, first: int, end: int) -> list[bytes]:
        """Return the leaf data of log entries [first, end)."""
        entries: list[bytes] = []
        position = first
        while position < end:
            if not self._first <= position < self._first + len(self._txs):
                self._load(self._find_height(position))
            chunk = self._txs[position - self._first:end - self._first]
            entries.extend(chunk)
            position += len(chunk)
        return entries

    def _find_height(self, index: int) -> int:
        """Return the height of the block holding log entry `index`."""
        if self._height and index >= self._first + len(self._txs):
            # The common case, reading forwards: the next non-empty block.
            height = self._height + 1
            while height <= self.tip_height and self._get_log_size(height) <= index:
                height += 1
            if height <= self.tip_height:
                return height
        low, high = 1, self.tip_height
        while low < high:
            middle = (low + high) // 2
            if self._get_log_size(middle) > index:
                high = middle
            else:
                low = middle + 1
        if self._get_log_size(low) <= index:
            raise StorageError(f"no committed block holds log entry {index}")
        return low

    def _get_log_size(self, height: int) -> int:
        """Return the log size after block `height`."""
        if height not in self._log_sizes:
            self._load(height)
        return self._log_sizes[height]

    def _load(self, height: int) -> None:
        """Read block `height` and make its transactions the current ones."""
        block = self.store.get_block(height)
        if block is None:
            raise StorageError(f"block {height} is missing from the store")
        self._height = height
        self._txs = block.txs
        self._first = block.header.log_size - len(block.txs)
        self._log_sizes[height] = block.header.log_size


def build_certificate(checkpoint: Checkpoint, block: Block, commit: Commit) -> str:
    """Return the JSON that certifies `checkpoint`: the block header and its commit."""
    header = block.header
    certificate: dict[str, Any] = {
        "format": CERTIFICATE_FORMAT,
        "checkpoint": checkpoint.to_note_text(),
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root_hash": checkpoint.root.hex(),
        "chain_id": header.chain_id,
        "height": header.height,
        "block_id": block.block_id().hex(),
        "header": header_view(header),
        "header_cbor": header.encode().hex(),
        "commit": commit_view(commit),
        "commit_cbor": commit.encode().hex(),
    }
    return json.dumps(certificate, indent=2) + "\n"


def load_tip_checkpoint(store: BlockStore, origin: str) -> tuple[Checkpoint, str]:
    """Return the tip's checkpoint and its certificate, after checking them against the log."""
    tip = store.get_tip()
    if tip is None:
        raise LocalError("the chain has no committed block yet: there is no checkpoint to "
                         "export")
    block, commit = store.get_block(tip.height), store.get_commit(tip.height)
    if block is None or commit is None:
        raise StorageError(f"the tip block {tip.height} or its commit is missing")
    header = block.header
    if header.log_size != tip.log_size or commit.block_id != block.block_id():
        raise StorageError(f"the tip record, block {tip.height} and its commit disagree")
    if compute_range_root(0, header.log_size, store.read_log_node) != header.log_root:
        raise StorageError(f"the stored log does not give block {tip.height}'s log_root; "
                           "run seoulchain audit")
    checkpoint = Checkpoint(origin, header.log_size, header.log_root)
    return checkpoint, build_certificate(checkpoint, block, commit)


def export_log_tiles(store: BlockStore, out: Path, origin: str,
                     progress: Any = None) -> ExportReport:
    """Export the store's log as of its tip into `out`; return what was written."""
    checkpoint, certificate = load_tip_checkpoint(store, origin)
    entries = LogEntryReader(store, store.get_tip().height)  # type: ignore[union-attr]
    def read_hashes(tile_level: int, first: int, count: int) -> list[bytes]:
        return store.read_log_nodes(TILE_HEIGHT * tile_level, first, count)

    writer = TileWriter(out, read_hashes, entries.read)
    return writer.export(checkpoint, certificate, progress)


@reports_errors
def export_tiles(home: HomeOption,
                 out: Annotated[Path, typer.Argument(help="Directory to write the tiles to "
                                                     "(created if missing).")],
                 origin: Annotated[str | None, typer.Option(
                     help="Checkpoint origin line (default: seoulchain/<chain id>); "
                          "C2SP suggests the URL prefix the tiles are served at.")] = None,
                 quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
                 node_index: NodeIndexOption = None,
                 ) -> None:
    """Write the transparency log as C2SP tlog-tiles files with a certified checkpoint.

    Given a devnet directory, exports node-0's log (or --node-index's).
    """
    node_home = resolve_node_home(home, node_index)
    if not node_home.store_path.is_file():
        raise LocalError(f"no chain data at {node_home.store_path}: start the node first")
    genesis = node_home.load_genesis()
    store = BlockStore(node_home.store_path)
    started = time.perf_counter()
    try:
        with make_count_progress("tiles", quiet=quiet, transient=True) as bar:
            task = bar.add_task("exporting tiles", total=None, visible=False)

            def on_progress(done: int, total: int) -> None:
                if total >= PROGRESS_TILES_MIN:
                    bar.update(task, completed=done, total=total, visible=True)

            report = export_log_tiles(store, out, origin or f"seoulchain/{genesis.chain_id}",
                                      on_progress)
    finally:
        store.close()
    seconds = time.perf_counter() - started
    checkpoint = report.checkpoint
    console.print(f"exported the log at size {checkpoint.size} to {out} in {seconds:.1f} s: "
                  f"{report.tiles_written} tiles and {report.bundles_written} entry bundles "
                  f"written ({report.bytes_written:,} bytes), {report.files_kept} files "
                  f"already there, {report.partials_removed} superseded partial files "
                  f"removed", highlight=False)
    console.print(f"checkpoint {out / CHECKPOINT_NAME}: root "
                  f"{checkpoint.root.hex()}", highlight=False)
