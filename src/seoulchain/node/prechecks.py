"""Expensive service checks off the event loop: a node's pool of precheck worker processes.

Theory of operation: a transaction method may declare a `precheck` (execution/service.py),
its expensive pure check — a ballot's proofs, ~45 ms of gmpy2 arithmetic that holds the GIL,
so worker threads would still stall the event loop and worker processes do not. Before the
engine sees transactions (a client's submission, a peer's gossip, a peer's proposed or
synced block) the node decodes them, keeps those whose signature verifies, asks each one's
method for its precheck against committed state, runs the checks in worker processes while
the loop serves consensus and the API, and records each verdict back in this process
(`Precheck.record`, on the loop), so the engine's admission and execution find it done.

The engine still decides everything: a precheck only fills the memo of the same pure
function the method calls, so a check that raises, outruns its bound, or finds the pool
broken changes no result — the method runs the check itself, on the loop, as without a
pool. Those failures are `PrecheckPoolError`s, which the node logs and moves past.

Bounds: `workers` processes, started on first use (spawned afresh, never forked from a
process with threads); at most PRECHECKS_QUEUED_MAX checks queued or running, later callers
wait for a slot; a batch gets CHECK_TIME_S_MAX per round of checks across the workers (and
WORKER_START_S_MAX more while the workers are new). Each
worker asks Linux to kill it when the node dies (node/parent.py) and quits if the node died
before it could ask; `close` stops them with the node.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pydantic import ValidationError

from seoulchain.crypto.hashing import sha256
from seoulchain.errors import DecodeError, LocalError
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import Precheck, ServiceError
from seoulchain.execution.state import ServiceState
from seoulchain.ledger.types import TX_BYTES_MAX, Transaction
from seoulchain.node.parent import set_parent_death_signal
from seoulchain.node.verify import count_usable_cores

log = logging.getLogger("seoulchain.node")

# Checks queued or running at once: the vote service remembers 1024 ballot verdicts
# (services/vote.py, VERIFIED_BALLOTS_CACHED), so a check further ahead would be forgotten.
PRECHECKS_QUEUED_MAX = 1024
# The longest one check may take: a 30-choice ballot is ~0.3 s on a loaded core; 10x that.
CHECK_TIME_S_MAX = 3.0
# The longest a new worker may take to start: spawning Python and importing the services
# (pydantic, gmpy2) takes 1-2 s, and 5 s on a loaded 2-core host; twice that.
WORKER_START_S_MAX = 10.0
# Worker processes a config may ask for: more than any validator host's cores is a typo.
PRECHECK_WORKERS_MAX = 256


class PrecheckPoolError(LocalError):
    """The node's precheck workers failed: a worker died, or checks outran their bound."""


def start_worker(parent_pid: int) -> None:
    """Tie a worker process to the node: killed when the node dies; Ctrl-C is the node's."""
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the node died before the request above took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def get_precheck(engine: Engine, raw: bytes) -> Precheck | None:
    """Return the precheck of a well-signed tx for this chain, against committed state."""
    cached = engine.decoded.get(raw)
    if cached is not None:
        tx, tx_hash = cached
    else:
        if len(raw) > TX_BYTES_MAX:
            return None
        try:
            tx = Transaction.decode(raw)
        except DecodeError:
            return None
        tx_hash = sha256(raw)
    service = engine.services.get(tx.service)
    spec = None if service is None else service.methods.get(tx.method)
    if (service is None or spec is None or spec.precheck is None
            or tx.chain_id != engine.chain_id or not engine.is_verified(tx, tx_hash)):
        return None
    try:
        args = spec.args.model_validate(tx.args)
        return spec.precheck(ServiceState(engine.state, service.name), args)
    except (ValidationError, ServiceError, LocalError, DecodeError):
        return None  # the engine refuses it with its proper code


def collect_prechecks(engine: Engine, raws: list[bytes]) -> list[Precheck]:
    """Return the distinct prechecks `raws` call for (their signatures checked first)."""
    prechecks: dict[tuple[object, ...], Precheck] = {}
    for raw in raws:
        precheck = get_precheck(engine, raw)
        if precheck is not None:
            prechecks.setdefault((precheck.run, *precheck.args), precheck)
    return list(prechecks.values())


class PrecheckPool:
    """Runs the prechecks of one engine's transactions in a bounded pool of processes."""

    def __init__(self, engine: Engine, workers: int = 0) -> None:
        if type(workers) is not int or not 0 <= workers <= PRECHECK_WORKERS_MAX:
            raise LocalError(f"precheck workers must be 0 (one per core) to "
                             f"{PRECHECK_WORKERS_MAX}, got {workers!r}")
        self.engine = engine
        self.workers = workers or count_usable_cores()
        self.executor: ProcessPoolExecutor | None = None
        self.started = False  # a batch has completed on the current workers
        self.slots = asyncio.Semaphore(PRECHECKS_QUEUED_MAX)
        self.closed = False
        self.recorded = 0  # verdicts recorded in this process
        self.failed = 0  # checks left to the engine: raised in a worker, or the pool failed
        # Told how long each batch of checks took, to its end or its time limit (metrics).
        self.on_batch: Callable[[float], None] | None = None

    def get_executor(self) -> ProcessPoolExecutor:
        """Return the worker pool, started on first use."""
        if self.closed:
            raise PrecheckPoolError("the precheck pool is closed (the node is stopping)")
        if self.executor is None:
            self.executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker, initargs=(os.getpid(),))
        return self.executor

    def get_worker_pids(self) -> list[int]:
        """Return the process ids of the running workers (none before first use)."""
        if self.executor is None:
            return []
        return [process.pid for process in list(self.executor._processes.values())
                if process.pid is not None]

    def close(self) -> None:
        """Stop the workers, waiting for them to exit (a running check is at most seconds)."""
        self.closed = True
        self.discard_executor(wait=True)

    def discard_executor(self, *, wait: bool) -> None:
        executor, self.executor = self.executor, None
        self.started = False
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)

    async def check_ahead(self, raws: list[bytes]) -> int:
        """Run the prechecks `raws` call for and record their verdicts; return how many."""
        return await self.run(collect_prechecks(self.engine, raws))

    async def run(self, prechecks: list[Precheck]) -> int:
        """Run `prechecks` in the workers and record each verdict; return how many were
        recorded (PrecheckPoolError if the pool fails or the batch outruns its bound)."""
        if not prechecks:
            return 0
        rounds = -(-len(prechecks) // self.workers)
        time_s_max = CHECK_TIME_S_MAX * rounds + (0 if self.started else WORKER_START_S_MAX)
        tasks = [asyncio.ensure_future(self.run_one(precheck)) for precheck in prechecks]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(time_s_max):
                outcomes = await asyncio.gather(*tasks)
            self.started = self.executor is not None
        except TimeoutError as exc:
            self.failed += sum(not task.done() for task in tasks)
            raise PrecheckPoolError(f"{len(prechecks)} prechecks took longer than "
                                    f"{time_s_max:g} s; the engine checks the rest") from exc
        finally:
            for task in tasks:
                task.cancel()
            if self.on_batch is not None:
                self.on_batch(time.perf_counter() - started)
        return sum(outcomes)

    async def run_one(self, precheck: Precheck) -> bool:
        """Run one precheck in a worker and record its verdict; False if it raised there."""
        async with self.slots:
            executor = self.get_executor()
            try:
                verdict = await asyncio.wrap_future(executor.submit(precheck.run,
                                                                    *precheck.args))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # our caller's cancellation (or the batch's time limit)
                self.failed += 1  # `close` cancelled the queued check
                raise PrecheckPoolError("the precheck pool stopped (the node is stopping)") \
                    from None
            except BrokenProcessPool as exc:
                self.failed += 1
                if self.executor is executor:
                    self.discard_executor(wait=False)
                raise PrecheckPoolError(f"a precheck worker process died ({exc}); the pool "
                                        f"restarts on next use") from exc
            except Exception:  # the check raised in the worker: the engine runs it itself
                self.failed += 1
                log.debug("precheck %s raised in a worker", precheck.run.__name__,
                          exc_info=True)
                return False
        precheck.record(verdict, *precheck.args)
        self.recorded += 1
        return True
