"""Typed errors of the voting layer, each in one of the two families of `errors.py`.

Anything that came from outside (an election file, a ballot, a partial decryption, an
archive) and is malformed raises `MalformedVotingData` (a `DecodeError`); a ballot or a
tally step that parses but fails a check raises a `VotingCheckFailed` subclass (a
`VerificationError`) whose `check` attribute names the check, e.g. `"overall_proof"`; a
caller's misuse (a choice outside the question's bounds, an unknown group) raises
`VotingUsageError` (a `LocalError`).
"""

from __future__ import annotations

from seoulchain.errors import DecodeError, LocalError, VerificationError


class MalformedVotingData(DecodeError):
    """Election data from outside is not valid JSON of the expected Belenios shape."""


class UnsupportedElection(MalformedVotingData):
    """The data is well formed but uses a Belenios feature this library does not implement."""


class VotingCheckFailed(VerificationError):
    """A ballot, key, decryption or result parsed but one of its checks failed."""

    check = "unknown"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.check}: {detail}")
        self.detail = detail


class NonCanonicalBallot(VotingCheckFailed):
    """The ballot bytes are not the canonical serialisation the signature is made over."""

    check = "canonical_form"


class WrongElection(VotingCheckFailed):
    """The ballot names another election (uuid or election hash)."""

    check = "election_hash"


class UnknownCredential(VotingCheckFailed):
    """The ballot's public credential is not in the election's list."""

    check = "credential"


class BadSignature(VotingCheckFailed):
    """The ballot's Schnorr signature (or its hash) does not verify."""

    check = "signature"


class BadIndividualProof(VotingCheckFailed):
    """A choice's proof that it encrypts 0 or 1 does not verify."""

    check = "individual_proof"


class BadOverallProof(VotingCheckFailed):
    """An answer's proof that its sum lies within min..max (or is blank) does not verify."""

    check = "overall_proof"


class BadBlankProof(BadOverallProof):
    """An answer's proof that it is either blank or not blank does not verify."""

    check = "blank_proof"


class InvalidGroupElement(VotingCheckFailed):
    """A number is not an element of the election's prime-order subgroup."""

    check = "group_element"


class BadTrusteeKey(VotingCheckFailed):
    """A trustee public key's proof of knowledge does not verify."""

    check = "trustee_key"


class BadDecryptionShare(VotingCheckFailed):
    """A trustee's partial decryption does not match its public key and the tally."""

    check = "partial_decryption"


class ResultMismatch(VotingCheckFailed):
    """A claimed result is not what the tally and the partial decryptions give."""

    check = "result"


class ArchiveMismatch(VotingCheckFailed):
    """An archive's hash chain, file names or event sequence are inconsistent."""

    check = "archive"


class AuditMismatch(VotingCheckFailed):
    """Revealed randomness does not reproduce the audited ballot's ciphertexts."""

    check = "audit"


class VotingUsageError(LocalError):
    """The caller asked for something the voting library cannot do as asked."""
