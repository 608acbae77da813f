"""Vehicle service: a used car's history from registration to scrapping, and every refusal."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from seoulchain.cli import gov as gov_cli
from seoulchain.cli import txs
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.codec import cbor
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.light.bundle import build_state_bundle, verify_bundle
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.node.proofs import StoreProofSource
from seoulchain.services import vehicle as vehicle_service
from seoulchain.services.vehicle import (
    check_vin,
    compute_history_digest,
    compute_vin_check_digit,
)
from tests.cli.test_service_cli import InProcessClient, free_port
from tests.conftest import LocalChain, make_genesis, make_key

KOREAN_VIN = "KMHEC41DBFA123456"  # Korea (K): position 9 is not a check digit
US_VIN = "1HGCM82633A004352"  # North America: check digit 3 holds
INSPECTOR, REPAIRER, DEALER = make_key(3), make_key(4), make_key(5)
ALICE, BOB, MALLORY = make_key(6), make_key(7), make_key(8)
VIN_SERIALS = itertools.count(100_000)


@pytest.fixture
def cars(tmp_path: Path) -> Iterator[LocalChain]:
    """A chain where the issuer key registers vehicles and three keys hold the other roles."""
    validator, registrar = make_key(1), make_key(2)
    genesis = make_genesis(validator, registrar)
    genesis.roles.update({"vehicle.registrar": (registrar.public_key,),
                          "vehicle.inspector": (INSPECTOR.public_key,),
                          "vehicle.repairer": (REPAIRER.public_key,),
                          "vehicle.dealer": (DEALER.public_key,)})
    local = LocalChain(tmp_path / "cars.sqlite", genesis, validator, registrar)
    yield local
    local.store.close()


def send(chain: LocalChain, key: SigningKey | None, method: str, **args: Any) -> TxResult:
    """Commit one vehicle transaction and return its result."""
    tx = chain.make_tx(key, service="vehicle", method=method, args=args)
    return chain.commit(tx).execution.results[0]


def refusal(result: TxResult) -> str:
    assert result.code != ResultCode.OK, "expected a refusal"
    return " ".join(result.log.split())


def register(chain: LocalChain, vin: str = KOREAN_VIN, **extra: Any) -> TxResult:
    result = send(chain, None, "register", vin=vin, owner=ALICE.public_key, **extra)
    assert result.code == ResultCode.OK, result.log
    return result


def history(chain: LocalChain, vin: str = KOREAN_VIN) -> dict[str, Any]:
    return chain.engine.query("vehicle", "history", {"vin": vin})


def fresh_vin() -> str:
    return f"KMHEC41DBFA{next(VIN_SERIALS)}"


def test_vehicle_history_from_registration_to_scrapping(cars: LocalChain) -> None:
    registered = register(cars, odometer_km=12, model="Hyundai Sonata 2015")
    assert registered.events[0].kind == "vehicle.registered"
    steps = [
        (INSPECTOR, "inspect", {"odometer_km": 40_000, "result": "pass"}),
        (REPAIRER, "repair", {"accident": True, "description": "front bumper collision",
                              "odometer_km": 41_000}),
        (REPAIRER, "replace_meter", {"old_meter_km": 41_500, "new_meter_km": 0,
                                     "note": "instrument cluster replaced"}),
        (INSPECTOR, "inspect", {"odometer_km": 300, "result": "pass"}),
        (DEALER, "list_for_sale", {"price_krw": 9_500_000, "odometer_km": 310}),
        (ALICE, "offer_transfer", {"buyer": BOB.public_key, "price_krw": 9_000_000}),
        (BOB, "accept_transfer", {}),
        (BOB, "scrap", {}),
    ]
    for key, method, args in steps:
        result = send(cars, key, method, vin=KOREAN_VIN, **args)
        assert result.code == ResultCode.OK, (method, result.log)
        assert result.events[0].kind.startswith("vehicle.")
    found = history(cars)
    kinds = [entry["kind"] for entry in found["entries"]]
    assert kinds == ["registered", "inspection", "accident", "meter_replaced", "inspection",
                     "listed", "transfer_offered", "transferred", "scrapped"]
    assert [entry["seq"] for entry in found["entries"]] == list(range(1, 10))
    heights = [entry["height"] for entry in found["entries"]]
    assert heights == sorted(heights)
    record = found["vehicle"]
    assert (record["owner"], record["status"], record["odometer_km"],
            record["meter_replacements"]) == (BOB.public_key, "scrapped", 310, 1)
    assert record["history_digest"] == compute_history_digest(found["entries"])
    transferred = found["entries"][7]
    assert (transferred["seller"], transferred["buyer"], transferred["price_krw"]) == (
        ALICE.public_key, BOB.public_key, 9_000_000)
    for key in (ALICE, BOB):
        assert cars.engine.query("vehicle", "owned", {"owner": key.public_key.hex()}) == []


def test_the_registrar_is_the_first_owner_unless_one_is_named(cars: LocalChain) -> None:
    assert send(cars, None, "register", vin=US_VIN).code == ResultCode.OK
    record = cars.engine.query("vehicle", "vehicle", {"vin": US_VIN.lower()})
    assert record["owner"] == record["registrar"] == cars.issuer.public_key
    owned = cars.engine.query("vehicle", "owned", {"owner": cars.issuer.public_key.hex()})
    assert owned == [US_VIN]


def test_a_transfer_moves_the_vehicle_between_owners_lists(cars: LocalChain) -> None:
    register(cars)
    send(cars, ALICE, "offer_transfer", vin=KOREAN_VIN, buyer=BOB.public_key)
    assert cars.engine.query("vehicle", "owned", {"owner": ALICE.public_key.hex()}) == [
        KOREAN_VIN]
    send(cars, BOB, "accept_transfer", vin=KOREAN_VIN)
    assert cars.engine.query("vehicle", "owned", {"owner": ALICE.public_key.hex()}) == []
    assert cars.engine.query("vehicle", "owned", {"owner": BOB.public_key.hex()}) == [
        KOREAN_VIN]


@pytest.mark.parametrize(("vin", "reason"), [
    ("KMHEC41DBFA12345", "a VIN has 17 characters, not 16"),
    ("KMHEC41DBFA1234567", "a VIN has 17 characters, not 18"),
    ("KMHEC41DBIA123456", "without I, O and Q, not 'I'"),
    ("KMHEC41DBOA12345Q", "without I, O and Q, not 'O' 'Q'"),
    ("KMHEC41DB-A123456", "not '-'"),
    ("KMHEC41DBÅA123456", "not 'Å'"),
    ("1HGCM82643A004352", "check digit (position 9) is 4, but this North American VIN's "
                          "digits give 3"),
    ("5YJSA1E2XHF000001", "check digit (position 9) is X"),
])
def test_an_invalid_vin_is_refused_with_the_reason(cars: LocalChain, vin: str,
                                                   reason: str) -> None:
    tx = cars.make_tx(service="vehicle", method="register", args={"vin": vin})
    check = cars.engine.check_tx(tx.encode())
    assert check.code == ResultCode.BAD_ARGS
    assert reason in check.log
    execution = cars.engine.execute_block(1, cars.clock_ms + 1000, [tx.encode()], strict=True)
    assert execution.results[0].code == ResultCode.BAD_ARGS
    assert not any(key.startswith(b"vehicle/") for key in execution.writes)
    with pytest.raises(LocalError, match="vin"):
        cars.engine.query("vehicle", "history", {"vin": vin})


def test_vin_rules_korean_check_digit_free_and_north_american_checked() -> None:
    assert compute_vin_check_digit(US_VIN) == "3"
    assert check_vin("1hgcm82633a004352") == US_VIN
    # A Korean VIN's position 9 is the maker's to use: any digit passes.
    for ninth in "0123456789":
        vin = KOREAN_VIN[:8] + ninth + KOREAN_VIN[9:]
        assert check_vin(vin) == vin
    assert compute_vin_check_digit("11111111111111111") == "1"


def test_a_vin_that_is_not_text_is_refused(cars: LocalChain) -> None:
    tx = cars.make_tx(service="vehicle", method="register", args={"vin": 12345678901234567})
    assert cars.engine.check_tx(tx.encode()).code == ResultCode.BAD_ARGS


def test_a_vin_is_registered_once(cars: LocalChain) -> None:
    register(cars)
    again = send(cars, None, "register", vin=KOREAN_VIN.lower())
    assert refusal(again) == f"vehicle {KOREAN_VIN} is already registered"


def test_odometer_rollback_is_refused_and_nothing_is_applied(cars: LocalChain) -> None:
    register(cars)
    assert send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=50_000,
                result="pass").code == ResultCode.OK
    before = history(cars)
    rollbacks = [
        (INSPECTOR, "inspect", {"odometer_km": 49_999, "result": "pass"}),
        (REPAIRER, "repair", {"accident": False, "description": "oil", "odometer_km": 10}),
        (DEALER, "list_for_sale", {"price_krw": 1_000_000, "odometer_km": 0}),
        (REPAIRER, "replace_meter", {"old_meter_km": 20_000, "new_meter_km": 0}),
    ]
    for key, method, args in rollbacks:
        result = send(cars, key, method, vin=KOREAN_VIN, **args)
        assert result.code == ResultCode.REFUSED
        assert "odometer rollback refused" in refusal(result)
        assert "below the last recorded 50000 km" in refusal(result)
        assert not result.events
    assert history(cars) == before


def test_a_certified_meter_replacement_allows_a_lower_reading(cars: LocalChain) -> None:
    register(cars)
    send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=90_000, result="pass")
    replaced = send(cars, INSPECTOR, "replace_meter", vin=KOREAN_VIN, old_meter_km=90_100,
                    new_meter_km=5)
    assert replaced.code == ResultCode.OK
    assert send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=1_000,
                result="pass").code == ResultCode.OK
    replacement = history(cars)["entries"][2]
    assert (replacement["kind"], replacement["old_meter_km"], replacement["new_meter_km"]) == (
        "meter_replaced", 90_100, 5)
    assert send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=999,
                result="pass").code == ResultCode.REFUSED


def test_a_transfer_signed_by_one_party_only_is_refused(cars: LocalChain) -> None:
    register(cars)
    assert refusal(send(cars, BOB, "accept_transfer", vin=KOREAN_VIN)) == (
        f"vehicle {KOREAN_VIN} has no pending offer: the owner offers it first "
        "(offer_transfer)")
    assert refusal(send(cars, BOB, "offer_transfer", vin=KOREAN_VIN,
                        buyer=BOB.public_key)) == f"only the owner of {KOREAN_VIN} may offer it"
    assert refusal(send(cars, ALICE, "offer_transfer", vin=KOREAN_VIN,
                        buyer=ALICE.public_key)) == "the buyer is already the owner"
    assert send(cars, ALICE, "offer_transfer", vin=KOREAN_VIN,
                buyer=BOB.public_key).code == ResultCode.OK
    # The seller's signature alone moves nothing.
    assert cars.engine.query("vehicle", "vehicle", {"vin": KOREAN_VIN})["owner"] == (
        ALICE.public_key)
    assert refusal(send(cars, MALLORY, "accept_transfer", vin=KOREAN_VIN)) == (
        "only the buyer named in the offer may accept it")
    assert refusal(send(cars, ALICE, "accept_transfer", vin=KOREAN_VIN)) == (
        "only the buyer named in the offer may accept it")
    assert "already has a pending offer" in refusal(
        send(cars, ALICE, "offer_transfer", vin=KOREAN_VIN, buyer=MALLORY.public_key))
    assert "only the owner or the offered buyer" in refusal(
        send(cars, MALLORY, "cancel_offer", vin=KOREAN_VIN))
    assert send(cars, ALICE, "cancel_offer", vin=KOREAN_VIN).code == ResultCode.OK
    assert "no pending offer" in refusal(send(cars, BOB, "accept_transfer", vin=KOREAN_VIN))
    record = cars.engine.query("vehicle", "vehicle", {"vin": KOREAN_VIN})
    assert (record["owner"], record["offer"]) == (ALICE.public_key, None)


@pytest.mark.parametrize(("key", "method", "args"), [
    (INSPECTOR, "register", {}),
    (DEALER, "inspect", {"odometer_km": 1, "result": "pass"}),
    (INSPECTOR, "repair", {"accident": True, "description": "dent"}),
    (ALICE, "list_for_sale", {"price_krw": 1}),
    (DEALER, "replace_meter", {"old_meter_km": 1, "new_meter_km": 0}),
])
def test_a_method_without_its_role_is_unauthorized(cars: LocalChain, key: SigningKey,
                                                   method: str, args: dict[str, Any]) -> None:
    register(cars, vin=US_VIN)
    tx = cars.make_tx(key, service="vehicle", method=method, args={"vin": US_VIN, **args})
    check = cars.engine.check_tx(tx.encode())
    assert check.code == ResultCode.UNAUTHORIZED
    assert f"vehicle.{method} requires one of the roles vehicle." in check.log


def test_an_unregistered_or_scrapped_vehicle_takes_no_entry(cars: LocalChain) -> None:
    assert refusal(send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=1,
                        result="pass")) == f"vehicle {KOREAN_VIN} is not registered"
    register(cars)
    assert "only the owner or a vehicle.registrar" in refusal(
        send(cars, MALLORY, "scrap", vin=KOREAN_VIN))
    send(cars, ALICE, "offer_transfer", vin=KOREAN_VIN, buyer=BOB.public_key)
    assert send(cars, None, "scrap", vin=KOREAN_VIN).code == ResultCode.OK
    closed = f"vehicle {KOREAN_VIN} is scrapped; its history is closed"
    assert refusal(send(cars, BOB, "accept_transfer", vin=KOREAN_VIN)) == closed
    assert refusal(send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=9,
                        result="pass")) == closed
    assert refusal(send(cars, None, "scrap", vin=KOREAN_VIN)) == closed
    assert cars.engine.query("vehicle", "vehicle", {"vin": KOREAN_VIN})["offer"] is None


def test_history_and_ownership_caps_are_refused_with_the_reason(
        cars: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vehicle_service, "HISTORY_ENTRIES_MAX", 2)
    monkeypatch.setattr(vehicle_service, "OWNED_VEHICLES_MAX", 1)
    register(cars)
    assert send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=1,
                result="pass").code == ResultCode.OK
    assert refusal(send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=2,
                        result="pass")) == (f"vehicle {KOREAN_VIN} has 2 history entries, "
                                            "the most one vehicle may hold")
    second = send(cars, None, "register", vin=US_VIN, owner=ALICE.public_key)
    assert refusal(second) == (f"key {ALICE.public_key.hex()} already owns 1 vehicles, the "
                               "most one key may own")
    assert cars.engine.query("vehicle", "vehicle", {"vin": US_VIN}) is None


@pytest.mark.parametrize("price", [0, -1, 2**63, 2**64 - 1, "1000", True])
def test_an_amount_that_is_not_a_positive_64_bit_integer_is_refused(
        cars: LocalChain, price: Any) -> None:
    register(cars)
    for key, method, extra in ((DEALER, "list_for_sale", {}),
                               (ALICE, "offer_transfer", {"buyer": BOB.public_key})):
        tx = cars.make_tx(key, service="vehicle", method=method,
                          args={"vin": KOREAN_VIN, "price_krw": price, **extra})
        check = cars.engine.check_tx(tx.encode())
        assert check.code == ResultCode.BAD_ARGS and "price_krw" in check.log


def test_a_float_amount_cannot_even_be_signed(cars: LocalChain) -> None:
    with pytest.raises(LocalError, match="float is not allowed"):
        cars.make_tx(DEALER, service="vehicle", method="list_for_sale",
                     args={"vin": KOREAN_VIN, "price_krw": 1.5})


def test_the_largest_amount_is_accepted(cars: LocalChain) -> None:
    register(cars)
    assert send(cars, DEALER, "list_for_sale", vin=KOREAN_VIN,
                price_krw=2**63 - 1).code == ResultCode.OK


def test_personal_data_in_a_description_is_refused(cars: LocalChain) -> None:
    register(cars)
    tx = cars.make_tx(REPAIRER, service="vehicle", method="repair",
                      args={"vin": KOREAN_VIN, "accident": True,
                            "description": "owner reachable at 010-1234-5678"})
    check = cars.engine.check_tx(tx.encode())
    assert check.code == ResultCode.BAD_ARGS
    assert "description: holds what looks like a phone number" in check.log


OPERATIONS = st.lists(st.tuples(st.sampled_from(["inspect", "replace_meter"]),
                                st.integers(0, 2_000), st.integers(0, 2_000)),
                      min_size=1, max_size=8)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_odometer_readings_never_go_back_between_meter_replacements(
        cars: LocalChain, operations: list[tuple[str, int, int]]) -> None:
    """Property: a reading is accepted exactly when it is not below the last one (a
    replacement's old reading included); the history holds exactly the accepted entries."""
    vin = fresh_vin()
    register(cars, vin=vin)
    txs_sent, expected, last_km = [], [], 0
    for method, first_km, second_km in operations:
        if method == "inspect":
            args = {"odometer_km": first_km, "result": "pass"}
        else:
            args = {"old_meter_km": first_km, "new_meter_km": second_km}
        txs_sent.append(cars.make_tx(INSPECTOR, service="vehicle", method=method,
                                     args={"vin": vin, **args}))
        accepted = first_km >= last_km
        expected.append(accepted)
        if accepted:
            last_km = first_km if method == "inspect" else second_km
    results = cars.commit(*txs_sent).execution.results
    assert [result.code == ResultCode.OK for result in results] == expected
    found = history(cars, vin)
    assert found["vehicle"]["odometer_km"] == last_km
    assert len(found["entries"]) == 1 + sum(expected)
    assert found["vehicle"]["history_digest"] == compute_history_digest(found["entries"])


def test_a_proven_record_commits_to_the_whole_history_offline(cars: LocalChain) -> None:
    register(cars)
    send(cars, INSPECTOR, "inspect", vin=KOREAN_VIN, odometer_km=7_000, result="pass")
    send(cars, REPAIRER, "repair", vin=KOREAN_VIN, accident=True, description="door")
    cars.commit()  # the state root of a block is certified by the next block's commit
    bundle = build_state_bundle(StoreProofSource(cars.genesis, cars.store), cars.genesis,
                                "vehicle", b"vin/" + KOREAN_VIN.encode())
    statement = verify_bundle(json.loads(json.dumps(bundle)), cars.genesis)
    record = cbor.decode(bytes.fromhex(statement.facts["value"]))
    entries = history(cars)["entries"]
    assert record["entries"] == len(entries) == 3
    assert record["history_digest"] == compute_history_digest(entries)
    # An entry left out, or one altered, no longer matches the proven digest.
    assert record["history_digest"] != compute_history_digest(entries[:2])
    assert record["history_digest"] != compute_history_digest(
        [*entries[:2], {**entries[2], "kind": "repair"}])


RUNNER = CliRunner()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A one-agency node (k = 1) reached by the CLI in-process."""
    running = Node(init_home(tmp_path / "home", chain_id="vehicle-cli", api_port=free_port()))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    monkeypatch.setattr(txs, "open_client", open_client)
    monkeypatch.setattr(gov_cli, "open_client", open_client)
    yield running
    running.close()


def invoke(node: Node, *args: str) -> Any:
    return RUNNER.invoke(app, [*args, "--home", str(node.home.root)])


def test_the_generic_cli_registers_inspects_and_shows_the_history(node: Node) -> None:
    operator = Home(node.home.root).load_key("operator").public_key.hex()
    granted = invoke(node, "gov", "propose", "grant_role", "role=vehicle.registrar",
                     f"public_key={operator}")
    assert granted.exit_code == 0, granted.output
    registered = invoke(node, "tx", "vehicle", "register", f"vin={KOREAN_VIN}",
                        "model=Kia Morning 2019")
    assert registered.exit_code == 0, registered.output
    refused = invoke(node, "tx", "vehicle", "register", "vin=KMHEC41DBIA123456")
    assert refused.exit_code == 1
    assert "without I, O and Q" in " ".join(refused.stderr.split())
    float_price = invoke(node, "tx", "vehicle", "list_for_sale", f"vin={KOREAN_VIN}",
                         "price_krw=1.5")
    assert float_price.exit_code == 1
    assert "price_krw: '1.5' is not an integer" in " ".join(float_price.stderr.split())
    assert invoke(node, "keys", "create", "bob").exit_code == 0
    bob = Home(node.home.root).load_key("bob").public_key.hex()
    offered = invoke(node, "tx", "vehicle", "offer_transfer", f"vin={KOREAN_VIN}",
                     "price_krw=9000000", f"buyer={bob}")
    assert offered.exit_code == 0, offered.output
    accepted = invoke(node, "tx", "vehicle", "accept_transfer", f"vin={KOREAN_VIN}",
                      "--key", "bob")
    assert accepted.exit_code == 0, accepted.output
    shown = invoke(node, "query", "vehicle", "history", f"vin={KOREAN_VIN}", "--json")
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.stdout)["result"]
    assert result["vehicle"]["owner"] == bob
    assert [entry["kind"] for entry in result["entries"]] == [
        "registered", "transfer_offered", "transferred"]
    owned = invoke(node, "query", "vehicle", "owned", f"owner={bob}", "--json")
    assert json.loads(owned.stdout)["result"] == [KOREAN_VIN]
