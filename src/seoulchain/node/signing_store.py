"""A file-backed `SigningStateStore`: the last signed record, durable before `save` returns.

Theory of operation: the store is one small file, `MAGIC | crc32c | record`, where `record`
is the `SignedRecord` encoding and the CRC-32C covers it. `save` writes the new file under a
temporary name, fsyncs it, renames it over the old one and fsyncs the directory, so after a
crash the file holds either the old record or the new one, whole. The file is read back
after each save and compared (assert on both sides of the disk boundary).

A file that exists but does not parse — wrong magic, bad checksum, undecodable record — is
never treated as "nothing signed yet": that could let a restarted validator sign twice.
`load` raises `StorageError` instead and leaves the operator to restore the file.

A missing file means "nothing signed yet" only where that can be true: on a node that has
committed no block of its own, or whose key is not in the validator set of the next height.
A validator that has committed blocks up to height h may already have signed at h + 1
(it cannot have signed above: it commits h + 1 before it works on h + 2), so without its
file it refuses to start (`require_signing_state`). The operator may override that
(`seoulchain start --allow-missing-signing-state`), which writes a floor record
(`compute_floor_record`): a signature at (h + 1, the last round, precommit), which the
safety rules then treat as the last one signed, so they refuse everything at h + 1 and
sign normally from h + 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import crc32c

from seoulchain.consensus.messages import NIL_BLOCK_ID, ROUND_MAX, Step
from seoulchain.consensus.safety import SIGNED_RECORD_BYTES_MAX, SignedRecord
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import DecodeError, StorageError
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Height, Round

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


class SigningStateMissing(StorageError):
    """The signing state is gone from a validator that may already have signed."""


def require_signing_state(path: Path, committed_height: int, base_height: int,
                          is_validator: bool) -> None:
    """Refuse to go on without the file at `path` where it may have recorded a signature."""
    if path.exists() or committed_height <= base_height or not is_validator:
        return
    raise SigningStateMissing(
        f"signing state {path} is missing, but this validator has committed blocks up to "
        f"height {committed_height}: it may already have signed at height "
        f"{committed_height + 1}, and without the record it could sign twice there. Restore "
        "the file from a backup; or, accepting the risk, start once with "
        "`seoulchain start --allow-missing-signing-state`, which makes this validator sign "
        f"nothing at height {committed_height + 1} (docs/operations.md, \"Signing state\")")


def compute_floor_record(committed_height: int) -> SignedRecord:
    """Return a record that forbids every signature at heights up to `committed_height` + 1."""
    return SignedRecord(Height(committed_height + 1), Round(ROUND_MAX), Step.PRECOMMIT,
                        NIL_BLOCK_ID, bytes(HASH_BYTES))


def write_floor_record(path: Path, store_path: Path) -> SignedRecord | None:
    """Save at `path`, if no file is there, the floor record of the store's own blocks."""
    if path.exists() or not store_path.exists():
        return None
    store = BlockStore(store_path)
    try:
        tip, base_height = store.get_tip(), store.get_base_height()
    finally:
        store.close()
    if tip is None or tip.height <= base_height:
        return None
    record = compute_floor_record(tip.height)
    FileSigningStateStore(path).save(record)
    return record


def sync_directory(path: Path) -> None:
    """Fsync a directory so that a rename inside it is durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
