"""State sync over the node API: snapshot endpoints, then a new node restored from peers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.cli.statesync import sync_from_peers
from seoulchain.client.audit import audit_chain
from seoulchain.client.http import NodeClient
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction
from seoulchain.light.snapshot import Chunk, Manifest
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.node.statesync import SnapshotFiles, StateSyncFailed
from tests.conftest import commit_next_height

CHAIN_ID = "state-sync-test"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "source", chain_id=CHAIN_ID))
    yield running
    running.close()


def commit_anchors(node: Node, count: int) -> None:
    key = Home(node.home.root).load_key("operator")
    start = node.engine.get_next_nonce(node.engine.state, key.public_key)
    for nonce in range(start, start + count):
        tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=10_000,
                                service="notary", method="anchor",
                                args={"doc_hash": os.urandom(32), "kind": "permit"})
        assert node.submit(tx.encode()).ok
        commit_next_height(node)


def make_admin_api(node: Node) -> TestClient:
    """An API client that sends the node's admin token (POST /v1/snapshots needs it)."""
    token = node.home.load_admin_token()
    return TestClient(create_app(node), headers={"authorization": f"Bearer {token}"})


def connect_to(api: TestClient):  # type: ignore[no-untyped-def]
    def connect(url: str) -> NodeClient:
        client = NodeClient(url)
        client.http.close()
        client.http = TestClient(api.app)
        return client
    return connect


def make_joiner(tmp_path: Path, source: Node) -> Home:
    """A new node home for the same chain: its own keys, the source's genesis."""
    home = init_home(tmp_path / "joiner", chain_id=CHAIN_ID)
    shutil.copy(source.home.genesis_path, home.genesis_path)
    return home


def test_snapshot_endpoints_serve_manifest_and_chunks(node: Node) -> None:
    api = make_admin_api(node)
    assert api.post("/v1/snapshots").status_code == 404  # nothing committed yet
    commit_anchors(node, 3)
    assert api.get("/v1/snapshots").json() == {"heights": [], "base_height": 0}
    assert api.post("/v1/snapshots").json() == {"height": 3}
    assert api.get("/v1/snapshots").json()["heights"] == [3]
    assert node.store.get_pinned_state_versions() == frozenset({3})
    response = api.get("/v1/snapshots/3/manifest")
    assert response.headers["content-type"] == "application/cbor"
    manifest = Manifest.decode(response.content)
    assert manifest.header.state_root == node.engine.tip.state_root
    chunk = Chunk.decode(api.get("/v1/snapshots/3/chunks/0").content, 0)
    assert chunk.height == 3
    assert api.get("/v1/snapshots/2/manifest").status_code == 404
    assert api.get(f"/v1/snapshots/3/chunks/{manifest.chunk_count}").status_code == 404


def test_state_sync_restores_a_new_node_that_continues_the_chain(node: Node,
                                                                 tmp_path: Path) -> None:
    api = make_admin_api(node)
    commit_anchors(node, 4)
    api.post("/v1/snapshots")
    commit_anchors(node, 2)
    api.post("/v1/snapshots")  # the newest (height 6) is chosen
    joiner = make_joiner(tmp_path, node)
    store = BlockStore(joiner.store_path)
    steps: list[str] = []
    report = sync_from_peers(store, joiner.load_genesis(), ["http://peer-a", "http://peer-b"],
                             SnapshotFiles(joiner.data_dir / "snapshots"), None, steps.append,
                             connect_to(api))
    store.close()
    assert report.height == 6 and report.entries > 0
    restored = Node(joiner)
    try:
        assert restored.engine.tip == node.engine.tip
        joined_api = TestClient(create_app(restored))
        assert joined_api.get("/v1/snapshots").json() == {"heights": [6], "base_height": 6}
        assert joined_api.get("/v1/blocks/6").status_code == 404
        commit_anchors(node, 2)
        for height in (7, 8):
            block = node.store.get_block(height)
            commit = node.store.get_commit(height)
            assert block is not None and commit is not None
            restored.engine.commit(block, commit)
        assert restored.engine.tip == node.engine.tip
        assert audit_chain(restored.genesis, restored.store, load_services()).ok
    finally:
        restored.close()


def test_state_sync_fails_plainly_without_snapshots_or_on_a_foreign_genesis(
        node: Node, tmp_path: Path) -> None:
    api = make_admin_api(node)
    commit_anchors(node, 2)
    joiner = make_joiner(tmp_path, node)
    store = BlockStore(joiner.store_path)
    with pytest.raises(StateSyncFailed, match="offers a snapshot"):
        sync_from_peers(store, joiner.load_genesis(), ["http://peer"], connect=connect_to(api))
    api.post("/v1/snapshots")
    foreign = init_home(tmp_path / "foreign", chain_id=CHAIN_ID).load_genesis()
    with pytest.raises(StateSyncFailed, match="no offered snapshot verified"):
        sync_from_peers(store, foreign, ["http://peer"], connect=connect_to(api))
    assert store.is_blank()
    store.close()
