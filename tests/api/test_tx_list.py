"""`GET /v1/txs`: committed transactions newest first, filtered, paged with no gap or
duplicate while blocks commit, and refusals of bad filters."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.pagination import encode_cursor
from seoulchain.crypto import SigningKey
from seoulchain.ledger.store import TxFilter
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

CHAIN_ID = "tx-list-test"


class Submitter:
    """Signs notary transactions with the operator key, nonce after nonce."""

    def __init__(self, node: Node):
        self.node = node
        self.key = Home(node.home.root).load_key("operator")
        self.nonce = 0

    def submit(self, method: str = "anchor", doc_hash: bytes | None = None,
               args: dict[str, Any] | None = None) -> Transaction:
        self.nonce += 1
        tx = Transaction.create(self.key, chain_id=CHAIN_ID, nonce=self.nonce,
                                expiry_height=1000, service="notary", method=method,
                                args=args or {"doc_hash": doc_hash or os.urandom(32),
                                              "kind": "permit"})
        assert self.node.submit(tx.encode()).ok
        return tx


def read_all(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    """Follow `next` links from the first page to the end; return every item."""
    response = api.get("/v1/txs", params=params)
    items: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next"] is None:
            assert "link" not in response.headers
            return items
        assert response.headers["link"] == f'<{page["next"]}>; rel="next"'
        response = api.get(page["next"])


def test_lists_newest_first_with_every_field(node: Node, api: TestClient) -> None:
    submitter = Submitter(node)
    first = submitter.submit()
    commit_next_height(node)
    second, third = submitter.submit(), submitter.submit()
    commit_next_height(node)
    page = api.get("/v1/txs").json()
    assert [item["hash"] for item in page["items"]] == [
        third.hash().hex(), second.hash().hex(), first.hash().hex()]
    block_2 = api.get("/v1/blocks/2").json()
    newest = page["items"][0]
    assert newest == {"hash": third.hash().hex(), "height": 2, "index": 1,
                      "time_ms": block_2["header"]["time_ms"], "service": "notary",
                      "method": "anchor", "signer": third.signer.hex(), "code": 0,
                      "code_name": "OK"}
    assert page["next"] is None and page["height"] == 2


def test_pages_have_no_gap_or_duplicate_while_blocks_commit(node: Node,
                                                             api: TestClient) -> None:
    submitter = Submitter(node)
    committed = []
    for _ in range(4):
        committed += [submitter.submit(), submitter.submit(), submitter.submit()]
        commit_next_height(node)
    expected = [tx.hash().hex() for tx in reversed(committed)]
    response = api.get("/v1/txs", params={"limit": 2})
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [item["hash"] for item in page["items"]]
        # A new block commits between every two pages: it must not shift the pages.
        submitter.submit()
        commit_next_height(node)
        if page["next"] is None:
            break
        response = api.get(page["next"])
    assert seen == expected
    # The newer blocks are on the first page of a new listing.
    assert len(read_all(api, limit=100)) == len(committed) + pages


def test_filters_by_status_method_signer_and_service(node: Node, api: TestClient) -> None:
    submitter = Submitter(node)
    doc_hash = os.urandom(32)
    anchored = submitter.submit(doc_hash=doc_hash)
    commit_next_height(node)
    again = submitter.submit(doc_hash=doc_hash)  # the document is anchored already
    other = submitter.submit()
    commit_next_height(node)
    failed = read_all(api, status="failed")
    assert [item["hash"] for item in failed] == [again.hash().hex()]
    assert failed[0]["code"] != 0 and failed[0]["code_name"] != "OK"
    ok = read_all(api, status="ok")
    assert [item["hash"] for item in ok] == [other.hash().hex(), anchored.hash().hex()]
    assert len(read_all(api, service="notary", method="anchor")) == 3
    assert read_all(api, method="supersede") == []
    assert read_all(api, service="vehicle") == []
    assert len(read_all(api, signer=anchored.signer.hex())) == 3
    assert read_all(api, signer=SigningKey.generate().public_key.hex()) == []


def test_filters_by_block_time(node: Node, api: TestClient) -> None:
    submitter = Submitter(node)
    hashes = []
    for _ in range(3):
        hashes.append(submitter.submit().hash().hex())
        commit_next_height(node)
    times = [api.get(f"/v1/blocks/{height}").json()["header"]["time_ms"]
             for height in (1, 2, 3)]
    assert times == sorted(set(times))
    middle = read_all(api, from_time=times[1], to_time=times[1])
    assert [item["hash"] for item in middle] == [hashes[1]]
    assert [item["hash"] for item in read_all(api, from_time=times[1])] == hashes[:0:-1]
    assert [item["hash"] for item in read_all(api, to_time=times[1])] == hashes[1::-1]
    assert read_all(api, to_time=times[0] - 1) == []
    assert read_all(api, from_time=times[2] + 1) == []


def test_scan_bound_stops_early_and_resumes(node: Node) -> None:
    submitter = Submitter(node)
    submitter.submit(method="anchor")
    commit_next_height(node)
    for _ in range(3):
        submitter.submit()
        commit_next_height(node)
    first = node.store.list_txs(TxFilter(ok=True), None, 10, scan_blocks_max=2)
    assert [item.height for item in first.items] == [4, 3] and first.resume is not None
    second = node.store.list_txs(TxFilter(ok=True), first.resume, 10, scan_blocks_max=2)
    assert [item.height for item in second.items] == [2, 1] and second.resume is None
    nothing = node.store.list_txs(TxFilter(ok=False), None, 10, scan_blocks_max=2)
    assert nothing.items == [] and nothing.resume is not None


def test_a_service_or_signer_filter_reads_the_index_not_the_blocks(node: Node) -> None:
    submitter = Submitter(node)
    wanted = submitter.submit(method="anchor")
    commit_next_height(node)
    for _ in range(3):
        submitter.submit()
        commit_next_height(node)
    service_filter = TxFilter(service="notary", signer=wanted.signer, ok=True)
    every = node.store.list_txs(service_filter, None, 10, scan_blocks_max=1)
    assert [item.height for item in every.items] == [4, 3, 2, 1] and every.resume is None
    first = node.store.list_txs(service_filter, None, 3)
    assert [item.height for item in first.items] == [4, 3, 2]
    second = node.store.list_txs(service_filter, first.resume, 3)
    assert [item.height for item in second.items] == [1] and second.resume is None
    scanned = node.store.list_txs(TxFilter(ok=True), None, 10)
    assert every.items == scanned.items
    nothing = node.store.list_txs(TxFilter(service="vehicle"), None, 10, scan_blocks_max=1)
    assert nothing.items == [] and nothing.resume is None
    failed = node.store.list_txs(TxFilter(service="notary", ok=False), None, 10)
    assert failed.items == []


def test_scan_bound_on_transactions_resumes_inside_a_block(node: Node) -> None:
    submitter = Submitter(node)
    sent = [submitter.submit() for _ in range(5)]
    commit_next_height(node)
    pages, position = [], None
    while True:
        page = node.store.list_txs(TxFilter(ok=True), position, 10, scan_txs_max=2)
        pages.append([item.hash for item in page.items])
        if page.resume is None:
            break
        position = page.resume
    assert pages == [[tx.hash() for tx in sent[4:2:-1]], [tx.hash() for tx in sent[2:0:-1]],
                     [sent[0].hash()]]


def test_empty_chain_lists_nothing(idle_api: TestClient) -> None:
    page = idle_api.get("/v1/txs").json()
    assert page["items"] == [] and page["next"] is None


@pytest.mark.parametrize(("params", "code"), [
    ({"status": "pending"}, "bad_filter"),
    ({"service": "no spaces"}, "bad_filter"),
    ({"method": "x" * 65}, "bad_filter"),
    ({"signer": "abcd"}, "bad_filter"),
    ({"signer": "zz" * 32}, "bad_filter"),
    ({"servce": "notary"}, "bad_filter"),
    ({"from_time": "20", "to_time": "10"}, "bad_filter"),
    ({"from_time": "-1"}, "bad_request"),
    ({"to_time": "soon"}, "bad_request"),
    ({"to_time": str(2**63)}, "bad_request"),
    ({"limit": "0"}, "bad_request"),
    ({"limit": "101"}, "bad_request"),
    ({"cursor": "not a cursor"}, "bad_cursor"),
    ({"cursor": encode_cursor("blocks", 1)}, "bad_cursor"),
    ({"cursor": encode_cursor("txs", 10**18)}, "bad_cursor"),
])
def test_bad_values_are_refused_with_a_problem(idle_api: TestClient, params: dict[str, str],
                                               code: str) -> None:
    response = idle_api.get("/v1/txs", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
