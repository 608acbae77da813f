"""Safety rules: the only holder of the validator's signing key inside consensus.

Theory of operation (after Diem's safety-rules and CometBFT's privval): every proposal and
vote is signed here, and only after the record of what is about to be signed — its
(height, round, step, block id) and the hash of its sign bytes — has been saved to a
`SigningStateStore`, whose `save` must be durable when it returns. So no signature can
leave the process unless the record that forbids conflicting ones is on disk first, and a
restarted validator never signs:

- a different message for the same (height, round, step) — the same request gets the same
  signature (Ed25519 is deterministic), which lets a restarted node re-send its last vote;
- anything at a (height, round, step) lower than the last one signed.

Locks (`lockedRound`/`lockedValue`) are *not* kept here: they are restored by replaying
the consensus WAL, own messages included (see `seoulchain.consensus.machine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from seoulchain.codec import decode, encode
from seoulchain.consensus.messages import (
    NIL_BLOCK_ID,
    Proposal,
    Step,
    Vote,
    compute_proposal_sign_bytes,
    require_height,
    require_round,
)
from seoulchain.crypto import SigningKey, sha256
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import LocalError
from seoulchain.ledger.types import (
    FORMAT_VERSION,
    Block,
    Height,
    Round,
    compute_vote_sign_bytes,
    require,
    require_array,
    require_bytes,
    require_int,
    require_version,
)

# A record is six small fields; 128 bytes is ample and bounds what a store hands back.
SIGNED_RECORD_BYTES_MAX = 128


class SigningRefused(LocalError):
    """Signing was refused because it could conflict with something already signed."""


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """What was last signed: its position, block id and the hash of its sign bytes."""

    height: Height
    round: Round
    step: Step
    block_id: bytes
    sign_bytes_hash: bytes
    version: int = FORMAT_VERSION

    @property
    def position(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))

    def to_cbor(self) -> list[Any]:
        return [self.version, self.height, self.round, int(self.step), self.block_id,
                self.sign_bytes_hash]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes) -> SignedRecord:
        """Decode a record written by a store, or raise `DecodeError`."""
        fields = require_array(decode(data, SIGNED_RECORD_BYTES_MAX), "signed record", 6)
        require_version(fields[0], "signed record")
        step = require_int(fields[3], "signed record step")
        require(step in tuple(Step), "signed record step is not a step")
        return cls(require_height(fields[1], "signed record height"),
                   require_round(fields[2], "signed record round"), Step(step),
                   require_bytes(fields[4], "signed record block_id", HASH_BYTES,
                                 allow_empty=True),
                   require_bytes(fields[5], "signed record hash", HASH_BYTES), fields[0])


class SigningStateStore(Protocol):
    """Durable home of the last `SignedRecord`; `save` returns only once it is durable."""

    def load(self) -> SignedRecord | None: ...

    def save(self, record: SignedRecord) -> None: ...


class InMemorySigningStateStore:
    """A `SigningStateStore` in memory, for the simulator and tests (durable per process)."""

    def __init__(self, record: SignedRecord | None = None) -> None:
        self.record = record
        self.saves = 0

    def load(self) -> SignedRecord | None:
        return self.record

    def save(self, record: SignedRecord) -> None:
        self.record = record
        self.saves += 1


def is_regression(last: SignedRecord | None, request: SignedRecord) -> bool:
    """Rule: never sign at a (height, round, step) lower than the last one signed."""
    return last is not None and request.position < last.position


def is_conflict(last: SignedRecord | None, request: SignedRecord) -> bool:
    """Rule: never sign two different messages for the same (height, round, step)."""
    return (last is not None and request.position == last.position
            and request.sign_bytes_hash != last.sign_bytes_hash)


class SafetyRules:
    """Signs proposals and votes for one validator, refusing anything that could conflict."""

    def __init__(self, signing_key: SigningKey, chain_id: str, store: SigningStateStore) -> None:
        self._key = signing_key
        self.chain_id = chain_id
        self._store = store
        self._last = store.load()

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    @property
    def last_signed(self) -> SignedRecord | None:
        return self._last

    def sign_vote(self, vote_type: int, height: Height, round_: Round, block_id: bytes) -> Vote:
        """Return our signed vote, or raise `SigningRefused`."""
        sign_bytes = compute_vote_sign_bytes(self.chain_id, vote_type, height, round_, block_id)
        record = SignedRecord(height, round_, Step(vote_type), block_id, sha256(sign_bytes))
        signature = self._sign(record, sign_bytes)
        return Vote(vote_type, height, round_, block_id, self.public_key, signature)

    def sign_proposal(self, height: Height, round_: Round, pol_round: Round,
                      block: Block) -> Proposal:
        """Return our signed proposal of `block`, or raise `SigningRefused`."""
        block_id = block.block_id()
        assert block_id != NIL_BLOCK_ID and block.height == height
        sign_bytes = compute_proposal_sign_bytes(self.chain_id, height, round_, pol_round,
                                                 block_id)
        record = SignedRecord(height, round_, Step.PROPOSE, block_id, sha256(sign_bytes))
        signature = self._sign(record, sign_bytes)
        return Proposal(height, round_, pol_round, block, signature)

    def _sign(self, record: SignedRecord, sign_bytes: bytes) -> bytes:
        """Persist `record` durably, then sign; the signature never precedes the record."""
        if is_regression(self._last, record):
            raise SigningRefused(f"refusing to sign at {record.position}, "
                                 f"below the last signed {self._last.position}")  # type: ignore[union-attr]
        if is_conflict(self._last, record):
            raise SigningRefused(f"refusing to sign a second message at {record.position}")
        if record != self._last:
            self._store.save(record)
            self._last = record
        return self._key.sign(sign_bytes)
