"""Records, their canonical JSON and the salted commitments the chain stores.

A record is a JSON object whose values are strings, integers, booleans, null, lists and
objects. Its canonical form is RFC 8785 (JCS) restricted to that subset: object members
sorted by the UTF-16 code units of their names, no insignificant whitespace, UTF-8, the
shortest escapes. Numbers other than integers in the I-JSON range are refused, since their
text is not unique across implementations. The commitment to one version of a record is
SHA-256(salt ‖ canonical record) with a fresh 32-byte salt: the salt keeps a guessable
record (a name and a birth date) from being confirmed by hashing candidates.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from seoulchain.crypto import sha256
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.vault.errors import InvalidRecord, RecordTooLarge

# A citizen's registry record (names, numbers, addresses, family relations) is a few KiB of
# JSON; 64 KiB bounds a row and a decryption while leaving room for long histories.
RECORD_BYTES_MAX = 64 * 1024
# A record's JSON as given (spaces, escapes) may be longer than its canonical form; text
# past twice the limit cannot be a record that fits, and is refused before it is parsed.
RECORD_TEXT_BYTES_MAX = 2 * RECORD_BYTES_MAX
# Nesting deeper than this is not a person's record; it also bounds the recursion here.
RECORD_DEPTH_MAX = 32
# I-JSON (RFC 7493): integers beyond ±(2^53 − 1) lose precision in many JSON readers.
RECORD_INTEGER_MAX = 2**53 - 1
# 256 random bits per version, as strong as the hash it is mixed into.
SALT_BYTES = 32
# did:seoul:<method-specific id> (W3C DID Core syntax: letters, digits, . - _ % and : as a
# separator). 256 characters bound an index key; real identifiers are far shorter.
SUBJECT_CHARS_MAX = 256
SUBJECT_PATTERN = re.compile(r"did:seoul:(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})+"
                             r"(?::(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})+)*")


@dataclass(frozen=True)
class Commitment:
    """The on-chain commitment to one version of a subject's record."""

    subject: str
    version: int
    digest: bytes

    def hex(self) -> str:
        return self.digest.hex()


def check_subject(subject: str) -> None:
    """Raise `InvalidRecord` unless `subject` is a did:seoul DID of bounded length."""
    if len(subject) > SUBJECT_CHARS_MAX or not SUBJECT_PATTERN.fullmatch(subject):
        raise InvalidRecord(f"subject {subject[:80]!r} is not a did:seoul DID (did:seoul:"
                            f"<id>, at most {SUBJECT_CHARS_MAX} characters)")


def generate_salt() -> bytes:
    """Return a fresh salt from the operating system's CSPRNG."""
    return os.urandom(SALT_BYTES)


def compute_commitment(salt: bytes, canonical_record: bytes) -> bytes:
    """Return SHA-256(salt ‖ canonical record), the value a DID's record commitment holds."""
    if len(salt) != SALT_BYTES:
        raise InvalidRecord(f"a salt is {SALT_BYTES} bytes, got {len(salt)}")
    digest = sha256(salt, canonical_record)
    assert len(digest) == HASH_BYTES
    return digest


def encode_record(record: Any) -> bytes:
    """Return the canonical JSON bytes of `record`, or raise `InvalidRecord`."""
    if not isinstance(record, dict):
        raise InvalidRecord(f"a record is a JSON object, not {describe_type(record)}")
    try:
        text = json.dumps(canonicalise(record, 0), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False)
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRecord("the record holds a lone surrogate, which is not Unicode text"
                            ) from None
    if len(data) > RECORD_BYTES_MAX:
        raise RecordTooLarge(f"the record is {len(data)} bytes of canonical JSON; the vault "
                             f"holds at most {RECORD_BYTES_MAX}")
    return data


def canonicalise(value: Any, depth: int) -> Any:
    """Return `value` with every object's members in JCS order; refuse what JSON lacks."""
    if depth > RECORD_DEPTH_MAX:
        raise InvalidRecord(f"the record is nested deeper than {RECORD_DEPTH_MAX} levels")
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise InvalidRecord("every member name of a record's objects is a string")
        return {key: canonicalise(value[key], depth + 1)
                for key in sorted(value, key=lambda name: name.encode("utf-16-be"))}
    if isinstance(value, list):
        return [canonicalise(item, depth + 1) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > RECORD_INTEGER_MAX:
            raise InvalidRecord(f"integer {value} is outside ±{RECORD_INTEGER_MAX} (I-JSON)")
        return value
    raise InvalidRecord(f"a record holds strings, integers, booleans, null, lists and "
                        f"objects, not {describe_type(value)} (write a decimal as a string)")


def describe_type(value: Any) -> str:
    """Return the JSON name of a value's type, for messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "an integer", float: "a non-integer number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def parse_record(text: str | bytes) -> dict[str, Any]:
    """Parse a record from JSON text: one object, no duplicate names, no NaN, no floats."""
    if len(text) > RECORD_TEXT_BYTES_MAX:
        raise RecordTooLarge(f"the record's JSON is {len(text)} bytes; the vault holds at "
                             f"most {RECORD_BYTES_MAX} of canonical JSON")

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise InvalidRecord("the record names a member twice in one object")
        return dict(pairs)

    def refuse_constant(name: str) -> Any:
        raise InvalidRecord(f"{name} is not a JSON number")

    try:
        value = json.loads(text, object_pairs_hook=refuse_duplicates,
                           parse_constant=refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidRecord(f"the record is not JSON: {exc}") from None
    encode_record(value)  # the same checks as a record given as a value
    return value  # type: ignore[no-any-return]
