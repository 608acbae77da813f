"""The throughput/latency study on the modelled CPU costs (`seoulchain sim scale`).

Theory of operation: `run_load_step` offers an open-loop load of R tx/s (virtual) to a fresh
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
from typing import Any

from seoulchain.errors import LocalError
from seoulchain.sim.cluster import Cluster, LoadRecord, SimLimits
from seoulchain.sim.costs import MICROS_PER_S, CpuCosts
from seoulchain.sim.network import NetworkFaults

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
