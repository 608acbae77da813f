"""API as a product: problem errors, cursor pages, generated query routes, limits, CORS."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tomli_w
from fastapi.testclient import TestClient

from seoulchain.api.app import BODY_BYTES_MAX, create_app
from seoulchain.api.limits import RateLimit
from seoulchain.api.pagination import PAGE_ITEMS_MAX, encode_cursor
from seoulchain.client.http import NodeClient
from seoulchain.errors import LocalError, RemoteError
from seoulchain.ledger.types import HEIGHT_MAX, Transaction
from seoulchain.node.config import NodeConfig
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

CHAIN_ID = "product-test"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code"}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id=CHAIN_ID))
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node), raise_server_exceptions=False)


def anchor_tx(node: Node, nonce: int) -> Transaction:
    key = Home(node.home.root).load_key("operator")
    return Transaction.create(key, chain_id=CHAIN_ID, nonce=nonce, expiry_height=1000,
                              service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "permit"})


def build_chain(node: Node, blocks: int, txs_in_first: int = 1) -> None:
    """Commit `blocks` heights, the first holding `txs_in_first` anchors, the others one."""
    nonce = 0
    for height in range(1, blocks + 1):
        for _ in range(txs_in_first if height == 1 else 1):
            nonce += 1
            assert node.submit(anchor_tx(node, nonce).encode()).ok
        assert commit_next_height(node) is not None


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) >= PROBLEM_MEMBERS and problem["code"] == code
    assert problem["status"] == status and "Traceback" not in response.text
    return problem


def test_problems_for_framework_errors_bodies_and_malformed_json(api: TestClient) -> None:
    assert_problem(api.get("/v1/no/such/route"), 404, "not_found")
    assert_problem(api.delete("/v1/blocks/1"), 405, "method_not_allowed")
    assert_problem(api.get("/v1/blocks/0"), 400, "bad_request")
    assert_problem(api.get("/v1/txs/abc", params={"wait_s": "nan"}), 400, "bad_request")
    assert_problem(api.post("/v1/txs", content=b"{not json",
                            headers={"content-type": "application/json"}), 400, "bad_body")
    # A body over the API's limit is refused before any route reads it, declared or streamed.
    assert_problem(api.post("/v1/status", content=b"\0" * (BODY_BYTES_MAX + 1)), 413,
                   "too_large")
    chunks = (b"\0" * (1 << 20) for _ in range(BODY_BYTES_MAX // (1 << 20) + 1))
    assert_problem(api.post("/v1/txs/batch", content=chunks), 413, "too_large")


def test_blocks_are_listed_newest_first_by_following_next(node: Node, api: TestClient) -> None:
    build_chain(node, 5)
    seen: list[int] = []
    url: str | None = "/v1/blocks?limit=2"
    while url is not None:
        page = api.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        if body["next"] is not None:
            assert page.headers["link"] == f'<{body["next"]}>; rel="next"'
        seen.extend(item["height"] for item in body["items"])
        for item in body["items"]:
            assert item["commit"]["block_id"] == item["block_id"]
            assert item["header"]["height"] == item["height"]
        url = body["next"]
    assert seen == [5, 4, 3, 2, 1]


def test_a_block_s_txs_are_paged_with_their_result_codes(node: Node, api: TestClient) -> None:
    build_chain(node, 1, txs_in_first=3)
    first = api.get("/v1/blocks/1/txs", params={"limit": 2}).json()
    assert [item["index"] for item in first["items"]] == [0, 1]
    assert first["tx_count"] == 3 and all(item["code"] == 0 for item in first["items"])
    rest = api.get(first["next"]).json()
    assert [item["index"] for item in rest["items"]] == [2] and rest["next"] is None
    hashes = [item["hash"] for item in first["items"] + rest["items"]]
    assert hashes == api.get("/v1/blocks/1").json()["txs"]
    assert_problem(api.get("/v1/blocks/9/txs"), 404, "no_block")


def test_validators_headers_and_mempool(node: Node, api: TestClient) -> None:
    build_chain(node, 1)
    validators = api.get("/v1/validators", params={"height": 1}).json()
    expected = node.get_light_block(1).validators.validators
    assert [item["public_key"] for item in validators["items"]] == [
        item.public_key.hex() for item in expected]
    assert validators["total_power"] == sum(item.power for item in expected)
    assert all("agency" in item for item in validators["items"])
    assert_problem(api.get("/v1/validators", params={"height": 2}), 404, "no_block")
    beyond = encode_cursor("validators", len(expected) + 1)
    assert_problem(api.get("/v1/validators", params={"cursor": beyond}), 400, "bad_cursor")
    header = api.get("/v1/headers/1").json()
    assert header["commit"]["block_id"] == header["block_id"]
    assert_problem(api.get("/v1/headers/2"), 404, "no_block")
    assert node.submit(anchor_tx(node, 2).encode()).ok
    mempool = api.get("/v1/mempool").json()
    assert mempool["txs"] == 1 and mempool["bytes"] > 0
    assert mempool["txs_max"] == node.config.mempool.txs_max


def test_malformed_foreign_negative_or_huge_cursors_are_400(api: TestClient) -> None:
    def raw(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    for cursor in ["%%%", "not-base64!", encode_cursor("validators", 1),
                   encode_cursor("blocks", 1) + "A", raw("blocks:-1"),
                   raw(f"blocks:{HEIGHT_MAX + 1}"), raw("blocks:99999999999999999999"),
                   raw("blocks:01"), "A" * 65]:
        response = api.get("/v1/blocks", params={"cursor": cursor})
        assert response.status_code == 400, (cursor, response.text)
        assert response.json()["code"] in ("bad_cursor", "bad_request"), cursor
    assert_problem(api.get("/v1/validators", params={"cursor": raw("validators:2")}), 404,
                   "no_block")  # no block yet: the height is checked first
    assert api.get("/v1/blocks", params={"cursor": encode_cursor("blocks", 1)}).json()[
        "items"] == []


def test_page_size_is_bounded(api: TestClient) -> None:
    for limit in (0, -1, PAGE_ITEMS_MAX + 1, "x"):
        assert_problem(api.get("/v1/blocks", params={"limit": limit}), 400, "bad_request")
    assert api.get("/v1/blocks", params={"limit": PAGE_ITEMS_MAX}).status_code == 200


def test_every_service_query_gets_a_documented_route(node: Node, api: TestClient) -> None:
    spec = api.get("/openapi.json").json()["paths"]
    for service in node.describe_services():
        for name, query in service["queries"].items():
            operation = spec[f"/v1/services/{service['name']}/queries/{name}"]["get"]
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            assert names == set(query["args"].get("properties", {})), (service["name"], name)
    members = api.get("/v1/services/gov/queries/members").json()
    assert members["result"]["members"][0]["name"] == "operator"
    assert_problem(api.get("/v1/services/gov/queries/proposals", params={"limit": 0}),
                   400, "bad_query")


def make_limited_api(node: Node, rate_per_s: float, burst: int,
                     origins: list[str] | None = None) -> TestClient:
    node.config.api.rate_limit_per_s = rate_per_s
    node.config.api.rate_limit_burst = burst
    node.config.api.cors_allowed_origins = origins or []
    return TestClient(create_app(node), raise_server_exceptions=False)


def test_rate_limit_answers_429_with_retry_after_and_spares_the_admin(node: Node) -> None:
    api = make_limited_api(node, rate_per_s=0.01, burst=2)
    assert api.get("/v1/status").status_code == 200
    assert api.get("/v1/status").status_code == 200
    refused = assert_problem(api.get("/v1/status"), 429, "rate_limited")
    assert "at most" in refused["detail"]
    assert int(api.get("/v1/status").headers["retry-after"]) >= 1
    token = node.home.load_admin_token()
    admin = {"authorization": f"Bearer {token}"}
    assert api.get("/v1/status", headers=admin).status_code == 200
    assert api.get("/v1/status", headers={"authorization": "Bearer wrong"}).status_code == 429


def test_token_bucket_refills_at_its_rate_per_client() -> None:
    now = [0.0]
    limit = RateLimit(None, rate_per_s=2.0, burst=2, exempt_hosts=[], admin_token="t",
                      clock=lambda: now[0])
    assert limit.take_token("a") == 0 and limit.take_token("a") == 0
    assert limit.take_token("a") == pytest.approx(0.5)
    assert limit.take_token("b") == 0  # another client has its own bucket
    now[0] = 0.5
    assert limit.take_token("a") == 0
    assert limit.take_token("a") > 0


def test_exempt_hosts_are_not_limited(node: Node) -> None:
    node.config.api.rate_limit_exempt_hosts = ["testclient"]
    api = make_limited_api(node, rate_per_s=0.01, burst=1)
    assert all(api.get("/v1/status").status_code == 200 for _ in range(5))


def test_cors_allows_only_the_configured_origins(node: Node) -> None:
    closed = TestClient(create_app(node))
    assert "access-control-allow-origin" not in closed.get(
        "/v1/status", headers={"origin": "https://portal.example"}).headers
    api = make_limited_api(node, 100.0, 100, origins=["https://portal.example"])
    allowed = api.get("/v1/status", headers={"origin": "https://portal.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example"
    other = api.get("/v1/status", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = {"origin": "https://portal.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    assert api.options("/v1/txs", headers=preflight).status_code == 200
    admin_preflight = {**preflight, "access-control-request-headers": "authorization"}
    assert_problem(api.options("/v1/snapshots", headers=admin_preflight), 400,
                   "cors_refused")


@pytest.mark.parametrize(("section", "message"), [
    ({"rate_limit_per_s": -1.0}, "rate_limit_per_s"),
    ({"rate_limit_burst": 0}, "rate_limit_burst"),
    ({"cors_allowed_origins": [1]}, "cors_allowed_origins"),
    ({"rate_limit_per_s": 5}, "must be float")])
def test_bad_api_limits_in_the_config_are_refused(tmp_path: Path, section: dict,
                                                  message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps({"api": section}))
    with pytest.raises(LocalError, match=message):
        NodeConfig.load(path)


def test_the_client_reads_problems_and_survives_other_error_bodies() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/status":
            return httpx.Response(502, text="<html>bad gateway</html>")
        return httpx.Response(404, headers={"content-type": "application/problem+json"},
                              json={"type": "https://seoulchain.dev/problems/no_block",
                                    "title": "No block", "status": 404, "code": "no_block",
                                    "detail": "no block at height 9; the chain is at 3"})

    with NodeClient("http://node", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(RemoteError, match="HTTP 502 for /v1/status"):
            client.get_status()
        with pytest.raises(RemoteError, match="no block at height 9"):
            client.get_json("/v1/blocks/9")
        with pytest.raises(RemoteError, match="no block at height 9"):
            client.get_bytes("/v1/blocks/9", 100)
