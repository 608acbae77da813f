"""Open-loop load generator: pre-signed transactions at an offered rate, commits timed.

Theory of operation: run as its own process (`python -m seoulchain.bench.loadgen`), so its
CPU is not taken from the nodes' event loops and a test can start and stop it like a client
fleet. It reads a file of signed transactions (`write_tx_file`) and:

- submits them open-loop: batch k is due at k * batch_txs / rate seconds, whether or not
  earlier requests have been answered (up to `IN_FLIGHT_PER_NODE_MAX` requests per node;
  beyond that the schedule slips, and the slip is reported as `submit_lag_ms_p99`);
- sends all of one signer's transactions to one node (signers are spread over the nodes),
  so each mempool sees each signer's nonces in order; a node that does not answer has its
  batch sent to the next node instead;
- follows the chain block by block on one node (switching when it stops answering or falls
  behind) and stamps each transaction with the moment the client first saw it committed;
- after the last batch, or on SIGTERM/SIGINT, waits until every acknowledged transaction is
  seen committed or nothing new commits for `drain_idle_s`, then writes a JSON report: the
  configuration, a summary and one column per field for every transaction.

A transaction is acknowledged when a node admitted it (OK) or already had it (DUPLICATE).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from seoulchain.codec import decode, encode
from seoulchain.crypto import sha256
from seoulchain.errors import DecodeError, LocalError
from seoulchain.execution.results import ResultCode
from seoulchain.ledger.types import TX_BYTES_MAX, Block
from seoulchain.node.node import BATCH_TXS_MAX

TX_FILE_MAGIC = b"SCTXS001"
RECORD_HEADER_BYTES = 4
# A load file of more transactions than this is a mistake (it would not fit in memory).
TX_FILE_TXS_MAX = 10_000_000
# Requests in flight to one node before the schedule slips: enough to hide one slow
# request, few enough that a struggling node is not buried.
IN_FLIGHT_PER_NODE_MAX = 4
# A node that takes longer than this to answer is treated as down for that request.
REQUEST_TIMEOUT_S = 10.0
# How often the follower asks for the next block when it is not there yet; it bounds the
# latency resolution.
POLL_INTERVAL_S = 0.02
# The follower re-checks which node is furthest ahead after this long without a new block.
FOLLOW_RECHECK_S = 2.0
# Defaults for the wait after the last submission.
DRAIN_IDLE_S = 15.0
DRAIN_MAX_S = 120.0
# Code recorded for a batch no node answered, and for one never sent (stopped first).
CODE_UNAVAILABLE = -1
CODE_NOT_SENT = -2
ACKNOWLEDGED_CODES = frozenset({int(ResultCode.OK), int(ResultCode.DUPLICATE)})


# ------------------------------------------------------------------------------ tx files


def write_tx_file(path: Path, txs: Sequence[bytes]) -> None:
    """Write signed transactions as a magic header then (4-byte length, bytes) records."""
    if len(txs) > TX_FILE_TXS_MAX:
        raise LocalError(f"a load file holds at most {TX_FILE_TXS_MAX} txs")
    with path.open("wb") as handle:
        handle.write(TX_FILE_MAGIC)
        for raw in txs:
            assert 0 < len(raw) <= TX_BYTES_MAX
            handle.write(len(raw).to_bytes(RECORD_HEADER_BYTES, "big"))
            handle.write(raw)


def read_tx_file(path: Path) -> list[bytes]:
    """Read a file `write_tx_file` wrote, raising `LocalError` if it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from exc
    if not data.startswith(TX_FILE_MAGIC):
        raise LocalError(f"{path} is not a seoulchain load file")
    txs: list[bytes] = []
    offset = len(TX_FILE_MAGIC)
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + RECORD_HEADER_BYTES], "big")
        offset += RECORD_HEADER_BYTES
        if not 0 < length <= TX_BYTES_MAX or offset + length > len(data):
            raise LocalError(f"{path} is truncated or corrupt at byte {offset}")
        if len(txs) >= TX_FILE_TXS_MAX:
            raise LocalError(f"{path} holds more than {TX_FILE_TXS_MAX} txs")
        txs.append(data[offset:offset + length])
        offset += length
    return txs


def get_signer(raw: bytes) -> bytes:
    """Return a signed transaction's signer without verifying it."""
    try:
        fields = decode(raw, TX_BYTES_MAX)
    except DecodeError as exc:
        raise LocalError(f"load file holds a transaction that does not decode: {exc}") from exc
    if not isinstance(fields, list) or len(fields) < 3 or not isinstance(fields[2], bytes):
        raise LocalError("load file holds something that is not a transaction")
    return fields[2]


# ------------------------------------------------------------------------------ load


@dataclass(frozen=True)
class LoadConfig:
    """What to offer and to whom."""

    urls: list[str]
    rate_tx_per_s: float
    batch_txs: int = 50
    drain_idle_s: float = DRAIN_IDLE_S
    drain_max_s: float = DRAIN_MAX_S
    request_timeout_s: float = REQUEST_TIMEOUT_S
    poll_interval_s: float = POLL_INTERVAL_S
    # The first block to read: 1 on a fresh chain, the tip + 1 on a chain already in use.
    from_height: int = 1

    def check(self) -> None:
        if not self.urls:
            raise LocalError("give at least one node URL")
        if not self.rate_tx_per_s > 0:
            raise LocalError("the offered rate must be positive")
        if not 1 <= self.batch_txs <= BATCH_TXS_MAX:
            raise LocalError(f"a batch holds 1..{BATCH_TXS_MAX} txs")
        if self.from_height < 1:
            raise LocalError("the first block to follow is at height 1 or above")


@dataclass(slots=True)
class TxRecord:
    """One transaction's journey; times are seconds since the load started."""

    hash: bytes
    raw: bytes
    lane: int
    scheduled_s: float
    node: int = -1
    submit_s: float | None = None
    code: int = CODE_NOT_SENT
    committed_s: float | None = None
    height: int | None = None
    seen: int = 0

    @property
    def is_acknowledged(self) -> bool:
        return self.code in ACKNOWLEDGED_CODES


@dataclass
class FollowState:
    """What the block follower has seen."""

    next_height: int = 1
    node: int = 0
    first_height: int = field(init=False)
    blocks: int = 0
    txs_seen: int = 0
    last_commit_s: float | None = None
    foreign_txs: int = 0
    switches: int = 0
    heights_by_time: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.first_height = self.next_height


def assign_lanes(txs: Sequence[bytes], nodes: int) -> list[int]:
    """Return each transaction's node: signers in order of first appearance, round-robin."""
    lanes_by_signer: dict[bytes, int] = {}
    lanes = []
    for raw in txs:
        signer = get_signer(raw)
        if signer not in lanes_by_signer:
            lanes_by_signer[signer] = len(lanes_by_signer) % nodes
        lanes.append(lanes_by_signer[signer])
    return lanes


class LoadGenerator:
    """Submits, follows and drains on one event loop."""

    def __init__(self, config: LoadConfig, txs: Sequence[bytes]):
        config.check()
        self.config = config
        lanes = assign_lanes(txs, len(config.urls))
        self.records = [TxRecord(sha256(raw), raw, lane, index / config.rate_tx_per_s)
                        for index, (raw, lane) in enumerate(zip(txs, lanes, strict=True))]
        self.by_hash = {record.hash: record for record in self.records}
        self.follow = FollowState(next_height=config.from_height)
        self.stop_submitting = asyncio.Event()
        self.stop_draining = asyncio.Event()
        self.started = 0.0
        self.submit_ended_s = 0.0
        self.clients: list[httpx.AsyncClient] = []
        self.slots: list[asyncio.Semaphore] = []
        self.new_commit = asyncio.Event()

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self) -> dict[str, Any]:
        """Submit, follow and drain; return the report."""
        timeout = httpx.Timeout(self.config.request_timeout_s)
        limits = httpx.Limits(max_connections=IN_FLIGHT_PER_NODE_MAX + 2)
        self.clients = [httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits)
                        for url in self.config.urls]
        self.slots = [asyncio.Semaphore(IN_FLIGHT_PER_NODE_MAX) for _ in self.config.urls]
        self.started = time.monotonic()
        started_unix_ms = int(time.time() * 1000)
        follower = asyncio.create_task(self.follow_blocks())
        try:
            await self.submit_all()
            self.submit_ended_s = self.now()
            await self.drain()
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            for client in self.clients:
                await client.aclose()
        return self.build_report(started_unix_ms)

    # -------------------------------------------------------------------- submitting

    async def submit_all(self) -> None:
        """Send every batch at its due time until done or told to stop."""
        batch_txs = self.config.batch_txs
        pending: set[asyncio.Task[None]] = set()
        for start in range(0, len(self.records), batch_txs):
            batch = self.records[start:start + batch_txs]
            delay = batch[0].scheduled_s - self.now()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_submitting.wait(), delay)
            if self.stop_submitting.is_set():
                break
            for lane in range(len(self.config.urls)):
                group = [record for record in batch if record.lane == lane]
                if not group:
                    continue
                await self.slots[lane].acquire()
                task = asyncio.create_task(self.submit_batch(lane, group))
                pending.add(task)
                task.add_done_callback(pending.discard)
        await asyncio.gather(*pending, return_exceptions=True)

    async def submit_batch(self, lane: int, group: list[TxRecord]) -> None:
        """POST one batch to its lane's node, or to the next node that answers."""
        try:
            nodes = len(self.config.urls)
            body = encode([record.raw for record in group])
            for attempt in range(nodes):
                node = (lane + attempt) % nodes
                submit_s = self.now()
                results = await self.post_batch(node, body)
                if results is None:
                    continue
                for record, result in zip(group, results, strict=True):
                    record.node, record.submit_s, record.code = node, submit_s, result["code"]
                return
            for record in group:
                record.code, record.submit_s = CODE_UNAVAILABLE, self.now()
        finally:
            self.slots[lane].release()

    async def post_batch(self, node: int, body: bytes) -> list[dict[str, Any]] | None:
        """Return the node's per-tx admission results, or None if it did not answer."""
        try:
            response = await self.clients[node].post(
                "/v1/txs/batch", content=body, headers={"content-type": "application/cbor"})
        except httpx.HTTPError:
            return None
        if response.status_code != 202:
            return None
        return response.json()["results"]

    # -------------------------------------------------------------------- following

    async def follow_blocks(self) -> None:
        """Read blocks in height order, stamping the txs in them; never raise."""
        state = self.follow
        waiting_since = self.now()
        while True:
            block = await self.get_block(state.node, state.next_height)
            if block is not None:
                self.on_block(block)
                waiting_since = self.now()
                continue
            if self.now() - waiting_since > FOLLOW_RECHECK_S:
                await self.choose_node()
                waiting_since = self.now()
            await asyncio.sleep(self.config.poll_interval_s)

    async def get_block(self, node: int, height: int) -> Block | None:
        """Return block `height` from `node`, or None if it has none yet or did not answer."""
        try:
            response = await self.clients[node].get(f"/v1/blocks/{height}",
                                                    params={"format": "cbor"},
                                                    timeout=self.config.request_timeout_s / 4)
        except httpx.HTTPError:
            self.follow.node = (node + 1) % len(self.clients)
            self.follow.switches += 1
            return None
        if response.status_code != 200:
            return None
        # The node's stored encoding: decoding it checks it, as any client should.
        try:
            return Block.decode(response.content)
        except DecodeError:
            self.follow.node = (node + 1) % len(self.clients)
            self.follow.switches += 1
            return None

    async def choose_node(self) -> None:
        """Follow the node that is furthest ahead."""
        best, best_height = self.follow.node, -1
        for node, client in enumerate(self.clients):
            try:
                response = await client.get("/v1/status", timeout=1.0)
                height = int(response.json()["height"])
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            if height > best_height:
                best, best_height = node, height
        if best != self.follow.node:
            self.follow.node = best
            self.follow.switches += 1

    def on_block(self, block: Block) -> None:
        state = self.follow
        seen_s = self.now()
        height = block.height
        assert height == state.next_height, "the follower read a block out of order"
        for raw in block.txs:
            record = self.by_hash.get(sha256(raw))
            if record is None:
                state.foreign_txs += 1
                continue
            record.seen += 1
            if record.committed_s is None:
                record.committed_s, record.height = seen_s, height
                state.txs_seen += 1
                state.last_commit_s = seen_s
                self.new_commit.set()
        state.next_height += 1
        state.blocks += 1
        state.heights_by_time.append((round(seen_s, 3), height))

    # -------------------------------------------------------------------- draining

    async def drain(self) -> None:
        """Wait until every acknowledged tx is seen, none of ours commits for a while, or a cap."""
        deadline = self.now() + self.config.drain_max_s
        while not self.stop_draining.is_set():
            missing = sum(1 for record in self.records
                          if record.is_acknowledged and record.committed_s is None)
            remaining = deadline - self.now()
            if missing == 0 or remaining <= 0:
                return
            self.new_commit.clear()
            waiter = asyncio.create_task(self.new_commit.wait())
            stopper = asyncio.create_task(self.stop_draining.wait())
            done, _ = await asyncio.wait({waiter, stopper},
                                         timeout=min(self.config.drain_idle_s, remaining),
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if not done:
                return  # idle: nothing committed for drain_idle_s

    # -------------------------------------------------------------------- report

    def build_report(self, started_unix_ms: int) -> dict[str, Any]:
        records = self.records
        return {
            "config": asdict(self.config),
            "started_unix_ms": started_unix_ms,
            "submit_ended_s": round(self.submit_ended_s, 3),
            "summary": compute_summary(records, self.follow),
            "heights_by_time": self.follow.heights_by_time,
            "txs": {
                "hash": [record.hash.hex() for record in records],
                "node": [record.node for record in records],
                "scheduled_s": [round(record.scheduled_s, 4) for record in records],
                "submit_s": [rounded(record.submit_s) for record in records],
                "code": [record.code for record in records],
                "committed_s": [rounded(record.committed_s) for record in records],
                "height": [record.height for record in records],
                "seen": [record.seen for record in records],
            },
        }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def compute_percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of already sorted values (None if empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(len(sorted_values) * fraction))
    return sorted_values[rank - 1]


def compute_summary(records: Sequence[TxRecord], follow: FollowState) -> dict[str, Any]:
    """Return the run's figures: counts, committed tx/s, latency and schedule slip."""
    sent = [record for record in records if record.submit_s is not None]
    acked = [record for record in sent if record.is_acknowledged]
    committed = [record for record in acked if record.committed_s is not None]
    latencies = sorted((record.committed_s - record.submit_s) * 1000  # type: ignore[operator]
                       for record in committed)
    lags = sorted((record.submit_s - record.scheduled_s) * 1000  # type: ignore[operator]
                  for record in sent)
    codes: dict[str, int] = {}
    for record in sent:
        if not record.is_acknowledged:
            name = (ResultCode(record.code).name if record.code >= 0 else "UNAVAILABLE")
            codes[name] = codes.get(name, 0) + 1
    first_submit = min((record.submit_s for record in sent), default=0.0)  # type: ignore[type-var]
    window_s = (follow.last_commit_s or 0.0) - first_submit
    return {
        "txs_offered": len(records),
        "txs_sent": len(sent),
        "txs_acknowledged": len(acked),
        "txs_committed": len(committed),
        "txs_acknowledged_not_committed": len(acked) - len(committed),
        "txs_committed_more_than_once": sum(1 for record in records if record.seen > 1),
        "txs_committed_unacknowledged": sum(1 for record in records
                                            if record.seen and not record.is_acknowledged),
        "refused_by_code": codes,
        "committed_tx_per_s": round(len(committed) / window_s, 1) if window_s > 0 else 0.0,
        "window_s": round(window_s, 3),
        "latency_ms_p50": round_ms(compute_percentile(latencies, 0.50)),
        "latency_ms_p90": round_ms(compute_percentile(latencies, 0.90)),
        "latency_ms_p95": round_ms(compute_percentile(latencies, 0.95)),
        "latency_ms_p99": round_ms(compute_percentile(latencies, 0.99)),
        "latency_ms_max": round_ms(latencies[-1] if latencies else None),
        "submit_lag_ms_p99": round_ms(compute_percentile(lags, 0.99)),
        "blocks_seen": follow.blocks,
        "first_height": follow.first_height,
        "last_height": follow.next_height - 1,
        "foreign_txs_seen": follow.foreign_txs,
        "follower_switches": follow.switches,
    }


def round_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ------------------------------------------------------------------------------ process


async def run_load(config: LoadConfig, txs: Sequence[bytes]) -> dict[str, Any]:
    """Run the load; the first SIGTERM/SIGINT ends submission, the second the drain."""
    generator = LoadGenerator(config, txs)
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if generator.stop_submitting.is_set():
            generator.stop_draining.set()
        generator.stop_submitting.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    return await generator.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seoulchain.bench.loadgen",
        description="Submit pre-signed txs open-loop and time their commits. SIGTERM ends "
                    "submission early (then drains); a second SIGTERM ends the drain.")
    parser.add_argument("--txs", type=Path, required=True, help="load file (write_tx_file)")
    parser.add_argument("--node", action="append", required=True, dest="urls",
                        help="node API URL; repeat for every node")
    parser.add_argument("--rate", type=float, required=True, help="offered tx/s")
    parser.add_argument("--batch", type=int, default=50, help="txs per batch request")
    parser.add_argument("--drain-idle-s", type=float, default=DRAIN_IDLE_S)
    parser.add_argument("--drain-max-s", type=float, default=DRAIN_MAX_S)
    parser.add_argument("--from-height", type=int, default=1,
                        help="first block to read (the tip + 1 of a chain already in use)")
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    args = parser.parse_args(argv)
    try:
        config = LoadConfig(args.urls, args.rate, args.batch, args.drain_idle_s,
                            args.drain_max_s, from_height=args.from_height)
        config.check()
        txs = read_tx_file(args.txs)
    except LocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = asyncio.run(run_load(config, txs))
    partial = args.out.with_name(args.out.name + ".partial")
    partial.write_text(json.dumps(report) + "\n")
    partial.replace(args.out)
    summary = report["summary"]
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
