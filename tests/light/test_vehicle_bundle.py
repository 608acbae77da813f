"""Vehicle history bundles: built from a chain, verified offline, and every tampering caught."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from seoulchain.codec import cbor
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.results import TxResult
from seoulchain.light.bundle import (
    BundleError,
    build_vehicle_bundle,
    decode_b64,
    encode_b64,
    verify_bundle,
)
from seoulchain.node.proofs import StoreProofSource
from seoulchain.proofs import StateProof
from seoulchain.services.vehicle import compute_vehicle_key
from tests.conftest import LocalChain, make_genesis, make_key

KOREAN_VIN = "KMHEC41DBFA123456"
INSPECTOR, REPAIRER, DEALER = make_key(3), make_key(4), make_key(5)
ALICE, BOB = make_key(6), make_key(7)
OTHER_VIN = "KMHEC41DBFA654321"


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
    tx = chain.make_tx(key, service="vehicle", method=method, args=args)
    return chain.commit(tx).execution.results[0]


def register(chain: LocalChain, vin: str = KOREAN_VIN, **extra: Any) -> None:
    result = send(chain, None, "register", vin=vin, owner=ALICE.public_key, **extra)
    assert result.code == 0, result.log


def build_history(cars: LocalChain) -> None:
    """Register a car and give it an inspection, an accident, a sale and a scrapping."""
    register(cars, odometer_km=12, model="Hyundai Sonata 2015")
    steps = [
        (INSPECTOR, "inspect", {"odometer_km": 40_000, "result": "pass"}),
        (REPAIRER, "repair", {"accident": True, "description": "front bumper collision",
                              "odometer_km": 41_000}),
        (DEALER, "list_for_sale", {"price_krw": 9_500_000}),
        (ALICE, "offer_transfer", {"buyer": BOB.public_key, "price_krw": 9_000_000}),
        (BOB, "accept_transfer", {}),
        (BOB, "scrap", {}),
    ]
    for key, method, args in steps:
        assert send(cars, key, method, vin=KOREAN_VIN, **args).code == 0
    cars.commit()  # a block's state root is certified by the next block's commit


def vehicle_bundle(cars: LocalChain, vin: str = KOREAN_VIN) -> dict[str, Any]:
    source = StoreProofSource(cars.genesis, cars.store)
    return json.loads(json.dumps(build_vehicle_bundle(source, cars.genesis, vin)))


def test_vehicle_bundle_proves_the_whole_history_in_plain_words(
        cars: LocalChain) -> None:
    build_history(cars)
    statement = verify_bundle(vehicle_bundle(cars, KOREAN_VIN.lower()), cars.genesis)
    lines = statement.text.splitlines()
    assert statement.kind == "vehicle" and statement.facts["status"] == "scrapped"
    assert lines[0].startswith(f'vehicle {KOREAN_VIN} (model "Hyundai Sonata 2015"), as of '
                               f"height {statement.height}")
    assert "7 history entries" in lines[0]
    assert len(lines) == 8
    assert "registered to owner ed25519 " + ALICE.public_key.hex() + " at 12 km" in lines[1]
    assert 'inspection "pass" at 40000 km' in lines[2]
    assert 'accident: "front bumper collision" at 41000 km' in lines[3]
    assert "listed for sale for 9500000 KRW" in lines[4]
    assert "transfer offered by" in lines[5]
    assert (f"sold by ed25519 {ALICE.public_key.hex()} to ed25519 {BOB.public_key.hex()} "
            "for 9000000 KRW") in lines[6]
    assert "scrapped (last owner ed25519 " + BOB.public_key.hex() in lines[7]
    assert [entry["seq"] for entry in statement.facts["entries"]] == list(range(1, 8))


def test_unregistered_vehicle_is_proven_absent(cars: LocalChain) -> None:
    build_history(cars)
    statement = verify_bundle(vehicle_bundle(cars, OTHER_VIN), cars.genesis)
    assert statement.text.startswith(f"vehicle {OTHER_VIN} was not registered as of height")
    assert statement.facts["registered"] is False


def test_builder_refuses_a_malformed_vin(cars: LocalChain) -> None:
    with pytest.raises(LocalError, match="not a VIN: a VIN has 17 characters"):
        vehicle_bundle(cars, "KMH")


def tampered(bundle: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(bundle)
    change(copied["proof"])
    return copied


def change_entry(claim: dict[str, Any]) -> None:
    entry = cbor.decode(decode_b64(claim["entries"][1], "entry", 1 << 16))
    claim["entries"][1] = encode_b64(cbor.encode({**entry, "odometer_km": 4_000}))


@pytest.mark.parametrize(("name", "change", "message"), [
    ("changed history entry", change_entry, "do not chain to the record's history_digest"),
    ("dropped entry", lambda claim: claim["entries"].pop(3),
     "the record counts 7 history entries, the claim carries 6"),
    ("reordered entries", lambda claim: claim["entries"].reverse(),
     "history entry 1 is not a vehicle history entry numbered 1"),
    ("wrong VIN", lambda claim: claim.update(vin=OTHER_VIN),
     "key_hash is not SHA-256 of the claim's state key"),
    ("record dropped (absence claimed)", lambda claim: claim.update(record=None),
     "the proof"),
])
def test_tampered_vehicle_bundle_fails_at_the_proof_step(
        cars: LocalChain, name: str, change: Any, message: str) -> None:
    build_history(cars)
    bundle = vehicle_bundle(cars)
    with pytest.raises(BundleError, match=message) as caught:
        verify_bundle(tampered(bundle, change), cars.genesis)
    assert caught.value.step.startswith("proof against header"), name


def test_wrong_vin_with_its_key_hash_still_fails(cars: LocalChain) -> None:
    build_history(cars)
    register(cars, vin=OTHER_VIN)
    cars.commit()
    bundle = vehicle_bundle(cars)
    other = vehicle_bundle(cars, OTHER_VIN)
    # The other car's key and key hash with this car's record and proof.
    forged = tampered(bundle, lambda claim: claim.update(
        vin=OTHER_VIN, key_hash=other["proof"]["key_hash"]))
    with pytest.raises(BundleError, match="proof against header"):
        verify_bundle(forged, cars.genesis)


class LyingSource(StoreProofSource):
    """A node that alters what it serves: one history entry, or the vehicle's record."""

    def __init__(self, cars: LocalChain, lie_about: str):
        super().__init__(cars.genesis, cars.store)
        self.lie_about = lie_about

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        proof = super().get_state_proof(namespace, key)
        if self.lie_about == "entry" and key.endswith(b"/00000002"):
            entry = cbor.decode(proof.value)
            return replace(proof, value=cbor.encode({**entry, "result": "fail"}))
        if self.lie_about == "record" and key == compute_vehicle_key(KOREAN_VIN):
            record = cbor.decode(proof.value)
            return replace(proof, value=cbor.encode({**record, "status": "active"}))
        return proof


@pytest.mark.parametrize(("lie_about", "message"), [
    ("entry", "do not chain to the record's history_digest"),
    ("record", "the proof's leaf holds value hash"),
])
def test_builder_refuses_a_lying_source(cars: LocalChain, lie_about: str,
                                        message: str) -> None:
    build_history(cars)
    with pytest.raises(BundleError, match=message) as caught:
        build_vehicle_bundle(LyingSource(cars, lie_about), cars.genesis, KOREAN_VIN)
    assert caught.value.step.startswith("proof against header")
