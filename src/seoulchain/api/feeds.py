"""Atom feeds (RFC 4287) of committed transactions, with the live events' filters.

`GET /v1/feeds/txs.atom?service=vehicle&attr.vin=...` answers the newest matching
transactions of the last `FEED_SCAN_BLOCKS_MAX` blocks, newest first, so a feed reader (or a
watch on one vehicle, one signer, one kind of event) polls what a subscriber would have
been sent. Ids are stable URNs: the feed's is derived from its chain and its canonical
filter, an entry's from its chain and transaction hash, so readers de-duplicate by them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response

from seoulchain.api.events import EventFilter, EventItem, parse_filter, read_items
from seoulchain.crypto import sha256
from seoulchain.node.node import Node

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml"
# Entries one feed document holds: what feed readers show, and a bounded answer.
FEED_ENTRIES_MAX = 50
# Blocks a feed request scans back from the tip: bounded work per request (about 17
# minutes of chain at one block a second); older transactions are in the store's APIs.
FEED_SCAN_BLOCKS_MAX = 1000


def format_time(time_ms: int) -> str:
    """Return a block time as an RFC 3339 date-time in UTC (Atom's date construct)."""
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def collect_entries(node: Node, wanted: EventFilter) -> list[EventItem]:
    """Return the newest matching tx items of the last blocks, newest first."""
    entries: list[EventItem] = []
    tip = node.get_height()
    lowest = max(1, node.get_base_height(), tip - FEED_SCAN_BLOCKS_MAX + 1)
    for height in range(tip, lowest - 1, -1):
        items = read_items(node, height) or []
        entries += [item for item in reversed(items) if wanted.matches(item)]
        if len(entries) >= FEED_ENTRIES_MAX:
            break
    return entries[:FEED_ENTRIES_MAX]


def add_text(parent: ElementTree.Element, tag: str, text: str,
             **attributes: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, f"{{{ATOM_NAMESPACE}}}{tag}", attributes)
    element.text = text
    return element


def render_feed(node: Node, wanted: EventFilter, self_url: str, base_url: str) -> bytes:
    """Return the Atom feed document of the transactions `wanted` matches."""
    chain_id = node.genesis.chain_id
    query = urlencode(wanted.to_query())
    entries = collect_entries(node, wanted)
    tip = node.get_block(node.get_height()) if node.get_height() >= 1 else None
    updated_ms = entries[0].data["time_ms"] if entries else (
        tip[0].header.time_ms if tip is not None else node.genesis.genesis_time_ms)
    ElementTree.register_namespace("", ATOM_NAMESPACE)
    feed = ElementTree.Element(f"{{{ATOM_NAMESPACE}}}feed")
    add_text(feed, "id", f"urn:seoulchain:{chain_id}:feed:{sha256(query.encode()).hex()}")
    add_text(feed, "title", f"{chain_id} transactions" + (f" ({query})" if query else ""))
    add_text(feed, "updated", format_time(updated_ms))
    add_text(ElementTree.SubElement(feed, f"{{{ATOM_NAMESPACE}}}author"), "name",
             node.config.moniker or chain_id)
    add_text(feed, "link", "", rel="self", href=self_url, type=ATOM_MEDIA_TYPE)
    add_text(feed, "generator", "seoulchain")
    for item in entries:
        add_entry(feed, chain_id, item, base_url)
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)


def add_entry(feed: ElementTree.Element, chain_id: str, item: EventItem,
              base_url: str) -> None:
    """Add one transaction's entry: id, title, time, link to the tx, events as text."""
    data = item.data
    entry = ElementTree.SubElement(feed, f"{{{ATOM_NAMESPACE}}}entry")
    add_text(entry, "id", f"urn:seoulchain:{chain_id}:tx:{data['hash']}")
    add_text(entry, "title", f"{data['service']}.{data['method']} at height "
                             f"{data['height']}: {data['code_name']}")
    add_text(entry, "updated", format_time(data["time_ms"]))
    add_text(entry, "link", "", rel="alternate", type="application/json",
             href=f"{base_url}v1/txs/{data['hash']}")
    events = "; ".join(event["kind"] + "".join(
        f" {name}={value}" for name, value in event["attributes"].items())
        for event in data["events"])
    add_text(entry, "summary", f"tx {data['hash']} signed by {data['signer']}"
                               + (f"; events: {events}" if events else ""))


def register_feed_routes(app: FastAPI, node: Node) -> None:
    """Serve `GET /v1/feeds/txs.atom`."""

    @app.get("/v1/feeds/txs.atom", response_class=Response,
             responses={200: {"content": {ATOM_MEDIA_TYPE: {}}}})
    async def get_txs_feed(request: Request) -> Response:
        wanted = parse_filter(request.query_params.multi_items())
        wanted = EventFilter(frozenset({"tx"}), wanted.service, wanted.method, wanted.signer,
                             wanted.event, wanted.attrs)
        body = render_feed(node, wanted, str(request.url), str(request.base_url))
        return Response(body, media_type=ATOM_MEDIA_TYPE)
