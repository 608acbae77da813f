"""Which directories each command accepts as --home, and hints that lead somewhere.

A devnet directory works wherever a node home does (a command that needs one node's files
takes node-0, or --node-index); `start` and `init` refuse what they cannot use with a
message naming the command that works; `init` never leaves a half-made home behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import seoulchain.node.home as home_module
from seoulchain.cli.main import app
from seoulchain.cli.network import format_commands_to_try
from seoulchain.node.devnet import create_devnet
from seoulchain.node.home import init_home

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; return its exit code and everything it printed."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def snapshot(root: Path) -> dict[str, str]:
    """Return every path under `root` (and root itself) with a digest of its contents."""
    if root.is_file():
        return {str(root): hashlib.sha256(root.read_bytes()).hexdigest()}
    tree = {}
    for path in sorted(root.rglob("*")):
        tree[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file()
                           else "dir")
    return tree


def get_hint(output: str) -> list[str]:
    """Return the first `seoulchain ...` command an error message tells the user to run."""
    match = re.search(r"`(seoulchain [^`]+)`|with: (seoulchain .+?)(?:$|\s\()", output,
                      re.MULTILINE)
    assert match, f"no command hint in: {output}"
    return shlex.split(match.group(1) or match.group(2))[1:]


@pytest.fixture
def devnet(tmp_path: Path) -> Path:
    root = tmp_path / "devnet"
    create_devnet(root, 2, base_port=27_900)
    return root


def test_init_on_devnet_folder_is_refused_and_changes_nothing(devnet: Path) -> None:
    before = snapshot(devnet.parent)
    code, output = run("init", "--home", str(devnet))
    assert code == 1
    assert "is a devnet directory" in output and "Traceback" not in output
    assert get_hint(output) == ["devnet", "--home", str(devnet)]
    assert snapshot(devnet.parent) == before


def test_init_on_a_file_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("not a home")
    before = snapshot(tmp_path)
    code, output = run("init", "--home", str(target))
    assert code == 1 and "is a file" in output
    assert snapshot(tmp_path) == before


def test_init_on_a_partial_home_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    partial = tmp_path / "home"
    (partial / "keys").mkdir(parents=True)
    (partial / "keys" / "operator.key").write_text("kept as it is")
    before = snapshot(tmp_path)
    code, output = run("init", "--home", str(partial))
    assert code == 1 and "not empty" in output and "Traceback" not in output
    assert snapshot(tmp_path) == before


def test_init_leaves_nothing_behind_when_writing_fails(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(home_module.Genesis, "save", fail)
    with pytest.raises(OSError):
        init_home(tmp_path / "new" / "nested" / "home")
    assert list(tmp_path.iterdir()) == []


def test_init_fills_an_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "home"
    empty.mkdir()
    code, output = run("init", "--home", str(empty), "--api-port", "27999")
    assert code == 0, output
    assert (empty / "config.toml").is_file() and (empty / "keys" / "validator.key").is_file()
    assert [path.name for path in tmp_path.iterdir()] == ["home"]


def test_start_on_a_partial_home_names_a_command_that_works(tmp_path: Path) -> None:
    partial = tmp_path / "home"
    (partial / "data").mkdir(parents=True)
    code, output = run("start", "--home", str(partial))
    assert code == 1 and "restore them from a backup" in output
    hint = get_hint(output)
    assert hint[:3] == ["init", "--home", "NEW"]
    code, output = run("init", "--home", str(tmp_path / "new"), "--api-port", "27998")
    assert code == 0, output


def test_start_on_a_devnet_says_which_homes_to_pass(devnet: Path) -> None:
    code, output = run("start", "--home", str(devnet))
    assert code == 1
    assert f"--home {devnet / 'node-0'}" in output and str(devnet / "node-1") in output
    assert f"seoulchain devnet --home {devnet}" in output
    code, output = run("start", "--home", str(devnet), "--node-index", "5")
    assert code == 1 and "--node-index 0 to 1" in output


def test_state_sync_on_a_devnet_suggests_only_options_it_has(devnet: Path) -> None:
    code, output = run("state-sync", "--home", str(devnet), "--from", "http://127.0.0.1:1")
    assert code == 1 and f"--home {devnet / 'node-0'}" in output
    assert "--node-index" not in output


def test_start_on_a_missing_home_leads_to_init_which_works(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    code, output = run("start", "--home", str(missing))
    assert code == 1
    hint = get_hint(output)
    assert hint == ["init", "--home", str(missing)]
    code, output = run(*hint, "--api-port", "27997")
    assert code == 0, output


def test_audit_and_export_tiles_take_a_devnet_directory(devnet: Path, tmp_path: Path) -> None:
    # A devnet that never ran: the errors are about node-0's (node-1's) chain, not the home.
    code, output = run("audit", "--home", str(devnet), "--quiet")
    assert code == 1 and f"no chain data at {devnet / 'node-0'}" in output, output
    code, output = run("audit", "--home", str(devnet), "--quiet", "--node-index", "1")
    assert code == 1 and f"no chain data at {devnet / 'node-1'}" in output, output
    code, output = run("export-tiles", "--home", str(devnet), str(tmp_path / "tiles"))
    assert code == 1 and f"no chain data at {devnet / 'node-0'}" in output, output
    code, output = run("audit", "--home", str(tmp_path), "--node-index", "0")
    assert code == 1 and "needs a devnet directory" in output


def test_tx_on_a_stopped_devnet_hints_at_the_devnet_command(devnet: Path,
                                                            tmp_path: Path) -> None:
    document = tmp_path / "permit.txt"
    document.write_text("permit")
    code, output = run("tx", "notary", "anchor", str(document), "--home", str(devnet))
    assert code == 1 and "no node answered" in output
    assert get_hint(output) == ["devnet", "--home", str(devnet)]
    code, output = run("tx", "status", "ab" * 32, "--home", str(devnet))
    assert code == 1 and "no node answered" in output
    code, output = run("tx", "status", "xyz", "--home", str(devnet))
    assert code == 1 and "64 hex digits" in output


def test_banner_commands_run_as_written_without_the_venv_on_path(tmp_path: Path) -> None:
    """Each command the demo banner prints starts an executable that exists as typed."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep)
                           if part != bin_dir)
    script = ("import sys; from pathlib import Path; "
              "from seoulchain.cli.network import format_commands_to_try; "
              "print(format_commands_to_try(Path(sys.argv[1])))")
    banner = subprocess.run([sys.executable, "-c", script, ".seoulchain/devnet"],
                            capture_output=True, text=True, cwd=tmp_path, check=True,
                            env={**os.environ, "PATH": path}).stdout
    lines = [line.strip() for line in banner.splitlines()[1:]]
    assert lines[0] == f"cd {tmp_path}"
    for line in lines[1:]:
        executable = shlex.split(line)[0]
        shown = subprocess.run(f"{lines[0]} && {shlex.quote(executable)} --help", shell=True,
                               capture_output=True, text=True, env={**os.environ, "PATH": path},
                               cwd="/")
        assert shown.returncode == 0, (line, shown.stderr)
    assert "status --home .seoulchain/devnet" in banner
    assert format_commands_to_try(Path("x")).startswith("try, in another terminal:")
