"""`seoulchain bench api`: what one node's HTTP API serves, measured from loopback.

Theory of operation: a fresh one-validator network (bench/network.py, a real `seoulchain
start` process with its default config) gets a few committed notary anchors, then:

1. reads/s: `clients` concurrent connections (one asyncio task each, keep-alive) ask
   `GET /v1/txs/{hash}` for `duration_s`, then `GET /v1/blocks/{height}`, cycling over the
   committed ones; every answer must be 200. Loopback is exempt from the rate limit by
   default (`[api] rate_limit_exempt_hosts`), so this is the API's own rate;
2. submit-to-commit latency through the API: `latency_txs` anchors, each
   `POST /v1/txs?wait_s=` from `LATENCY_SUBMITTERS` concurrent clients, timed from the send
   to the answer that says committed (includes the commit pause: `[chain] commit_pause_ms`);
3. events delivered/s: `subscribers` concurrent `GET /v1/events?types=tx` streams, open
   before `event_txs` anchors are submitted in one batch; delivered/s is every subscriber's
   tx events together over the time from the first event received to the last.

The client runs in this process on the same machine: figures are the node and the client
together, on loopback.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from seoulchain.bench.ledger import build_anchor
from seoulchain.bench.loadgen import compute_percentile
from seoulchain.bench.network import NODE_START_TIMEOUT_S, LocalNetwork
from seoulchain.codec import encode
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError

# Anchors committed before the reads, read round-robin (a handful of blocks).
SEED_TXS = 20
# Concurrent submitters of the latency run: a few agencies' back offices at once.
LATENCY_SUBMITTERS = 4
# The server-side wait of each timed submission (the API's bound is 60 s).
SUBMIT_WAIT_S = 30.0
# Longest the event run waits for every subscriber to receive every tx event.
EVENTS_TIMEOUT_S = 120.0
# Signing keys: the mempool admits nonces at most 256 ahead of a signer's next one
# (execution/engine.py NONCE_WINDOW), so a batch of 1000 needs several signers.
ISSUERS = 8
# Bounds of the command's options: a laptop's loopback, not a load test of the OS.
READ_CLIENTS_MAX = 256
SUBSCRIBERS_MAX = 1000
Progress = Callable[[str], None]


@dataclass
class ApiBenchResult:
    """The figures of one `bench api` run."""

    clients: int
    duration_s: float
    tx_reads_per_s: float
    block_reads_per_s: float
    read_errors: int
    latency_txs: int
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    commit_pause_ms: int
    subscribers: int
    event_txs: int
    events_delivered: int
    events_per_s: float
    events_missing: int
    cores: int
    load_average: list[float]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_api_bench(clients: int = 8, duration_s: float = 5.0, latency_txs: int = 40,
                  subscribers: int = 100, event_txs: int = 500,
                  progress: Progress = lambda text: None) -> ApiBenchResult:
    """Start a one-validator network in a temporary directory and measure its API."""
    if not 1 <= clients <= READ_CLIENTS_MAX or not 1 <= subscribers <= SUBSCRIBERS_MAX:
        raise LocalError(f"clients is 1..{READ_CLIENTS_MAX}, subscribers 1..{SUBSCRIBERS_MAX}")
    with tempfile.TemporaryDirectory(prefix="seoulchain-bench-api-") as scratch, \
            LocalNetwork.create(Path(scratch) / "net", 1, issuers=ISSUERS) as network:
        network.start_all()
        network.wait_until(lambda: network.get_height(0) is not None, NODE_START_TIMEOUT_S,
                           "the node's API")
        url = network.urls[0]
        commit_pause_ms = network.load_config(0).chain.commit_pause_ms
        progress("seeding committed transactions")
        signer = Signer(network.issuers, network.chain_id)
        hashes, heights = seed(network, signer)
        progress(f"reads: {clients} connections, {duration_s:g} s per route")
        tx_rate, tx_errors = asyncio.run(measure_reads(
            url, [f"/v1/txs/{tx_hash}" for tx_hash in hashes], clients, duration_s))
        block_rate, block_errors = asyncio.run(measure_reads(
            url, [f"/v1/blocks/{height}" for height in heights], clients, duration_s))
        progress(f"submit-to-commit latency: {latency_txs} txs")
        latencies = asyncio.run(measure_latency(url, signer, latency_txs))
        progress(f"events: {subscribers} subscribers, {event_txs} txs")
        delivered, events_rate = asyncio.run(measure_events(url, signer, subscribers,
                                                            event_txs))
    return ApiBenchResult(
        clients, duration_s, round(tx_rate, 1), round(block_rate, 1),
        tx_errors + block_errors, latency_txs,
        compute_percentile(latencies, 0.50), compute_percentile(latencies, 0.99),
        commit_pause_ms, subscribers, event_txs, delivered, round(events_rate, 1),
        subscribers * event_txs - delivered, len(os.sched_getaffinity(0)),
        [round(value, 2) for value in os.getloadavg()])


class Signer:
    """Signs anchors round-robin over its keys, each with consecutive nonces."""

    def __init__(self, keys: list[SigningKey], chain_id: str):
        self.keys, self.chain_id = keys, chain_id
        self.nonces = [0] * len(keys)
        self.signed = 0

    def sign(self) -> bytes:
        index = self.signed % len(self.keys)
        self.signed += 1
        self.nonces[index] += 1
        return build_anchor(self.keys[index], self.chain_id, self.nonces[index],
                            None).encode()


def seed(network: LocalNetwork, signer: Signer) -> tuple[list[str], list[int]]:
    """Commit `SEED_TXS` anchors; return their hashes and the heights that hold them."""
    client = network.clients[0]
    results = client.submit_batch([signer.sign() for _ in range(SEED_TXS)])
    hashes = [result["hash"] for result in results]
    if any(result["code"] != 0 for result in results):
        raise LocalError(f"the node refused a seed transaction: {results}")
    statuses = [client.wait_for_commit(bytes.fromhex(tx_hash), SUBMIT_WAIT_S)
                for tx_hash in hashes]
    return hashes, sorted({status["height"] for status in statuses})


async def measure_reads(url: str, paths: list[str], clients: int,
                        duration_s: float) -> tuple[float, int]:
    """Return the answers/s `clients` connections get for `paths`, and the non-200 count."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    counts = [0] * clients
    errors = [0] * clients
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as http:
        deadline = time.monotonic() + duration_s

        async def read(worker: int) -> None:
            index = worker
            while time.monotonic() < deadline:
                response = await http.get(paths[index % len(paths)])
                counts[worker] += 1
                errors[worker] += response.status_code != 200
                index += clients

        started = time.monotonic()
        await asyncio.gather(*(read(worker) for worker in range(clients)))
        elapsed = time.monotonic() - started
    return sum(counts) / elapsed, sum(errors)


async def measure_latency(url: str, signer: Signer, txs: int) -> list[float]:
    """Return the sorted submit-to-committed times (ms) of `txs` anchors."""
    raws = [signer.sign() for _ in range(txs)]
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for raw in raws:
        queue.put_nowait(raw)
    async with httpx.AsyncClient(base_url=url, timeout=SUBMIT_WAIT_S + 10) as http:

        async def submit() -> None:
            while not queue.empty():
                raw = queue.get_nowait()
                started = time.monotonic()
                response = await http.post("/v1/txs", content=raw,
                                           params={"wait_s": SUBMIT_WAIT_S},
                                           headers={"content-type": "application/cbor"})
                body = response.json()
                if response.status_code != 202 or body.get("status") != "committed":
                    raise LocalError(f"a timed submission did not commit: {body}")
                latencies.append((time.monotonic() - started) * 1000)

        await asyncio.gather(*(submit() for _ in range(LATENCY_SUBMITTERS)))
    return sorted(round(value, 1) for value in latencies)


async def measure_events(url: str, signer: Signer, subscribers: int,
                         txs: int) -> tuple[int, float]:
    """Return the tx events all subscribers received, and their rate from first to last."""
    limits = httpx.Limits(max_connections=subscribers + 1)
    timeout = httpx.Timeout(EVENTS_TIMEOUT_S, connect=10.0)
    received = [0] * subscribers
    first: list[float] = []
    last = [0.0]
    ready = [asyncio.Event() for _ in range(subscribers)]
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:

        async def subscribe(index: int) -> None:
            async with http.stream("GET", "/v1/events", params={"types": "tx"}) as response:
                ready[index].set()
                async for line in response.aiter_lines():
                    if line == "event: tx":
                        now = time.monotonic()
                        if not first:
                            first.append(now)
                        last[0] = now
                        received[index] += 1
                        if received[index] == txs:
                            return

        tasks = [asyncio.create_task(subscribe(index)) for index in range(subscribers)]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 30.0)
        response = await http.post("/v1/txs/batch", content=encode(
            [signer.sign() for _ in range(txs)]), headers={"content-type": "application/cbor"})
        refused = [item for item in response.json().get("results", [{}])
                   if item.get("code") != 0] if response.status_code == 202 else [{}]
        _, pending = await asyncio.wait(tasks, timeout=0 if refused else EVENTS_TIMEOUT_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if refused:
            raise LocalError(f"the event run's batch was refused: {refused[0]}")
    delivered = sum(received)
    span_s = last[0] - first[0] if first else 0.0
    return delivered, delivered / span_s if span_s > 0 else 0.0
