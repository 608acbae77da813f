"""`seoulchain bench` (the full benchmark), `seoulchain bench postgres` (the baseline) and the
focused benchmarks (identity, api, portal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from seoulchain.cli.bench_network import load_engine
from seoulchain.cli.common import (
    HomeOption,
    OptionalHomeOption,
    console,
    err_console,
    finite_float,
    reports_errors,
)
from seoulchain.cli.network import ConsensusEngine, EngineOption

# A day of load: longer runs are a typo (the default is two minutes).
DURATION_S_MAX = 86_400.0


def make_progress_callback(bar: Progress) -> Any:
    """Return a (phase, done, total) callback that keeps one bar per phase."""
    tasks: dict[str, Any] = {}

    def on_progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    return on_progress


@reports_errors
def bench_suite(
        ctx: typer.Context,
        validators: Annotated[int, typer.Option(help="Validators, each its own process.")] = 4,
        duration: Annotated[float, typer.Option(
            help="Seconds of load in all: the rate steps share 80%, the latency run 20%.",
            parser=finite_float(0, DURATION_S_MAX, low_open=True))] = 120.0,
        tx_kind: Annotated[str, typer.Option(help="Transactions to offer: notary.")] = "notary",
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Write the figures to this JSON file.")] = None,
        plot: Annotated[Path | None, typer.Option(
            help="Draw offered vs committed rate and latency to this PNG (matplotlib).")
        ] = None,
        home: OptionalHomeOption = None,
        commit_pause_ms: Annotated[int | None, typer.Option(
            help="Override a fresh network's commit_pause_ms (default: the node's).")
        ] = None,
        tx_bytes: Annotated[int | None, typer.Option(
            help="Pad each signed tx to about this many bytes with notary metadata "
                 "(default: the bare anchor).")] = None,
) -> None:
    """Measure the bound, the highest sustained tx/s and finality latency, in one run.

    Without a subcommand: the full benchmark (docs/performance.md); the subcommands measure
    parts. `--home` is a devnet to attach to (started if down), or an empty directory to
    create and keep the benchmark devnet in.
    """
    if ctx.invoked_subcommand is not None:
        return
    from seoulchain.bench.suite import SuiteOptions, plot_report, run_suite

    options = SuiteOptions(validators=validators, duration_s=duration, tx_kind=tx_kind,
                           home=home, commit_pause_ms=commit_pause_ms, tx_bytes=tx_bytes)
    options.check()
    if plot is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            from seoulchain.errors import LocalError

            raise LocalError("--plot needs matplotlib: pip install 'seoulchain[plot]'")
    with Progress(console=err_console, transient=True) as bar:
        report = run_suite(options, make_progress_callback(bar),
                           lambda text: bar.console.print(text, highlight=False))
    print_suite_summary(report)
    if json_file is not None:
        json_file.write_text(json.dumps(report, indent=2) + "\n")
    if plot is not None:
        plot_report(report, plot)
        console.print(f"plot written to {plot}", highlight=False)
    if not report["exactly_once"]["ok"]:
        raise typer.Exit(2)


def print_suite_summary(report: dict[str, Any]) -> None:
    latency = report["latency"]
    check = report["exactly_once"]
    console.print(
        f"[bold]{report['validators']} validators, {report['cores']} cores:[/bold] "
        f"tps_max {report['tps_max']:,.0f} tx/s; bound {report['bound']:,.0f} tx/s "
        f"(verify {report['verify_rate_per_core']:,.0f}/s per core); ratio "
        f"{report['ratio']:.3f}; {report['tx_bytes']} B/tx", highlight=False)
    console.print(f"finality at {latency['offered'] or 0:,.0f} tx/s offered: p50 "
                  f"{latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms "
                  f"({latency['txs']} txs)", highlight=False)
    verdict = "[green]yes[/green]" if check["ok"] else "[red]NO[/red]"
    console.print(f"every acknowledged tx committed exactly once, one chain on every node: "
                  f"{verdict} ({check['acknowledged']} acknowledged, {check['missing']} "
                  f"missing, {check['duplicated']} repeated, {check['forked_heights']} forked "
                  f"heights; heights {check['first_height']}..{check['last_height']})",
                  highlight=False)
    console.print(f"load average {report['load_average']['start']} at start, "
                  f"{report['load_average'].get('end')} at end", highlight=False)


@reports_errors
def bench_postgres(
        txs: Annotated[int, typer.Option(help="Pre-signed notary anchors to insert.")] = 20_000,
        clients: Annotated[int, typer.Option(
            help="Client processes, each with its own connection.")] = 4,
        batch: Annotated[int, typer.Option(help="Rows per commit (1: each row durable "
                                                "before the next).")] = 1,
        dsn: Annotated[str | None, typer.Option(
            help="libpq DSN of a server to use (default: a throwaway cluster on 127.0.0.1 "
                 "via initdb/pg_ctl).")] = None,
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Also write the figures to this JSON file.")] = None,
) -> None:
    """Baseline: the same signed records, checked, in an append-only PostgreSQL table."""
    from seoulchain.bench.postgres import run_postgres_bench

    with Progress(console=err_console, transient=True) as bar:
        result = run_postgres_bench(txs=txs, clients=clients, batch_rows=batch, dsn=dsn,
                                    progress=make_progress_callback(bar))
    console.print(
        f"PostgreSQL {result.server_version}: {result.txs} signed records checked and "
        f"inserted by {result.clients} clients, {result.batch_rows} per commit: "
        f"{result.tx_per_s:,.0f} tx/s; per-insert latency p50 {result.latency_ms_p50} ms, "
        f"p95 {result.latency_ms_p95} ms, p99 {result.latency_ms_p99} ms (client checks "
        f"{result.check_us_per_tx:.0f} µs/tx; {result.rows} rows; UPDATE refused: "
        f"{result.append_only}; load average {result.load_average})", highlight=False)
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n")


@reports_errors
def bench_identity(
        home: HomeOption,
        credentials: Annotated[int, typer.Option(
            min=1, max=100_000, help="Credentials to issue and verify.")] = 200,
        samples: Annotated[int, typer.Option(
            min=1, max=100_000, help="Presentations and status checks to time.")] = 100,
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Also write the figures to this JSON file.")] = None,
) -> None:
    """Credentials issued and verified per second, presentation and status check times."""
    from seoulchain.bench.identity import run_identity_bench

    with Progress(console=err_console, transient=True) as bar:
        result = run_identity_bench(home, credentials, samples, make_progress_callback(bar))
    console.print(f"issued   {result.issued_per_s:,.0f} credentials/s (sign + anchor tx; "
                  f"{result.sign_ms_mean:.1f} ms each, {result.credential_bytes_mean} B)",
                  highlight=False)
    console.print(f"verified {result.verified_per_s:,.0f} credentials/s (p50 "
                  f"{result.verify_ms_p50:.1f} ms)", highlight=False)
    console.print(f"presentation verification p50 {result.presentation_ms_p50:.1f} ms",
                  highlight=False)
    console.print(f"status check p50 {result.status_check_ms_p50:.2f} ms on chain, "
                  f"{result.status_list_read_ms_p50:.3f} ms from a published list",
                  highlight=False)
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n")


@reports_errors
def bench_api(
        clients: Annotated[int, typer.Option(
            min=1, max=256, help="Concurrent read connections.")] = 8,
        duration: Annotated[float, typer.Option(
            help="Seconds of reads per route.", parser=finite_float(0, 3600, low_open=True))
        ] = 5.0,
        latency_txs: Annotated[int, typer.Option(
            min=1, max=10_000, help="Transactions timed from submit to commit.")] = 40,
        subscribers: Annotated[int, typer.Option(
            min=1, max=1000, help="Concurrent event stream subscribers.")] = 100,
        event_txs: Annotated[int, typer.Option(
            min=1, max=1000, help="Transactions (one batch) every subscriber receives.")
        ] = 500,
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Also write the figures to this JSON file.")] = None,
) -> None:
    """API reads/s, submit-to-commit latency through the API, and events delivered/s, on a
    fresh one-validator node on loopback (docs/performance.md)."""
    from seoulchain.bench.api import run_api_bench

    result = run_api_bench(clients, duration, latency_txs, subscribers, event_txs,
                           lambda text: err_console.print(text, highlight=False))
    console.print(f"reads with {result.clients} connections: {result.tx_reads_per_s:,.0f} "
                  f"tx/s by hash, {result.block_reads_per_s:,.0f} blocks/s "
                  f"({result.read_errors} errors)", highlight=False)
    console.print(f"submit to commit through the API ({result.latency_txs} txs, commit pause "
                  f"{result.commit_pause_ms} ms): p50 {result.latency_ms_p50} ms, p99 "
                  f"{result.latency_ms_p99} ms", highlight=False)
    console.print(f"events: {result.events_delivered:,} delivered to {result.subscribers} "
                  f"subscribers at {result.events_per_s:,.0f}/s ({result.events_missing} "
                  f"missing); {result.cores} cores, load average {result.load_average}",
                  highlight=False)
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if result.read_errors or result.events_missing:
        raise typer.Exit(2)


@reports_errors
def bench_portal(
        runs: Annotated[int, typer.Option(
            min=1, max=1000, help="Cold page loads of the portal to time.")] = 20,
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Also write the figures to this JSON file.")] = None,
) -> None:
    """The portal's first render time in Chromium (/usr/bin/chromium), on a fresh
    one-validator node on loopback (docs/performance.md)."""
    from seoulchain.bench.portal import run_portal_bench

    result = run_portal_bench(runs, lambda text: err_console.print(text, highlight=False))
    console.print(f"portal first render over {result.runs} cold loads: p50 "
                  f"{result.first_render_ms_p50} ms, p95 {result.first_render_ms_p95} ms, "
                  f"max {result.first_render_ms_max} ms (first paint p50 "
                  f"{result.first_paint_ms_p50} ms; {result.requests_per_load} requests); "
                  f"Chromium {result.chromium}, "
                  f"{result.cores} cores, load average {result.load_average}",
                  highlight=False)
    if json_file is not None:
        json_file.write_text(json.dumps(result.to_json(), indent=2) + "\n")


# The poll size the voting figures are extrapolated to: a district-wide consultation.
VOTING_POLL_BALLOTS = 10_000


@reports_errors
def bench_voting(
        ballots: Annotated[int, typer.Option(
            min=1, max=100_000, help="Ballots to make, verify and tally.")] = 200,
        trustees: Annotated[int, typer.Option(min=1, max=16, help="Trustees (n-of-n).")] = 2,
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Also write the figures to this JSON file.")] = None,
        workers: Annotated[int | None, typer.Option(
            min=1, max=256, help="Processes making and verifying ballots (default: CPUs).")
        ] = None,
        belenios_dir: Annotated[Path | None, typer.Option(
            "--belenios-verify", metavar="DIR",
            help="Export the poll to this new or empty directory and time "
                 "`belenios-tool election verify` on it.")] = None,
        admission: Annotated[int | None, typer.Option(
            "--admission", metavar="BALLOTS", min=1,
            help="Instead: start a one-validator node, post BALLOTS ballots (at most 500) in "
                 "one batch and time GET /v1/status until they are committed, under "
                 "--engine (--ballots, --trustees and --belenios-verify do not apply).")
        ] = None,
        engine: EngineOption = ConsensusEngine.BUILTIN,
) -> None:
    """Ballot verification rate at admission, tally and verification time, ballot size."""
    from seoulchain.bench.voting import run_admission_bench, run_voting_bench
    from seoulchain.crypto import SigningKey
    from seoulchain.errors import LocalError
    from seoulchain.ledger.types import Transaction

    if admission is not None:
        if belenios_dir is not None:
            raise LocalError("--belenios-verify exports a --ballots poll; it does not apply "
                             "to --admission")
        figures = run_admission_bench(admission, workers=workers,
                                      engine=load_engine(engine))
        print_admission(figures)
        if json_file is not None:
            json_file.write_text(json.dumps(figures, indent=2) + "\n")
        return
    if engine is not ConsensusEngine.BUILTIN:
        raise LocalError("--engine applies to --admission; the --ballots run is in this "
                         "process, with no node")
    with Progress(console=err_console, transient=True) as bar:
        figures = run_voting_bench(ballots, trustees=trustees, workers=workers,
                                   belenios_dir=belenios_dir,
                                   progress=make_progress_callback(bar))
    cast = Transaction.create(SigningKey.generate(), chain_id="seoul-bench", nonce=1,
                              expiry_height=1, service="vote", method="cast",
                              args={"poll_id": "bench",
                                    "ballot": "x" * figures["ballot_bytes_mean"]})
    scale = VOTING_POLL_BALLOTS / ballots
    verify_s = figures["verify_ms_median"] * VOTING_POLL_BALLOTS / 1000
    figures.update(cast_tx_bytes=len(cast.encode()),
                   extrapolated_ballots=VOTING_POLL_BALLOTS,
                   extrapolated_verify_s=round(verify_s, 1),
                   extrapolated_tally_s=round(figures["tally_ms"] * scale / 1000, 2))
    console.print(f"ballot   {figures['ballot_bytes_mean']:,} B ({figures['choices_per_ballot']} "
                  f"choices); cast tx {figures['cast_tx_bytes']:,} B", highlight=False)
    console.print(f"admission {figures['verify_ballots_per_s']} ballots/s per core "
                  f"(verify p50 {figures['verify_ms_median']} ms); {figures['workers']} workers: "
                  f"made {figures['create_per_s']}/s ({figures['create_per_s_per_worker']}/s "
                  f"each), verified {figures['verify_per_s']}/s "
                  f"({figures['verify_per_s_per_worker']}/s each)", highlight=False)
    console.print(f"{ballots} ballots: tally {figures['tally_ms']} ms, decryption "
                  f"{figures['decrypt_ms_per_trustee']} ms per trustee, result check "
                  f"{figures['verify_decryptions_and_result_ms']} ms; verify and tally "
                  f"{figures['verify_and_tally_s']} s", highlight=False)
    if ballots < VOTING_POLL_BALLOTS:
        console.print(f"extrapolated to {VOTING_POLL_BALLOTS:,} ballots (linear): verifying "
                      f"every ballot {figures['extrapolated_verify_s']} s, tally "
                      f"{figures['extrapolated_tally_s']} s", highlight=False)
    if belenios_dir is not None:
        console.print(f"belenios-tool election verify {figures['archive']} "
                      f"({figures['archive_bytes']:,} B): {figures['belenios_verdict']} in "
                      f"{figures['belenios_verify_s']} s wall, {figures['belenios_verify_cpu_s']} "
                      f"s CPU", highlight=False)
    if json_file is not None:
        json_file.write_text(json.dumps(figures, indent=2) + "\n")
    if belenios_dir is not None and figures["belenios_verdict"] != "pass":
        raise LocalError(f"belenios-tool rejected the archive: {figures['belenios_output']}")


def print_admission(figures: dict[str, Any]) -> None:
    """Print the admission run's figures as a table."""
    engine = "" if figures["engine"] == "builtin" else f" under {figures['engine']}"
    table = Table(title=f"GET /v1/status while {figures['ballots']} ballots are admitted "
                        f"and committed{engine} ({figures['cpus']} CPUs)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("status latency p50 / p99 / max",
                  f"{figures['status_ms_p50']} / {figures['status_ms_p99']} / "
                  f"{figures['status_ms_max']} ms ({figures['status_requests']} requests)")
    table.add_row("status latency, idle node (p50)", f"{figures['status_ms_idle_p50']} ms")
    table.add_row("batch answered, all committed",
                  f"{figures['admitted_s']} s, {figures['committed_s']} s")
    table.add_row("load average (1, 5, 15 min), start",
                  " / ".join(str(value) for value in figures["load_average_start"]))
    table.add_row("load average (1, 5, 15 min), end",
                  " / ".join(str(value) for value in figures["load_average_end"]))
    console.print(table)
