"""Deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding) over a small data model.

Theory of operation: everything that is signed or hashed is encoded here, so two honest
implementations must produce the same bytes for the same value. The data model is the
intersection every implementation handles identically: unsigned and negative integers that
fit in 64 bits, byte strings, UTF-8 text strings, arrays, maps with text-string keys,
booleans and null. No floats (services must be deterministic), no tags, no indefinite
lengths, no duplicate keys.

`decode` is strict: it accepts an input only if re-encoding the decoded value gives back
exactly the same bytes. That single rule rejects non-minimal integer or length headers,
unsorted or duplicate map keys, indefinite lengths and trailing bytes. Anything it cannot
accept raises `DecodeError`, never another exception.
"""

from __future__ import annotations

from typing import Any

import cbor2

from seoulchain.errors import DecodeError, LocalError

# Nesting deeper than this is never needed by a ledger structure; it bounds recursion on
# hostile input well below Python's own recursion limit.
DEPTH_MAX = 32
# Integers are limited to what CBOR encodes without tags (major types 0 and 1).
INT_MIN = -(2**64)
INT_MAX = 2**64 - 1
# Absolute ceiling for any single decode call; callers pass tighter, structure-specific limits.
DECODE_BYTES_MAX = 16 * 1024 * 1024


def encode(value: Any) -> bytes:
    """Return the deterministic CBOR encoding of `value`, rejecting values outside the model."""
    check_value(value, 0)
    try:
        return cbor2.dumps(value, canonical=True)
    except UnicodeEncodeError as exc:  # a str holding lone surrogates has no UTF-8 form
        raise LocalError(f"text string is not valid Unicode: {exc.reason}") from exc


def decode(data: bytes, bytes_max: int = DECODE_BYTES_MAX) -> Any:
    """Decode canonical CBOR `data` of at most `bytes_max` bytes, or raise `DecodeError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > bytes_max:
        raise DecodeError(f"encoding is {len(data)} bytes, limit is {bytes_max}")
    if not data:
        raise DecodeError("empty input")
    try:
        value = cbor2.loads(data, max_depth=DEPTH_MAX + 1, allow_indefinite=False,
                            allow_duplicate_keys=False)
    except RecursionError as exc:
        raise DecodeError("nesting too deep") from exc
    except Exception as exc:  # cbor2 raises several types on hostile input; all mean "bad bytes"
        raise DecodeError(f"not valid CBOR: {exc}") from exc
    try:
        check_value(value, 0)
    except LocalError as exc:
        raise DecodeError(str(exc)) from exc
    if cbor2.dumps(value, canonical=True) != data:
        raise DecodeError("not the canonical (deterministic) CBOR encoding of its value")
    return value


# Types accepted as they are; checked by exact type first because this runs on every
# encode and decode (subclasses such as IntEnum take the slower isinstance path).
SCALAR_TYPES = frozenset({type(None), bool, str, bytes})


def check_value(value: Any, depth: int) -> None:
    """Raise `LocalError` unless `value` lies inside the deterministic data model."""
    if depth > DEPTH_MAX:
        raise LocalError(f"nesting deeper than {DEPTH_MAX}")
    kind = type(value)
    if kind in SCALAR_TYPES:
        return
    if kind is int or (kind is not bool and isinstance(value, int)):
        if not INT_MIN <= value <= INT_MAX:
            # Never format the integer itself: a decoded bignum may exceed Python's
            # int-to-str digit limit, and str() would then raise ValueError.
            raise LocalError(f"integer of {value.bit_length()} bits does not fit in 64 bits")
        return
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        for item in value:
            if type(item) not in SCALAR_TYPES:
                check_value(item, depth + 1)
        return
    if kind is dict or isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                raise LocalError(f"map key of type {type(key).__name__} is not a text string")
            if type(item) not in SCALAR_TYPES:
                check_value(item, depth + 1)
        return
    if isinstance(value, bool | str | bytes):
        return
    raise LocalError(f"type {type(value).__name__} is not allowed in deterministic CBOR")
