"""`seoulchain devnet` and `seoulchain status`: run a local network and see how it is doing."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from seoulchain.cli.common import (
    HomeOption,
    JsonOption,
    NodeOption,
    console,
    err_console,
    get_node_urls,
    print_json,
    reports_errors,
    require_free_port,
)
from seoulchain.client.http import NodeClient, NodeUnavailable
from seoulchain.errors import LocalError
from seoulchain.node.devnet import (
    NODE_START_TIMEOUT_S,
    Devnet,
    DevnetSupervisor,
    create_devnet,
    is_devnet,
    read_log_tail,
)
from seoulchain.node.home import Home

DEVNET_HOME = Path(".seoulchain/devnet")


class ConsensusEngine(StrEnum):
    """Which consensus a node runs its application under (docs/operations.md)."""

    BUILTIN = "builtin"
    COMETBFT = "cometbft"


EngineOption = Annotated[ConsensusEngine, typer.Option(
    help="builtin: seoulchain's own BFT consensus; cometbft: the application under a "
         "CometBFT node (scripts/install-cometbft).")]
# How often the supervisor looks for nodes that died, and refreshes the status line.
WATCH_INTERVAL_S = 5.0

def get_cli_command() -> str:
    """Return how to run this command from the current directory, exactly as typed.

    `seoulchain` when that name on the PATH is this installation; otherwise the script
    beside this Python (a virtualenv's bin/), relative to the current directory.
    """
    script = Path(sys.executable).parent / "seoulchain"
    on_path = shutil.which("seoulchain")
    if on_path is not None and (not script.exists()
                                or Path(on_path).resolve() == script.resolve()):
        return "seoulchain"
    if not script.exists():
        return f"{sys.executable} -m seoulchain"
    relative = os.path.relpath(script)
    return str(script) if relative.startswith("..") else relative


def collect_status(urls: list[str]) -> list[dict[str, Any]]:
    """Ask each node for its status; a node that does not answer is marked down."""
    rows = []
    for url in urls:
        with NodeClient(url, timeout_s=3.0) as client:
            try:
                rows.append({"url": url, "up": True, **client.get_status()})
            except NodeUnavailable:
                rows.append({"url": url, "up": False})
    return rows


def render_status(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="seoulchain nodes", title_justify="left")
    for column in ("node", "height", "last block", "state root", "peers", "mempool",
                   "last commit"):
        table.add_column(column, no_wrap=True)
    now_ms = time.time() * 1000
    for row in rows:
        if not row["up"]:
            table.add_row(row["url"], "[red]down[/red]", "", "", "", "", "")
            continue
        last = row.get("last_commit_time_ms")
        age = f"{(now_ms - last) / 1000:.1f}s ago" if last else "-"
        table.add_row(str(row.get("moniker")), str(row["height"]),
                      str(row["block_id"])[:12], str(row["state_root"])[:12],
                      str(len(row.get("peers", []))), str(row.get("mempool_txs")), age)
    return table


@reports_errors
def status(home: HomeOption, node: NodeOption = None, json: JsonOption = False) -> None:
    """Show height, last block, state root, peers, mempool and last commit, per node."""
    rows = collect_status([node] if node else get_node_urls(home))
    if not any(row["up"] for row in rows):
        raise NodeUnavailable(f"no node answered: {', '.join(row['url'] for row in rows)}")
    if json:
        print_json(rows if len(rows) > 1 or (not node and is_devnet(home)) else rows[0])
        return
    console.print(render_status(rows))


@reports_errors
def devnet(home: HomeOption = DEVNET_HOME,
           validators: Annotated[int, typer.Option(help="Validators (new devnet only).")] = 4,
           base_port: Annotated[int, typer.Option(
               help="API ports start here; peer ports at +100 (new devnet only).")] = 26700,
           seed_demo: Annotated[bool, typer.Option(help="Fill in demo city data.")] = True,
           engine: EngineOption = ConsensusEngine.BUILTIN,
           ) -> None:
    """Run validators as local processes with demo data; Ctrl-C stops all, a rerun resumes."""
    if not is_devnet(home):
        create_devnet(home, validators, base_port=base_port)
        console.print(f"created a {validators}-validator devnet in {home}")
    network = Devnet(home)
    for home_i in network.node_homes:
        config = home_i.load_config()
        require_free_port(config.api.host, config.api.port)
        require_free_port(config.p2p.listen_host, config.p2p.listen_port, "[p2p] listen_port")
        if engine is ConsensusEngine.COMETBFT:
            from seoulchain.node.abci import get_rpc_port

            require_free_port(config.api.host, get_rpc_port(config), "CometBFT RPC port")
    supervisor = DevnetSupervisor(network, engine.value)
    stop_on_signals()
    supervisor.start()
    try:
        urls = network.api_urls()
        wait_until_up(supervisor, urls)
        if seed_demo:
            seed_devnet(network, urls[0])
        print_where_to_look(network, urls, engine)
        watch(supervisor, urls)
    except KeyboardInterrupt:
        err_console.print("stopping the network ...")
    finally:
        supervisor.stop()
    console.print("all nodes stopped; run the same command again to resume")


def stop_on_signals() -> None:
    """Make SIGTERM, and SIGINT even where a shell started the devnet ignoring it, stop the
    network as Ctrl-C does."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def wait_until_up(supervisor: DevnetSupervisor, urls: list[str]) -> None:
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    with console.status("starting validators ..."):
        while True:
            failed = supervisor.get_failed()
            if failed:
                raise LocalError(f"node {failed[0].home.root} exited at start:\n"
                                 f"{read_log_tail(failed[0].home)}")
            rows = collect_status(urls)
            if all(row["up"] for row in rows):
                return
            if time.monotonic() > deadline:
                down = [row["url"] for row in rows if not row["up"]]
                raise LocalError(f"nodes did not start within {NODE_START_TIMEOUT_S:.0f} s: "
                                 f"{', '.join(down)}")
            time.sleep(0.3)


def seed_devnet(network: Devnet, url: str) -> None:
    from seoulchain.client.demo import seed_demo_from_home
    from seoulchain.client.demo_identity import seed_identity_from_home
    from seoulchain.client.demo_voting import seed_poll_from_home

    console.print(f"seeding demo city data through {url} ...")
    with NodeClient(url) as client:
        for seeder in (seed_demo_from_home, seed_identity_from_home, seed_poll_from_home):
            seeder(client, Home(network.root), network.root / "demo-docs",
                   lambda line: console.print(f"  {line}", highlight=False))


def print_where_to_look(network: Devnet, urls: list[str], engine: ConsensusEngine) -> None:
    root = network.root
    logs = f"{root}/node-*/node.log"
    if engine is ConsensusEngine.COMETBFT:
        logs += f", {root}/node-*/cometbft/cometbft.log (CometBFT)"
    console.print(render_status(collect_status(urls)))
    console.print(f"""
[bold]seoulchain devnet is running[/bold]: {len(urls)} validators (Ctrl-C stops, a rerun resumes)
  APIs           {', '.join(urls)}   (interactive docs: {urls[0]}/docs)
  portal         {urls[0]}/portal/   (every node serves it; docs/portal.md)
  node logs      {logs}
{format_commands_to_try(root)}""", highlight=False)


def format_commands_to_try(home: Path) -> str:
    """Return the banner's example commands, typed as they work from a new terminal."""
    from seoulchain.client.demo import CITIZEN_KEY_NAMES, DEMO_VINS, ISSUED_DOCUMENTS
    from seoulchain.client.demo_identity import get_credential_path

    cli = get_cli_command()
    where = shlex.quote(str(home))
    example = shlex.quote(str(home / "demo-docs" / "building-permit-2026-0042.txt"))
    issued = shlex.quote(str(home / "demo-docs" / ISSUED_DOCUMENTS[1][0]))
    lines = ["try, in another terminal:", f"  cd {shlex.quote(str(Path.cwd()))}",
             f"  {cli} status --home {where}",
             f"  {cli} query notary {example} --home {where}",
             f"  {cli} query vehicle history vin={DEMO_VINS[0]} --home {where}",
             f"  {cli} document check {issued} --home {where}"]
    lines += [f"  {cli} vc {command} "
              f"{shlex.quote(str(get_credential_path(home / 'demo-docs', citizen)))} "
              f"--home {where}"
              for command, citizen in zip(("verify", "status"), CITIZEN_KEY_NAMES, strict=True)]
    if Path("README.md").is_file():
        lines.append(f"  {cli} tx notary anchor README.md --home {where}")
    lines.append(f"  {cli} audit --home {where}")
    return "\n".join(lines)


def watch(supervisor: DevnetSupervisor, urls: list[str]) -> None:
    """Report node deaths and the network's height until Ctrl-C."""
    reported: set[str] = set()
    last_heights: list[object] = []
    while True:
        time.sleep(WATCH_INTERVAL_S)
        for node in supervisor.get_failed():
            name = str(node.home.root)
            if name not in reported:
                reported.add(name)
                err_console.print(f"[red]node {name} exited[/red] "
                                  f"(code {node.process.returncode}):\n{read_log_tail(node.home)}")
        heights = [row.get("height", "down") for row in collect_status(urls)]
        if heights != last_heights:  # an idle network waits for txs: print only news
            console.print(f"heights: {heights}", highlight=False)
            last_heights = heights
