"""Labor history bundles: a worker's contracts and records proven at one height, offline."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from seoulchain.codec import cbor
from seoulchain.crypto import SigningKey
from seoulchain.light.bundle import (
    BundleError,
    build_labor_bundle,
    decode_b64,
    encode_b64,
    verify_bundle,
)
from seoulchain.node.proofs import StoreProofSource
from seoulchain.proofs import StateProof
from tests.conftest import LocalChain, make_genesis, make_key

EMPLOYER, WORKER, OTHER_WORKER = make_key(20), make_key(21), make_key(23)
CAFE = hashlib.sha256(b"part-time contract, cafe").digest()
LIBRARY = hashlib.sha256(b"part-time contract, library").digest()
AMENDED = hashlib.sha256(b"cafe contract, amended wage").digest()
OTHERS = hashlib.sha256(b"part-time contract, another worker").digest()


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[LocalChain]:
    validator, issuer = make_key(1), make_key(2)
    local = LocalChain(tmp_path / "jobs.sqlite", make_genesis(validator, issuer), validator,
                       issuer)
    yield local
    local.store.close()


def send(chain: LocalChain, key: SigningKey, method: str, **args: Any) -> None:
    tx = chain.make_tx(key, service="labor", method=method, args=args)
    result = chain.commit(tx).execution.results[0]
    assert result.code == 0, result.log


def sign(chain: LocalChain, contract: bytes, worker: SigningKey = WORKER,
         wage: int = 10_320, start: str = "2026-01-05") -> None:
    send(chain, EMPLOYER, "propose", contract_hash=contract, worker=worker.public_key,
         hourly_wage_krw=wage, start_date=start)
    send(chain, worker, "accept", contract_hash=contract)


def work(chain: LocalChain, contract: bytes, start: str, end: str, minutes: int) -> None:
    send(chain, EMPLOYER, "record_work", contract_hash=contract, period_start=start,
         period_end=end, minutes=minutes)


def build_history(chain: LocalChain) -> None:
    """Two contracts for the worker (one amended and ended), one for another worker."""
    sign(chain, CAFE)
    work(chain, CAFE, "2026-01-05", "2026-01-11", 600)
    send(chain, EMPLOYER, "record_payment", contract_hash=CAFE, amount_krw=103_200,
         period_start="2026-01-05", period_end="2026-01-11")
    send(chain, EMPLOYER, "propose_amendment", contract_hash=CAFE, document_hash=AMENDED,
         hourly_wage_krw=11_000)
    send(chain, WORKER, "accept_amendment", contract_hash=CAFE, amendment=1)
    work(chain, CAFE, "2026-01-12", "2026-01-18", 60)
    send(chain, WORKER, "end", contract_hash=CAFE, end_date="2026-01-31")
    sign(chain, OTHERS, worker=OTHER_WORKER)
    work(chain, OTHERS, "2026-01-05", "2026-01-06", 120)
    sign(chain, LIBRARY, start="2026-02-02")
    work(chain, LIBRARY, "2026-02-02", "2026-02-08", 1_200)
    chain.commit()  # a block's state root is certified by the next block's commit


def labor_bundle(chain: LocalChain, party: bytes = WORKER.public_key,
                 source: StoreProofSource | None = None) -> dict[str, Any]:
    source = source or StoreProofSource(chain.genesis, chain.store)
    return json.loads(json.dumps(build_labor_bundle(source, chain.genesis, party)))


def test_labor_bundle_proves_a_workers_contracts_and_records_in_plain_words(
        jobs: LocalChain) -> None:
    build_history(jobs)
    statement = verify_bundle(labor_bundle(jobs), jobs.genesis)
    lines = statement.text.splitlines()
    worker, employer = WORKER.public_key.hex(), EMPLOYER.public_key.hex()
    assert lines[0] == (f"labor history of ed25519 {worker}, as of height {statement.height} "
                        f"(time {lines[0].split('(time ')[1]}")
    assert lines[0].endswith("): 2 contracts")
    assert lines[1].startswith(f"contract sha256:{CAFE.hex()} as worker (employer ed25519 "
                               f"{employer}, worker ed25519 {worker}): ended, from "
                               "2026-01-05 to 2026-01-31, 11000 KRW an hour (document "
                               f"sha256:{AMENDED.hex()}), proposed at height 1")
    assert lines[1].endswith("; 2 work periods, 660 minutes, 114200 KRW due, "
                             "103200 KRW paid")
    assert ", signed by the worker at height 2 (transaction sha256:" in lines[1]
    assert lines[2].startswith("  amendment #1 by the employer at height 5: 11000 KRW an "
                               f"hour (document sha256:{AMENDED.hex()}), in force from "
                               "height 6")
    assert lines[3] == ("  work #1 2026-01-05 to 2026-01-11: 600 minutes at 10320 KRW an "
                        "hour, 103200 KRW due (height 3)")
    assert lines[4] == ("  work #2 2026-01-12 to 2026-01-18: 60 minutes at 11000 KRW an "
                        "hour, 11000 KRW due (height 7)")
    assert lines[5] == "  payment #1: 103200 KRW for 2026-01-05 to 2026-01-11 (height 4)"
    assert lines[6].startswith(f"contract sha256:{LIBRARY.hex()} as worker")
    assert "in force, from 2026-02-02, 10320 KRW an hour" in lines[6]
    assert lines[7].startswith("  work #1 2026-02-02 to 2026-02-08: 1200 minutes")
    assert len(lines) == 8
    assert [contract["contract_hash"] for contract in statement.facts["contracts"]] == [
        CAFE.hex(), LIBRARY.hex()]


def test_an_employer_is_proven_with_each_contract_it_proposed(jobs: LocalChain) -> None:
    build_history(jobs)
    statement = verify_bundle(labor_bundle(jobs, EMPLOYER.public_key), jobs.genesis)
    assert statement.text.splitlines()[0].endswith("): 3 contracts")
    assert [contract["role"] for contract in statement.facts["contracts"]] == ["employer"] * 3


def test_a_key_party_to_no_contract_is_proven_so(jobs: LocalChain) -> None:
    build_history(jobs)
    stranger = make_key(30).public_key
    statement = verify_bundle(labor_bundle(jobs, stranger), jobs.genesis)
    assert statement.text.startswith(f"ed25519 {stranger.hex()} was party to no labor "
                                     "contract as of height")
    assert statement.facts["contracts"] == []


def tampered(bundle: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(bundle)
    change(copied["proof"])
    return copied


def change_work(claim: dict[str, Any]) -> None:
    entry = cbor.decode(decode_b64(claim["contracts"][0]["work"][0], "work", 1 << 16))
    claim["contracts"][0]["work"][0] = encode_b64(cbor.encode({**entry, "minutes": 6_000}))


def slip_in(other: dict[str, Any]) -> Any:
    """Add another worker's contract (its list entry and its proven record) to the claim."""
    def change(claim: dict[str, Any]) -> None:
        claim["entries"].append(other["proof"]["entries"][0])
        claim["contracts"].append(other["proof"]["contracts"][0])
    return change


@pytest.mark.parametrize(("name", "change", "message"), [
    ("changed work record", change_work,
     "contract 1's work entries do not chain to its work_digest"),
    ("dropped payment", lambda claim: claim["contracts"][0]["payments"].pop(),
     "contract 1 counts 1 payment entries, the claim carries 0"),
    ("dropped contract", lambda claim: (claim["entries"].pop(), claim["contracts"].pop()),
     "the party's record counts 2 contracts, the claim carries 1"),
    ("reordered contracts", lambda claim: (claim["entries"].reverse(),
                                           claim["contracts"].reverse()),
     "the list entries do not chain to the party's contracts_digest"),
    ("contract record of the list swapped", lambda claim: claim["contracts"].reverse(),
     "contract 1 of the claim is not contract"),
    ("party changed", lambda claim: claim.update(party=OTHER_WORKER.public_key.hex()),
     "key_hash is not SHA-256 of the claim's state key"),
    ("record dropped (absence claimed)", lambda claim: claim.update(record=None),
     "the proof"),
])
def test_tampered_labor_bundle_fails_at_the_proof_step(
        jobs: LocalChain, name: str, change: Any, message: str) -> None:
    build_history(jobs)
    with pytest.raises(BundleError, match=message) as caught:
        verify_bundle(tampered(labor_bundle(jobs), change), jobs.genesis)
    assert caught.value.step.startswith("proof against header"), name


def test_another_workers_contract_slipped_in_fails(jobs: LocalChain) -> None:
    build_history(jobs)
    bundle, other = labor_bundle(jobs), labor_bundle(jobs, OTHER_WORKER.public_key)
    with pytest.raises(BundleError, match="counts 2 contracts, the claim carries 3"):
        verify_bundle(tampered(bundle, slip_in(other)), jobs.genesis)
    # In place of one of the worker's own, with the list entry swapped too: the digest
    # of the list no longer holds.
    def swap(claim: dict[str, Any]) -> None:
        claim["entries"][1] = other["proof"]["entries"][0]
        claim["contracts"][1] = other["proof"]["contracts"][0]
    with pytest.raises(BundleError, match="do not chain to the party's contracts_digest"):
        verify_bundle(tampered(bundle, swap), jobs.genesis)


class LyingSource(StoreProofSource):
    """A node that alters one value it serves: a work record, or a contract's record."""

    def __init__(self, chain: LocalChain, lie_about: str):
        super().__init__(chain.genesis, chain.store)
        self.lie_about = lie_about

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        proof = super().get_state_proof(namespace, key)
        if self.lie_about == "work" and key.endswith(b"/work/1"):
            return replace(proof, value=cbor.encode({**cbor.decode(proof.value),
                                                     "minutes": 6_000}))
        if self.lie_about == "contract" and key == b"contract/" + CAFE.hex().encode():
            return replace(proof, value=cbor.encode({**cbor.decode(proof.value),
                                                     "wages_paid_krw": 114_200}))
        return proof


@pytest.mark.parametrize(("lie_about", "message"), [
    ("work", "work entries do not chain to its work_digest"),
    ("contract", "the proof's leaf holds value hash"),
])
def test_builder_refuses_a_lying_source(jobs: LocalChain, lie_about: str,
                                        message: str) -> None:
    build_history(jobs)
    with pytest.raises(BundleError, match=message) as caught:
        labor_bundle(jobs, source=LyingSource(jobs, lie_about))
    assert caught.value.step.startswith("proof against header")
