"""JSON as Belenios 2.0 writes it: compact, fields in the specification's order, UTF-8.

The bytes matter where they are hashed (the election fingerprint, a ballot's signature
hash, the archive's file names), so every structure is built as an ordered dict and
written by `dump_json`, which matches Yojson's compact output for the data this library
produces; `load_json` parses bytes from outside into plain objects, bounded in size.
"""

from __future__ import annotations

import json
from typing import Any

from seoulchain.voting.errors import MalformedVotingData

# The largest JSON document read from outside: a ballot of 16 questions of 64 answers is
# about 1 MiB; an encrypted tally or partial decryption of the same shape is smaller.
JSON_BYTES_MAX = 4 * 1024 * 1024


def dump_json(value: Any) -> str:
    """Serialise `value` compactly, non-ASCII kept as UTF-8, DEL escaped as Yojson does."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("\x7f", "\\u007f")


def load_json(raw: bytes | str, what: str) -> Any:
    """Parse a JSON document from outside, refusing oversized or invalid input."""
    if len(raw) > JSON_BYTES_MAX:
        raise MalformedVotingData(f"{what} is larger than {JSON_BYTES_MAX} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedVotingData(f"{what} is not valid JSON: {exc}") from None


def require_dict(value: Any, keys: set[str], what: str, optional: frozenset[str] = frozenset(),
                 ) -> dict[str, Any]:
    """Check that `value` is an object with exactly the required keys plus optional ones."""
    if not isinstance(value, dict):
        raise MalformedVotingData(f"{what} is not a JSON object")
    missing = keys - value.keys()
    extra = value.keys() - keys - optional
    if missing or extra:
        raise MalformedVotingData(f"{what} has missing fields {sorted(missing)} or unknown "
                                  f"fields {sorted(extra)}")
    return value


def require_list(value: Any, what: str, length: int | None = None) -> list[Any]:
    """Check that `value` is an array, of `length` items when given."""
    if not isinstance(value, list):
        raise MalformedVotingData(f"{what} is not a JSON array")
    if length is not None and len(value) != length:
        raise MalformedVotingData(f"{what} has {len(value)} items, expected {length}")
    return value
