"""Shared CLI plumbing: consoles, error reporting, option types, reaching a node."""

from __future__ import annotations

import functools
import json
import math
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

HomeOption = Annotated[Path, typer.Option("--home", help="Node home or devnet directory.",
                                          envvar="SEOULCHAIN_HOME")]
NodeOption = Annotated[str | None, typer.Option(
    "--node", help="Node API URL (default: the API address in the home's config).")]
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
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from exc
    return wrapper  # type: ignore[return-value]


def resolve_node_url(home: Path, node: str | None) -> str:
    """Return the node URL to talk to: `--node`, else a live node of the home or devnet."""
    if node:
        return node
    from seoulchain.cli.network import get_node_urls, get_start_hint
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
