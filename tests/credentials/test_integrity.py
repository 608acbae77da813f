"""Data Integrity eddsa-rdfc-2022: the W3C test vector, round trips and every refusal."""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime
from typing import Any

import pytest

from seoulchain.credentials import integrity
from seoulchain.credentials.errors import (
    BadProof,
    CanonicalizationTooComplex,
    ChallengeMismatch,
    CredentialError,
    CredentialUsageError,
    DocumentTooDeep,
    DocumentTooLarge,
    TooManyNodes,
    UndefinedTerm,
    UnknownContext,
    UnsupportedProof,
    WrongProofPurpose,
)
from seoulchain.crypto.hashing import sha256
from seoulchain.crypto.multikey import decode_multikey
from seoulchain.services.did import DidKeyError
from tests.credentials.samples import (
    CLAIMS,
    ISSUED_AT,
    ISSUER_KEY_ID,
    ISSUER_SEED,
    SPEC_CREATED,
    SPEC_CREDENTIAL,
    SPEC_DOCUMENT_HASH,
    SPEC_PROOF_CONFIG_HASH,
    SPEC_PROOF_VALUE,
    SPEC_PUBLIC_KEY_MULTIBASE,
    SPEC_VERIFICATION_METHOD,
    make_credential,
    make_did_document,
    make_resolver,
    spec_loader,
    spec_seed,
)

RESOLVE = make_resolver(make_did_document())


def resolve_spec_key(verification_method: str, proof_purpose: str) -> bytes:
    assert verification_method == SPEC_VERIFICATION_METHOD
    return decode_multikey(SPEC_PUBLIC_KEY_MULTIBASE)


def signed(kind: str = "ResidencyCredential", **options: Any) -> dict[str, Any]:
    return integrity.sign(make_credential(kind), ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT,
                          **options)


def test_spec_vector_sign_gives_the_published_proof_value() -> None:
    secured = integrity.sign(SPEC_CREDENTIAL, spec_seed(), SPEC_VERIFICATION_METHOD,
                             SPEC_CREATED, loader=spec_loader())
    assert secured["proof"] == {
        "type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
        "created": "2023-02-24T23:36:38Z", "verificationMethod": SPEC_VERIFICATION_METHOD,
        "proofPurpose": "assertionMethod", "proofValue": SPEC_PROOF_VALUE}


def test_spec_vector_hashes_of_both_canonical_forms() -> None:
    proof_options = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
                     "created": "2023-02-24T23:36:38Z",
                     "verificationMethod": SPEC_VERIFICATION_METHOD,
                     "proofPurpose": "assertionMethod"}
    hash_data = integrity.compute_hash_data(SPEC_CREDENTIAL, proof_options, spec_loader())
    assert hash_data.hex() == SPEC_PROOF_CONFIG_HASH + SPEC_DOCUMENT_HASH


def test_spec_vector_published_credential_verifies() -> None:
    published = {**SPEC_CREDENTIAL, "proof": {
        "type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
        "created": "2023-02-24T23:36:38Z", "verificationMethod": SPEC_VERIFICATION_METHOD,
        "proofPurpose": "assertionMethod", "proofValue": SPEC_PROOF_VALUE}}
    result = integrity.verify(published, resolve_spec_key, loader=spec_loader())
    assert result.verification_method == SPEC_VERIFICATION_METHOD
    assert result.created == "2023-02-24T23:36:38Z"


@pytest.mark.parametrize("kind", sorted(CLAIMS))
def test_round_trip_every_seoulchain_credential_type(kind: str) -> None:
    secured = signed(kind)
    result = integrity.verify(secured, RESOLVE)
    assert result.verification_method == ISSUER_KEY_ID
    assert result.proof_purpose == "assertionMethod"
    assert result.created == "2026-12-01T09:00:00Z"
    assert {name: value for name, value in secured.items() if name != "proof"} \
        == make_credential(kind)


def test_sign_does_not_change_its_input_and_takes_a_signing_key() -> None:
    from seoulchain.crypto.keys import SigningKey
    credential = make_credential("AgeBandCredential")
    before = copy.deepcopy(credential)
    secured = integrity.sign(credential, SigningKey(ISSUER_SEED), ISSUER_KEY_ID, ISSUED_AT)
    assert credential == before
    assert secured["proof"]["proofValue"] == signed("AgeBandCredential")["proof"]["proofValue"]


def test_refused_tampered_by_one_byte_in_a_claim() -> None:
    secured = signed("AgeBandCredential")
    secured["credentialSubject"]["ageBand"] = "19-35"
    with pytest.raises(BadProof):
        integrity.verify(secured, RESOLVE)


def test_refused_tampered_by_one_byte_of_the_serialised_credential() -> None:
    raw = json.dumps(signed("ResidencyCredential")).encode()
    tampered = raw.replace(b'"11680"', b'"11681"')
    assert len(tampered) == len(raw) and tampered != raw
    with pytest.raises(BadProof):
        integrity.verify(integrity.parse_document(tampered), RESOLVE)


@pytest.mark.parametrize("field,value", [("created", "2026-12-01T09:00:01Z"),
                                         ("verificationMethod", ISSUER_KEY_ID + "0")])
def test_refused_tampered_proof_options(field: str, value: str) -> None:
    secured = signed()
    secured["proof"][field] = value
    with pytest.raises((BadProof, DidKeyError)):
        integrity.verify(secured, make_resolver(make_did_document()))


def test_refused_tampered_proof_value() -> None:
    secured = signed()
    value = secured["proof"]["proofValue"]
    secured["proof"]["proofValue"] = value[:-1] + ("2" if value[-1] != "2" else "3")
    with pytest.raises(BadProof):
        integrity.verify(secured, RESOLVE)


@pytest.mark.parametrize("proof_value", ["", "z", "u" + "A" * 86, "z0OIl", "z" + "2" * 200,
                                         12])
def test_refused_malformed_proof_value(proof_value: Any) -> None:
    secured = signed()
    secured["proof"]["proofValue"] = proof_value
    with pytest.raises(BadProof):
        integrity.verify(secured, RESOLVE)


def test_refused_wrong_key() -> None:
    other = make_did_document(seed=bytes(32))
    with pytest.raises(BadProof):
        integrity.verify(signed(), make_resolver(other))


def test_refused_unknown_context_when_signing_and_verifying() -> None:
    credential = make_credential("AgeBandCredential")
    credential["@context"].append("https://evil.example/context.jsonld")
    with pytest.raises(UnknownContext) as caught:
        integrity.sign(credential, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
    assert caught.value.url == "https://evil.example/context.jsonld"
    secured = signed("AgeBandCredential")
    secured["@context"].append("https://evil.example/context.jsonld")
    with pytest.raises(UnknownContext):
        integrity.verify(secured, RESOLVE)


def test_refused_unknown_context_imported_by_an_inline_context() -> None:
    credential = make_credential("AgeBandCredential")
    credential["@context"].append({"@import": "https://evil.example/import.jsonld"})
    with pytest.raises(UnknownContext):
        integrity.canonicalize(credential)


def test_refused_undefined_term_that_a_signature_would_skip() -> None:
    credential = make_credential("AgeBandCredential")
    credential["credentialSubject"]["birthDate"] = "1999-01-01"
    with pytest.raises(UndefinedTerm):
        integrity.sign(credential, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
    secured = signed("AgeBandCredential")
    secured["credentialSubject"]["birthDate"] = "1999-01-01"
    with pytest.raises(UndefinedTerm):
        integrity.verify(secured, RESOLVE)


def test_refused_oversized_document() -> None:
    credential = make_credential("TrainingCertificateCredential")
    credential["credentialSubject"]["courseName"] = "x" * integrity.DOCUMENT_BYTES_MAX
    with pytest.raises(DocumentTooLarge):
        integrity.sign(credential, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
    with pytest.raises(DocumentTooLarge):
        integrity.verify(credential, RESOLVE)
    with pytest.raises(DocumentTooLarge):
        integrity.parse_document(b" " * (integrity.DOCUMENT_BYTES_MAX + 1))


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"courseName": "deep"}
    for _ in range(depth):
        value = {"trainingProvider": value}
    return value


def test_refused_deeply_nested_document() -> None:
    credential = make_credential("TrainingCertificateCredential")
    credential["credentialSubject"]["trainingProvider"] = nested(integrity.JSON_DEPTH_MAX)
    with pytest.raises(DocumentTooDeep):
        integrity.sign(credential, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
    with pytest.raises(DocumentTooDeep):
        integrity.verify(credential, RESOLVE)


def test_refused_deeply_nested_bytes_beyond_the_parser() -> None:
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(DocumentTooLarge):
        integrity.parse_document(raw)
    small = b'{"a":' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    with pytest.raises(DocumentTooDeep):
        integrity.parse_document(small)


def test_refused_too_many_blank_nodes() -> None:
    credential = make_credential("TrainingCertificateCredential")
    credential["credentialSubject"]["trainingProvider"] = [
        {"courseName": f"module {number}"} for number in range(integrity.BLANK_NODES_MAX + 1)]
    with pytest.raises(TooManyNodes, match="blank nodes"):
        integrity.sign(credential, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)


def test_refused_too_many_json_values() -> None:
    credential = make_credential("TrainingCertificateCredential")
    credential["credentialSubject"]["trainingProvider"] = [
        [f"urn:example:{row}:{column}" for column in range(integrity.JSON_ARRAY_ITEMS_MAX)]
        for row in range(integrity.JSON_VALUES_MAX // integrity.JSON_ARRAY_ITEMS_MAX)]
    with pytest.raises(TooManyNodes, match="JSON values"):
        integrity.verify(credential, RESOLVE)


def test_refused_long_array_before_quadratic_expansion() -> None:
    credential = make_credential("TrainingCertificateCredential")
    credential["credentialSubject"]["trainingHours"] = list(
        range(integrity.JSON_ARRAY_ITEMS_MAX + 1))
    started = time.perf_counter()
    with pytest.raises(TooManyNodes, match="array"):
        integrity.canonicalize(credential)
    assert time.perf_counter() - started < 0.1


def test_refused_poison_graph_quickly() -> None:
    """A clique of look-alike blank nodes would cost RDFC-1.0 factorial time unbounded."""
    size = 12
    graph = [{"@id": f"_:b{node}", "related": [{"@id": f"_:b{other}"}
                                               for other in range(size) if other != node]}
             for node in range(size)]
    document = {"@context": {"@vocab": "https://example.org/#"}, "@graph": graph}
    started = time.perf_counter()
    with pytest.raises(CanonicalizationTooComplex):
        integrity.canonicalize(document)
    assert time.perf_counter() - started < 2.0


def test_look_alike_blank_nodes_within_the_bound_canonicalise() -> None:
    document = {"@context": {"@vocab": "https://example.org/#"}, "@graph": [
        {"@id": "_:a", "related": {"@id": "_:b"}}, {"@id": "_:b", "related": {"@id": "_:a"}}]}
    assert integrity.canonicalize(document).count("_:c14n") == 4


@pytest.mark.parametrize("field,value", [("cryptosuite", "eddsa-jcs-2022"),
                                         ("cryptosuite", "ecdsa-rdfc-2019"),
                                         ("type", "Ed25519Signature2020")])
def test_refused_wrong_cryptosuite_or_type(field: str, value: str) -> None:
    secured = signed()
    secured["proof"][field] = value
    with pytest.raises(UnsupportedProof):
        integrity.verify(secured, RESOLVE)


@pytest.mark.parametrize("proof", [None, "proof", [], [{"type": "DataIntegrityProof"}]])
def test_refused_missing_or_several_proofs(proof: Any) -> None:
    secured = signed()
    secured["proof"] = proof
    with pytest.raises(UnsupportedProof):
        integrity.verify(secured, RESOLVE)


def test_refused_wrong_proof_purpose() -> None:
    secured = signed(proof_purpose="authentication", challenge="c-1")
    with pytest.raises(WrongProofPurpose):
        integrity.verify(secured, RESOLVE)
    assert integrity.verify(secured, RESOLVE, proof_purpose="authentication",
                            challenge="c-1").challenge == "c-1"


def test_refused_purpose_the_did_document_does_not_list() -> None:
    document = make_did_document()
    document["assertionMethod"] = []
    with pytest.raises(DidKeyError):
        integrity.verify(signed(), make_resolver(document))


def test_challenge_and_domain_must_match_the_verifiers() -> None:
    secured = signed(proof_purpose="authentication", challenge="nonce-1",
                     domain="https://verifier.seoul.example")
    result = integrity.verify(secured, RESOLVE, proof_purpose="authentication",
                              challenge="nonce-1", domain="https://verifier.seoul.example")
    assert (result.challenge, result.domain) == ("nonce-1", "https://verifier.seoul.example")
    with pytest.raises(ChallengeMismatch):
        integrity.verify(secured, RESOLVE, proof_purpose="authentication", challenge="nonce-2")
    with pytest.raises(ChallengeMismatch):
        integrity.verify(secured, RESOLVE, proof_purpose="authentication",
                         domain="https://other.example")
    tampered = copy.deepcopy(secured)
    tampered["proof"]["challenge"] = "nonce-2"
    with pytest.raises(BadProof):
        integrity.verify(tampered, RESOLVE, proof_purpose="authentication",
                         challenge="nonce-2")


def test_proof_context_must_start_the_documents() -> None:
    secured = signed()
    secured["proof"]["@context"] = list(secured["@context"])
    integrity.verify(secured, RESOLVE)
    secured["proof"]["@context"] = secured["@context"][:1]
    with pytest.raises(UndefinedTerm):
        integrity.verify(secured, RESOLVE)
    secured["proof"]["@context"] = ["https://w3id.org/security/data-integrity/v2"]
    with pytest.raises(BadProof, match="@context"):
        integrity.verify(secured, RESOLVE)


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b'{"a": NaN}', b"\xff\xfe"])
def test_refused_bytes_that_are_not_a_json_object(raw: bytes) -> None:
    with pytest.raises(CredentialError):
        integrity.parse_document(raw)


def test_sign_refuses_misuse() -> None:
    with pytest.raises(CredentialUsageError, match="timezone"):
        integrity.sign(make_credential("AgeBandCredential"), ISSUER_SEED, ISSUER_KEY_ID,
                       datetime(2026, 12, 1))
    with pytest.raises(CredentialUsageError, match="@context"):
        integrity.sign({"@context": ["https://www.w3.org/ns/did/v1"]}, ISSUER_SEED,
                       ISSUER_KEY_ID, ISSUED_AT)
    with pytest.raises(CredentialUsageError, match="already"):
        integrity.sign(signed(), ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)


def test_canonical_form_ignores_json_key_order() -> None:
    credential = make_credential("BusinessLicenceCredential")
    reordered = dict(reversed(list(credential.items())))
    assert sha256(integrity.canonicalize(credential).encode()) == \
        sha256(integrity.canonicalize(reordered).encode())
