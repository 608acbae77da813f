"""W3C Bitstring Status List v1.0: revocation and suspension bits of many credentials.

Theory of operation: an issuer keeps one bitstring per status purpose; each credential it
issues names one index in it (`credentialStatus`, a `BitstringStatusListEntry`), and the
issuer publishes the whole list as a signed `BitstringStatusListCredential`. A verifier
fetches the list credential once, verifies its proof (`integrity.verify`) and reads the
bit: 1 means revoked (or suspended). Index 0 is the left-most bit of the first byte.

The list is GZIP-compressed and written as multibase base64url without padding (header
'u'). Decoding is bounded: the decompressed list may not exceed `STATUS_LIST_BYTES_MAX`
(a few hundred bytes of GZIP can otherwise inflate to gigabytes). Lists are at least
`STATUS_LIST_ENTRIES_MIN` long and indexes are drawn at random (`allocate_index`), so that
neither the list's size nor a credential's index tells how many credentials were issued,
or in which order.
"""

from __future__ import annotations

import base64
import gzip
import random
import zlib
from collections.abc import Set
from typing import Any

from seoulchain.credentials.errors import CredentialUsageError, StatusListError
from seoulchain.credentials.loader import CREDENTIALS_V2_URL

# Bitstring Status List v1.0 (its bitstring generation algorithm and privacy
# considerations): a list has at least 131,072 entries (16 KiB), so that each credential
# hides in a large herd and a list's size says little about how many were issued.
STATUS_LIST_ENTRIES_MIN = 131_072
# The decompressed list a verifier accepts: 2 MiB is 16,777,216 entries, room for one
# credential of a kind per resident of Seoul (about 9.4 million) on a single list.
STATUS_LIST_BYTES_MAX = 2 * 1024 * 1024
# The encoded list a verifier decodes; GZIP never grows data by more than a few bytes per
# 16 KiB block, so the encoding of a full list of random bits stays under this.
ENCODED_LIST_CHARS_MAX = STATUS_LIST_BYTES_MAX * 4 // 3 + 1024
# Multibase header of base64url without padding (the multibase table, "u").
MULTIBASE_BASE64URL = "u"
BITS_PER_BYTE = 8
# GZIP framing for zlib (RFC 1952): 16 + the 15-bit window.
GZIP_WBITS = 16 + zlib.MAX_WBITS
# Purposes whose status is one bit (statusSize 1), the only size supported here.
STATUS_PURPOSES = frozenset({"revocation", "suspension"})
STATUS_LIST_CREDENTIAL_TYPE = "BitstringStatusListCredential"
STATUS_LIST_TYPE = "BitstringStatusList"
STATUS_ENTRY_TYPE = "BitstringStatusListEntry"


class StatusList:
    """A bitstring of status bits, one per credential index."""

    def __init__(self, length: int = STATUS_LIST_ENTRIES_MIN,
                 bits: bytes | None = None) -> None:
        if length < STATUS_LIST_ENTRIES_MIN or length % BITS_PER_BYTE \
                or length > STATUS_LIST_BYTES_MAX * BITS_PER_BYTE:
            raise CredentialUsageError(
                f"a status list has {STATUS_LIST_ENTRIES_MIN} to "
                f"{STATUS_LIST_BYTES_MAX * BITS_PER_BYTE} entries, a multiple of 8; "
                f"got {length}")
        if bits is not None and len(bits) * BITS_PER_BYTE != length:
            raise CredentialUsageError("the bits do not match the list's length")
        self._bits = bytearray(bits if bits is not None else length // BITS_PER_BYTE)

    @property
    def length(self) -> int:
        """Return the number of entries."""
        return len(self._bits) * BITS_PER_BYTE

    def get(self, index: int) -> bool:
        """Return the status bit at `index` (True: revoked or suspended)."""
        byte, mask = self._position(index)
        return bool(self._bits[byte] & mask)

    def set(self, index: int, status: bool) -> None:
        """Set the status bit at `index`."""
        byte, mask = self._position(index)
        self._bits[byte] = self._bits[byte] | mask if status else self._bits[byte] & ~mask

    def to_bytes(self) -> bytes:
        """Return the raw bitstring."""
        return bytes(self._bits)

    def encode(self) -> str:
        """Return the `encodedList`: multibase base64url (no padding) of the GZIP'd bits."""
        compressed = gzip.compress(bytes(self._bits), mtime=0)
        return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode()

    @classmethod
    def decode(cls, encoded_list: Any) -> StatusList:
        """Return the list in an `encodedList`, or raise `StatusListError`."""
        return cls.from_bits(decode_bits(encoded_list))

    @classmethod
    def from_bits(cls, bits: bytes) -> StatusList:
        """Return a list over raw bits, refusing one shorter than the minimum."""
        if len(bits) * BITS_PER_BYTE < STATUS_LIST_ENTRIES_MIN:
            raise StatusListError(f"a status list has at least {STATUS_LIST_ENTRIES_MIN} "
                                  f"entries, this one {len(bits) * BITS_PER_BYTE}")
        return cls(len(bits) * BITS_PER_BYTE, bits)

    def _position(self, index: int) -> tuple[int, int]:
        if not isinstance(index, int) or isinstance(index, bool) \
                or not 0 <= index < self.length:
            raise CredentialUsageError(f"status index {index!r} is outside the list "
                                       f"(0 to {self.length - 1})")
        return index // BITS_PER_BYTE, 0x80 >> (index % BITS_PER_BYTE)


def decode_bits(encoded_list: Any) -> bytes:
    """Return the bits of an `encodedList`, decompressing at most `STATUS_LIST_BYTES_MAX`."""
    if not isinstance(encoded_list, str) or not encoded_list.startswith(MULTIBASE_BASE64URL):
        raise StatusListError("encodedList must be multibase base64url text (header 'u')")
    if len(encoded_list) > ENCODED_LIST_CHARS_MAX:
        raise StatusListError(f"encodedList is longer than {ENCODED_LIST_CHARS_MAX} characters")
    body = encoded_list[1:]
    try:
        compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise StatusListError("encodedList is not base64url") from None
    inflater = zlib.decompressobj(GZIP_WBITS)
    try:
        bits = inflater.decompress(compressed, STATUS_LIST_BYTES_MAX + 1)
    except zlib.error as exc:
        raise StatusListError(f"encodedList is not GZIP data: {exc}") from None
    if len(bits) > STATUS_LIST_BYTES_MAX:
        raise StatusListError(f"encodedList decompresses to more than {STATUS_LIST_BYTES_MAX} "
                              "bytes")
    if not inflater.eof or inflater.unused_data:
        raise StatusListError("encodedList is truncated or has data after its GZIP stream")
    return bits


def allocate_index(used: Set[int], rng: random.Random,
                   length: int = STATUS_LIST_ENTRIES_MIN) -> int:
    """Return a uniformly random index of a list of `length` entries not in `used`."""
    if len(used) >= length:
        raise CredentialUsageError(f"every index of the {length}-entry status list is used")
    # While the list is at most half full, a draw is free with probability ≥ 1/2.
    if len(used) * 2 <= length:
        while (index := rng.randrange(length)) in used:
            pass
        return index
    return rng.choice([index for index in range(length) if index not in used])


def build_status_entry(list_credential_id: str, index: int,
                       status_purpose: str = "revocation") -> dict[str, Any]:
    """Return the `credentialStatus` naming `index` of a status list credential."""
    check_purpose(status_purpose)
    return {"id": f"{list_credential_id}#{index}", "type": STATUS_ENTRY_TYPE,
            "statusPurpose": status_purpose, "statusListIndex": str(index),
            "statusListCredential": list_credential_id}


def build_status_list_credential(credential_id: str, issuer: str, status_list: StatusList,
                                 status_purpose: str = "revocation",
                                 valid_from: str | None = None,
                                 valid_until: str | None = None) -> dict[str, Any]:
    """Return an unsigned `BitstringStatusListCredential` (sign it with `integrity.sign`)."""
    check_purpose(status_purpose)
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2_URL], "id": credential_id,
        "type": ["VerifiableCredential", STATUS_LIST_CREDENTIAL_TYPE], "issuer": issuer,
    }
    if valid_from is not None:
        credential["validFrom"] = valid_from
    if valid_until is not None:
        credential["validUntil"] = valid_until
    credential["credentialSubject"] = {
        "id": f"{credential_id}#list", "type": STATUS_LIST_TYPE,
        "statusPurpose": status_purpose, "encodedList": status_list.encode(),
    }
    return credential


def get_status(credential: dict[str, Any], list_credential: dict[str, Any],
               status_purpose: str = "revocation") -> bool:
    """Return the credential's status bit in a (separately verified) list credential."""
    entry = find_status_entry(credential, status_purpose)
    if entry.get("statusListCredential") != list_credential.get("id"):
        raise StatusListError("the credential's status is kept in another list credential")
    if issuer_id(credential) is None or issuer_id(credential) != issuer_id(list_credential):
        raise StatusListError("the status list credential has another issuer than the "
                              "credential")
    types = list_credential.get("type")
    subject = list_credential.get("credentialSubject")
    if not isinstance(types, list) or STATUS_LIST_CREDENTIAL_TYPE not in types \
            or not isinstance(subject, dict) or subject.get("type") != STATUS_LIST_TYPE:
        raise StatusListError(f"the list credential is not a {STATUS_LIST_CREDENTIAL_TYPE}")
    if subject.get("statusPurpose") != status_purpose:
        raise StatusListError(f"the list is for {subject.get('statusPurpose')!r}, not "
                              f"{status_purpose!r}")
    status_list = StatusList.decode(subject.get("encodedList"))
    index = parse_index(entry.get("statusListIndex"), status_list.length)
    return status_list.get(index)


def find_status_entry(credential: dict[str, Any], status_purpose: str) -> dict[str, Any]:
    """Return the credential's `BitstringStatusListEntry` for a purpose."""
    statuses = credential.get("credentialStatus")
    statuses = statuses if isinstance(statuses, list) else [statuses]
    for entry in statuses:
        if isinstance(entry, dict) and entry.get("type") == STATUS_ENTRY_TYPE \
                and entry.get("statusPurpose") == status_purpose:
            return entry
    raise StatusListError(f"the credential has no {STATUS_ENTRY_TYPE} for {status_purpose!r}")


def parse_index(text: Any, length: int) -> int:
    """Return a `statusListIndex` (decimal text) as an index of a list of `length`."""
    if not isinstance(text, str) or not text.isdigit() or not text.isascii() \
            or len(text) > len(str(length)):
        raise StatusListError("statusListIndex must be a decimal integer string")
    index = int(text)
    if index >= length:
        raise StatusListError(f"statusListIndex {index} is outside the {length}-entry list")
    return index


def issuer_id(credential: dict[str, Any]) -> str | None:
    """Return a credential's issuer id (`issuer` is a URL or an object with an `id`)."""
    issuer = credential.get("issuer")
    issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
    return issuer if isinstance(issuer, str) else None


def check_purpose(status_purpose: str) -> None:
    """Refuse a status purpose that is not one bit per credential."""
    if status_purpose not in STATUS_PURPOSES:
        raise CredentialUsageError(f"status purpose must be one of {sorted(STATUS_PURPOSES)}")
