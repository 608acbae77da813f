"""Ed25519 keys and domain-separated signatures.

Every signature in the system is over `CBOR([context_tag, chain_id, payload])`, so a
signature made for one purpose (a transaction, a vote, a proposal) or one chain can never be
replayed as another. Verification uses libsodium's strict Ed25519 check (canonical S,
no small-order keys), through PyNaCl.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

from seoulchain.codec import encode
from seoulchain.errors import DecodeError, LocalError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
KEY_FILE_MODE = 0o600


def compute_sign_bytes(context_tag: str, chain_id: str, payload: Any) -> bytes:
    """Return the exact bytes that are signed for `payload` under a context tag and chain."""
    return encode([context_tag, chain_id, payload])


def is_valid_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Return True if `signature` is a valid Ed25519 signature of `message` by `public_key`."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, nacl.exceptions.RuntimeError):
        return False
    return True


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key, kept as its 32-byte seed."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES:
            raise LocalError(f"an Ed25519 seed is {SEED_BYTES} bytes, got {len(self.seed)}")
        object.__setattr__(self, "_key", nacl.signing.SigningKey(self.seed))

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()})"

    @classmethod
    def generate(cls) -> SigningKey:
        """Return a new key from the operating system's CSPRNG."""
        return cls(os.urandom(SEED_BYTES))

    @property
    def public_key(self) -> bytes:
        """Return the 32-byte Ed25519 public key."""
        return bytes(self._key.verify_key)  # type: ignore[attr-defined]

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of `message`."""
        return self._key.sign(message).signature  # type: ignore[attr-defined]

    def sign_payload(self, context_tag: str, chain_id: str, payload: Any) -> bytes:
        """Sign `payload` domain-separated by `context_tag` and `chain_id`."""
        return self.sign(compute_sign_bytes(context_tag, chain_id, payload))

    def save(self, path: Path) -> None:
        """Write the key to `path` as hex, readable by the owner only (mode 0600)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"ed25519-seed:{self.seed.hex()}\n")
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read a key written by `save`, refusing files that others can read."""
        try:
            mode = path.stat().st_mode & 0o777
            text = path.read_text().strip()
        except OSError as exc:
            raise LocalError(f"cannot read key file {path}: {exc.strerror}") from exc
        if mode & 0o077:
            raise LocalError(f"key file {path} has mode {mode:o}; run: chmod 600 {path}")
        prefix = "ed25519-seed:"
        if not text.startswith(prefix):
            raise DecodeError(f"key file {path} is not an ed25519 seed file")
        try:
            seed = bytes.fromhex(text[len(prefix):])
        except ValueError as exc:
            raise DecodeError(f"key file {path} holds invalid hex") from exc
        if len(seed) != SEED_BYTES:
            raise DecodeError(f"key file {path} holds {len(seed)} bytes, expected {SEED_BYTES}")
        return cls(seed)
