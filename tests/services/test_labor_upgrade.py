"""Labor 1.0.0 -> 1.1.0: records written before the upgrade get their digests when next written."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.codec import cbor
from seoulchain.crypto import SigningKey
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import Service, load_services
from seoulchain.light.bundle import BundleError, build_labor_bundle, verify_bundle
from seoulchain.node.proofs import StoreProofSource
from seoulchain.services.labor import LaborService, compute_history_digest
from tests.conftest import LocalChain, make_genesis, make_key

EMPLOYER, WORKER = make_key(20), make_key(21)
OLD = hashlib.sha256(b"contract signed under labor 1.0.0").digest()
IDLE = hashlib.sha256(b"contract signed under labor 1.0.0, never written again").digest()
NEW = hashlib.sha256(b"contract signed under labor 1.1.0").digest()


class LaborV10(LaborService):
    """The installed labor code declared as 1.0.0: it runs as 1.0.0 on a chain pinning it."""

    version = "1.0.0"


def services_with(labor: Service) -> dict[str, Service]:
    return {**load_services(), "labor": labor}


@pytest.fixture
def old_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalChain]:
    """A chain whose genesis pins labor 1.0.0, run by nodes that have 1.0.0 installed."""
    services = services_with(LaborV10())
    monkeypatch.setattr(sys.modules[LocalChain.__module__], "load_services", lambda: services)
    validator, issuer = make_key(1), make_key(2)
    genesis = make_genesis(validator, issuer)
    genesis.services["labor"] = "1.0.0"
    local = LocalChain(tmp_path / "old.sqlite", genesis, validator, issuer)
    yield local
    local.store.close()


def send(chain: LocalChain, key: SigningKey, method: str, **args: Any) -> None:
    tx = chain.make_tx(key, service="labor", method=method, args=args)
    result = chain.commit(tx).execution.results[0]
    assert result.code == ResultCode.OK, result.log


def sign_and_work(chain: LocalChain, contract: bytes) -> None:
    send(chain, EMPLOYER, "propose", contract_hash=contract, worker=WORKER.public_key,
         hourly_wage_krw=10_320, start_date="2026-01-05")
    send(chain, WORKER, "accept", contract_hash=contract)
    send(chain, EMPLOYER, "record_work", contract_hash=contract, period_start="2026-01-05",
         period_end="2026-01-11", minutes=600)


def upgrade(chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> int:
    """Schedule labor 1.1.0 by governance, install it ahead, and run to its height."""
    height = chain.engine.height + 3
    proposal = chain.make_tx(service="gov", method="propose", args={
        "kind": "upgrade", "deadline_height": chain.engine.height + 10, "service": "labor",
        "version": LaborService.version, "height": height})
    assert chain.commit(proposal).execution.results[0].code == ResultCode.OK
    services = services_with(LaborService())
    monkeypatch.setattr(sys.modules[LocalChain.__module__], "load_services", lambda: services)
    chain.reopen()
    while chain.engine.height < height:
        chain.commit()
    return height


def query(chain: LocalChain, name: str, **args: Any) -> Any:
    return chain.engine.query("labor", name, args)


def get_raw(chain: LocalChain, key: str) -> Any:
    return chain.engine.get_state_proof("labor", key.encode()).value


def test_before_the_upgrade_height_the_new_code_writes_what_1_0_0_wrote(
        old_chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_and_work(old_chain, OLD)
    services = services_with(LaborService())
    height = old_chain.engine.height + 20
    proposal = old_chain.make_tx(service="gov", method="propose", args={
        "kind": "upgrade", "deadline_height": old_chain.engine.height + 10,
        "service": "labor", "version": LaborService.version, "height": height})
    assert old_chain.commit(proposal).execution.results[0].code == ResultCode.OK
    monkeypatch.setattr(sys.modules[LocalChain.__module__], "load_services", lambda: services)
    old_chain.reopen()  # 1.1.0 installed ahead of its height
    sign_and_work(old_chain, NEW)
    assert "work_digest" not in query(old_chain, "contract", contract_hash=NEW.hex())
    assert query(old_chain, "history", party=WORKER.public_key.hex())["contracts_total"] == 2
    assert cbor.decode(get_raw(old_chain, f"party/{WORKER.public_key.hex()}")) == 2


def test_a_contract_of_1_0_0_gets_its_digests_when_next_written_and_is_then_provable(
        old_chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_and_work(old_chain, OLD)
    sign_and_work(old_chain, IDLE)
    upgrade(old_chain, monkeypatch)
    assert "work_digest" not in query(old_chain, "contract", contract_hash=OLD.hex())
    source = StoreProofSource(old_chain.genesis, old_chain.store)
    with pytest.raises(BundleError, match=r"bare count written by labor 1\.0\.0"):
        build_labor_bundle(source, old_chain.genesis, WORKER.public_key)
    # The next write of the contract chains its stored entries and both parties' lists.
    send(old_chain, EMPLOYER, "record_payment", contract_hash=OLD, amount_krw=103_200,
         period_start="2026-01-05", period_end="2026-01-11")
    contract = query(old_chain, "contract", contract_hash=OLD.hex())
    work = query(old_chain, "records", contract_hash=OLD.hex(), kind="work")["entries"]
    stored = [{name: entry[name] for name in entry if name not in ("number", "key")}
              for entry in work]
    assert contract["work_digest"] == compute_history_digest(stored)
    assert contract["amendments_digest"] == compute_history_digest([])
    history = query(old_chain, "history", party=WORKER.public_key.hex())
    assert history["contracts_total"] == 2
    # The other contract of 1.0.0 has not been written since: it is named as unprovable.
    old_chain.commit()
    with pytest.raises(BundleError, match=r"contract 2 was written by labor 1\.0\.0 and not "
                                          "since the upgrade"):
        build_labor_bundle(source, old_chain.genesis, WORKER.public_key)
    send(old_chain, EMPLOYER, "end", contract_hash=IDLE, end_date="2026-01-31")
    sign_and_work(old_chain, NEW)
    old_chain.commit()
    bundle = json.loads(json.dumps(build_labor_bundle(source, old_chain.genesis,
                                                      WORKER.public_key)))
    statement = verify_bundle(bundle, old_chain.genesis)
    assert statement.text.splitlines()[0].endswith("): 3 contracts")
    assert [contract["contract_hash"] for contract in statement.facts["contracts"]] == [
        OLD.hex(), IDLE.hex(), NEW.hex()]


def labor_entries(chain: LocalChain) -> list[tuple[bytes, Any]]:
    """The labor namespace's committed entries as the audit hands them to the service."""
    return [(key[len(b"labor/"):], cbor.decode(value))
            for key, value in chain.store.iter_state() if key.startswith(b"labor/")]


def test_the_audit_names_a_record_whose_digest_is_not_its_entries(
        old_chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_and_work(old_chain, OLD)
    upgrade(old_chain, monkeypatch)
    send(old_chain, EMPLOYER, "record_payment", contract_hash=OLD, amount_krw=103_200,
         period_start="2026-01-05", period_end="2026-01-11")
    service = LaborService()
    entries = labor_entries(old_chain)
    assert service.check_invariants(entries) == []
    work_key = f"contract/{OLD.hex()}/work/1".encode()
    party_key = f"party/{WORKER.public_key.hex()}/1".encode()
    altered = [(key, {**value, "minutes": 6_000} if key == work_key else
                {**value, "role": "employer"} if key == party_key else value)
               for key, value in entries]
    assert service.check_invariants(altered) == [
        f"contract/{OLD.hex()}: work_digest is not the digest of its work entries",
        f"party/{WORKER.public_key.hex()}: contracts_digest is not the digest of its list "
        "entries"]
