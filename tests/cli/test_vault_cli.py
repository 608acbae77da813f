"""`seoulchain vault`: records into an agency's vault and back, logged reads, erasure, and a
correction that supersedes the DID's record commitment on a real in-process node."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seoulchain.cli import common, gov, txs, vault
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.crypto import SigningKey, sha256
from seoulchain.node.devnet import create_devnet
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.services.did import compute_did
from seoulchain.vault import RECORD_BYTES_MAX, encode_record
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()
SUBJECT = "did:seoul:4HxkT7cqWeBv9Xz2Lr8mQp"
RECORD = {"name": "Park Jisoo", "address": "12 Mapo-daero, Mapo-gu"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One node home for the vault-only tests (each test uses its own subject)."""
    return init_home(tmp_path_factory.mktemp("vault") / "home").root


def invoke(home: Path, *args: str, input: str | None = None) -> Any:
    return RUNNER.invoke(app, ["vault", *args, "--home", str(home)], input=input)


def output_of(result: Any) -> str:
    return " ".join(result.output.split())


def test_put_get_access_log_erase(home: Path) -> None:
    subject = "did:seoul:put-get-erase"
    put = invoke(home, "put", subject, "--record-json", json.dumps(RECORD))
    assert put.exit_code == 0, put.output
    commitment = re.search(r"commitment ([0-9a-f]{64})", put.output).group(1)  # type: ignore[union-attr]
    got = invoke(home, "get", subject, "--accessor", "officer-3", "--purpose", "housing aid",
                 "--json")
    assert got.exit_code == 0, got.output
    answer = json.loads(got.stdout)
    assert answer["record"] == RECORD and answer["commitment"] == commitment
    assert sha256(bytes.fromhex(answer["salt"]), encode_record(RECORD)).hex() == commitment
    log = invoke(home, "access-log", subject)
    assert log.exit_code == 0 and "officer-3" in log.stdout and "housing aid" in log.stdout
    erased = invoke(home, "erase", subject, "--yes")
    assert erased.exit_code == 0, erased.output
    assert "links to nothing" in output_of(erased)
    after = invoke(home, "get", subject, "--accessor", "officer-3", "--purpose", "again")
    assert after.exit_code == 3 and "erased at" in output_of(after)
    log = invoke(home, "access-log", subject, "--json")
    assert [read["accessor"] for read in json.loads(log.stdout)["reads"]] == ["officer-3"]


def test_vault_files_live_in_the_node_home(home: Path) -> None:
    assert invoke(home, "put", "did:seoul:files", "--record-json", "{}").exit_code == 0
    node_home = Home(home)
    assert (node_home.data_dir / "vault.sqlite").stat().st_mode & 0o777 == 0o600
    assert (node_home.keys_dir / "vault.secret").stat().st_mode & 0o777 == 0o600


def test_get_of_an_unknown_subject_exits_3(home: Path) -> None:
    result = invoke(home, "get", "did:seoul:nobody", "--accessor", "a", "--purpose", "p")
    assert result.exit_code == 3 and "holds no record of did:seoul:nobody" in output_of(result)
    assert invoke(home, "access-log", "did:seoul:nobody").exit_code == 3
    assert invoke(home, "erase", "did:seoul:nobody", "--yes").exit_code == 3


def test_get_requires_a_purpose_and_an_accessor(home: Path) -> None:
    assert invoke(home, "put", "did:seoul:needs-purpose", "--record-json", "{}").exit_code == 0
    assert invoke(home, "get", "did:seoul:needs-purpose", "--accessor", "a").exit_code == 2
    assert invoke(home, "get", "did:seoul:needs-purpose", "--purpose", "p").exit_code == 2
    blank = invoke(home, "get", "did:seoul:needs-purpose", "--accessor", "a", "--purpose", " ")
    assert blank.exit_code == 1 and "purpose is 1 to" in output_of(blank)


def test_put_reads_a_record_file_and_refuses_a_second_put(home: Path, tmp_path: Path) -> None:
    record_file = tmp_path / "record.json"
    record_file.write_text(json.dumps(RECORD, indent=2))
    assert invoke(home, "put", "did:seoul:from-file", "--record-file",
                  str(record_file)).exit_code == 0
    again = invoke(home, "put", "did:seoul:from-file", "--record-json", "{}")
    assert again.exit_code == 1 and "vault correct" in output_of(again)


@pytest.mark.parametrize("args,message", [
    ([], "exactly one of --record-json and --record-file"),
    (["--record-json", "{}", "--record-file", "x.json"], "exactly one of"),
    (["--record-json", "[1, 2]"], "a record is a JSON object, not a list"),
    (["--record-json", "{name: 1}"], "is not JSON"),
    (["--record-json", '{"a": 1.5}'], "non-integer number"),
    (["--record-json", json.dumps({"a": "x" * RECORD_BYTES_MAX})], f"at most {RECORD_BYTES_MAX}"),
    (["--record-file", "/nonexistent/record.json"], "cannot read /nonexistent/record.json"),
])
def test_put_refuses_bad_records_in_one_line(home: Path, args: list[str], message: str) -> None:
    result = invoke(home, "put", "did:seoul:bad-record", *args)
    assert result.exit_code == 1 and message in output_of(result)
    assert "Traceback" not in result.output


def test_put_refuses_a_subject_that_is_not_a_seoul_did(home: Path) -> None:
    result = invoke(home, "put", "kim-minji", "--record-json", "{}")
    assert result.exit_code == 1 and "not a did:seoul DID" in output_of(result)


def test_erase_asks_first(home: Path) -> None:
    subject = "did:seoul:asked"
    assert invoke(home, "put", subject, "--record-json", "{}").exit_code == 0
    declined = invoke(home, "erase", subject, input="n\n")
    assert declined.exit_code == 1  # click's Abort
    assert invoke(home, "get", subject, "--accessor", "a", "--purpose", "p").exit_code == 0
    assert invoke(home, "erase", subject, input="y\n").exit_code == 0


def test_correct_without_chain_keeps_the_old_version(home: Path) -> None:
    subject = "did:seoul:corrected-offline"
    assert invoke(home, "put", subject, "--record-json", json.dumps(RECORD)).exit_code == 0
    corrected = invoke(home, "correct", subject, "--record-json", '{"name": "Park Ji-soo"}',
                       "--no-chain", "--json")
    assert corrected.exit_code == 0, corrected.output
    assert json.loads(corrected.stdout)["version"] == 2
    old = invoke(home, "get", subject, "--accessor", "a", "--purpose", "p", "--version", "1")
    assert old.exit_code == 0 and json.loads(old.stdout) == RECORD


def test_a_wrong_vault_key_is_refused_clearly(tmp_path: Path) -> None:
    node_home = init_home(tmp_path / "home")
    assert invoke(node_home.root, "put", "did:seoul:keyed", "--record-json", "{}").exit_code == 0
    key_path = node_home.keys_dir / "vault.secret"
    key_path.write_text("seoulchain-vault-key:" + "ab" * 32 + "\n")
    result = invoke(node_home.root, "get", "did:seoul:keyed", "--accessor", "a",
                    "--purpose", "p")
    assert result.exit_code == 1 and "does not open the vault" in output_of(result)


def test_a_devnet_directory_resolves_to_its_first_validator(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    create_devnet(root, 2, base_port=free_port())
    assert invoke(root, "put", "did:seoul:on-devnet", "--record-json", "{}").exit_code == 0
    assert (root / "node-0" / "data" / "vault.sqlite").is_file()
    elsewhere = invoke(root, "get", "did:seoul:on-devnet", "--accessor", "a", "--purpose", "p",
                       "--node-index", "1")
    assert elsewhere.exit_code == 3  # each validator's home has its own vault


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A single-agency node (k = 1) whose operator key is granted `did.registrar`."""
    running = Node(init_home(tmp_path / "home", chain_id="vault-cli", api_port=free_port()))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    for module in (common, gov, txs, vault):
        monkeypatch.setattr(module, "open_client", open_client)
    operator = Home(running.home.root).load_key("operator").public_key.hex()
    granted = RUNNER.invoke(app, ["gov", "propose", "grant_role", "role=did.registrar",
                                  f"public_key={operator}", "--home", str(running.home.root)])
    assert granted.exit_code == 0, granted.output
    yield running
    running.close()


def create_did(node: Node) -> str:
    """Create a DID through `tx did create` and return it."""
    citizen = SigningKey.generate().public_key.hex()
    created = RUNNER.invoke(app, ["tx", "did", "create", f"public_key={citizen}",
                                  f"record_commitment={'11' * 32}", "--home",
                                  str(node.home.root)])
    assert created.exit_code == 0, created.output
    tx_hash = re.search(r"tx ([0-9a-f]{64})", created.output).group(1)  # type: ignore[union-attr]
    return compute_did(bytes.fromhex(tx_hash))


def get_record_commitments(node: Node, did: str) -> list[dict[str, Any]]:
    history = RUNNER.invoke(app, ["query", "did", "history", f"did={did}", "--json",
                                  "--home", str(node.home.root)])
    assert history.exit_code == 0, history.output
    return json.loads(history.stdout)["result"]["recordCommitments"]  # type: ignore[no-any-return]


def test_correct_supersedes_the_commitment_on_chain(node: Node) -> None:
    home = node.home.root
    did = create_did(node)
    assert invoke(home, "put", did, "--record-json", json.dumps(RECORD)).exit_code == 0
    corrected = invoke(home, "correct", did, "--record-json", '{"name": "Park Ji-soo"}',
                       "--reason", "correction", "--json")
    assert corrected.exit_code == 0, corrected.output
    answer = json.loads(corrected.stdout)
    assert answer["version"] == 2 and answer["supersede_tx"]["result"]["code"] == 0
    commitments = get_record_commitments(node, did)
    assert commitments[-1]["commitment"] == answer["commitment"]
    assert commitments[-2]["superseded_reason"] == "correction"


def test_correct_refuses_a_bad_reason_before_the_vault_changes(node: Node) -> None:
    home = node.home.root
    did = create_did(node)
    assert invoke(home, "put", did, "--record-json", json.dumps(RECORD)).exit_code == 0
    refused = invoke(home, "correct", did, "--record-json", "{}", "--reason", "moved house")
    assert refused.exit_code == 1 and "reason" in output_of(refused)
    missing_key = invoke(home, "correct", did, "--record-json", "{}", "--key", "registrar")
    assert missing_key.exit_code == 1 and "no key named 'registrar'" in output_of(missing_key)
    latest = invoke(home, "get", did, "--accessor", "a", "--purpose", "p", "--json")
    assert json.loads(latest.stdout)["version"] == 1


def test_correct_tells_how_to_retry_when_the_chain_refuses(node: Node) -> None:
    home = node.home.root
    did = "did:seoul:" + "1" * 22  # well formed, never created
    assert invoke(home, "put", did, "--record-json", "{}").exit_code == 0
    result = invoke(home, "correct", did, "--record-json", '{"a": 1}')
    assert result.exit_code == 1
    assert "the vault holds version 2, but the chain was not told" in output_of(result)
    assert "seoulchain tx did supersede_record did=" in output_of(result)


def test_register_creates_the_did_with_the_vaults_commitment(node: Node) -> None:
    home = node.home.root
    citizen = SigningKey.generate().public_key.hex()
    registered = invoke(home, "register", "--public-key", citizen, "--record-json",
                        json.dumps(RECORD), "--json")
    assert registered.exit_code == 0, registered.output
    answer = json.loads(registered.stdout)
    did = answer["subject"]
    assert did == compute_did(bytes.fromhex(answer["create_tx"]["hash"]))
    assert [entry["commitment"] for entry in get_record_commitments(node, did)] == [
        answer["commitment"]]
    got = json.loads(invoke(home, "get", did, "--accessor", "a", "--purpose", "p",
                            "--json").stdout)
    assert got["record"] == RECORD and got["commitment"] == answer["commitment"]


def test_register_erases_the_record_when_the_chain_refuses(node: Node) -> None:
    home = node.home.root
    assert RUNNER.invoke(app, ["keys", "create", "clerk", "--home", str(home)]).exit_code == 0
    citizen = SigningKey.generate().public_key.hex()
    refused = invoke(home, "register", "--public-key", citizen, "--record-json",
                     json.dumps(RECORD), "--key", "clerk")  # clerk is no registrar
    assert refused.exit_code == 1, refused.output
    did = re.search(r"(did:seoul:\w+) was not created", output_of(refused)).group(1)  # type: ignore[union-attr]
    assert "its record was erased from the vault" in output_of(refused)
    after = invoke(home, "get", did, "--accessor", "a", "--purpose", "p")
    assert after.exit_code == 3 and "erased at" in output_of(after)
