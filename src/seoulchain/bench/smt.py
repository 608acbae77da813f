"""State tree benchmark: batch updates, proof generation and verification over SQLite.

Builds a tree of `entries` keys in a temporary SQLite database (WAL, synchronous=FULL, one
transaction per version, as the block store commits a block), then times `rounds` batches
of `batch` updates to existing keys (apply = the pure tree update; commit = writing its
nodes and stale index), and proofs for present and absent keys at the latest version.
Keys and values come from a seeded generator, so two runs do the same work.

Run: `python -m seoulchain.bench.smt ENTRIES BATCH` prints the figures as JSON.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seoulchain.errors import LocalError
from seoulchain.ledger.state_nodes import StateNodeDatabase
from seoulchain.proofs.smt import (
    SparseMerkleTree,
    TreeBatch,
    prune,
    verify_membership,
    verify_non_membership,
)

Progress = Callable[[str, int, int], None]
# Keys inserted per version while building the initial tree; a large block's worth.
LOAD_BATCH_KEYS = 10_000
# Timed update rounds: enough batches to total about this many updates ...
ROUND_UPDATES_TARGET = 50_000
# ... within these bounds, so small batches do not take minutes and large ones still repeat.
ROUNDS_MIN = 5
ROUNDS_MAX = 100
PROOF_SAMPLES = 1_000
# Beyond this the temporary database outgrows a laptop's spare disk space.
ENTRIES_MAX = 10_000_000
VALUE_BYTES = 32


def _ignore_progress(stage: str, done: int, total: int) -> None:
    """Report nothing."""


def _commit(database: StateNodeDatabase, batch: TreeBatch) -> None:
    """Write one version's nodes in one transaction, as `BlockStore.commit_block` would."""
    with database.transaction():
        database.nodes.write_batch(batch)


def _state_key(index: int) -> bytes:
    """Return the benchmark's index-th state key."""
    return b"bench/%d" % index


def run_smt_bench(entries: int, batch: int, *, seed: int = 0,
                  progress: Progress = _ignore_progress) -> dict[str, Any]:
    """Measure updates/s, proof generation and verification time and proof size."""
    if not 1 <= entries <= ENTRIES_MAX or not 1 <= batch <= entries:
        raise LocalError(f"need 1 <= batch <= entries <= {ENTRIES_MAX}")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="seoulchain-smt-") as directory:
        path = Path(directory) / "state.sqlite"
        database = StateNodeDatabase(path)
        tree = SparseMerkleTree(database.nodes)
        figures: dict[str, Any] = {"entries": entries, "batch": batch}
        version = _load(tree, database, entries, rng, progress, figures)
        version = _time_updates(tree, database, entries, batch, version, rng, progress,
                                figures)
        _time_proofs(tree, entries, version, rng, figures)
        database.checkpoint()
        figures["db_bytes_with_history"] = path.stat().st_size
        _time_pruning(database, version, figures)
        database.close()
    return figures


def _load(tree: SparseMerkleTree, database: StateNodeDatabase, entries: int,
          rng: random.Random, progress: Progress, figures: dict[str, Any]) -> int:
    """Insert `entries` keys, LOAD_BATCH_KEYS per version; return the last version."""
    started = time.perf_counter()
    version = -1
    for start in range(0, entries, LOAD_BATCH_KEYS):
        version += 1
        updates = {_state_key(index): rng.randbytes(VALUE_BYTES)
                   for index in range(start, min(start + LOAD_BATCH_KEYS, entries))}
        _commit(database, tree.apply_batch(version, updates))
        progress("loading", min(start + LOAD_BATCH_KEYS, entries), entries)
    load_s = time.perf_counter() - started
    figures["load_s"] = round(load_s, 2)
    figures["load_inserts_per_s"] = round(entries / load_s)
    return version


def _time_updates(tree: SparseMerkleTree, database: StateNodeDatabase, entries: int,
                  batch: int, version: int, rng: random.Random, progress: Progress,
                  figures: dict[str, Any]) -> int:
    """Apply and commit batches of updates to existing keys; return the last version."""
    rounds = max(ROUNDS_MIN, min(ROUNDS_MAX, ROUND_UPDATES_TARGET // batch))
    apply_s = commit_s = 0.0
    new_nodes = stale_nodes = 0
    for round_index in range(rounds):
        version += 1
        updates = {_state_key(index): rng.randbytes(VALUE_BYTES)
                   for index in rng.sample(range(entries), batch)}
        tick = time.perf_counter()
        result = tree.apply_batch(version, updates)
        tock = time.perf_counter()
        _commit(database, result)
        commit_s += time.perf_counter() - tock
        apply_s += tock - tick
        new_nodes += len(result.new_nodes)
        stale_nodes += len(result.stale_nodes)
        progress("updating", round_index + 1, rounds)
    updates_total = rounds * batch
    figures.update(
        rounds=rounds, updates_per_s=round(updates_total / (apply_s + commit_s)),
        apply_updates_per_s=round(updates_total / apply_s),
        apply_ms_per_batch=round(1000 * apply_s / rounds, 2),
        commit_ms_per_batch=round(1000 * commit_s / rounds, 2),
        new_nodes_per_update=round(new_nodes / updates_total, 2),
        stale_nodes_per_update=round(stale_nodes / updates_total, 2))
    return version


def _time_proofs(tree: SparseMerkleTree, entries: int, version: int, rng: random.Random,
                 figures: dict[str, Any]) -> None:
    """Time proofs of present and absent keys at `version`, and their verification."""
    root = tree.get_root(version)
    samples = min(PROOF_SAMPLES, entries)
    for kind, keys in (("present", [_state_key(index) for index in
                                    rng.sample(range(entries), samples)]),
                       ("absent", [b"absent/%d" % index for index in range(samples)])):
        proving_s = verifying_s = 0.0
        sizes, depths = [], []
        for key in keys:
            tick = time.perf_counter()
            value_hash, proof = tree.get_with_proof(version, key)
            data = proof.encode()
            tock = time.perf_counter()
            if value_hash is None:
                verify_non_membership(root, key, type(proof).decode(data))
            else:
                verify_membership(root, key, value_hash, type(proof).decode(data))
            verifying_s += time.perf_counter() - tock
            proving_s += tock - tick
            assert (value_hash is None) == (kind == "absent")
            sizes.append(len(data))
            depths.append(len(proof.siblings))
        figures[f"{kind}_proof_us"] = round(1e6 * proving_s / samples, 1)
        figures[f"{kind}_verify_us"] = round(1e6 * verifying_s / samples, 1)
        figures[f"{kind}_proof_bytes_mean"] = round(statistics.fmean(sizes), 1)
        figures[f"{kind}_proof_bytes_max"] = max(sizes)
        figures[f"{kind}_proof_depth_mean"] = round(statistics.fmean(depths), 2)


def _time_pruning(database: StateNodeDatabase, version: int, figures: dict[str, Any]) -> None:
    """Prune every version before the latest; report the time and what is left."""
    tick = time.perf_counter()
    with database.transaction():
        pruned = prune(database.nodes, version)
    figures["prune_s"] = round(time.perf_counter() - tick, 2)
    figures["pruned_nodes"] = pruned
    count, size = database.nodes.measure_nodes()
    figures["live_nodes"] = count
    figures["live_node_bytes_per_entry"] = round(size / figures["entries"], 1)


def main(argv: list[str]) -> int:
    """Run the benchmark for ENTRIES and BATCH from the command line; print JSON."""
    if len(argv) != 3:
        print("usage: python -m seoulchain.bench.smt ENTRIES BATCH", file=sys.stderr)
        return 2

    def report(stage: str, done: int, total: int) -> None:
        print(f"\r{stage} {done}/{total}", end="", file=sys.stderr, flush=True)

    figures = run_smt_bench(int(argv[1]), int(argv[2]), progress=report)
    print(file=sys.stderr)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
