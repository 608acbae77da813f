"""Multikey: an Ed25519 public key as W3C Controlled Identifiers' `publicKeyMultibase`.

The encoding is multibase base58btc (the 'z' header) over the multicodec varint of
ed25519-pub (0xed, as the two bytes 0xed 0x01) followed by the 32-byte public key, so every
Ed25519 Multikey reads `z6Mk...`. Decoding accepts exactly that form and nothing else: a
wrong header, codec, length or an invalid curve point raises `MultikeyError`.
"""

from __future__ import annotations

import base58
import nacl.bindings

from seoulchain.crypto.keys import PUBLIC_KEY_BYTES
from seoulchain.errors import DecodeError

# Multibase header of base58btc (the multibase table, "z").
MULTIBASE_BASE58BTC = "z"
# The varint of multicodec 0xed (ed25519-pub), as the Multikey encoding requires.
ED25519_PUB_CODEC = b"\xed\x01"
# A 34-byte value in base58btc is at most 47 characters, plus the header: text longer than
# this cannot be an Ed25519 Multikey, and is refused before it is decoded.
MULTIKEY_CHARS_MAX = 48


class MultikeyError(DecodeError):
    """Text is not the Multikey of an Ed25519 public key."""


def encode_multikey(public_key: bytes) -> str:
    """Return the `publicKeyMultibase` of a 32-byte Ed25519 public key."""
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_BYTES:
        raise MultikeyError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    return MULTIBASE_BASE58BTC + base58.b58encode(ED25519_PUB_CODEC + public_key).decode()


def decode_multikey(text: str) -> bytes:
    """Return the Ed25519 public key of a `publicKeyMultibase`, or raise `MultikeyError`."""
    if not isinstance(text, str) or not text.startswith(MULTIBASE_BASE58BTC):
        raise MultikeyError("a Multikey starts with the base58btc multibase header 'z'")
    if len(text) > MULTIKEY_CHARS_MAX:
        raise MultikeyError(f"a Multikey of an Ed25519 key is at most {MULTIKEY_CHARS_MAX} "
                            f"characters, got {len(text)}")
    try:
        raw = base58.b58decode(text[1:])
    except ValueError as exc:
        raise MultikeyError(f"a Multikey is base58btc text: {exc}") from None
    if not raw.startswith(ED25519_PUB_CODEC):
        raise MultikeyError(f"the Multikey's codec is not ed25519-pub (0xed01) but "
                            f"{raw[:2].hex() or 'empty'}")
    public_key = raw[len(ED25519_PUB_CODEC):]
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise MultikeyError(f"the Multikey holds {len(public_key)} key bytes, not "
                            f"{PUBLIC_KEY_BYTES}")
    check_ed25519_public_key(public_key)
    return public_key


def is_valid_ed25519_public_key(public_key: bytes) -> bool:
    """Return True if `public_key` is 32 bytes encoding a valid, non-small-order point."""
    return (isinstance(public_key, bytes) and len(public_key) == PUBLIC_KEY_BYTES
            and nacl.bindings.crypto_core_ed25519_is_valid_point(public_key))


def check_ed25519_public_key(public_key: bytes) -> None:
    """Raise `MultikeyError` unless `public_key` is a usable Ed25519 public key."""
    if not is_valid_ed25519_public_key(public_key):
        raise MultikeyError("the key is not a valid Ed25519 public key (not a canonical "
                            "point of the curve, or of small order)")
