"""Proof endpoints: light blocks, tx and state proofs, and bundles built over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.client.http import NodeClient
from seoulchain.client.prover import HttpProofSource
from seoulchain.ledger.types import Transaction
from seoulchain.light.bundle import (
    build_document_bundle,
    build_state_bundle,
    build_tx_bundle,
    render_bundle,
    verify_bundle,
)
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

CHAIN_ID = "proof-api-test"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    home = init_home(tmp_path / "home", chain_id=CHAIN_ID)
    running = Node(home)
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node))


@pytest.fixture
def client(api: TestClient) -> NodeClient:
    node_client = NodeClient("http://testserver")
    node_client.http = api
    return node_client


def commit_anchor(node: Node, nonce: int) -> Transaction:
    key = Home(node.home.root).load_key("operator")
    tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=100,
                            service="notary", method="anchor",
                            args={"doc_hash": os.urandom(32), "kind": "permit"})
    assert node.submit(tx.encode()).ok
    commit_next_height(node)
    return tx


def test_light_block_endpoint_serves_header_commit_and_set(node: Node, api: TestClient) -> None:
    commit_anchor(node, 1)
    body = api.get("/v1/light/1").json()
    assert body["height"] == 1
    assert set(body["light_block"]) == {"header", "commit", "validators"}
    assert api.get("/v1/light/2").status_code == 404
    assert api.get("/v1/light/0").status_code == 400  # heights start at 1


def test_tx_and_state_proof_endpoints(node: Node, api: TestClient) -> None:
    tx = commit_anchor(node, 1)
    body = api.get(f"/v1/proofs/tx/{tx.hash().hex()}").json()
    assert body["height"] == 1
    assert body["proof"]["kind"] == "tx"
    assert api.get(f"/v1/proofs/tx/{'00' * 32}").status_code == 404
    key = b"doc/" + tx.args["doc_hash"]
    body = api.get(f"/v1/proofs/state/notary/{key.hex()}").json()
    assert body["height"] == 1 and body["proof"]["value"] is not None
    assert api.get("/v1/proofs/state/notary/zz").status_code == 400


def test_bundles_built_over_http_verify_offline(node: Node, client: NodeClient) -> None:
    txs = [commit_anchor(node, nonce) for nonce in (1, 2, 3)]
    source = HttpProofSource(client)
    genesis = node.genesis
    statement = verify_bundle(render_bundle(build_tx_bundle(source, genesis, txs[1].hash())),
                              genesis)
    assert statement.height == 2 and statement.facts["code_name"] == "OK"
    statement = verify_bundle(build_document_bundle(source, genesis, txs[0].args["doc_hash"]),
                              genesis)
    assert "not superseded as of height 3" in statement.text
    statement = verify_bundle(build_state_bundle(source, genesis, "notary", b"doc/absent"),
                              genesis)
    assert "was absent at height 3" in statement.text
