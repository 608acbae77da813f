"""Verifiable credentials service: issuers, anchors, status lists, and every refusal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.codec import decode
from seoulchain.execution.results import TxResult
from seoulchain.services.vc import CHUNK_ENTRIES, VcService, compute_chunk_key
from tests.conftest import LocalChain
from tests.services.gov_helpers import propose
from tests.services.vc_helpers import (
    AGENCY,
    HOLDER,
    LIST_SIZE,
    RESIDENCY_ROLE,
    STRANGER,
    create_did,
    make_vc_chain,
    send,
    set_up_issuer,
)


@pytest.fixture
def vc_chain(tmp_path: Path) -> Iterator[LocalChain]:
    chain = make_vc_chain(tmp_path / "vc.sqlite")
    yield chain
    chain.store.close()


def outcome(result: TxResult) -> str:
    return f"{result.code.name}: {result.log}"


def issue(chain: LocalChain, did: str, credential_hash: bytes | None = None,
          key: Any = AGENCY, **extra: Any) -> TxResult:
    args: dict[str, Any] = {"credential_hash": credential_hash or os.urandom(32),
                            "type": "residency", "issuer": did,
                            "status": [{"list_id": "residency-1", "index": 7}], **extra}
    return send(chain, key, "vc", "issue", **args)


def set_status(chain: LocalChain, index: int, value: bool, list_id: str = "residency-1",
               key: Any = AGENCY) -> TxResult:
    return send(chain, key, "vc", "set_status", list_id=list_id, index=index, value=value)


def test_an_issued_credential_is_anchored_with_its_issuance_height(
        vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    credential_hash = os.urandom(32)
    result = issue(vc_chain, did, credential_hash)
    assert result.ok, result.log
    anchor = vc_chain.engine.query("vc", "anchor", {"hash": credential_hash.hex()})
    assert anchor["height"] == vc_chain.engine.height
    assert (anchor["type"], anchor["issuer"], anchor["signer"]) == \
        ("residency", did, AGENCY.public_key)
    assert anchor["status"] == [{"list_id": "residency-1", "index": 7,
                                 "purpose": "revocation"}]
    issuer = vc_chain.engine.query("vc", "issuer", {"did": did})
    assert issuer["types"]["residency"]["key"] == AGENCY.public_key
    assert vc_chain.engine.query("vc", "anchor", {"hash": "00" * 32}) is None


def test_an_issuer_without_the_role_is_refused(vc_chain: LocalChain) -> None:
    did = create_did(vc_chain, STRANGER)
    result = send(vc_chain, STRANGER, "vc", "register_issuer", did=did, type="residency")
    assert "does not hold vc.issuer.residency" in outcome(result)
    agency_did = set_up_issuer(vc_chain)
    assert "does not hold vc.issuer.residency" in outcome(
        issue(vc_chain, agency_did, key=STRANGER))


def test_an_issuer_whose_role_was_revoked_cannot_issue_any_more(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    assert issue(vc_chain, did).ok
    revoked = propose(vc_chain, vc_chain.issuer, "revoke_role", role=RESIDENCY_ROLE,
                      public_key=AGENCY.public_key)
    assert revoked.ok, revoked.log
    result = issue(vc_chain, did)
    assert f"does not hold vc.issuer.residency at height {vc_chain.engine.height}" in \
        outcome(result)


def test_an_issuer_of_another_type_or_unregistered_did_is_refused(
        vc_chain: LocalChain) -> None:
    did = create_did(vc_chain, AGENCY)
    assert "not a registered issuer of residency" in outcome(issue(vc_chain, did))
    result = send(vc_chain, AGENCY, "vc", "register_issuer", did=did, type="training")
    assert "does not hold vc.issuer.training" in outcome(result)


def test_registering_a_did_the_signer_has_no_key_of_is_refused(vc_chain: LocalChain) -> None:
    holder_did = create_did(vc_chain, HOLDER)
    result = send(vc_chain, AGENCY, "vc", "register_issuer", did=holder_did, type="residency")
    assert f"not a current authentication key of {holder_did}" in outcome(result)
    result = send(vc_chain, AGENCY, "vc", "register_issuer", did="did:seoul:" + "1" * 22,
                  type="residency")
    assert "does not exist" in outcome(result)


def test_a_credential_is_anchored_once_and_an_index_given_once(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    credential_hash = os.urandom(32)
    assert issue(vc_chain, did, credential_hash).ok
    assert "already anchored" in outcome(issue(vc_chain, did, credential_hash))
    assert "index 7 of 'residency-1' is already assigned" in outcome(issue(vc_chain, did))
    answer = vc_chain.engine.query("vc", "status", {"list_id": "residency-1", "index": 7})
    assert answer["credential"] == credential_hash


def test_issue_refuses_an_unknown_list_and_an_index_out_of_range(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    result = issue(vc_chain, did, status=[{"list_id": "nope", "index": 1}])
    assert "status list 'nope' does not exist" in outcome(result)
    result = issue(vc_chain, did, status=[{"list_id": "residency-1", "index": LIST_SIZE}])
    assert f"index {LIST_SIZE} is outside status list" in outcome(result)


def test_status_changes_refuse_unknown_list_range_and_wrong_signer(
        vc_chain: LocalChain) -> None:
    set_up_issuer(vc_chain)
    assert "does not exist" in outcome(set_status(vc_chain, 1, True, list_id="nope"))
    assert "outside status list" in outcome(set_status(vc_chain, LIST_SIZE, True))
    result = set_status(vc_chain, 1, True, key=STRANGER)
    assert "not a current authentication key" in outcome(result)
    assert vc_chain.engine.query("vc", "status", {"list_id": "residency-1",
                                                  "index": 1})["set"] is False


def test_a_revocation_is_final(vc_chain: LocalChain) -> None:
    set_up_issuer(vc_chain)
    assert set_status(vc_chain, 9, True).ok
    height = vc_chain.engine.height
    assert "revocation is final" in outcome(set_status(vc_chain, 9, False))
    assert "already set" in outcome(set_status(vc_chain, 9, True))
    answer = vc_chain.engine.query("vc", "status", {"list_id": "residency-1", "index": "9"})
    assert answer["set"] is True and answer["set_height"] == height


def test_a_suspension_can_be_lifted(vc_chain: LocalChain) -> None:
    set_up_issuer(vc_chain, list_id="hold-1", purpose="suspension")
    assert "is not set" in outcome(set_status(vc_chain, 5, False, list_id="hold-1"))
    assert set_status(vc_chain, 5, True, list_id="hold-1").ok
    assert vc_chain.engine.query("vc", "status", {"list_id": "hold-1", "index": 5})["set"]
    assert set_status(vc_chain, 5, False, list_id="hold-1").ok
    assert not vc_chain.engine.query("vc", "status", {"list_id": "hold-1", "index": 5})["set"]


def test_the_list_keeps_set_bits_in_small_chunks_and_anchors_its_credential(
        vc_chain: LocalChain) -> None:
    set_up_issuer(vc_chain)
    for index in (3, CHUNK_ENTRIES + 1, LIST_SIZE - 1):
        assert set_status(vc_chain, index, True).ok
    chunk = vc_chain.engine.state.get_state(b"vc/" + compute_chunk_key("residency-1", 3))
    assert chunk is not None and len(chunk) < 64
    digest = os.urandom(32)
    result = send(vc_chain, AGENCY, "vc", "anchor_status_list", list_id="residency-1",
                  sha256=digest)
    assert result.ok, result.log
    listing = vc_chain.engine.query("vc", "status_list", {"list_id": "residency-1"})
    assert listing["set_indices"] == [3, CHUNK_ENTRIES + 1, LIST_SIZE - 1]
    assert listing["purpose"] == "revocation" and listing["size"] == LIST_SIZE
    assert listing["anchor"]["sha256"] == digest and listing["anchor"]["current"] is True
    assert set_status(vc_chain, 4, True).ok
    listing = vc_chain.engine.query("vc", "status_list", {"list_id": "residency-1"})
    assert listing["anchor"]["current"] is False


def test_status_lists_are_created_by_registered_issuers_only(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    result = send(vc_chain, AGENCY, "vc", "create_status_list", list_id="residency-1",
                  issuer=did, purpose="revocation", size=LIST_SIZE)
    assert "already exists" in outcome(result)
    holder_did = create_did(vc_chain, HOLDER)
    result = send(vc_chain, HOLDER, "vc", "create_status_list", list_id="mine", issuer=holder_did,
                  purpose="revocation", size=LIST_SIZE)
    assert "not a registered issuer" in outcome(result)
    result = send(vc_chain, STRANGER, "vc", "anchor_status_list", list_id="residency-1",
                  sha256=os.urandom(32))
    assert "not a current authentication key" in outcome(result)


def test_a_list_smaller_than_the_w3c_minimum_is_refused(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    tx = vc_chain.make_tx(AGENCY, service="vc", method="create_status_list",
                          args={"list_id": "tiny", "issuer": did, "purpose": "revocation",
                                "size": 1024})
    check = vc_chain.engine.check_tx(tx.encode())
    assert not check.ok and "size" in check.log


def test_a_role_holder_cannot_issue_for_a_did_it_has_no_key_of(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    granted = propose(vc_chain, vc_chain.issuer, "grant_role", role=RESIDENCY_ROLE,
                      public_key=STRANGER.public_key)
    assert granted.ok, granted.log
    assert f"not a current authentication key of {did}" in outcome(
        issue(vc_chain, did, key=STRANGER))


def vc_entries(chain: LocalChain) -> list[tuple[bytes, Any]]:
    """Return the vc namespace's committed entries, keys without the namespace, in order."""
    return [(key[len(b"vc/"):], decode(value)) for key, value in chain.store.iter_state()
            if key.startswith(b"vc/")]


def test_the_audit_invariants_hold_and_catch_a_miscount(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    assert issue(vc_chain, did).ok
    for index in (7, 9, CHUNK_ENTRIES + 2):
        assert set_status(vc_chain, index, True).ok
    entries = vc_entries(vc_chain)
    service = VcService()
    assert service.check_invariants(entries) == []
    miscounted = [(key, {**value, "set_count": 2}) if key == b"list/residency-1" else
                  (key, value) for key, value in entries]
    assert service.check_invariants(miscounted) == [
        "status list 'residency-1': 3 bits are set but set_count says 2"]
    orphan = [*entries, (b"slot/residency-1/" + (5).to_bytes(4, "big"), os.urandom(32))]
    assert "whose anchor does not list it" in service.check_invariants(orphan)[0]


def test_a_list_id_holding_a_phone_number_is_refused(vc_chain: LocalChain) -> None:
    did = set_up_issuer(vc_chain)
    tx = vc_chain.make_tx(AGENCY, service="vc", method="create_status_list",
                          args={"list_id": "010-1234-5678", "issuer": did,
                                "purpose": "revocation", "size": LIST_SIZE})
    check = vc_chain.engine.check_tx(tx.encode())
    assert not check.ok and "phone number" in check.log
