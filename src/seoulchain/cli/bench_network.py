"""`seoulchain bench network`: validators as local processes under open-loop load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from seoulchain.cli.common import console, err_console, finite_float, reports_errors
from seoulchain.cli.network import ConsensusEngine, EngineOption
from seoulchain.errors import LocalError

if TYPE_CHECKING:
    from seoulchain.bench.network import NetworkBenchResult, OtherEngine

# Far above what a loopback network commits (docs/performance.md): a typo, not a load.
RATE_TX_PER_S_MAX = 1_000_000.0


@reports_errors
def bench_network(
        validators: Annotated[int, typer.Option(help="Validators, each its own process.")] = 4,
        txs: Annotated[int, typer.Option(
            help="Pre-signed txs to offer: notary anchors, or the --mix load (0: no load "
                 "run).")] = 20_000,
        rate: Annotated[float, typer.Option(
            help="Offered load, tx/s (open loop).",
            parser=finite_float(0, RATE_TX_PER_S_MAX, low_open=True))] = 300.0,
        batch: Annotated[int, typer.Option(help="Transactions per batch request.")] = 50,
        mix: Annotated[str | None, typer.Option(
            help="Offer this mix of city services (bench/mix.py: city) instead of notary "
                 "anchors; its roles are granted in genesis, its setup commits untimed.")]
        = None,
        commit_pause_ms: Annotated[int | None, typer.Option(
            help="Override the chain commit_pause_ms (default: the node default).")] = None,
        catch_up_blocks: Annotated[int, typer.Option(
            help="Also time a validator with an empty disk syncing this many blocks "
                 "(0: skip; building them takes minutes).")] = 0,
        keep: Annotated[Path | None, typer.Option(
            help="Keep the devnet, load and reports in this fresh directory.")] = None,
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Also write the figures to this JSON file.")] = None,
        engine: EngineOption = ConsensusEngine.BUILTIN,
) -> None:
    """Four validators on loopback: committed tx/s and commit latency under offered load."""
    from seoulchain.bench.mix import check_mix
    from seoulchain.bench.network import run_catchup_bench, run_network_bench

    if mix is not None:
        check_mix(mix)
    if validators < 1 or txs < 0 or rate <= 0 or catch_up_blocks < 0:
        raise LocalError("--validators and --rate must be positive, --txs and "
                         "--catch-up-blocks at least 0")
    if txs == 0 and catch_up_blocks == 0:
        raise LocalError("nothing to measure: give --txs or --catch-up-blocks")
    result = catch_up = None
    with Progress(console=err_console) as bar:
        tasks: dict[str, object] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

        if txs:
            result = run_network_bench(validators=validators, txs=txs, rate_tx_per_s=rate,
                                       batch_txs=batch, commit_pause_ms=commit_pause_ms,
                                       directory=keep / "load" if keep else None, mix=mix,
                                       engine=load_engine(engine), progress=on_progress)
        if catch_up_blocks:
            catch_up = run_catchup_bench(blocks=catch_up_blocks, validators=validators,
                                         directory=keep / "catch-up" if keep else None,
                                         progress=on_progress)
    figures: dict[str, object] = {}
    if result is not None:
        print_load_result(result)
        figures["load"] = result.to_json()
    if catch_up is not None:
        console.print(f"catch-up: a validator with an empty disk synced "
                      f"{catch_up.blocks_behind} blocks in {catch_up.catch_up_s} s "
                      f"({catch_up.sync_blocks_per_s:,.0f} blocks/s; API up after "
                      f"{catch_up.start_to_api_s} s; fsync {catch_up.fsync_ms_before} ms "
                      f"before, {catch_up.fsync_ms_after} ms after)", highlight=False)
        figures["catch_up"] = catch_up.to_json()
    if json_file is not None:
        json_file.write_text(json.dumps(figures, indent=2) + "\n")
    if result is not None and not (result.is_exactly_once and result.is_all_ok):
        raise typer.Exit(2)


def load_engine(engine: ConsensusEngine) -> OtherEngine | None:
    """Return the benchmark's driver of `engine`; None for the built-in engine."""
    if engine is ConsensusEngine.BUILTIN:
        return None
    from seoulchain.bench.cometbft import COMETBFT

    return COMETBFT


def print_load_result(result: NetworkBenchResult) -> None:
    load = "txs" if result.mix is None else f"txs of the {result.mix} mix"
    engine = "" if result.engine == "builtin" else f" under {result.engine}"
    console.print(
        f"{result.validators} validators{engine}, {result.txs_offered} {load} offered at "
        f"{result.rate_offered_tx_per_s:,.0f} tx/s: {result.txs_committed} committed in "
        f"{result.blocks} blocks, {result.committed_tx_per_s:,.0f} tx/s; commit latency "
        f"p50 {result.latency_ms_p50} ms, p99 {result.latency_ms_p99} ms "
        f"(commit pause {result.commit_pause_ms} ms)", highlight=False)
    verdict = "[green]yes[/green]" if result.is_exactly_once else "[red]NO[/red]"
    console.print(f"every acknowledged tx committed exactly once, one chain on every node: "
                  f"{verdict} ({result.txs_acknowledged_not_committed} missing, "
                  f"{result.txs_committed_more_than_once} repeated, {result.forks} forked "
                  f"heights)", highlight=False)
    if not result.is_all_ok:
        failed = ", ".join(f"{count} {code}" for code, count in result.results_not_ok.items())
        console.print(f"[red]committed txs that did not execute OK: {failed}[/red]",
                      highlight=False)
    if result.submit_lag_ms_p99 and result.submit_lag_ms_p99 > 1000:
        err_console.print(f"note: submissions fell {result.submit_lag_ms_p99 / 1000:.1f} s "
                          f"behind schedule (p99): the offered rate exceeds what the nodes "
                          f"admit", highlight=False)
