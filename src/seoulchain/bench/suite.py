"""`seoulchain bench`: the highest sustained committed rate and its latency, beside the bound.

Theory of operation: one run measures, in order,

1. the bound: this machine's Ed25519 verification rate (PyNaCl, one thread, then one thread
   per usable core) and the usable cores (`os.sched_getaffinity`); every validator checks
   every transaction's signature once, so `bound = rate_per_core * cores / validators`;
2. the highest sustained rate: a local network (bench/network.py, fresh or attached with
   `home`) is offered open-loop load by the load generator process (bench/loadgen.py) in
   steps, each a slice of the duration. The offered rate starts low and doubles while the
   steps are sustained (`judge_step`), then the gap between the last sustained and the first
   unsustained rate is bisected (`search_max_rate`). `tps_max` is the committed rate of the
   best sustained step;
3. finality latency (submit -> committed as the client sees it) at half of `tps_max`;
4. that every acknowledged transaction of every step is in exactly one block, and that every
   node holds the same block at each height of the run.

Each step's transactions are signed before the step starts, while the network idles:
signing is the clients' cost. With `tx_bytes` each anchor is padded to about that size with
public metadata (bench/ledger.py `compute_padding_metadata`); the verification sample for
the bound is padded alike. On a fresh network each step has signers of its own, so a
transaction refused in an overloaded step (a nonce gap) cannot hold up a later step; on an
attached devnet the keys it holds are used and their nonces read from the chain.

The search (`search_max_rate`), the step verdict (`judge_step`), the figures computed from a
load report (`summarize_step`) and the JSON (`compose_report`) are pure functions, tested
with a fake measurement; `run_suite` wires them to processes.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import nacl.signing

from seoulchain.bench.ledger import BENCH_SIGNERS, compute_padding_metadata, presign_anchors
from seoulchain.bench.loadgen import ACKNOWLEDGED_CODES, compute_percentile, write_tx_file
from seoulchain.bench.network import (
    BENCH_CHAIN_ID,
    LocalNetwork,
    read_load_report,
    running_load,
)
from seoulchain.client.http import NodeUnavailable
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError, RemoteError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Transaction
from seoulchain.node.config import NodeConfig
from seoulchain.node.devnet import Devnet, is_devnet
from seoulchain.node.home import OPERATOR_KEY_NAME

REPORT_VERSION = 1
TX_KINDS = ("notary",)
# The verification rate is the best of a few short samples: on a shared machine the best
# one is the nearest to what the cores can do (a slow sample measures other jobs).
VERIFY_SAMPLE_S = 0.25
VERIFY_SAMPLES = 5
VERIFY_SAMPLE_CHAIN_ID = "seoul-bench-verify"
# The finality the issue asks of a sustained step (p99 under 2 s).
LATENCY_P99_MS_MAX = 2000.0
# A step is sustained only if the nodes committed at least this share of what was offered,
# ...
COMMITTED_FRACTION_MIN = 0.9
# ... refused (mempool full, nonce window) at most this share of it, ...
REFUSED_FRACTION_MAX = 0.001
# ... kept the load generator on schedule (it stops sending when 4 requests per node are
# unanswered; beyond this slip the offered rate was not really offered), ...
SUBMIT_LAG_MS_MAX = 1000.0
# ... and the backlog of acknowledged, uncommitted transactions (what sits in the mempools)
# grew by less than this share of the offered rate, between the second and the last quarter
# of the step's submission window.
BACKLOG_GROWTH_FRACTION_MAX = 0.1
# The search: the first offered rate is the bound over this divisor (far below what any
# network commits), then it doubles per sustained step; the gap between the last sustained
# and first unsustained rate is bisected geometrically (each step halves the gap's
# exponent: 2 -> 1.41 -> 1.19 -> 1.09) with the steps left, until it is within the
# resolution: finer than the step-to-step noise of a shared machine says nothing.
RATE_START_BOUND_DIVISOR = 128
RATE_START_MIN_TX_PER_S = 10.0
RATE_STEP_FACTOR = 2.0
RATE_RESOLUTION = 1.1
# Steps kept for the bisection when the doubling goes on and on.
REFINE_STEPS = 2
SEARCH_STEPS_MAX = 10
# The latency run gets this share of the duration; the search steps share the rest.
LATENCY_SHARE = 0.2
# A step shorter than this or with fewer transactions says nothing.
STEP_S_MIN = 1.0
STEP_TXS_MIN = 10
# After a step's last submission the load generator waits for the stragglers: until
# nothing new commits for the idle time, at most max(the step's length, this minimum).
STEP_DRAIN_IDLE_S = 5.0
STEP_DRAIN_MIN_S = 10.0
# How often nodes' mempools are sampled during a step, and how long the network may take to
# empty them between steps.
STATUS_SAMPLE_S = 1.0
SETTLE_MAX_S = 60.0
SETTLE_POLL_S = 0.5
# The load generator's batch (txs per POST): the API's batch path, as in bench network.
LOAD_BATCH_TXS = 50
# Time to wait for a network to reach height 1 after start.
NETWORK_START_TIMEOUT_S = 120.0
# The backlog curve is evaluated at this resolution, and only over submission windows this
# long: its quarters must span a few block intervals (1 s or more) to average them out.
BACKLOG_GRID_S = 0.05
BACKLOG_WINDOW_MIN_S = 8.0

Progress = Callable[[str, int, int], None]
Note = Callable[[str], None]


def noop_progress(phase: str, done: int, total: int) -> None:
    """A progress callback that reports nothing."""


def noop_note(text: str) -> None:
    """A note callback that prints nothing."""


# ------------------------------------------------------------------------------ the bound


@dataclass(frozen=True)
class VerifyRate:
    """This machine's Ed25519 verification rates, signatures per second."""

    per_core: float
    all_cores: float
    cores: int

    def compute_bound(self, validators: int) -> float:
        """Every validator verifies every tx once: the cores' rate shared by the validators."""
        return self.per_core * self.cores / validators


def get_usable_cores() -> int:
    """Return the cores this process may run on."""
    return len(os.sched_getaffinity(0))


def count_verifications(verify_key: nacl.signing.VerifyKey, message: bytes, signature: bytes,
                        seconds: float) -> int:
    """Verify the same signature repeatedly for `seconds`; return how many were done."""
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            verify_key.verify(message, signature)
        done += 100
    return done


def measure_verify_rate(sample_tx: bytes, seconds: float = VERIFY_SAMPLE_S,
                        samples: int = VERIFY_SAMPLES) -> VerifyRate:
    """Time PyNaCl verifying a real transaction's signature: one thread, then one per core.

    Each rate is the best of `samples` samples of `seconds`.
    """
    tx = Transaction.decode(sample_tx)
    verify_key = nacl.signing.VerifyKey(tx.signer)
    message = tx.sign_bytes()
    cores = get_usable_cores()
    per_core = all_cores = 0.0
    for _ in range(samples):
        done = count_verifications(verify_key, message, tx.signature, seconds)
        per_core = max(per_core, done / seconds)
    for _ in range(samples):
        counts = [0] * cores

        def work(slot: int, counts: list[int] = counts) -> None:
            counts[slot] = count_verifications(verify_key, message, tx.signature, seconds)

        threads = [threading.Thread(target=work, args=(slot,)) for slot in range(cores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        all_cores = max(all_cores, sum(counts) / seconds)
    return VerifyRate(per_core=round(per_core, 1), all_cores=round(all_cores, 1), cores=cores)


# ------------------------------------------------------------------------------ one step


@dataclass(frozen=True)
class StepResult:
    """One offered rate held for a while: what the nodes committed and how fast."""

    offered: float
    committed: float
    p50: float | None
    p95: float | None
    p99: float | None
    mempool: int
    backlog_growth_tx_per_s: float
    submit_lag_ms_p99: float | None
    txs_offered: int
    txs_acknowledged: int
    txs_committed: int
    refused: int
    missing: int
    seconds: float
    sustained: bool = False
    reason: str = ""
    # The heights the step's load and drain spanned, and how many of them needed more than
    # one consensus round (a proposer that timed out or a lost vote): where slow heights
    # come from, read from the commits after the step.
    heights: int = 0
    later_round_heights: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def judge_step(step: StepResult) -> StepResult:
    """Return the step with its verdict: sustained, or the first rule it broke."""
    reasons = []
    sent = step.txs_acknowledged + step.refused
    if step.refused > REFUSED_FRACTION_MAX * max(sent, 1):
        reasons.append(f"{step.refused} txs refused")
    if step.missing:
        reasons.append(f"{step.missing} acknowledged txs not committed in the drain")
    if step.p99 is None or step.p99 > LATENCY_P99_MS_MAX:
        reasons.append(f"p99 {step.p99} ms over {LATENCY_P99_MS_MAX:.0f} ms")
    if step.submit_lag_ms_p99 is not None and step.submit_lag_ms_p99 > SUBMIT_LAG_MS_MAX:
        reasons.append(f"submissions {step.submit_lag_ms_p99:.0f} ms behind schedule")
    if step.backlog_growth_tx_per_s > BACKLOG_GROWTH_FRACTION_MAX * step.offered:
        reasons.append(f"mempool growing {step.backlog_growth_tx_per_s:.0f} tx/s")
    if step.committed < COMMITTED_FRACTION_MIN * step.offered:
        reasons.append(f"committed {step.committed:.0f} of {step.offered:.0f} tx/s")
    return StepResult(**{**asdict(step), "sustained": not reasons,
                         "reason": "; ".join(reasons)})


def compute_committed_rate(committed_s: Sequence[float], submit_s: Sequence[float],
                           scheduled_span_s: float) -> float:
    """Return the txs committed over the longest of the scheduled window, the submission
    window and the commit span.

    When the nodes keep up, commits span the submission window shifted by the latency (less
    up to a block interval), so the rate is the offered one; when they fall behind, the
    backlog is committed after the last submission and the commit span sets the rate. (From
    the first submission to the last commit would charge one latency to every step.) The
    scheduled window (txs offered / offered rate) keeps a step of a batch or two from
    dividing by almost nothing.
    """
    if not committed_s:
        return 0.0
    commit_span_s = max(committed_s) - min(committed_s)
    submit_span_s = max(submit_s) - min(submit_s) if submit_s else 0.0
    span_s = max(commit_span_s, submit_span_s, scheduled_span_s)
    return len(committed_s) / span_s if span_s > 0 else 0.0


def compute_backlog_growth(submit_s: Sequence[float], committed_s: Sequence[float | None],
                           window_end_s: float) -> float:
    """Return how fast the uncommitted backlog grew over the submission window, in tx/s.

    The backlog at time t is the acknowledged txs submitted by t less those committed by t;
    its mean over the window's last quarter minus its mean over the second quarter, over
    the half window between them. Means over quarters smooth the saw tooth of block
    commits.
    """
    if not submit_s:
        return 0.0
    start = min(submit_s)
    length = window_end_s - start
    if length < BACKLOG_WINDOW_MIN_S:
        return 0.0
    submits = sorted(submit_s)
    commits = sorted(value for value in committed_s if value is not None)

    def mean_backlog(begin: float, end: float) -> float:
        points = max(2, int((end - begin) / BACKLOG_GRID_S))
        total = 0
        for index in range(points):
            moment = begin + (end - begin) * index / (points - 1)
            total += count_at_or_before(submits, moment) - count_at_or_before(commits, moment)
        return total / points

    early = mean_backlog(start + length / 4, start + length / 2)
    late = mean_backlog(start + 3 * length / 4, start + length)
    return (late - early) / (length / 2)


def count_at_or_before(sorted_values: Sequence[float], moment: float) -> int:
    low, high = 0, len(sorted_values)
    while low < high:
        middle = (low + high) // 2
        if sorted_values[middle] <= moment:
            low = middle + 1
        else:
            high = middle
    return low


def summarize_step(report: dict[str, Any], offered: float, mempool: int,
                   seconds: float) -> StepResult:
    """Turn a load generator report into a judged step."""
    columns = report["txs"]
    acked = [index for index, code in enumerate(columns["code"]) if code in ACKNOWLEDGED_CODES]
    sent = [index for index, value in enumerate(columns["submit_s"]) if value is not None]
    submit_s = [columns["submit_s"][index] for index in acked]
    committed_s = [columns["committed_s"][index] for index in acked]
    done = [value for value in committed_s if value is not None]
    latencies = sorted((commit - submit) * 1000 for submit, commit
                       in zip(submit_s, committed_s, strict=True) if commit is not None)
    summary = report["summary"]
    window_end_s = float(report.get("submit_ended_s") or 0.0)
    step = StepResult(
        offered=round(offered, 1),
        committed=round(compute_committed_rate(done, submit_s, len(columns["code"]) / offered),
                        1),
        p50=rounded_ms(compute_percentile(latencies, 0.50)),
        p95=rounded_ms(compute_percentile(latencies, 0.95)),
        p99=rounded_ms(compute_percentile(latencies, 0.99)),
        mempool=mempool,
        backlog_growth_tx_per_s=round(
            compute_backlog_growth(submit_s, committed_s, window_end_s), 1),
        submit_lag_ms_p99=summary.get("submit_lag_ms_p99"),
        txs_offered=len(columns["code"]), txs_acknowledged=len(acked),
        txs_committed=len(done), refused=len(sent) - len(acked),
        missing=len(acked) - len(done), seconds=round(seconds, 2))
    return judge_step(step)


def rounded_ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ------------------------------------------------------------------------------ the search


Measure = Callable[[float], StepResult]


def search_max_rate(measure: Measure, start_rate: float, *, factor: float = RATE_STEP_FACTOR,
                    steps_max: int = SEARCH_STEPS_MAX,
                    refine_steps: int = REFINE_STEPS) -> list[StepResult]:
    """Step the offered rate to find the highest sustained one; return the steps in order.

    Doubling (by `factor`) from `start_rate` while sustained (keeping `refine_steps` steps
    back); if the first rate already fails, halving until one holds. Then the last sustained
    and the first failing rates are bisected geometrically with the steps left, until their
    ratio is within `RATE_RESOLUTION`. At most `steps_max` steps in all.
    """
    if start_rate <= 0 or factor <= 1 or steps_max < 1:
        raise LocalError("the search needs a positive start rate, a factor above 1 and a step")
    steps: list[StepResult] = []
    good: float | None = None
    bad: float | None = None
    rate = start_rate
    while len(steps) < steps_max - refine_steps or (len(steps) < steps_max and good is None):
        step = measure(rate)
        steps.append(step)
        if step.sustained:
            good = rate
            if bad is not None:
                break
            rate *= factor
        else:
            bad = rate
            if good is not None:
                break
            rate /= factor
    while good is not None and bad is not None and len(steps) < steps_max:
        if bad / good <= RATE_RESOLUTION:
            break
        rate = math.sqrt(good * bad)
        step = measure(rate)
        steps.append(step)
        if step.sustained:
            good = rate
        else:
            bad = rate
    return steps


def find_best_step(steps: Sequence[StepResult]) -> StepResult | None:
    """Return the sustained step with the highest committed rate (None if none held)."""
    held = [step for step in steps if step.sustained]
    return max(held, key=lambda step: step.committed) if held else None


def compute_start_rate(bound: float) -> float:
    return max(RATE_START_MIN_TX_PER_S, bound / RATE_START_BOUND_DIVISOR)


# ------------------------------------------------------------------------------ the report


@dataclass
class ExactlyOnce:
    """Every acknowledged tx in one block, every node with the same blocks."""

    acknowledged: int = 0
    committed_once: int = 0
    missing: int = 0
    duplicated: int = 0
    forked_heights: int = 0
    first_height: int = 0
    last_height: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.forked_heights == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "mismatches": self.mismatches[:10]}


def compose_report(*, verify: VerifyRate, validators: int, tx_kind: str, tx_bytes: int,
                   steps: Sequence[StepResult], latency: StepResult | None,
                   check: ExactlyOnce, config: dict[str, Any],
                   load_average: dict[str, list[float]]) -> dict[str, Any]:
    """Return the run's JSON: the headline figures first, then every step."""
    bound = verify.compute_bound(validators)
    best = find_best_step(steps)
    tps_max = best.committed if best is not None else 0.0
    return {
        "version": REPORT_VERSION,
        "tx_kind": tx_kind,
        "tps_max": tps_max,
        "latency": {
            "offered": latency.offered if latency else None,
            "committed": latency.committed if latency else None,
            "p50": latency.p50 if latency else None,
            "p95": latency.p95 if latency else None,
            "p99": latency.p99 if latency else None,
            "txs": latency.txs_committed if latency else 0,
        },
        "bound": round(bound, 1),
        "ratio": round(tps_max / bound, 4) if bound > 0 else 0.0,
        "verify_rate_per_core": verify.per_core,
        "verify_rate_all_cores": verify.all_cores,
        "validators": validators,
        "cores": verify.cores,
        "tx_bytes": tx_bytes,
        "heights": {"first": check.first_height, "last": check.last_height,
                    "blocks": max(0, check.last_height - check.first_height + 1)
                    if check.last_height else 0},
        "exactly_once": check.to_json(),
        "steps": [step.to_json() for step in steps],
        "latency_step": latency.to_json() if latency else None,
        "config": config,
        "load_average": load_average,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


# ------------------------------------------------------------------------------ the network


@dataclass(frozen=True)
class SuiteOptions:
    validators: int = 4
    duration_s: float = 120.0
    tx_kind: str = "notary"
    home: Path | None = None
    commit_pause_ms: int | None = None
    tx_bytes: int | None = None

    def check(self) -> None:
        if self.tx_kind not in TX_KINDS:
            raise LocalError(f"--tx-kind must be one of {', '.join(TX_KINDS)}")
        self.compute_metadata(BENCH_CHAIN_ID)
        if not 1 <= self.validators <= 16:
            raise LocalError("--validators must be 1..16")
        if self.duration_s < 5:
            raise LocalError("--duration must be at least 5 s")

    def compute_metadata(self, chain_id: str) -> dict[str, str] | None:
        """Return the metadata that pads an anchor on `chain_id` to `tx_bytes` (None: bare)."""
        if self.tx_bytes is None:
            return None
        return compute_padding_metadata(self.tx_bytes, chain_id)

    @property
    def step_s(self) -> float:
        return max(STEP_S_MIN, self.duration_s * (1 - LATENCY_SHARE) / SEARCH_STEPS_MAX)

    @property
    def latency_s(self) -> float:
        return max(STEP_S_MIN, self.duration_s * LATENCY_SHARE)


class NetworkDriver:
    """Runs steps against a local network: signs, loads, samples, settles, remembers."""

    def __init__(self, network: LocalNetwork, signer_groups: list[list[SigningKey]],
                 workdir: Path, progress: Progress, note: Note,
                 metadata: dict[str, str] | None = None):
        if not signer_groups or not all(signer_groups):
            raise LocalError("the benchmark needs keys holding the notary.issuer role")
        self.network = network
        self.signer_groups = signer_groups
        self.workdir = workdir
        self.progress = progress
        self.note = note
        self.runs = 0
        self.acknowledged: set[str] = set()
        self.first_height: int | None = None
        self.metadata = metadata
        self.signed_txs = 0
        self.signed_bytes = 0

    @property
    def tx_bytes(self) -> int:
        """Return the mean encoded size of the txs signed so far."""
        return round(self.signed_bytes / self.signed_txs) if self.signed_txs else 0

    def get_status(self, index: int) -> dict[str, Any] | None:
        """Ask node `index` directly (it may be a process this run did not start)."""
        try:
            return self.network.clients[index].get_status()
        except (NodeUnavailable, RemoteError, ValueError, OSError):
            return None

    def get_statuses(self) -> list[dict[str, Any]]:
        return [status for index in range(self.network.size)
                if (status := self.get_status(index)) is not None]

    def get_tip(self) -> int:
        statuses = self.get_statuses()
        if not statuses:
            raise LocalError(f"no node answers\n{self.network.describe()}")
        return max(int(status["height"]) for status in statuses)

    def sign_load(self, count: int) -> list[bytes]:
        """Sign `count` anchors for the next run with its own signer group."""
        group = self.signer_groups[self.runs % len(self.signer_groups)]
        client = self.network.clients[0]
        nonces = [client.get_next_nonce(key.public_key) for key in group]
        txs = presign_anchors(group, self.network.chain_id, count, self.progress, nonces,
                              metadata=self.metadata)
        self.signed_txs += len(txs)
        self.signed_bytes += sum(len(raw) for raw in txs)
        return txs

    def measure(self, rate: float, seconds: float, label: str) -> StepResult:
        """Offer `rate` tx/s for `seconds`, drain, let the mempools empty; judge the step."""
        count = max(STEP_TXS_MIN, math.ceil(rate * seconds))
        txs = self.sign_load(count)
        run_dir = self.workdir / f"run-{self.runs:02d}"
        run_dir.mkdir()
        self.runs += 1
        write_tx_file(run_dir / "load.txs", txs)
        from_height = self.get_tip() + 1
        if self.first_height is None:
            self.first_height = from_height
        out = run_dir / "load.json"
        drain_max_s = max(STEP_DRAIN_MIN_S, seconds)
        started = time.monotonic()
        mempool = 0
        self.progress(label, 0, count)
        with running_load(self.network, run_dir / "load.txs", out, rate_tx_per_s=rate,
                          batch_txs=LOAD_BATCH_TXS, drain_idle_s=STEP_DRAIN_IDLE_S,
                          drain_max_s=drain_max_s, from_height=from_height) as process:
            while process.poll() is None:
                elapsed = time.monotonic() - started
                self.progress(label, min(count, int(elapsed * rate)), count)
                statuses = self.get_statuses()
                mempool = max([mempool, *(int(status["mempool_txs"]) for status in statuses)])
                time.sleep(STATUS_SAMPLE_S)
            budget_s = seconds + drain_max_s + 60.0
            report = read_load_report(out, process, budget_s)
        self.progress(label, count, count)
        columns = report["txs"]
        self.acknowledged.update(hash_hex for hash_hex, code
                                 in zip(columns["hash"], columns["code"], strict=True)
                                 if code in ACKNOWLEDGED_CODES)
        step = summarize_step(report, rate, mempool, time.monotonic() - started)
        self.settle()
        rounds = self.get_commit_rounds(from_height, self.get_tip())
        return replace(step, heights=len(rounds),
                       later_round_heights=sum(1 for round_ in rounds if round_ > 0))

    def get_commit_rounds(self, first: int, last: int) -> list[int]:
        """Return the round each height from `first` to `last` was committed in (node 0)."""
        rounds = []
        for height in range(first, last + 1):
            try:
                commit = self.network.clients[0].get_json(f"/v1/blocks/{height}")["commit"]
            except (NodeUnavailable, RemoteError, KeyError, TypeError):
                continue  # a figure for the report only: a height we cannot read is skipped
            if commit is not None:
                rounds.append(int(commit["round"]))
        return rounds

    def settle(self) -> int:
        """Wait until every answering node's mempool is empty (or stops shrinking); return
        what is left."""
        deadline = time.monotonic() + SETTLE_MAX_S
        left = 0
        while time.monotonic() < deadline:
            left = max([0, *(int(status["mempool_txs"]) for status in self.get_statuses())])
            if left == 0:
                return 0
            time.sleep(SETTLE_POLL_S)
        self.note(f"note: {left} txs still in a mempool after {SETTLE_MAX_S:.0f} s")
        return left

    def check_exactly_once(self) -> ExactlyOnce:
        """Read the run's heights from every node: count our txs, compare the blocks."""
        check = ExactlyOnce(acknowledged=len(self.acknowledged))
        first = self.first_height or 1
        heights = {index: int(status["height"]) for index in range(self.network.size)
                   if (status := self.get_status(index)) is not None}
        if not heights:
            raise LocalError(f"no node answers\n{self.network.describe()}")
        indexes = sorted(heights)
        last = min(heights.values())
        check.first_height, check.last_height = first, last
        seen: dict[str, int] = {}
        for height in range(first, last + 1):
            self.progress("checking", height - first + 1, last - first + 1)
            digests = [self.network.get_block_digest(index, height) for index in indexes]
            for tx_hash in digests[0].txs:
                if tx_hash in self.acknowledged:
                    seen[tx_hash] = seen.get(tx_hash, 0) + 1
            for index, digest in zip(indexes[1:], digests[1:], strict=True):
                if digest != digests[0]:
                    check.mismatches.append(f"height {height}: node-{index} differs from "
                                            f"node-{indexes[0]}")
        check.forked_heights = len({line.split(":")[0] for line in check.mismatches})
        check.committed_once = sum(1 for count in seen.values() if count == 1)
        check.duplicated = sum(1 for count in seen.values() if count > 1)
        check.missing = len(self.acknowledged) - len(seen)
        return check


# ------------------------------------------------------------------------------ setting up


def save_issuer_keys(devnet: Devnet, keys: Sequence[SigningKey]) -> None:
    """Keep the bench issuers' keys in the devnet's keys/ so a later run can attach."""
    for index, key in enumerate(keys):
        key.save(devnet.keys_dir / f"bench-issuer-{index:04d}.key")


def load_issuer_keys(devnet: Devnet) -> list[SigningKey]:
    """Return the devnet's keys that hold notary.issuer: the operator's and bench issuers'."""
    roles = Genesis.load(devnet.root / "genesis.json").roles
    issuers = set(roles.get("notary.issuer", ()))
    paths = [devnet.keys_dir / f"{OPERATOR_KEY_NAME}.key",
             *sorted(devnet.keys_dir.glob("bench-issuer-*.key"))]
    keys = [SigningKey.load(path) for path in paths if path.exists()]
    return [key for key in keys if key.public_key in issuers]


def group_keys(keys: Sequence[SigningKey], size: int) -> list[list[SigningKey]]:
    """Split keys into groups of `size` (one group if there are fewer than two groups' worth)."""
    if len(keys) < 2 * size:
        return [list(keys)]
    return [list(keys[start:start + size]) for start in range(0, len(keys) - size + 1, size)]


@contextlib.contextmanager
def open_network(options: SuiteOptions, note: Note) -> Iterator[LocalNetwork]:
    """Yield a running network: fresh (in a temp dir or a new `home`) or the devnet in `home`.

    Nodes this run starts are stopped at the end; nodes that were already running are left
    running.
    """
    root = options.home
    temporary = root is None
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="seoulchain-bench-"))
    network: LocalNetwork | None = None
    try:
        if is_devnet(root):
            devnet = Devnet(root)
            network = LocalNetwork(devnet, load_issuer_keys(devnet))
            note(f"attached to the devnet in {root} ({network.size} validators, "
                 f"{len(network.issuers)} issuer keys)")
        else:
            if root.exists() and any(root.iterdir()):
                raise LocalError(f"{root} is neither a devnet nor empty")
            network = create_bench_network(root, options)
            save_issuer_keys(network.devnet, network.issuers)
        start_missing_nodes(network)
        yield network
    finally:
        if network is not None:
            network.stop_all()
            network.close()
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def create_bench_network(root: Path, options: SuiteOptions) -> LocalNetwork:
    """A fresh devnet whose genesis gives each planned run a group of issuer keys."""
    runs = SEARCH_STEPS_MAX + 1

    def configure(index: int, config: NodeConfig) -> None:
        if options.commit_pause_ms is not None:
            config.chain.commit_pause_ms = options.commit_pause_ms

    return LocalNetwork.create(root, options.validators, issuers=BENCH_SIGNERS * runs,
                               chain_id=BENCH_CHAIN_ID, configure=configure)


def start_missing_nodes(network: LocalNetwork) -> None:
    """Start every node that does not answer; refuse a devnet that is only partly up."""
    answering = []
    for index in range(network.size):
        try:
            network.clients[index].get_status()
            answering.append(index)
        except (NodeUnavailable, RemoteError, ValueError, OSError):
            pass
    if answering and len(answering) < network.size:
        raise LocalError(f"only nodes {answering} of the devnet answer; start or stop all")
    if answering:
        return
    network.start_all()
    network.wait_until(lambda: all(network.get_status(index) is not None
                                   for index in range(network.size)),
                       NETWORK_START_TIMEOUT_S, "every node's API")
    if network.size > 1:
        # A lone validator makes no empty blocks; a network's first block shows consensus.
        network.wait_for_height(1, timeout_s=NETWORK_START_TIMEOUT_S)


# ------------------------------------------------------------------------------ the run


def run_suite(options: SuiteOptions, progress: Progress = noop_progress,
              note: Note = noop_note) -> dict[str, Any]:
    """Measure the bound, search the highest sustained rate, time latency at half of it."""
    options.check()
    load_average = {"start": [round(value, 2) for value in os.getloadavg()]}
    sample = presign_anchors([SigningKey.generate()], VERIFY_SAMPLE_CHAIN_ID, 1, noop_progress,
                             metadata=options.compute_metadata(VERIFY_SAMPLE_CHAIN_ID))
    verify = measure_verify_rate(sample[0])
    bound = verify.compute_bound(options.validators)
    note(f"Ed25519 verify: {verify.per_core:,.0f}/s on one core, {verify.all_cores:,.0f}/s "
         f"on {verify.cores} threads; bound {bound:,.0f} tx/s for {options.validators} "
         f"validators")
    with open_network(options, note) as network, \
            tempfile.TemporaryDirectory(prefix="seoulchain-bench-load-") as workdir:
        groups = group_keys(network.issuers, BENCH_SIGNERS)
        driver = NetworkDriver(network, groups, Path(workdir), progress, note,
                               options.compute_metadata(network.chain_id))

        def measure(rate: float) -> StepResult:
            step = driver.measure(rate, options.step_s, f"step {len(steps) + 1}: "
                                                        f"{rate:,.0f} tx/s")
            steps.append(step)
            note(describe_step(step))
            return step

        steps: list[StepResult] = []
        search_max_rate(measure, compute_start_rate(bound))
        best = find_best_step(steps)
        latency_rate = (best.committed if best else steps[0].offered / RATE_STEP_FACTOR) / 2
        latency = driver.measure(latency_rate, options.latency_s,
                                 f"latency at {latency_rate:,.0f} tx/s")
        note(f"latency run: {describe_step(latency)}")
        check = driver.check_exactly_once()
        pause = network.load_config(0).chain.commit_pause_ms
    load_average["end"] = [round(value, 2) for value in os.getloadavg()]
    config = {"duration_s": options.duration_s, "step_s": round(options.step_s, 2),
              "latency_s": round(options.latency_s, 2), "commit_pause_ms": pause,
              "home": None if options.home is None else str(options.home),
              "latency_p99_ms_max": LATENCY_P99_MS_MAX, "batch_txs": LOAD_BATCH_TXS,
              "tx_bytes_target": options.tx_bytes}
    return compose_report(verify=verify, validators=network.size, tx_kind=options.tx_kind,
                          tx_bytes=driver.tx_bytes, steps=steps, latency=latency,
                          check=check, config=config, load_average=load_average)


def describe_step(step: StepResult) -> str:
    verdict = "sustained" if step.sustained else f"not sustained ({step.reason})"
    return (f"offered {step.offered:,.0f} tx/s: committed {step.committed:,.0f} tx/s, "
            f"p50 {step.p50} ms, p99 {step.p99} ms, mempool max {step.mempool}, "
            f"{step.heights} heights ({step.later_round_heights} past round 0): {verdict}")


# ------------------------------------------------------------------------------ the plot


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Draw offered vs committed rate and latency per step into a PNG (needs matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise LocalError("--plot needs matplotlib: pip install 'seoulchain[plot]'") from exc
    steps = sorted(report["steps"], key=lambda step: step["offered"])
    offered = [step["offered"] for step in steps]
    figure, (rates, latency) = plt.subplots(1, 2, figsize=(11, 4.5))
    rates.plot(offered, [step["committed"] for step in steps], "o-", label="committed")
    rates.plot(offered, offered, ":", color="grey", label="offered = committed")
    rates.axhline(report["tps_max"], color="green", linestyle="--",
                  label=f"tps_max {report['tps_max']:,.0f}")
    rates.set(xlabel="offered tx/s", ylabel="committed tx/s", xscale="log", yscale="log",
              title=f"{report['validators']} validators, bound {report['bound']:,.0f} tx/s")
    rates.legend()
    for name in ("p50", "p95", "p99"):
        latency.plot(offered, [step[name] for step in steps], "o-", label=name)
    run = report.get("latency_step")
    if run and run["p99"] is not None:
        latency.plot([run["offered"]] * 3, [run["p50"], run["p95"], run["p99"]], "k*",
                     markersize=10, label="latency run (p50, p95, p99)")
    latency.axhline(LATENCY_P99_MS_MAX, color="red", linestyle="--", label="p99 limit")
    latency.set(xlabel="offered tx/s", ylabel="submit -> commit, ms", xscale="log",
                yscale="log", title="finality latency")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
