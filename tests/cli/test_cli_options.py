"""CLI: every command is registered the same way, and `--home` and `--json` mean one thing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from seoulchain.cli.common import require_free_port
from seoulchain.cli.main import app
from seoulchain.errors import LocalError
from seoulchain.node.home import init_home


def iter_commands(command: Any, path: str = "seoulchain") -> Iterator[tuple[str, Any]]:
    """Yield every command and group of the CLI (typer's click objects) with its full name."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from iter_commands(sub, f"{path} {name}")


COMMANDS = list(iter_commands(typer.main.get_command(app)))
# `sim` reports a bad option value itself, with click's usage status 2 (tests/sim).
REPORTS_OWN_ERRORS = {"seoulchain sim"}


def get_option(command: Any, flag: str) -> Any:
    return next((param for param in command.params
                 if param.param_type_name == "option" and flag in param.opts), None)


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_cli_json_is_always_the_print_json_flag(name: str, command: Any) -> None:
    """`--json` prints JSON to stdout wherever it exists; files are `--json-out FILE`."""
    option = get_option(command, "--json")
    if option is not None:
        assert option.is_flag and option.help == "Print JSON for scripts."


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_cli_home_is_defined_once(name: str, command: Any) -> None:
    """Every `--home` is cli/common.py's: the same help and SEOULCHAIN_HOME fallback."""
    option = get_option(command, "--home")
    if option is not None:
        assert (option.opts, option.envvar, option.help) == (
            ["--home"], "SEOULCHAIN_HOME", "Node home or devnet directory.")


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_cli_every_command_reports_errors(name: str, command: Any) -> None:
    """Each command's function is wrapped in `reports_errors`: a typed error is one line."""
    callback = command.callback
    if callback is None or name in REPORTS_OWN_ERRORS or (
            hasattr(command, "commands") and name != "seoulchain bench"):
        return  # a group without an action of its own
    original = getattr(callback, "__wrapped__", callback)  # typer's own wrapper
    assert getattr(original, "__wrapped__", None) is not None, name


def test_cli_demo_refuses_a_home_that_is_not_a_demo_chain(tmp_path: Path) -> None:
    """`demo` with SEOULCHAIN_HOME set to a real node's home never seeds demo data into it."""
    home = init_home(tmp_path / "node", chain_id="seoul-1")
    before = sorted(path.name for path in home.root.rglob("*"))
    result = CliRunner().invoke(app, ["demo"], env={"SEOULCHAIN_HOME": str(home.root)})
    assert result.exit_code == 1
    assert "holds chain 'seoul-1', not a demo chain" in " ".join(result.output.split())
    assert sorted(path.name for path in home.root.rglob("*")) == before


def test_cli_a_taken_port_is_named_by_its_config_setting() -> None:
    """A node start refused for a busy port says which config.toml setting to change."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LocalError, match=r"\(\[p2p\] listen_port\) is in use.*Change "
                                             r"\[p2p\] listen_port in config.toml"):
            require_free_port("127.0.0.1", port, "[p2p] listen_port")


def test_cli_error_lines_print_config_settings_verbatim(tmp_path: Path) -> None:
    """An error naming `[api] port` prints it as written, not eaten as console markup."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        home = tmp_path / "node"
        init_home(home, api_port=taken.getsockname()[1])
        result = CliRunner().invoke(app, ["start", "--home", str(home)])
    assert result.exit_code == 1
    assert "([api] port) is in use" in " ".join(result.output.split())
