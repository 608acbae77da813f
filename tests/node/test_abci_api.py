"""The HTTP API's node over an ABCI application: reads from the application's store, txs
handed to CometBFT's RPC (a mock here), commits waking waiting clients, 501 for what only
CometBFT's signed headers can answer."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tomli_w
from fastapi.testclient import TestClient

from seoulchain.cli.run import create_cometbft_app
from seoulchain.crypto import sha256
from seoulchain.ledger.types import Transaction
from seoulchain.node.abci import (
    ABCI_PB_DEFAULT,
    ABCI_PB_ENV,
    COMETBFT_DIR,
    AbciApplication,
    compute_address,
)
from seoulchain.node.abci_api import CometNode, NotServedUnderCometbft
from seoulchain.node.home import Home, init_home

pytestmark = pytest.mark.skipif(
    not (Path(os.environ.get(ABCI_PB_ENV) or ABCI_PB_DEFAULT) / "tendermint").exists(),
    reason="ABCI bindings not generated; run scripts/install-cometbft")

CHAIN_ID = "seoul-abci-api-1"
RPC_BATCH_MAX = 2


@pytest.fixture
def home(tmp_path: Path) -> Home:
    node_home = init_home(tmp_path / "node", chain_id=CHAIN_ID)
    config_dir = node_home.root / COMETBFT_DIR / "config"
    config_dir.mkdir(parents=True)
    (config_dir / "config.toml").write_text(tomli_w.dumps({
        "mempool": {"size": 5000, "max_txs_bytes": 1 << 30},
        "rpc": {"max_request_batch_size": RPC_BATCH_MAX}}))
    return node_home


@pytest.fixture
def app(home: Home) -> Iterator[AbciApplication]:
    application = AbciApplication(home)
    yield application
    application.close()


class FakeCometRpc:
    """CometBFT's JSON-RPC as the adapter uses it: it records batches and refuses `refused`."""

    def __init__(self, refused: set[bytes]):
        self.refused = refused
        self.batches: list[list[bytes]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        assert len(calls) <= RPC_BATCH_MAX
        self.batches.append([base64.b64decode(call["params"]["tx"]) for call in calls])
        replies = [{"jsonrpc": "2.0", "id": call["id"], "result": {
            "code": 1 if base64.b64decode(call["params"]["tx"]) in self.refused else 0,
            "log": ""}} for call in calls]
        # CometBFT answers a batch of one with a bare object.
        return httpx.Response(200, json=replies[0] if len(replies) == 1 else replies)


def sign_anchor(home: Home, nonce: int) -> bytes:
    return Transaction.create(home.load_key("operator"), chain_id=CHAIN_ID, nonce=nonce,
                              expiry_height=1000, service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "permit"}).encode()


def commit_block(app: AbciApplication, txs: list[bytes]) -> None:
    types = app.types
    proposer = app.genesis.validators.validators[0].public_key
    height = app.engine.height + 1
    app.handle(types.Request(finalize_block=types.RequestFinalizeBlock(
        txs=txs, height=height, proposer_address=compute_address(proposer),
        time={"seconds": 1_800_000_000 + height})))
    app.handle(types.Request(commit=types.RequestCommit()))


def test_admitted_txs_go_to_cometbft_in_batches_and_commits_wake_waiters(
        home: Home, app: AbciApplication) -> None:
    raws = [sign_anchor(home, nonce) for nonce in (1, 2, 3)]
    rpc = FakeCometRpc(refused={raws[2]})

    async def scenario() -> None:
        node = CometNode(app, "http://cometbft", transport=httpx.MockTransport(rpc.handle))
        committed: list[int] = []
        node.commit_hooks.append(lambda block: committed.append(block.block.height))
        bad = node.submit(b"\x00not a tx")
        assert not bad.ok and rpc.batches == []
        checks = await node.submit_batch(raws)
        assert all(check.ok for check in checks)
        assert node.get_tx_status(checks[0].hash).status == "pending"
        await asyncio.gather(*node.broadcasts)
        assert rpc.batches == [raws[:2], raws[2:]]
        assert [node.get_tx_status(check.hash).status for check in checks] == \
            ["pending", "pending", "unknown"]  # CometBFT refused the third

        waiting = asyncio.create_task(node.wait_for_tx(checks[0].hash, 5.0))
        await asyncio.sleep(0)
        commit_block(app, raws[:2])
        status = await waiting
        assert status.status == "committed" and status.height == 1
        assert committed == [1]
        assert node.get_status()["height"] == 1 and node.get_tx_proof(checks[1].hash)
        await node.aclose()
        assert app.on_committed is None

    asyncio.run(scenario())


def test_routes_that_need_cometbfts_headers_answer_501(
        home: Home, app: AbciApplication) -> None:
    commit_block(app, [sign_anchor(home, 1)])
    node = CometNode(app, "http://cometbft", transport=httpx.MockTransport(
        lambda request: httpx.Response(500)))
    with pytest.raises(NotServedUnderCometbft):
        node.get_proof_source()
    with TestClient(create_cometbft_app(node)) as client:
        for path in ("/v1/light/1", "/v1/validators", "/v1/bundles/state/notary/00"):
            answer = client.get(path)
            assert answer.status_code == 501, path
            assert answer.json()["code"] == "not_served_under_cometbft"
        block = client.get("/v1/blocks/1").json()
        assert block["header"]["height"] == 1
        assert client.get("/v1/status").json()["height"] == 1
        assert client.get("/v1/query/notary/document",
                          params={"doc_hash": sha256(b"none").hex()}).status_code == 200
