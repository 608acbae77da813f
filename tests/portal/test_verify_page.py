"""The verify page in a real browser against the city network (tests/portal/conftest.py:
four validators with the demo's documents of every status and credentials): real files and
credentials verify to their status, a changed file is unknown, and a node that alters or
swaps a bundle is caught in the browser."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from seoulchain.client.demo import DEMO_VINS
from seoulchain.ledger.genesis import Genesis
from tests.portal.conftest import CityNetwork

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "verify-page"
# Verifying a bundle takes milliseconds; the node builds one in well under a second.
VERDICT_TIMEOUT_MS = 15_000
VIN = DEMO_VINS[0]

pytestmark = pytest.mark.e2e


@pytest.fixture
def page(browser: object, demo: CityNetwork) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    opened = context.new_page()
    opened.goto(f"{demo.url}/portal/verify.html?lang=en")
    opened.wait_for_selector("body[data-ready='true']", timeout=VERDICT_TIMEOUT_MS)
    try:
        yield opened
    finally:
        context.close()


def shoot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def drop_file(page: object, path: Path) -> tuple[str, str]:
    """Give the page a document file; return its verdict's outcome and text."""
    page.locator("#file-result").evaluate("element => element.replaceChildren()")
    page.set_input_files("#document-file", str(path))
    verdict = page.wait_for_selector("#file-result .verdict", timeout=VERDICT_TIMEOUT_MS)
    return verdict.get_attribute("data-outcome"), page.inner_text("#file-result")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_page_pins_the_nodes_genesis_and_shows_its_hash(page: object, demo: CityNetwork) -> None:
    genesis = Genesis.load(demo.home / "genesis.json")
    assert page.inner_text("#trust-hash") == genesis.hash().hex()
    assert page.inner_text("#trust-chain") == genesis.chain_id
    assert page.is_hidden("#trust-warning")


def test_a_real_issued_document_is_valid_in_both_languages(page: object, demo: CityNetwork) -> None:
    outcome, text = drop_file(page, demo.docs / "noise-survey-report-2026-0045.txt")
    assert outcome == "valid", text
    assert "This document is valid." in text and "checked in your browser" in text
    shoot(page, "valid-en")
    page.click("button[data-lang='ko']")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator("#file-result")).to_contain_text("유효한 문서입니다.")
    korean = page.inner_text("#file-result")
    assert "유효한 문서입니다." in korean and "브라우저에서 확인" in korean
    shoot(page, "valid-ko")
    page.click("button[data-lang='en']")


@pytest.mark.parametrize(("name", "expected"), [
    ("street-vendor-permit-2026-0388.txt", "revoked"),
    ("tax-payment-certificate-2026-0211.txt", "superseded"),
    ("building-permit-2026-0042.txt", "superseded"),
    ("building-permit-2026-0042-rev1.txt", "anchored"),
])
def test_each_document_status_is_said(page: object, demo: CityNetwork, name: str,
                                      expected: str) -> None:
    """Issued documents revoked or corrected, and notary records, read as their status."""
    outcome, text = drop_file(page, demo.docs / name)
    assert outcome == expected, text


def test_a_changed_file_is_unknown(page: object, demo: CityNetwork, tmp_path: Path) -> None:
    original = (demo.docs / "noise-survey-report-2026-0045.txt").read_bytes()
    outcome, text = drop_file(page, write(tmp_path, "report.txt", original + b" "))
    assert outcome == "unknown", text
    assert "never issued" in text
    shoot(page, "changed-file-unknown")


def alter_record(body: bytes) -> bytes:
    """Return the bundle with its claim's record changed, as a lying node would serve it."""
    bundle = json.loads(body)
    record = bundle["proof"]["record"]
    middle = len(record) // 2
    bundle["proof"]["record"] = record[:middle] + ("B" if record[middle] == "A" else "A") \
        + record[middle + 1:]
    return json.dumps(bundle).encode()


def test_a_bundle_altered_by_the_node_fails_in_the_browser(page: object, demo: CityNetwork) -> None:
    def lie(route: object) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, body=alter_record(answer.body()))

    page.route("**/v1/bundles/document/**", lie)
    outcome, text = drop_file(page, demo.docs / "noise-survey-report-2026-0045.txt")
    assert outcome == "failed", text
    assert "proof against header" in text and "Do not rely on it" in text
    shoot(page, "altered-bundle-failed")


def test_a_bundle_about_another_document_fails_in_the_browser(page: object, demo: CityNetwork,
                                                             tmp_path: Path) -> None:
    """A node answering a forged file with a real document's valid bundle is caught."""
    real = hashlib.sha256((demo.docs / "noise-survey-report-2026-0045.txt").read_bytes()
                          ).hexdigest()
    with urllib.request.urlopen(f"{demo.url}/v1/bundles/document/{real}") as answer:
        valid_bundle = answer.read()
    page.route("**/v1/bundles/document/**",
               lambda route: route.fulfill(status=200, body=valid_bundle,
                                           content_type="application/json"))
    outcome, text = drop_file(page, write(tmp_path, "forged.txt", b"a forged permit\n"))
    assert outcome == "failed", text
    assert "something else than what was asked" in text


def test_a_pasted_vehicle_bundle_says_what_it_proves(page: object, demo: CityNetwork) -> None:
    key = f"vin/{VIN}".encode().hex()
    with urllib.request.urlopen(f"{demo.url}/v1/bundles/state/vehicle/{key}") as answer:
        bundle = answer.read().decode()
    page.fill("#bundle-text", bundle)
    page.click("#bundle-verify")
    verdict = page.wait_for_selector("#bundle-result .verdict", timeout=VERDICT_TIMEOUT_MS)
    assert verdict.get_attribute("data-outcome") == "present"
    page.fill("#bundle-text", bundle.replace('"version":1', '"version":2'))
    page.click("#bundle-verify")
    page.wait_for_selector("#bundle-result .verdict[data-outcome='failed']",
                           timeout=VERDICT_TIMEOUT_MS)
    assert "“format”" in page.inner_text("#bundle-result")
    shoot(page, "pasted-bundle-refused")


CREDENTIAL = {
    "@context": ["https://www.w3.org/ns/credentials/v2",
                 "https://w3id.org/seoulchain/credentials/v1"],
    "id": "urn:uuid:8f1d1e5c-5c4e-4b5a-9a57-3c1c1b0f4b21",
    "type": ["VerifiableCredential", "ResidencyCredential"],
    "issuer": "did:seoul:4tg77dsmjh9pqakA9FrfZ1",
    "validFrom": "2026-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:seoul:FyYajf6H3KPAkfz7J8CU5d", "residentOf": "11110"},
}


def check_credential(page: object, text: str) -> tuple[str, str]:
    page.locator("#credential-result").evaluate("element => element.replaceChildren()")
    page.fill("#credential-text", text)
    page.click("#credential-verify")
    verdict = page.wait_for_selector("#credential-result .verdict", timeout=VERDICT_TIMEOUT_MS)
    return verdict.get_attribute("data-outcome"), page.inner_text("#credential-result")


@pytest.mark.parametrize(("citizen", "expected", "status"), [
    ("citizen-1", "valid", "not set"), ("citizen-2", "revoked", "set")])
def test_an_issued_credential_reads_as_its_status(page: object, demo: CityNetwork, citizen: str,
                                                 expected: str, status: str) -> None:
    credential = demo.docs / "identity" / f"youth-allowance-{citizen}.json"
    outcome, text = check_credential(page, credential.read_text())
    assert outcome == expected, text
    assert f"(revocation): {status}." in text
    assert "asked of the node" in text and "held the role vc.issuer.youth-allowance" in text
    shoot(page, f"credential-{expected}")


def test_a_credential_never_issued_is_proven_unknown(page: object) -> None:
    outcome, text = check_credential(page, json.dumps(CREDENTIAL, indent=2))
    assert outcome == "unknown", text
    assert "never issued on this chain" in text and "checked in your browser" in text
    outcome, text = check_credential(page, "{not json")
    assert outcome == "failed" and "not JSON" in text


def test_a_node_answering_a_credential_with_another_record_is_caught(page: object,
                                                                    demo: CityNetwork) -> None:
    key = f"vin/{VIN}".encode().hex()
    with urllib.request.urlopen(f"{demo.url}/v1/bundles/state/vehicle/{key}") as answer:
        other = answer.read()
    page.route("**/v1/bundles/state/vc/**",
               lambda route: route.fulfill(status=200, body=other,
                                           content_type="application/json"))
    outcome, text = check_credential(page, json.dumps(CREDENTIAL))
    assert outcome == "failed", text
    assert "something else than what was asked" in text
    shoot(page, "credential-swapped-failed")


def test_a_genesis_file_the_person_trusts_replaces_the_pinned_one(page: object, demo: CityNetwork,
                                                                 tmp_path: Path) -> None:
    """Trusting another chain's genesis makes this node's bundles fail at step "genesis";
    a file that is no genesis is refused with its reason."""
    other = json.loads((demo.home / "genesis.json").read_text())
    other["genesis_time_ms"] += 1
    page.set_input_files("#genesis-file", str(write(tmp_path, "other.json",
                                                    json.dumps(other).encode())))
    page.wait_for_selector("#trust-warning:not([hidden])", timeout=VERDICT_TIMEOUT_MS)
    assert page.inner_text("#trust-hash") == Genesis.from_json(other).hash().hex()
    assert "loaded from a file you chose" in page.inner_text("#trust-source")
    assert "serves another genesis" in page.inner_text("#trust-warning")
    outcome, text = drop_file(page, demo.docs / "noise-survey-report-2026-0045.txt")
    assert outcome == "failed" and "“genesis”" in text, text
    shoot(page, "other-genesis-failed")
    page.set_input_files("#genesis-file", str(write(tmp_path, "notes.json", b"[1, 2]")))
    expect(page.locator("#trust-warning")).to_contain_text("not a genesis file",
                                                           timeout=VERDICT_TIMEOUT_MS)
    page.click("#trust-forget")
    expect(page.locator("#trust-warning")).to_be_hidden(timeout=VERDICT_TIMEOUT_MS)
    genesis = Genesis.load(demo.home / "genesis.json")
    assert page.inner_text("#trust-hash") == genesis.hash().hex()
