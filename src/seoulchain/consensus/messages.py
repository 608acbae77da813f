"""Consensus messages (proposal, vote), their byte-exact encodings, and commit verification.

Theory of operation: a `Proposal` carries the whole block proposed at (height, round) with
its valid round (`pol_round`, -1 if none) and the signature of the round's proposer; a
`Vote` is one validator's signed prevote or precommit for a block id, or for nil (empty
block id). Both follow the ledger's conventions (docs/spec/consensus.md): a CBOR array with
the format version first, `decode` either returns the message or raises `DecodeError`
whatever the bytes, and `verify` checks signatures against a validator set or raises
`VerificationError`.

A precommit for a block signs exactly the bytes a `CommitSig` inside a `Commit` signs
(`compute_vote_sign_bytes`), so precommits collected by the state machine are the commit.
`verify_commit` is the one strict commit check shared by consensus, block sync, audit and
the light client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from seoulchain.codec import decode, encode
from seoulchain.consensus.proposer import compute_proposer
from seoulchain.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, is_valid_signature
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import VerificationError
from seoulchain.ledger.types import (
    BLOCK_BYTES_MAX,
    FORMAT_VERSION,
    Block,
    Commit,
    CommitSig,
    Height,
    Round,
    ValidatorSet,
    VoteType,
    compute_vote_sign_bytes,
    require,
    require_array,
    require_bytes,
    require_height,
    require_round,
    require_version,
)

# One bound for every height and every round (ledger.types): CometBFT's int64 and int32.
from seoulchain.ledger.types import HEIGHT_MAX as HEIGHT_MAX
from seoulchain.ledger.types import ROUND_MAX as ROUND_MAX

PROPOSAL_CONTEXT = "seoulchain/proposal"
NIL_BLOCK_ID = b""
NO_ROUND = Round(-1)

# A vote is seven fields, at most 1 + 1 + 1 + 9 + 5 + 34 + 34 + 66 = 151 bytes encoded;
# the limit leaves headroom for a future field without admitting bloated input.
VOTE_BYTES_MAX = 256
# Everything in a proposal but the block: header byte, version, height, round, pol_round
# and signature take at most 1 + 1 + 9 + 5 + 5 + 66 = 87 bytes.
PROPOSAL_OVERHEAD_BYTES_MAX = 256
PROPOSAL_BYTES_MAX = BLOCK_BYTES_MAX + PROPOSAL_OVERHEAD_BYTES_MAX


class Step(enum.IntEnum):
    """The steps of a round, in protocol order; prevote and precommit equal their VoteType."""

    PROPOSE = 0
    PREVOTE = VoteType.PREVOTE
    PRECOMMIT = VoteType.PRECOMMIT


class UnknownValidatorError(VerificationError):
    """A message or commit signature names a key outside the validator set."""


class InvalidSignatureError(VerificationError):
    """A signature does not verify under the key it claims."""


def compute_proposal_sign_bytes(chain_id: str, height: Height, round_: Round, pol_round: Round,
                                block_id: bytes) -> bytes:
    """Return the bytes a proposer signs to propose `block_id` at (height, round)."""
    return encode([PROPOSAL_CONTEXT, chain_id,
                   [FORMAT_VERSION, height, round_, pol_round, block_id]])


@dataclass(frozen=True, slots=True)
class Vote:
    """A validator's signed prevote or precommit for a block id (empty for nil)."""

    vote_type: int
    height: Height
    round: Round
    block_id: bytes
    validator: bytes
    signature: bytes
    version: int = FORMAT_VERSION

    @property
    def is_nil(self) -> bool:
        return self.block_id == NIL_BLOCK_ID

    def sign_bytes(self, chain_id: str) -> bytes:
        """Return the exact bytes the validator signs."""
        return compute_vote_sign_bytes(chain_id, self.vote_type, self.height, self.round,
                                       self.block_id)

    def to_cbor(self) -> list[Any]:
        return [self.version, self.vote_type, self.height, self.round, self.block_id,
                self.validator, self.signature]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    def to_commit_sig(self) -> CommitSig:
        """Return this precommit as a signature inside a `Commit`."""
        assert self.vote_type == VoteType.PRECOMMIT and not self.is_nil
        return CommitSig(self.validator, self.signature)

    def verify(self, chain_id: str, validator_set: ValidatorSet) -> None:
        """Raise `VerificationError` unless a member of `validator_set` signed this vote."""
        if validator_set.get_power(self.validator) == 0:
            raise UnknownValidatorError(f"vote from unknown validator {self.validator.hex()}")
        if not is_valid_signature(self.validator, self.sign_bytes(chain_id), self.signature):
            raise InvalidSignatureError(f"invalid vote signature by {self.validator.hex()}")

    @classmethod
    def decode(cls, data: bytes) -> Vote:
        """Decode a vote, or raise `DecodeError`."""
        return cls.from_cbor(decode(data, VOTE_BYTES_MAX))

    @classmethod
    def from_cbor(cls, value: Any) -> Vote:
        fields = require_array(value, "vote", 7)
        require_version(fields[0], "vote")
        require(fields[1] in (VoteType.PREVOTE, VoteType.PRECOMMIT)
                and not isinstance(fields[1], bool), "vote type must be prevote or precommit")
        return cls(
            vote_type=fields[1],
            height=require_height(fields[2], "vote height"),
            round=require_round(fields[3], "vote round"),
            block_id=require_bytes(fields[4], "vote block_id", HASH_BYTES, allow_empty=True),
            validator=require_bytes(fields[5], "vote validator", PUBLIC_KEY_BYTES),
            signature=require_bytes(fields[6], "vote signature", SIGNATURE_BYTES),
            version=fields[0],
        )


@dataclass(frozen=True, slots=True)
class Proposal:
    """The block proposed at (height, round), its valid round, and the proposer's signature."""

    height: Height
    round: Round
    pol_round: Round
    block: Block
    signature: bytes
    version: int = FORMAT_VERSION
    _block_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_block_id", self.block.block_id())

    @property
    def block_id(self) -> bytes:
        return self._block_id

    def sign_bytes(self, chain_id: str) -> bytes:
        """Return the exact bytes the proposer signs."""
        return compute_proposal_sign_bytes(chain_id, self.height, self.round, self.pol_round,
                                           self.block_id)

    def to_cbor(self) -> list[Any]:
        return [self.version, self.height, self.round, self.pol_round, self.block.to_cbor(),
                self.signature]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    def verify(self, chain_id: str, validator_set: ValidatorSet) -> None:
        """Raise `VerificationError` unless the round's proposer signed a block of this chain."""
        header = self.block.header
        if header.chain_id != chain_id or header.height != self.height:
            raise VerificationError(
                f"proposal at height {self.height} carries a block of {header.chain_id!r} "
                f"at height {header.height}")
        proposer = compute_proposer(validator_set, self.height, self.round).public_key
        if not is_valid_signature(proposer, self.sign_bytes(chain_id), self.signature):
            raise InvalidSignatureError(
                f"proposal not signed by the proposer of ({self.height}, {self.round})")

    @classmethod
    def decode(cls, data: bytes) -> Proposal:
        """Decode a proposal, or raise `DecodeError`."""
        return cls.from_cbor(decode(data, PROPOSAL_BYTES_MAX))

    @classmethod
    def from_cbor(cls, value: Any) -> Proposal:
        fields = require_array(value, "proposal", 6)
        require_version(fields[0], "proposal")
        round_ = require_round(fields[2], "proposal round")
        pol_round = require_round(fields[3], "proposal pol_round", NO_ROUND)
        require(pol_round < round_, "proposal pol_round must be below its round")
        return cls(
            height=require_height(fields[1], "proposal height"),
            round=round_,
            pol_round=pol_round,
            block=Block.from_cbor(fields[4]),
            signature=require_bytes(fields[5], "proposal signature", SIGNATURE_BYTES),
            version=fields[0],
        )


def verify_commit(chain_id: str, validator_set: ValidatorSet, commit: Commit, block_id: bytes,
                  height: Height) -> None:
    """Raise `VerificationError` unless `commit` proves > 2/3 power precommitted `block_id`.

    Strict: every signature must verify and belong to a distinct member of the set, listed in
    ascending public key order (one canonical commit per signer set), for the expected
    height and block id.
    """
    if commit.version != FORMAT_VERSION:
        raise VerificationError(f"commit has unsupported format version {commit.version}")
    if commit.height != height:
        raise VerificationError(f"commit is for height {commit.height}, expected {height}")
    if commit.block_id != block_id:
        raise VerificationError("commit is for another block id")
    sign_bytes = compute_vote_sign_bytes(chain_id, VoteType.PRECOMMIT, commit.height,
                                         commit.round, commit.block_id)
    powers = {validator.public_key: validator.power for validator in validator_set.validators}
    signed_power = 0
    previous = b""
    for sig in commit.signatures:
        if sig.validator == previous:
            raise VerificationError(f"duplicate commit signature by {sig.validator.hex()}")
        if sig.validator < previous:
            raise VerificationError("commit signatures are not in ascending key order")
        previous = sig.validator
        if sig.validator not in powers:
            raise UnknownValidatorError(f"commit signed by unknown validator {sig.validator.hex()}")
        if not is_valid_signature(sig.validator, sign_bytes, sig.signature):
            raise InvalidSignatureError(f"invalid commit signature by {sig.validator.hex()}")
        signed_power += powers[sig.validator]
    if not validator_set.is_quorum(signed_power):
        raise VerificationError(
            f"commit carries {signed_power} of {validator_set.total_power} voting power, "
            "not more than two thirds")
