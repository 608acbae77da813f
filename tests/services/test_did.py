"""DIDs (did:seoul): create, resolve at any height, rotate, change controller, deactivate,
replace the record commitment, and every refusal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.crypto import SigningKey
from seoulchain.crypto.multikey import decode_multikey, encode_multikey
from seoulchain.execution.results import TxResult
from seoulchain.services.did import (
    COMMITMENTS_PER_DID_MAX,
    KEYS_PER_DID_MAX,
    VERSIONS_PER_DID_MAX,
    DidKeyError,
    compute_did,
    find_verification_key,
    format_xml_datetime,
    parse_did,
)
from tests.conftest import LocalChain, make_genesis, make_key

REGISTRAR = "did.registrar"
SUBJECT, OTHER, STRANGER = make_key(20), make_key(21), make_key(22)
NEW_KEY, NEWER_KEY = make_key(23), make_key(24)


@pytest.fixture
def dids(tmp_path: Path) -> Iterator[LocalChain]:
    """A one-validator chain where key 2 is a DID registrar."""
    validator, registrar = make_key(1), make_key(2)
    genesis = make_genesis(validator, registrar)
    genesis.roles[REGISTRAR] = (registrar.public_key,)
    chain = LocalChain(tmp_path / "did.sqlite", genesis, validator, registrar)
    yield chain
    chain.store.close()


def send(chain: LocalChain, method: str, key: SigningKey | None = None,
         **args: Any) -> TxResult:
    tx = chain.make_tx(key, service="did", method=method, args=args)
    return chain.commit(tx).execution.results[0]


def admit(chain: LocalChain, method: str, key: SigningKey | None = None,
          **args: Any) -> str:
    """Return the mempool's verdict on a DID transaction (nothing is committed)."""
    signer = key or chain.issuer
    nonce = chain.nonces.get(signer.public_key, 0) + 1
    raw = chain.make_tx(signer, service="did", method=method, args=args, nonce=nonce).encode()
    result = chain.engine.check_tx(raw)
    return f"{result.code.name}: {result.log}"


def outcome(result: TxResult) -> str:
    return f"{result.code.name}: {result.log}"


def create(chain: LocalChain, subject: SigningKey = SUBJECT, **extra: Any) -> str:
    """Create a DID for `subject` (signed by the registrar); return it."""
    tx = chain.make_tx(service="did", method="create",
                       args={"public_key": subject.public_key,
                             "record_commitment": os.urandom(32), **extra})
    result = chain.commit(tx).execution.results[0]
    assert result.ok, result.log
    did = str(result.events[0].attributes["did"])
    assert did == compute_did(tx.hash())
    return did


def resolve(chain: LocalChain, did: str, height: int | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"did": did}
    if height is not None:
        args["height"] = str(height)  # as the HTTP API passes it
    return chain.engine.query("did", "resolve", args)


def key_ids(answer: dict[str, Any]) -> list[str]:
    return [method["id"] for method in answer["didDocument"]["verificationMethod"]]


def test_create_resolves_to_a_did_core_document_with_the_subject_key(dids: LocalChain) -> None:
    did = create(dids)
    assert parse_did(did) is not None and 16 <= len(did.removeprefix("did:seoul:")) <= 22
    answer = resolve(dids, did)
    key_id = f"{did}#key-1"
    assert answer["didDocument"] == {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did, "controller": did,
        "verificationMethod": [{"id": key_id, "type": "Multikey", "controller": did,
                                "publicKeyMultibase": encode_multikey(SUBJECT.public_key)}],
        "authentication": [key_id], "assertionMethod": [key_id]}
    height = dids.engine.height
    assert answer["didDocumentMetadata"] == {
        "created": format_xml_datetime(dids.clock_ms), "createdHeight": height,
        "deactivated": False, "versionId": "1"}
    assert answer["didResolutionMetadata"] == {"contentType": "application/did+ld+json"}
    document = answer["didDocument"]
    assert find_verification_key(document, key_id, "assertionMethod") == SUBJECT.public_key
    assert find_verification_key(document, key_id, "authentication") == SUBJECT.public_key


def test_times_are_xml_datetimes_in_utc_without_fractions() -> None:
    assert format_xml_datetime(1_700_000_000_999) == "2023-11-14T22:13:20Z"
    assert format_xml_datetime(0) == "1970-01-01T00:00:00Z"


def test_resolve_at_heights_before_and_after_a_rotation(dids: LocalChain) -> None:
    did = create(dids)
    created_at = dids.engine.height
    create(dids, OTHER)  # another height passes
    result = send(dids, "rotate", SUBJECT, did=did, new_public_key=NEW_KEY.public_key,
                  retire_key_id="key-1")
    assert outcome(result).startswith("OK")
    rotated_at = dids.engine.height
    before = resolve(dids, did, created_at)
    assert key_ids(before) == [f"{did}#key-1"]
    meta = before["didDocumentMetadata"]
    assert meta["versionId"] == "1" and meta["nextVersionId"] == "2"
    assert meta["nextUpdateHeight"] == rotated_at and "updated" not in meta
    assert key_ids(resolve(dids, did, rotated_at - 1)) == [f"{did}#key-1"]
    for answer in (resolve(dids, did, rotated_at), resolve(dids, did),
                   resolve(dids, did, rotated_at + 1000)):
        assert key_ids(answer) == [f"{did}#key-2"]
        meta = answer["didDocumentMetadata"]
        assert meta["versionId"] == "2" and meta["updatedHeight"] == rotated_at
        assert meta["createdHeight"] == created_at and "nextVersionId" not in meta
    latest = resolve(dids, did)["didDocument"]
    assert find_verification_key(latest, f"{did}#key-2", "assertionMethod") == \
        NEW_KEY.public_key
    with pytest.raises(DidKeyError, match="not in the assertionMethod"):
        find_verification_key(latest, f"{did}#key-1", "assertionMethod")
    too_early = resolve(dids, did, created_at - 1)
    assert too_early["didDocument"] is None and too_early["didDocumentMetadata"] == {}
    assert too_early["didResolutionMetadata"]["error"] == "notFound"


def test_a_rotated_away_key_cannot_update_any_more(dids: LocalChain) -> None:
    did = create(dids)
    send(dids, "rotate", SUBJECT, did=did, new_public_key=NEW_KEY.public_key,
         retire_key_id=f"{did}#key-1")
    for method, args in [("rotate", {"new_public_key": NEWER_KEY.public_key}),
                         ("set_controller", {"controller": create(dids, OTHER)}),
                         ("deactivate", {}), ("supersede_record",
                                              {"new_commitment": os.urandom(32),
                                               "reason": "update"})]:
        refused = outcome(send(dids, method, SUBJECT, did=did, **args))
        assert refused.startswith("REFUSED") and "not a current authentication key" in refused
    assert outcome(send(dids, "rotate", NEW_KEY, did=did,
                        new_public_key=NEWER_KEY.public_key)).startswith("OK")
    assert key_ids(resolve(dids, did)) == [f"{did}#key-2", f"{did}#key-3"]


def test_rotate_refusals_and_the_key_limit(dids: LocalChain) -> None:
    did = create(dids)
    by_stranger = outcome(send(dids, "rotate", STRANGER, did=did,
                               new_public_key=NEW_KEY.public_key))
    assert "the signer is not a current authentication key of" in by_stranger
    same = send(dids, "rotate", SUBJECT, did=did, new_public_key=SUBJECT.public_key)
    assert "already in the document" in outcome(same)
    absent = send(dids, "rotate", SUBJECT, did=did, new_public_key=NEW_KEY.public_key,
                  retire_key_id="key-7")
    assert f"{did}#key-7 is not a current key" in outcome(absent)
    garbled = send(dids, "rotate", SUBJECT, did=did, new_public_key=NEW_KEY.public_key,
                   retire_key_id="key-01")
    assert "is not a key id of" in outcome(garbled)
    for index in range(KEYS_PER_DID_MAX - 1):
        added = send(dids, "rotate", SUBJECT, did=did,
                     new_public_key=make_key(100 + index).public_key)
        assert added.ok, added.log
    full = send(dids, "rotate", SUBJECT, did=did, new_public_key=NEW_KEY.public_key)
    assert f"at most {KEYS_PER_DID_MAX} keys" in outcome(full)
    swapped = send(dids, "rotate", SUBJECT, did=did, new_public_key=NEW_KEY.public_key,
                   retire_key_id="key-2")
    assert swapped.ok and len(key_ids(resolve(dids, did))) == KEYS_PER_DID_MAX


def test_controller_change_moves_the_authority_to_the_new_controller(dids: LocalChain
                                                                     ) -> None:
    did, boss = create(dids), create(dids, OTHER)
    assert send(dids, "set_controller", SUBJECT, did=did, controller=boss).ok
    changed_at = dids.engine.height
    answer = resolve(dids, did)
    assert answer["didDocument"]["controller"] == boss
    assert answer["didDocumentMetadata"]["versionId"] == "2"
    assert resolve(dids, did, changed_at - 1)["didDocument"]["controller"] == did
    by_subject = send(dids, "rotate", SUBJECT, did=did, new_public_key=NEW_KEY.public_key)
    assert f"not a current authentication key of {boss}, the controller of {did}" in \
        outcome(by_subject)
    assert send(dids, "rotate", OTHER, did=did, new_public_key=NEW_KEY.public_key).ok
    assert "already controls" in outcome(send(dids, "set_controller", OTHER, did=did,
                                              controller=boss))
    assert send(dids, "set_controller", OTHER, did=did, controller=did).ok
    assert resolve(dids, did)["didDocument"]["controller"] == did


def test_controller_must_exist_and_be_active(dids: LocalChain) -> None:
    did, boss = create(dids), create(dids, OTHER)
    ghost = compute_did(os.urandom(32))
    assert f"the new controller {ghost} does not exist" in outcome(
        send(dids, "set_controller", SUBJECT, did=did, controller=ghost))
    refused = send(dids, "create", public_key=NEW_KEY.public_key,
                   record_commitment=os.urandom(32), controller=ghost)
    assert f"the controller {ghost} does not exist" in outcome(refused)
    governed = create(dids, NEW_KEY, controller=boss)
    assert resolve(dids, governed)["didDocument"]["controller"] == boss
    assert not send(dids, "rotate", NEW_KEY, did=governed,
                    new_public_key=NEWER_KEY.public_key).ok
    assert send(dids, "deactivate", OTHER, did=boss).ok
    frozen = outcome(send(dids, "rotate", OTHER, did=governed,
                          new_public_key=NEWER_KEY.public_key))
    assert f"the controller {boss} was deactivated" in frozen
    assert "was deactivated" in outcome(send(dids, "set_controller", SUBJECT, did=did,
                                             controller=boss))


def test_deactivation_is_final_and_resolution_says_so(dids: LocalChain) -> None:
    did = create(dids)
    assert send(dids, "deactivate", SUBJECT, did=did).ok
    gone_at = dids.engine.height
    answer = resolve(dids, did)
    assert answer["didDocumentMetadata"]["deactivated"] is True
    assert answer["didDocument"]["verificationMethod"] == []
    assert answer["didDocument"]["authentication"] == []
    with pytest.raises(DidKeyError):
        find_verification_key(answer["didDocument"], f"{did}#key-1", "assertionMethod")
    earlier = resolve(dids, did, gone_at - 1)
    assert earlier["didDocumentMetadata"]["deactivated"] is False
    assert key_ids(earlier) == [f"{did}#key-1"]
    for method, key, args in [
            ("rotate", SUBJECT, {"new_public_key": NEW_KEY.public_key}),
            ("set_controller", SUBJECT, {"controller": create(dids, OTHER)}),
            ("deactivate", SUBJECT, {}),
            ("supersede_record", None, {"new_commitment": os.urandom(32),
                                        "reason": "correction"})]:
        refused = outcome(send(dids, method, key, did=did, **args))
        assert f"the DID {did} was deactivated at height {gone_at}" in refused


def test_supersede_record_keeps_the_old_commitment_in_history(dids: LocalChain) -> None:
    first, second, third = os.urandom(32), os.urandom(32), os.urandom(32)
    tx = dids.make_tx(service="did", method="create",
                      args={"public_key": SUBJECT.public_key, "record_commitment": first})
    did = compute_did(tx.hash())
    dids.commit(tx)
    by_registrar = send(dids, "supersede_record", did=did, new_commitment=second,
                        reason="correction")
    assert by_registrar.ok and by_registrar.events[0].kind == "did.record_superseded"
    replaced_at = dids.engine.height
    assert send(dids, "supersede_record", SUBJECT, did=did, new_commitment=third,
                reason="update").ok
    history = dids.engine.query("did", "history", {"did": did})
    entries = history["recordCommitments"]
    assert [entry["commitment"] for entry in entries] == [first, second, third]
    assert entries[0]["superseded_by"] == second and entries[0]["superseded_reason"] == \
        "correction" and entries[0]["superseded_height"] == replaced_at
    assert entries[1]["supersedes"] == first and entries[1]["superseded_by"] == third
    assert entries[2]["superseded_by"] is None
    assert [version["versionId"] for version in history["versions"]] == ["1"]
    assert resolve(dids, did)["didDocumentMetadata"]["versionId"] == "1"
    reused = send(dids, "supersede_record", did=did, new_commitment=first, reason="legal")
    assert "already used by this DID" in outcome(reused)
    stranger = send(dids, "supersede_record", STRANGER, did=did,
                    new_commitment=os.urandom(32), reason="legal")
    assert "not a current authentication key" in outcome(stranger)
    free_text = admit(dids, "supersede_record", did=did, new_commitment=os.urandom(32),
                      reason="moved to 12 Sejong-daero")
    assert free_text.startswith("BAD_ARGS") and "reason" in free_text


def test_the_commitment_history_is_bounded(dids: LocalChain) -> None:
    did = create(dids)
    txs = [dids.make_tx(service="did", method="supersede_record",
                        args={"did": did, "new_commitment": os.urandom(32),
                              "reason": "update"})
           for _ in range(COMMITMENTS_PER_DID_MAX)]
    results = dids.commit(*txs).execution.results
    assert all(result.ok for result in results[:-1])
    assert f"reached {COMMITMENTS_PER_DID_MAX} record commitments" in outcome(results[-1])


def test_the_version_limit_keeps_the_last_version_for_deactivation(dids: LocalChain) -> None:
    did = create(dids)
    txs, previous = [], None
    for index in range(VERSIONS_PER_DID_MAX - 1):  # versions 2..64: the last is refused
        args: dict[str, Any] = {"did": did, "new_public_key": make_key(100 + index).public_key}
        if previous is not None:
            args["retire_key_id"] = previous
        previous = f"key-{index + 2}"
        txs.append(dids.make_tx(SUBJECT, service="did", method="rotate", args=args))
    results = dids.commit(*txs).execution.results
    assert all(result.ok for result in results[:-1])
    assert "it can only be deactivated" in outcome(results[-1])
    assert send(dids, "deactivate", SUBJECT, did=did).ok
    history = dids.engine.query("did", "history", {"did": did})
    assert len(history["versions"]) == VERSIONS_PER_DID_MAX
    answer = resolve(dids, did)
    assert answer["didDocumentMetadata"]["versionId"] == str(VERSIONS_PER_DID_MAX)
    middle = resolve(dids, did, dids.engine.height - 1)  # the block of all rotations
    assert middle["didDocumentMetadata"]["versionId"] == str(VERSIONS_PER_DID_MAX - 1)


def test_create_refusals(dids: LocalChain) -> None:
    commitment = os.urandom(32)
    by_subject = admit(dids, "create", SUBJECT, public_key=SUBJECT.public_key,
                       record_commitment=commitment)
    assert by_subject.startswith("UNAUTHORIZED") and "did.registrar" in by_subject
    short = admit(dids, "create", public_key=SUBJECT.public_key[:31],
                  record_commitment=commitment)
    assert short.startswith("BAD_ARGS") and "public_key" in short
    not_a_point = send(dids, "create", public_key=bytes(32), record_commitment=commitment)
    assert "not a valid Ed25519 public key" in outcome(not_a_point)
    bad_rotation = send(dids, "rotate", SUBJECT, did=create(dids),
                        new_public_key=b"\xff" * 32)
    assert "not a valid Ed25519 public key" in outcome(bad_rotation)
    for personal in ({"name": "Hong Gildong"}, {"rrn": "900101-1234567"},
                     {"phone": "010-1234-5678"}, {"address": "Sejong-daero 110"}):
        refused = admit(dids, "create", public_key=SUBJECT.public_key,
                        record_commitment=commitment, **personal)
        assert refused.startswith("BAD_ARGS") and "Extra inputs" in refused, personal
    short_commitment = admit(dids, "create", public_key=SUBJECT.public_key,
                             record_commitment=commitment[:16])
    assert short_commitment.startswith("BAD_ARGS") and "record_commitment" in short_commitment
    oversized = admit(dids, "create", public_key=SUBJECT.public_key,
                      record_commitment=commitment, controller="did:seoul:" + "a" * 200)
    assert oversized.startswith("BAD_ARGS") and "controller" in oversized


def test_unknown_and_malformed_dids(dids: LocalChain) -> None:
    ghost = compute_did(os.urandom(32))
    for did, error in [(ghost, "notFound"), ("did:seoul:0OIl", "invalidDid"),
                       ("did:seoul:" + "z" * 22, "invalidDid"), ("seoul:abc", "invalidDid"),
                       ("did:web:example.com", "methodNotSupported")]:
        answer = resolve(dids, did)
        assert answer["didDocument"] is None and answer["didDocumentMetadata"] == {}
        assert answer["didResolutionMetadata"]["error"] == error, did
    assert dids.engine.query("did", "history", {"did": ghost}) is None
    refused = send(dids, "rotate", SUBJECT, did=ghost, new_public_key=NEW_KEY.public_key)
    assert f"the DID {ghost} does not exist" in outcome(refused)
    assert "does not exist" in outcome(send(dids, "deactivate", SUBJECT, did=ghost))


def test_find_verification_key_reads_references_embedded_and_relative_methods() -> None:
    did = compute_did(b"\x01" * 32)
    multikey = encode_multikey(SUBJECT.public_key)
    document = {
        "id": did,
        "verificationMethod": [{"id": f"{did}#a", "type": "Multikey", "controller": did,
                                "publicKeyMultibase": multikey}],
        "authentication": ["#a"],
        "assertionMethod": [{"id": f"{did}#b", "type": "Multikey", "controller": did,
                             "publicKeyMultibase": encode_multikey(OTHER.public_key)}],
    }
    assert find_verification_key(document, f"{did}#a", "authentication") == SUBJECT.public_key
    assert find_verification_key(document, f"{did}#b", "assertionMethod") == OTHER.public_key
    with pytest.raises(DidKeyError, match="not in the assertionMethod"):
        find_verification_key(document, f"{did}#a", "assertionMethod")
    with pytest.raises(DidKeyError, match="unknown verification relationship"):
        find_verification_key(document, f"{did}#a", "keyAgreement")
    with pytest.raises(DidKeyError, match="is not a verification method of"):
        find_verification_key(document, "did:seoul:other#a", "authentication")
    document["verificationMethod"][0]["publicKeyMultibase"] = "z" + multikey[2:]
    with pytest.raises(DidKeyError, match=f"{did}#a"):
        find_verification_key(document, f"{did}#a", "authentication")
    document["verificationMethod"][0]["type"] = "JsonWebKey"
    with pytest.raises(DidKeyError, match="not a Multikey"):
        find_verification_key(document, f"{did}#a", "authentication")
    assert decode_multikey(multikey) == SUBJECT.public_key


@pytest.mark.parametrize("document", [
    None, [], {}, {"id": 7}, {"id": "did:seoul:x", "verificationMethod": "z6Mk"},
    {"id": "did:seoul:x", "authentication": {"id": "did:seoul:x#a"}},
    {"id": "did:seoul:x", "authentication": ["did:seoul:x#a"],
     "verificationMethod": [{"id": "did:seoul:x#a", "type": "Multikey",
                             "publicKeyMultibase": 42}]},
])
def test_find_verification_key_refuses_malformed_documents_with_its_typed_error(
        document: Any) -> None:
    with pytest.raises(DidKeyError):
        find_verification_key(document, "did:seoul:x#a", "authentication")
