"""`seoulchain state-sync`: start a new node from a peer's verified snapshot.

Theory of operation: list the snapshots the peers offer (`--from`, several allowed), take
the newest, prove its header from the trusted genesis with the light client (over the
peers' `/v1/light` endpoint), check the manifest against that header and restore it chunk
by chunk, each chunk verified before it is written and refetched from another peer if it
does not verify (`node/statesync.py`). The restore is one SQLite transaction. Afterwards
`seoulchain start` continues from the snapshot height + 1, block-syncing the rest from the
validators it is configured to reach.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from seoulchain.cli.common import (
    HomeOption,
    console,
    err_console,
    make_count_progress,
    reports_errors,
)
from seoulchain.client.http import NodeClient
from seoulchain.client.prover import HttpProofSource
from seoulchain.errors import LocalError, RemoteError, SeoulchainError
from seoulchain.execution.platform import check_installed
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.light.lightclient import LightClient
from seoulchain.light.snapshot import Manifest, verify_manifest
from seoulchain.node.statesync import (
    SnapshotFiles,
    StateSyncFailed,
    restore_snapshot,
)

# The snapshot directory of a node home's data directory (served by the API).
SNAPSHOTS_DIR_NAME = "snapshots"


@dataclass(frozen=True)
class SyncReport:
    """What a state sync restored, and from where."""

    height: int
    entries: int
    chunks: int
    source_urls: tuple[str, ...]


def sync_from_peers(store: BlockStore, genesis: Genesis, urls: Sequence[str],
                    files: SnapshotFiles | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    on_step: Callable[[str], None] | None = None,
                    connect: Callable[[str], NodeClient] = NodeClient) -> SyncReport:
    """Restore the newest verifiable snapshot the peers at `urls` offer, trusting `genesis`."""
    step = on_step or (lambda message: None)
    clients = [connect(url) for url in urls]
    try:
        offers: dict[int, list[NodeClient]] = {}
        for client in clients:
            try:
                for height in client.list_snapshots():
                    offers.setdefault(height, []).append(client)
            except SeoulchainError as exc:
                step(f"{client.base_url}: no snapshot list ({exc})")
        if not offers:
            raise StateSyncFailed(f"none of {', '.join(urls)} offers a snapshot")
        failures = []
        for height in sorted(offers, reverse=True):
            holders = offers[height]
            try:
                manifest = fetch_verified_manifest(genesis, height, holders, step)
            except RemoteError as exc:
                failures.append(str(exc))
                continue
            step(f"snapshot {height}: header proven from the genesis, manifest verified; "
                 f"{manifest.chunk_count} chunks to fetch")
            sources = [make_chunk_source(client, height) for client in holders]
            entries = restore_snapshot(store, genesis, manifest, sources, progress, files)
            # The node would refuse to start on this state: say so now, naming what to install.
            check_installed(genesis.services, load_services(), store, height + 1)
            return SyncReport(height, entries, manifest.chunk_count,
                              tuple(client.base_url for client in holders))
        raise StateSyncFailed("no offered snapshot verified: " + "; ".join(failures[:3]))
    finally:
        for client in clients:
            client.close()


def fetch_verified_manifest(genesis: Genesis, height: int, holders: Sequence[NodeClient],
                            step: Callable[[str], None]) -> Manifest:
    """Return the first holder's manifest of `height` whose header the light client proves."""
    failures = []
    for client in holders:
        try:
            manifest = Manifest.decode(client.get_snapshot_manifest(height))
            if manifest.height != height:
                raise StateSyncFailed(f"asked for snapshot {height}, got {manifest.height}")
            light = LightClient.from_genesis(genesis)
            trusted = light.verify_to(height, HttpProofSource(client).get_light_block)
            if trusted.block_id() != manifest.header.block_id():
                raise StateSyncFailed(f"snapshot {height}'s header is not the one the light "
                                      "client verified")
            verify_manifest(manifest, genesis.chain_id, trusted.validators)
            return manifest
        except (RemoteError, LocalError) as exc:
            step(f"{client.base_url}: snapshot {height} refused: {exc}")
            failures.append(str(exc))
    raise StateSyncFailed(f"snapshot {height}: " + "; ".join(failures[:3]))


def make_chunk_source(client: NodeClient, height: int) -> Callable[[int], bytes]:
    def fetch(index: int) -> bytes:
        return client.get_snapshot_chunk(height, index)
    return fetch


@reports_errors
def state_sync(home: HomeOption,
               sources: Annotated[list[str], typer.Option(
                   "--from", help="A peer's API URL (repeat for several peers).")],
               genesis_file: Annotated[Path | None, typer.Option(
                   "--genesis", help="The trusted genesis file (default: the home's); it must "
                                     "equal the home's genesis.json.")] = None,
               quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False) -> None:
    """Restore a new node's state from the newest verified snapshot its peers offer."""

    from seoulchain.cli.common import resolve_node_home

    node_home = resolve_node_home(home, default_index=None, takes_node_index=False)
    genesis = node_home.load_genesis()
    if genesis_file is not None and Genesis.load(genesis_file).hash() != genesis.hash():
        raise LocalError(f"{genesis_file} is not the genesis of {home}")
    node_home.data_dir.mkdir(exist_ok=True)
    home_lock = node_home.lock("seoulchain state-sync")  # no node may run on this store
    store = BlockStore(node_home.store_path)
    try:
        with make_count_progress("chunks", quiet=quiet) as bar:
            task = bar.add_task("restoring", total=None)

            def on_progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = sync_from_peers(store, genesis, sources,
                                     SnapshotFiles(node_home.data_dir / SNAPSHOTS_DIR_NAME),
                                     on_progress, lambda line: err_console.print(line))
    finally:
        store.close()
        home_lock.release()
    console.print(f"restored height {report.height}: {report.entries} state entries in "
                  f"{report.chunks} chunks, verified from the genesis "
                  f"({genesis.hash().hex()[:16]}…)", highlight=False)
    console.print(f"start the node with: seoulchain start --home {home} (it continues at "
                  f"height {report.height + 1})", highlight=False)
