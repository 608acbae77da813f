"""A file-backed `SigningStateStore`: the last signed record, durable before `save` returns.

Theory of operation: the store is one small file, `MAGIC | crc32c | record`, where `record`
is the `SignedRecord` encoding and the CRC-32C covers it. `save` writes the new file under a
temporary name, fsyncs it, renames it over the old one and fsyncs the directory, so after a
crash the file holds either the old record or the new one, whole. The file is read back
after each save and compared (assert on both sides of the disk boundary).

A file that exists but does not parse — wrong magic, bad checksum, undecodable record — is
never treated as "nothing signed yet": that could let a restarted validator sign twice.
`load` raises `StorageError` instead and leaves the operator to restore the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import crc32c

from seoulchain.consensus.safety import SIGNED_RECORD_BYTES_MAX, SignedRecord
from seoulchain.errors import DecodeError, StorageError

MAGIC = b"seoulss1"
CHECKSUM_BYTES = 4
# The whole file: magic, checksum and the largest record a store may hold.
SIGNING_STATE_FILE_BYTES_MAX = len(MAGIC) + CHECKSUM_BYTES + SIGNED_RECORD_BYTES_MAX
FILE_MODE = 0o600


def compute_file_bytes(record: SignedRecord) -> bytes:
    """Return the file contents that store `record`."""
    payload = record.encode()
    assert len(payload) <= SIGNED_RECORD_BYTES_MAX
    return MAGIC + crc32c.crc32c(payload).to_bytes(CHECKSUM_BYTES, "big") + payload


def parse_file_bytes(data: bytes) -> SignedRecord:
    """Return the record stored in `data`, or raise `DecodeError` naming what is wrong."""
    if len(data) > SIGNING_STATE_FILE_BYTES_MAX:
        raise DecodeError(f"file is {len(data)} bytes, more than {SIGNING_STATE_FILE_BYTES_MAX}")
    header_bytes = len(MAGIC) + CHECKSUM_BYTES
    if len(data) <= header_bytes or not data.startswith(MAGIC):
        raise DecodeError("file does not start with the signing-state magic")
    checksum = int.from_bytes(data[len(MAGIC):header_bytes], "big")
    payload = data[header_bytes:]
    if crc32c.crc32c(payload) != checksum:
        raise DecodeError("checksum mismatch")
    return SignedRecord.decode(payload)


class FileSigningStateStore:
    """The last `SignedRecord` in one file, replaced atomically and fsync'd on every save."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saves = 0

    @property
    def temp_path(self) -> Path:
        return self.path.with_name(self.path.name + ".tmp")

    def load(self) -> SignedRecord | None:
        """Return the stored record (None if never saved); raise `StorageError` if corrupt."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:
            raise StorageError(f"cannot read signing state {self.path}: {exc.strerror}") from exc
        if data is None:
            return None
        try:
            return parse_file_bytes(data)
        except DecodeError as exc:
            raise StorageError(
                f"signing state {self.path} is corrupt ({exc}); restore it from a backup. "
                "Deleting it lets this validator sign again at heights it already signed, "
                "which is only safe if no block was produced since") from exc

    def save(self, record: SignedRecord) -> None:
        """Durably replace the stored record: temp file, fsync, rename, fsync the directory."""
        data = compute_file_bytes(record)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(self.temp_path, self.path)
            sync_directory(self.path.parent)
            written = self.path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot save signing state {self.path}: {exc.strerror}") from exc
        if written != data:
            raise StorageError(f"signing state {self.path} reads back differently than written")
        self.saves += 1


def sync_directory(path: Path) -> None:
    """Fsync a directory so that a rename inside it is durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
