"""Shared CLI plumbing: consoles, error reporting, option types, reaching a node."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from seoulchain.client.http import NodeClient
from seoulchain.errors import LocalError, SeoulchainError
from seoulchain.node.home import Home

console = Console(soft_wrap=True)
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


def resolve_node_url(home: Home, node: str | None) -> str:
    """Return the node URL to talk to: `--node`, else the home's configured API address."""
    if node:
        return node
    home.require_initialised()
    config = home.load_config()
    return f"http://{config.api.host}:{config.api.port}"


def open_client(home: Path, node: str | None) -> NodeClient:
    return NodeClient(resolve_node_url(Home(home), node))


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
