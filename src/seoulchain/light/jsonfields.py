"""Strict readers of a bundle's JSON fields: canonical hex and base64, exact objects, ranges.

Each reader returns the decoded value or raises `DecodeError` naming the field; a text that
decodes but is not the one canonical spelling of its bytes (upper-case hex, unpadded base64)
is refused, so a bundle has exactly one text for each value.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from seoulchain.errors import DecodeError


def encode_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_b64(value: Any, name: str, bytes_max: int) -> bytes:
    """Decode canonical padded base64 (the one text `encode_b64` gives) or raise."""
    if not isinstance(value, str) or len(value) > 4 * (bytes_max // 3 + 1):
        raise DecodeError(f"{name} must be base64 text of at most {bytes_max} bytes")
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise DecodeError(f"{name} is not valid base64") from exc
    if encode_b64(data) != value:
        raise DecodeError(f"{name} is not canonical base64")
    return data


def decode_hex(value: Any, name: str, size: int | None = None) -> bytes:
    """Decode lower-case hex (the one text `bytes.hex()` gives) or raise."""
    if not isinstance(value, str):
        raise DecodeError(f"{name} must be hex text")
    try:
        data = bytes.fromhex(value)
    except ValueError as exc:
        raise DecodeError(f"{name} is not hex") from exc
    if data.hex() != value:
        raise DecodeError(f"{name} is not lower-case hex without spaces")
    if size is not None and len(data) != size:
        raise DecodeError(f"{name} must be {size} bytes, got {len(data)}")
    return data


def require_int(value: Any, name: str, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum or value > 2**64 - 1:
        raise DecodeError(f"{name} must be an integer from {minimum} to 2^64 - 1")
    return value


def require_object(value: Any, name: str, keys: set[str]) -> dict[str, Any]:
    """Return `value` if it is a JSON object with exactly `keys`."""
    if not isinstance(value, dict):
        raise DecodeError(f"{name} must be a JSON object")
    if set(value) != keys:
        missing, extra = sorted(keys - set(value)), sorted(set(value) - keys)
        raise DecodeError(f"{name} fields are wrong (missing {missing}, unknown {extra})")
    return value


def require_list(value: Any, name: str, items_max: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > items_max:
        raise DecodeError(f"{name} must be a list of at most {items_max} items")
    return value
