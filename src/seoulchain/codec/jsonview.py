"""JSON views of ledger values for people and HTTP clients: bytes become lowercase hex."""

from __future__ import annotations

from typing import Any


def to_jsonable(value: Any) -> Any:
    """Return `value` with every byte string replaced by its hex text, recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value
