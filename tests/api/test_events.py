"""Live events: filters, resume without gaps or duplicates, slow consumers, bad filters."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.errors import ApiError
from seoulchain.api.events import (
    FILTER_ATTRS_MAX,
    FILTER_VALUE_CHARS_MAX,
    EventFilter,
    EventHub,
    stream_events,
)
from seoulchain.crypto import SigningKey
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

CHAIN_ID = "events-test"
# A VIN with a valid check digit.
VIN = "1M8GDM9AXKP042788"
# Longest a test waits for a background stream to subscribe or finish.
WAIT_S = 10.0


def sign(key: SigningKey, nonce: int = 1, doc_hash: bytes | None = None) -> Transaction:
    return Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                              service="notary", method="anchor",
                              args={"doc_hash": doc_hash or os.urandom(32), "kind": "permit"})


def scrap(key: SigningKey, vin: str) -> Transaction:
    """A scrap of a vehicle that is not registered: included, and refused when executed."""
    return Transaction.create(key, chain_id=CHAIN_ID, nonce=1, expiry_height=1000,
                              service="vehicle", method="scrap", args={"vin": vin})


def commit(node: Node, *txs: Transaction) -> None:
    for tx in txs:
        assert node.submit(tx.encode()).ok
    assert commit_next_height(node) is not None


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Return the messages of an SSE body: each with its event, id and JSON data."""
    messages = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name in ("event", "id", "data"):
                fields[name] = value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            messages.append(fields)
    return messages


def get_events(api: TestClient, headers: dict[str, str] | None = None,
               **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def test_events_filter_by_service_signer_event_and_attribute(node: Node,
                                                             api: TestClient) -> None:
    operator = Home(node.home.root).load_key("operator")
    stranger = SigningKey.generate()
    wanted_hash = os.urandom(32)
    commit(node, sign(operator, 1, wanted_hash), sign(operator, 2), scrap(stranger, VIN))
    everything = get_events(api, from_height=1, to_height=1)
    assert [message["event"] for message in everything] == ["block", "tx", "tx", "tx"]
    assert [message["id"] for message in everything] == ["1-0", "1-1", "1-2", "1-3"]
    assert everything[0]["data"]["tx_count"] == 3
    by_attr = get_events(api, from_height=1, to_height=1,
                         **{"attr.doc_hash": wanted_hash.hex(), "event": "notary.anchored"})
    assert [message["data"]["index"] for message in by_attr] == [0]
    assert by_attr[0]["data"]["events"][0]["attributes"]["doc_hash"] == wanted_hash.hex()
    by_signer = get_events(api, from_height=1, to_height=1, signer=stranger.public_key.hex())
    assert [message["data"]["method"] for message in by_signer] == ["scrap"]
    assert by_signer[0]["data"]["code_name"] != "OK"
    anchored = get_events(api, from_height=1, to_height=1, service="notary",
                          event="notary.anchored")
    assert [message["data"]["index"] for message in anchored] == [0, 1]
    vehicles = get_events(api, from_height=1, to_height=1, service="vehicle")
    assert [message["data"]["index"] for message in vehicles] == [2]
    assert get_events(api, from_height=1, to_height=1, **{"attr.vin": VIN}) == []
    blocks = get_events(api, from_height=1, to_height=1, types="block")
    assert [message["event"] for message in blocks] == ["block"]


def test_events_resume_across_a_live_commit_without_gaps_or_duplicates(
        node: Node, api: TestClient) -> None:
    operator = Home(node.home.root).load_key("operator")
    commit(node, sign(operator, 1), sign(operator, 2))
    commit(node, sign(operator, 3))
    hub: EventHub = api.app.state.events  # type: ignore[attr-defined]
    received: list[list[dict[str, Any]]] = []
    # Resume after the first tx of height 1; the stream replays the rest of heights 1-2
    # from the store, then waits for height 3, committed while it is subscribed.
    reader = threading.Thread(target=lambda: received.append(get_events(
        api, headers={"Last-Event-ID": "1-1"}, to_height=3)))
    reader.start()
    deadline = time.monotonic() + WAIT_S
    while not hub.subscribers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.subscribers, "the stream never subscribed"
    commit(node, sign(operator, 4), sign(operator, 5))
    reader.join(WAIT_S)
    assert not reader.is_alive() and received
    ids = [message["id"] for message in received[0]]
    assert ids == ["1-2", "2-0", "2-1", "3-0", "3-1", "3-2"]
    assert not hub.subscribers


def test_events_slow_consumer_is_dropped_with_a_final_error(node: Node) -> None:
    operator = Home(node.home.root).load_key("operator")
    commit(node, sign(operator, 1))
    hub = EventHub(queue_blocks_max=2)
    node.commit_hooks.append(hub.on_commit)

    async def run() -> list[Any]:
        subscription = hub.subscribe("203.0.113.7")
        stream = stream_events(node, hub, subscription, EventFilter(), (1, -1))
        replayed = [await anext(stream), await anext(stream)]  # height 1, from the store
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # live now: waiting on its queue for height 2
        # Three commits while the consumer does not read: the third overflows its queue,
        # and the node's commit does not wait for it.
        for nonce in (2, 3, 4):
            commit(node, sign(operator, nonce))
        assert subscription.dropped and subscription not in hub.subscribers
        return [*replayed, await waiting]

    items = asyncio.run(run())
    assert [item.id for item in items[:2]] == ["1-0", "1-1"]
    assert items[2]["code"] == "slow_consumer" and items[2]["status"] == 409
    assert items[2]["last_event_id"] == "1-1"
    assert hub.dropped_total == 1 and node.get_height() == 4


def test_events_subscriber_bounds_per_client_and_node() -> None:
    async def run() -> None:
        hub = EventHub(exempt_hosts=["127.0.0.1"], subscribers_max=4, per_client_max=2)
        hub.subscribe("203.0.113.7")
        hub.subscribe("203.0.113.7")
        with pytest.raises(ApiError) as refused:
            hub.subscribe("203.0.113.7")
        assert refused.value.status == 429
        hub.subscribe("127.0.0.1")
        hub.subscribe("127.0.0.1")  # exempt hosts are capped only by the node's total
        with pytest.raises(ApiError) as full:
            hub.subscribe("127.0.0.1")
        assert full.value.status == 503 and full.value.code == "too_many_subscribers"

    asyncio.run(run())


@pytest.mark.parametrize(("params", "headers", "fragment"), [
    ({"servce": "vehicle"}, {}, "unknown parameter"),
    ({f"attr.a{index}": "x" for index in range(FILTER_ATTRS_MAX + 1)}, {}, "at most"),
    ({"attr.vin": "x" * (FILTER_VALUE_CHARS_MAX + 1)}, {}, "longer than"),
    ({"attr.bad name": "x"}, {}, "not a name"),
    ({"signer": "abcd"}, {}, "32-byte public key"),
    ({"types": "blocks"}, {}, "types"),
    ({}, {"Last-Event-ID": "yesterday"}, "not an event id"),
])
def test_events_refuse_an_invalid_or_oversized_filter(idle_api: TestClient, params: dict[str, str],
                                                      headers: dict[str, str],
                                                      fragment: str) -> None:
    response = idle_api.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]


def test_events_refuse_an_out_of_range_height(idle_api: TestClient) -> None:
    response = idle_api.get("/v1/events", params={"from_height": 0})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
