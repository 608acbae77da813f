"""API: admin endpoints need the node's admin token, a 0600 file in every node home."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction
from seoulchain.node.devnet import create_devnet
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

CHAIN_ID = "admin-test"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id=CHAIN_ID))
    yield running
    running.close()


def commit_anchor(node: Node) -> None:
    key = Home(node.home.root).load_key("operator")
    tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=1, expiry_height=100,
                            service="notary", method="anchor",
                            args={"doc_hash": os.urandom(32), "kind": "permit"})
    assert node.submit(tx.encode()).ok
    commit_next_height(node)


def assert_private_token(home: Home) -> str:
    path = home.admin_token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) == 64 and int(token, 16) >= 0
    return token


def test_init_and_devnet_give_every_node_home_its_own_private_token(tmp_path: Path) -> None:
    first = assert_private_token(init_home(tmp_path / "one", chain_id=CHAIN_ID))
    second = assert_private_token(init_home(tmp_path / "two", chain_id=CHAIN_ID))
    devnet = create_devnet(tmp_path / "devnet", validators=3, base_port=27900)
    tokens = {assert_private_token(home) for home in devnet.node_homes}
    assert len(tokens | {first, second}) == 5


def test_an_older_home_gets_its_token_when_the_node_starts(node: Node) -> None:
    node.home.admin_token_path.unlink()
    create_app(node)
    token = assert_private_token(node.home)
    create_app(node)  # a restart keeps the token
    assert node.home.load_admin_token() == token


def test_a_token_others_can_read_is_refused(node: Node) -> None:
    os.chmod(node.home.admin_token_path, 0o644)
    with pytest.raises(LocalError, match="chmod 600"):
        create_app(node)


def test_snapshot_requests_need_the_bearer_token(node: Node) -> None:
    api = TestClient(create_app(node))
    token = node.home.load_admin_token()
    commit_anchor(node)
    missing = api.post("/v1/snapshots")
    assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "admin.token" in missing.json()["detail"]
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")
    for header, status in [(f"Basic {token}", 401), (f"Bearer {wrong}", 403),
                           (f"Bearer {token}x", 403), ("Bearer é".encode("latin-1"), 403)]:
        response = api.post("/v1/snapshots", headers={"authorization": header})
        assert response.status_code == status, (header, response.text)
        assert set(response.json()) == {"type", "title", "status", "detail", "code"}
    assert node.snapshots.files.list_heights() == []  # no refused request made the node work
    response = api.post("/v1/snapshots", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json() == {"height": 1}
    assert api.get("/v1/snapshots").json()["heights"] == [1]  # reading needs no token
