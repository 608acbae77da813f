"""DIDs from the command line: `seoulchain did create|show|rotate|deactivate|history`, and
the client helpers credential verification uses (`resolve_did`, `get_assertion_key`).

A real node with its HTTP API runs in-process behind the CLI (as in test_service_cli.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seoulchain.cli import common, gov, txs
from seoulchain.cli.main import app
from seoulchain.client.did import DidNotResolved, get_assertion_key, resolve_did
from seoulchain.client.http import NodeClient
from seoulchain.crypto.multikey import encode_multikey
from seoulchain.errors import LocalError
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.services.did import DidKeyError, compute_did
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A single-agency node (k = 1) whose operator key is a DID registrar, with the keys
    `alice` and `bob` in its home."""
    running = Node(init_home(tmp_path / "home", chain_id="did-cli", api_port=free_port()))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    for module in (common, gov, txs):
        monkeypatch.setattr(module, "open_client", open_client)
    operator = Home(running.home.root).load_key("operator").public_key.hex()
    granted = invoke(running, "gov", "propose", "grant_role", "role=did.registrar",
                     f"public_key={operator}")
    assert granted.exit_code == 0, granted.output
    for name in ("alice", "bob"):
        assert invoke(running, "keys", "create", name).exit_code == 0
    yield running
    running.close()


def invoke(node: Node, *args: str) -> Any:
    return RUNNER.invoke(app, [*args, "--home", str(node.home.root)])


def public_key(node: Node, name: str) -> bytes:
    return Home(node.home.root).load_key(name).public_key


def words(text: str) -> str:
    return " ".join(text.split())


def create_did(node: Node, *options: str) -> tuple[str, int]:
    """Create a DID for alice; return it and the height of its creation."""
    created = invoke(node, "did", "create", "--subject-key", "alice",
                     "--commitment", os.urandom(32).hex(), "--json", *options)
    assert created.exit_code == 0, created.output
    answer = json.loads(created.stdout)
    assert answer["did"] == compute_did(bytes.fromhex(answer["hash"]))
    return answer["did"], answer["height"]


def test_create_rotate_show_at_heights_history_and_deactivate(node: Node) -> None:
    created = invoke(node, "did", "create", "--subject-key", "alice",
                     "--commitment", "ab" * 32)
    assert created.exit_code == 0, created.output
    did = created.stdout.splitlines()[0]
    assert did.startswith("did:seoul:") and "committed at height" in created.stdout
    alice = encode_multikey(public_key(node, "alice"))
    shown = invoke(node, "did", "show", did)
    assert shown.exit_code == 0, shown.output
    assert "status active" in words(shown.stdout)
    assert f"key-1 {alice} (authentication, assertionMethod)" in words(shown.stdout)
    created_at = node.engine.height
    rotated = invoke(node, "did", "rotate", did, "--new-key", "bob", "--retire", "key-1",
                     "--key", "alice")
    assert rotated.exit_code == 0, rotated.output
    bob = encode_multikey(public_key(node, "bob"))
    latest = words(invoke(node, "did", "show", did).stdout)
    assert f"key-2 {bob}" in latest and "key-1" not in latest
    assert f"updated at height {created_at + 1}" in latest
    past = invoke(node, "did", "show", did, "--height", str(created_at))
    assert past.exit_code == 0 and f"key-1 {alice}" in words(past.stdout)
    assert f"next version 2 at height {created_at + 1}" in words(past.stdout)
    stale = invoke(node, "did", "rotate", did, "--new-key", "alice", "--key", "alice")
    assert stale.exit_code == 1
    assert "not a current authentication key" in words(stale.stderr)
    history = invoke(node, "did", "history", did)
    assert history.exit_code == 0
    text = words(history.stdout)
    assert f"1 height {created_at}" in text and f"2 height {created_at + 1}" in text
    assert f"{'ab' * 32} height {created_at} current" in text
    assert invoke(node, "did", "deactivate", did, "--key", "bob").exit_code == 0
    gone = words(invoke(node, "did", "show", did).stdout)
    assert "status DEACTIVATED" in gone and "keys (none)" in gone
    again = invoke(node, "did", "deactivate", did, "--key", "bob")
    assert again.exit_code == 1 and "was deactivated" in words(again.stderr)


def test_show_json_is_the_did_resolution_result_and_unknown_dids_exit_3(node: Node) -> None:
    did, _ = create_did(node)
    shown = invoke(node, "did", "show", did, "--json")
    assert shown.exit_code == 0
    result = json.loads(shown.stdout)
    assert result["didDocument"]["id"] == did
    assert result["didResolutionMetadata"] == {"contentType": "application/did+ld+json"}
    ghost = compute_did(os.urandom(32))
    missing = invoke(node, "did", "show", ghost)
    assert missing.exit_code == 3 and "notFound" in missing.stdout
    before = invoke(node, "did", "show", did, "--height", "1", "--json")
    assert before.exit_code == 3
    assert json.loads(before.stdout)["didResolutionMetadata"]["error"] == "notFound"
    assert invoke(node, "did", "history", ghost).exit_code == 3


def test_create_takes_a_multikey_or_hex_key_and_a_controller(node: Node) -> None:
    boss, _ = create_did(node)
    bob = public_key(node, "bob")
    for given in (encode_multikey(bob), bob.hex()):
        created = invoke(node, "did", "create", "--public-key", given, "--commitment",
                         os.urandom(32).hex(), "--controller", boss, "--json")
        assert created.exit_code == 0, created.output
        did = json.loads(created.stdout)["did"]
        document = json.loads(invoke(node, "did", "show", did, "--json").stdout)["didDocument"]
        assert document["controller"] == boss
        assert document["verificationMethod"][0]["publicKeyMultibase"] == encode_multikey(bob)


@pytest.mark.parametrize(("options", "message"), [
    (["--subject-key", "alice", "--commitment", "abcd"], "--commitment must be 64 hex"),
    (["--public-key", "z6MkNOT", "--commitment", "ab" * 32], "--public-key"),
    (["--public-key", "00" * 31, "--commitment", "ab" * 32], "neither 64 hex digits"),
    (["--commitment", "ab" * 32], "give either --public-key"),
    (["--subject-key", "alice", "--public-key", "00" * 32, "--commitment", "ab" * 32],
     "give either --public-key"),
    (["--subject-key", "carol", "--commitment", "ab" * 32], "no key named 'carol'"),
])
def test_create_refuses_bad_input_before_sending(tmp_path: Path, options: list[str],
                                                 message: str) -> None:
    home = init_home(tmp_path / "home", chain_id="did-cli", api_port=free_port()).root
    assert RUNNER.invoke(app, ["keys", "create", "alice", "--home", str(home)]).exit_code == 0
    refused = RUNNER.invoke(app, ["did", "create", *options, "--home", str(home)])
    assert refused.exit_code == 1 and message in words(refused.stderr)  # no node was asked


def test_create_by_a_key_without_the_registrar_role_fails(node: Node) -> None:
    refused = invoke(node, "did", "create", "--subject-key", "bob", "--commitment",
                     "cd" * 32, "--key", "alice")
    assert refused.exit_code == 1 and "did.registrar" in words(refused.stderr)


def test_client_helpers_resolve_and_find_the_assertion_key(node: Node) -> None:
    did, created_at = create_did(node)
    assert invoke(node, "did", "rotate", did, "--new-key", "bob", "--retire", "key-1",
                  "--key", "alice").exit_code == 0
    client = InProcessClient(node)
    assert get_assertion_key(client, f"{did}#key-2") == public_key(node, "bob")
    assert get_assertion_key(client, f"{did}#key-1", created_at) == public_key(node, "alice")
    with pytest.raises(DidKeyError, match="not in the assertionMethod"):
        get_assertion_key(client, f"{did}#key-1")
    assert resolve_did(client, did, created_at)["didDocumentMetadata"]["versionId"] == "1"
    with pytest.raises(LocalError, match="past the node's latest committed height"):
        resolve_did(client, did, node.engine.height + 1)
    with pytest.raises(DidNotResolved, match="notFound"):
        get_assertion_key(client, f"{compute_did(os.urandom(32))}#key-1")
    assert invoke(node, "did", "deactivate", did, "--key", "bob").exit_code == 0
    with pytest.raises(DidNotResolved, match="deactivated"):
        get_assertion_key(client, f"{did}#key-2")
