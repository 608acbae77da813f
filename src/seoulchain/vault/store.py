"""The vault store: one SQLite file per agency, every subject's records under its own key.

Theory of operation. A subject (a citizen, named by their DID) gets a random 32-byte key
when their first record is put. Each version of their record is sealed with it (libsodium
secretbox: XSalsa20-Poly1305) together with the version's fresh salt; the subject key is
itself sealed with the vault key (keys.py) before it is stored. A sealed payload names the
subject and version it belongs to, so a row moved to another subject fails to open.

    meta        schema version and a check value sealed with the vault key
    subjects    subject, wrapped key (NULL once erased), created and erased times
    records     subject, version, commitment, sealed (salt, canonical record)
    access_log  subject, time, accessor, purpose, version read

Every operation is one SQLite transaction (WAL, synchronous=FULL): a crash leaves each
operation whole or absent, and a read commits its access log entry or returns nothing.
Erasure deletes the wrapped key and every sealed version in one transaction with
`secure_delete` on (freed cells and pages are overwritten with zeros), then checkpoints
the WAL into the file and truncates it, so no copy of a deleted page is left in the
database file or beside it: the commitment on chain then links to nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
import nacl.utils

from seoulchain.codec import decode, encode
from seoulchain.errors import DecodeError, LocalError, StorageError
from seoulchain.vault.errors import (
    CorruptedRecord,
    SubjectErased,
    SubjectExists,
    UnknownSubject,
    VaultKeyMissing,
    WrongVaultKey,
)
from seoulchain.vault.keys import create_vault_key, load_vault_key
from seoulchain.vault.records import (
    Commitment,
    check_subject,
    compute_commitment,
    encode_record,
    generate_salt,
)

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    subject TEXT PRIMARY KEY,
    wrapped_key BLOB,
    created_at_ms INTEGER NOT NULL,
    erased_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    commitment BLOB NOT NULL,
    sealed BLOB NOT NULL,
    stored_at_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS access_log (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    accessor TEXT NOT NULL,
    purpose TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_by_subject ON access_log (subject, id);
"""
# Domain tags of the sealed payloads, so one kind can never be opened as another.
KEY_CHECK_TAG = "seoulchain/vault-key-check"
WRAPPED_KEY_TAG = "seoulchain/vault-subject-key"
SEALED_RECORD_TAG = "seoulchain/vault-record"
SUBJECT_KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
# Only ciphertexts are in the file, but the access log names who read whom: owner only
# (SQLite gives its -wal and -shm files the same mode).
VAULT_FILE_MODE = 0o600
# Another process writing the vault (a second CLI command) holds it for milliseconds;
# five seconds of waiting means something is stuck.
BUSY_TIMEOUT_MS = 5000
# An accessor names an officer or a system; a purpose is a sentence or a case number.
ACCESSOR_CHARS_MAX = 200
ACCESS_PURPOSE_CHARS_MAX = 500
# A subject's access log is read whole; this bounds one answer.
ACCESS_LOG_ENTRIES_MAX = 10_000


@dataclass(frozen=True)
class VaultRecord:
    """One version of a subject's record as read: the record and what opens its commitment."""

    subject: str
    version: int
    record: dict[str, Any]
    salt: bytes
    commitment: bytes
    stored_at_ms: int


@dataclass(frozen=True)
class AccessEntry:
    """One read of a subject's record: when, by whom, why, and which version."""

    at_ms: int
    accessor: str
    purpose: str
    version: int


def get_time_ms() -> int:
    """Return the wall-clock time in Unix milliseconds."""
    return time.time_ns() // 1_000_000


class Vault:
    """An agency's personal data vault in one SQLite file."""

    box: nacl.secret.SecretBox  # the vault key's, set by `open` once checked

    def __init__(self, path: Path, db: sqlite3.Connection, clock_ms: Callable[[], int]):
        self.path = path
        self.db = db
        self.clock_ms = clock_ms

    @classmethod
    def open(cls, path: Path, key_path: Path,
             clock_ms: Callable[[], int] = get_time_ms) -> Vault:
        """Open the vault at `path` with the key in `key_path`; create both on first use."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # a new vault is its owner's only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, VAULT_FILE_MODE))
        with translate_sqlite_errors(path):
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            with translate_sqlite_errors(path):
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA secure_delete=ON")
                db.executescript(SCHEMA)
            vault = cls(path, db, clock_ms)
            vault.box = vault.open_vault_key(key_path)
        except BaseException:
            db.close()
            raise
        return vault

    def open_vault_key(self, key_path: Path) -> nacl.secret.SecretBox:
        """Return the vault key's box, checked against the vault (created for a new vault)."""
        with self.transaction():
            rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            if "key_check" not in rows:
                if not key_path.exists():
                    create_vault_key(key_path)
                box = nacl.secret.SecretBox(load_vault_key(key_path))
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?), "
                                "('key_check', ?)", (encode(SCHEMA_VERSION),
                                                     bytes(box.encrypt(encode(KEY_CHECK_TAG)))))
                return box
        if rows.get("schema_version") != encode(SCHEMA_VERSION):
            raise StorageError(f"vault {self.path} has schema {rows.get('schema_version')!r}; "
                               f"this software reads {encode(SCHEMA_VERSION)!r}")
        if not key_path.exists():
            raise VaultKeyMissing(f"the vault {self.path} holds data but its key {key_path} "
                                  f"is missing: restore the key from its backup")
        box = nacl.secret.SecretBox(load_vault_key(key_path))
        try:
            box.decrypt(rows["key_check"])
        except nacl.exceptions.CryptoError:
            raise WrongVaultKey(f"the key {key_path} does not open the vault {self.path}: it "
                                f"is another vault's key; restore this vault's key from its "
                                f"backup") from None
        return box

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one write transaction: all of it commits, or none of it."""
        with translate_sqlite_errors(self.path):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # ------------------------------------------------------------------ writes

    def put(self, subject: str, record: dict[str, Any], salt: bytes | None = None
            ) -> Commitment:
        """Store the first version of a subject's record under a new subject key.

        `salt` is for a caller that must fix the commitment before the subject's DID exists
        (a did:seoul DID is derived from the create transaction, which carries the
        commitment): it draws the salt with `generate_salt` and uses it once. By default
        the vault draws a fresh one.
        """
        check_subject(subject)
        canonical = encode_record(record)
        salt = generate_salt() if salt is None else salt
        compute_commitment(salt, canonical)  # refuses a salt of the wrong length first
        with self.transaction():
            row = self.db.execute("SELECT erased_at_ms FROM subjects WHERE subject = ?",
                                  (subject,)).fetchone()
            if row is not None:
                raise SubjectErased(subject, row[0]) if row[0] is not None \
                    else SubjectExists(subject)
            subject_key = nacl.utils.random(SUBJECT_KEY_BYTES)
            wrapped = self.box.encrypt(encode([WRAPPED_KEY_TAG, subject, subject_key]))
            self.db.execute("INSERT INTO subjects VALUES (?, ?, ?, NULL)",
                            (subject, bytes(wrapped), self.clock_ms()))
            return self.seal_version(subject, subject_key, 1, canonical, salt)

    def correct(self, subject: str, record: dict[str, Any]) -> Commitment:
        """Store a new version of a subject's record; earlier versions stay sealed."""
        check_subject(subject)
        canonical = encode_record(record)
        with self.transaction():
            subject_key = self.unwrap_subject_key(subject)
            (latest,) = self.db.execute("SELECT MAX(version) FROM records WHERE subject = ?",
                                        (subject,)).fetchone()
            if latest is None:
                raise CorruptedRecord(f"vault {self.path} holds a key but no record of "
                                      f"{subject}")
            return self.seal_version(subject, subject_key, latest + 1, canonical,
                                     generate_salt())

    def seal_version(self, subject: str, subject_key: bytes, version: int, canonical: bytes,
                     salt: bytes) -> Commitment:
        """Seal one version with its salt, store it, and return its commitment."""
        digest = compute_commitment(salt, canonical)
        payload = encode([SEALED_RECORD_TAG, subject, version, salt, canonical])
        sealed = nacl.secret.SecretBox(subject_key).encrypt(payload)
        self.db.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?)",
                        (subject, version, digest, bytes(sealed), self.clock_ms()))
        return Commitment(subject, version, digest)

    def erase(self, subject: str) -> int:
        """Destroy a subject's key and every version of their record; return the erase time.

        Erasing an erased subject repeats the scrub of the file and returns the first time.
        """
        check_subject(subject)
        with self.transaction():
            row = self.db.execute("SELECT erased_at_ms FROM subjects WHERE subject = ?",
                                  (subject,)).fetchone()
            if row is None:
                raise UnknownSubject(subject)
            erased_at_ms = row[0] if row[0] is not None else self.clock_ms()
            self.db.execute("DELETE FROM records WHERE subject = ?", (subject,))
            self.db.execute("UPDATE subjects SET wrapped_key = NULL, erased_at_ms = ? "
                            "WHERE subject = ?", (erased_at_ms, subject))
        self.scrub()
        return erased_at_ms

    def scrub(self) -> None:
        """Move every page in the WAL into the file and empty the WAL, or raise."""
        with translate_sqlite_errors(self.path):
            busy, frames, moved = self.db.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy or frames != moved:
            raise StorageError(f"vault {self.path}: the erasure is committed, but another "
                               f"process reading the vault kept its WAL from being emptied; "
                               f"stop it and run the erase again")

    # ------------------------------------------------------------------ reads

    def get(self, subject: str, accessor: str, purpose: str,
            version: int | None = None) -> VaultRecord:
        """Return a version of the record (the latest by default) and log the read with it."""
        check_subject(subject)
        check_text("accessor", accessor, ACCESSOR_CHARS_MAX)
        check_text("purpose", purpose, ACCESS_PURPOSE_CHARS_MAX)
        with self.transaction():
            subject_key = self.unwrap_subject_key(subject)
            row = self.db.execute(
                "SELECT version, commitment, sealed, stored_at_ms FROM records "
                "WHERE subject = ? AND (? IS NULL OR version = ?) "
                "ORDER BY version DESC LIMIT 1", (subject, version, version)).fetchone()
            if row is None:
                raise LocalError(f"the vault holds no version {version} of {subject}")
            found = self.open_sealed(subject, subject_key, *row)
            self.db.execute("INSERT INTO access_log (subject, at_ms, accessor, purpose, "
                            "version) VALUES (?, ?, ?, ?, ?)",
                            (subject, self.clock_ms(), accessor, purpose, found.version))
        return found

    def access_log(self, subject: str,
                   limit: int = ACCESS_LOG_ENTRIES_MAX) -> list[AccessEntry]:
        """Return the subject's latest `limit` reads, oldest first (kept after erasure)."""
        check_subject(subject)
        if not 1 <= limit <= ACCESS_LOG_ENTRIES_MAX:
            raise LocalError(f"an access log answer holds 1 to {ACCESS_LOG_ENTRIES_MAX} "
                             f"entries, not {limit}")
        with self.transaction():
            if self.db.execute("SELECT 1 FROM subjects WHERE subject = ?",
                               (subject,)).fetchone() is None:
                raise UnknownSubject(subject)
            rows = self.db.execute(
                "SELECT at_ms, accessor, purpose, version FROM access_log WHERE subject = ? "
                "ORDER BY id DESC LIMIT ?", (subject, limit)).fetchall()
        return [AccessEntry(*row) for row in reversed(rows)]

    def unwrap_subject_key(self, subject: str) -> bytes:
        """Return a live subject's key, or raise why there is none."""
        row = self.db.execute("SELECT wrapped_key, erased_at_ms FROM subjects "
                              "WHERE subject = ?", (subject,)).fetchone()
        if row is None:
            raise UnknownSubject(subject)
        wrapped, erased_at_ms = row
        if erased_at_ms is not None:
            raise SubjectErased(subject, erased_at_ms)
        payload = self.open_box(self.box, wrapped, f"the key of {subject}")
        if not (isinstance(payload, list) and len(payload) == 3 and payload[:2] ==
                [WRAPPED_KEY_TAG, subject] and isinstance(payload[2], bytes)
                and len(payload[2]) == SUBJECT_KEY_BYTES):
            raise CorruptedRecord(f"vault {self.path}: the stored key of {subject} belongs "
                                  f"to another subject or is malformed")
        return payload[2]

    def open_sealed(self, subject: str, subject_key: bytes, version: int, commitment: bytes,
                    sealed: bytes, stored_at_ms: int) -> VaultRecord:
        """Open one sealed version and check it against the row it was read from."""
        what = f"version {version} of {subject}"
        payload = self.open_box(nacl.secret.SecretBox(subject_key), sealed, what)
        if not (isinstance(payload, list) and len(payload) == 5
                and payload[:3] == [SEALED_RECORD_TAG, subject, version]
                and isinstance(payload[3], bytes) and isinstance(payload[4], bytes)):
            raise CorruptedRecord(f"vault {self.path}: {what} was sealed for another row")
        salt, canonical = payload[3], payload[4]
        if compute_commitment(salt, canonical) != commitment:
            raise CorruptedRecord(f"vault {self.path}: {what} does not match its commitment")
        record = decode_canonical(canonical, f"vault {self.path}: {what}")
        return VaultRecord(subject, version, record, salt, commitment, stored_at_ms)

    def open_box(self, box: nacl.secret.SecretBox, sealed: bytes, what: str) -> Any:
        """Return the decoded plaintext of a sealed value, or raise `CorruptedRecord`."""
        try:
            return decode(box.decrypt(sealed))
        except (nacl.exceptions.CryptoError, DecodeError, TypeError):
            raise CorruptedRecord(f"vault {self.path}: {what} fails authentication: the "
                                  f"row is damaged or was altered") from None


def decode_canonical(canonical: bytes, what: str) -> dict[str, Any]:
    """Return the record in stored canonical JSON, checking it is canonical."""
    try:
        record = json.loads(canonical)
    except ValueError:
        raise CorruptedRecord(f"{what} is not JSON") from None
    if not isinstance(record, dict) or encode_record(record) != canonical:
        raise CorruptedRecord(f"{what} is not a record in canonical JSON")
    return record


def check_text(name: str, text: str, chars_max: int) -> None:
    """Raise `LocalError` unless `text` is non-blank, printable and at most `chars_max`."""
    if not text.strip() or len(text) > chars_max or not text.isprintable():
        raise LocalError(f"the {name} is 1 to {chars_max} printable characters, not "
                         f"{text[:40]!r}")


@contextlib.contextmanager
def translate_sqlite_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's failures on the vault file into `StorageError` naming it."""
    try:
        yield
    except sqlite3.ProgrammingError:
        raise  # misuse of the driver: a bug here, not damage on disk
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"vault {path}: {exc}") from exc
