"""`seoulchain sim`: run the deterministic fault simulator over many seeds, or replay one;
`seoulchain sim scale`: throughput and finality against the number of validators.

Each failing seed prints one line with the exact command that replays it; the last line is
always `seeds=N violations=V liveness_failures=L`. With `--canary`, honest validators ignore
their locks and the lock-split adversary attacks: the checkers must catch the resulting
forks, and the run fails if they catch fewer than `CANARY_DETECTION_MIN` of the seeds.

`scale` gives every validator its own machine with the modelled CPU costs of
`seoulchain.sim.costs` and searches, for each validator count, the highest sustained
rate; it prints one row per count (tps_max, finality at half of it, the model's bound).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from seoulchain.cli.common import console, err_console, finite_float
from seoulchain.errors import LocalError
from seoulchain.ledger.types import VALIDATORS_MAX
from seoulchain.sim.campaign import SeedResult, run_seed
from seoulchain.sim.costs import CpuCosts
from seoulchain.sim.scale import (
    SEARCH_STEPS_DEFAULT,
    ScaleResult,
    StepResult,
    search_tps_max,
)

# The canary must be caught on nearly every seed; below this share the checkers are broken.
CANARY_DETECTION_MIN = 0.8
# Campaigns shorter than this run without a progress bar.
PROGRESS_SEEDS_MIN = 10
# `sim scale` defaults: the validator counts of the issue and a LAN's one-way latency.
SCALE_VALIDATORS_DEFAULT = "4,7,10,16,25"
SCALE_LATENCY_MS_DEFAULT = 1
# Steps at least this long let a near-capacity pipeline settle (docs/simulation.md); the
# default, so the default figures are right. Every simulated node really verifies and
# executes every tx, so real CPU grows as validators x rate x duration: the default run
# takes about 20 minutes, and shorter steps (a conservative tps_max) proportionally less.
SCALE_SETTLED_DURATION_MS = 6000
SCALE_DURATION_S_DEFAULT = SCALE_SETTLED_DURATION_MS / 1000
# Validators in one simulated cluster of the campaign (the CLI's old bound).
CAMPAIGN_VALIDATORS_MAX = 150


class SimMode(enum.StrEnum):
    """What `seoulchain sim` runs besides the default fault campaign."""

    SCALE = "scale"


def sim(
    mode: Annotated[SimMode | None, typer.Argument(
        help="scale: throughput and finality against validators, with modelled CPU costs "
             "(default: the fault campaign).", show_default=False)] = None,
    seeds: Annotated[int, typer.Option(help="How many seeds to run.", min=1)] = 100,
    validators: Annotated[str | None, typer.Option(
        help="Validators per cluster (default: drawn per seed from 1, 4, 5, 7); for scale, "
             f"a comma-separated list (default {SCALE_VALIDATORS_DEFAULT}).",
        show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(
        help="Run (replay) only this seed, with details.")] = None,
    byzantine: Annotated[int | None, typer.Option(
        help="Byzantine validators per cluster, at most f = (n-1)//3 (default: drawn).",
        min=0)] = None,
    canary: Annotated[bool, typer.Option(
        help="Validators ignore their locks (unsafe) under the lock-split attack; "
             "report how often the checkers catch it.")] = False,
    start: Annotated[int, typer.Option(help="First seed of the campaign.", min=0)] = 0,
    empty_blocks_interval_ms: Annotated[int | None, typer.Option(
        help="Run validators with create_empty_blocks off and this proof-of-life interval "
             "(virtual ms; default: an empty block every commit pause).",
        min=1, max=60_000, show_default=False)] = None,
    latency_ms: Annotated[int, typer.Option(
        help="scale: one-way network latency between validators (virtual ms).",
        min=0, max=10_000)] = SCALE_LATENCY_MS_DEFAULT,
    duration_s: Annotated[float, typer.Option(
        help="scale: virtual seconds of load per step (0.1 to 600).",
        parser=finite_float(0.1, 600))] = SCALE_DURATION_S_DEFAULT,
    steps: Annotated[int, typer.Option(
        help="scale: load steps per validator count (the search), before the latency step.",
        min=1, max=20)] = SEARCH_STEPS_DEFAULT,
    json_file: Annotated[Path | None, typer.Option(
        "--json-out", help="scale: also write every step and result to this JSON file.")] = None,
) -> None:
    """Run the deterministic fault simulator: safety under faults, then liveness after them;
    or, with `scale`, throughput and latency against the number of validators."""
    try:
        if mode == SimMode.SCALE:
            counts = parse_validator_counts(validators or SCALE_VALIDATORS_DEFAULT)
            run_scale(counts, latency_ms, round(duration_s * 1000), steps, json_file)
            return
        count = None if validators is None else parse_validator_count(validators)
        seed_list = range(seed, seed + 1) if seed is not None else range(start, start + seeds)
        results = run_seeds(seed_list, count, byzantine, canary, verbose=seed is not None,
                            empty_blocks_interval_ms=empty_blocks_interval_ms)
    except LocalError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    raise typer.Exit(summarise(results, canary))


def parse_validator_count(text: str) -> int:
    """Return the campaign's `--validators`: one count, 1..CAMPAIGN_VALIDATORS_MAX."""
    try:
        count = int(text)
    except ValueError:
        raise LocalError(f"--validators must be a number, not {text!r}") from None
    if not 1 <= count <= CAMPAIGN_VALIDATORS_MAX:
        raise LocalError(f"--validators must be 1..{CAMPAIGN_VALIDATORS_MAX}")
    return count


def parse_validator_counts(text: str) -> list[int]:
    """Return scale's `--validators`: comma-separated counts, each 1..VALIDATORS_MAX."""
    try:
        counts = [int(item) for item in text.split(",")]
    except ValueError:
        raise LocalError(f"--validators must be comma-separated numbers, not {text!r}") from None
    if not all(1 <= count <= VALIDATORS_MAX for count in counts):
        raise LocalError(f"each validator count must be 1..{VALIDATORS_MAX}")
    return counts


def run_seeds(seeds: range, validators: int | None, byzantine: int | None, canary: bool,
              *, verbose: bool, empty_blocks_interval_ms: int | None = None,
              ) -> tuple[list[SeedResult], float]:
    """Run every seed with a progress bar, printing each failing seed as it is found."""
    results: list[SeedResult] = []
    started = time.perf_counter()
    progress = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.fields[failures]} failing"),
                        console=err_console, transient=True,
                        disable=len(seeds) < PROGRESS_SEEDS_MIN)
    with progress:
        task = progress.add_task("seeds", total=len(seeds), failures=0)
        for current in seeds:
            result = run_seed(current, validators, byzantine, canary, empty_blocks_interval_ms)
            results.append(result)
            if verbose:
                print_details(result)
            if is_failing(result, canary):
                console.print(describe_failure(result, canary), highlight=False, soft_wrap=True)
            progress.update(task, advance=1,
                            failures=sum(1 for item in results if is_failing(item, canary)))
    return results, time.perf_counter() - started


def is_failing(result: SeedResult, canary: bool) -> bool:
    """A seed fails if something broke, or, for the canary, if the checkers missed it."""
    return not result.violations if canary else result.failed


def describe_failure(result: SeedResult, canary: bool) -> str:
    """Return the one line printed for a failing seed, ending with its replay command."""
    if canary:
        what = "canary not caught"
    elif result.violations:
        what = result.violations[0]
    else:
        what = f"liveness: {result.liveness_failure}"
    return f"FAIL seed={result.seed} {what} | replay: {result.replay_command}"


def print_details(result: SeedResult) -> None:
    """Print everything about one seed's run (for `--seed`)."""
    console.print(f"seed {result.seed}: {result.plan.describe()}", highlight=False)
    console.print(f"  reached height {result.height} in {result.virtual_ms} virtual ms, "
                  f"{result.items} events, {result.wall_s:.2f} s; liveness phase "
                  f"{result.liveness_ms} ms; trace {result.trace_digest[:16]}", highlight=False)
    for violation in result.violations:
        console.print(f"  violation: {violation}", highlight=False)
    if result.liveness_failure:
        console.print(f"  liveness: {result.liveness_failure}", highlight=False)


def summarise(outcome: tuple[list[SeedResult], float], canary: bool) -> int:
    """Print the rates and the summary line; return the exit status."""
    results, wall_s = outcome
    violations = sum(1 for result in results if result.violations)
    liveness_failures = sum(1 for result in results if result.liveness_failure)
    heights = sum(result.height for result in results)
    console.print(f"simulated heights/s: {heights / max(wall_s, 1e-9):.1f} "
                  f"({heights} heights in {wall_s:.1f} s)", highlight=False)
    if canary:
        caught = sum(1 for result in results if result.violations)
        rate = caught / len(results)
        console.print(f"canary detection rate: {caught}/{len(results)} = {rate:.0%}",
                      highlight=False)
        failed = rate < CANARY_DETECTION_MIN
    else:
        failed = violations > 0 or liveness_failures > 0
    console.print(f"seeds={len(results)} violations={violations} "
                  f"liveness_failures={liveness_failures}", highlight=False)
    return 1 if failed else 0


# ---------------------------------------------------------------------------- sim scale


def run_scale(counts: list[int], latency_ms: int, duration_ms: int, steps: int,
              json_file: Path | None) -> list[ScaleResult]:
    """Search tps_max for each validator count, printing each step, then the table."""
    costs = CpuCosts()
    started = time.perf_counter()
    err_console.print(f"modelled costs (µs): {describe_costs(costs)}; bound "
                      f"{costs.compute_bound_tps():,.0f} tx/s; latency {latency_ms} ms; "
                      f"{duration_ms / 1000:g} s of load per step", highlight=False)
    results: list[ScaleResult] = []
    for position, count in enumerate(counts, 1):
        err_console.print(f"{count} validators ({position} of {len(counts)}): {steps} steps "
                          f"and the latency step", highlight=False)
        results.append(search_tps_max(count, costs=costs, latency_ms=latency_ms,
                                      duration_ms=duration_ms, steps=steps,
                                      on_step=print_step))
    wall_s = time.perf_counter() - started
    console.print(make_scale_table(results, latency_ms))
    if duration_ms < SCALE_SETTLED_DURATION_MS:
        console.print(f"note: near capacity the block pipeline takes seconds to settle; steps "
                      f"of {duration_ms / 1000:g} s make tps_max conservative (docs/simulation.md "
                      f"uses --duration-s {SCALE_SETTLED_DURATION_MS // 1000})", highlight=False)
    console.print(f"wall time {wall_s:.0f} s", highlight=False)
    if json_file is not None:
        document = {"costs": dataclasses.asdict(costs), "latency_ms": latency_ms,
                    "duration_ms": duration_ms, "steps": steps, "wall_s": wall_s,
                    "results": [result.to_json() for result in results]}
        json_file.write_text(json.dumps(make_json_safe(document), indent=2, allow_nan=False)
                             + "\n")
    return results


def describe_costs(costs: CpuCosts) -> str:
    return ", ".join(f"{name.removesuffix('_us')} {value}"
                     for name, value in dataclasses.asdict(costs).items())


def print_step(step: StepResult) -> None:
    """Print one load step as it finishes (progress, on stderr)."""
    verdict = "ok" if step.sustained else f"fail: {step.reason}"
    err_console.print(
        f"  n={step.validators:<3} offered {step.offered_tps:>6,} tx/s -> committed "
        f"{step.committed_tps:>7,.0f}, p50 {format_ms(step.p50_ms)}, p99 "
        f"{format_ms(step.p99_ms)}, {step.heights} heights, busiest node "
        f"{step.busiest_node_share:.0%} busy, {verdict} ({step.wall_s:.1f} s)", highlight=False)


def format_ms(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:,.0f} ms"


def make_scale_table(results: list[ScaleResult], latency_ms: int) -> Table:
    """One row per validator count: tps_max, finality at half of it, the model's bound."""
    table = Table(title=f"sim scale: one machine per validator, {latency_ms} ms latency")
    for header in ("validators", "tps_max", "p50 at tps_max/2", "p99 at tps_max/2",
                   "bound (model)", "steps", "wall"):
        table.add_column(header, justify="right")
    for result in results:
        latency = result.latency
        table.add_row(str(result.validators), f"{result.tps_max:,.0f}",
                      "-" if latency is None else format_ms(latency.p50_ms),
                      "-" if latency is None else format_ms(latency.p99_ms),
                      f"{result.bound_tps:,.0f}", str(len(result.steps)),
                      f"{result.wall_s:.0f} s")
    return table


def make_json_safe(value: Any) -> Any:
    """Replace non-finite floats (a step that never committed) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: make_json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [make_json_safe(item) for item in value]
    return value
