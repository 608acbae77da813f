"""The ABCI server spoken to over its socket, as CometBFT speaks to it (no CometBFT needed)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tomllib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.service import compute_nonce_key
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Transaction
from seoulchain.node.abci import (
    ABCI_PB_DEFAULT,
    ABCI_PB_ENV,
    CHUNK_ACCEPT,
    CHUNK_RETRY,
    OFFER_ACCEPT,
    OFFER_REJECT,
    PROPOSAL_ACCEPT,
    PROPOSAL_REJECT,
    AbciApplication,
    AbciServer,
    CometRpc,
    CometRpcError,
    compute_address,
    encode_frame,
    find_cometbft,
    load_abci_types,
    prepare_cometbft_home,
    read_frame,
)
from seoulchain.node.home import Home, init_home
from seoulchain.proofs import verify_state_proof

pytestmark = pytest.mark.skipif(
    not (Path(os.environ.get(ABCI_PB_ENV) or ABCI_PB_DEFAULT) / "tendermint").exists(),
    reason="ABCI bindings not generated; run scripts/install-cometbft")

CHAIN_ID = "seoul-abci-1"
BLOCK_TIME_S = 1_800_000_000


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return init_home(tmp_path / "node", chain_id=CHAIN_ID)


@pytest.fixture
def types() -> Any:
    return load_abci_types()


@pytest.fixture
def app(home: Home, types: Any) -> Iterator[AbciApplication]:
    application = AbciApplication(home, types)
    yield application
    application.close()


# Longest a test's conversation with the server may take.
TEST_TIMEOUT_S = 20


def serve(app: AbciApplication, scenario: Callable[[AbciServer], Awaitable[None]]) -> None:
    """Run `scenario` against a server for `app` on a free loopback port, then stop it."""
    async def main() -> None:
        abci = AbciServer(app)
        await abci.start("tcp://127.0.0.1:0")
        try:
            async with asyncio.timeout(TEST_TIMEOUT_S):
                await scenario(abci)
        finally:
            await abci.close()
    asyncio.run(main())


class Connection:
    """One client connection, as one of CometBFT's four."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 types: Any):
        self.reader, self.writer, self.types = reader, writer, types

    async def call(self, **request: Any) -> Any:
        self.writer.write(encode_frame(self.types.Request(**request)))
        await self.writer.drain()
        frame = await asyncio.wait_for(read_frame(self.reader), 5)
        assert frame is not None
        response = self.types.Response()
        response.ParseFromString(frame)
        return response


async def connect(server: AbciServer, types: Any) -> Connection:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    return Connection(reader, writer, types)


def sign_anchor(home: Home, nonce: int) -> bytes:
    key = home.load_key("operator")
    return Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                              service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "permit"}).encode()


def init_chain_request(home: Home, types: Any) -> Any:
    genesis = home.load_genesis()
    keys_pb = __import__("tendermint.crypto.keys_pb2", fromlist=["PublicKey"])
    return types.RequestInitChain(
        chain_id=CHAIN_ID, app_state_bytes=json.dumps(genesis.to_json()).encode(),
        validators=[types.ValidatorUpdate(pub_key=keys_pb.PublicKey(ed25519=v.public_key),
                                          power=v.power)
                    for v in genesis.validators.validators])


def block_fields(home: Home, height: int, txs: list[bytes]) -> dict[str, Any]:
    proposer = home.load_genesis().validators.validators[0].public_key
    return {"txs": txs, "height": height, "proposer_address": compute_address(proposer),
            "time": {"seconds": BLOCK_TIME_S + height}}


async def commit_block(conn: Connection, home: Home, height: int, txs: list[bytes]) -> Any:
    types = conn.types
    finalized = await conn.call(finalize_block=types.RequestFinalizeBlock(
        **block_fields(home, height, txs)))
    committed = await conn.call(commit=types.RequestCommit())
    assert committed.WhichOneof("value") == "commit"
    return finalized.finalize_block


def test_info_init_and_blocks(home: Home, types: Any, app: AbciApplication) -> None:
    """A block's txs get results with events, the app hash moves, Info reports the tip."""
    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        info = (await conn.call(info=types.RequestInfo())).info
        assert (info.last_block_height, info.last_block_app_hash) == (0, b"")
        init = await conn.call(init_chain=init_chain_request(home, types))
        assert init.WhichOneof("value") == "init_chain"
        tx = sign_anchor(home, 1)
        assert (await conn.call(check_tx=types.RequestCheckTx(tx=tx))).check_tx.code == 0
        result = await commit_block(conn, home, 1, [tx, b"not a transaction"])
        assert result.tx_results[0].code == 0
        assert result.tx_results[1].code != 0
        assert result.tx_results[0].events[0].type
        assert len(result.app_hash) == 32
        info = (await conn.call(info=types.RequestInfo())).info
        assert (info.last_block_height, info.last_block_app_hash) == (1, result.app_hash)
        # The same tx again: its nonce is used, so admission refuses it.
        again = (await conn.call(check_tx=types.RequestCheckTx(tx=tx))).check_tx
        assert again.code != 0 and again.log
    serve(app, scenario)


def test_proposals(home: Home, types: Any, app: AbciApplication) -> None:
    """PrepareProposal drops bad txs; ProcessProposal rejects a block holding one."""
    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        await conn.call(init_chain=init_chain_request(home, types))
        good, bad = sign_anchor(home, 1), b"\x00garbage"
        prepared = (await conn.call(prepare_proposal=types.RequestPrepareProposal(
            max_tx_bytes=1 << 20, **block_fields(home, 1, [bad, good])))).prepare_proposal
        assert list(prepared.txs) == [good]
        verdict = await conn.call(process_proposal=types.RequestProcessProposal(
            **block_fields(home, 1, [good])))
        assert verdict.process_proposal.status == PROPOSAL_ACCEPT
        verdict = await conn.call(process_proposal=types.RequestProcessProposal(
            **block_fields(home, 1, [good, bad])))
        assert verdict.process_proposal.status == PROPOSAL_REJECT
        stranger = block_fields(home, 1, [good]) | {"proposer_address": b"\x01" * 20}
        verdict = await conn.call(process_proposal=types.RequestProcessProposal(**stranger))
        assert verdict.process_proposal.status == PROPOSAL_REJECT
    serve(app, scenario)


def test_query_state_with_proof(home: Home, types: Any, app: AbciApplication) -> None:
    """/state answers a key's value with a proof that checks against the block's root."""
    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        await conn.call(init_chain=init_chain_request(home, types))
        tx = sign_anchor(home, 1)
        doc_hash = Transaction.decode(tx).args["doc_hash"]
        await commit_block(conn, home, 1, [tx])
        operator = home.load_key("operator").public_key
        nonce_key = compute_nonce_key(operator)
        doc = (await conn.call(query=types.RequestQuery(
            path="/query/notary/document", data=encode({"doc_hash": doc_hash})))).query
        assert doc.code == 0, doc.log
        assert decode(doc.value)["status"] == "valid"
        state = (await conn.call(query=types.RequestQuery(
            path="/state", data=encode(["auth", nonce_key])))).query
        assert state.height == 1 and state.proof_ops.ops[0].type == "seoulchain/state-tree"
        header = server.app.store.get_block(1).header
        proof = server.app.engine.get_state_proof("auth", nonce_key)
        assert proof.proof == state.proof_ops.ops[0].data
        verify_state_proof(header.state_root, proof)
        unknown = (await conn.call(query=types.RequestQuery(path="/nowhere"))).query
        assert unknown.code != 0 and "/state" in unknown.log
    serve(app, scenario)


def test_init_chain_refuses_another_genesis(home: Home, types: Any,
                                           app: AbciApplication) -> None:
    """InitChain with another chain's genesis is answered with an exception."""
    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        request = init_chain_request(home, types)
        request.chain_id = "other-chain"
        response = await conn.call(init_chain=request)
        assert response.WhichOneof("value") == "exception"
        assert "other-chain" in response.exception.error
        request = init_chain_request(home, types)
        request.app_state_bytes = b"{}"
        response = await conn.call(init_chain=request)
        assert response.WhichOneof("value") == "exception"
    serve(app, scenario)


def test_restart_resumes(home: Home, types: Any) -> None:
    """After the application stops, a new one reports the same height and app hash."""
    app = AbciApplication(home, types)
    blocks: list[Any] = []

    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        await conn.call(init_chain=init_chain_request(home, types))
        blocks.append(await commit_block(conn, home, 1, [sign_anchor(home, 1)]))
    try:
        serve(app, scenario)
    finally:
        app.close()
    app = AbciApplication(home, types)
    try:
        info = app.handle(types.Request(info=types.RequestInfo())).info
        assert (info.last_block_height, info.last_block_app_hash) == (1, blocks[0].app_hash)
    finally:
        app.close()


@pytest.mark.parametrize("frame", [
    b"\xff" * 11,                       # a length varint longer than ten bytes
    b"\xff\xff\xff\xff\x0f",            # a length beyond the frame limit
    b"\x05\xff\xff\xff\xff\xff",        # five bytes that are not a protobuf Request
    b"\x02\x08\x01",                    # the stream ends inside a frame
])
def test_malformed_frames_close_the_connection(
        types: Any, frame: bytes, caplog: pytest.LogCaptureFixture,
        app: AbciApplication) -> None:
    """A bad frame closes its connection with a log; the server serves the next one."""
    async def scenario(server: AbciServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(frame)
        await writer.drain()
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert "closing an ABCI connection" in caplog.text
        conn = await connect(server, types)
        assert (await conn.call(echo=types.RequestEcho(message="hi"))).echo.message == "hi"
    serve(app, scenario)


def test_missing_bindings_name_the_script(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ABCI_PB_ENV, str(tmp_path))
    with pytest.raises(LocalError, match="scripts/install-cometbft"):
        load_abci_types()


def test_committed_result_decodes(app: AbciApplication, home: Home, types: Any) -> None:
    """An ExecTxResult's data is the engine's CBOR result."""
    app.handle(types.Request(init_chain=init_chain_request(home, types)))
    response = app.handle(types.Request(finalize_block=types.RequestFinalizeBlock(
        **block_fields(home, 1, [sign_anchor(home, 1)]))))
    code, _, _ = decode(response.finalize_block.tx_results[0].data)
    assert code == 0


def make_peer_home(tmp_path: Path, home: Home) -> Home:
    """Return a second node home of the same chain (same genesis, its own keys)."""
    peer = init_home(tmp_path / "peer", chain_id=CHAIN_ID)
    peer.genesis_path.write_text(home.genesis_path.read_text())
    return peer


def commit_blocks(app: AbciApplication, home: Home, types: Any, count: int) -> bytes:
    """Commit `count` blocks of one anchor each through `handle`; return the last app hash."""
    app_hash = b""
    for height in range(1, count + 1):
        response = app.handle(types.Request(finalize_block=types.RequestFinalizeBlock(
            **block_fields(home, height, [sign_anchor(home, height)]))))
        app_hash = response.finalize_block.app_hash
        app.handle(types.Request(commit=types.RequestCommit()))
    return app_hash


def test_state_sync_through_snapshot_calls(app: AbciApplication, home: Home, types: Any,
                                           tmp_path: Path) -> None:
    """A snapshot listed by one application restores another to the same height and hash;
    a chunk that does not verify is asked for again, a wrong app hash is refused."""
    app.handle(types.Request(init_chain=init_chain_request(home, types)))
    app_hash = commit_blocks(app, home, types, 3)
    assert app.snapshots.take_to_files() == 3
    listed = app.handle(types.Request(list_snapshots=types.RequestListSnapshots()))
    (snapshot,) = listed.list_snapshots.snapshots
    assert snapshot.height == 3 and snapshot.chunks >= 1
    peer = AbciApplication(make_peer_home(tmp_path, home), types)
    try:
        offer = peer.handle(types.Request(offer_snapshot=types.RequestOfferSnapshot(
            snapshot=snapshot, app_hash=b"\x00" * 32))).offer_snapshot
        assert offer.result == OFFER_REJECT
        offer = peer.handle(types.Request(offer_snapshot=types.RequestOfferSnapshot(
            snapshot=snapshot, app_hash=app_hash))).offer_snapshot
        assert offer.result == OFFER_ACCEPT
        for index in range(snapshot.chunks):
            chunk = app.handle(types.Request(load_snapshot_chunk=types.RequestLoadSnapshotChunk(
                height=3, format=snapshot.format, chunk=index))).load_snapshot_chunk.chunk
            bad = peer.handle(types.Request(apply_snapshot_chunk=types.RequestApplySnapshotChunk(
                index=index, chunk=chunk[:-1] + bytes([chunk[-1] ^ 1]), sender="liar")))
            assert bad.apply_snapshot_chunk.result == CHUNK_RETRY
            assert list(bad.apply_snapshot_chunk.reject_senders) == ["liar"]
            good = peer.handle(types.Request(
                apply_snapshot_chunk=types.RequestApplySnapshotChunk(index=index, chunk=chunk)))
            assert good.apply_snapshot_chunk.result == CHUNK_ACCEPT
        info = peer.handle(types.Request(info=types.RequestInfo())).info
        assert (info.last_block_height, info.last_block_app_hash) == (3, app_hash)
        assert peer.engine.tip.state_root == app.engine.tip.state_root
    finally:
        peer.close()


def test_cometbft_home_follows_the_seoulchain_home(home: Home) -> None:
    """The CometBFT home's validator, node id, genesis and peers derive from the node's."""
    try:
        binary = find_cometbft()
    except LocalError:
        pytest.skip("no cometbft binary; run scripts/install-cometbft")
    peer_key = SigningKey.generate().public_key
    config = home.load_config()
    config.p2p.peers = [f"{peer_key.hex()}@127.0.0.1:27001"]
    config.save(home.config_path)
    root = prepare_cometbft_home(home)
    validator = home.load_key("validator").public_key
    node_id = subprocess.run([str(binary), "show-node-id", "--home", str(root)],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert node_id == compute_address(validator).hex()
    genesis = json.loads((root / "config" / "genesis.json").read_text())
    assert genesis["chain_id"] == CHAIN_ID
    assert genesis["validators"][0]["address"] == compute_address(validator).hex().upper()
    assert Genesis.from_json(genesis["app_state"]).hash() == home.load_genesis().hash()
    settings = tomllib.loads((root / "config" / "config.toml").read_text())
    assert settings["p2p"]["persistent_peers"] == \
        f"{compute_address(peer_key).hex()}@127.0.0.1:27001"
    assert settings["proxy_app"] == f"unix://{root / 'abci.sock'}"
    config.p2p.peers = ["not-a-peer"]
    config.save(home.config_path)
    with pytest.raises(LocalError, match="pubkeyhex@host:port"):
        prepare_cometbft_home(home)


def test_audit_checks_each_block_id_against_cometbfts_app_hash(
        home: Home, types: Any, app: AbciApplication) -> None:
    """The audit replays the application's blocks; block h's id must be header h+1's app hash."""
    from seoulchain.client.audit import audit_chain
    from seoulchain.execution.service import load_services

    app_hashes: dict[int, bytes] = {}

    async def scenario(server: AbciServer) -> None:
        conn = await connect(server, types)
        await conn.call(init_chain=init_chain_request(home, types))
        for height in range(1, 4):
            block = await commit_block(conn, home, height, [sign_anchor(home, height)])
            app_hashes[height + 1] = block.app_hash  # CometBFT's header h + 1 carries it
    serve(app, scenario)
    genesis = home.load_genesis()
    report = audit_chain(genesis, app.store, load_services(), app_hashes=app_hashes.__getitem__)
    assert report.ok and (report.blocks, report.txs) == (3, 3)

    app_hashes[3] = bytes(32)
    forged = audit_chain(genesis, app.store, load_services(), app_hashes=app_hashes.__getitem__)
    assert forged.bad_height == 2 and "carries app hash 0000" in (forged.failure or "")
    # Signed seoulchain commits are what the built-in audit expects; these have none.
    builtin = audit_chain(genesis, app.store, load_services())
    assert builtin.bad_height == 1 and not builtin.ok


def serve_rpc(answers: dict[str, Any], height: int) -> httpx.MockTransport:
    """A CometBFT RPC at `height` answering /status and the recorded /commit, /validators."""
    def handle(request: httpx.Request) -> httpx.Response:
        method = request.url.path.strip("/")
        if method == "status":
            return httpx.Response(200, json={"result": {"sync_info": {
                "latest_block_height": str(height)}}})
        if method in answers:
            return httpx.Response(200, json=answers[method])
        return httpx.Response(200, json={"error": {"code": -32601,
                                                   "message": "Method not found"}})
    return httpx.MockTransport(handle)


RPC_DATA = Path(__file__).resolve().parents[1] / "light" / "data" / "cometbft_rpc_height_3.json"


def test_rpc_client_reads_signed_headers_and_names_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from seoulchain.light.cometbft import light_block_from_rpc
    from seoulchain.node import abci

    answers = json.loads(RPC_DATA.read_text())
    rpc = CometRpc("http://127.0.0.1:1", transport=serve_rpc(answers, 4))
    block = rpc.get_light_block(3)
    assert block == light_block_from_rpc(answers["commit"]["result"]["signed_header"],
                                         answers["validators"]["result"]["validators"])
    with pytest.raises(CometRpcError, match="refused header"):
        rpc.get_app_hash(4)
    monkeypatch.setattr(abci, "NEXT_HEADER_WAIT_S", 0.1)
    with pytest.raises(CometRpcError, match="has not decided height 9"):
        rpc.get_light_block(9)
    down = CometRpc("http://127.0.0.1:1", transport=httpx.MockTransport(
        lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused"))))
    with pytest.raises(CometRpcError, match="did not answer status"):
        down.get_height()


def test_finalize_reuses_the_execution_of_the_processed_block(
        home: Home, types: Any, app: AbciApplication) -> None:
    """FinalizeBlock of the block ProcessProposal (or PrepareProposal) executed does not
    execute it again and leaves the state untouched until Commit; another block does."""
    executions: list[str] = []
    app.engine.on_duration = lambda phase, seconds: executions.append(phase)
    app.handle(types.Request(init_chain=init_chain_request(home, types)))

    def count() -> int:
        return executions.count("execute")

    first, second = sign_anchor(home, 1), sign_anchor(home, 2)
    prepared = app.handle(types.Request(prepare_proposal=types.RequestPrepareProposal(
        max_tx_bytes=1 << 20, **block_fields(home, 1, [first, b"\x00junk"])))).prepare_proposal
    assert list(prepared.txs) == [first] and count() == 1
    verdict = app.handle(types.Request(process_proposal=types.RequestProcessProposal(
        **block_fields(home, 1, list(prepared.txs))))).process_proposal
    assert verdict.status == PROPOSAL_ACCEPT and count() == 1  # the prepared block
    finalized = app.handle(types.Request(finalize_block=types.RequestFinalizeBlock(
        **block_fields(home, 1, [first])))).finalize_block
    assert count() == 1 and app.engine.height == 0 and len(finalized.app_hash) == 32
    app.handle(types.Request(commit=types.RequestCommit()))
    assert app.engine.height == 1 and app.engine.tip.block_id == finalized.app_hash

    # Height 2: the network decides another block than the one processed here.
    app.handle(types.Request(process_proposal=types.RequestProcessProposal(
        **block_fields(home, 2, [second]))))
    assert count() == 2
    other_time = block_fields(home, 2, [second]) | {"time": {"seconds": BLOCK_TIME_S + 99}}
    decided = app.handle(types.Request(finalize_block=types.RequestFinalizeBlock(
        **other_time))).finalize_block
    assert count() == 3 and decided.tx_results[0].code == 0
    app.handle(types.Request(commit=types.RequestCommit()))
    assert app.engine.tip.time_ms == (BLOCK_TIME_S + 99) * 1000


def serve_network(answers: dict[str, Any], local_height: int,
                  tamper: bool = False) -> httpx.MockTransport:
    """The local CometBFT (http://local, at `local_height`) and one peer (127.0.0.9) that
    serves the recorded signed header of height 3; `tamper` alters its app hash."""
    def handle(request: httpx.Request) -> httpx.Response:
        method = request.url.path.strip("/")
        if request.url.host == "local" and method == "status":
            return httpx.Response(200, json={"result": {"sync_info": {
                "latest_block_height": str(local_height)}}})
        if request.url.host == "local" and method == "net_info":
            return httpx.Response(200, json={"result": {"peers": [{
                "remote_ip": "127.0.0.9",
                "node_info": {"other": {"rpc_address": "tcp://0.0.0.0:26857"}}}]}})
        if request.url.host == "local" and method == "validators":
            return httpx.Response(200, json=answers["validators"])
        if request.url.host == "127.0.0.9" and request.url.port == 26857 \
                and method == "commit" and request.url.params["height"] == "3":
            answer = json.loads(json.dumps(answers["commit"]))
            if tamper:
                answer["result"]["signed_header"]["header"]["app_hash"] = "00" * 32
            return httpx.Response(200, json=answer)
        return httpx.Response(200, json={"error": {"code": -32603, "message": "not found"}})
    return httpx.MockTransport(handle)


def make_watch(app: AbciApplication, transport: httpx.MockTransport) -> Any:
    from seoulchain.node.abci import AppHashWatch
    return AppHashWatch(app, "http://local", chain_id="seoul-devnet-1", transport=transport)


def test_app_hash_watch_finds_a_header_that_contradicts_the_tip(
        app: AbciApplication, home: Home, types: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Stalled at h while a peer serves header h + 1, signed by > 2/3, with another app
    hash: the application reports the mismatch (log, status, metric), refuses consensus
    requests and stops; an unsigned or missing header, or a local decision, is no mismatch."""
    from prometheus_client import CollectorRegistry

    from seoulchain.node import abci

    answers = json.loads(RPC_DATA.read_text())
    app.handle(types.Request(init_chain=init_chain_request(home, types)))
    commit_blocks(app, home, types, 2)

    async def check(transport: httpx.MockTransport, now_s: float) -> None:
        watch = make_watch(app, transport)
        try:
            await watch.check(0.0)
            await watch.check(now_s)
        finally:
            await watch.aclose()

    stalled = abci.APP_HASH_STALL_S + 1
    asyncio.run(check(serve_network(answers, 3), stalled))  # the local CometBFT decided 3
    asyncio.run(check(serve_network(answers, 2, tamper=True), stalled))  # not signed so
    asyncio.run(check(serve_network(answers, 2), abci.APP_HASH_STALL_S - 1))  # not stalled
    with pytest.raises(abci.AppHashMismatch) as found:
        asyncio.run(check(serve_network(answers, 2), stalled))
    assert (found.value.height, found.value.ours) == (2, app.engine.tip.block_id)
    assert found.value.network.hex().upper() == \
        answers["commit"]["result"]["signed_header"]["header"]["app_hash"]

    registry = CollectorRegistry()
    abci.register_app_hash_metric(app, registry)
    assert abci.describe_app_hash_mismatch(app) is None
    assert registry.get_sample_value("seoulchain_app_hash_mismatch_height") == 0
    monkeypatch.setattr(abci, "APP_HASH_STALL_S", 0.0)
    monkeypatch.setattr(abci, "APP_HASH_REPORT_S", 0.0)
    watch = make_watch(app, serve_network(answers, 2))
    with pytest.raises(abci.AppHashMismatch):
        asyncio.run(watch.run(asyncio.Event()))
    assert f"fatal: app hash mismatch at height 2: this node's block id is " \
        f"{app.engine.tip.block_id.hex()}" in caplog.text
    assert registry.get_sample_value("seoulchain_app_hash_mismatch_height") == 2
    assert abci.describe_app_hash_mismatch(app)["network"] == found.value.network
    refused = app.handle(types.Request(finalize_block=types.RequestFinalizeBlock(
        **block_fields(home, 3, []))))
    assert "app hash mismatch at height 2" in refused.exception.error
    assert app.engine.height == 2
    assert app.handle(types.Request(info=types.RequestInfo())).info.last_block_height == 2
