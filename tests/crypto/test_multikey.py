"""Multikey: Ed25519 public keys as `publicKeyMultibase`, against the W3C test vector."""

from __future__ import annotations

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seoulchain.crypto import SigningKey
from seoulchain.crypto.multikey import (
    MultikeyError,
    decode_multikey,
    encode_multikey,
    is_valid_ed25519_public_key,
)
from seoulchain.errors import DecodeError

# The key pair of the W3C Data Integrity EdDSA Cryptosuites' test vectors (vc-di-eddsa,
# "Representation: eddsa-rdfc-2022"), as the spec gives it.
W3C_PUBLIC_KEY_MULTIBASE = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
W3C_SECRET_KEY_MULTIBASE = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
# The same public key in hex, the bytes after the 0xed01 multicodec prefix.
W3C_PUBLIC_KEY_HEX = "b00d8d938e7f773d51565aad36a623f5344f7f5d1960f9cf3e8e12620ea2810f"
# Multicodec ed25519-priv (0x1300) as a varint: the secret key's prefix.
ED25519_PRIV_CODEC = b"\x80\x26"


def test_w3c_vector_decodes_to_its_key_bytes_and_encodes_back() -> None:
    public_key = decode_multikey(W3C_PUBLIC_KEY_MULTIBASE)
    assert public_key.hex() == W3C_PUBLIC_KEY_HEX
    assert encode_multikey(bytes.fromhex(W3C_PUBLIC_KEY_HEX)) == W3C_PUBLIC_KEY_MULTIBASE


def test_w3c_vector_secret_key_derives_the_same_public_multikey() -> None:
    raw = base58.b58decode(W3C_SECRET_KEY_MULTIBASE[1:])
    assert raw[:2] == ED25519_PRIV_CODEC and len(raw) == 34
    assert encode_multikey(SigningKey(raw[2:]).public_key) == W3C_PUBLIC_KEY_MULTIBASE


@given(st.binary(min_size=32, max_size=32))
def test_round_trip_of_any_generated_key(seed: bytes) -> None:
    public_key = SigningKey(seed).public_key
    text = encode_multikey(public_key)
    assert text.startswith("z6Mk")
    assert decode_multikey(text) == public_key


@pytest.mark.parametrize(("text", "message"), [
    ("", "header 'z'"),
    ("u7QGwDY2Tjn93PVFWWq02piP1NE9_XRlg-c8-jhJiDqKBDw", "header 'z'"),  # base64url form
    ("z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ0", "base58btc"),  # '0' not base58
    ("z" + base58.b58encode(b"\xe7\x01" + b"\x02" * 32).decode(), "codec is not ed25519-pub"),
    ("z" + base58.b58encode(b"\xed\x01" + bytes(31)).decode(), "31 key bytes"),
    ("z" + "2" * 100, "at most 48 characters"),
    ("z" + base58.b58encode(b"\xed\x01" + bytes(32)).decode(), "not a valid Ed25519"),
])
def test_decode_refuses_what_is_not_an_ed25519_multikey(text: str, message: str) -> None:
    with pytest.raises(MultikeyError, match=message) as caught:
        decode_multikey(text)
    assert isinstance(caught.value, DecodeError)


def test_encode_refuses_a_key_of_the_wrong_length() -> None:
    with pytest.raises(MultikeyError, match="32 bytes"):
        encode_multikey(bytes(31))


def test_small_order_and_non_canonical_points_are_not_valid_keys() -> None:
    assert not is_valid_ed25519_public_key(bytes(32))  # small order (the identity's y = 0)
    assert not is_valid_ed25519_public_key(b"\x01" + bytes(31))  # the identity point
    assert not is_valid_ed25519_public_key(b"\xff" * 32)  # y not reduced mod p
    assert is_valid_ed25519_public_key(bytes.fromhex(W3C_PUBLIC_KEY_HEX))
