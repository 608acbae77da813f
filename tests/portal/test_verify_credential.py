"""The verification page checks a credential's Data Integrity proof (eddsa-rdfc-2022) in the
browser: its JavaScript verifier (api/portal/verify/integrity.js, with the vendored jsonld and
the shipped contexts) agrees with the Python verifier (credentials/integrity.py) on every
case, and the page verifies a credential issued on a live node with the issuer's key proven
from the chain as of the issuance height; it proves the issuing key's role at the issuance
height from the role history (api/portal/verify/role.js), by the rule of the Python verifier
(execution/service.py `held_role_at`)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.client.credentials import CREDENTIAL_TYPES, WrongType, find_credential_type
from seoulchain.codec.cbor import encode
from seoulchain.credentials import integrity
from seoulchain.credentials.errors import CredentialError, ProofError
from seoulchain.crypto.keys import SigningKey
from seoulchain.crypto.multikey import encode_multikey
from seoulchain.execution.service import (
    AUTH_NAMESPACE,
    compute_role_history_key,
    held_role_at,
)
from seoulchain.services.did import compute_key_id
from seoulchain.services.vc import compute_role
from tests.credentials.samples import (
    CLAIMS,
    EXAMPLES_V2_CONTEXT,
    EXAMPLES_V2_URL,
    ISSUED_AT,
    ISSUER_KEY_ID,
    ISSUER_SEED,
    SPEC_CREATED,
    SPEC_CREDENTIAL,
    SPEC_DOCUMENT_HASH,
    SPEC_PROOF_CONFIG_HASH,
    SPEC_PROOF_VALUE,
    SPEC_VERIFICATION_METHOD,
    make_credential,
    spec_loader,
    spec_seed,
)
from tests.portal.browser import foreign_requests

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "portal" / "verify_credential.mjs"
VERIFY_DIR = ROOT / "src" / "seoulchain" / "api" / "portal" / "verify"
NODE = shutil.which("node")
# Node canonicalises a dozen small credentials in about a second.
RUN_TIMEOUT_S = 60
OTHER_SEED = bytes(range(100, 132))
UNKNOWN_CONTEXT_URL = "https://vc.example/contexts/unknown/v1"

needs_node = pytest.mark.skipif(NODE is None, reason="node (Node.js 20) is not installed")


def run_js(cases: list[dict[str, Any]], tmp_path: Path,
           extra_contexts: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Run the page's verifier on `cases` under Node; return its results by case name."""
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": cases, "extra_contexts": extra_contexts or {}}))
    done = subprocess.run([NODE, str(RUNNER), str(path)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0 and done.stdout, done.stderr
    return {result["name"]: result for result in json.loads(done.stdout)["results"]}


def python_verdict(document: dict[str, Any], public_key: bytes, loader: Any = None) -> bool:
    """Return whether the Python verifier accepts `document` under `public_key`."""
    try:
        integrity.verify(document, lambda method, purpose: public_key, loader=loader)
    except (CredentialError, ProofError):
        return False
    return True


def signed(kind: str, seed: bytes = ISSUER_SEED) -> dict[str, Any]:
    return integrity.sign(make_credential(kind), seed, ISSUER_KEY_ID, ISSUED_AT)


def flip_one_byte(credential: dict[str, Any]) -> dict[str, Any]:
    """Return the credential with one character of its subject's id changed."""
    changed = copy.deepcopy(credential)
    subject = changed["credentialSubject"]
    subject["id"] = subject["id"][:-1] + ("a" if subject["id"][-1] != "a" else "b")
    return changed


def with_context(credential: dict[str, Any], url: str) -> dict[str, Any]:
    changed = copy.deepcopy(credential)
    changed["@context"] = [*changed["@context"], url]
    return changed


def build_cases() -> list[tuple[str, dict[str, Any], bytes, str | None]]:
    """Return (name, document, public key, failing step or None) for each case."""
    issuer = SigningKey(ISSUER_SEED).public_key
    residency = signed("ResidencyCredential")
    undefined = copy.deepcopy(residency)
    undefined["credentialSubject"]["favouriteColour"] = "blue"
    other_suite = copy.deepcopy(residency)
    other_suite["proof"]["cryptosuite"] = "eddsa-jcs-2022"
    cases: list[tuple[str, dict[str, Any], bytes, str | None]] = [
        (f"valid {kind}", signed(kind), issuer, None) for kind in CLAIMS]
    cases += [
        ("one changed byte", flip_one_byte(residency), issuer, "signature"),
        ("signed by another key", signed("ResidencyCredential", OTHER_SEED), issuer,
         "signature"),
        ("checked with another key", residency, SigningKey(OTHER_SEED).public_key,
         "signature"),
        ("unknown context", with_context(residency, UNKNOWN_CONTEXT_URL), issuer, "context"),
        ("undefined term", undefined, issuer, "canonicalisation"),
        ("another cryptosuite", other_suite, issuer, "proof"),
    ]
    return cases


@needs_node
@pytest.mark.slow
def test_js_verifier_agrees_with_the_python_verifier(tmp_path: Path) -> None:
    """Valid credentials pass in both; a changed byte, another key, an unknown context, an
    undefined term and another cryptosuite fail in both, the JS at the named step."""
    cases = build_cases()
    results = run_js([{"name": name, "document": document, "public_key": key.hex()}
                      for name, document, key, _ in cases], tmp_path)
    for name, document, key, step in cases:
        accepted = python_verdict(document, key)
        assert results[name]["ok"] is accepted is (step is None), (name, results[name])
        if step is not None:
            assert results[name]["step"] == step, (name, results[name])
    assert UNKNOWN_CONTEXT_URL in results["unknown context"]["error"]
    assert "favouriteColour" in results["undefined term"]["error"]


@needs_node
@pytest.mark.slow
def test_js_verifier_checks_the_w3c_eddsa_rdfc_2022_vector(tmp_path: Path) -> None:
    """The published test vector of vc-di-eddsa verifies with its published hashes; without
    the examples context the page does not ship, it fails as an unknown context."""
    public_key = SigningKey(spec_seed()).public_key
    document = integrity.sign(SPEC_CREDENTIAL, spec_seed(), SPEC_VERIFICATION_METHOD,
                              SPEC_CREATED, loader=spec_loader())
    assert document["proof"]["proofValue"] == SPEC_PROOF_VALUE
    case = {"name": "spec", "document": document, "public_key": public_key.hex()}
    result = run_js([case], tmp_path, {EXAMPLES_V2_URL: EXAMPLES_V2_CONTEXT})["spec"]
    assert result["ok"], result
    assert (result["proofConfigHash"], result["documentHash"]) == (SPEC_PROOF_CONFIG_HASH,
                                                                    SPEC_DOCUMENT_HASH)
    refused = run_js([case], tmp_path)["spec"]
    assert not refused["ok"] and refused["step"] == "context"
    assert python_verdict(document, public_key, spec_loader())
    assert not python_verdict(document, public_key)


# ------------------------------------------------------------- the issuer's key, as of when

DID = "did:seoul:PCEpHidaBBthvuezhWTxUt"
ISSUED_HEIGHT = 20
TIP = 40
KEY_1 = SigningKey(ISSUER_SEED).public_key
KEY_2 = SigningKey(OTHER_SEED).public_key


def version_state(number: int, height: int, keys: list[tuple[int, bytes]],
                  deactivated: bool = False) -> dict[str, Any]:
    """Return a DID document version as the did service stores it (services/did.py)."""
    record = {"version": number, "height": height, "time_ms": height * 1000, "tx": bytes(32),
              "controller": DID, "keys": [{"index": index, "public_key": key}
                                         for index, key in keys], "deactivated": deactivated}
    return {"height": TIP, "value": encode(record).hex()}


def didkey_case(name: str, versions: list[dict[str, Any]], hint: int = 1, key_index: int = 1,
                issuer: str = DID, tip: int = TIP) -> dict[str, Any]:
    states = {str(number): {**state, "height": tip} for number, state in
              enumerate(versions, start=1)}
    return {"name": name, "method": compute_key_id(DID, key_index), "issuer": issuer,
            "height": ISSUED_HEIGHT, "hint": hint, "states": states, "tip": tip}


@needs_node
@pytest.mark.slow
def test_the_key_is_the_one_the_document_held_at_issuance(tmp_path: Path) -> None:
    """A key rotated in after issuance is not used, one rotated away after issuance still
    verifies what it signed, one rotated away before does not; a wrong version hint, a
    deactivated DID, a method of another DID or a state older than issuance all fail."""
    first = version_state(1, 17, [(1, KEY_1)])
    cases = [
        didkey_case("only version", [first]),
        didkey_case("rotated after issuance", [first, version_state(2, 25, [(2, KEY_2)])]),
        didkey_case("new key after issuance", [first, version_state(2, 25, [(1, KEY_1),
                                                                            (2, KEY_2)])],
                    key_index=2),
        didkey_case("rotated before issuance", [first, version_state(2, 19, [(2, KEY_2)])]),
        didkey_case("rotated at the issuance height",
                    [first, version_state(2, ISSUED_HEIGHT, [(2, KEY_2)])]),
        didkey_case("hint names a later version",
                    [first, version_state(2, 25, [(1, KEY_1)])], hint=2),
        didkey_case("hint names no version", [first], hint=0),
        didkey_case("deactivated", [first, version_state(2, 18, [(1, KEY_1)], True)], hint=2),
        didkey_case("another DID's method", [first], issuer="did:seoul:4tg77dsmjh9pqakA9FrfZ1"),
        didkey_case("state older than issuance", [first], tip=ISSUED_HEIGHT - 1),
    ]
    path = tmp_path / "didkey.json"
    path.write_text(json.dumps({"cases": cases}))
    done = subprocess.run([NODE, str(RUNNER), "--didkey", str(path)], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    results = {item["name"]: item for item in json.loads(done.stdout)["results"]}
    assert results["only version"]["publicKey"] == KEY_1.hex()
    assert results["only version"]["multikey"] == encode_multikey(KEY_1)
    assert results["rotated after issuance"]["publicKey"] == KEY_1.hex()
    refused = {name: result["error"] for name, result in results.items()
               if not result["ok"] and result["step"] == "key"}
    assert set(refused) == {"new key after issuance", "rotated before issuance",
                            "rotated at the issuance height", "hint names a later version",
                            "hint names no version", "deactivated", "another DID's method",
                            "state older than issuance"}, results
    assert "not in the assertionMethod" in refused["new key after issuance"]
    assert "already replaced" in refused["rotated before issuance"]
    assert "deactivated" in refused["deactivated"]


# ------------------------------------------------------- the issuing key's role, as of when

ISSUER_TYPE = "youth-allowance"


def role_case(name: str, periods: list[list[int | None]] | None, *, tip: int = TIP,
              signer: bytes = KEY_1, credential_type: str = ISSUER_TYPE,
              answered_key: bytes | None = None, value: bytes | None = None) -> dict[str, Any]:
    """Return a role case: the anchor's type, signer and height, and the history the node
    proves (its CBOR value as the auth namespace stores it, at height `tip`)."""
    if value is None and periods is not None:
        value = encode(periods)
    state: dict[str, Any] = {"height": tip, "value": None if value is None else value.hex()}
    if answered_key is not None:
        state["key"] = (AUTH_NAMESPACE.encode() + b"/" + answered_key).hex()
    return {"name": name, "type": credential_type, "signer": signer.hex(),
            "height": ISSUED_HEIGHT, "state": state, "periods": periods}


def run_role(cases: list[dict[str, Any]], tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Run the page's role check (verify/role.js) on `cases` under Node; results by name."""
    path = tmp_path / "role.json"
    path.write_text(json.dumps({"cases": cases}))
    done = subprocess.run([NODE, str(RUNNER), "--role", str(path)], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0 and done.stdout, done.stderr
    return {item["name"]: item for item in json.loads(done.stdout)["results"]}


@needs_node
def test_the_role_is_proven_by_the_python_verifiers_rule(tmp_path: Path) -> None:
    """A role held at the issuance height passes (from genesis, granted at that very height,
    revoked only after it, re-granted before it); one granted after issuance, revoked before
    or at it, never granted, or held only in a gap fails at step "role", exactly where
    `held_role_at` says so; the state key asked for is the Python encoding."""
    h = ISSUED_HEIGHT
    cases = [
        role_case("from genesis", [[0, None]]),
        role_case("granted at the issuance height", [[h, None]]),
        role_case("revoked after issuance", [[3, h + 1]]),
        role_case("re-granted before issuance", [[1, 5], [h - 1, None]]),
        role_case("granted after issuance", [[h + 1, None]]),
        role_case("revoked before issuance", [[3, h - 5]]),
        role_case("revoked at the issuance height", [[3, h]]),
        role_case("issued in a gap", [[1, h - 1], [h + 2, None]]),
        role_case("never granted", None),
        role_case("another type's role", [[0, None]], credential_type="business-licence",
                  signer=KEY_2),
    ]
    results = run_role(cases, tmp_path)
    for case in cases:
        result = results[case["name"]]
        signer = bytes.fromhex(case["signer"])
        role = compute_role(case["type"])
        assert result["asked"] == compute_role_history_key(role, signer).hex(), case["name"]
        held = held_role_at(case["periods"] or [], h)
        assert result["ok"] is held, (case["name"], result)
        if not held:
            assert result["step"] == "role" and f"did not hold {role}" in result["error"], result
    assert {name for name, result in results.items() if result["ok"]} == {
        "from genesis", "granted at the issuance height", "revoked after issuance",
        "re-granted before issuance", "another type's role"}
    assert results["revoked after issuance"]["revoked"] == h + 1
    assert results["re-granted before issuance"]["granted"] == h - 1
    assert "revoked at height 15" in results["revoked before issuance"]["error"]


@needs_node
def test_a_node_cannot_make_a_missing_role_pass(tmp_path: Path) -> None:
    """A history proven before the issuance height (when a later revocation is not yet in
    it), a bundle for another key's history that held the role, or a value that is not a
    role history all fail at step "role"."""
    other_key = compute_role_history_key(compute_role(ISSUER_TYPE), KEY_2)
    cases = [
        role_case("proven before issuance", [[0, None]], tip=ISSUED_HEIGHT - 1),
        role_case("another key's history", [[0, None]], answered_key=other_key),
        role_case("not a role history", None, value=encode({"granted": 0})),
        role_case("revoked before granted", None, value=encode([[5, 2]])),
    ]
    results = run_role(cases, tmp_path)
    assert {name: result["step"] for name, result in results.items()} == {
        case["name"]: "role" for case in cases}, results
    assert "before the issuance height" in results["proven before issuance"]["error"]
    assert "another state key" in results["another key's history"]["error"]
    assert "not a role history" in results["not a role history"]["error"]


# ----------------------------------------------------------------------- in the browser

# Canonicalising and proving take well under a second; the node builds each bundle fast.
VERDICT_TIMEOUT_MS = 20_000
ARTIFACTS = ROOT / "test-artifacts" / "verify-page"


@pytest.fixture
def page(browser: Any, demo: Any) -> Iterator[Any]:
    """The verify page in English, with the browser's console and requests recorded."""
    context = browser.new_context(viewport={"width": 1100, "height": 1600})
    opened = context.new_page()
    opened.console_lines = []
    opened.requested = []
    opened.on("console", lambda message: opened.console_lines.append(message.text))
    opened.on("pageerror", lambda error: opened.console_lines.append(str(error)))
    opened.on("request", lambda request: opened.requested.append(request.url))
    opened.goto(f"{demo.url}/portal/verify.html?lang=en")
    opened.wait_for_selector("body[data-ready='true']", timeout=VERDICT_TIMEOUT_MS)
    try:
        yield opened
    finally:
        context.close()


def check_credential(page: Any, text: str) -> tuple[str, str]:
    """Paste a credential, press the button; return the verdict's outcome and the text."""
    page.locator("#credential-result").evaluate("element => element.replaceChildren()")
    page.fill("#credential-text", text)
    page.click("#credential-verify")
    verdict = page.wait_for_selector("#credential-result .verdict", timeout=VERDICT_TIMEOUT_MS)
    return verdict.get_attribute("data-outcome"), page.inner_text("#credential-result")


def read_issued(demo: Any, citizen: str = "citizen-1") -> dict[str, Any]:
    return json.loads((demo.docs / "identity" / f"youth-allowance-{citizen}.json").read_text())


@pytest.mark.e2e
def test_a_credential_issued_on_the_network_verifies_with_its_issuers_key(
        page: Any, demo: Any) -> None:
    """The signature verifies in the browser under the issuer DID's key as of issuance,
    proven from the pinned genesis; the page says what it proved and where the key came from;
    the vendored library runs under the portal's policy and every request goes to the node."""
    credential = read_issued(demo)
    method = credential["proof"]["verificationMethod"]
    outcome, text = check_credential(page, json.dumps(credential, indent=2))
    assert outcome == "valid", text
    assert f"verifies under {method}" in text
    assert f"{method} was a key of {credential['issuer']} for assertions" in text
    assert "proven from the chain's state at block" in text
    assert "only the 6 that seoulchain ships" in text
    assert "held the role vc.issuer.youth-allowance when it issued it" in text
    assert "role history proven from the chain's state at block" in text
    assert "seoulchain vc verify" not in text and "not checked here" not in text
    checks = page.locator("#credential-result li[data-checked='browser']").all_inner_texts()
    assert any("eddsa-rdfc-2022" in line for line in checks)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "credential-signature-valid.png"), full_page=True)
    page.click("button[data-lang='ko']")
    page.wait_for_selector("html[lang='ko']")
    korean = page.inner_text("#credential-result")
    assert "서명(Data Integrity, eddsa-rdfc-2022" in korean
    assert "역할 vc.issuer.youth-allowance을 가지고 있었습니다" in korean
    assert [line for line in page.console_lines
            if "Content Security Policy" in line or "EvalError" in line] == []
    assert foreign_requests(page.requested, demo.url) == []
    assert any(url.endswith("/portal/contexts/credentials-v2.jsonld") for url in page.requested)


@pytest.mark.e2e
def test_a_node_naming_the_wrong_document_version_is_caught(page: Any, demo: Any) -> None:
    """The node's answer of which DID document version held at issuance is only a hint:
    a wrong one fails at step "key", it never lends the credential another key."""
    def lie(route: Any) -> None:
        answer = json.loads(route.fetch().body())
        answer["result"]["didDocumentMetadata"]["versionId"] = "2"
        route.fulfill(status=200, body=json.dumps(answer), content_type="application/json")

    page.route("**/v1/services/did/queries/resolve**", lie)
    outcome, text = check_credential(page, json.dumps(read_issued(demo)))
    assert outcome == "failed", text
    assert "step “key”" in text and "is not in the chain's state" in text


@pytest.mark.e2e
def test_a_node_altering_the_issuers_document_is_caught(page: Any, demo: Any) -> None:
    def alter(route: Any) -> None:
        bundle = json.loads(route.fetch().body())
        value = bundle["proof"]["value"]
        middle = len(value) // 2
        bundle["proof"]["value"] = value[:middle] + ("B" if value[middle] == "A" else "A") \
            + value[middle + 1:]
        route.fulfill(status=200, body=json.dumps(bundle), content_type="application/json")

    page.route("**/v1/bundles/state/did/**", alter)
    outcome, text = check_credential(page, json.dumps(read_issued(demo)))
    assert outcome == "failed", text
    assert "does not follow from the chain" in text


@pytest.mark.e2e
def test_a_node_altering_or_swapping_the_role_history_is_caught(page: Any, demo: Any) -> None:
    """The issuing key's role history comes in a bundle proven from the pinned genesis and
    bound to that key: an altered bundle, or another role's history, fails the check."""
    credential = json.dumps(read_issued(demo))

    def alter(route: Any) -> None:
        bundle = json.loads(route.fetch().body())
        value = bundle["proof"]["value"]
        middle = len(value) // 2
        bundle["proof"]["value"] = value[:middle] + ("B" if value[middle] == "A" else "A") \
            + value[middle + 1:]
        route.fulfill(status=200, body=json.dumps(bundle), content_type="application/json")

    page.route("**/v1/bundles/state/auth/**", alter)
    outcome, text = check_credential(page, credential)
    assert outcome == "failed", text
    assert "does not follow from the chain" in text
    page.unroute("**/v1/bundles/state/auth/**")

    def swap(route: Any) -> None:
        prefix, _, key = route.request.url.rpartition("/")
        other = bytes.fromhex(key).replace(b"youth-allowance", b"residency")
        route.continue_(url=f"{prefix}/{other.hex()}")

    page.route("**/v1/bundles/state/auth/**", swap)
    outcome, text = check_credential(page, credential)
    assert outcome == "failed", text
    assert "a proof about something else than what was asked" in text, text


@pytest.mark.e2e
def test_the_vectors_agree_in_chromium_under_the_portals_policy(page: Any) -> None:
    """The same cases as under Node, run by the page's own module in Chromium with the
    contexts the node serves: the Python verifier's outcome, the same failing step."""
    cases = build_cases()
    results = page.evaluate("""async (cases) => {
        const verifier = await import("./verify/integrity.js");
        const read = async (name) => new Uint8Array(
            await (await fetch(`contexts/${name}`)).arrayBuffer());
        const loader = verifier.createDocumentLoader(await verifier.loadShippedContexts(read));
        const hex = (text) => Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
        const results = {};
        for (const item of cases) {
            try {
                await verifier.verifyProof(item.document, async () => hex(item.public_key), loader);
                results[item.name] = {ok: true};
            } catch (error) {
                results[item.name] = {ok: false, step: error.step ?? null, error: String(error)};
            }
        }
        return results;
    }""", [{"name": name, "document": document, "public_key": key.hex()}
           for name, document, key, _ in cases])
    for name, document, key, step in cases:
        assert results[name]["ok"] is python_verdict(document, key) is (step is None), name
        assert results[name].get("step") == step, (name, results[name])


@needs_node
def test_the_credentials_own_type_must_be_the_anchored_type() -> None:
    types = [["VerifiableCredential", "ResidencyCredential"], "ResidencyCredential",
             ["VerifiableCredential", "AgeBandCredential"],
             ["VerifiableCredential", "ResidencyCredential", "AgeBandCredential"],
             ["VerifiableCredential"], None]
    script = (
        f"import * as m from {json.dumps((VERIFY_DIR / 'integrity.js').as_uri())};"
        "const out = {names: m.CREDENTIAL_TYPE_NAMES, verdicts: []};"
        f"for (const type of {json.dumps(types)}) {{"
        "  try { m.checkCredentialType({type}, 'residency'); out.verdicts.push(null); }"
        "  catch (error) { out.verdicts.push(error.step); } }"
        "console.log(JSON.stringify(out));")
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["names"] == CREDENTIAL_TYPES
    python = []
    for value in types:
        try:
            find_credential_type({"type": value}, "residency", None)
            python.append(None)
        except WrongType:
            python.append("type")
    assert answer["verdicts"] == python == [None, None, "type", "type", "type", "type"]
