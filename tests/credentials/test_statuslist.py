"""Bitstring Status List: bits, encoding, bounded decoding, index allocation, credentials."""

from __future__ import annotations

import base64
import gzip
import random
from typing import Any

import pytest

from seoulchain.credentials import integrity, statuslist
from seoulchain.credentials.errors import CredentialUsageError, StatusListError
from seoulchain.credentials.statuslist import (
    STATUS_LIST_BYTES_MAX,
    STATUS_LIST_ENTRIES_MIN,
    StatusList,
    allocate_index,
    build_status_entry,
    build_status_list_credential,
    get_status,
)
from tests.credentials.samples import (
    ISSUED_AT,
    ISSUER_DID,
    ISSUER_KEY_ID,
    ISSUER_SEED,
    make_credential,
    make_did_document,
    make_resolver,
)

LIST_ID = "https://status.seoul.example/lists/residency-1"


def encode_raw(bits: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(gzip.compress(bits)).rstrip(b"=").decode()


def test_minimum_length_is_the_specs_herd() -> None:
    assert STATUS_LIST_ENTRIES_MIN == 131_072
    assert StatusList().length == STATUS_LIST_ENTRIES_MIN
    with pytest.raises(CredentialUsageError):
        StatusList(STATUS_LIST_ENTRIES_MIN - 8)
    with pytest.raises(CredentialUsageError):
        StatusList(STATUS_LIST_ENTRIES_MIN + 1)


def test_bits_are_indexed_from_the_left_of_the_first_byte() -> None:
    status_list = StatusList()
    for index in (0, 9, STATUS_LIST_ENTRIES_MIN - 1):
        status_list.set(index, True)
    raw = status_list.to_bytes()
    assert raw[0] == 0x80 and raw[1] == 0x40 and raw[-1] == 0x01
    assert [status_list.get(index) for index in (0, 1, 9, STATUS_LIST_ENTRIES_MIN - 1)] == \
        [True, False, True, True]
    status_list.set(9, False)
    assert not status_list.get(9)


@pytest.mark.parametrize("index", [-1, STATUS_LIST_ENTRIES_MIN, True, "3"])
def test_refused_index_outside_the_list(index: Any) -> None:
    with pytest.raises(CredentialUsageError):
        StatusList().get(index)


def test_encode_decode_round_trip_and_format() -> None:
    status_list = StatusList()
    for index in random.Random(7).sample(range(STATUS_LIST_ENTRIES_MIN), 500):
        status_list.set(index, True)
    encoded = status_list.encode()
    assert encoded.startswith("u") and "=" not in encoded and "+" not in encoded
    body = encoded[1:]
    assert gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == \
        status_list.to_bytes()
    assert StatusList.decode(encoded).to_bytes() == status_list.to_bytes()


def test_decode_accepts_any_gzip_of_the_bits() -> None:
    bits = bytes([0x21]) * (STATUS_LIST_ENTRIES_MIN // 8)
    assert StatusList.decode(encode_raw(bits)).get(2)


def test_refused_zip_bomb() -> None:
    bomb = encode_raw(bytes(STATUS_LIST_BYTES_MAX + 1))
    assert len(bomb) < 5_000
    with pytest.raises(StatusListError, match="decompresses"):
        StatusList.decode(bomb)


@pytest.mark.parametrize("encoded", [
    None, "", "zH4sI", "u!!!!", "u" + base64.urlsafe_b64encode(b"not gzip").decode(),
    "u" + base64.urlsafe_b64encode(gzip.compress(bytes(16384))[:-6]).decode(),
    encode_raw(bytes(16384)) + "AAAA",
    "u" + "A" * (statuslist.ENCODED_LIST_CHARS_MAX + 1),
])
def test_refused_malformed_encoded_list(encoded: Any) -> None:
    with pytest.raises(StatusListError):
        StatusList.decode(encoded)


def test_refused_list_shorter_than_the_minimum() -> None:
    with pytest.raises(StatusListError, match="at least"):
        StatusList.decode(encode_raw(bytes(1024)))


def test_allocate_index_is_uniform_and_avoids_used() -> None:
    rng = random.Random(2026)
    used: set[int] = set()
    for _ in range(200):
        index = allocate_index(used, rng)
        assert index not in used and 0 <= index < STATUS_LIST_ENTRIES_MIN
        used.add(index)
    # Random, not sequential: the indexes spread over the list.
    assert max(used) - min(used) > STATUS_LIST_ENTRIES_MIN // 2
    assert sorted(used) != list(range(min(used), min(used) + len(used)))


def test_allocate_index_in_a_nearly_full_list_and_a_full_one() -> None:
    length = STATUS_LIST_ENTRIES_MIN
    used = set(range(length)) - {4242}
    assert allocate_index(used, random.Random(1), length) == 4242
    with pytest.raises(CredentialUsageError, match="every index"):
        allocate_index(set(range(length)), random.Random(1), length)


def signed_list(revoked: list[int]) -> dict[str, Any]:
    status_list = StatusList()
    for index in revoked:
        status_list.set(index, True)
    credential = build_status_list_credential(LIST_ID, ISSUER_DID, status_list,
                                              valid_from="2026-12-01T00:00:00Z")
    return integrity.sign(credential, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)


def test_status_list_credential_signs_verifies_and_reports_each_credential() -> None:
    list_credential = signed_list([1234])
    integrity.verify(list_credential, make_resolver(make_did_document()))
    assert list_credential["credentialSubject"]["id"] == LIST_ID + "#list"
    revoked = make_credential("ResidencyCredential", status=build_status_entry(LIST_ID, 1234))
    valid = make_credential("ResidencyCredential", 2, status=build_status_entry(LIST_ID, 1235))
    assert revoked["credentialStatus"] == {
        "id": LIST_ID + "#1234", "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation", "statusListIndex": "1234",
        "statusListCredential": LIST_ID}
    assert get_status(revoked, list_credential) is True
    assert get_status(valid, list_credential) is False


def test_status_credential_with_a_status_signs_and_verifies() -> None:
    credential = make_credential("ResidencyCredential", status=build_status_entry(LIST_ID, 7))
    secured = integrity.sign(credential, ISSUER_SEED, ISSUER_KEY_ID, ISSUED_AT)
    integrity.verify(secured, make_resolver(make_did_document()))


@pytest.mark.parametrize("change,message", [
    (lambda c, lst: c["credentialStatus"].update(statusListCredential=LIST_ID + "x"),
     "another list"),
    (lambda c, lst: lst.update(issuer="did:seoul:9zzzzzzzzzzzzzzzzzzzzz"), "another issuer"),
    (lambda c, lst: lst["credentialSubject"].update(statusPurpose="suspension"), "for"),
    (lambda c, lst: c["credentialStatus"].update(statusListIndex="131072"), "outside"),
    (lambda c, lst: c["credentialStatus"].update(statusListIndex="-1"), "decimal"),
    (lambda c, lst: c["credentialStatus"].update(statusPurpose="suspension"), "no Bitstring"),
    (lambda c, lst: lst.update(type=["VerifiableCredential"]), "not a Bitstring"),
])
def test_refused_status_that_does_not_match(change: Any, message: str) -> None:
    list_credential = signed_list([])
    credential = make_credential("ResidencyCredential", status=build_status_entry(LIST_ID, 5))
    change(credential, list_credential)
    with pytest.raises(StatusListError, match=message):
        get_status(credential, list_credential)


def test_refused_unsupported_purpose() -> None:
    with pytest.raises(CredentialUsageError):
        build_status_entry(LIST_ID, 1, "message")
