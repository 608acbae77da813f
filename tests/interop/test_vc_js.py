"""Credentials interoperate with Digital Bazaar's JavaScript libraries, in both directions.

seoulchain signs credentials and a status list that `@digitalbazaar/vc` verifies (a revoked
index reports status true there); `@digitalbazaar/vc` issues a credential for a did:seoul
issuer that seoulchain verifies; a credential with one byte changed fails on both sides.
The JavaScript side is tests/interop/vc/vc-tool.mjs (installed by scripts/install-vc-interop).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from seoulchain.credentials import integrity
from seoulchain.credentials.errors import BadProof
from seoulchain.credentials.loader import SEOULCHAIN_CREDENTIALS_V1_URL
from seoulchain.credentials.statuslist import (
    StatusList,
    build_status_entry,
    build_status_list_credential,
)
from tests.credentials.samples import (
    CLAIMS,
    ISSUED_AT,
    ISSUER_DID,
    ISSUER_KEY_ID,
    ISSUER_SEED,
    make_credential,
    make_did_document,
    make_resolver,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "interop" / "vc"
CONTEXTS_DIR = ROOT / "src" / "seoulchain" / "credentials" / "contexts"
LIST_ID = "https://status.seoul.example/lists/residency-1"
REVOKED_INDEX = 90_210
NODE_TIMEOUT_S = 60
INSTALL_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: the JavaScript side of the credential interop "
                    "tests needs Node.js 20 or later")
    if not (JS_DIR / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        subprocess.run([str(ROOT / "scripts" / "install-vc-interop")], check=True,
                       timeout=INSTALL_TIMEOUT_S)
    return path


@pytest.fixture(scope="module")
def did_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("did") / "did.json"
    path.write_text(json.dumps(make_did_document()))
    return path


def run_tool(node: str, did_file: Path, tmp_path: Path, command: str,
             credentials: list[dict[str, Any]], *extra: str) -> subprocess.CompletedProcess[str]:
    arguments = []
    for number, credential in enumerate(credentials):
        path = tmp_path / f"credential-{command}-{number}.json"
        path.write_text(json.dumps(credential))
        arguments += ["--credential", str(path)]
    context = f"{SEOULCHAIN_CREDENTIALS_V1_URL}={CONTEXTS_DIR / 'seoulchain-credentials-v1.jsonld'}"
    return subprocess.run(
        [node, str(JS_DIR / "vc-tool.mjs"), command, *arguments,
         "--did-document", str(did_file), "--context", context, *extra],
        capture_output=True, text=True, timeout=NODE_TIMEOUT_S, cwd=JS_DIR)


def js_check(node: str, did_file: Path, tmp_path: Path, command: str,
             credentials: list[dict[str, Any]], *extra: str) -> list[dict[str, Any]]:
    completed = run_tool(node, did_file, tmp_path, command, credentials, *extra)
    assert completed.returncode in (0, 1), completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


def test_shipped_contexts_are_the_npm_packages_bytes(node: str) -> None:
    manifest = json.loads((CONTEXTS_DIR / "manifest.json").read_bytes())
    for entry in manifest["contexts"]:
        if not entry["source"].startswith("npm "):
            continue
        package, _version, path = entry["source"].split()[1:]
        assert (JS_DIR / "node_modules" / package / path).read_bytes() == \
            (CONTEXTS_DIR / entry["file"]).read_bytes(), entry["url"]


def test_seoulchain_credentials_verify_in_js(node: str, did_file: Path,
                                             tmp_path: Path) -> None:
    secured = [integrity.sign(make_credential(kind), ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
               for kind in sorted(CLAIMS)]
    results = js_check(node, did_file, tmp_path, "verify", secured)
    assert [result["verified"] for result in results] == [True] * len(CLAIMS), results


def test_seoulchain_status_list_reports_revocation_in_js(node: str, did_file: Path,
                                                         tmp_path: Path) -> None:
    status_list = StatusList()
    status_list.set(REVOKED_INDEX, True)
    list_credential = integrity.sign(
        build_status_list_credential(LIST_ID, ISSUER_DID, status_list,
                                     valid_from="2026-12-01T00:00:00Z"),
        ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
    list_file = tmp_path / "status-list.json"
    list_file.write_text(json.dumps(list_credential))
    credentials = [integrity.sign(make_credential("ResidencyCredential", number,
                                                  build_status_entry(LIST_ID, index)),
                                  ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
                   for number, index in enumerate((REVOKED_INDEX, REVOKED_INDEX + 1))]
    results = js_check(node, did_file, tmp_path, "verify", credentials,
                       "--status-list", str(list_file))
    assert [(result["verified"], result["status"]) for result in results] == \
        [(True, [True]), (True, [False])], results
    results = js_check(node, did_file, tmp_path, "status", credentials,
                       "--status-list", str(list_file))
    assert [result["status"] for result in results] == [[True], [False]], results


def test_js_issued_credential_verifies_in_seoulchain(node: str, did_file: Path,
                                                     tmp_path: Path) -> None:
    unsigned = make_credential("YouthAllowanceEligibilityCredential")
    completed = run_tool(node, did_file, tmp_path, "issue", [unsigned], "--seed",
                         ISSUER_SEED.hex(), "--key-id", ISSUER_KEY_ID,
                         "--created", "2026-12-01T09:00:00Z")
    assert completed.returncode == 0, completed.stderr
    issued = json.loads(completed.stdout)
    assert issued["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    result = integrity.verify(issued, make_resolver(make_did_document()))
    assert result.verification_method == ISSUER_KEY_ID
    # Same key, same document, same proof options: Ed25519 is deterministic, so both
    # implementations produce the very same proofValue.
    ours = integrity.sign(unsigned, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
    assert ours["proof"]["proofValue"] == issued["proof"]["proofValue"]


def test_tampered_by_one_byte_fails_on_both_sides(node: str, did_file: Path,
                                                  tmp_path: Path) -> None:
    unsigned = make_credential("BusinessLicenceCredential")
    completed = run_tool(node, did_file, tmp_path, "issue", [unsigned], "--seed",
                         ISSUER_SEED.hex(), "--key-id", ISSUER_KEY_ID,
                         "--created", "2026-12-01T09:00:00Z")
    assert completed.returncode == 0, completed.stderr
    raw = completed.stdout.encode()
    tampered_js = raw.replace(b"2026-GN-00417", b"2026-GN-00418")
    assert tampered_js != raw and len(tampered_js) == len(raw)
    with pytest.raises(BadProof):
        integrity.verify(integrity.parse_document(tampered_js),
                         make_resolver(make_did_document()))

    ours = json.dumps(integrity.sign(unsigned, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)).encode()
    tampered_ours = json.loads(ours.replace(b"Seolleung", b"Seolleunh"))
    [result] = js_check(node, did_file, tmp_path, "verify", [tampered_ours])
    assert result["verified"] is False and result["errors"], result
