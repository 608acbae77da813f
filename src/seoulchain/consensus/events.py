"""Inputs (events) and outputs (actions) of the consensus state machine, and the event codec.

Theory of operation: the driver (node or simulator) turns everything that happens to a
validator — a message from a peer, a timer, an answer from the application — into one of
the frozen `Event` values and hands it to `ConsensusMachine.on_event`, which returns a list
of `Action` values for the driver to carry out, in order. Peer messages enter as the bytes
that came off the wire, so the machine itself decodes, verifies and counts bad input.

Events have a byte encoding (`encode_event`/`decode_event`, CBOR `[tag, fields...]`) so the
driver can write each one to the write-ahead log before handing it over, and replay them
after a crash.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from seoulchain.codec import decode, encode
from seoulchain.consensus.evidence import DuplicateVoteEvidence
from seoulchain.consensus.messages import (
    PROPOSAL_BYTES_MAX,
    Proposal,
    Vote,
    require_height,
    require_round,
)
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.ledger.types import (
    Block,
    Commit,
    Height,
    Round,
    ValidatorSet,
    require,
    require_array,
    require_bytes,
    require_int,
)

# The largest event is a proposal (received or built locally) plus its tag and fields.
EVENT_BYTES_MAX = PROPOSAL_BYTES_MAX + 1024


class TimeoutKind(enum.IntEnum):
    """The three timeouts of the algorithm, and the end of round 0's wait for transactions."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    # The proof-of-life interval (create_empty_blocks_interval): round 0 stops waiting.
    WAIT_FOR_TXS = 4


# ------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class StartHeight:
    """Begin consensus at `height` with its validator set and the commit of `height - 1`."""

    height: Height
    validator_set: ValidatorSet
    last_commit: Commit | None


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A peer sent an encoded `Proposal` (or the WAL holds one of our own)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class VoteReceived:
    """A peer sent an encoded `Vote` (or the WAL holds one of our own)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A timeout scheduled by `ScheduleTimeout` expired."""

    kind: TimeoutKind
    height: Height
    round: Round


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The application's verdict on a block asked for by `RequestValidation`."""

    height: Height
    block_id: bytes
    is_valid: bool


@dataclass(frozen=True, slots=True)
class ProposalValueReady:
    """The application built the block asked for by `RequestBlock`."""

    height: Height
    round: Round
    block: Block


@dataclass(frozen=True, slots=True)
class TxsAvailable:
    """The mempool holds transactions: round 0 of `height` stops waiting for them."""

    height: Height


Event = (StartHeight | ProposalReceived | VoteReceived | TimeoutFired | ValidationResult
         | ProposalValueReady | TxsAvailable)


# ------------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class BroadcastProposal:
    """Send our signed proposal to every peer (log it to the WAL first)."""

    proposal: Proposal


@dataclass(frozen=True, slots=True)
class BroadcastVote:
    """Send our signed vote to every peer (log it to the WAL first)."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Deliver `TimeoutFired(kind, height, round)` after `duration_ms`."""

    kind: TimeoutKind
    height: Height
    round: Round
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RequestBlock:
    """We propose at (height, round): build a block and answer with `ProposalValueReady`."""

    height: Height
    round: Round
    last_commit: Commit | None


@dataclass(frozen=True, slots=True)
class RequestValidation:
    """Check `block` for `height` and answer with `ValidationResult`."""

    height: Height
    block: Block


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """`block` is decided; `commit` proves it. Execute and store it, then `StartHeight`."""

    block: Block
    commit: Commit


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """A validator equivocated; keep the evidence for a future block."""

    evidence: DuplicateVoteEvidence


Action = (BroadcastProposal | BroadcastVote | ScheduleTimeout | RequestBlock
          | RequestValidation | CommitBlock | ReportEvidence)


# ------------------------------------------------------------------------------- codec


class EventTag(enum.IntEnum):
    """The first element of an encoded event."""

    START_HEIGHT = 1
    PROPOSAL_RECEIVED = 2
    VOTE_RECEIVED = 3
    TIMEOUT_FIRED = 4
    VALIDATION_RESULT = 5
    PROPOSAL_VALUE_READY = 6
    TXS_AVAILABLE = 7


def encode_event(event: Event) -> bytes:
    """Return the deterministic CBOR encoding of `event`, for the WAL."""
    return encode(compute_event_cbor(event))


def compute_event_cbor(event: Event) -> list[Any]:
    """Return `event` as a CBOR array `[tag, fields...]`."""
    match event:
        case StartHeight(height, validator_set, last_commit):
            commit = None if last_commit is None else last_commit.to_cbor()
            return [int(EventTag.START_HEIGHT), height, validator_set.to_cbor(), commit]
        case ProposalReceived(data):
            return [int(EventTag.PROPOSAL_RECEIVED), data]
        case VoteReceived(data):
            return [int(EventTag.VOTE_RECEIVED), data]
        case TimeoutFired(kind, height, round_):
            return [int(EventTag.TIMEOUT_FIRED), int(kind), height, round_]
        case ValidationResult(height, block_id, is_valid):
            return [int(EventTag.VALIDATION_RESULT), height, block_id, is_valid]
        case ProposalValueReady(height, round_, block):
            return [int(EventTag.PROPOSAL_VALUE_READY), height, round_, block.to_cbor()]
        case TxsAvailable(height):
            return [int(EventTag.TXS_AVAILABLE), height]
    raise AssertionError(f"not an event: {event!r}")


def decode_event(data: bytes) -> Event:
    """Decode an event written by `encode_event`, or raise `DecodeError`."""
    value = decode(data, EVENT_BYTES_MAX)
    require(isinstance(value, list) and len(value) >= 1, "event must be a tagged array")
    tag = require_int(value[0], "event tag", 1)
    require(tag in tuple(EventTag), f"unknown event tag {tag}")
    return EVENT_DECODERS[EventTag(tag)](value[1:])


def decode_start_height(fields: list[Any]) -> StartHeight:
    require_array(fields, "start height", 3)
    commit = None if fields[2] is None else Commit.from_cbor(fields[2])
    return StartHeight(require_height(fields[0], "height"),
                       ValidatorSet.from_cbor(fields[1]), commit)


def decode_proposal_received(fields: list[Any]) -> ProposalReceived:
    require_array(fields, "proposal received", 1)
    return ProposalReceived(require_bytes(fields[0], "proposal bytes"))


def decode_vote_received(fields: list[Any]) -> VoteReceived:
    require_array(fields, "vote received", 1)
    return VoteReceived(require_bytes(fields[0], "vote bytes"))


def decode_timeout_fired(fields: list[Any]) -> TimeoutFired:
    require_array(fields, "timeout fired", 3)
    kind = require_int(fields[0], "timeout kind", 1)
    require(kind in tuple(TimeoutKind), f"unknown timeout kind {kind}")
    return TimeoutFired(TimeoutKind(kind), require_height(fields[1], "height"),
                        require_round(fields[2], "round"))


def decode_validation_result(fields: list[Any]) -> ValidationResult:
    require_array(fields, "validation result", 3)
    require(isinstance(fields[2], bool), "validation verdict must be a boolean")
    return ValidationResult(require_height(fields[0], "height"),
                            require_bytes(fields[1], "block_id", HASH_BYTES), fields[2])


def decode_proposal_value_ready(fields: list[Any]) -> ProposalValueReady:
    require_array(fields, "proposal value ready", 3)
    return ProposalValueReady(require_height(fields[0], "height"),
                              require_round(fields[1], "round"), Block.from_cbor(fields[2]))


def decode_txs_available(fields: list[Any]) -> TxsAvailable:
    require_array(fields, "txs available", 1)
    return TxsAvailable(require_height(fields[0], "height"))


EVENT_DECODERS = {
    EventTag.START_HEIGHT: decode_start_height,
    EventTag.PROPOSAL_RECEIVED: decode_proposal_received,
    EventTag.VOTE_RECEIVED: decode_vote_received,
    EventTag.TIMEOUT_FIRED: decode_timeout_fired,
    EventTag.VALIDATION_RESULT: decode_validation_result,
    EventTag.PROPOSAL_VALUE_READY: decode_proposal_value_ready,
    EventTag.TXS_AVAILABLE: decode_txs_available,
}
