"""Polls from the command line: `seoulchain vote create|trustee-keygen|credentials|cast|
audit-ballot|close|tally|decrypt|verify|export|show` against a node with its HTTP API
in-process (as in test_vc_cli.py); the exported archive is checked by belenios-tool."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner

from seoulchain.cli import common, gov, txs
from seoulchain.cli.exit_codes import EXIT_AUDIT_FAILED, EXIT_NOT_FOUND
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()
COMMAND = typer.main.get_command(app)
BELENIOS_TOOL = Path("/usr/bin/belenios-tool")
# belenios-tool verifies an archive of a few ballots in well under this.
BELENIOS_VERIFY_TIMEOUT_S = 120
SPEC = {"title": "Mapo-gu participatory budget 2027",
        "questions": [{"question": "Which projects should the district fund?",
                       "answers": ["Playground", "Bike lane", "Library garden"],
                       "min": 1, "max": 2},
                      {"question": "Extend the night bus?", "answers": ["Yes", "No"],
                       "min": 1, "max": 1, "blank": True}],
        "eligibility": {"kind": "list", "list_hash": "5e" * 32}}


class SharedClient(InProcessClient):
    """One in-process API for every command (building the app is the slow part)."""

    def close(self) -> None:
        """Keep the shared API open when a command's `with` block ends."""


@dataclass
class Office:
    node: Node
    tmp: Path

    def run(self, *args: str) -> Any:
        return RUNNER.invoke(COMMAND, [*args, "--home", str(self.node.home.root)])

    def keygen(self, out: Path) -> None:
        made = RUNNER.invoke(COMMAND, ["vote", "trustee-keygen", "--out", str(out)])
        assert made.exit_code == 0, made.output

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    """A one-agency node whose operator organises polls; the key `trustee` decrypts."""
    tmp_path = tmp_path_factory.mktemp("vote-cli")
    running = Node(init_home(tmp_path / "home", chain_id="vote-cli", api_port=free_port()))
    shared = SharedClient(running)

    def open_client(home: Path, url: str | None) -> NodeClient:
        return shared

    with pytest.MonkeyPatch.context() as patch:
        for module in (common, gov, txs):
            patch.setattr(module, "open_client", open_client)
        office = Office(running, tmp_path)
        operator = Home(running.home.root).load_key("operator").public_key.hex()
        office.ok("gov", "propose", "grant_role", "role=vote.organiser",
                  f"public_key={operator}")
        office.ok("keys", "create", "trustee")
        yield office
    shared.http.close()
    running.close()


def test_poll_from_creation_to_verified_result_and_belenios_archive(office: Office) -> None:
    keys = office.tmp / "trustee-keys"
    office.keygen(keys)
    assert (keys / "trustee.privkey").stat().st_mode & 0o777 == 0o600
    spec = office.tmp / "poll.json"
    spec.write_text(json.dumps(SPEC))
    office.ok("vote", "create", "budget", "--spec", str(spec), "--trustee",
              f"trustee={keys / 'trustee.pubkey'}", "--opens-in", "3", "--closes-in", "40")
    private = office.tmp / "credentials.txt"
    office.ok("vote", "credentials", "budget", "--count", "3", "--out", str(private))
    voters = private.read_text().split()
    assert len(voters) == 3
    audited = office.run("vote", "audit-ballot", "budget", "--credential", voters[0],
                         "--choices", "1,2;2")
    assert audited.exit_code == 0 and "it encrypts your choices" in audited.stdout
    for credential, choices in zip(voters, ["1,2;1", "3;blank", "2;2"], strict=True):
        cast = office.ok("vote", "cast", "budget", "--credential", credential,
                         "--choices", choices)
        assert cast.startswith("ballot tracker ")
    office.ok("vote", "cast", "budget", "--credential", voters[0], "--choices", "3;1")
    shown = office.ok("vote", "show", "budget")
    assert "turnout 3 of 3 credentials (4 ballots cast)" in shown
    assert "trustees: all 1 decrypt; 0 partial decryption(s) posted, 1 needed" in shown
    office.ok("vote", "close", "budget")
    summed = office.ok("vote", "tally", "budget")
    assert "tallied 3 ballots" in summed and "0 of 1 trustees decrypted" in summed
    office.ok("vote", "decrypt", "budget", "--private-key", str(keys / "trustee.privkey"),
              "--key", "trustee")
    published = office.ok("vote", "tally", "budget")
    assert 'result {"result":[[0,1,2],[1,1,1]]}' in published
    verified = office.ok("vote", "verify", "budget")
    assert [line.split(":")[0] for line in verified.splitlines()] == [
        "ok    election", "ok    credentials", "ok    ballots", "ok    tally",
        "ok    decryptions", "ok    result"]
    archive = office.tmp / "archive"
    office.ok("vote", "export", "budget", str(archive))
    assert len(list(archive.glob("*.bel"))) == 1


@pytest.mark.e2e
@pytest.mark.skipif(not BELENIOS_TOOL.exists(), reason="belenios-tool is not installed "
                                                       "(scripts/install-belenios)")
def test_exported_archive_passes_belenios_tool_verify(office: Office) -> None:
    keys = office.tmp / "archived-keys"
    office.keygen(keys)
    spec = office.tmp / "archived.json"
    spec.write_text(json.dumps(SPEC))
    office.ok("vote", "create", "archived", "--spec", str(spec), "--trustee",
              f"trustee={keys / 'trustee.pubkey'}", "--opens-in", "3", "--closes-in", "40")
    private = office.tmp / "archived-credentials.txt"
    office.ok("vote", "credentials", "archived", "--count", "2", "--out", str(private))
    first, second = private.read_text().split()
    office.ok("vote", "cast", "archived", "--credential", first, "--choices", "1;1")
    office.ok("vote", "cast", "archived", "--credential", second, "--choices", "2,3;blank")
    office.ok("vote", "cast", "archived", "--credential", first, "--choices", "3;2")
    office.ok("vote", "close", "archived")
    office.ok("vote", "tally", "archived")
    office.ok("vote", "decrypt", "archived", "--private-key", str(keys / "trustee.privkey"),
              "--key", "trustee")
    assert 'result {"result":[[0,1,2],[1,0,1]]}' in office.ok("vote", "tally", "archived")
    archive = office.tmp / "archived"
    office.ok("vote", "export", "archived", str(archive))
    verified = subprocess.run([str(BELENIOS_TOOL), "election", "verify", "--dir",
                               str(archive)], capture_output=True, text=True,
                              timeout=BELENIOS_VERIFY_TIMEOUT_S, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_cast_reports_a_refused_ballot_with_its_reason(office: Office) -> None:
    spec = office.tmp / "small.json"
    spec.write_text(json.dumps(SPEC))
    keys = office.tmp / "small-keys"
    office.keygen(keys)
    office.ok("vote", "create", "small", "--spec", str(spec), "--trustee",
              f"trustee={keys / 'trustee.pubkey'}", "--opens-in", "3", "--closes-in", "30")
    private = office.tmp / "small-credentials.txt"
    office.ok("vote", "credentials", "small", "--count", "1", "--out", str(private))
    stranger = "9wA-E7a-H8Z-Ky6-MN2"
    refused = office.run("vote", "cast", "small", "--credential", private.read_text().strip(),
                         "--choices", "1,2,3;1")
    assert refused.exit_code != 0 and "selects 3 answers, not between 1 and 2" in \
        refused.output
    wrong = office.run("vote", "cast", "small", "--credential", stranger, "--choices", "1;1")
    assert wrong.exit_code != 0 and "error:" in wrong.output


def test_show_and_verify_an_unknown_poll(office: Office) -> None:
    shown = office.run("vote", "show", "nope")
    assert shown.exit_code == EXIT_NOT_FOUND and "no poll 'nope'" in shown.stdout
    verified = office.run("vote", "verify", "nope")
    assert verified.exit_code not in (0, EXIT_AUDIT_FAILED) and "no poll 'nope'" in \
        verified.output
