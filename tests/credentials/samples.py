"""Sample credentials, keys and DID documents shared by the credentials and interop tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import base58

from seoulchain.credentials.loader import (
    CREDENTIALS_V2_URL,
    SEOULCHAIN_CREDENTIALS_V1_URL,
    get_default_loader,
)
from seoulchain.crypto.keys import SigningKey
from seoulchain.crypto.multikey import encode_multikey
from seoulchain.services.did import DID_CONTEXTS, compute_key_id, find_verification_key

# W3C Data Integrity EdDSA Cryptosuites v1.0, test vectors of eddsa-rdfc-2022: the key pair
# (secretKeyMultibase is multicodec ed25519-priv 0x8026 + seed), the credential, the
# proof options, the published hashes and proofValue.
SPEC_SECRET_KEY_MULTIBASE = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
SPEC_PUBLIC_KEY_MULTIBASE = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
SPEC_VERIFICATION_METHOD = f"did:key:{SPEC_PUBLIC_KEY_MULTIBASE}#{SPEC_PUBLIC_KEY_MULTIBASE}"
SPEC_CREATED = datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)
SPEC_PROOF_CONFIG_HASH = "bea7b7acfbad0126b135104024a5f1733e705108f42d59668b05c0c50004c6b0"
SPEC_DOCUMENT_HASH = "517744132ae165a5349155bef0bb0cf2258fff99dfe1dbd914b938d775a36017"
SPEC_PROOF_VALUE = ("z2YwC8z3ap7yx1nZYCg4L3j3ApHsF8kgPdSb5xoS1VR7vPG3F561B52hYnQF9iseab"
                    "ecm3ijx4K1FBTQsCZahKZme")
# The examples context of the VC Data Model 2.0 (every undefined term in its vocabulary);
# shipped with the tests only, since production credentials define their terms.
EXAMPLES_V2_URL = "https://www.w3.org/ns/credentials/examples/v2"
EXAMPLES_V2_CONTEXT = {"@context": {"@vocab": "https://www.w3.org/ns/credentials/examples#"}}
SPEC_CREDENTIAL: dict[str, Any] = {
    "@context": [CREDENTIALS_V2_URL, EXAMPLES_V2_URL],
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
}

ISSUER_SEED = bytes(range(1, 33))
ISSUER_DID = "did:seoul:2bN4UwFJc5Vqg8aH1kEr7s"
ISSUER_KEY_ID = compute_key_id(ISSUER_DID, 0)
HOLDER_DID = "did:seoul:7QvXh3LmRt9Kp2dWc6Ny4e"
ISSUED_AT = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
CONTEXTS = [CREDENTIALS_V2_URL, SEOULCHAIN_CREDENTIALS_V1_URL]

CLAIMS: dict[str, dict[str, Any]] = {
    "ResidencyCredential": {"residentOf": "11680", "residentSince": "2019-03-01"},
    "AgeBandCredential": {"ageBand": "19-34"},
    "YouthAllowanceEligibilityCredential": {"youthAllowanceEligible": True,
                                            "allowanceProgramme": "seoul-youth-allowance-2026"},
    "BusinessLicenceCredential": {"licenceNumber": "2026-GN-00417", "licenceType": "restaurant",
                                  "businessName": "Seolleung Noodle House"},
    "TrainingCertificateCredential": {"courseName": "Food hygiene", "trainingHours": 8,
                                      "trainingProvider": "Seoul Training Centre",
                                      "completedOn": "2026-11-20"},
}


def spec_seed() -> bytes:
    """Return the seed in the spec's secretKeyMultibase (after its 2-byte multicodec)."""
    return base58.b58decode(SPEC_SECRET_KEY_MULTIBASE[1:])[2:]


def spec_loader():  # type: ignore[no-untyped-def]
    """Return the shipped loader plus the VC examples context the spec vector uses."""
    return get_default_loader().with_documents({EXAMPLES_V2_URL: EXAMPLES_V2_CONTEXT})


def make_credential(kind: str, number: int = 1,
                    status: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return an unsigned seoulchain credential of `kind` for the sample holder."""
    credential: dict[str, Any] = {
        "@context": list(CONTEXTS), "id": f"urn:uuid:5e0c1a2b-0000-4000-8000-{number:012d}",
        "type": ["VerifiableCredential", kind], "issuer": ISSUER_DID,
        "validFrom": "2026-12-01T00:00:00Z",
        "credentialSubject": {"id": HOLDER_DID, **CLAIMS[kind]},
    }
    if status is not None:
        credential["credentialStatus"] = status
    return credential


def make_did_document(did: str = ISSUER_DID, seed: bytes = ISSUER_SEED) -> dict[str, Any]:
    """Return a did:seoul DID document with one Multikey for assertion and authentication."""
    key_id = compute_key_id(did, 0)
    return {"@context": list(DID_CONTEXTS), "id": did, "controller": did,
            "verificationMethod": [{
                "id": key_id, "type": "Multikey", "controller": did,
                "publicKeyMultibase": encode_multikey(SigningKey(seed).public_key)}],
            "authentication": [key_id], "assertionMethod": [key_id]}


def make_resolver(*documents: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Return a `resolve_key` that reads keys from the given DID documents only."""
    by_did = {document["id"]: document for document in documents}

    def resolve_key(verification_method: str, proof_purpose: str) -> bytes:
        document = by_did[verification_method.partition("#")[0]]
        return find_verification_key(document, verification_method, proof_purpose)
    return resolve_key
