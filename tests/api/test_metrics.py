"""Metrics: each node's /metrics parses and its figures move with the chain and the API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from seoulchain.api.app import create_app
from seoulchain.ledger.types import Height, Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.node.validator import NextHeightDue

CHAIN_ID = "metrics-test"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id=CHAIN_ID))
    yield running
    running.close()


def anchor_tx(node: Node, nonce: int) -> Transaction:
    key = Home(node.home.root).load_key("operator")
    return Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=100,
                              service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "permit"})


def scrape(api: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of /metrics by (name, sorted labels)."""
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def run_next_height(node: Node) -> None:
    """Run the node's next height through its BFT driver, as its event loop does."""
    producer = node.producer
    if not producer.core_started:
        producer.run_core(producer.start_core)
    else:
        producer.run_core(lambda: producer.core.handle(
            NextHeightDue(Height(node.engine.height + 1))))


def test_figures_move_after_a_committed_tx(node: Node) -> None:
    api = TestClient(create_app(node))
    before = scrape(api)
    assert before[("seoulchain_height", ())] == 0
    assert before[("seoulchain_txs_committed_total", ())] == 0
    tx = anchor_tx(node, 1)
    assert api.post("/v1/txs", content=tx.encode()).status_code == 202
    waiting = scrape(api)
    assert waiting[("seoulchain_mempool_txs", ())] == 1
    assert waiting[("seoulchain_mempool_bytes", ())] == len(tx.encode())
    run_next_height(node)
    after = scrape(api)
    assert after[("seoulchain_height", ())] == 1
    assert after[("seoulchain_txs_committed_total", ())] == 1
    assert after[("seoulchain_blocks_committed_total", ())] == 1
    assert after[("seoulchain_mempool_txs", ())] == 0
    assert after[("seoulchain_block_tx_bytes_sum", ())] == len(tx.encode())
    for phase in ("execute", "commit"):
        assert after[("seoulchain_phase_seconds_count", (("phase", phase),))] >= 1
    assert after[("seoulchain_peers", ())] == 0


def test_consensus_steps_are_timed_and_the_round_shown(node: Node) -> None:
    api = TestClient(create_app(node))
    for nonce in (1, 2):
        assert node.submit(anchor_tx(node, nonce).encode()).ok
        run_next_height(node)
    samples = scrape(api)
    steps = {labels[0][1]: value for (name, labels), value in samples.items()
             if name == "seoulchain_consensus_step_seconds_count"}
    assert sum(steps.values()) >= 1 and set(steps) <= {"propose", "prevote", "precommit"}
    assert samples[("seoulchain_consensus_round", ())] == 0


def test_rejections_are_counted_by_reason_and_requests_by_route_template(node: Node) -> None:
    api = TestClient(create_app(node))
    assert api.post("/v1/txs", content=b"\x00\x01").status_code == 400
    tx = anchor_tx(node, 1)
    api.post("/v1/txs", content=tx.encode())
    api.post("/v1/txs", content=tx.encode())
    for height in (5, 6, 7):
        api.get(f"/v1/blocks/{height}")
    api.get("/v1/no/such/route")
    samples = scrape(api)
    assert samples[("seoulchain_txs_rejected_total", (("reason", "malformed"),))] == 1
    assert samples[("seoulchain_txs_rejected_total", (("reason", "duplicate"),))] == 1
    by_route = (("method", "GET"), ("route", "/v1/blocks/{height}"), ("status", "404"))
    assert samples[("seoulchain_api_request_seconds_count", by_route)] == 3
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert samples[("seoulchain_api_request_seconds_count", unmatched)] == 1
    assert not any("/v1/blocks/5" in dict(labels).get("route", "") for _, labels in samples)


def test_two_nodes_in_one_process_keep_separate_figures(node: Node, tmp_path: Path) -> None:
    other = Node(init_home(tmp_path / "other", chain_id=CHAIN_ID))
    try:
        assert node.submit(anchor_tx(node, 1).encode()).ok
        run_next_height(node)
        assert scrape(TestClient(create_app(node)))[("seoulchain_height", ())] == 1
        assert scrape(TestClient(create_app(other)))[("seoulchain_height", ())] == 0
    finally:
        other.close()
