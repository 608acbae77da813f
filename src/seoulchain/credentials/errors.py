"""Typed errors of the credentials layer, each in one of the two families of `errors.py`.

A credential, a status list or a proof that came from outside and is malformed, oversized or
forged raises a `CredentialError` subclass (a `RemoteError`); a context file of the
installed package that does not match its recorded hash raises `ContextFileAltered` (a
`StorageError`); a caller's misuse (a bad key, an unsigned-able document) raises
`CredentialUsageError` (a `LocalError`).
"""

from __future__ import annotations

from seoulchain.errors import DecodeError, LocalError, StorageError, VerificationError


class CredentialError(DecodeError):
    """A credential document from outside is malformed, oversized or not canonicalisable."""


class UnknownContext(CredentialError):
    """A document names a JSON-LD context (or other URL) that is not shipped offline."""

    def __init__(self, url: str) -> None:
        super().__init__(f"JSON-LD context {url!r} is not one of the contexts shipped with "
                         "seoulchain; no document is ever fetched from the network")
        self.url = url


class DocumentTooLarge(CredentialError):
    """A document is larger than the bytes or node limits allow canonicalising."""


class DocumentTooDeep(CredentialError):
    """A document nests JSON objects and arrays deeper than allowed."""


class TooManyNodes(DocumentTooLarge):
    """A document has more JSON objects, RDF statements or blank nodes than allowed."""


class CanonicalizationTooComplex(TooManyNodes):
    """Canonicalising the document's blank nodes would take more work than allowed."""


class UndefinedTerm(CredentialError):
    """A property is not defined by the document's contexts, so a signature would skip it."""


class ProofError(VerificationError):
    """A Data Integrity proof is missing, malformed or does not verify."""


class BadProof(ProofError):
    """The proof's signature does not verify over the document under the resolved key."""


class UnsupportedProof(ProofError):
    """The proof is not a single `DataIntegrityProof` of the `eddsa-rdfc-2022` cryptosuite."""


class WrongProofPurpose(ProofError):
    """The proof was made for another purpose than the verifier expects."""


class ChallengeMismatch(ProofError):
    """The proof's challenge or domain is not the one the verifier expects."""


class StatusListError(CredentialError):
    """An encoded Bitstring Status List is malformed or decompresses beyond its bound."""


class ContextFileAltered(StorageError):
    """A shipped context file is missing or differs from the hash in its manifest."""


class CredentialUsageError(LocalError):
    """The caller asked for something the credentials library cannot do as asked."""
