"""Result codes and per-transaction results.

Codes 1-6 are *admission* failures: a transaction failing them is never placed in a block
(a block that contains one is invalid). Codes 7 and above are *execution* failures: the
transaction is included, its nonce is consumed, its result is recorded, and it changes no
other state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from seoulchain.codec import encode


class ResultCode(IntEnum):
    """Why a transaction was accepted or refused, as stored on chain and shown to users."""

    OK = 0
    MALFORMED = 1
    TOO_LARGE = 2
    WRONG_CHAIN = 3
    BAD_SIGNATURE = 4
    BAD_NONCE = 5
    EXPIRED = 6
    UNKNOWN_SERVICE = 7
    UNKNOWN_METHOD = 8
    UNAUTHORIZED = 9
    BAD_ARGS = 10
    REFUSED = 11
    INTERNAL = 12
    MEMPOOL_FULL = 13
    DUPLICATE = 14

    @property
    def is_admission_failure(self) -> bool:
        """True for failures that keep a transaction out of any block."""
        return ResultCode.MALFORMED <= self <= ResultCode.EXPIRED


# Event attribute values are limited to these types so results encode deterministically.
EventValue = str | int | bytes | bool | None


@dataclass(frozen=True, slots=True)
class Event:
    """Something a transaction did that clients may subscribe to or search by."""

    kind: str
    attributes: dict[str, EventValue]

    def to_cbor(self) -> list[Any]:
        return [self.kind, self.attributes]


@dataclass(frozen=True, slots=True)
class TxResult:
    """The outcome of one transaction: a code, a human-readable log, and events."""

    code: ResultCode
    log: str = ""
    events: tuple[Event, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.code == ResultCode.OK

    def to_cbor(self) -> list[Any]:
        return [int(self.code), self.log, [event.to_cbor() for event in self.events]]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    @classmethod
    def from_cbor(cls, value: Any) -> TxResult:
        code, log, events = value
        return cls(ResultCode(code), log, tuple(Event(kind, attrs) for kind, attrs in events))
