"""`seoulchain sim`: run the deterministic fault simulator over many seeds, or replay one.

Each failing seed prints one line with the exact command that replays it; the last line is
always `seeds=N violations=V liveness_failures=L`. With `--canary`, honest validators ignore
their locks and the lock-split adversary attacks: the checkers must catch the resulting
forks, and the run fails if they catch fewer than `CANARY_DETECTION_MIN` of the seeds.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from seoulchain.cli.common import console, err_console
from seoulchain.errors import LocalError
from seoulchain.sim.campaign import SeedResult, run_seed

# The canary must be caught on nearly every seed; below this share the checkers are broken.
CANARY_DETECTION_MIN = 0.8
# Campaigns shorter than this run without a progress bar.
PROGRESS_SEEDS_MIN = 10


def sim(
    seeds: Annotated[int, typer.Option(help="How many seeds to run.", min=1)] = 100,
    validators: Annotated[int | None, typer.Option(
        help="Validators per cluster (default: drawn per seed from 1, 4, 5, 7).", min=1,
        max=150)] = None,
    seed: Annotated[int | None, typer.Option(
        help="Run (replay) only this seed, with details.")] = None,
    byzantine: Annotated[int | None, typer.Option(
        help="Byzantine validators per cluster, at most f = (n-1)//3 (default: drawn).",
        min=0)] = None,
    canary: Annotated[bool, typer.Option(
        help="Validators ignore their locks (unsafe) under the lock-split attack; "
             "report how often the checkers catch it.")] = False,
    start: Annotated[int, typer.Option(help="First seed of the campaign.", min=0)] = 0,
) -> None:
    """Run the deterministic fault simulator: safety under faults, then liveness after them."""
    seed_list = range(seed, seed + 1) if seed is not None else range(start, start + seeds)
    try:
        results = run_seeds(seed_list, validators, byzantine, canary, verbose=seed is not None)
    except LocalError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    raise typer.Exit(summarise(results, canary))


def run_seeds(seeds: range, validators: int | None, byzantine: int | None, canary: bool,
              *, verbose: bool) -> tuple[list[SeedResult], float]:
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
            result = run_seed(current, validators, byzantine, canary)
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
