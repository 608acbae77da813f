"""Shared CLI plumbing: consoles, error reporting, option types, reaching a node."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

from seoulchain.client.http import NodeClient
from seoulchain.errors import LocalError, SeoulchainError

# Output to a pipe or file gets a wide fixed width so tables are not squeezed to 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, soft_wrap=True)

HomeOption = Annotated[Path, typer.Option("--home", help="Node home directory.",
                                          envvar="SEOULCHAIN_HOME")]
NodeOption = Annotated[str | None, typer.Option(
    "--node", help="Node API URL (default: the API address in the home's config).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(function: F) -> F:
    """Turn the package's typed errors into a one-line message and exit status 1."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SeoulchainError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc
    return wrapper  # type: ignore[return-value]


def resolve_node_url(home: Path, node: str | None) -> str:
    """Return the node URL to talk to: `--node`, else a live node of the home or devnet."""
    if node:
        return node
    from seoulchain.cli.network import get_node_urls
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
                          f"`seoulchain start --home {home}` (or `seoulchain devnet`)")


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
