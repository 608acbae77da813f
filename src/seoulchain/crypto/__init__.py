"""Hashing and signatures: SHA-256 and Ed25519 (libsodium via PyNaCl), domain-separated."""

from seoulchain.crypto.hashing import sha256
from seoulchain.crypto.keys import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    SigningKey,
    compute_sign_bytes,
    is_valid_signature,
)

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "SigningKey",
    "compute_sign_bytes",
    "is_valid_signature",
    "sha256",
]
