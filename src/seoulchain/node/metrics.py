"""A node's Prometheus metrics, in a registry of its own (docs/api.md, "Metrics").

Theory of operation: each `Node` owns one `NodeMetrics` with its own `CollectorRegistry`
(never the process-wide default), so several nodes in one process keep separate figures.
Each figure is recorded at the one place its mechanism lives: the engine reports execute
and commit durations and the verifier batch signature checks (`Engine.on_duration`), the
mempool reports refusals (`Mempool.on_refused`), the precheck pool its batch times
(`PrecheckPool.on_batch`; its counters are read when scraped), the BFT driver reports
consensus progress after each step of its core (`observe_consensus`), the node reports
commits (`observe_commit`), the API its requests (`api_request_seconds`) and the event stream the
subscribers it drops (`EventHub.on_dropped`). Gauges that mirror live state (height,
mempool, peers, event subscribers) are read when scraped, so they are never stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from seoulchain.execution.results import ResultCode

if TYPE_CHECKING:
    from seoulchain.node.prechecks import PrecheckPool

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
# Durations from 1 ms to 30 s: a step or an execution spans that range (the default
# propose timeout is 3 s; a stuck round grows by its delta each round).
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
# Block payload sizes from 1 KiB to the 8 MiB order of BLOCK_BYTES_MAX, by factors of 4.
BLOCK_BYTES_BUCKETS = tuple(float(1024 * 4**power) for power in range(8))
# Transactions per block, up to the thousands a busy chain packs.
BLOCK_TXS_BUCKETS = (0.0, 1.0, 10.0, 100.0, 1000.0, 5000.0, 10000.0)
# Why the node dropped an event subscriber (api/events.py): its queue of blocks was full (it
# fell that many blocks behind), or one write to it did not finish within the send timeout.
EVENT_DROP_QUEUE_FULL = "queue_full"
EVENT_DROP_SEND_TIMEOUT = "send_timeout"
EVENT_DROP_REASONS = (EVENT_DROP_QUEUE_FULL, EVENT_DROP_SEND_TIMEOUT)


class NodeMetrics:
    """The metrics of one node, exposed at its API's /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.height = Gauge("seoulchain_height", "Height of the last committed block.",
                            registry=registry)
        self.round = Gauge("seoulchain_consensus_round",
                           "Consensus round of the height being decided.", registry=registry)
        self.step_seconds = Histogram(
            "seoulchain_consensus_step_seconds", "Time spent in each consensus step.",
            ["step"], buckets=SECONDS_BUCKETS, registry=registry)
        self.blocks_committed = Counter("seoulchain_blocks_committed",
                                        "Blocks committed by this node.", registry=registry)
        self.txs_committed = Counter("seoulchain_txs_committed",
                                     "Transactions in committed blocks.", registry=registry)
        self.block_tx_bytes = Histogram(
            "seoulchain_block_tx_bytes", "Bytes of transactions in each committed block.",
            buckets=BLOCK_BYTES_BUCKETS, registry=registry)
        self.block_txs = Histogram("seoulchain_block_txs", "Transactions per committed block.",
                                   buckets=BLOCK_TXS_BUCKETS, registry=registry)
        self.mempool_txs = Gauge("seoulchain_mempool_txs", "Transactions waiting in the "
                                 "mempool.", registry=registry)
        self.mempool_bytes = Gauge("seoulchain_mempool_bytes", "Bytes of transactions "
                                   "waiting in the mempool.", registry=registry)
        self.peers = Gauge("seoulchain_peers", "Validator peers connected.", registry=registry)
        self.phase_seconds = Histogram(
            "seoulchain_phase_seconds", "Durations of block work: verify (batch signature "
            "checks), execute (a block's transactions), commit (the store write).",
            ["phase"], buckets=SECONDS_BUCKETS, registry=registry)
        self.txs_rejected = Counter("seoulchain_txs_rejected", "Transactions the mempool "
                                    "refused, by result code.", ["reason"], registry=registry)
        self.api_request_seconds = Histogram(
            "seoulchain_api_request_seconds", "API request latency by route template.",
            ["method", "route", "status"], buckets=SECONDS_BUCKETS, registry=registry)
        self.event_subscribers = Gauge("seoulchain_event_subscribers", "Clients subscribed "
                                       "to the live event stream.", registry=registry)
        self.event_subscribers_dropped = Counter(
            "seoulchain_event_subscribers_dropped", "Event subscribers the node dropped for "
            "reading too slowly, by reason.", ["reason"], registry=registry)
        for reason in EVENT_DROP_REASONS:
            self.event_subscribers_dropped.labels(reason)
        self.precheck_batch_seconds = Histogram(
            "seoulchain_precheck_batch_seconds", "Time each batch of prechecks (ballot "
            "proofs) took in the worker processes, to its end or its time limit.",
            buckets=SECONDS_BUCKETS, registry=registry)
        self._step: tuple[int, int, str] | None = None
        self._step_started = time.monotonic()

    def watch(self, height: Callable[[], int], mempool_txs: Callable[[], int],
              mempool_bytes: Callable[[], int], peers: Callable[[], int]) -> None:
        """Read the live gauges from these functions at each scrape."""
        self.height.set_function(height)
        self.mempool_txs.set_function(mempool_txs)
        self.mempool_bytes.set_function(mempool_bytes)
        self.peers.set_function(peers)

    def watch_events(self, subscribers: Callable[[], int]) -> None:
        """Read the number of event subscribers from this function at each scrape."""
        self.event_subscribers.set_function(subscribers)

    def watch_prechecks(self, pool: PrecheckPool) -> None:
        """Export the precheck pool's counters (read at each scrape) and time its batches."""
        self.registry.register(PrecheckCollector(pool))
        pool.on_batch = self.precheck_batch_seconds.observe

    def observe_subscriber_dropped(self, reason: str) -> None:
        """Count one event subscriber dropped for `reason` (one of EVENT_DROP_REASONS)."""
        assert reason in EVENT_DROP_REASONS, reason
        self.event_subscribers_dropped.labels(reason).inc()

    def observe_duration(self, phase: str, seconds: float) -> None:
        """Record how long one verify, execute or commit took."""
        self.phase_seconds.labels(phase).observe(seconds)

    def observe_refused(self, code: ResultCode) -> None:
        """Count one transaction the mempool refused."""
        self.txs_rejected.labels(code.name.lower()).inc()

    def observe_commit(self, txs: list[bytes]) -> None:
        """Count a committed block and its transactions."""
        self.blocks_committed.inc()
        self.txs_committed.inc(len(txs))
        self.block_txs.observe(len(txs))
        self.block_tx_bytes.observe(sum(len(raw) for raw in txs))

    def observe_consensus(self, height: int, round_: int, step: str) -> None:
        """Note the consensus position; time the step just left when it changed."""
        position = (height, round_, step)
        if position == self._step:
            return
        now = time.monotonic()
        if self._step is not None:
            self.step_seconds.labels(self._step[2]).observe(now - self._step_started)
        self._step, self._step_started = position, now
        self.round.set(round_)

    def render(self) -> bytes:
        """Return the registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


class PrecheckCollector(Collector):
    """The precheck pool's counters, read from the pool when scraped."""

    def __init__(self, pool: PrecheckPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "seoulchain_prechecks_recorded", "Precheck verdicts (ballot proofs) computed in "
            "the worker processes and recorded for the engine.", value=self.pool.recorded)
        yield CounterMetricFamily(
            "seoulchain_prechecks_failed", "Prechecks left to the engine: raised in a "
            "worker, outran their time limit, or the pool failed.", value=self.pool.failed)
