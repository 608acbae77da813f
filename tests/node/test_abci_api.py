"""The HTTP API's node over an ABCI application: reads from the application's store, txs
handed to CometBFT's RPC (a mock here), commits waking waiting clients; light blocks,
validators and bundles from CometBFT's signed headers (a fake chain of them here), and 501
only for what the built-in engine's seoulchain commits alone could answer."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from fastapi.testclient import TestClient

from seoulchain.cli.run import create_cometbft_app
from seoulchain.client.http import NodeClient
from seoulchain.client.prover import HttpCometProofSource, open_proof_source
from seoulchain.crypto import sha256
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction
from seoulchain.light.bundle import (
    BundleError,
    Checkpoint,
    build_document_bundle,
    parse_bundle,
    verify_bundle,
)
from seoulchain.light.cometbft import (
    FLAG_COMMIT,
    HEADER_HASH_FIELDS,
    CometBlockId,
    CometCommit,
    CometHeader,
    CometValidatorSet,
    CommitSig,
)
from seoulchain.light.cometbft import light_block_from_json as cometbft_light_block_from_json
from seoulchain.node.abci import (
    ABCI_PB_DEFAULT,
    ABCI_PB_ENV,
    COMETBFT_DIR,
    AbciApplication,
    compute_address,
    format_rfc3339,
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


class FakeCometChain:
    """CometBFT's RPC over the application's blocks: signed header h + 1 carries block h's
    id as its app hash, signed by the home's validator (JSON-RPC over POST, and GET)."""

    def __init__(self, app: AbciApplication):
        self.app = app
        self.key = app.home.load_key("validator")
        self.validators = CometValidatorSet.from_genesis(app.genesis)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            call = json.loads(request.content)
            method, params = call["method"], call.get("params") or {}
        else:
            method, params = request.url.path.strip("/"), dict(request.url.params)
        latest = self.app.engine.height + 1  # CometBFT decided the block after the app's
        if method == "status":
            result: Any = {"sync_info": {"latest_block_height": str(latest)}}
        elif method == "commit" and int(params["height"]) <= latest:
            result = {"signed_header": self.sign(int(params["height"]))}
        elif method == "validators":
            result = {"total": "1", "validators": [
                {"pub_key": {"value": base64.b64encode(v.public_key).decode()},
                 "voting_power": str(v.power)} for v in self.validators.validators]}
        else:
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "error": {
                "message": f"height must be at most {latest}"}})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": result})

    def sign(self, height: int) -> dict[str, Any]:
        """Return CometBFT's /commit answer of `height` in its RPC's JSON form."""
        app_hash = self.app.store.get_block(height - 1).block_id() if height > 1 else b""
        time_ms = self.app.genesis.genesis_time_ms + height * 1000
        empty = sha256(b"")
        header = CometHeader(11, 1, CHAIN_ID, height, time_ms * 1_000_000,
                             CometBlockId(b"\x01" * 32, 1, b"\x02" * 32), empty, empty,
                             self.validators.hash(), self.validators.hash(), empty, app_hash,
                             empty, empty, self.validators.validators[0].address)
        block_id = CometBlockId(header.hash(), 1, b"\x03" * 32)
        unsigned = CommitSig(FLAG_COMMIT, compute_address(self.key.public_key),
                             (time_ms + 500) * 1_000_000, b"")
        commit = CometCommit(height, 0, block_id, (unsigned,))
        signature = self.key.sign(commit.compute_vote_sign_bytes(CHAIN_ID, 0))
        rpc_id = {"hash": block_id.hash.hex().upper(),
                  "parts": {"total": 1, "hash": block_id.parts_hash.hex().upper()}}
        return {
            "header": {"version": {"block": "11", "app": "1"}, "chain_id": CHAIN_ID,
                       "height": str(height), "time": format_rfc3339(time_ms),
                       "last_block_id": {"hash": "01" * 32, "parts": {
                           "total": 1, "hash": "02" * 32}},
                       **{name: getattr(header, name).hex().upper()
                          for name in HEADER_HASH_FIELDS}},
            "commit": {"height": str(height), "round": 0, "block_id": rpc_id, "signatures": [{
                "block_id_flag": FLAG_COMMIT,
                "validator_address": unsigned.validator_address.hex().upper(),
                "timestamp": format_rfc3339(time_ms + 500),
                "signature": base64.b64encode(signature).decode()}]}}


def make_served_node(app: AbciApplication) -> CometNode:
    chain = FakeCometChain(app)
    return CometNode(app, "http://cometbft", transport=httpx.MockTransport(chain.handle),
                     bundle_transport=httpx.MockTransport(chain.handle))


def test_light_blocks_validators_and_bundles_are_served_from_cometbfts_headers(
        home: Home, app: AbciApplication) -> None:
    anchor = Transaction.decode(sign_anchor(home, 1))
    commit_block(app, [anchor.encode()])
    commit_block(app, [sign_anchor(home, 2)])
    node = make_served_node(app)
    with TestClient(create_cometbft_app(node)) as client:
        light = client.get("/v1/light/2").json()
        block = cometbft_light_block_from_json(light["cometbft_light_block"], "light")
        assert block.height == 2 and block.header.app_hash == app.store.get_block(1).block_id()
        missing = client.get("/v1/light/9")
        assert missing.status_code == 404 and missing.json()["code"] == "no_block"

        validators = client.get("/v1/validators", params={"height": 2}).json()
        validator = home.load_key("validator").public_key.hex()
        assert [item["public_key"] for item in validators["items"]] == [validator]
        assert validators["height"] == 2 and validators["total_power"] == \
            app.genesis.validators.total_power
        assert "agency" in validators["items"][0]

        doc_hash = anchor.args["doc_hash"].hex()
        answer = client.get(f"/v1/bundles/document/{doc_hash}", params={"service": "notary"})
        assert answer.status_code == 200, answer.text
        statement = verify_bundle(parse_bundle(answer.content), app.genesis)
        assert statement.kind == "document" and "was anchored by" in statement.text
        state = client.get("/v1/bundles/state/notary/00")
        assert state.status_code == 200, state.text
        assert "cometbft" in json.loads(state.content)
        assert client.get("/v1/status").json()["engine"] == "cometbft"


def test_a_prover_away_from_the_node_builds_checkpoint_bundles_over_the_api(
        home: Home, app: AbciApplication) -> None:
    anchor = Transaction.decode(sign_anchor(home, 1))
    commit_block(app, [anchor.encode()])
    commit_block(app, [sign_anchor(home, 2)])
    node = make_served_node(app)
    with TestClient(create_cometbft_app(node)) as http:
        client = NodeClient("http://testserver")
        client.http = http
        source = open_proof_source(client)
        assert isinstance(source, HttpCometProofSource)
        bundle = build_document_bundle(source, app.genesis, anchor.args["doc_hash"],
                                       checkpoint_height=2, service="notary")
        trusted = Checkpoint(2, bytes.fromhex(bundle["trust"]["block_id"]))
        assert verify_bundle(bundle, app.genesis, trusted).kind == "document"
        with pytest.raises(BundleError, match="starts from a checkpoint"):
            verify_bundle(bundle, app.genesis)
        with pytest.raises(LocalError, match="signed headers"):
            source.get_light_block(1)


def test_routes_only_the_built_in_engine_answers_stay_501(
        home: Home, app: AbciApplication) -> None:
    commit_block(app, [sign_anchor(home, 1)])
    node = CometNode(app, "http://cometbft", transport=httpx.MockTransport(
        lambda request: httpx.Response(500)))
    with pytest.raises(NotServedUnderCometbft, match="cometbft_light_block"):
        node.get_light_block(1)
    with pytest.raises(NotServedUnderCometbft):
        node.get_proof_source()
    with TestClient(create_cometbft_app(node)) as client:
        # CometBFT's RPC is down: the CometBFT routes say so rather than failing.
        for path in ("/v1/light/1", "/v1/validators"):
            answer = client.get(path)
            assert answer.status_code == 502, path
            assert answer.json()["code"] == "cometbft_unavailable"
        block = client.get("/v1/blocks/1").json()
        assert block["header"]["height"] == 1
        assert client.get("/v1/status").json()["height"] == 1
        assert client.get("/v1/query/notary/document",
                          params={"doc_hash": sha256(b"none").hex()}).status_code == 200
