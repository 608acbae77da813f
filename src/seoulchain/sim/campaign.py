"""One seed of the fault campaign: draw a fault plan, run the safety and liveness phases, check.

Theory of operation: a seed determines everything. `random.Random(seed)` — the run's only
source of randomness — first draws a `SeedPlan` (cluster size, Byzantine validators and their
behaviours, network fault rates, partition and crash episodes, slow nodes, clock skews,
client load), then drives the cluster itself. The run has two phases:

1. safety: for `safety_ms` of virtual time, clients submit transactions while the plan's
   faults come and go (and, in a quarter of the seeds, the agencies swap a standby in for
   an honest validator by governance proposals); nothing has to make progress, nothing may break;
2. liveness: faults stop — partitions heal, loss and duplication drop to zero, slow nodes
   recover, crashed nodes restart, the lock-split adversary stands down (Byzantine
   validators keep misbehaving) — and every honest node must commit `LIVENESS_HEIGHTS`
   heights beyond the highest honest height within `LIVENESS_TIMEOUT_MS` of virtual time.

With `empty_blocks_interval_ms` (`--empty-blocks-interval-ms`), validators run with
`create_empty_blocks = false` and that proof-of-life interval, and the liveness bound grows
by one interval per required height (an idle chain makes a block only that often).

Then the checkers run over every honest store. A failing seed replays exactly with the
command in `SeedResult.replay_command`. Canary runs (validators ignoring their locks under
the lock-split attack) skip the liveness phase: only the checkers' verdict matters there.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field

from seoulchain.errors import LocalError
from seoulchain.sim.byzantine import BYZANTINE_BEHAVIOURS
from seoulchain.sim.cluster import Cluster
from seoulchain.sim.network import NetworkFaults

# Cluster sizes a campaign draws when none is given, with weights: f = 0, 1, 1, 2.
VALIDATOR_COUNTS = (1, 4, 5, 7)
VALIDATOR_COUNT_WEIGHTS = (1, 4, 3, 2)
# Faults the issue asks for: loss up to 30 %, duplication up to 50 %.
LOSS_MAX = 0.30
DUPLICATE_MAX = 0.50
DELAY_MIN_MS_MAX = 30
DELAY_SPREAD_MS_MAX = 300
# Virtual duration of the safety phase, and how many episodes of each fault it may hold.
SAFETY_MS_MIN = 10_000
SAFETY_MS_MAX = 25_000
PARTITIONS_MAX = 2
PARTITION_MS_MIN = 1_000
PARTITION_MS_MAX = 8_000
CRASHES_MAX = 2
DOWNTIME_MS_MIN = 500
DOWNTIME_MS_MAX = 8_000
SLOW_NODES_MAX = 2
SLOW_MS_MAX = 800
# Clock offsets within ±5 s and drift within ±2 %: far worse than NTP-synchronised hosts.
CLOCK_OFFSET_MS_MAX = 5_000
CLOCK_DRIFT_PPM_MAX = 20_000
TXS_MIN = 5
TXS_MAX = 30
# A quarter of the seeds (n >= 4) swap a standby in for an honest validator mid-run.
VALIDATOR_CHANGE_PROBABILITY = 0.25
# After faults stop: heights every honest node must add, and the virtual time allowed.
# The bound covers block sync of a node that was down, a few rounds whose timeouts grew
# during the safety phase (3 s + 0.5 s per round for propose alone), and a Byzantine
# proposer's failed round per height.
LIVENESS_HEIGHTS = 3
LIVENESS_TIMEOUT_MS = 120_000
# The longest proof-of-life interval a campaign runs with: a minute, so that its liveness
# phase (one interval per height on an idle chain) stays within minutes of virtual time.
EMPTY_BLOCKS_INTERVAL_MS_MAX = 60_000
# Canary runs keep the network mild so the lock-split attack gets its chance.
CANARY_LOSS_MAX = 0.05
CANARY_DUPLICATE_MAX = 0.20

PARTITION_KINDS = ("halves", "isolate", "one_way", "random_split")
CRASH_MODES = ("clean", "torn_write", "torn_zero_fill", "mid_commit", "after_lock")


@dataclass(frozen=True, slots=True)
class PartitionEpisode:
    """A partition of `kind` between `start_ms` and `end_ms`."""

    start_ms: int
    end_ms: int
    kind: str


@dataclass(frozen=True, slots=True)
class CrashEpisode:
    """Node `node` crashes (in `mode`) at `at_ms` and restarts `down_ms` later."""

    node: int
    at_ms: int
    down_ms: int
    mode: str


@dataclass(frozen=True, slots=True)
class ValidatorChange:
    """At `at_ms` the agencies propose adding node `add` (a standby) and removing validator
    `remove`."""

    at_ms: int
    add: int
    remove: int


@dataclass
class SeedPlan:
    """Everything a seed draws before the run starts."""

    seed: int
    n: int
    byzantine: dict[int, str]
    canary: bool
    faults: NetworkFaults
    safety_ms: int
    txs: int
    partitions: list[PartitionEpisode] = field(default_factory=list)
    crashes: list[CrashEpisode] = field(default_factory=list)
    slow: dict[int, int] = field(default_factory=dict)
    skews: dict[int, tuple[int, int]] = field(default_factory=dict)
    change: ValidatorChange | None = None

    @property
    def standbys(self) -> int:
        return 0 if self.change is None else 1

    def describe(self) -> str:
        """Return a one-line summary of the plan."""
        byzantine = ",".join(f"{index}:{name}" for index, name in sorted(self.byzantine.items()))
        change = "" if self.change is None else (
            f" change=+{self.change.add}-{self.change.remove}@{self.change.at_ms}")
        return (f"n={self.n} byzantine=[{byzantine}] loss={self.faults.loss:.2f} "
                f"dup={self.faults.duplicate:.2f} partitions={len(self.partitions)} "
                f"crashes={len(self.crashes)} slow={len(self.slow)} txs={self.txs}{change}")


@dataclass
class SeedResult:
    """What one seed's run found, and how to replay it."""

    seed: int
    plan: SeedPlan
    command: str
    violations: list[str]
    liveness_failure: str | None
    height: int
    virtual_ms: int
    wall_s: float
    items: int
    trace_digest: str
    attack_injections: int
    liveness_ms: int

    @property
    def failed(self) -> bool:
        return bool(self.violations) or self.liveness_failure is not None

    @property
    def replay_command(self) -> str:
        return self.command


def draw_plan(rng: random.Random, seed: int, validators: int | None = None,
              byzantine: int | None = None, canary: bool = False) -> SeedPlan:
    """Draw a seed's cluster, Byzantine validators and fault schedule from `rng`."""
    if canary:
        n = validators if validators is not None else rng.choice((4, 5, 7))
    else:
        n = validators if validators is not None else rng.choices(
            VALIDATOR_COUNTS, VALIDATOR_COUNT_WEIGHTS)[0]
    f = (n - 1) // 3
    if byzantine is not None and not 0 <= byzantine <= f:
        raise LocalError(f"--byzantine {byzantine} is outside 0..f = 0..{f} for n = {n}")
    if canary and f == 0:
        raise LocalError("the canary needs a Byzantine validator: use at least 4 validators")
    count = byzantine if byzantine is not None else (f if canary else rng.randint(0, f))
    indices = sorted(rng.sample(range(n), count))
    names = ["lock_split" if canary else rng.choice(BYZANTINE_BEHAVIOURS) for _ in indices]
    loss_max, duplicate_max = ((CANARY_LOSS_MAX, CANARY_DUPLICATE_MAX) if canary
                               else (LOSS_MAX, DUPLICATE_MAX))
    faults = NetworkFaults(loss=rng.uniform(0, loss_max), duplicate=rng.uniform(0, duplicate_max),
                           delay_min_ms=rng.randint(1, DELAY_MIN_MS_MAX),
                           delay_spread_ms=rng.randint(0, DELAY_SPREAD_MS_MAX))
    plan = SeedPlan(seed, n, dict(zip(indices, names, strict=True)), canary, faults,
                    rng.randint(SAFETY_MS_MIN, SAFETY_MS_MAX), rng.randint(TXS_MIN, TXS_MAX))
    node_count = n + sum(1 for name in names if name == "twins")
    honest = [index for index in range(n) if index not in plan.byzantine]
    if not canary and n >= 4 and rng.random() < VALIDATOR_CHANGE_PROBABILITY:
        plan.change = ValidatorChange(rng.randint(0, plan.safety_ms // 2), node_count,
                                      rng.choice(honest))
        node_count += 1
    if not canary:
        plan.partitions = draw_partitions(rng, plan.safety_ms)
        plan.crashes = draw_crashes(rng, plan.safety_ms, node_count)
        for index in rng.sample(range(node_count), rng.randint(0, min(SLOW_NODES_MAX, node_count))):
            plan.slow[index] = rng.randint(20, SLOW_MS_MAX)
    for index in range(node_count):
        if rng.random() < 0.5:
            plan.skews[index] = (rng.randint(-CLOCK_OFFSET_MS_MAX, CLOCK_OFFSET_MS_MAX),
                                 rng.randint(-CLOCK_DRIFT_PPM_MAX, CLOCK_DRIFT_PPM_MAX))
    return plan


def draw_partitions(rng: random.Random, safety_ms: int) -> list[PartitionEpisode]:
    """Draw non-overlapping partition episodes within the safety phase."""
    episodes = []
    start = 0
    for _ in range(rng.randint(0, PARTITIONS_MAX)):
        start += rng.randint(0, safety_ms // 2)
        end = start + rng.randint(PARTITION_MS_MIN, PARTITION_MS_MAX)
        if end >= safety_ms:
            break
        episodes.append(PartitionEpisode(start, end, rng.choice(PARTITION_KINDS)))
        start = end
    return episodes


def draw_crashes(rng: random.Random, safety_ms: int, node_count: int) -> list[CrashEpisode]:
    """Draw crash episodes (possibly overlapping, on any node) within the safety phase."""
    return [CrashEpisode(rng.randrange(node_count), rng.randint(0, safety_ms),
                         rng.randint(DOWNTIME_MS_MIN, DOWNTIME_MS_MAX), rng.choice(CRASH_MODES))
            for _ in range(rng.randint(0, CRASHES_MAX))]


def make_command(seed: int, validators: int | None, byzantine: int | None, canary: bool,
                 empty_blocks_interval_ms: int | None = None) -> str:
    """Return the CLI command that replays one seed exactly."""
    parts = ["seoulchain", "sim", "--seed", str(seed)]
    if validators is not None:
        parts += ["--validators", str(validators)]
    if byzantine is not None:
        parts += ["--byzantine", str(byzantine)]
    if canary:
        parts.append("--canary")
    if empty_blocks_interval_ms is not None:
        parts += ["--empty-blocks-interval-ms", str(empty_blocks_interval_ms)]
    return " ".join(parts)


def run_seed(seed: int, validators: int | None = None, byzantine: int | None = None,
             canary: bool = False, empty_blocks_interval_ms: int | None = None) -> SeedResult:
    """Run one seed's safety and liveness phases and check the result.

    `empty_blocks_interval_ms`: None makes empty blocks at every commit pause; a positive
    value runs the validators with create_empty_blocks off and that proof-of-life interval.
    """
    if empty_blocks_interval_ms is not None and not (
            1 <= empty_blocks_interval_ms <= EMPTY_BLOCKS_INTERVAL_MS_MAX):
        raise LocalError(f"the campaign's empty-block interval must be 1..."
                         f"{EMPTY_BLOCKS_INTERVAL_MS_MAX} ms (its liveness phase needs blocks)")
    started = time.perf_counter()
    rng = random.Random(seed)
    plan = draw_plan(rng, seed, validators, byzantine, canary)
    cluster = Cluster(plan.n, seed, byzantine=plan.byzantine, canary=canary,
                      faults=plan.faults, standbys=plan.standbys, rng=rng,
                      empty_blocks_interval_ms=empty_blocks_interval_ms)
    apply_plan(cluster, plan)
    try:
        cluster.run_for(plan.safety_ms)
        liveness_failure, liveness_ms = None, 0
        if not canary:  # an unsafe cluster owes no liveness; the checkers are the point
            liveness_failure, liveness_ms = run_liveness_phase(cluster)
        violations = [str(violation) for violation in cluster.violations()]
    except Exception as exc:  # an honest node broke an invariant: report it, replayably
        liveness_failure, liveness_ms = None, 0
        violations = [f"error: {describe_exception(exc)}"]
    height = max((node.height for node in cluster.honest_nodes), default=0)
    command = make_command(seed, validators, byzantine, canary, empty_blocks_interval_ms)
    return SeedResult(seed, plan, command,
                      violations, liveness_failure, height, cluster.now_ms,
                      time.perf_counter() - started, cluster.items_processed,
                      cluster.trace_digest(), cluster.adversary.injections, liveness_ms)


def describe_exception(exc: BaseException) -> str:
    """Return the exception and the innermost frame that raised it, on one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def apply_plan(cluster: Cluster, plan: SeedPlan) -> None:
    """Install the plan's skews and slow nodes, and schedule its faults and client load."""
    for index, (offset_ms, drift_ppm) in plan.skews.items():
        cluster.node(index).skew(offset_ms, drift_ppm)
    for index, delay_ms in plan.slow.items():
        cluster.node(index).slow(delay_ms)
    for episode in plan.partitions:
        cluster.at(episode.start_ms, lambda kind=episode.kind: start_partition(cluster, kind))
        cluster.at(episode.end_ms, lambda: heal_if_faulty(cluster))
    for crash in plan.crashes:
        cluster.at(crash.at_ms, lambda crash=crash: start_crash(cluster, crash))
        cluster.at(crash.at_ms + crash.down_ms, lambda crash=crash: end_crash(cluster, crash))
    if plan.change is not None:
        cluster.schedule_validator_change(plan.change.at_ms, add=[plan.change.add],
                                          remove=[plan.change.remove])
    cluster.submit(plan.txs, spread_ms=plan.safety_ms)


def start_partition(cluster: Cluster, kind: str) -> None:
    """Cut the network in one of the four partition shapes, drawn with the cluster's rng."""
    if not cluster.faults_active:
        return
    count = len(cluster.nodes)
    order = list(range(count))
    cluster.rng.shuffle(order)
    if kind == "halves":
        cluster.partition(order[:count // 2], order[count // 2:])
    elif kind == "isolate":
        cluster.isolate(order[0])
    elif kind == "one_way":
        cut = cluster.rng.randint(1, max(1, count - 1))
        cluster.partition_one_way(order[:cut], order[cut:])
    else:
        cluster.partition(order[:cluster.rng.randint(1, max(1, count - 1))])


def heal_if_faulty(cluster: Cluster) -> None:
    if cluster.faults_active:
        cluster.heal()


def start_crash(cluster: Cluster, crash: CrashEpisode) -> None:
    """Crash a node cleanly, inside its next WAL append, or inside its next block commit."""
    if not cluster.faults_active:
        return
    handle = cluster.node(crash.node)
    if crash.mode == "mid_commit":
        steps = ("begin", "block", "txs", "state", "log", "tip")
        handle.crash_during_commit(steps[cluster.rng.randrange(len(steps))])
    elif crash.mode == "after_lock":
        handle.crash_after_lock()
    else:
        handle.crash(torn_write=crash.mode != "clean", zero_fill=crash.mode == "torn_zero_fill")


def end_crash(cluster: Cluster, crash: CrashEpisode) -> None:
    """Restart a crashed node (one armed to crash later is crashed and restarted now)."""
    if cluster.faults_active:
        cluster.node(crash.node).sim.crash_mid_commit_step = None
        cluster.node(crash.node).sim.crash_after_lock = False
        cluster.node(crash.node).restart()


def end_faults(cluster: Cluster) -> None:
    """Stop every fault: heal, no loss or duplication, no slow nodes, restart the crashed."""
    cluster.faults_active = False
    cluster.adversary.stop()
    cluster.heal()
    cluster.set_faults(loss=0.0, duplicate=0.0)
    for index in range(len(cluster.nodes)):
        cluster.network.slow_ms[index] = 0
    for node in cluster.nodes:
        node.crash_mid_commit_step = None
        node.crash_after_lock = False
        node.wal.disarm()
        if node.is_crashed:
            cluster.restart(node.index)


def run_liveness_phase(cluster: Cluster) -> tuple[str | None, int]:
    """End the faults; return (None, time taken) if every honest node then commits in time."""
    end_faults(cluster)
    started_ms = cluster.now_ms
    target = max(node.height for node in cluster.honest_nodes) + LIVENESS_HEIGHTS
    timeout_ms = LIVENESS_TIMEOUT_MS + LIVENESS_HEIGHTS * (cluster.empty_blocks_interval_ms or 0)
    if cluster.run_while(lambda: not cluster.has_reached(target), cluster.now_ms + timeout_ms):
        return None, cluster.now_ms - started_ms
    return (f"honest nodes did not all reach height {target} within {timeout_ms} ms "
            f"after faults stopped: {cluster.describe_heights()}"), cluster.now_ms - started_ms


def run_campaign(seeds: range, validators: int | None = None, byzantine: int | None = None,
                 canary: bool = False,
                 empty_blocks_interval_ms: int | None = None) -> Iterator[SeedResult]:
    """Run `seeds` one after another, yielding each result."""
    for seed in seeds:
        yield run_seed(seed, validators, byzantine, canary, empty_blocks_interval_ms)
