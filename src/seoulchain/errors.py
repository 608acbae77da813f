"""Error families shared by every layer.

Two families, as in sans-I/O protocol libraries: `LocalError` means the caller misused an
API (a bug or a bad configuration on this side); `RemoteError` means something that came
from outside — a peer, a client, a file on disk — is malformed or dishonest. A decoder
either returns a value or raises a `RemoteError` subclass, whatever bytes it is given.
"""

from __future__ import annotations


class SeoulchainError(Exception):
    """Base of every error this package raises on purpose."""


class LocalError(SeoulchainError):
    """The caller misused an API or supplied an invalid local configuration."""


class RemoteError(SeoulchainError):
    """Input that came from outside the process is malformed, oversized or forged."""


class DecodeError(RemoteError):
    """Bytes are not a canonical encoding of the expected structure."""


class VerificationError(RemoteError):
    """A signature, hash link or proof does not verify."""


class StorageError(SeoulchainError):
    """The on-disk store is unreadable, inconsistent or was altered."""
