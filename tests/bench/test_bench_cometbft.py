"""The CometBFT benchmark's transport: JSON-RPC batches of broadcast_tx_sync, block reads,
and the refusals (a refused batch, --mix under CometBFT)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from seoulchain.bench import network as network_bench
from seoulchain.bench.cometbft import COMETBFT, CometLoadGenerator, parse_duration_ms
from seoulchain.bench.loadgen import CODE_UNAVAILABLE, LoadConfig
from seoulchain.cli.main import app
from seoulchain.codec import encode
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction

KEY = SigningKey(b"\x05" * 32)
TXS = [Transaction.create(KEY, chain_id="bench-1", nonce=nonce, expiry_height=100,
                          service="notary", method="anchor",
                          args={"doc_hash": bytes([nonce]) * 32, "kind": "permit"}).encode()
       for nonce in range(1, 4)]


def run_batch(handler: Any) -> list[dict[str, Any]] | None:
    generator = CometLoadGenerator(LoadConfig(["http://node"], 10.0), TXS)

    async def main() -> list[dict[str, Any]] | None:
        generator.clients = [httpx.AsyncClient(base_url="http://node",
                                               transport=httpx.MockTransport(handler))]
        try:
            return await generator.post_batch(0, encode(TXS))
        finally:
            await generator.clients[0].aclose()
    return asyncio.run(main())


def test_a_batch_is_one_json_rpc_batch_of_broadcast_tx_sync_in_order() -> None:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        seen.extend(calls)
        replies = [{"jsonrpc": "2.0", "id": call["id"], "result": {"code": call["id"]}}
                   for call in calls]
        replies[1] = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603}}
        return httpx.Response(200, json=list(reversed(replies)))
    assert run_batch(handler) == [{"code": 0}, {"code": CODE_UNAVAILABLE}, {"code": 2}]
    assert [call["method"] for call in seen] == ["broadcast_tx_sync"] * 3
    assert [base64.b64decode(call["params"]["tx"]) for call in seen] == TXS


def test_a_batch_refused_whole_counts_as_a_node_not_answering() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "error": {
            "code": -32600, "data": "batch request exceeds maximum (10)"}})
    assert run_batch(handler) is None


def test_mix_is_refused_under_cometbft() -> None:
    with pytest.raises(LocalError, match="--mix runs on the built-in engine"):
        network_bench.run_network_bench(txs=10, mix="city", engine=COMETBFT)


def test_cli_passes_the_engine_to_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    given: dict[str, Any] = {}

    def fake_run(**kwargs: Any) -> Any:
        given.update(kwargs)
        raise LocalError("stop here")
    monkeypatch.setattr(network_bench, "run_network_bench", fake_run)
    result = CliRunner().invoke(app, ["bench", "network", "--engine", "cometbft",
                                      "--txs", "10"])
    assert "stop here" in result.output
    assert given["engine"] is COMETBFT


def test_cometbft_durations_read_as_milliseconds() -> None:
    assert parse_duration_ms("1s") == 1000
    assert parse_duration_ms("100ms") == 100
    with pytest.raises(ValueError):
        parse_duration_ms("1m")
