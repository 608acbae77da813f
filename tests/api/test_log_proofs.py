"""HTTP API: inclusion and consistency proofs of the transparency log, checked offline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import init_home
from seoulchain.node.node import Node
from seoulchain.proofs.logtree import compute_leaf_hash, verify_consistency, verify_inclusion
from tests.conftest import commit_next_height

CHAIN_ID = "log-proofs-test"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id=CHAIN_ID))
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node))


def commit_blocks(node: Node, sizes: list[int]) -> list[bytes]:
    """Commit one block per entry of `sizes` with that many anchors; return every tx."""
    key = node.home.load_key("operator")
    raws: list[bytes] = []
    for count in sizes:
        for _ in range(count):
            tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=len(raws) + 1,
                                    expiry_height=1000, service="notary", method="anchor",
                                    args={"doc_hash": os.urandom(32), "kind": "permit"})
            assert node.submit(tx.encode()).ok
            raws.append(tx.encode())
        commit_next_height(node)
    return raws


def header(api: TestClient, height: int) -> dict:
    return api.get(f"/v1/blocks/{height}").json()["header"]


def test_consistency_between_two_block_checkpoints_verifies(node: Node, api: TestClient) -> None:
    commit_blocks(node, [3, 5, 1, 9])
    old, new = header(api, 2), header(api, 4)
    body = api.get("/v1/log/consistency",
                   params={"old": old["log_size"], "new": new["log_size"]}).json()
    assert (body["old_size"], body["new_size"]) == (8, 18)
    assert (body["old_root"], body["new_root"]) == (old["log_root"], new["log_root"])
    verify_consistency(8, 18, bytes.fromhex(old["log_root"]), bytes.fromhex(new["log_root"]),
                       [bytes.fromhex(item) for item in body["proof"]])
    latest = api.get("/v1/log/consistency", params={"old": 3}).json()
    assert latest["new_size"] == 18 and latest["old_root"] == header(api, 1)["log_root"]
    assert api.get("/v1/log/consistency", params={"old": 0, "new": 0}).json()["proof"] == []


def test_inclusion_of_a_committed_tx_verifies_against_a_header(node: Node,
                                                              api: TestClient) -> None:
    raws = commit_blocks(node, [4, 6])
    checkpoint = header(api, 2)
    for index in (0, 5, 9):
        body = api.get(f"/v1/log/inclusion/{index}").json()
        assert body["size"] == 10 and body["root"] == checkpoint["log_root"]
        assert body["leaf_hash"] == compute_leaf_hash(raws[index]).hex()
        verify_inclusion(compute_leaf_hash(raws[index]), index, 10,
                         [bytes.fromhex(item) for item in body["proof"]],
                         bytes.fromhex(checkpoint["log_root"]))
    older = api.get("/v1/log/inclusion/2", params={"size": 4}).json()
    assert older["root"] == header(api, 1)["log_root"]


def test_log_proof_requests_outside_the_log_get_clear_errors(node: Node,
                                                           api: TestClient) -> None:
    commit_blocks(node, [2])
    cases = [
        ("/v1/log/consistency", {"old": 3, "new": 2}, 400, "bad_range"),
        ("/v1/log/consistency", {"old": -1}, 400, "bad_request"),
        ("/v1/log/consistency", {"old": 1, "new": 5}, 404, "beyond_log"),
        ("/v1/log/inclusion/2", {}, 404, "no_leaf"),
        ("/v1/log/inclusion/-1", {}, 400, "bad_request"),
        ("/v1/log/inclusion/0", {"size": 3}, 404, "beyond_log"),
    ]
    for path, params, status, code in cases:
        response = api.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert response.json()["code"] == code
    assert api.get("/v1/log/consistency", params={"old": "x"}).status_code == 400
