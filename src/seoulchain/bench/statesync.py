"""State sync benchmark: restore a node from a snapshot versus replaying its chain.

Measures, on a node home built by `seoulchain bench ledger` (or any node's home, read
only): taking a snapshot of the tip, proving its header from the genesis with the light
client, restoring it chunk by chunk (each verified) into a fresh durable store and opening
an engine on it; then the full replay a new node would otherwise do — the audit, which
re-executes and re-verifies every block from genesis. The network is left out (chunks come
from memory): the figure is the CPU and disk cost on each side; the snapshot's size says
what a network would have to carry.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from seoulchain.client.audit import audit_chain
from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.errors import LocalError
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.light.lightclient import LightClient
from seoulchain.light.snapshot import Manifest, verify_manifest
from seoulchain.node.home import Home
from seoulchain.node.proofs import StoreProofSource
from seoulchain.node.statesync import restore_snapshot, take_snapshot


@dataclass(frozen=True)
class StateSyncBenchResult:
    height: int
    txs: int
    entries: int
    chunks: int
    snapshot_bytes: int
    snapshot_s: float
    light_client_s: float
    restore_s: float
    engine_open_s: float
    replay_s: float | None

    @property
    def state_sync_s(self) -> float:
        """What a joining node spends: header proof, verified restore, engine start."""
        return self.light_client_s + self.restore_s + self.engine_open_s

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "state_sync_s": self.state_sync_s}


def run_statesync_bench(home_dir: Path, replay: bool = True) -> StateSyncBenchResult:
    """Time snapshot, verify and restore of the home's tip; optionally the full replay."""
    home = Home(home_dir)
    home.require_initialised()
    genesis = home.load_genesis()
    store = BlockStore(home.store_path)
    try:
        if store.get_tip() is None:
            raise LocalError(f"{home_dir} has no committed block to snapshot")
        started = time.perf_counter()
        snapshot = take_snapshot(store)
        snapshot_s = time.perf_counter() - started
        manifest_bytes = snapshot.manifest.encode()
        started = time.perf_counter()
        manifest = Manifest.decode(manifest_bytes)
        light = LightClient.from_genesis(genesis)
        trusted = light.verify_to(manifest.height,
                                  StoreProofSource(genesis, store).get_light_block)
        verify_manifest(manifest, genesis.chain_id, trusted.validators)
        light_client_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory(prefix="seoulchain-statesync-") as scratch:
            target = BlockStore(Path(scratch) / "chain.sqlite")
            try:
                started = time.perf_counter()
                entries = restore_snapshot(target, genesis, manifest,
                                           [snapshot.chunks.__getitem__])
                restore_s = time.perf_counter() - started
                started = time.perf_counter()
                engine = Engine(genesis, target, load_services(), verify_evidence_bytes)
                engine_open_s = time.perf_counter() - started
                if engine.tip != store.get_tip():
                    raise LocalError("the restored engine's tip is not the source's")
            finally:
                target.close()
        txs = store.count_txs()
        replay_s = None
        if replay:
            report = audit_chain(genesis, store, load_services())
            if not report.ok:
                raise LocalError(f"the replay failed at {report.bad_height}: {report.failure}")
            replay_s = report.elapsed_s
    finally:
        store.close()
    return StateSyncBenchResult(
        height=manifest.height, txs=txs, entries=entries, chunks=manifest.chunk_count,
        snapshot_bytes=len(manifest_bytes) + sum(len(chunk) for chunk in snapshot.chunks),
        snapshot_s=snapshot_s, light_client_s=light_client_s, restore_s=restore_s,
        engine_open_s=engine_open_s, replay_s=replay_s)
