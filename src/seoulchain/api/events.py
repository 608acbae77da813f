"""Live events: committed blocks and transactions, filtered, resumable from a height.

Theory of operation: the node calls `EventHub.on_commit` once per committed block; the hub
turns the block into its event items once (a `block` item, then one `tx` item per
transaction, each with an id `HEIGHT-SEQ`: SEQ 0 is the block, SEQ i+1 its transaction i)
and offers them to every subscriber's bounded queue, on the subscriber's own event loop,
never waiting. A subscriber registers first, then replays committed heights from the store
up to the tip, then reads its queue: a queued block below the next height it needs was
already replayed (skipped, no duplicate), and any height it has not seen is read from the
store (no gap). While it replays, a full queue only sheds blocks the store holds anyway;
once live, a full queue means the consumer is slower than the chain: it is dropped, and
its stream ends with an `error` event naming the last id it received, to resume from. A
consumer that stops reading altogether is dropped when one write to it has waited
`EVENT_SEND_TIMEOUT_S`. Both drops are counted by reason (`on_dropped`, the node's
`seoulchain_event_subscribers_dropped_total`).

Filters (`EventFilter`): `types` (block, tx), `service`, `method`, `signer`, `event` (an
event kind) and up to `FILTER_ATTRS_MAX` `attr.NAME=VALUE` pairs that one event of the
transaction must all carry (values compared as text: bytes as hex, bools as true/false).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fastapi import FastAPI, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from seoulchain.api.errors import ApiError, problem_body
from seoulchain.api.params import OptionalHeight
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.execution.engine import CommittedBlock
from seoulchain.execution.results import EventValue, ResultCode, TxResult
from seoulchain.ledger.types import HEIGHT_MAX, Block, Transaction
from seoulchain.node.metrics import EVENT_DROP_QUEUE_FULL, EVENT_DROP_SEND_TIMEOUT
from seoulchain.node.node import Node

# Subscribers one node serves at once: each holds a queue and an open connection.
EVENT_SUBSCRIBERS_MAX = 1000
# Subscribers one client address may hold (hosts exempt from the rate limit are not capped,
# so the node's own tools and load generator may open many).
EVENT_SUBSCRIBERS_PER_CLIENT_MAX = 8
# Blocks a subscriber may fall behind the chain before it is dropped: about four minutes
# at the default one block a second; the items are shared, so the cost is references.
EVENT_QUEUE_BLOCKS_MAX = 256
# A filter holds at most this many attr.NAME=VALUE pairs, each bounded in length.
FILTER_ATTRS_MAX = 8
FILTER_VALUE_CHARS_MAX = 256
# Service, method, event kind and attribute names: identifiers, as services declare them.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_.\-]{0,63}", re.IGNORECASE)
EVENT_TYPES = ("block", "tx")
# Query parameters a filter reads; anything else is refused as a likely typo.
FILTER_PARAMS = frozenset({"types", "service", "method", "signer", "event"})
# The signer filter is an Ed25519 public key.
SIGNER_BYTES = 32


@dataclass(frozen=True)
class EventItem:
    """One event of the stream: its kind, position in the chain, and its JSON data."""

    kind: str
    height: int
    seq: int
    data: dict[str, Any]
    # For tx items: the service, method, signer and events the filter matches against.
    tx: Transaction | None = None
    result: TxResult | None = None

    @property
    def id(self) -> str:
        return format_event_id(self.height, self.seq)

    @cached_property
    def text(self) -> str:
        """Return the data as JSON, serialised once however many subscribers it reaches."""
        return json.dumps(self.data)


@dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants (an empty field matches anything)."""

    types: frozenset[str] = frozenset(EVENT_TYPES)
    service: str | None = None
    method: str | None = None
    signer: bytes | None = None
    event: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()

    def matches(self, item: EventItem) -> bool:
        """Return True if `item` passes this filter."""
        if item.kind not in self.types:
            return False
        if item.kind == "block":
            return True
        tx, result = item.tx, item.result
        assert tx is not None and result is not None
        if (self.service is not None and tx.service != self.service) or \
                (self.method is not None and tx.method != self.method) or \
                (self.signer is not None and tx.signer != self.signer):
            return False
        if self.event is None and not self.attrs:
            return True
        return any(self.matches_event(event.kind, event.attributes) for event in result.events)

    def matches_event(self, kind: str, attributes: dict[str, EventValue]) -> bool:
        """Return True if one event has the wanted kind and every wanted attribute."""
        if self.event is not None and kind != self.event:
            return False
        return all(name in attributes and format_attr(attributes[name]) == value
                   for name, value in self.attrs)

    def to_query(self) -> list[tuple[str, str]]:
        """Return the filter as canonical query parameters (sorted, defaults left out)."""
        pairs = [] if self.types == frozenset(EVENT_TYPES) else \
            [("types", ",".join(sorted(self.types)))]
        pairs += [(name, value) for name, value in (
            ("service", self.service), ("method", self.method),
            ("signer", None if self.signer is None else self.signer.hex()),
            ("event", self.event)) if value is not None]
        return pairs + [(f"attr.{name}", value) for name, value in sorted(self.attrs)]


def format_attr(value: EventValue) -> str:
    """Return an event attribute as the text a filter compares: bytes as hex."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return value.hex() if isinstance(value, bytes) else str(value)


def format_event_id(height: int, seq: int) -> str:
    return f"{height}-{seq}"


def parse_event_id(text: str) -> tuple[int, int]:
    """Return (height, seq) of an event id `HEIGHT-SEQ` (400 `bad_event_id` otherwise)."""
    height_text, sep, seq_text = text.strip().partition("-")
    if sep and height_text.isdigit() and seq_text.isdigit() and len(text) <= 40:
        height, seq = int(height_text), int(seq_text)
        if 1 <= height <= HEIGHT_MAX:
            return height, seq
    raise ApiError(400, "bad_event_id", f"{text[:40]!r} is not an event id (HEIGHT-SEQ)")


def parse_filter(params: Iterable[tuple[str, str]], extra: Iterable[str] = ()) -> EventFilter:
    """Return the filter the query parameters describe (400 `bad_filter` when malformed)."""
    allowed = FILTER_PARAMS | set(extra)
    values: dict[str, str] = {}
    attrs: dict[str, str] = {}
    for name, value in params:
        if len(value) > FILTER_VALUE_CHARS_MAX:
            raise bad_filter(f"{name[:64]} is longer than {FILTER_VALUE_CHARS_MAX} characters")
        if name.startswith("attr."):
            attr = name.removeprefix("attr.")
            check_name(name, attr)
            if attr in attrs:
                raise bad_filter(f"{name} is given twice")
            attrs[attr] = value
            if len(attrs) > FILTER_ATTRS_MAX:
                raise bad_filter(f"a filter has at most {FILTER_ATTRS_MAX} attr. parameters")
        elif name not in allowed:
            raise bad_filter(f"unknown parameter {name[:64]!r}; filters are "
                             f"{', '.join(sorted(FILTER_PARAMS))} and attr.NAME")
        elif name in values:
            raise bad_filter(f"{name} is given twice")
        else:
            values[name] = value
    return build_filter(values, tuple(sorted(attrs.items())))


def build_filter(values: Mapping[str, str], attrs: tuple[tuple[str, str], ...]
                 ) -> EventFilter:
    """Return the filter of checked parameter values."""
    for name in ("service", "method", "event"):
        if name in values:
            check_name(name, values[name])
    tx_filtered = bool(attrs) or any(name in values for name in FILTER_PARAMS - {"types"})
    types = frozenset(values["types"].split(",")) if "types" in values else \
        frozenset({"tx"} if tx_filtered else EVENT_TYPES)
    if not types or not types <= set(EVENT_TYPES):
        raise bad_filter(f"types is a comma-separated list of {', '.join(EVENT_TYPES)}")
    return EventFilter(types, values.get("service"), values.get("method"),
                       parse_signer(values.get("signer")), values.get("event"), attrs)


def parse_signer(text: str | None) -> bytes | None:
    """Return the signer filter's public key from hex (None when not given)."""
    if text is None:
        return None
    try:
        signer = bytes.fromhex(text)
    except ValueError:
        signer = b""
    if len(signer) != SIGNER_BYTES:
        raise bad_filter(f"signer must be a {SIGNER_BYTES}-byte public key in hex")
    return signer


def check_name(parameter: str, name: str) -> None:
    if NAME_PATTERN.fullmatch(name) is None:
        raise bad_filter(f"{parameter[:64]}: {name[:64]!r} is not a name (letters, digits, "
                         f"_ . -, at most 64)")


def bad_filter(message: str) -> ApiError:
    return ApiError(400, "bad_filter", message)


# ------------------------------------------------------------------------ event items


def build_items(block: Block, txs: list[Transaction], results: list[TxResult]
                ) -> list[EventItem]:
    """Return a block's event items: the block, then each transaction with its result."""
    height = block.header.height
    items = [EventItem("block", height, 0, {
        "height": height, "block_id": block.block_id().hex(),
        "time_ms": block.header.time_ms, "tx_count": len(block.txs)})]
    for index, (tx, result) in enumerate(zip(txs, results, strict=True)):
        items.append(EventItem("tx", height, index + 1, {
            "height": height, "index": index, "hash": tx.hash().hex(),
            "time_ms": block.header.time_ms, "service": tx.service, "method": tx.method,
            "signer": tx.signer.hex(), "code": int(result.code),
            "code_name": result.code.name, "log": result.log,
            "events": [{"kind": event.kind, "attributes": to_jsonable(event.attributes)}
                       for event in result.events]}, tx, result))
    return items


def build_committed_items(committed: CommittedBlock) -> list[EventItem]:
    """Return the event items of a block as it commits."""
    txs = [Transaction.decode(raw) for raw in committed.block.txs]
    return build_items(committed.block, txs, list(committed.execution.results))


def read_items(node: Node, height: int) -> list[EventItem] | None:
    """Return the event items of a committed height from the store (None if not stored)."""
    found = node.get_block(height)
    if found is None:
        return None
    block = found[0]
    txs = [Transaction.decode(raw) for raw in block.txs]
    statuses = [node.get_tx_status(tx.hash()) for tx in txs]
    results = [status.result or TxResult(ResultCode.INTERNAL, "result not stored")
               for status in statuses]
    return build_items(block, txs, results)


# ------------------------------------------------------------------------ subscriptions

DROPPED = object()  # the queue's last item for a subscriber that fell behind


@dataclass(eq=False)
class Subscription:
    """One subscriber's bounded queue of committed blocks' items, on its event loop."""

    client: str
    queue_blocks_max: int
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    replaying: bool = True
    dropped: bool = False

    def offer(self, items: list[EventItem]) -> bool:
        """Queue a block's items without waiting; return False if this drops the subscriber."""
        if self.dropped:
            return False
        if self.queue.qsize() < self.queue_blocks_max:
            self.queue.put_nowait(items)
        elif not self.replaying:  # the store has what a replaying subscriber sheds here
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(DROPPED)
            return False
        return True


class EventHub:
    """The node's subscribers: admits them within bounds and hands each commit to all."""

    def __init__(self, exempt_hosts: Iterable[str] = (),
                 subscribers_max: int = EVENT_SUBSCRIBERS_MAX,
                 per_client_max: int = EVENT_SUBSCRIBERS_PER_CLIENT_MAX,
                 queue_blocks_max: int = EVENT_QUEUE_BLOCKS_MAX):
        self.exempt_hosts = frozenset(exempt_hosts)
        self.subscribers_max = subscribers_max
        self.per_client_max = per_client_max
        self.queue_blocks_max = queue_blocks_max
        self.subscribers: set[Subscription] = set()
        self.dropped_total = 0
        # Told the reason of each subscriber dropped (the node's metrics count them).
        self.on_dropped: Callable[[str], None] | None = None

    def subscribe(self, client: str) -> Subscription:
        """Register a subscriber on the running loop (503/429 problems past the bounds)."""
        if len(self.subscribers) >= self.subscribers_max:
            raise ApiError(503, "too_many_subscribers",
                           f"this node serves at most {self.subscribers_max} subscribers")
        if client not in self.exempt_hosts and sum(
                sub.client == client for sub in self.subscribers) >= self.per_client_max:
            raise ApiError(429, "too_many_subscriptions",
                           f"a client may hold at most {self.per_client_max} subscriptions")
        subscription = Subscription(client, self.queue_blocks_max)
        self.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscribers.discard(subscription)

    def on_commit(self, committed: CommittedBlock) -> None:
        """Offer a committed block's items to every subscriber, on each one's loop."""
        if not self.subscribers:
            return
        self.publish(build_committed_items(committed))

    def publish(self, items: list[EventItem]) -> None:
        """Offer one block's items to every subscriber without waiting for any."""
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for subscription in list(self.subscribers):
            if subscription.loop is current:
                self.deliver(subscription, items)
            else:
                with contextlib.suppress(RuntimeError):  # its loop has closed
                    subscription.loop.call_soon_threadsafe(self.deliver, subscription, items)

    def deliver(self, subscription: Subscription, items: list[EventItem]) -> None:
        if not subscription.offer(items) and subscription in self.subscribers:
            self.unsubscribe(subscription)
            self.record_drop(EVENT_DROP_QUEUE_FULL)

    def record_drop(self, reason: str) -> None:
        """Count a subscriber dropped for `reason` and report it."""
        self.dropped_total += 1
        if self.on_dropped is not None:
            self.on_dropped(reason)


async def stream_events(node: Node, hub: EventHub, subscription: Subscription,
                        wanted: EventFilter, after: tuple[int, int],
                        to_height: int | None = None) -> AsyncIterator[EventItem | dict[str, Any]]:
    """Yield the matching items after position `after` (height, seq), from the store then
    live, until `to_height` (inclusive) or forever; a dropped subscriber's last item is a
    problem document (a dict)."""
    next_height = after[0]
    last_id = format_event_id(*after) if after[1] >= 0 else None
    try:
        while to_height is None or next_height <= to_height:
            if next_height <= node.get_height():
                items = read_items(node, next_height)
            else:
                subscription.replaying = False
                queued = await subscription.queue.get()
                if queued is DROPPED:
                    yield problem_body(409, "slow_consumer", "the subscriber fell more than "
                                       f"{hub.queue_blocks_max} blocks behind and was dropped;"
                                       " resume from last_event_id",
                                       {"last_event_id": last_id})
                    return
                if queued[0].height != next_height:
                    continue  # already replayed, or a height to read from the store
                items = queued
            if items is None:
                return  # below the base height of a state-synced node: nothing to replay
            for item in items:
                if (item.height, item.seq) > after and wanted.matches(item):
                    last_id = item.id
                    yield item
            next_height += 1
    finally:
        hub.unsubscribe(subscription)


# ------------------------------------------------------------------------ the SSE route

# Query parameters of /v1/events besides the filter.
STREAM_PARAMS = ("from_height", "to_height")
# Seconds between keep-alive comments, so idle proxies keep the stream open.
EVENT_PING_S = 15
# A send to a consumer that stopped reading is abandoned after this long (its queue has
# long been dropped by then: blocks come every second).
EVENT_SEND_TIMEOUT_S = 60.0


def register_event_routes(app: FastAPI, node: Node) -> EventHub:
    """Serve `GET /v1/events` (Server-Sent Events) from a hub fed by the node's commits."""
    hub = EventHub(node.config.api.rate_limit_exempt_hosts)
    node.commit_hooks.append(hub.on_commit)
    hub.on_dropped = node.metrics.observe_subscriber_dropped
    node.metrics.watch_events(lambda: len(hub.subscribers))

    # Not in the OpenAPI description: a stream never ends, so a generated request to it
    # would wait forever; docs/api.md ("Live events") describes it.
    @app.get("/v1/events", include_in_schema=False)
    async def get_events(request: Request, from_height: OptionalHeight = None,
                         to_height: OptionalHeight = None) -> EventSourceResponse:
        wanted = parse_filter(request.query_params.multi_items(), STREAM_PARAMS)
        after = get_start(node, request.headers.get("last-event-id"), from_height)
        client = request.client.host if request.client is not None else "unknown"
        subscription = hub.subscribe(client)
        events = stream_events(node, hub, subscription, wanted, after, to_height)
        return EventStream(hub, format_events(events), ping=EVENT_PING_S,
                           send_timeout=EVENT_SEND_TIMEOUT_S)

    return hub


class EventStream(EventSourceResponse):
    """The SSE response of one subscriber: a write that times out drops it, counted."""

    def __init__(self, hub: EventHub, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            self.hub.record_drop(EVENT_DROP_SEND_TIMEOUT)
            raise


def get_start(node: Node, last_event_id: str | None, from_height: int | None
              ) -> tuple[int, int]:
    """Return the position after which to stream: a resumed id, a height, or the tip."""
    if last_event_id:
        after = parse_event_id(last_event_id)
    elif from_height is not None:
        after = (from_height, -1)
    else:
        after = (node.get_height() + 1, -1)
    base = node.get_base_height()
    if after[0] < base:
        raise ApiError(404, "no_block", f"blocks below height {base} are not stored here "
                                        "(the node started from a snapshot)")
    return after


async def format_events(events: AsyncIterator[EventItem | dict[str, Any]]
                        ) -> AsyncIterator[ServerSentEvent]:
    """Return the stream as SSE messages: `block`/`tx` with their ids, or a last `error`."""
    async for item in events:
        if isinstance(item, EventItem):
            yield ServerSentEvent(data=item.text, event=item.kind, id=item.id)
        else:
            yield ServerSentEvent(data=json.dumps(item), event="error")
