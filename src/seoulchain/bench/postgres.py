"""PostgreSQL baseline: the same signed records, checked and kept in an append-only table.

Theory of operation: what a city would otherwise deploy is one database server and clients
that check each record's signature before inserting it. The workload is the ledger
benchmark's — pre-signed notary anchors (`presign_anchors`), signed before the clock starts.
`clients` worker processes each take every `clients`-th transaction and, for each, run
seoulchain's own client-side checks (`Transaction.decode`, then `is_valid_signature` over
its sign bytes), INSERT it into `audit_log` and commit every `batch_rows` rows. The server
keeps PostgreSQL's defaults (`fsync` and `synchronous_commit` on), so an acknowledged row
survives a crash as a committed block does. Per-insert latency is check + insert + commit as
the client sees it (for batches, each row is charged its batch's time).

`audit_log` is append-only: triggers raise on UPDATE, DELETE and TRUNCATE, and
(signer, nonce) and the tx hash are unique (replay protection). After the run the benchmark
checks the row count and that an UPDATE is refused.

The server is `dsn` if given; otherwise a throwaway cluster (initdb + pg_ctl in a temporary
directory, listening on 127.0.0.1 only, removed afterwards). PostgreSQL refuses to run as
root, so as root the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pwd
import queue
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seoulchain.bench.ledger import BENCH_SIGNERS, Progress, presign_anchors
from seoulchain.bench.loadgen import compute_percentile, read_tx_file, write_tx_file
from seoulchain.crypto import SigningKey
from seoulchain.crypto.keys import is_valid_signature
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction

POSTGRES_CHAIN_ID = "seoul-bench-pg-1"
# Where Debian's packages put the server binaries when they are not on PATH.
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_SYSTEM_USER = "postgres"
POSTGRES_DB_USER = "bench"
# Cluster start and stop on a loaded machine (initdb alone takes a few seconds).
PG_CTL_TIMEOUT_S = 120
# Workers must connect within this long; the run itself is bounded by the work.
WORKER_READY_TIMEOUT_S = 60.0
CLIENTS_MAX = 64
# How often the parent looks for results or a client that died.
RESULT_POLL_S = 1.0
BATCH_ROWS_MAX = 10_000

SCHEMA_SQL = """
CREATE TABLE audit_log (
    seq         bigserial PRIMARY KEY,
    tx_hash     bytea NOT NULL UNIQUE,
    signer      bytea NOT NULL,
    nonce       bigint NOT NULL,
    service     text NOT NULL,
    method      text NOT NULL,
    raw         bytea NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (signer, nonce)
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""
INSERT_SQL = ("INSERT INTO audit_log (tx_hash, signer, nonce, service, method, raw) "
              "VALUES (%s, %s, %s, %s, %s, %s)")


def import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise LocalError("the PostgreSQL baseline needs psycopg: "
                         "pip install 'seoulchain[postgres]'") from exc
    return psycopg


# ------------------------------------------------------------------------------ the server


def find_postgres_bin() -> Path:
    """Return the directory holding initdb and pg_ctl, or raise saying how to install them."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")),
                        key=lambda path: int(path.parent.name)
                        if path.parent.name.isdigit() else 0)
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise LocalError("PostgreSQL server binaries (initdb, pg_ctl) not found: run "
                     "scripts/install-postgres, or give --dsn of a running server")


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Yield the DSN of a fresh PostgreSQL cluster on 127.0.0.1, removed afterwards."""
    bin_dir = find_postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="seoulchain-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError as exc:
            raise LocalError(f"running as root needs the {POSTGRES_SYSTEM_USER!r} system "
                             f"user (scripts/install-postgres creates it)") from exc
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", POSTGRES_SYSTEM_USER, "--"]
    data = root / "data"
    port = find_free_port()
    options = (f"-c listen_addresses=127.0.0.1 -p {port} "
               f"-c unix_socket_directories='{root}'")
    started = False
    try:
        run_pg([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", POSTGRES_DB_USER,
                "-A", "trust", "-E", "UTF8", "--no-locale"])
        run_pg([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                "-w", "-t", str(PG_CTL_TIMEOUT_S), "-o", options, "start"])
        started = True
        yield f"host=127.0.0.1 port={port} user={POSTGRES_DB_USER} dbname=postgres"
    finally:
        if started:
            with contextlib.suppress(LocalError):
                run_pg([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "-t", str(PG_CTL_TIMEOUT_S), "stop"])
        shutil.rmtree(root, ignore_errors=True)


def run_pg(command: list[str]) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=PG_CTL_TIMEOUT_S + 30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalError(f"{Path(command[-1]).name}: {exc}") from exc
    if result.returncode != 0:
        raise LocalError(f"{' '.join(command[-3:])} failed ({result.returncode}):\n"
                         f"{(result.stdout + result.stderr)[-2000:]}")


# ------------------------------------------------------------------------------ the clients


@dataclass(frozen=True)
class WorkerJob:
    dsn: str
    tx_file: str
    worker: int
    workers: int
    batch_rows: int


def check_and_row(raw: bytes) -> tuple[bytes, bytes, int, str, str, bytes]:
    """Run the client-side checks on a signed tx and return its audit_log row."""
    tx = Transaction.decode(raw)
    if not is_valid_signature(tx.signer, tx.sign_bytes(), tx.signature):
        raise LocalError(f"a benchmark transaction of nonce {tx.nonce} has a bad signature")
    return tx.hash(), tx.signer, tx.nonce, tx.service, tx.method, raw


def run_worker(job: WorkerJob, ready: Any, go: Any, results: Any) -> None:
    """One client: connect, wait for the start, check and insert its share; report times."""
    psycopg = import_psycopg()
    txs = read_tx_file(Path(job.tx_file))[job.worker::job.workers]
    latencies_s: list[float] = []
    with psycopg.connect(job.dsn, autocommit=False) as connection:
        cursor = connection.cursor()
        ready.release()
        go.wait()
        started = time.perf_counter()
        for start in range(0, len(txs), job.batch_rows):
            tick = time.perf_counter()
            for raw in txs[start:start + job.batch_rows]:
                cursor.execute(INSERT_SQL, check_and_row(raw))
            connection.commit()
            elapsed = time.perf_counter() - tick
            latencies_s.extend([elapsed] * len(txs[start:start + job.batch_rows]))
        ended = time.perf_counter()
    results.put((job.worker, started, ended, latencies_s))


# ------------------------------------------------------------------------------ the run


@dataclass(frozen=True)
class PostgresBenchResult:
    txs: int
    clients: int
    batch_rows: int
    seconds: float
    tx_per_s: float
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_p99: float | None
    latency_ms_max: float | None
    check_us_per_tx: float
    rows: int
    append_only: bool
    table_bytes: int
    tx_bytes: int
    server_version: str
    throwaway_cluster: bool
    load_average: list[float]

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def run_postgres_bench(*, txs: int = 20_000, clients: int = 4, batch_rows: int = 1,
                       dsn: str | None = None,
                       progress: Progress | None = None) -> PostgresBenchResult:
    """Sign `txs` anchors, then check and insert them from `clients` processes; report."""
    psycopg = import_psycopg()
    if not 1 <= clients <= CLIENTS_MAX or not 1 <= batch_rows <= BATCH_ROWS_MAX or txs < 1:
        raise LocalError(f"--clients must be 1..{CLIENTS_MAX}, --batch 1..{BATCH_ROWS_MAX}, "
                         f"--txs at least 1")
    report = progress or (lambda phase, done, total: None)
    keys = [SigningKey.generate() for _ in range(BENCH_SIGNERS)]
    raw_txs = presign_anchors(keys, POSTGRES_CHAIN_ID, txs, report)
    check_us = measure_check_us(raw_txs)
    with contextlib.ExitStack() as stack:
        target = dsn if dsn is not None else stack.enter_context(throwaway_cluster())
        try:
            with psycopg.connect(target, autocommit=True) as connection:
                connection.execute("DROP TABLE IF EXISTS audit_log")
                connection.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
                connection.execute(SCHEMA_SQL)
                server_version = str(connection.execute("SHOW server_version").fetchone()[0])
        except psycopg.Error as exc:
            raise LocalError(f"cannot prepare the audit table at {target!r}: {exc}") from exc
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sc-pg-")))
        write_tx_file(workdir / "load.txs", raw_txs)
        report("inserting", 0, txs)
        seconds, latencies_s = run_workers(target, workdir / "load.txs", clients, batch_rows)
        report("inserting", txs, txs)
        rows, append_only, table_bytes = inspect_table(psycopg, target)
    latencies_ms = sorted(value * 1000 for value in latencies_s)
    return PostgresBenchResult(
        txs=txs, clients=clients, batch_rows=batch_rows, seconds=round(seconds, 3),
        tx_per_s=round(txs / seconds, 1),
        latency_ms_p50=round_ms(compute_percentile(latencies_ms, 0.50)),
        latency_ms_p95=round_ms(compute_percentile(latencies_ms, 0.95)),
        latency_ms_p99=round_ms(compute_percentile(latencies_ms, 0.99)),
        latency_ms_max=round_ms(latencies_ms[-1] if latencies_ms else None),
        check_us_per_tx=round(check_us, 1), rows=rows, append_only=append_only,
        table_bytes=table_bytes, tx_bytes=len(raw_txs[0]), server_version=server_version,
        throwaway_cluster=dsn is None,
        load_average=[round(value, 2) for value in os.getloadavg()])


def round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def measure_check_us(raw_txs: list[bytes]) -> float:
    """Time the client-side checks alone on up to 2,000 txs, in µs per tx."""
    sample = raw_txs[:2000]
    started = time.perf_counter()
    for raw in sample:
        check_and_row(raw)
    return (time.perf_counter() - started) / len(sample) * 1e6


def run_workers(dsn: str, tx_file: Path, clients: int, batch_rows: int
                ) -> tuple[float, list[float]]:
    """Start the client processes, release them together, return wall time and latencies."""
    context = multiprocessing.get_context("spawn")
    ready = context.Semaphore(0)
    go = context.Event()
    results = context.Queue()
    processes = [context.Process(target=run_worker, args=(
        WorkerJob(dsn, str(tx_file), worker, clients, batch_rows), ready, go, results))
        for worker in range(clients)]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            if not ready.acquire(timeout=WORKER_READY_TIMEOUT_S):
                raise LocalError("a PostgreSQL client did not connect in time")
        go.set()
        outcomes = []
        while len(outcomes) < clients:
            try:
                outcomes.append(results.get(timeout=RESULT_POLL_S))
            except queue.Empty:
                codes = [process.exitcode for process in processes]
                if any(code not in (None, 0) for code in codes):
                    raise LocalError(f"PostgreSQL clients failed: exit codes {codes}") from None
    finally:
        for process in processes:
            process.join(timeout=WORKER_READY_TIMEOUT_S)
            if process.is_alive():
                process.kill()
    failed = [process.exitcode for process in processes if process.exitcode != 0]
    if failed:
        raise LocalError(f"PostgreSQL clients failed with exit codes {failed}")
    started = min(outcome[1] for outcome in outcomes)
    ended = max(outcome[2] for outcome in outcomes)
    latencies = [value for outcome in outcomes for value in outcome[3]]
    return ended - started, latencies


def inspect_table(psycopg: Any, dsn: str) -> tuple[int, bool, int]:
    """Return the row count, whether an UPDATE is refused, and the table's size on disk."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        rows = int(connection.execute("SELECT count(*) FROM audit_log").fetchone()[0])
        size = int(connection.execute(
            "SELECT pg_total_relation_size('audit_log')").fetchone()[0])
        try:
            connection.execute("UPDATE audit_log SET nonce = nonce WHERE seq = 1")
            refused = False
        except psycopg.Error:
            refused = True
    return rows, refused, size
