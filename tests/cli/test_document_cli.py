"""Issued documents from the command line: the generic `tx`/`query` forms drive the service
with no CLI code of its own, and `document check FILE` answers in words and exit statuses.

A real node with its HTTP API runs in-process behind the CLI (as in test_service_cli.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seoulchain.cli import common, gov, txs
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.codec.cbor import decode
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A single-agency node (k = 1) whose operator key is granted `document.issuer`."""
    running = Node(init_home(tmp_path / "home", chain_id="documents-cli",
                             api_port=free_port()))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    for module in (common, gov, txs):
        monkeypatch.setattr(module, "open_client", open_client)
    operator = Home(running.home.root).load_key("operator").public_key.hex()
    granted = invoke(running, "gov", "propose", "grant_role", "role=document.issuer",
                     f"public_key={operator}")
    assert granted.exit_code == 0, granted.output
    yield running
    running.close()


def invoke(node: Node, *args: str) -> Any:
    return RUNNER.invoke(app, [*args, "--home", str(node.home.root)])


def write(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(f"contents of {name}".encode())
    return path


def check(node: Node, path: Path) -> tuple[int, str]:
    result = invoke(node, "document", "check", str(path))
    return result.exit_code, " ".join(result.stdout.split())


def test_issue_correct_revoke_and_check_by_file(node: Node, tmp_path: Path) -> None:
    permit, corrected, unknown = (write(tmp_path, name) for name in
                                  ("permit.pdf", "permit-v2.pdf", "other.pdf"))
    issued = invoke(node, "tx", "document", "issue", f"doc_hash=@{permit}",
                    "kind=business permit", 'metadata={"office": "Mapo-gu"}')
    assert issued.exit_code == 0, issued.output
    code, text = check(node, permit)
    assert code == 0 and text.startswith("VALID: document sha256:")
    assert 'kind "business permit"' in text and "valid with no end" in text
    assert check(node, unknown)[0] == 3
    assert "UNKNOWN:" in check(node, unknown)[1]
    fixed = invoke(node, "tx", "document", "supersede", f"old_hash=@{permit}",
                   f"new_hash=@{corrected}", "reason=wrong lot number")
    assert fixed.exit_code == 0, fixed.output
    code, text = check(node, permit)
    new_hash = common.hash_file(corrected).hex()
    assert code == 11 and text.startswith("SUPERSEDED:")
    assert f"the current version is sha256:{new_hash}" in text
    revoked = invoke(node, "tx", "document", "revoke", f"doc_hash=@{corrected}",
                     "reason=business closed")
    assert revoked.exit_code == 0, revoked.output
    code, text = check(node, corrected)
    assert code == 10 and text.startswith("REVOKED:") and '(reason: "business closed")' in text


def test_check_reports_expired_and_not_yet_valid(node: Node, tmp_path: Path) -> None:
    soon, later = write(tmp_path, "pass.pdf"), write(tmp_path, "licence.pdf")
    now_ms = node.get_status()["block_time_ms"]
    wall_ms = time.time_ns() // 1_000_000
    until = max(now_ms, wall_ms) + 300
    assert invoke(node, "tx", "document", "issue", f"doc_hash=@{soon}", "kind=pass",
                  f"valid_until_ms={until}").exit_code == 0
    assert invoke(node, "tx", "document", "issue", f"doc_hash=@{later}", "kind=licence",
                  f"valid_from_ms={until + 3_600_000}").exit_code == 0
    code, text = check(node, later)
    assert code == 13 and text.startswith("NOT YET VALID:")
    time.sleep(0.4)  # the next block's time is past `until`
    assert invoke(node, "tx", "document", "issue", f"doc_hash={'ab' * 32}",
                  "kind=pass").exit_code == 0
    code, text = check(node, soon)
    assert code == 12 and text.startswith("EXPIRED:")


def test_generic_query_and_json(node: Node, tmp_path: Path) -> None:
    permit = write(tmp_path, "permit.pdf")
    digest = common.hash_file(permit).hex()
    assert invoke(node, "tx", "document", "issue", f"doc_hash=@{permit}",
                  "kind=permit").exit_code == 0
    answer = invoke(node, "query", "document", "check", f"doc_hash={digest}",
                    f"at_ms={2**62}", "--json")
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["result"]["status"] == "valid"
    shown = invoke(node, "document", "check", str(permit), "--json")
    assert shown.exit_code == 0
    result = json.loads(shown.stdout)["result"]
    assert (result["doc_hash"], result["status"]) == (digest, "valid")
    missing = invoke(node, "document", "check", str(tmp_path / "absent.pdf"))
    assert missing.exit_code == 1 and "cannot read" in " ".join(missing.stderr.split())


def test_a_document_record_is_proved_by_a_state_bundle(node: Node, tmp_path: Path) -> None:
    permit = write(tmp_path, "permit.pdf")
    digest = common.hash_file(permit).hex()
    assert invoke(node, "tx", "document", "issue", f"doc_hash=@{permit}",
                  "kind=permit").exit_code == 0
    bundle = tmp_path / "permit.proof.json"
    key = b"doc/".hex() + digest
    proved = invoke(node, "prove", "state", "document", key, "--hex", "--out", str(bundle))
    assert proved.exit_code == 0, proved.output
    verified = RUNNER.invoke(app, ["verify", str(bundle), "--genesis",
                                   str(node.home.root / "genesis.json"), "--json"])
    assert verified.exit_code == 0, verified.output
    facts = json.loads(verified.stdout)["facts"]
    record = decode(bytes.fromhex(facts["value"]))
    assert record["kind"] == "permit" and record["revoked_height"] is None


def check_bundle(node: Node, path: Path, out: Path) -> tuple[int, str]:
    result = invoke(node, "document", "check", str(path), "--bundle", str(out))
    return result.exit_code, result.stdout.strip()


def verify_offline(node: Node, out: Path) -> tuple[int, str]:
    result = RUNNER.invoke(app, ["verify", str(out), "--genesis",
                                 str(node.home.genesis_path), "--json"])
    return result.exit_code, result.stdout


def test_check_writes_a_bundle_that_verify_reads_to_the_same_status(
        node: Node, tmp_path: Path) -> None:
    permit, corrected, unknown = (write(tmp_path, name) for name in
                                  ("permit.pdf", "permit-v2.pdf", "other.pdf"))
    assert invoke(node, "tx", "document", "issue", f"doc_hash=@{permit}",
                  "kind=permit").exit_code == 0
    assert invoke(node, "tx", "document", "supersede", f"old_hash=@{permit}",
                  f"new_hash=@{corrected}", "reason=wrong lot number").exit_code == 0
    assert invoke(node, "tx", "document", "revoke", f"doc_hash=@{corrected}",
                  "reason=business closed").exit_code == 0
    # The last block's state root is certified by the next block's commit.
    assert invoke(node, "tx", "document", "issue", f"doc_hash={'cd' * 32}",
                  "kind=x").exit_code == 0
    expected = [(permit, 11, "SUPERSEDED:", "corrected by sha256:"
                 + common.hash_file(corrected).hex()),
                (corrected, 10, "REVOKED:", '(reason: "business closed")'),
                (unknown, 3, "UNKNOWN:", "was never issued on this chain")]
    for path, exit_code, start, detail in expected:
        out = tmp_path / f"{path.name}.bundle.json"
        code, text = check_bundle(node, path, out)
        assert code == exit_code, text
        assert text.startswith(start) and detail in text
        code, shown = verify_offline(node, out)
        answer = json.loads(shown)
        assert code == 0 and answer["verified"] is True
        assert answer["statement"] == text
        assert answer["facts"]["status"] == start.rstrip(":").lower()
    tampered = json.loads(out.read_bytes())
    tampered["proof"].pop("service")  # read as a notary record: another key
    out.write_text(json.dumps(tampered))
    code, shown = verify_offline(node, out)
    assert code == 2 and json.loads(shown)["step"].startswith("proof against header")
