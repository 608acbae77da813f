"""Four seoulchain applications under four CometBFT nodes on loopback (`--engine cometbft`):
they commit anchored documents, agree on every app hash, and an application killed with
SIGKILL resumes through CometBFT's handshake and catches up; the agencies change a
validator's power through governance and CometBFT applies it; a proof bundle of this
network verifies offline, and the audit passes; seoulchain's HTTP API beside each
application answers status and queries, commits a `seoulchain tx`, serves CometBFT's signed
headers and validator sets, and `seoulchain prove --node` builds bundles from it, from
genesis and from a checkpoint.

The module runs scripts/install-cometbft first (cached after the first build).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey
from seoulchain.ledger.genesis import Genesis
from seoulchain.light.cometbft import CometValidatorSet
from seoulchain.node.agencies import DEMO_AGENCIES
from seoulchain.node.devnet import Devnet, DevnetSupervisor
from tests.e2e.cometbft_network import (
    CATCH_UP_TIMEOUT_S,
    COMMIT_TIMEOUT_S,
    START_TIMEOUT_S,
    VALIDATORS,
    anchor,
    get_app_hash,
    get_height,
    get_rpc_urls,
    is_anchored,
    restart,
    rpc,
    submit,
    wait_for,
)

pytestmark = pytest.mark.e2e

ANCHORS = 5
# A CLI run: imports, and for `prove` up to one block interval waiting for header h + 1.
CLI_TIMEOUT_S = 120.0
# Governance: the change applies at h + 2 of the passing block, a few seconds later.
GOV_TIMEOUT_S = 60.0
# The operator's nonces in the second test, after the first test's 1..ANCHORS + 1 (any
# unused nonce inside the signer's window is accepted, in whichever order the tests run).
GOV_NONCE = ANCHORS + 2


@pytest.fixture(scope="module")
def network(cometbft_network: tuple[Devnet, DevnetSupervisor]
            ) -> tuple[Devnet, DevnetSupervisor]:
    """The module's four CometBFT nodes and applications (tests/e2e/cometbft_network.py)."""
    return cometbft_network


def get_powers(url: str) -> dict[bytes, int]:
    """Return CometBFT's current validator set: public key -> voting power."""
    validators = rpc(url, "validators", per_page="100")["validators"]
    return {base64.b64decode(v["pub_key"]["value"]): int(v["voting_power"])
            for v in validators}


def is_committed(url: str, tx_hash: str) -> bool:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tx",
                                  "params": {"hash": base64.b64encode(
                                      bytes.fromhex(tx_hash)).decode()}}, timeout=10.0).json()
    return "result" in reply


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seoulchain", *args], capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)


def test_four_applications_agree_and_one_recovers_from_sigkill(
        network: tuple[Devnet, DevnetSupervisor]) -> None:
    devnet, supervisor = network
    urls = get_rpc_urls(devnet)
    chain_id = devnet.load_info()["chain_id"]
    key = SigningKey.load(devnet.keys_dir / "operator.key")
    wait_for(lambda: all(get_height(url) >= 2 for url in urls), START_TIMEOUT_S,
             "every node at height 2")

    docs = [anchor(urls[0], key, str(chain_id), nonce) for nonce in range(1, ANCHORS + 1)]
    wait_for(lambda: all(is_anchored(url, doc) for url in urls for doc in docs),
             COMMIT_TIMEOUT_S, "the anchors on every node")
    common = min(get_height(url) for url in urls) - 1
    for height in range(1, common + 1):
        assert len({get_app_hash(url, height) for url in urls}) == 1, height

    victim = supervisor.nodes[3]
    victim.process.send_signal(signal.SIGKILL)  # the application; CometBFT follows it
    victim.process.wait()
    later = anchor(urls[0], key, str(chain_id), ANCHORS + 1)
    wait_for(lambda: is_anchored(urls[0], later), COMMIT_TIMEOUT_S, "a commit without node 3")
    target = get_height(urls[0])

    restart(supervisor, 3)
    wait_for(lambda: get_height(urls[3]) >= target + 1, CATCH_UP_TIMEOUT_S,
             "node 3 to catch up")
    assert is_anchored(urls[3], later)
    info = rpc(urls[3], "abci_info")["response"]
    app_height = int(info["last_block_height"])
    wait_for(lambda: get_height(urls[0]) > app_height, COMMIT_TIMEOUT_S, "the next header")
    assert base64.b64decode(info["last_block_app_hash"]).hex().upper() == \
        get_app_hash(urls[0], app_height)


def test_governance_changes_a_validator_and_a_bundle_and_audit_check_the_chain(
        network: tuple[Devnet, DevnetSupervisor], tmp_path: Path) -> None:
    devnet, _ = network
    url = get_rpc_urls(devnet)[0]
    chain_id = str(devnet.load_info()["chain_id"])
    keys = {name: SigningKey.load(devnet.keys_dir / f"{name}.key")
            for name in ("operator", "mapo-gu", "jongno-gu")}
    wait_for(lambda: get_height(url) >= 2, START_TIMEOUT_S, "the network at height 2")
    target = sorted(get_powers(url))[0]
    assert get_powers(url)[target] == 10

    # city-hall proposes, mapo-gu and jongno-gu approve: k = 3 of 4 agencies.
    submit(url, keys["operator"], chain_id, GOV_NONCE, "gov", "propose", {
        "kind": "set_validator", "public_key": target, "power": 25,
        "deadline_height": get_height(url) + 500})
    proposal = wait_for_proposal(url)
    submit(url, keys["mapo-gu"], chain_id, 1, "gov", "approve", {"proposal": proposal})
    passed = submit(url, keys["jongno-gu"], chain_id, 1, "gov", "approve",
                    {"proposal": proposal})
    wait_for(lambda: is_committed(url, passed), GOV_TIMEOUT_S, "the passing approval")
    wait_for(lambda: get_powers(url)[target] == 25, GOV_TIMEOUT_S,
             "CometBFT's validator set to apply the change")
    assert sorted(get_powers(url).values()) == [10, 10, 10, 25]

    document = tmp_path / "permit.pdf"
    document.write_bytes(os.urandom(2048))
    doc_hash = hashlib.sha256(document.read_bytes()).digest()
    anchor(url, keys["operator"], chain_id, GOV_NONCE + 1, doc_hash)
    wait_for(lambda: is_anchored(url, doc_hash), COMMIT_TIMEOUT_S, "the document's anchor")

    bundle = tmp_path / "permit.bundle"
    proved = run_cli("prove", "document", str(document), "--home", str(devnet.root),
                     "--out", str(bundle))
    assert proved.returncode == 0, proved.stderr
    verified = run_cli("verify", str(bundle), "--genesis", str(devnet.root / "genesis.json"),
                       "--document", str(document))
    assert verified.returncode == 0, verified.stderr
    assert "verified" in verified.stdout and "was anchored by city-hall" in verified.stdout
    # The proving header is signed by the changed set, verified from the genesis set.
    last = json.loads(bundle.read_text())["cometbft"]["light_blocks"][-1]
    genesis = Genesis.load(devnet.root / "genesis.json")
    assert last["header"]["validators_hash"] != \
        CometValidatorSet.from_genesis(genesis).hash().hex()
    assert sorted(item["power"] for item in last["validators"]) == [10, 10, 10, 25]

    audited = run_cli("audit", "--home", str(devnet.root), "--quiet")
    assert audited.returncode == 0, audited.stderr
    assert "audit passed" in audited.stdout


def wait_for_proposal(url: str) -> int:
    """Return the id of the open proposal, once its transaction is committed."""
    found: list[int] = []

    def is_open() -> bool:
        answer = rpc(url, "abci_query", path="/query/gov/proposals",
                     data=encode({"status": "open"}).hex())["response"]
        if answer.get("code", 0) != 0 or not answer.get("value"):
            return False
        proposals = decode(base64.b64decode(answer["value"]))
        found.extend(item["id"] for item in proposals)
        return bool(found)
    wait_for(is_open, GOV_TIMEOUT_S, "the proposal")
    return found[0]


def test_the_http_api_answers_status_and_queries_and_commits_a_cli_tx(
        network: tuple[Devnet, DevnetSupervisor], tmp_path: Path) -> None:
    devnet, _ = network
    api = devnet.api_urls()[0]
    rpc_url = get_rpc_urls(devnet)[0]
    wait_for(lambda: get_height(rpc_url) >= 2, START_TIMEOUT_S, "the network at height 2")

    status = run_cli("status", "--home", str(devnet.root), "--json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert len(rows) == VALIDATORS and all(row["up"] for row in rows)
    assert {row["chain_id"] for row in rows} == {devnet.load_info()["chain_id"]}

    # gangnam-gu signs only through the CLI, which takes its next free nonce: any test order.
    document = tmp_path / "licence.txt"
    document.write_bytes(os.urandom(512))
    sent = run_cli("tx", "notary", "anchor", str(document), "--key", "gangnam-gu",
                   "--home", str(devnet.root))
    assert sent.returncode == 0, sent.stderr
    assert "committed at height" in sent.stdout
    doc_hash = hashlib.sha256(document.read_bytes()).digest()
    wait_for(lambda: all(is_anchored(url, doc_hash) for url in get_rpc_urls(devnet)),
             COMMIT_TIMEOUT_S, "the CLI's anchor on every node")

    queried = run_cli("query", "notary", str(document), "--home", str(devnet.root))
    assert queried.returncode == 0, queried.stderr
    assert "valid" in queried.stdout and "gangnam-gu" in queried.stdout
    answer = httpx.get(f"{api}/v1/query/notary/document",
                       params={"doc_hash": doc_hash.hex()}, timeout=10.0).json()
    assert answer["result"]["issuer"] == SigningKey.load(
        devnet.keys_dir / "gangnam-gu.key").public_key.hex(), answer

    # Light blocks are CometBFT's signed headers, served in the bundle's form.
    light = httpx.get(f"{api}/v1/light/1", timeout=10.0)
    assert light.status_code == 200, light.text
    assert light.json()["cometbft_light_block"]["header"]["height"] == 1


def test_bundles_validators_and_signed_headers_are_served_by_the_api(
        network: tuple[Devnet, DevnetSupervisor], tmp_path: Path) -> None:
    """`prove --node` builds from the API, from genesis and from a checkpoint; the API's
    validators are CometBFT's set with agencies (after governance changed it, when the
    governance test ran first)."""
    devnet, _ = network
    api = devnet.api_urls()[1]
    rpc_url = get_rpc_urls(devnet)[1]
    genesis_path = str(devnet.root / "genesis.json")
    wait_for(lambda: get_height(rpc_url) >= 2, START_TIMEOUT_S, "the network at height 2")
    document = tmp_path / "deed.txt"
    document.write_bytes(os.urandom(256))
    sent = run_cli("tx", "notary", "anchor", str(document), "--key", "gangnam-gu",
                   "--home", str(devnet.root))
    assert sent.returncode == 0, sent.stderr

    from_genesis = tmp_path / "genesis.bundle"
    proved = run_cli("prove", "document", str(document), "--node", api, "--out",
                     str(from_genesis))
    assert proved.returncode == 0, proved.stderr
    verified = run_cli("verify", str(from_genesis), "--genesis", genesis_path,
                       "--document", str(document))
    assert verified.returncode == 0, verified.stderr
    assert "was anchored by gangnam-gu" in verified.stdout

    from_checkpoint = tmp_path / "checkpoint.bundle"
    proved = run_cli("prove", "document", str(document), "--node", api, "--out",
                     str(from_checkpoint), "--trusted-height", "2")
    assert proved.returncode == 0, proved.stderr
    checkpoint = proved.stderr.split("--checkpoint ")[1].split()[0]
    header_2 = rpc(rpc_url, "commit", height="2")["signed_header"]["commit"]["block_id"]
    assert checkpoint == f"2:{header_2['hash'].lower()}"
    verified = run_cli("verify", str(from_checkpoint), "--genesis", genesis_path,
                       "--checkpoint", checkpoint)
    assert verified.returncode == 0, verified.stderr
    refused = run_cli("verify", str(from_checkpoint), "--genesis", genesis_path)
    assert refused.returncode == 2 and "NOT VERIFIED" in refused.stderr

    height = get_height(rpc_url)
    listed = httpx.get(f"{api}/v1/validators", params={"height": height}, timeout=10.0).json()
    powers = {bytes.fromhex(item["public_key"]): item["power"] for item in listed["items"]}
    assert powers == get_powers_at(rpc_url, height)
    assert {item["agency"] for item in listed["items"]} == set(DEMO_AGENCIES)
    light = httpx.get(f"{api}/v1/light/{height}", timeout=10.0).json()
    assert light["cometbft_light_block"]["header"]["height"] == height
    if sorted(powers.values()) != [10] * VALIDATORS:  # the governance test ran first
        blocks = json.loads(from_checkpoint.read_text())["cometbft"]["light_blocks"]
        assert sorted(item["power"] for item in blocks[-1]["validators"]) == [10, 10, 10, 25]


def get_powers_at(url: str, height: int) -> dict[bytes, int]:
    """Return CometBFT's validator set of `height`: public key -> voting power."""
    validators = rpc(url, "validators", height=str(height), per_page="100")["validators"]
    return {base64.b64decode(v["pub_key"]["value"]): int(v["voting_power"])
            for v in validators}
