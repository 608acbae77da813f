"""`seoulchain`: run a node, manage keys, submit transactions, query and audit the chain."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from seoulchain.cli.bench_network import bench_network
from seoulchain.cli.bench_suite import (
    bench_api,
    bench_identity,
    bench_portal,
    bench_postgres,
    bench_suite,
    bench_voting,
)
from seoulchain.cli.common import (
    HomeOption,
    JsonOption,
    NodeIndexOption,
    console,
    err_console,
    make_count_progress,
    print_json,
    reports_errors,
    require_free_port,
    resolve_node_home,
)
from seoulchain.cli.did import did_app
from seoulchain.cli.document import document_app
from seoulchain.cli.eligibility import eligibility_app
from seoulchain.cli.exit_codes import (
    EXIT_APP_HASH_MISMATCH,
    EXIT_AUDIT_FAILED,
    EXIT_CRASH,
    EXIT_STORAGE,
    EXIT_UPGRADE_REQUIRED,
)
from seoulchain.cli.gov import gov_app
from seoulchain.cli.network import (
    ConsensusEngine,
    EngineOption,
    devnet,
    format_commands_to_try,
    get_cli_command,
    status,
)
from seoulchain.cli.prove import bench_proofs_command, prove_app, verify_command
from seoulchain.cli.services import list_services
from seoulchain.cli.sim import sim as sim_command
from seoulchain.cli.statesync import state_sync
from seoulchain.cli.tiles import export_tiles
from seoulchain.cli.txs import query_app, tx_app
from seoulchain.cli.vault import vault_app
from seoulchain.cli.vc import vc_app
from seoulchain.cli.vote import vote_app
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError, SeoulchainError, StorageError
from seoulchain.execution.platform import ServiceVersionError
from seoulchain.node.abci import AppHashMismatch
from seoulchain.node.agencies import DEMO_AGENCIES, OPERATOR_AGENCY_DEFAULT
from seoulchain.node.devnet import is_devnet
from seoulchain.node.home import DEFAULT_CHAIN_ID, Home, init_home

DEMO_HOME = Path(".seoulchain/demo")
DEMO_CHAIN_ID = "seoul-demo-1"
log = logging.getLogger("seoulchain.node")

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="seoulchain: a city's permissioned BFT ledger with offline proofs.")
keys_app = typer.Typer(no_args_is_help=True, help="Create, list and show the home's named "
                                                   "signing keys.")
app.add_typer(keys_app, name="keys")
app.add_typer(tx_app, name="tx")
app.add_typer(query_app, name="query")
# Every command is registered here by name: `app.command("name")` on a function defined
# below or imported from its module (each wrapped in `reports_errors` where it is defined),
# and each group of subcommands with `add_typer`.
app.command("services")(list_services)
app.command("status")(status)
app.command("devnet")(devnet)
app.command("sim")(sim_command)
app.add_typer(prove_app, name="prove")
app.add_typer(gov_app, name="gov")
app.add_typer(document_app, name="document")
app.add_typer(eligibility_app, name="eligibility")
app.add_typer(vault_app, name="vault")
app.add_typer(did_app, name="did")
app.add_typer(vc_app, name="vc")
app.add_typer(vote_app, name="vote")
app.command("verify")(verify_command)
app.command("export-tiles")(export_tiles)
app.command("state-sync")(state_sync)


@app.command("init")
@reports_errors
def init(home: HomeOption,
         chain_id: Annotated[str, typer.Option(help="Chain id.")] = DEFAULT_CHAIN_ID,
         moniker: Annotated[str, typer.Option(help="This validator's name.")] = "validator-0",
         api_port: Annotated[int, typer.Option(help="HTTP API port on 127.0.0.1.")] = 26657,
         agency: Annotated[str, typer.Option(
             help="Name the genesis gives the operator key's agency (shown by verify and "
                  "query), e.g. mapo-gu.")] = OPERATOR_AGENCY_DEFAULT,
         ) -> None:
    """Create a single-validator node home (keys, genesis, config) in a new or empty directory."""
    if is_devnet(home):
        raise LocalError(f"{home} is a devnet directory, not a place for a new node: run its "
                         f"validators with `seoulchain devnet --home {home}`, or choose "
                         f"another --home")
    created = init_home(home, chain_id, moniker, api_port, agencies=(agency,))
    genesis = created.load_genesis()
    console.print(f"initialised {home}")
    console.print(f"  chain id      {genesis.chain_id}")
    console.print(f"  validator     {genesis.validators.validators[0].public_key.hex()}")
    console.print(f"  genesis hash  {genesis.hash().hex()}")
    console.print(f"  operator key  {created.key_path('operator')} (agency {agency}, role "
                  "notary.issuer)", highlight=False)
    console.print(f"start it with:  {get_cli_command()} start --home {home}", highlight=False)


@app.command("start")
@reports_errors
def start(home: HomeOption, node_index: NodeIndexOption = None,
          log_level: Annotated[str, typer.Option(help="debug, info, warning.")] = "info",
          parent_pid: Annotated[int | None, typer.Option(
              hidden=True, help="Stop when this process (a supervisor) dies.")] = None,
          allow_missing_signing_state: Annotated[bool, typer.Option(
              "--allow-missing-signing-state",
              help="Start a validator whose data/signing-state.cbor is lost: it then signs "
                   "nothing at the next height. Risks double-signing; read "
                   "docs/operations.md, \"Signing state\", first.")] = False,
          engine: EngineOption = ConsensusEngine.BUILTIN,
          ) -> None:
    """Run the node until Ctrl-C or SIGTERM; exit status 0 after a clean stop.

    A devnet's validator is started with --home DEVNET/node-<i> (or --node-index); the
    whole devnet with `seoulchain devnet`. Exit status 74: the block store failed; 78: the
    installed services are not the versions the chain runs (an upgrade is due); 65 (with
    --engine cometbft): this node's app hash differs from the network's; 70: an
    unexpected error (docs/operations.md, "Exit codes").
    """
    from seoulchain.cli.run import serve

    node_home = resolve_node_home(
        home, node_index, default_index=None,
        network_hint=f"; or start every validator with `seoulchain devnet --home {home}`")
    with node_home.lock("seoulchain start"):  # held, re-entrantly, by the node it runs
        if allow_missing_signing_state:
            allow_missing_signing_state_once(node_home)
        config = node_home.load_config()
        require_free_port(config.api.host, config.api.port)
        logging.basicConfig(level=log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if engine is ConsensusEngine.COMETBFT:
            from seoulchain.cli.run import serve_cometbft_api
            from seoulchain.node.abci import run_with_cometbft

            run_node(run_with_cometbft(node_home, parent_pid=parent_pid,
                                       serve_api=serve_cometbft_api), node_home)
            return
        run_node(serve(node_home, parent_pid=parent_pid), node_home)


def allow_missing_signing_state_once(home: Home) -> None:
    """Give a validator whose signing state is lost the floor record of its store's tip."""
    from seoulchain.node.bft import SIGNING_STATE_FILE
    from seoulchain.node.signing_store import write_floor_record

    record = write_floor_record(home.data_dir / SIGNING_STATE_FILE, home.store_path)
    if record is None:
        err_console.print("--allow-missing-signing-state: nothing to do (the signing state is "
                          "there, or no block is committed here)", highlight=False)
        return
    err_console.print(f"[yellow]warning:[/yellow] no signing state: wrote one that forbids "
                      f"this validator to sign anything at heights up to {record.height}",
                      highlight=False)


def run_node(main: Coroutine[Any, Any, None], home: Home) -> None:
    """Run a node until it stops; exit with the status that says why, and one line on it."""
    try:
        asyncio.run(main)
    except ServiceVersionError as exc:
        log.critical("fatal: %s", exc)
        raise typer.Exit(EXIT_UPGRADE_REQUIRED) from exc
    except AppHashMismatch as exc:  # its `fatal:` line was logged when it was found
        raise typer.Exit(EXIT_APP_HASH_MISMATCH) from exc
    except SeoulchainError as exc:
        if not isinstance(exc, StorageError):
            raise  # a configuration or usage error: reports_errors prints it, status 1
        report_storage_failure(exc, home)
    except sqlite3.Error as exc:
        report_storage_failure(exc, home)
    except Exception as exc:
        log.critical("fatal: the node stopped on an unexpected error (%s: %s); this is a "
                     "bug: keep the log above for a report, then start the node again",
                     type(exc).__name__, exc, exc_info=exc)
        raise typer.Exit(EXIT_CRASH) from exc


def report_storage_failure(exc: Exception, home: Home) -> None:
    """Log what failed in the node's storage and what the operator does next, then exit.

    A `StorageError` names the damaged file and, where it has one, its own remedy (a
    corrupted block, a damaged WAL, a missing signing state); the generic disk checks follow.
    """
    log.critical("fatal: the node's storage failed: %s. The node stopped without committing "
                 "further; for this error see docs/operations.md, \"Storage errors\". For a "
                 "failing disk: check %s (free space, permissions, another process holding "
                 "the store), run `seoulchain audit --home %s` and start the node again",
                 exc, home.data_dir, home.root)
    raise typer.Exit(EXIT_STORAGE) from exc


@app.command("demo")
@reports_errors
def demo(home: HomeOption = DEMO_HOME,
         api_port: Annotated[int, typer.Option(
             help="HTTP API port on 127.0.0.1 of a new demo home (a rerun keeps the "
                  "port in its config.toml).")] = 26657,
         ) -> None:
    """Run a local chain with demo city data; Ctrl-C stops it, a rerun resumes it."""
    from seoulchain.cli.run import serve

    node_home = Home(home)
    if not node_home.is_initialised():
        init_home(home, chain_id=DEMO_CHAIN_ID, moniker="seoul-city-hall", api_port=api_port,
                  agencies=DEMO_AGENCIES)
        console.print(f"created a new demo chain in {home}")
    elif (chain_id := node_home.load_genesis().chain_id) != DEMO_CHAIN_ID:
        # --home falls back to SEOULCHAIN_HOME: never seed demo data into a real chain.
        raise LocalError(f"{home} holds chain {chain_id!r}, not a demo chain; pass --home "
                         f"with a new directory or a demo home (default {DEMO_HOME})")
    config = node_home.load_config()
    require_free_port(config.api.host, config.api.port)
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(message)s")
    url = f"http://{config.api.host}:{config.api.port}"
    run_node(serve(node_home, lambda node: seed_demo(node_home, url)), node_home)


async def seed_demo(home: Home, url: str) -> None:
    from seoulchain.client.demo import seed_demo_from_home
    from seoulchain.client.demo_identity import seed_identity_from_home
    from seoulchain.client.demo_voting import seed_poll_from_home
    from seoulchain.client.http import NodeClient

    def seed() -> int:
        with NodeClient(url) as client:
            return sum(seeder(client, home, home.root / "demo-docs",
                              lambda line: console.print(f"  {line}", highlight=False))
                       for seeder in (seed_demo_from_home, seed_identity_from_home,
                                      seed_poll_from_home))

    console.print(f"node running; seeding demo city data through {url} ...")
    await asyncio.to_thread(seed)
    docs = home.root / "demo-docs"
    console.print(f"""
[bold]seoulchain demo is running[/bold] (Ctrl-C to stop; run again to resume)
  API            {url}/v1/status   (interactive docs: {url}/docs)
  latest block   {url}/v1/blocks/latest
  documents      {docs}/
{format_commands_to_try(home.root)}""", highlight=False)


@keys_app.command("create")
@keys_app.command("new", hidden=True)
@reports_errors
def keys_create(name: str, home: HomeOption) -> None:
    """Create a new Ed25519 key NAME in the home's keys/ directory (mode 0600)."""
    path = Home(home).key_path(name)
    if path.exists():
        raise LocalError(f"a key named {name!r} already exists at {path}")
    key = SigningKey.generate()
    key.save(path)
    console.print(f"created {path}\npublic key {key.public_key.hex()}", highlight=False)


@keys_app.command("show")
@reports_errors
def keys_show(home: HomeOption, name: str = "operator") -> None:
    """Print a key's public key."""
    key = Home(home).load_key(name)
    typer.echo(key.public_key.hex())


@keys_app.command("list")
@reports_errors
def keys_list(home: HomeOption, json: JsonOption = False) -> None:
    """List the home's keys and their public keys."""
    node_home = Home(home)
    keys = [{"name": path.stem, "public_key": SigningKey.load(path).public_key.hex()}
            for path in sorted(node_home.keys_dir.glob("*.key"))]
    if json:
        print_json({"keys": keys})
        return
    for key in keys:
        typer.echo(f"{key['name']:16} {key['public_key']}")


@app.command("audit")
@reports_errors
def audit(home: HomeOption, node_index: NodeIndexOption = None,
          quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False) -> None:
    """Re-verify every block from genesis: hashes, signatures, roots, replayed state.

    Given a devnet directory, audits node-0's store (or --node-index's).
    """

    from seoulchain.client.audit import audit_chain
    from seoulchain.execution.service import load_services
    from seoulchain.ledger.store import BlockStore
    from seoulchain.node.abci import CometRpc, get_rpc_url

    node_home = resolve_node_home(home, node_index)
    if not node_home.store_path.is_file():
        raise LocalError(f"no chain data at {node_home.store_path}: the node has not run "
                         f"yet, so there is nothing to audit")
    genesis = node_home.load_genesis()
    rpc_url = get_rpc_url(node_home)  # a node run under CometBFT: its headers carry the ids
    rpc = None if rpc_url is None else CometRpc(rpc_url)
    store = BlockStore(node_home.store_path)
    try:
        with make_count_progress("blocks", quiet=quiet) as bar:
            task = bar.add_task("auditing", total=None)

            def on_progress(height: int, tip: int) -> None:
                if height % 50 == 0 or height == tip:
                    bar.update(task, completed=height, total=tip)

            report = audit_chain(genesis, store, load_services(), on_progress,
                                 None if rpc is None else rpc.get_app_hash)
    finally:
        store.close()
        if rpc is not None:
            rpc.close()
    rate = report.txs / report.elapsed_s if report.elapsed_s > 0 else 0.0
    summary = (f"{report.blocks} blocks, {report.txs} txs checked in {report.elapsed_s:.1f} s "
               f"({rate:,.0f} tx/s)")
    if report.ok:
        console.print(f"[green]audit passed[/green]: {summary}; chain intact up to height "
                      f"{report.tip_height}", highlight=False)
        return
    err_console.print(f"[red]audit FAILED at height {report.bad_height}[/red]: {report.failure}",
                      highlight=False)
    err_console.print(f"checked before the failure: {summary}", highlight=False)
    raise typer.Exit(EXIT_AUDIT_FAILED)


@app.command("repair-wal")
@reports_errors
def repair_wal(home: HomeOption, node_index: NodeIndexOption = None) -> None:
    """Cut a stopped node's consensus WAL at its first damaged record, dropping what follows."""
    from seoulchain.node.bft import WAL_FILE
    from seoulchain.node.wal import replay

    node_home = resolve_node_home(home, node_index, default_index=None)
    path = node_home.data_dir / WAL_FILE
    with node_home.lock("seoulchain repair-wal"):
        tail = replay(path, truncate_damage=True).tail
    if tail.is_clean:
        console.print(f"{path}: {tail.records} intact records, no damage; nothing changed",
                      highlight=False)
        return
    dropped = ", intact records after it included" if tail.is_damaged_middle else ""
    console.print(f"{path}: kept the first {tail.records} records; cut {tail.discarded_bytes} "
                  f"bytes from byte {tail.intact_bytes} ({tail.defect}{dropped})",
                  highlight=False)


bench_app = typer.Typer(help="Measure throughput (docs/performance.md).")
bench_app.callback(invoke_without_command=True)(bench_suite)
app.add_typer(bench_app, name="bench")
bench_app.command("postgres")(bench_postgres)
bench_app.command("proofs")(bench_proofs_command)
bench_app.command("network")(bench_network)
bench_app.command("identity")(bench_identity)
bench_app.command("voting")(bench_voting)
bench_app.command("api")(bench_api)
bench_app.command("portal")(bench_portal)


@bench_app.command("statesync")
@reports_errors
def bench_statesync(home: HomeOption,
                    replay: Annotated[bool, typer.Option(help="Also time the full replay.")] = True,
                    ) -> None:
    """State sync versus full replay on a node home (e.g. one `bench ledger` built)."""
    from seoulchain.bench.statesync import run_statesync_bench

    result = run_statesync_bench(home, replay)
    console.print(f"height {result.height}, {result.txs} txs, {result.entries} state entries in "
                  f"{result.chunks} chunks ({result.snapshot_bytes / 1e6:.1f} MB)", highlight=False)
    console.print(f"snapshot {result.snapshot_s:.2f} s; state sync {result.state_sync_s:.2f} s "
                  f"(light client {result.light_client_s:.2f} s, verified restore "
                  f"{result.restore_s:.2f} s, engine start {result.engine_open_s:.2f} s)",
                  highlight=False)
    if result.replay_s is not None:
        console.print(f"full replay (audit) {result.replay_s:.1f} s: state sync is "
                      f"{result.replay_s / result.state_sync_s:.0f}x faster", highlight=False)


@bench_app.command("ledger")
@reports_errors
def bench_ledger(home: HomeOption,
                 txs: Annotated[int, typer.Option(help="Transactions to commit.")] = 20_000,
                 block_txs: Annotated[int, typer.Option(help="Transactions per block.")] = 2000,
                 json_file: Annotated[Path | None, typer.Option(
                     "--json-out", help="Also write the figures to this JSON file.")] = None,
                 tx_bytes: Annotated[int | None, typer.Option(
                     help="Pad each signed tx to about this many bytes with notary metadata "
                          "(default: the bare anchor).")] = None,
                 service: Annotated[list[str] | None, typer.Option(
                     help="Measure this service's txs instead of notary anchors, each "
                          "service alone on its own chain (repeatable).")] = None,
                 mix: Annotated[str | None, typer.Option(
                     help="Also measure a service mix on one chain: 'city' (vehicle, "
                          "document, funds, labor, mileage, notary in a fixed ratio; each "
                          "of them alone too unless --service names some).")] = None,
                 ) -> None:
    """Single validator: pre-signed notary txs through admission, execution and commit.

    `--home` is a fresh directory to build the benchmark chain in (with --service or
    --mix, one chain per run in a subdirectory named after it).
    """
    import json as json_module

    from rich.progress import Progress

    from seoulchain.bench.ledger import (
        format_service_bench,
        run_ledger_bench,
        run_service_bench,
    )

    if txs < 1 or block_txs < 1:
        raise LocalError("--txs and --block-txs must be at least 1")
    if (service or mix) and tx_bytes is not None:
        raise LocalError("--tx-bytes pads notary anchors; it does not apply with --service "
                         "or --mix")
    with Progress(console=err_console) as bar:
        tasks: dict[str, object] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)  # type: ignore[arg-type]

        if service or mix:
            services = run_service_bench(home, txs, block_txs, on_progress, service or [],
                                         mix)
            for line in format_service_bench(services):
                console.print(line, highlight=False)
            if json_file is not None:
                json_file.write_text(json_module.dumps(services.to_json(), indent=2) + "\n")
            return
        result = run_ledger_bench(home, txs, block_txs, on_progress, tx_bytes)
    console.print(f"{result.txs} txs in {result.blocks} blocks of {result.block_txs}: "
                  f"{result.tx_per_s:,.0f} tx/s, {result.blocks_per_s:,.1f} blocks/s "
                  f"(admission {result.admission_s:.1f} s, blocks {result.blocks_s:.1f} s; "
                  f"{result.tx_bytes} B/tx, {result.db_bytes / max(result.txs, 1):,.0f} "
                  f"disk B/tx)", highlight=False)
    console.print("  µs per tx: " + ", ".join(
        f"{name.replace('_', ' ')} {value:,.0f}" for name, value in result.stages_us.items())
        + f"; CPU {result.cpu_us_per_tx:,.0f}", highlight=False)
    for point in result.checkpoints:
        console.print(f"  at {point.txs:>9,} txs: {point.span_tx_per_s:>7,.0f} tx/s since the "
                      f"last mark, RSS {point.rss_mb:,.0f} MiB (peak {point.peak_rss_mb:,.0f}), "
                      f"{point.disk_bytes_per_tx:,.0f} disk B/tx", highlight=False)
    console.print(f"audit it with: seoulchain audit --home {home}", highlight=False)
    if json_file is not None:
        json_file.write_text(json_module.dumps(result.to_json(), indent=2) + "\n")


if __name__ == "__main__":
    app()
