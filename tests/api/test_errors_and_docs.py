"""API: one RFC 9457 problem shape for every failure, and /docs served without any CDN."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.client.http import NodeClient, TxRejected
from seoulchain.errors import RemoteError, StorageError, VerificationError
from seoulchain.node.home import init_home
from seoulchain.node.node import Node

# A page asset is referenced by a src= or href= attribute.
ASSET_PATTERN = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
# The JavaScript call that names the OpenAPI description Swagger UI loads.
OPENAPI_URL_PATTERN = re.compile(r"""url:\s*['"]([^'"]+)['"]""")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id="errors-test"))
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node), raise_server_exceptions=False)


def assert_error_shape(response: httpx.Response, status: int, code: str) -> str:
    """Check the one problem shape (RFC 9457 with a `code`); return the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(problem)
    assert problem["code"] == code and problem["status"] == status
    assert problem["type"] == f"https://seoulchain.dev/problems/{code}"
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    assert "Traceback" not in response.text
    return problem["detail"]


def test_docs_page_loads_every_asset_from_the_node_itself(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assets = ASSET_PATTERN.findall(page.text) + OPENAPI_URL_PATTERN.findall(page.text)
    scripts_and_styles = [url for url in assets if url.endswith((".js", ".css"))]
    assert len(scripts_and_styles) >= 2
    for url in assets:
        assert not re.match(r"^(https?:)?//", url), f"/docs loads {url} from another host"
        assert url.startswith("/"), url
        response = api.get(url)
        assert response.status_code == 200 and len(response.content) > 100, url
    assert api.get("/openapi.json").json()["paths"]["/v1/status"]


def test_unknown_routes_wrong_methods_and_bad_parameters_share_the_shape(
        api: TestClient) -> None:
    assert "/v1/nothing" in assert_error_shape(api.get("/v1/nothing"), 404, "not_found")
    assert_error_shape(api.get("/docs/assets/missing.js"), 404, "not_found")
    assert "POST" in assert_error_shape(api.post("/v1/status"), 405, "method_not_allowed")
    assert_error_shape(api.get("/v1/blocks/abc"), 400, "bad_request")
    assert_error_shape(api.get("/v1/blocks/5"), 404, "no_block")
    assert_error_shape(api.get("/v1/txs/nothex"), 400, "bad_hash")
    assert_error_shape(api.post("/v1/txs", content=b"\0" * (1 << 20)), 413, "too_large")
    assert_error_shape(api.post("/v1/snapshots"), 401, "unauthorized")


def test_a_refused_transaction_carries_its_result_in_the_problem(
        api: TestClient) -> None:
    response = api.post("/v1/txs", content=b"\x00\x01")
    assert_error_shape(response, 400, "malformed")
    assert response.json()["result"]["code_name"] == "MALFORMED"
    client = NodeClient("http://testserver")
    client.http = api
    with pytest.raises(TxRejected) as caught:
        client.submit(b"\x00\x01")
    assert caught.value.code_name == "MALFORMED"


def test_a_storage_error_is_a_logged_500_with_its_message(
        node: Node, api: TestClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def read_damaged_block(height: int) -> None:
        raise StorageError(f"block {height} does not match its stored id; run seoulchain audit")

    monkeypatch.setattr(node.store, "get_block", read_damaged_block)
    with caplog.at_level(logging.ERROR, logger="seoulchain.api"):
        message = assert_error_shape(api.get("/v1/blocks/1"), 500, "storage_error")
    assert message == "block 1 does not match its stored id; run seoulchain audit"
    assert "block 1 does not match its stored id" in caplog.text
    client = NodeClient("http://testserver")
    client.http = api
    with pytest.raises(RemoteError, match="does not match its stored id"):
        client.get_json("/v1/blocks/1")


def test_typed_and_unexpected_errors_share_the_shape(
        node: Node, api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(height: int) -> None:
        raise VerificationError("commit signature does not verify")

    monkeypatch.setattr(node.store, "get_block", refuse)
    assert_error_shape(api.get("/v1/blocks/1"), 400, "verification_error")

    def crash(height: int) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(node.store, "get_block", crash)
    message = assert_error_shape(api.get("/v1/blocks/1"), 500, "internal_error")
    assert "secret" not in message and "log" in message
