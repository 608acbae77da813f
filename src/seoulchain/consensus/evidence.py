"""Evidence of misbehaviour: two conflicting signed votes by one validator.

Theory of operation: a correct validator signs at most one vote per (height, round, type).
Two validly signed votes by the same validator for the same (height, round, type) but
different block ids prove equivocation to anyone holding that height's validator set. The
two votes are kept in canonical order (lower block id first) so that the same equivocation
always encodes to the same bytes and hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seoulchain.codec import decode, encode
from seoulchain.consensus.messages import VOTE_BYTES_MAX, Vote
from seoulchain.crypto import sha256
from seoulchain.errors import DecodeError, LocalError, VerificationError
from seoulchain.ledger.types import FORMAT_VERSION, ValidatorSet, require_array, require_version

# Two votes and a version number.
EVIDENCE_BYTES_MAX = 2 * VOTE_BYTES_MAX + 16


def is_conflicting_pair(vote_a: Vote, vote_b: Vote) -> bool:
    """Return True if the votes are one validator's for one (height, round, type), two ids."""
    return (vote_a.validator == vote_b.validator and vote_a.height == vote_b.height
            and vote_a.round == vote_b.round and vote_a.vote_type == vote_b.vote_type
            and vote_a.block_id != vote_b.block_id)


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two conflicting votes signed by one validator, lower block id first."""

    vote_a: Vote
    vote_b: Vote
    version: int = FORMAT_VERSION

    @classmethod
    def create(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        """Return the evidence for two conflicting votes, in canonical order."""
        if not is_conflicting_pair(first, second):
            raise LocalError("votes do not conflict")
        if first.block_id > second.block_id:
            first, second = second, first
        return cls(first, second)

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    def to_cbor(self) -> list[Any]:
        return [self.version, self.vote_a.to_cbor(), self.vote_b.to_cbor()]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    def hash(self) -> bytes:
        return sha256(self.encode())

    def verify(self, chain_id: str, validator_set: ValidatorSet) -> None:
        """Raise `VerificationError` unless both votes are validly signed by a member."""
        if not is_conflicting_pair(self.vote_a, self.vote_b):
            raise VerificationError("evidence votes do not conflict")
        if self.vote_a.block_id >= self.vote_b.block_id:
            raise VerificationError("evidence votes are not in canonical order")
        self.vote_a.verify(chain_id, validator_set)
        self.vote_b.verify(chain_id, validator_set)

    @classmethod
    def decode(cls, data: bytes) -> DuplicateVoteEvidence:
        """Decode evidence, or raise `DecodeError`."""
        return cls.from_cbor(decode(data, EVIDENCE_BYTES_MAX))

    @classmethod
    def from_cbor(cls, value: Any) -> DuplicateVoteEvidence:
        fields = require_array(value, "duplicate vote evidence", 3)
        require_version(fields[0], "duplicate vote evidence")
        vote_a = Vote.from_cbor(fields[1])
        vote_b = Vote.from_cbor(fields[2])
        if not is_conflicting_pair(vote_a, vote_b) or vote_a.block_id >= vote_b.block_id:
            raise DecodeError("evidence must hold two conflicting votes, lower block id first")
        return cls(vote_a, vote_b, fields[0])


def verify_evidence_bytes(data: bytes, chain_id: str,
                          validator_set: ValidatorSet) -> tuple[bytes, int]:
    """Decode and verify raw evidence; return (offending validator, height) or raise."""
    evidence = DuplicateVoteEvidence.decode(data)
    evidence.verify(chain_id, validator_set)
    return evidence.validator, evidence.vote_a.height
