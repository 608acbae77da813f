"""Credentials from the command line: `seoulchain vc issue|verify|revoke|suspend|status|
present|publish-list`, against a real node with its HTTP API in-process (as in
test_did_cli.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.cli import common, gov, txs
from seoulchain.cli.exit_codes import EXIT_ANSWER_REFUSED
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()
# Built once: turning the typer app into click commands is most of an invocation's time.
COMMAND = typer.main.get_command(app)


class SharedClient(InProcessClient):
    """One in-process API for every command (building the app is the slow part)."""

    def close(self) -> None:
        """Keep the shared API open when a command's `with` block ends."""


@dataclass
class Office:
    node: Node
    issuer: str
    holder: str
    tmp: Path
    shared: SharedClient

    def run(self, *args: str) -> Any:
        return RUNNER.invoke(COMMAND, [*args, "--home", str(self.node.home.root)])

    def issue(self, name: str = "card.json") -> Path:
        out = self.tmp / name
        issued = self.run("vc", "issue", "--type", "residency", "--subject", self.holder,
                          "--claims", '{"residentOf": "11110"}', "--issuer", self.issuer,
                          "--status-list", "rev-1", "--suspension-list", "hold-1",
                          "--out", str(out))
        assert issued.exit_code == 0, issued.output
        return out


def run_ok(office: Office, *args: str) -> str:
    result = office.run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def node_office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    """A one-agency node whose operator key registers DIDs and issues residency
    credentials under its DID, with revocation list rev-1 and suspension list hold-1; the
    key `alice` is the holder's, with a DID of her own. One node serves the module."""
    tmp_path = tmp_path_factory.mktemp("vc-cli")
    running = Node(init_home(tmp_path / "home", chain_id="vc-cli", api_port=free_port()))
    shared = SharedClient(running)

    def open_client(home: Path, url: str | None) -> NodeClient:
        return shared

    with pytest.MonkeyPatch.context() as patch:
        for module in (common, gov, txs):
            patch.setattr(module, "open_client", open_client)
        office = Office(running, "", "", tmp_path, shared)
        operator = Home(running.home.root).load_key("operator").public_key.hex()
        for role in ("did.registrar", "vc.issuer.residency"):
            run_ok(office, "gov", "propose", "grant_role", f"role={role}",
                   f"public_key={operator}")
        run_ok(office, "keys", "create", "alice")
        office.issuer = create_did(office, "operator")
        office.holder = create_did(office, "alice")
        run_ok(office, "tx", "vc", "register_issuer", f"did={office.issuer}", "type=residency")
        for list_id, purpose in (("rev-1", "revocation"), ("hold-1", "suspension")):
            run_ok(office, "tx", "vc", "create_status_list", f"list_id={list_id}",
                   f"issuer={office.issuer}", f"purpose={purpose}", "size=131072")
        yield office
    shared.http.close()
    running.close()


@pytest.fixture
def office(node_office: Office, tmp_path: Path) -> Iterator[Office]:
    """The module's node, with this test's own directory for files and a fresh API (whose
    per-client rate limit starts full, as each test's commands were a new client's)."""
    node_office.shared.http.close()
    node_office.shared.http = TestClient(create_app(node_office.node))
    yield Office(node_office.node, node_office.issuer, node_office.holder, tmp_path,
                 node_office.shared)


def create_did(office: Office, key_name: str) -> str:
    created = office.run("did", "create", "--subject-key", key_name,
                         "--commitment", os.urandom(32).hex(), "--json")
    assert created.exit_code == 0, created.output
    return json.loads(created.stdout)["did"]


def test_issue_verify_suspend_lift_and_revoke(office: Office) -> None:
    card = office.issue()
    credential = json.loads(card.read_text())
    assert credential["credentialSubject"] == {"id": office.holder, "residentOf": "11110"}
    assert credential["id"].startswith("urn:uuid:")
    assert [entry["statusPurpose"] for entry in credential["credentialStatus"]] == \
        ["revocation", "suspension"]
    verified = run_ok(office, "vc", "verify", str(card))
    assert "ok    proof:" in verified and f"valid: residency credential of {office.holder}" \
        in verified
    assert run_ok(office, "vc", "suspend", str(card))
    suspended = office.run("vc", "verify", str(card))
    assert suspended.exit_code == EXIT_ANSWER_REFUSED
    assert "FAIL  status: the credential was suspended" in suspended.stdout
    assert "ok    role:" in suspended.stdout
    run_ok(office, "vc", "suspend", str(card), "--lift")
    assert run_ok(office, "vc", "verify", str(card), "--type", "residency")
    run_ok(office, "vc", "revoke", str(card))
    assert "revocation  rev-1" in run_ok(office, "vc", "status", str(card))
    assert "SET at height" in run_ok(office, "vc", "status", str(card))
    revoked = office.run("vc", "verify", str(card), "--json")
    assert revoked.exit_code == EXIT_ANSWER_REFUSED
    assert json.loads(revoked.stdout)["check"] == "status"
    again = office.run("vc", "revoke", str(card))
    assert again.exit_code == 1 and "already set" in again.stderr


def test_a_tampered_file_is_rejected_at_the_anchor_check(office: Office) -> None:
    card = office.issue()
    card.write_text(card.read_text().replace('"11110"', '"11111"'))
    tampered = office.run("vc", "verify", str(card))
    assert tampered.exit_code == EXIT_ANSWER_REFUSED
    assert "FAIL  anchor: credential" in tampered.stdout


def test_present_is_accepted_once_for_the_verifiers_challenge(office: Office) -> None:
    card = office.issue()
    key_file = str(Home(office.node.home.root).key_path("alice"))
    vp = office.tmp / "vp.json"
    run_ok(office, "vc", "present", str(card), "--holder-key", key_file,
           "--challenge", "n-5512", "--domain", "desk.mapo.example", "--out", str(vp))
    store = str(office.tmp / "verifier" / "challenges.json")
    base = ("vc", "verify", str(vp), "--challenge", "n-5512", "--replay-store", store)
    wrong = office.run(*base, "--domain", "other.example")
    assert wrong.exit_code == EXIT_ANSWER_REFUSED and "wrong challenge or domain" in wrong.stdout
    accepted = run_ok(office, *base, "--domain", "desk.mapo.example")
    assert f"signed by the holder {office.holder}" in accepted
    replayed = office.run(*base, "--domain", "desk.mapo.example")
    assert replayed.exit_code == EXIT_ANSWER_REFUSED and "already used" in replayed.stdout
    unbound = office.run("vc", "verify", str(vp), "--replay-store", store)
    assert unbound.exit_code == 1 and "--challenge and --domain" in unbound.stderr


def test_publish_list_anchors_the_status_list_credential(office: Office) -> None:
    card = office.issue()
    run_ok(office, "vc", "revoke", str(card))
    published = office.tmp / "rev-1.json"
    run_ok(office, "vc", "publish-list", "rev-1", "--out", str(published))
    listing = office.node.query("vc", "status_list", {"list_id": "rev-1"})
    assert listing["anchor"]["current"] is True
    other = office.issue("other.json")
    checked = run_ok(office, "vc", "verify", str(other), "--status-list", str(published))
    assert "ok    status:" in checked


def test_issue_refuses_bad_claims_and_unknown_lists(office: Office) -> None:
    base = ("vc", "issue", "--type", "residency", "--subject", office.holder, "--issuer",
            office.issuer, "--out", str(office.tmp / "x.json"))
    bad = office.run(*base, "--claims", "{not json", "--status-list", "rev-1")
    assert bad.exit_code == 1 and "--claims is not JSON" in bad.stderr
    unknown = office.run(*base, "--claims", '{"residentOf": "Mapo-gu"}', "--status-list",
                         "nope")
    assert unknown.exit_code == 1 and "'nope' does not exist" in unknown.stderr
    wrong_purpose = office.run(*base, "--claims", '{"residentOf": "Mapo-gu"}',
                               "--status-list", "hold-1")
    assert wrong_purpose.exit_code == 1 and "is for suspension" in wrong_purpose.stderr
    assert not (office.tmp / "x.json").exists()
