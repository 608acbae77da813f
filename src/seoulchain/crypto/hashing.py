"""SHA-256, the one hash function of the ledger."""

from __future__ import annotations

import hashlib

HASH_BYTES = 32


def sha256(*parts: bytes) -> bytes:
    """Return SHA-256 of the concatenation of `parts`."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()
