"""Atom feeds of transactions: RFC 4287's required elements, filters, refusals."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.feeds import ATOM_MEDIA_TYPE
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

CHAIN_ID = "feeds-test"
ATOM = "{http://www.w3.org/2005/Atom}"


def anchor(node: Node, nonce: int, doc_hash: bytes) -> Transaction:
    key = Home(node.home.root).load_key("operator")
    tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                            service="notary", method="anchor",
                            args={"doc_hash": doc_hash, "kind": "permit"})
    assert node.submit(tx.encode()).ok
    return tx


def get_feed(api: TestClient, **params: str) -> ElementTree.Element:
    response = api.get("/v1/feeds/txs.atom", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(ATOM_MEDIA_TYPE)
    return ElementTree.fromstring(response.content)


def check_atom(feed: ElementTree.Element) -> None:
    """Assert the elements RFC 4287 requires of a feed and of each entry (4.1.1, 4.1.2)."""
    assert feed.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert len(feed.findall(f"{ATOM}{name}")) == 1, name
    datetime.fromisoformat(feed.findtext(f"{ATOM}updated", ""))
    assert feed.find(f"{ATOM}link[@rel='self']") is not None
    for entry in feed.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{name}")) == 1, name
        datetime.fromisoformat(entry.findtext(f"{ATOM}updated", ""))
        assert entry.find(f"{ATOM}link[@rel='alternate']") is not None
        assert entry.find(f"{ATOM}summary") is not None  # no content: a summary is required


def test_feed_lists_matching_txs_newest_first_with_links(node: Node, api: TestClient) -> None:
    wanted = os.urandom(32)
    first = anchor(node, 1, wanted)
    commit_next_height(node)
    second = anchor(node, 2, os.urandom(32))
    commit_next_height(node)
    feed = get_feed(api)
    check_atom(feed)
    entries = feed.findall(f"{ATOM}entry")
    assert [entry.findtext(f"{ATOM}id") for entry in entries] == [
        f"urn:seoulchain:{CHAIN_ID}:tx:{second.hash().hex()}",
        f"urn:seoulchain:{CHAIN_ID}:tx:{first.hash().hex()}"]
    link = entries[0].find(f"{ATOM}link[@rel='alternate']")
    assert link is not None
    href = link.get("href", "")
    assert href.endswith(f"/v1/txs/{second.hash().hex()}")
    assert api.get(href).json()["status"] == "committed"
    only = get_feed(api, service="notary", **{"attr.doc_hash": wanted.hex()})
    check_atom(only)
    assert [entry.findtext(f"{ATOM}id") for entry in only.findall(f"{ATOM}entry")] == [
        f"urn:seoulchain:{CHAIN_ID}:tx:{first.hash().hex()}"]
    assert only.findtext(f"{ATOM}id") != feed.findtext(f"{ATOM}id")
    assert get_feed(api, service="notary", **{"attr.doc_hash": wanted.hex()}).findtext(
        f"{ATOM}id") == only.findtext(f"{ATOM}id")


def test_feed_of_an_empty_chain_is_valid(idle_api: TestClient) -> None:
    feed = get_feed(idle_api, service="vehicle", **{"attr.vin": "1M8GDM9AXKP042788"})
    check_atom(feed)
    assert feed.findall(f"{ATOM}entry") == []


@pytest.mark.parametrize("params", [{"attr.vin": "x" * 300}, {"colour": "red"},
                                    {"signer": "zz"}])
def test_feed_refuses_an_invalid_filter(idle_api: TestClient, params: dict[str, str]
                                        ) -> None:
    response = idle_api.get("/v1/feeds/txs.atom", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "bad_filter"
