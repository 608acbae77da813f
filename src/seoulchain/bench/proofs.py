"""Proof benchmark: bundle verification time and size; state proofs at growing state sizes.

Two parts. (1) Bundles: the vectors' in-memory chain (`vectors/proofs.py`: four validators,
a validator set replaced twice, so a bundle from genesis to its tip carries two light
blocks, a bisection pivot and the tip) gives a tx, a document and a state bundle; each is
verified from its canonical bytes `rounds` times — JSON parsing, every commit signature,
every Merkle proof — and the mean is reported with the bundle's size. (2) State proofs at
10k / 100k / 1M entries come from the state-tree benchmark (`bench/smt.py`, SQLite, one
version per batch): proof size, time to produce a proof and to verify it, which is the part
of a state or document bundle that grows with the state (as log n).

Run: `seoulchain bench proofs` (or `python -m seoulchain.bench.proofs`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from seoulchain.bench.smt import run_smt_bench
from seoulchain.errors import LocalError
from seoulchain.light.bundle import (
    build_document_bundle,
    build_state_bundle,
    build_tx_bundle,
    render_bundle,
    verify_bundle,
)
from seoulchain.vectors.proofs import build_story_chain

DEFAULT_ENTRIES = (10_000, 100_000, 1_000_000)
# Verifications per bundle kind: enough for a stable mean, a few seconds in all.
VERIFY_ROUNDS = 200
# Updates per state-tree version while measuring (the tree benchmark's batch).
SMT_BATCH = 1_000
# The target for one bundle verification.
VERIFY_TARGET_MS = 5.0

Progress = Callable[[str, int, int], None]


def _ignore_progress(stage: str, done: int, total: int) -> None:
    """Default progress callback: report nothing."""


def run_bundle_bench(rounds: int = VERIFY_ROUNDS) -> list[dict[str, Any]]:
    """Build the three bundle kinds on the vectors' chain; time building and verifying."""
    chain, hashes = build_story_chain()
    genesis = chain.genesis
    builders = {
        "tx": lambda: build_tx_bundle(chain, genesis, hashes["tx3"]),
        "document": lambda: build_document_bundle(chain, genesis, hashes["permit-1"]),
        "state": lambda: build_state_bundle(chain, genesis, "notary",
                                            b"doc/" + hashes["permit-2"]),
    }
    rows = []
    for kind, build in builders.items():
        tick = time.perf_counter()
        bundle = build()
        build_ms = 1000 * (time.perf_counter() - tick)
        data = render_bundle(bundle)
        tick = time.perf_counter()
        for _ in range(rounds):
            verify_bundle(data, genesis)
        verify_ms = 1000 * (time.perf_counter() - tick) / rounds
        rows.append({"kind": kind, "bundle_bytes": len(data),
                     "light_blocks": len(bundle["light_blocks"]),
                     "build_ms": round(build_ms, 2), "verify_ms": round(verify_ms, 3),
                     "within_target": verify_ms <= VERIFY_TARGET_MS})
    return rows


def run_state_proof_bench(entries: tuple[int, ...] = DEFAULT_ENTRIES,
                          progress: Progress = _ignore_progress) -> list[dict[str, Any]]:
    """Return state proof size and prove/verify time at each state size (bench/smt.py)."""
    rows = []
    for count in entries:
        if count < SMT_BATCH:
            raise LocalError(f"state sizes must be at least {SMT_BATCH} entries")
        figures = run_smt_bench(count, SMT_BATCH, progress=progress)
        rows.append({key: figures[key] for key in (
            "entries", "present_proof_us", "present_verify_us", "present_proof_bytes_mean",
            "present_proof_bytes_max", "present_proof_depth_mean", "absent_proof_us",
            "absent_verify_us", "absent_proof_bytes_mean")})
    return rows


def run_proofs_bench(entries: tuple[int, ...] = DEFAULT_ENTRIES,
                     progress: Progress = _ignore_progress) -> dict[str, Any]:
    return {"bundles": run_bundle_bench(), "state_proofs": run_state_proof_bench(entries,
                                                                                 progress)}


def main(argv: list[str]) -> int:
    entries = tuple(int(item) for item in argv[1:]) or DEFAULT_ENTRIES
    print(json.dumps(run_proofs_bench(entries), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
