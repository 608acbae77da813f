"""Signature checks off the event loop: a node's pool of verifier threads.

Theory of operation: admitting a transaction verifies its Ed25519 signature once (the
engine remembers verified tx hashes), and libsodium releases the GIL while it verifies. A
batch of transactions — a client's `/v1/txs/batch` or a peer's gossiped batch — is first
decoded on the event loop (`Engine.collect_unverified`), its signatures checked on worker
threads, one chunk per core, while the loop serves consensus and the API, and the verdicts
recorded back on the loop (`Engine.record_verified`, the engine is single-threaded). The
ordinary admission that follows finds the signatures known and skips them; anything that
failed is refused there with its proper code.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from seoulchain.execution.engine import Engine, verify_chunk

# Fewer signatures than this are checked in one chunk: a thread hop costs more than that.
CHUNK_SIGNATURES_MIN = 64


def count_usable_cores() -> int:
    """Return the cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


class SignatureVerifier:
    """Verifies batches of transaction signatures on worker threads for one engine."""

    def __init__(self, engine: Engine, workers: int | None = None) -> None:
        self.engine = engine
        self.workers = workers or count_usable_cores()
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="verify")
        self.verified = 0

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def preverify(self, raws: list[bytes]) -> None:
        """Check the signatures of `raws` not yet known, off the loop; remember the good ones."""
        pending = self.engine.collect_unverified(raws)
        if not pending:
            return
        started = time.perf_counter()
        size = max(CHUNK_SIGNATURES_MIN, -(-len(pending) // self.workers))
        chunks = [pending[start:start + size] for start in range(0, len(pending), size)]
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(loop.run_in_executor(self.pool, verify_chunk, chunk)
                                         for chunk in chunks))
        for chunk, verdicts in zip(chunks, results, strict=True):
            self.engine.record_verified(chunk, verdicts)
        self.verified += len(pending)
        self.engine.record_duration("verify", started)
