"""Shared CLI plumbing: consoles, error reporting, option types, reaching a node."""

from __future__ import annotations

import functools
import json
import math
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

from seoulchain.client.http import NodeClient
from seoulchain.errors import LocalError, SeoulchainError
from seoulchain.node.devnet import Devnet, is_devnet
from seoulchain.node.home import Home

# Output to a pipe or file gets a wide fixed width so tables are not squeezed to 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, soft_wrap=True)

# The one definition of `--home`: the directory a command works in (a node home, a devnet
# directory, or a new directory a command creates), SEOULCHAIN_HOME when not given. A
# command with a directory of its own (demo, devnet) gives it as the parameter's default.
_HOME_OPTION = typer.Option("--home", help="Node home or devnet directory.",
                            envvar="SEOULCHAIN_HOME")
HomeOption = Annotated[Path, _HOME_OPTION]
OptionalHomeOption = Annotated[Path | None, _HOME_OPTION]
NodeOption = Annotated[str | None, typer.Option(
    "--node", help="Node API URL (default: the API address in the home's config).")]
# `--json` is always this flag; a command that writes figures to a file takes `--json-out FILE`.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

F = TypeVar("F", bound=Callable[..., Any])


def finite_float(low: float, high: float, *, low_open: bool = False) -> Callable[[Any], float]:
    """Return an option parser for a finite number in low..high (NaN and infinities refused).

    Use it for every float option: `typer.Option(parser=finite_float(0, 3600))`. With
    `low_open` the number must be above `low` (a rate or a duration that cannot be 0).
    """
    def parse_finite_float(text: Any) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{text!r} is not a number") from None
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value > high:
            bound = f"above {format_number(low)}" if low_open else f"from {format_number(low)}"
            raise typer.BadParameter(f"{text} is not a finite number {bound} to "
                                     f"{format_number(high)}")
        return value
    return parse_finite_float


def format_number(value: float) -> str:
    """Return `value` as a person writes it: 3600, 0.1, 1000000."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def reports_errors(function: F) -> F:
    """Turn the package's typed errors into a one-line message and exit status 1."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SeoulchainError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
    return wrapper  # type: ignore[return-value]


def resolve_node_url(home: Path, node: str | None) -> str:
    """Return the node URL to talk to: `--node`, else a live node of the home or devnet."""
    if node:
        return node
    from seoulchain.client.http import NodeUnavailable

    urls = get_node_urls(home)
    for url in urls:
        with NodeClient(url, timeout_s=3.0) as client:
            try:
                client.get_status()
            except NodeUnavailable:
                continue
        return url
    raise NodeUnavailable(f"no node answered at {', '.join(urls)}; start it with "
                          f"`{get_start_hint(home)}`")


NodeIndexOption = Annotated[int | None, typer.Option(
    "--node-index", help="With a devnet directory as --home: the validator to use "
                         "(its home is DEVNET/node-<i>).")]


def resolve_node_home(home: Path, node_index: int | None = None, *,
                      default_index: int | None = 0, network_hint: str = "",
                      takes_node_index: bool = True) -> Home:
    """Return the node home a command works on: `home`, or node-<i> of a devnet directory.

    Commands that read one node's files pass `default_index=0`; commands where picking a
    node for the user would surprise (start, state-sync) pass None and say what to pass
    (`--node-index` only where the command has that option).
    """
    if not is_devnet(home):
        if node_index is not None:
            raise LocalError(f"--node-index needs a devnet directory as --home; {home} is not "
                             f"one")
        node_home = Home(home)
        node_home.require_initialised()
        return node_home
    homes = Devnet(home).node_homes
    index = default_index if node_index is None else node_index
    if index is None or not 0 <= index < len(homes):
        names = ", ".join(str(node.root) for node in homes)
        by_index = f" (or --node-index 0 to {len(homes) - 1})" if takes_node_index else ""
        raise LocalError(f"{home} is a devnet directory holding {len(homes)} validator homes "
                         f"({names}); pass one of them, e.g. --home {homes[0].root}"
                         f"{by_index}{network_hint}")
    node_home = homes[index]
    node_home.require_initialised()
    return node_home


def get_node_urls(home: Path) -> list[str]:
    """Return the API URLs of a node home, or of every node of a devnet directory."""
    if is_devnet(home):
        return Devnet(home).api_urls()
    config = resolve_node_home(home).load_config()
    return [f"http://{config.api.host}:{config.api.port}"]


def get_start_hint(home: Path) -> str:
    """Return the command that starts the node(s) behind `home`."""
    if is_devnet(home):
        return f"seoulchain devnet --home {home}"
    return f"seoulchain start --home {home}"


def require_free_port(host: str, port: int, setting: str = "[api] port") -> None:
    """Raise LocalError if `host:port` (config.toml's `setting`) is taken, before a node
    starts and fails on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LocalError(f"address {host}:{port} ({setting}) is in use ({exc.strerror}); "
                             f"is the node already running? Change {setting} in config.toml"
                             ) from exc


def open_client(home: Path, node: str | None) -> NodeClient:
    return NodeClient(resolve_node_url(home, node))


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def hash_file(path: Path) -> bytes:
    """Return SHA-256 of a file's contents, streamed."""
    import hashlib
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise LocalError(f"cannot read {path}: {exc.strerror}") from exc
    return digest.digest()


def make_count_progress(unit: str, *, quiet: bool = False,
                        transient: bool = False) -> Progress:
    """Return a progress bar on stderr that counts `unit`s (blocks, chunks, tiles...)."""
    return Progress("[progress.description]{task.description}", BarColumn(),
                    TaskProgressColumn(), "{task.completed}/{task.total} " + unit,
                    TimeRemainingColumn(), console=err_console, disable=quiet,
                    transient=transient)
