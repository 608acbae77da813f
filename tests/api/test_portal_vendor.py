"""The verify page's vendored JavaScript (api/portal/verify/vendor/) is the locked npm
package's file, as its manifest says, and ships in the wheel; the node serves it and the
shipped JSON-LD contexts to the verification page under the portal's content security
policy, and nothing else."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.portal import CONTEXTS_DIR, PORTAL_DIR

CHAIN_ID = "portal-vendor"
ROOT = Path(__file__).resolve().parents[2]
VENDOR = PORTAL_DIR / "verify" / "vendor"
MANIFEST = json.loads((VENDOR / "manifest.json").read_text())
LOCK = ROOT / "tests" / "interop" / "vc" / "package-lock.json"
NODE_MODULES = ROOT / "tests" / "interop" / "vc" / "node_modules"
PYPROJECT = ROOT / "pyproject.toml"


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda entry: entry["file"])
def test_each_vendored_file_is_the_one_its_manifest_names(entry: dict[str, str]) -> None:
    data = (VENDOR / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    locked = json.loads(LOCK.read_text())["packages"][f"node_modules/{entry['package']}"]
    assert (entry["version"], entry["npm_integrity"]) == (locked["version"],
                                                          locked["integrity"])
    assert entry["package"] in (VENDOR / entry["license_file"]).read_text()


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda entry: entry["file"])
def test_each_vendored_file_is_byte_identical_to_the_locked_install(
        entry: dict[str, str]) -> None:
    package = NODE_MODULES / entry["package"]
    if not package.exists():
        pytest.skip("tests/interop/vc/node_modules is not installed: scripts/install-vc-interop")
    assert json.loads((package / "package.json").read_text())["version"] == entry["version"]
    assert (package / entry["path"]).read_bytes() == (VENDOR / entry["file"]).read_bytes()


def test_the_vendored_files_ship_in_the_wheel() -> None:
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"][
        "seoulchain.api.portal"]
    files = [path.relative_to(PORTAL_DIR).as_posix() for path in VENDOR.iterdir()]
    assert len(files) == 4
    assert [name for name in files
            if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)] == []


def test_the_page_loads_the_bundle_from_the_node(api: TestClient) -> None:
    page = api.get("/portal/verify.html").text
    assert '<script defer src="verify/vendor/jsonld.min.js"></script>' in page
    answer = api.get("/portal/verify/vendor/jsonld.min.js")
    assert answer.status_code == 200 and "javascript" in answer.headers["content-type"]
    assert answer.content == (VENDOR / "jsonld.min.js").read_bytes()
    assert answer.headers["content-security-policy"].startswith("default-src 'self';")


def test_the_shipped_contexts_are_served_byte_for_byte(api: TestClient) -> None:
    manifest = api.get("/portal/contexts/manifest.json")
    assert manifest.status_code == 200
    assert manifest.content == (CONTEXTS_DIR / "manifest.json").read_bytes()
    for entry in manifest.json()["contexts"]:
        served = api.get(f"/portal/contexts/{entry['file']}")
        assert served.status_code == 200, entry["file"]
        assert hashlib.sha256(served.content).hexdigest() == entry["sha256"]
        assert "default-src 'self'" in served.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/portal/contexts/__init__.py",
                                  "/portal/contexts/unknown-v1.jsonld",
                                  "/portal/contexts/../loader.py",
                                  "/portal/verify/vendor/README.md"])
def test_nothing_else_is_served_beside_them(api: TestClient, path: str) -> None:
    assert api.get(path).status_code == 404
