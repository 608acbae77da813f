"""Modelled CPU costs of a validator, and the throughput/latency study that runs on them.

Theory of operation: without costs the simulator hands each event to its node in zero
virtual time. With a `CpuCosts`, a node is a machine of its own that is busy: the cluster
measures what each event made the node do (`EventWork`: the message it handled, the txs it
admitted, the blocks and txs it executed and committed, its durable writes), prices it
here (`compute_busy_us`), and the node's effects (sends, commits) happen when that work
ends; events arriving meanwhile wait in the node's inbox, in arrival order. The figures
are busy time on the node's one event loop, CPU or blocking I/O (an fsync blocks the loop
as surely as a signature check does).

Every default below is a measured figure from this code on the project's 2-core box; each
comment says which measurement. What the model leaves out: the GIL and event-loop
contention between the node's API, transport and consensus (one queue per node here,
FIFO, no preemption), the real node's worker-thread signature checks (here all on the
one loop), batching effects beyond what the code itself does, bandwidth (a message's
delay does not depend on its size), the WAL reset's fsync at each new height, and the
commit signatures a block-synced block carries. docs/simulation.md, "Modelled CPU costs
and scaling", has the study's method and results.

The study: `run_load_step` offers an open-loop load of R tx/s (virtual) to a fresh
cluster for a virtual duration and measures committed tx/s and finality latency (submit →
commit at the node the client submitted to); `search_tps_max` steps R from half of the
model's bound, bisecting between the best sustained rate and the lowest failed one (at
first the bound itself, which no network of these validators can sustain), a few steps
only, and keeps the highest rate sustained by the real benchmark's rule: p99 ≤ 2 s, every
tx committed, and a backlog that does not grow by more than 10 % of the offered rate. (The
real benchmark also asks for a committed rate ≥ 90 % of the offered one; here every
offered tx is followed to its commit, so a network that falls behind already fails one of
the three, and over a few-second step the commit span's ramp would bias that rate low.)
A sustained step committed everything it was offered, at the offered rate: `tps_max` is
the best sustained step's offered rate.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seoulchain.errors import LocalError
from seoulchain.sim.network import NetworkFaults

if TYPE_CHECKING:
    from seoulchain.sim.cluster import Cluster, LoadRecord

MICROS_PER_S = 1_000_000

# ---------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class CpuCosts:
    """Virtual busy time, in microseconds, of each operation a validator performs."""

    # Any input handled (dispatch; decoding a status or a small message): a status message
    # took 21 µs (median) in the simulator, `core.handle` timed with process_time.
    event_us: int = 20
    # A proposal or vote on top of that: strict CBOR decode, the Ed25519 check (≈ 65 µs a
    # core on this box), the WAL record, vote counting; a vote took 254 µs (median) in the
    # simulator, less the 20 above.
    consensus_message_us: int = 230
    # A tx admitted to the mempool (decode, signature, nonce, schema), from a client or a
    # peer's gossip: `seoulchain bench ledger` admission, 210 µs/tx for a 195 B notary
    # anchor (173 µs on a quieter run).
    tx_admit_us: int = 210
    # Executing a block (prepare_proposal at the proposer, process_proposal elsewhere, or a
    # synced block) beside its txs: header checks, roots, the state tree's batch; a
    # proposal of 0-3 txs took 1.4 ms (median) in the simulator, about 1 ms beyond a vote.
    block_execute_us: int = 1000
    # Each tx executed in a block. `bench ledger` gives 340 µs/tx of block work, split here
    # as prepare_proposal (execution) and Engine.commit divided it in a 10,000-tx run with
    # blocks of 2,000 (203 and 68 µs of CPU per tx, 75 % / 25 %): 250 µs, and 90 µs below.
    tx_execute_us: int = 250
    # Committing a block beside its txs and its fsync: the store transaction's CPU, 0.7 ms
    # (a vote that committed a small block took 0.94 ms against 0.25 ms for one that did not).
    block_commit_us: int = 700
    # Each tx committed: its records, state and tree nodes written (see tx_execute_us).
    tx_commit_us: int = 90
    # One fsync: ≈ 3.3 ms on this box's disk (docs/performance.md, catch-up table; a probe
    # of 200 small appends gave a 3.6 ms median). Paid per block commit (SQLite,
    # synchronous=FULL), per synced WAL write (an own proposal or vote, which makes the
    # inputs logged before it durable too, and the log's reset at each height) and twice
    # per own signature (signing state: file and directory).
    fsync_us: int = 3300

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            if getattr(self, item.name) < 0:
                raise LocalError(f"CpuCosts.{item.name} must not be negative")

    @classmethod
    def zero(cls) -> CpuCosts:
        """Return costs that are all zero (the simulator's model without costs)."""
        return cls(**{item.name: 0 for item in dataclasses.fields(cls)})

    def is_zero(self) -> bool:
        return all(getattr(self, item.name) == 0 for item in dataclasses.fields(self))

    def compute_tx_us(self) -> int:
        """Busy time every validator spends on every tx: admit, execute, commit."""
        return self.tx_admit_us + self.tx_execute_us + self.tx_commit_us

    def compute_bound_tps(self) -> float:
        """The rate no network of these validators can exceed: each admits, executes and
        commits every tx, so one validator's per-tx time bounds the whole network."""
        per_tx_us = self.compute_tx_us()
        return float("inf") if per_tx_us == 0 else MICROS_PER_S / per_tx_us

    def compute_busy_us(self, work: EventWork) -> int:
        """Return how long `work` keeps a node busy."""
        return (self.event_us
                + work.consensus_messages * self.consensus_message_us
                + work.txs_admitted * self.tx_admit_us
                + work.blocks_executed * self.block_execute_us
                + work.txs_executed * self.tx_execute_us
                + work.blocks_committed * self.block_commit_us
                + work.txs_committed * self.tx_commit_us
                + work.fsyncs * self.fsync_us)

    def scaled_tx(self, factor: float) -> CpuCosts:
        """Return these costs with every per-tx cost multiplied by `factor`."""
        return dataclasses.replace(
            self, tx_admit_us=round(self.tx_admit_us * factor),
            tx_execute_us=round(self.tx_execute_us * factor),
            tx_commit_us=round(self.tx_commit_us * factor))


@dataclass(frozen=True, slots=True)
class EventWork:
    """What one event made a node do, as the cluster measured it."""

    consensus_messages: int = 0
    txs_admitted: int = 0
    blocks_executed: int = 0
    txs_executed: int = 0
    blocks_committed: int = 0
    txs_committed: int = 0
    fsyncs: int = 0


# ---------------------------------------------------------------------------- the study

# The sustained-rate rule of `seoulchain bench` (docs/performance.md).
LATENCY_P99_MAX_MS = 2000
BACKLOG_GROWTH_SHARE_MAX = 0.1
LATENCY_QUANTILE = 0.99
# After the offered window, txs still uncommitted get this long to commit (the p99 bound
# and a block's worth of slack); any still pending then fail the step.
DRAIN_MS = 4000
# The whole study: block and mempool limits of the real node's defaults scale (block of
# 2,000 txs as in docs/performance.md; node default 5,000), enough signers that none
# reaches its nonce window (256 pending txs) at these rates.
SCALE_BLOCK_TXS_MAX = 2000
SCALE_BLOCK_TX_BYTES_MAX = 4 * 1024 * 1024
SCALE_MEMPOOL_TXS_MAX = 50_000
SCALE_MEMPOOL_BYTES_MAX = 128 * 1024 * 1024
SCALE_CLIENTS = 64
# The search starts at this share of the model's bound (the bound itself is known to fail)
# and bisects between the best sustained and the lowest failed rate; steps per validator
# count by default (each step's real CPU is about validators x rate x duration x 0.5 ms).
SEARCH_START_SHARE = 0.5
SEARCH_STEPS_DEFAULT = 4
# A bisection stops once the gap between sustained and failed is under this share.
SEARCH_GAP_SHARE_MIN = 0.05
# Virtual time for the first height, before the load starts.
WARMUP_TIMEOUT_MS = 30_000
SCALE_SEED = 1


@dataclass(frozen=True)
class StepResult:
    """One offered rate: what was committed, how fast, and the verdict."""

    validators: int
    offered_tps: int
    committed_tps: float
    submitted: int
    committed: int
    p50_ms: float
    p99_ms: float
    backlog_growth_tps: float
    heights: int
    busiest_node_share: float
    sustained: bool
    reason: str
    virtual_ms: int
    wall_s: float


@dataclass(frozen=True)
class ScaleResult:
    """One validator count: the highest sustained rate, latency at half of it, the bound."""

    validators: int
    tps_max: float
    bound_tps: float
    latency: StepResult | None
    steps: tuple[StepResult, ...]
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def compute_percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of `values` (inf if empty)."""
    if not values:
        return float("inf")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[min(len(ordered), int(rank)) - 1]


def run_load_step(validators: int, rate_tps: int, *, costs: CpuCosts, latency_ms: int,
                  duration_ms: int, seed: int = SCALE_SEED) -> StepResult:
    """Offer `rate_tps` to a fresh cluster of `validators` for `duration_ms`; judge the step."""
    from seoulchain.sim.cluster import Cluster, SimLimits  # cluster imports this module

    started = time.perf_counter()
    limits = SimLimits(SCALE_BLOCK_TXS_MAX, SCALE_BLOCK_TX_BYTES_MAX, SCALE_MEMPOOL_TXS_MAX,
                       SCALE_MEMPOOL_BYTES_MAX)
    cluster = Cluster(validators, seed, clients=max(SCALE_CLIENTS, validators), limits=limits,
                      costs=costs, faults=NetworkFaults(delay_min_ms=latency_ms,
                                                        delay_spread_ms=0))
    cluster.run_until(height=1, timeout_ms=WARMUP_TIMEOUT_MS)
    load = cluster.offer_load(rate_tps, duration_ms)
    offered = rate_tps * duration_ms // 1000
    overloaded = cluster.run_while(lambda: not is_p99_lost(load, cluster.now_us, offered),
                                   load.end_us // 1000)
    if not overloaded:
        overloaded = cluster.run_while(
            lambda: load.backlog > 0 and not is_p99_lost(load, cluster.now_us, offered),
            load.end_us // 1000 + DRAIN_MS) and load.backlog > 0
    return judge_step(cluster, load, rate_tps, overloaded, time.perf_counter() - started)


def is_p99_lost(load: LoadRecord, now_us: int, offered: int) -> bool:
    """True once more than 1 % of the offered txs are known to take over the p99 bound:
    at least those submitted before (now - bound), less every tx committed so far."""
    cutoff_us = now_us - LATENCY_P99_MAX_MS * 1000
    late = bisect.bisect_right(load.submit_times_us, cutoff_us) - len(load.latencies_us)
    return late > (1 - LATENCY_QUANTILE) * offered


def find_disagreements(cluster: Cluster) -> list[str]:
    """Return the heights at which two nodes committed different block ids."""
    found = []
    heights = sorted({height for node in cluster.nodes for height in node.commits})
    for height in heights:
        if len({node.commits[height] for node in cluster.nodes if height in node.commits}) > 1:
            found.append(f"height {height}")
    return found


def judge_step(cluster: Cluster, load: LoadRecord, rate_tps: int, overloaded: bool,
               wall_s: float) -> StepResult:
    """Apply the sustained-rate rule to a finished step."""
    window_s = (load.end_us - load.start_us) / MICROS_PER_S
    latencies_ms = [latency / 1000 for latency in load.latencies_us]
    pending = load.backlog
    span_s = window_s  # the real benchmark's: the longer of the window and the commit span
    if load.commit_times_us:
        span_s = max(window_s, (load.commit_times_us[-1] - load.commit_times_us[0])
                     / MICROS_PER_S)
    committed_tps = len(latencies_ms) / span_s
    growth = load.compute_backlog_growth_tps()
    p50 = compute_percentile(latencies_ms + [float("inf")] * pending, 0.50)
    p99 = compute_percentile(latencies_ms + [float("inf")] * pending, LATENCY_QUANTILE)
    reason = ""
    if overloaded:
        reason = (f"cut at {cluster.now_ms - load.start_us // 1000} ms: p99 over "
                  f"{LATENCY_P99_MAX_MS} ms is certain")
    elif disagreements := find_disagreements(cluster):
        reason = f"validators disagree at {disagreements[0]}"
    elif pending:
        reason = f"{pending} txs uncommitted {DRAIN_MS} ms after the load"
    elif p99 > LATENCY_P99_MAX_MS:
        reason = f"p99 {p99:.0f} ms > {LATENCY_P99_MAX_MS} ms"
    elif growth > BACKLOG_GROWTH_SHARE_MAX * rate_tps:
        reason = f"backlog growing {growth:.0f} tx/s"
    busy = [node.busy_us for node in cluster.nodes]
    return StepResult(
        validators=len(cluster.nodes), offered_tps=rate_tps, committed_tps=committed_tps,
        submitted=load.submitted, committed=len(latencies_ms), p50_ms=p50, p99_ms=p99,
        backlog_growth_tps=growth, heights=cluster.height,
        busiest_node_share=max(busy) / max(1, cluster.now_us),
        sustained=not reason, reason=reason or "sustained", virtual_ms=cluster.now_ms,
        wall_s=wall_s)


def search_tps_max(validators: int, *, costs: CpuCosts, latency_ms: int, duration_ms: int,
                   steps: int = SEARCH_STEPS_DEFAULT,
                   on_step: Callable[[StepResult], None] | None = None) -> ScaleResult:
    """Find the highest sustained rate in `steps` steps, then measure latency at half of it."""
    started = time.perf_counter()
    bound = costs.compute_bound_tps()
    if bound == float("inf"):
        raise LocalError("the scaling study needs non-zero per-tx costs")
    results: list[StepResult] = []

    def run(rate: int) -> StepResult:
        result = run_load_step(validators, rate, costs=costs, latency_ms=latency_ms,
                               duration_ms=duration_ms)
        results.append(result)
        if on_step is not None:
            on_step(result)
        return result

    best: StepResult | None = None
    failed_rate = math.ceil(bound)  # no network of these validators commits this much
    rate = max(1, round(bound * SEARCH_START_SHARE))
    for _ in range(steps):
        result = run(rate)
        if result.sustained:
            best = result if best is None or result.offered_tps > best.offered_tps else best
        else:
            failed_rate = min(failed_rate, rate)
        low = 0 if best is None else best.offered_tps
        if failed_rate - low <= max(1, SEARCH_GAP_SHARE_MIN * failed_rate):
            break
        rate = (low + failed_rate) // 2
    tps_max = 0.0 if best is None else float(best.offered_tps)
    latency = None
    if tps_max >= 2:
        latency = run_load_step(validators, int(tps_max // 2), costs=costs,
                                latency_ms=latency_ms, duration_ms=duration_ms)
        if on_step is not None:
            on_step(latency)
    return ScaleResult(validators, tps_max, bound, latency, tuple(results),
                       time.perf_counter() - started)
