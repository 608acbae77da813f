"""API: every number in a path or query is bounded; non-finite waits never reach the loop."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.ledger.types import HEIGHT_MAX, Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node

CHAIN_ID = "bounds-test"
UNKNOWN_TX = "ab" * 32

# Each is refused as a wait: not a number, not finite, overflowing to inf, or out of range.
BAD_WAITS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1", "61"]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id=CHAIN_ID))
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node), raise_server_exceptions=False)


def make_anchor(node: Node) -> Transaction:
    key = Home(node.home.root).load_key("operator")
    return Transaction.create(key, chain_id=CHAIN_ID, nonce=1, expiry_height=100,
                              service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "permit"})


def assert_refused(response: httpx.Response, parameter: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "code"}
    assert body["code"] == "bad_request"
    assert parameter in body["detail"]


@pytest.mark.timeout(60)
def test_non_finite_waits_are_refused_and_the_loop_keeps_its_timers(node: Node) -> None:
    tx = make_anchor(node)

    async def scenario() -> tuple[list[httpx.Response], float, httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(node))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            # An honest waiter keeps a real deadline in the loop's timer heap meanwhile.
            waiter = asyncio.create_task(client.get(f"/v1/txs/{UNKNOWN_TX}",
                                                    params={"wait_s": "0.3"}))
            requests: list[Any] = [client.get(f"/v1/txs/{UNKNOWN_TX}", params={"wait_s": wait})
                                   for wait in BAD_WAITS]
            requests += [client.post("/v1/txs", params={"wait_s": wait}, content=tx.encode(),
                                     headers={"content-type": "application/cbor"})
                         for wait in BAD_WAITS]
            responses = await asyncio.wait_for(asyncio.gather(*requests), timeout=10)
            started = time.monotonic()
            await asyncio.wait_for(asyncio.sleep(0.05), timeout=5)
            timer_s = time.monotonic() - started
            return responses, timer_s, await asyncio.wait_for(waiter, timeout=10)

    responses, timer_s, answered = asyncio.run(scenario())
    for response in responses:
        assert_refused(response, "wait_s")
    assert len(node.mempool) == 0  # refused before admission: nothing half-applied
    assert timer_s < 1.0  # a 50 ms timer, with slack for a busy machine
    assert answered.status_code == 200 and answered.json()["status"] == "unknown"


@pytest.mark.parametrize(("path", "params", "parameter"), [
    (f"/v1/blocks/{2**63}", {}, "height"),
    (f"/v1/blocks/{2**64}", {}, "height"),
    ("/v1/blocks/0", {}, "height"),
    ("/v1/blocks/-1", {}, "height"),
    (f"/v1/light/{2**63}", {}, "height"),
    ("/v1/light/0", {}, "height"),
    ("/v1/log/consistency", {"old": 2**63}, "old"),
    ("/v1/log/consistency", {"old": 0, "new": 2**64}, "new"),
    ("/v1/log/consistency", {"old": "1e3"}, "old"),
    (f"/v1/log/inclusion/{2**63}", {}, "index"),
    ("/v1/log/inclusion/0", {"size": 2**63}, "size"),
    ("/v1/log/inclusion/0", {"size": -1}, "size"),
    (f"/v1/accounts/{'00' * 32}", {"limit": 0}, "limit"),
    (f"/v1/accounts/{'00' * 32}", {"limit": 2**63}, "limit"),
    (f"/v1/snapshots/{2**63}/manifest", {}, "height"),
    ("/v1/snapshots/0/manifest", {}, "height"),
    (f"/v1/snapshots/{2**63}/chunks/0", {}, "height"),
    (f"/v1/snapshots/1/chunks/{2**63}", {}, "index"),
    ("/v1/snapshots/1/chunks/65536", {}, "index"),
    ("/v1/snapshots/1/chunks/-1", {}, "index"),
])
def test_numbers_outside_their_range_get_a_clear_400(api: TestClient, path: str,
                                                          params: dict[str, Any],
                                                          parameter: str) -> None:
    assert_refused(api.get(path, params=params), parameter)


def test_the_largest_valid_numbers_are_looked_up_not_crashed_on(api: TestClient) -> None:
    for path, params, code in [
        (f"/v1/blocks/{HEIGHT_MAX}", {}, "no_block"),
        (f"/v1/blocks/{HEIGHT_MAX}", {"format": "cbor"}, "no_block"),
        (f"/v1/light/{HEIGHT_MAX}", {}, "no_block"),
        ("/v1/log/consistency", {"old": 0, "new": HEIGHT_MAX}, "beyond_log"),
        (f"/v1/log/inclusion/{HEIGHT_MAX - 1}", {"size": HEIGHT_MAX}, "beyond_log"),
        (f"/v1/snapshots/{HEIGHT_MAX}/manifest", {}, "no_snapshot"),
        (f"/v1/snapshots/{HEIGHT_MAX}/chunks/65535", {}, "no_chunk"),
    ]:
        response = api.get(path, params=params)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["code"] == code
    assert api.get(f"/v1/accounts/{'00' * 32}", params={"limit": 1000}).status_code == 200
