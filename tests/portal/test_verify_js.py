"""The JavaScript bundle verifier (src/seoulchain/api/portal/verify/) as a second
implementation of docs/spec/proofs.md: the same outcome as the Python verifier on every proof
vector, and on bundles that `seoulchain prove` makes against the live city network
(tests/portal/conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from seoulchain.client.demo import DEMO_VINS, ISSUED_DOCUMENTS
from seoulchain.ledger.genesis import Genesis
from seoulchain.light.bundle import verify_bundle
from tests.portal.conftest import CityNetwork

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "portal" / "verify_vectors.mjs"
VECTORS = ROOT / "docs" / "spec" / "vectors" / "proofs.json"
SEOULCHAIN = Path(sys.executable).with_name("seoulchain")
NODE = shutil.which("node")
# Bytes of one small vector bundle flipped one at a time (proofs.md §7.3, "Byte flips").
FLIPS = 300
RUN_TIMEOUT_S = 120

VIN = DEMO_VINS[0]
ISSUED_DOCUMENT = ISSUED_DOCUMENTS[2][0]  # the demo's issued document that stays valid

needs_node = pytest.mark.skipif(NODE is None, reason="node (Node.js 20) is not installed")


def run_js(*args: str) -> dict[str, Any]:
    """Run the JS runner and return its JSON report (exit 0 means every case agreed)."""
    done = subprocess.run([NODE, str(RUNNER), *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    report["exit"] = done.returncode
    return report


@needs_node
@pytest.mark.slow
def test_js_verifier_agrees_with_every_proof_vector() -> None:
    """Valid vectors verify to their exact statement; invalid ones fail at their step."""
    vectors = json.loads(VECTORS.read_text())
    report = run_js(str(VECTORS), "--flips", str(FLIPS))
    assert report["failures"] == [] and report["exit"] == 0
    outcomes = {result["name"]: result for result in report["results"]}
    # A claim kind added to the vectors but not to the JS verifier fails here.
    assert report["unsupported"] == []
    assert len(outcomes) == len(vectors["valid"]) + len(vectors["invalid"])
    for vector in vectors["valid"]:
        assert outcomes[vector["name"]]["ok"], vector["name"]
    for vector in vectors["invalid"]:
        assert outcomes[vector["name"]]["step"].startswith(vector["step"]), vector["name"]
    assert report["flips"] >= FLIPS


@needs_node
@pytest.mark.slow
def test_js_runner_reports_a_statement_that_is_not_the_vectors(tmp_path: Path) -> None:
    """The runner fails when a valid vector's statement differs, so agreement means something."""
    vectors = json.loads(VECTORS.read_text())
    vectors["valid"][0]["statement"] += " (changed)"
    vectors["invalid"][0]["step"] = "genesis"
    changed = tmp_path / "proofs.json"
    changed.write_text(json.dumps(vectors))
    report = run_js(str(changed))
    assert report["exit"] == 1
    assert {failure["name"] for failure in report["failures"]} == {
        vectors["valid"][0]["name"], vectors["invalid"][0]["name"]}


def prove(out: Path, *args: str) -> Path:
    """Run `seoulchain ARGS --out OUT` and return OUT."""
    done = subprocess.run([str(SEOULCHAIN), *args, "--out", str(out)], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    return out


def check_like_python(bundle: Path, genesis_path: Path) -> dict[str, Any]:
    """Verify a bundle with the JS runner and return its report, after checking it says
    exactly what the Python verifier says."""
    report = run_js("--bundle", str(bundle), "--genesis", str(genesis_path))
    expected = verify_bundle(bundle.read_bytes(), Genesis.load(genesis_path))
    assert report["ok"] and report["exit"] == 0, report
    assert report["text"] == expected.text
    return report


@needs_node
@pytest.mark.e2e
def test_js_verifier_checks_bundles_proved_against_a_live_node(city: CityNetwork,
                                                                 tmp_path: Path) -> None:
    """Bundles of a document, a vehicle's history, a transaction and a state key."""
    genesis_path = city.home / "genesis.json"
    node = ("--node", city.url)
    issued = tmp_path / "issued.json"
    done = subprocess.run([str(SEOULCHAIN), "document", "check", str(city.docs / ISSUED_DOCUMENT),
                           "--home", str(city.home), *node, "--bundle", str(issued)],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    report = check_like_python(issued, genesis_path)
    assert report["text"].startswith("VALID: ") and report["facts"]["status"] == "valid"
    vehicle = check_like_python(prove(tmp_path / "vehicle.json", "prove", "vehicle", VIN,
                                      *node), genesis_path)
    history = city.get_json("/v1/services/vehicle/queries/history", vin=VIN)["result"]
    assert vehicle["facts"]["entries"] == len(history["entries"])
    tx_hash = city.get_json("/v1/txs", service="document", method="issue")["items"][0]["hash"]
    tx = check_like_python(prove(tmp_path / "tx.json", "prove", "tx", tx_hash, *node),
                           genesis_path)
    assert tx["facts"]["txHash"] == tx_hash
    check_like_python(prove(tmp_path / "state.json", "prove", "state", "vehicle",
                            f"vin/{VIN}", *node), genesis_path)


@needs_node
@pytest.mark.e2e
def test_js_verifier_refuses_a_live_bundle_with_one_byte_changed(city: CityNetwork,
                                                                   tmp_path: Path) -> None:
    """A changed record, a changed signature and another genesis each fail at their step."""
    genesis_path = city.home / "genesis.json"
    bundle = prove(tmp_path / "vehicle.json", "prove", "vehicle", VIN, "--node", city.url)
    value = json.loads(bundle.read_text())
    cases = {
        "proof against header": ("proof", "record"),
        "light block": ("light_blocks", "commit"),
    }
    for step, (section, name) in cases.items():
        changed = json.loads(json.dumps(value))
        target = changed[section][-1] if section == "light_blocks" else changed[section]
        text = target[name]
        middle = len(text) // 2
        target[name] = text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1:]
        path = tmp_path / f"changed-{section}.json"
        path.write_text(json.dumps(changed))
        report = run_js("--bundle", str(path), "--genesis", str(genesis_path))
        assert not report["ok"] and report["step"].startswith(step), (step, report)
    other = json.loads(genesis_path.read_text())
    other["genesis_time_ms"] += 1
    other_path = tmp_path / "other-genesis.json"
    other_path.write_text(json.dumps(other))
    report = run_js("--bundle", str(bundle), "--genesis", str(other_path))
    assert not report["ok"] and report["step"] == "genesis"


COMET_DATA = ROOT / "tests" / "light" / "data"


@needs_node
@pytest.mark.slow
def test_js_verifier_checks_a_bundle_of_a_chain_run_under_cometbft(tmp_path: Path) -> None:
    """CometBFT signed headers (proofs.md §13) from a real v0.38 network; a changed commit
    signature, validator power or app header fails at its step."""
    bundle, genesis = COMET_DATA / "cometbft_document.bundle", COMET_DATA / "cometbft_genesis.json"
    check_like_python(bundle, genesis)
    value = json.loads(bundle.read_text())
    block = value["cometbft"]["light_blocks"][-1]
    header = value["cometbft"]["header"]
    changes = [
        ("cometbft light block", lambda copy: copy["cometbft"]["light_blocks"][-1]["commit"][
            "signatures"][0].update(signature=block["commit"]["signatures"][0]["signature"][::-1])),
        ("cometbft light block", lambda copy: copy["cometbft"]["light_blocks"][-1][
            "validators"][0].update(power=block["validators"][0]["power"] + 1)),
        ("cometbft header", lambda copy: copy["cometbft"].update(
            header=header[:8] + ("A" if header[8] != "A" else "B") + header[9:])),
    ]
    for step, change in changes:
        changed = json.loads(json.dumps(value))
        change(changed)
        path = tmp_path / "changed.bundle"
        path.write_text(json.dumps(changed))
        report = run_js("--bundle", str(path), "--genesis", str(genesis))
        assert not report["ok"] and report["step"].startswith(step), (step, report)


@pytest.mark.e2e
@pytest.mark.parametrize(("path", "code", "detail"), [
    ("/v1/bundles/document/abc", "bad_hash", "is not a 32-byte hex hash"),
    (f"/v1/bundles/document/{'00' * 32}?service=vehicle", "local_error",
     "documents are anchored by notary or document"),
    ("/v1/bundles/state/vehicle/zz", "bad_key", "is not a hex state key"),
])
def test_bundle_routes_refuse_bad_requests(city: CityNetwork, path: str, code: str,
                                           detail: str) -> None:
    """A malformed hash or key, or a service that anchors no documents, is a 400 problem."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{city.url}{path}", timeout=10)
    assert refused.value.code == 400
    problem = json.loads(refused.value.read())
    assert problem["code"] == code and detail in problem["detail"], problem
