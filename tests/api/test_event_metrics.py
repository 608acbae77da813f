"""Event stream metrics: live subscribers, and subscribers dropped for reading too slowly,
by reason, as /metrics shows them."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sse_starlette.sse import SendTimeoutError

from seoulchain.api import events
from seoulchain.api.events import EventFilter, EventHub, stream_events
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home
from seoulchain.node.node import Node
from tests.api.test_metrics import scrape
from tests.conftest import commit_next_height

CHAIN_ID = "event-metrics-test"
SUBSCRIBERS = ("seoulchain_event_subscribers", ())
QUEUE_FULL = ("seoulchain_event_subscribers_dropped_total", (("reason", "queue_full"),))
SEND_TIMEOUT = ("seoulchain_event_subscribers_dropped_total", (("reason", "send_timeout"),))
# Long enough for a test's write to be seen as stuck, short enough to keep the test fast.
SEND_TIMEOUT_S = 0.05
# Longest a test waits for the stream to give up on its stuck write.
WAIT_S = 10.0


def commit_anchor(node: Node, nonce: int) -> None:
    key = Home(node.home.root).load_key("operator")
    tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                            service="notary", method="anchor",
                            args={"doc_hash": os.urandom(32), "kind": "permit"})
    assert node.submit(tx.encode()).ok
    assert commit_next_height(node) is not None


def test_metrics_start_at_zero_for_every_reason(api: TestClient) -> None:
    figures = scrape(api)
    assert figures[SUBSCRIBERS] == 0
    assert figures[QUEUE_FULL] == 0 and figures[SEND_TIMEOUT] == 0


def test_a_subscriber_that_falls_behind_is_dropped_and_counted(node: Node,
                                                               api: TestClient) -> None:
    """Live, its queue fills while it does not read: the gauge shows it, then the counter
    of `queue_full` drops rises and the gauge falls back (n=1 subscriber, queue of 2)."""
    hub: EventHub = api.app.state.events
    hub.queue_blocks_max = 2
    commit_anchor(node, 1)

    async def run() -> tuple[dict[Any, float], dict[Any, float], Any]:
        subscription = hub.subscribe("203.0.113.7")
        stream = stream_events(node, hub, subscription, EventFilter(), (2, -1))
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # live now: waiting on its queue for height 2
        reading = scrape(api)
        for nonce in (2, 3, 4):  # three blocks it does not read: the third overflows
            commit_anchor(node, nonce)
        dropped = scrape(api)
        return reading, dropped, await waiting

    reading, dropped, last = asyncio.run(run())
    assert reading[SUBSCRIBERS] == 1 and reading[QUEUE_FULL] == 0
    assert dropped[QUEUE_FULL] == 1 and dropped[SEND_TIMEOUT] == 0
    assert dropped[SUBSCRIBERS] == 0
    assert last["code"] == "slow_consumer"


def test_a_subscriber_whose_write_never_finishes_is_dropped_and_counted(
        node: Node, api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that stops reading blocks the node's write (the transport's flow control):
    after the send timeout the stream ends and counts a `send_timeout` drop."""
    monkeypatch.setattr(events, "EVENT_SEND_TIMEOUT_S", SEND_TIMEOUT_S)
    commit_anchor(node, 1)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/v1/events", "raw_path":
             b"/v1/events", "query_string": b"from_height=1", "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("203.0.113.9", 40000),
             "server": ("testserver", 80)}
    started: list[int] = []

    async def receive() -> dict[str, Any]:
        if not started:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never sends anything more
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.append(message["status"])
            return
        await asyncio.Event().wait()  # a body write that never completes

    async def run() -> None:
        await asyncio.wait_for(api.app(scope, receive, send), WAIT_S)

    with pytest.raises(SendTimeoutError):
        asyncio.run(run())
    figures = scrape(api)
    assert started == [200]
    assert figures[SEND_TIMEOUT] == 1 and figures[QUEUE_FULL] == 0
    assert figures[SUBSCRIBERS] == 0  # the stream ended: nothing left subscribed
