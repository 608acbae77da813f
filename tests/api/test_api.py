"""HTTP API: submit, wait for commit, read blocks and state, and refuse bad requests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import SUBMIT_BODY_BYTES_MAX, create_app
from seoulchain.crypto import SigningKey
from seoulchain.ledger.types import Block, Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    home = init_home(tmp_path / "home", chain_id="api-test")
    running = Node(home)
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node))


def anchor_tx(node: Node, nonce: int = 1) -> Transaction:
    key = Home(node.home.root).load_key("operator")
    return Transaction.create(key, chain_id="api-test", nonce=nonce, expiry_height=100,
                              service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "permit"})


def test_submit_commit_and_read_back(node: Node, api: TestClient) -> None:
    tx = anchor_tx(node)
    response = api.post("/v1/txs", content=tx.encode(),
                        headers={"content-type": "application/cbor"})
    assert response.status_code == 202, response.text
    assert response.json()["hash"] == tx.hash().hex()
    assert api.get(f"/v1/txs/{tx.hash().hex()}").json()["status"] == "pending"
    commit_next_height(node)
    status = api.get(f"/v1/txs/{tx.hash().hex()}").json()
    assert status["status"] == "committed"
    assert status["height"] == 1
    assert status["result"]["code_name"] == "OK"
    block = api.get("/v1/blocks/latest").json()
    assert block["header"]["height"] == 1
    assert block["txs"] == [tx.hash().hex()]
    assert block["commit"]["block_id"] == block["block_id"]
    raw = api.get("/v1/blocks/1", params={"format": "cbor"}).content
    assert raw == node.store.get_block_bytes(1)
    assert Block.decode(raw).block_id().hex() == block["block_id"]
    missing = api.get("/v1/blocks/2", params={"format": "cbor"})
    assert missing.status_code == 404 and missing.json()["code"] == "no_block"
    answer = api.get("/v1/query/notary/document",
                     params={"doc_hash": tx.args["doc_hash"].hex()}).json()
    assert answer["result"]["status"] == "valid"
    account = api.get(f"/v1/accounts/{tx.signer.hex()}").json()
    assert account["next_nonce"] == 2
    assert account["roles"] == ["notary.issuer"]
    assert api.get("/v1/status").json()["height"] == 1


def test_json_submission_is_accepted(node: Node, api: TestClient) -> None:
    tx = anchor_tx(node)
    response = api.post("/v1/txs", json={"tx": tx.encode().hex()})
    assert response.status_code == 202


def test_rejected_tx_gets_its_code_and_a_400(node: Node, api: TestClient) -> None:
    tx = anchor_tx(node)
    forged = Transaction(tx.chain_id, tx.signer, tx.nonce, tx.expiry_height, tx.service,
                         tx.method, tx.args, SigningKey.generate().sign(tx.sign_bytes()))
    response = api.post("/v1/txs", content=forged.encode())
    assert response.status_code == 400
    assert response.json()["code"] == "bad_signature"
    assert response.json()["result"]["code_name"] == "BAD_SIGNATURE"
    assert response.json()["hash"] == forged.hash().hex()
    response = api.post("/v1/txs", content=b"\x00\x01")
    assert response.json()["result"]["code_name"] == "MALFORMED"


def test_batch_submission_reports_each_transaction(node: Node, api: TestClient) -> None:
    from seoulchain.codec import encode

    good = [anchor_tx(node, nonce) for nonce in (1, 2, 3)]
    body = encode([tx.encode() for tx in good] + [b"junk"])
    response = api.post("/v1/txs/batch", content=body)
    assert response.status_code == 202
    names = [item["code_name"] for item in response.json()["results"]]
    assert names == ["OK", "OK", "OK", "MALFORMED"]
    assert len(node.mempool) == 3
    assert api.post("/v1/txs/batch", content=b"\x01").status_code == 400
    assert api.post("/v1/txs/batch", content=encode([1, 2])).status_code == 400


def test_oversized_body_is_refused_before_decoding(api: TestClient) -> None:
    response = api.post("/v1/txs", content=b"\x00" * (SUBMIT_BODY_BYTES_MAX + 1))
    assert response.status_code == 413


def test_bad_paths_get_clear_errors(api: TestClient) -> None:
    assert api.get("/v1/txs/nothex").status_code == 400
    assert api.get("/v1/blocks/latest").status_code == 404
    assert "no block at height 7" in api.get("/v1/blocks/7").json()["detail"]
    assert api.get("/v1/query/lottery/draw").status_code == 400
    assert api.get("/v1/query/notary/document", params={"doc_hash": "12"}).status_code == 400
    assert api.get("/v1/accounts/abc").status_code == 400
    assert api.post("/v1/txs", json={"nope": 1}).status_code == 400
