"""API on real nodes: each validator process serves its own metrics and problem errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from seoulchain.bench.network import LocalNetwork
from seoulchain.ledger.types import Transaction
from seoulchain.node.config import NodeConfig

# Commit quickly and make empty blocks, so heights advance while the test watches.
COMMIT_PAUSE_MS = 150
NETWORK_TIMEOUT_S = 30.0
# More requests than the default burst (100): loopback clients are exempt from the limit.
REQUESTS_FROM_LOOPBACK = 150


def configure_fast(index: int, config: NodeConfig) -> None:
    config.chain.commit_pause_ms = COMMIT_PAUSE_MS
    config.chain.create_empty_blocks = True


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    root: Path = tmp_path_factory.mktemp("api-network")
    with LocalNetwork.create(root / "net", 2, issuers=1, configure=configure_fast) as made:
        made.start_all()
        made.wait_for_height(2, timeout_s=NETWORK_TIMEOUT_S)
        yield made


def scrape(url: str) -> dict[str, float]:
    """Return the unlabelled samples of a node's /metrics, and label sums by name."""
    response = httpx.get(f"{url}/metrics", timeout=5.0)
    assert response.status_code == 200
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


@pytest.mark.e2e
def test_each_node_reports_its_own_consensus_and_commits(network: LocalNetwork) -> None:
    issuer = network.issuers[0]
    tx = Transaction.create(issuer, chain_id=network.chain_id, nonce=1, expiry_height=10_000,
                            service="notary", method="anchor",
                            args={"doc_hash": os.urandom(32), "kind": "permit"})
    committed = network.clients[0].submit(tx)
    assert committed["hash"] == tx.hash().hex()
    network.clients[0].wait_for_commit(tx.hash(), timeout_s=NETWORK_TIMEOUT_S)
    for url in network.urls:
        figures = scrape(url)
        assert figures["seoulchain_height"] >= 2
        assert figures["seoulchain_peers"] == 1
        assert figures["seoulchain_txs_committed_total"] == 1
        assert figures["seoulchain_consensus_step_seconds_count"] > 0
        assert figures["seoulchain_phase_seconds_count"] > 0


@pytest.mark.e2e
def test_real_server_answers_problems_and_spares_loopback_clients(
        network: LocalNetwork) -> None:
    url = network.urls[0]
    with httpx.Client(base_url=url, timeout=5.0) as client:
        missing = client.get("/v1/nothing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "not_found"
        statuses = {client.get("/v1/status").status_code
                    for _ in range(REQUESTS_FROM_LOOPBACK)}
        assert statuses == {200}
        page = client.get("/v1/blocks", params={"limit": 1}).json()
        assert page["next"] is not None
        assert client.get(page["next"]).json()["items"][0]["height"] < page["height"]
