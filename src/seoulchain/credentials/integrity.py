"""W3C Data Integrity proofs of the `eddsa-rdfc-2022` cryptosuite (vc-di-eddsa v1.0 §3.3).

Theory of operation: a secured document is a JSON-LD document with one `proof` object.
Signing canonicalises two things with RDFC-1.0 (pyld's URDNA2015, to N-Quads): the proof
configuration (the proof's options with the document's `@context`) and the document
without its proof; the Ed25519 signature (PyNaCl) is over SHA-256(proof configuration) ‖
SHA-256(document), and `proofValue` is that signature in multibase base58btc ('z').
Verifying recomputes the same bytes and checks the signature with the key that
`resolve_key(verification_method, proof_purpose)` returns: the caller's resolver decides
whether the method is the issuer's and is listed under that purpose in its DID document.

JSON-LD processing is expensive on hostile input and pyld bounds none of it, so every
document is bounded before it is canonicalised: bytes, nesting depth and JSON objects
first (pyld's expansion is quadratic in the values of one property), then the blank
nodes it expands to, then the work RDFC-1.0 may
spend telling blank nodes apart (a "poison graph" of look-alike blank nodes makes that
work grow factorially). A property that no context defines would be silently dropped by
expansion, and so would be left out of the signature: it is refused (`UndefinedTerm`), as
the JavaScript implementations' "safe mode" does. Contexts come only from the offline
loader (`loader.py`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import base58
from pyld import jsonld
from pyld.canon import URDNA2015

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
    UnsupportedProof,
    WrongProofPurpose,
)
from seoulchain.credentials.loader import (
    CREDENTIALS_V2_URL,
    DATA_INTEGRITY_V2_URL,
    DocumentLoader,
    get_default_loader,
)
from seoulchain.crypto.hashing import sha256
from seoulchain.crypto.keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SigningKey, is_valid_signature
from seoulchain.crypto.multikey import MULTIBASE_BASE58BTC

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-rdfc-2022"
ASSERTION_METHOD = "assertionMethod"
# A document may carry a Data Integrity proof only if one of these defines the proof terms.
PROOF_CONTEXTS = (CREDENTIALS_V2_URL, DATA_INTEGRITY_V2_URL)

# A seoulchain credential is 1-3 KiB; the largest document signed is a status list
# credential whose 131,072-entry list, incompressible at worst, is 16 KiB gzipped and
# 22 KiB in base64url. 64 KiB leaves room and keeps expansion to milliseconds.
DOCUMENT_BYTES_MAX = 64 * 1024
# Credentials nest 3-5 levels (credential, subject, claim object, value object); pyld
# expands recursively, so depth is also bounded well below Python's recursion limit.
JSON_DEPTH_MAX = 16
# JSON values (objects, arrays, strings, numbers...) in one document: a credential has
# under 100. pyld's expansion and node map cost grows with them (quadratically within one
# property's values), so they are bounded before it runs.
JSON_VALUES_MAX = 512
# Items of one JSON array: a credential's longest arrays (@context, type) have 2-4. pyld
# compares each value of a property with every other one (O(n²)); 1,000 take it a second.
JSON_ARRAY_ITEMS_MAX = 64
# Blank nodes (objects without an id: the proof, a subject or claim without one): a
# credential has 1-4, a proof's graph one. Their count drives RDFC-1.0's cost.
BLANK_NODES_MAX = 32
# Calls of RDFC-1.0's Hash N-Degree Quads, needed only for blank nodes that look alike; a
# credential needs none or a few. RDFC-1.0's security considerations (dataset poisoning)
# ask implementations to bound this work; pyld does not, so the canonicaliser counts it.
N_DEGREE_HASHES_MAX = 64

# A 64-byte signature is at most 88 base58 characters, plus the multibase header.
PROOF_VALUE_CHARS_MAX = 89

ResolveKey = Callable[[str, str], bytes]


@dataclass(frozen=True)
class VerifiedProof:
    """What a verified proof asserts: who signed (the method), when, and for what."""

    verification_method: str
    proof_purpose: str
    created: str | None
    challenge: str | None
    domain: str | list[str] | None


def sign(document: dict[str, Any], key: bytes | SigningKey, verification_method: str,
         created: datetime, proof_purpose: str = ASSERTION_METHOD,
         challenge: str | None = None, domain: str | None = None,
         loader: DocumentLoader | None = None) -> dict[str, Any]:
    """Return a copy of `document` with an `eddsa-rdfc-2022` proof made with `key`."""
    signing_key = key if isinstance(key, SigningKey) else SigningKey(key)
    if "proof" in document:
        raise CredentialUsageError("the document already has a proof; sign the unsecured one")
    if not has_proof_context(document):
        raise CredentialUsageError(f"a signed document's @context must include one of "
                                   f"{', '.join(PROOF_CONTEXTS)}")
    if created.tzinfo is None:
        raise CredentialUsageError("the proof's created time must be timezone-aware")
    proof: dict[str, Any] = {
        "type": PROOF_TYPE, "cryptosuite": CRYPTOSUITE,
        "created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verificationMethod": verification_method, "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        proof["challenge"] = challenge
    if domain is not None:
        proof["domain"] = domain
    loader = loader or get_default_loader()
    check_bounds(document)
    signature = signing_key.sign(compute_hash_data(document, proof, loader))
    proof["proofValue"] = MULTIBASE_BASE58BTC + base58.b58encode(signature).decode()
    return {**copy.deepcopy(document), "proof": proof}


def verify(document: dict[str, Any], resolve_key: ResolveKey,
           proof_purpose: str = ASSERTION_METHOD, challenge: str | None = None,
           domain: str | None = None, loader: DocumentLoader | None = None) -> VerifiedProof:
    """Verify the document's single `eddsa-rdfc-2022` proof, or raise a `ProofError`."""
    check_bounds(document)
    proof = document.get("proof") if isinstance(document, dict) else None
    if not isinstance(proof, dict):
        raise UnsupportedProof("the document must have exactly one proof object")
    check_proof_options(proof, proof_purpose, challenge, domain)
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    options = {name: value for name, value in proof.items() if name != "proofValue"}
    if "@context" in options:
        check_context_prefix(unsecured.get("@context"), options["@context"])
        unsecured["@context"] = options.pop("@context")
    signature = decode_proof_value(proof.get("proofValue"))
    public_key = resolve_key(proof["verificationMethod"], proof["proofPurpose"])
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
        raise CredentialUsageError("resolve_key must return a 32-byte Ed25519 public key")
    hash_data = compute_hash_data(unsecured, options, loader or get_default_loader())
    if not is_valid_signature(public_key, hash_data, signature):
        raise BadProof(f"the proof by {proof['verificationMethod']} does not verify over "
                       "this document")
    return VerifiedProof(verification_method=proof["verificationMethod"],
                         proof_purpose=proof["proofPurpose"], created=proof.get("created"),
                         challenge=proof.get("challenge"), domain=proof.get("domain"))


def has_proof_context(document: dict[str, Any]) -> bool:
    """Return True if the document's @context defines the Data Integrity proof terms."""
    contexts = document.get("@context")
    contexts = contexts if isinstance(contexts, list) else [contexts]
    return any(context in PROOF_CONTEXTS for context in contexts)


def check_proof_options(proof: dict[str, Any], proof_purpose: str, challenge: str | None,
                        domain: str | None) -> None:
    """Refuse a proof of another type, cryptosuite, purpose, challenge or domain."""
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise UnsupportedProof(f"the proof must be a {PROOF_TYPE} of cryptosuite "
                               f"{CRYPTOSUITE}, not {proof.get('type')!r} / "
                               f"{proof.get('cryptosuite')!r}")
    if not isinstance(proof.get("verificationMethod"), str):
        raise UnsupportedProof("the proof's verificationMethod must be a URL string")
    if proof.get("proofPurpose") != proof_purpose:
        raise WrongProofPurpose(f"the proof's purpose is {proof.get('proofPurpose')!r}, "
                                f"the verifier expects {proof_purpose!r}")
    if challenge is not None and proof.get("challenge") != challenge:
        raise ChallengeMismatch("the proof's challenge is not the one the verifier issued")
    if domain is not None:
        domains = proof.get("domain")
        if domain not in (domains if isinstance(domains, list) else [domains]):
            raise ChallengeMismatch(f"the proof's domain is not {domain!r}")


def check_context_prefix(document_context: Any, proof_context: Any) -> None:
    """Refuse a proof whose @context is not the start of the document's (§3.3.2 step 4)."""
    ours = document_context if isinstance(document_context, list) else [document_context]
    theirs = proof_context if isinstance(proof_context, list) else [proof_context]
    if ours[:len(theirs)] != theirs:
        raise BadProof("the proof's @context does not start the document's @context")


def decode_proof_value(proof_value: Any) -> bytes:
    """Return the signature in a multibase base58btc `proofValue`, or raise `BadProof`."""
    if not isinstance(proof_value, str) or not proof_value.startswith(MULTIBASE_BASE58BTC) \
            or len(proof_value) > PROOF_VALUE_CHARS_MAX:
        raise BadProof("proofValue must be a base58btc multibase ('z') Ed25519 signature")
    try:
        signature = base58.b58decode(proof_value[1:])
    except ValueError:
        raise BadProof("proofValue is not base58btc text") from None
    if len(signature) != SIGNATURE_BYTES:
        raise BadProof(f"proofValue holds {len(signature)} bytes, not {SIGNATURE_BYTES}")
    return signature


def compute_hash_data(unsecured: dict[str, Any], proof_options: dict[str, Any],
                      loader: DocumentLoader) -> bytes:
    """Return SHA-256(canonical proof configuration) ‖ SHA-256(canonical document)."""
    proof_config = {**proof_options, "@context": unsecured.get("@context")}
    return sha256(canonicalize(proof_config, loader).encode()) + \
        sha256(canonicalize(unsecured, loader).encode())


def canonicalize(document: dict[str, Any], loader: DocumentLoader | None = None) -> str:
    """Return the RDFC-1.0 canonical N-Quads of a bounded JSON-LD document."""
    check_bounds(document)
    loader = loader or get_default_loader()
    options = {"documentLoader": loader, "contextResolver": loader.new_context_resolver(),
               "base": "", "extractAllScripts": True, "processingMode": "json-ld-1.1",
               "produceGeneralizedRdf": False}
    try:
        dataset = jsonld.JsonLdProcessor(on_property_dropped=refuse_dropped).to_rdf(
            document, options)
        check_dataset_bounds(dataset)
        return BoundedURDNA2015().main(dataset, {"format": "application/n-quads"})
    except jsonld.JsonLdError as exc:
        raise find_cause(exc) from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise CredentialError(f"the document is not JSON-LD that can be canonicalised: "
                              f"{exc}") from None


def refuse_dropped(expanded_property: str | None) -> None:
    """Refuse a property that the document's contexts do not define."""
    raise UndefinedTerm(f"the property {expanded_property!r} is not defined by the "
                        "document's contexts, so no signature could cover it")


def find_cause(exc: BaseException) -> CredentialError:
    """Return the credentials error behind a pyld error, or one that carries its message."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, CredentialError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return CredentialError(f"the document is not valid JSON-LD: {exc}")


class BoundedURDNA2015(URDNA2015):
    """pyld's RDFC-1.0 (URDNA2015) with a bound on its Hash N-Degree Quads work."""

    def __init__(self) -> None:
        super().__init__()
        self.n_degree_hashes = 0

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
        """Count the call, refuse past the bound, then hash as RDFC-1.0 §4.8 says."""
        self.n_degree_hashes += 1
        if self.n_degree_hashes > N_DEGREE_HASHES_MAX:
            raise CanonicalizationTooComplex(
                f"telling the document's blank nodes apart needs more than "
                f"{N_DEGREE_HASHES_MAX} n-degree hashes (a poison graph)")
        return super().hash_n_degree_quads(id_, issuer)


def check_dataset_bounds(dataset: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse an expanded dataset with too many blank nodes."""
    blank_nodes = {term["value"] for triples in dataset.values() for quad in triples
                   for term in (quad["subject"], quad["object"]) if term["type"] == "blank node"}
    blank_nodes.update(name for name in dataset if name.startswith("_:"))
    if len(blank_nodes) > BLANK_NODES_MAX:
        raise TooManyNodes(f"the document has {len(blank_nodes)} blank nodes, more than "
                           f"{BLANK_NODES_MAX}")


def check_bounds(document: Any) -> None:
    """Refuse a JSON document too deep, with too many values or too large to process."""
    for count, (value, depth) in enumerate(walk_json(document), start=1):
        if depth > JSON_DEPTH_MAX:
            raise DocumentTooDeep(f"the document nests deeper than {JSON_DEPTH_MAX} levels")
        if count > JSON_VALUES_MAX:
            raise TooManyNodes(f"the document has more than {JSON_VALUES_MAX} JSON values")
        if isinstance(value, list) and len(value) > JSON_ARRAY_ITEMS_MAX:
            raise TooManyNodes(f"a JSON array of the document has {len(value)} items, more "
                               f"than {JSON_ARRAY_ITEMS_MAX}")
    try:
        size = len(json.dumps(document, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise CredentialError(f"the document is not plain JSON: {exc}") from None
    if size > DOCUMENT_BYTES_MAX:
        raise DocumentTooLarge(f"the document is {size} bytes, more than {DOCUMENT_BYTES_MAX}")


def walk_json(document: Any) -> Iterator[tuple[Any, int]]:
    """Yield every value of a JSON document with its nesting depth (iteratively)."""
    stack = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        yield value, depth
        if depth > JSON_DEPTH_MAX:
            continue
        children = value.values() if isinstance(value, dict) else \
            value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def parse_document(raw: bytes) -> dict[str, Any]:
    """Parse a JSON-LD document from bytes from outside, bounded before and after parsing."""
    if len(raw) > DOCUMENT_BYTES_MAX:
        raise DocumentTooLarge(f"the document is {len(raw)} bytes, more than "
                               f"{DOCUMENT_BYTES_MAX}")
    try:
        document = json.loads(raw)
    except RecursionError:
        raise DocumentTooDeep(f"the document nests deeper than {JSON_DEPTH_MAX} levels") \
            from None
    except ValueError as exc:
        raise CredentialError(f"the document is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CredentialError("a JSON-LD credential is a JSON object")
    check_bounds(document)
    return document
