"""The node serves the portal itself: its files, their security headers, decoded txs."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.api.portal import PORTAL_DIR, SERVED_SUFFIXES
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height
from tests.portal.browser import foreign_requests

CHAIN_ID = "portal-served"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
IMPORT = re.compile(r"""(?:import|from)\s*(?:[\w{}\s,*]+from\s*)?["'](\.{1,2}/[^"']+)["']""")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id=CHAIN_ID))
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node), raise_server_exceptions=False)


def test_root_redirects_to_the_portal_which_is_served_with_a_strict_policy(
        api: TestClient) -> None:
    root = api.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/portal/"
    page = api.get("/portal/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert '<script type="module" src="app.js">' in page.text
    script = api.get("/portal/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    strings = api.get("/portal/i18n/ko.json")
    assert strings.status_code == 200 and strings.json()["site.title"]


@pytest.mark.parametrize("path", ["/portal/__init__.py", "/portal/nope.html",
                                  "/portal/../app.py", "/portal/%2e%2e/app.py"])
def test_only_page_files_are_served(api: TestClient, path: str) -> None:
    answer = api.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_every_page_file_ships_in_the_package() -> None:
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"][
        "seoulchain.api.portal"]
    files = [path.relative_to(PORTAL_DIR).as_posix() for path in PORTAL_DIR.rglob("*")
             if path.is_file() and path.suffix in SERVED_SUFFIXES]
    assert "index.html" in files and "i18n/en.json" in files
    assert [name for name in files
            if not any(fnmatch.fnmatch(name, pattern) and name.count("/") ==
                       pattern.count("/") for pattern in patterns)] == []


def test_every_module_a_script_imports_exists() -> None:
    for script in PORTAL_DIR.rglob("*.js"):
        for target in IMPORT.findall(script.read_text(encoding="utf-8")):
            assert (script.parent / target).resolve().is_file(), f"{script.name}: {target}"


def test_a_committed_tx_is_decoded_for_people(node: Node, api: TestClient) -> None:
    key = Home(node.home.root).load_key("operator")
    doc_hash = os.urandom(32)
    tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=1, expiry_height=100,
                            service="notary", method="anchor",
                            args={"doc_hash": doc_hash, "kind": "permit"})
    assert node.submit(tx.encode()).ok
    waiting = api.get(f"/v1/txs/{tx.hash().hex()}").json()
    assert waiting["status"] == "pending" and "tx" not in waiting
    commit_next_height(node)
    answer = api.get(f"/v1/txs/{tx.hash().hex()}").json()
    assert answer["status"] == "committed"
    assert answer["tx"]["service"] == "notary" and answer["tx"]["method"] == "anchor"
    assert answer["tx"]["args"] == {"doc_hash": doc_hash.hex(), "kind": "permit"}
    assert answer["tx"]["signer"] == key.public_key.hex() and answer["tx"]["nonce"] == 1
    assert bytes.fromhex(answer["tx"]["raw"]) == tx.encode()
    unknown = api.get(f"/v1/txs/{'00' * 32}").json()
    assert unknown["status"] == "unknown" and "tx" not in unknown


def test_requests_to_any_other_host_or_port_are_caught() -> None:
    origin = "http://127.0.0.1:5000"
    urls = [f"{origin}/portal/app.js", "https://cdn.example/lib.js",
            f"blob:{origin}/0d1e", "data:,", "http://127.0.0.1:5001/v1/status",
            "http://localhost:5000/portal/"]
    assert foreign_requests(urls, origin) == ["https://cdn.example/lib.js",
                                              "http://127.0.0.1:5001/v1/status",
                                              "http://localhost:5000/portal/"]
