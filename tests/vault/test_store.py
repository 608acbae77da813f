"""The personal data vault: sealed records, salted commitments, reads that are logged,
corrections that keep history, and erasure that leaves nothing of a subject in the file."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from seoulchain.crypto import sha256
from seoulchain.errors import LocalError, StorageError
from seoulchain.vault import (
    RECORD_BYTES_MAX,
    CorruptedRecord,
    InvalidRecord,
    RecordTooLarge,
    SubjectErased,
    SubjectExists,
    UnknownSubject,
    Vault,
    VaultKeyMissing,
    WrongVaultKey,
)
from seoulchain.vault.records import (
    compute_commitment,
    encode_record,
    generate_salt,
    parse_record,
)

ALICE = "did:seoul:alice"
BOB = "did:seoul:bob"
# 2023-11-14T22:13:20Z, then one millisecond per call.
START_MS = 1_700_000_000_000
MARKER = "MARKER-7f3c-resident-of-mapo"
RECORD = {"name": "Kim Minji", "rrn": "900101-2345678", "note": MARKER}


class Clock:
    """A clock that ticks one millisecond each time it is read."""

    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        self.now_ms += 1
        return self.now_ms


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    opened = Vault.open(tmp_path / "vault.sqlite", tmp_path / "vault.secret", Clock())
    yield opened
    opened.close()


def read_rows(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def write_rows(path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, args)
    db.close()


def test_put_get_returns_the_record_and_the_commitment_opens(vault: Vault) -> None:
    commitment = vault.put(ALICE, RECORD)
    found = vault.get(ALICE, "officer-17", "benefit application 2026-0042")
    assert found.record == RECORD and found.version == commitment.version == 1
    assert found.commitment == commitment.digest
    assert commitment.digest == sha256(found.salt, encode_record(RECORD))
    assert len(found.salt) == 32


def test_put_with_a_salt_drawn_first_fixes_the_commitment_in_advance(vault: Vault) -> None:
    """A DID's create transaction carries the commitment before the DID (and so the
    subject) exists: the caller draws the salt, commits, then puts with that salt."""
    salt = generate_salt()
    expected = compute_commitment(salt, encode_record(RECORD))
    assert vault.put(ALICE, RECORD, salt).digest == expected
    assert vault.get(ALICE, "registrar", "issuance").salt == salt
    with pytest.raises(InvalidRecord, match="a salt is 32 bytes"):
        vault.put(BOB, RECORD, b"short")


def test_canonical_json_is_jcs_sorted_compact_utf8() -> None:
    record = {"b": [1, True, None], "a": {"\U0001f600": 1, "\uff61": 2}, "이름": "홍길동"}
    # JCS orders names by UTF-16 code units: U+1F600 (D83D...) before U+FF61.
    assert encode_record(record) == ('{"a":{"\U0001f600":1,"\uff61":2},"b":[1,true,null],'
                                     '"이름":"홍길동"}').encode()
    assert encode_record(json.loads(json.dumps(record, indent=4))) == encode_record(record)


def test_each_version_gets_a_fresh_salt(vault: Vault) -> None:
    first = vault.put(ALICE, RECORD)
    second = vault.correct(ALICE, RECORD)  # the same content, corrected back
    assert first.digest != second.digest


def test_get_writes_the_access_log(vault: Vault) -> None:
    vault.put(ALICE, RECORD)
    vault.get(ALICE, "officer-17", "benefit application")
    vault.get(ALICE, "welfare-system", "annual review")
    log = vault.access_log(ALICE)
    assert [(entry.accessor, entry.purpose, entry.version) for entry in log] == [
        ("officer-17", "benefit application", 1), ("welfare-system", "annual review", 1)]
    assert log[0].at_ms < log[1].at_ms
    with pytest.raises(UnknownSubject):
        vault.access_log(BOB)


@pytest.mark.parametrize("accessor,purpose", [("", "review"), ("officer", " "),
                                               ("officer", "x" * 501), ("a\nb", "review")])
def test_get_refuses_a_blank_or_unbounded_accessor_or_purpose(vault: Vault, accessor: str,
                                                             purpose: str) -> None:
    vault.put(ALICE, RECORD)
    with pytest.raises(LocalError, match=r"the (accessor|purpose) is 1 to"):
        vault.get(ALICE, accessor, purpose)
    assert vault.access_log(ALICE) == []


def test_correct_keeps_old_versions_readable_until_erasure(vault: Vault) -> None:
    vault.put(ALICE, RECORD)
    corrected = vault.correct(ALICE, {**RECORD, "name": "Kim Min-ji"})
    assert corrected.version == 2
    assert vault.get(ALICE, "officer", "check").record["name"] == "Kim Min-ji"
    assert vault.get(ALICE, "officer", "history", version=1).record == RECORD
    assert [entry.version for entry in vault.access_log(ALICE)] == [2, 1]
    with pytest.raises(LocalError, match="no version 3"):
        vault.get(ALICE, "officer", "history", version=3)


def test_unknown_and_erased_subjects_are_told_apart(vault: Vault) -> None:
    with pytest.raises(UnknownSubject, match="no record of did:seoul:alice"):
        vault.get(ALICE, "officer", "check")
    with pytest.raises(UnknownSubject):
        vault.correct(ALICE, RECORD)
    with pytest.raises(UnknownSubject):
        vault.erase(ALICE)
    vault.put(ALICE, RECORD)
    erased_at_ms = vault.erase(ALICE)
    for attempt in (lambda: vault.get(ALICE, "officer", "check"),
                    lambda: vault.correct(ALICE, RECORD), lambda: vault.put(ALICE, RECORD)):
        with pytest.raises(SubjectErased, match="erased at 2023-11-14T22:13:20Z") as caught:
            attempt()
        assert caught.value.erased_at_ms == erased_at_ms
    assert vault.erase(ALICE) == erased_at_ms  # erasing again repeats the scrub only


def test_put_refuses_a_subject_that_has_a_record(vault: Vault) -> None:
    vault.put(ALICE, RECORD)
    with pytest.raises(SubjectExists, match="vault correct"):
        vault.put(ALICE, {"name": "someone else"})
    assert vault.get(ALICE, "officer", "check").record == RECORD


@pytest.mark.parametrize("record", [["a list"], "text", 7, None])
def test_put_refuses_a_record_that_is_not_an_object(vault: Vault, record: object) -> None:
    with pytest.raises(InvalidRecord, match="a record is a JSON object"):
        vault.put(ALICE, record)  # type: ignore[arg-type]
    with pytest.raises(UnknownSubject):
        vault.get(ALICE, "officer", "check")


@pytest.mark.parametrize("record,match", [
    ({"height_m": 1.72}, "non-integer number"), ({"n": 2**53}, "I-JSON"),
    ({"s": "\ud800"}, "lone surrogate"), ({"deep": json.loads("[" * 40 + "]" * 40)}, "nested"),
])
def test_put_refuses_values_without_one_canonical_text(vault: Vault, record: dict[str, object],
                                                       match: str) -> None:
    with pytest.raises(InvalidRecord, match=match):
        vault.put(ALICE, record)


def test_put_refuses_an_oversized_record(vault: Vault) -> None:
    fits = {"blob": "x" * (RECORD_BYTES_MAX - len('{"blob":""}'))}
    vault.put(ALICE, fits)
    with pytest.raises(RecordTooLarge, match=f"at most {RECORD_BYTES_MAX}"):
        vault.put(BOB, {"blob": "x" * RECORD_BYTES_MAX})
    with pytest.raises(RecordTooLarge):
        vault.correct(ALICE, {**fits, "more": 1})


@pytest.mark.parametrize("subject", ["alice", "did:web:example.com", "did:seoul:", "did:seoul:a b",
                                     "did:seoul:" + "a" * 300])
def test_put_refuses_a_subject_that_is_not_a_seoul_did(vault: Vault, subject: str) -> None:
    with pytest.raises(InvalidRecord, match="not a did:seoul DID"):
        vault.put(subject, RECORD)


@pytest.mark.parametrize("text,match", [('{"a": 1, "a": 2}', "twice"), ('{"a": NaN}', "NaN"),
                                        ("[1]", "JSON object"), ("{'a': 1}", "not JSON")])
def test_parse_record_refuses_ambiguous_json(text: str, match: str) -> None:
    with pytest.raises(InvalidRecord, match=match):
        parse_record(text)


def test_the_vault_key_is_created_once_owner_only(tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "vault.secret"
    with Vault.open(tmp_path / "vault.sqlite", key_path) as vault:
        vault.put(ALICE, RECORD)
    assert key_path.stat().st_mode & 0o777 == 0o600
    key_text = key_path.read_text()
    with Vault.open(tmp_path / "vault.sqlite", key_path) as vault:
        assert vault.get(ALICE, "officer", "check").record == RECORD
    assert key_path.read_text() == key_text


def test_open_refuses_another_vaults_key(tmp_path: Path) -> None:
    Vault.open(tmp_path / "a.sqlite", tmp_path / "a.secret").close()
    Vault.open(tmp_path / "b.sqlite", tmp_path / "b.secret").close()
    with pytest.raises(WrongVaultKey, match="does not open the vault"):
        Vault.open(tmp_path / "a.sqlite", tmp_path / "b.secret")


def test_open_refuses_a_missing_or_readable_key(tmp_path: Path) -> None:
    key_path = tmp_path / "vault.secret"
    Vault.open(tmp_path / "vault.sqlite", key_path).close()
    key_path.chmod(0o644)
    with pytest.raises(WrongVaultKey, match="chmod 600"):
        Vault.open(tmp_path / "vault.sqlite", key_path)
    key_path.unlink()
    with pytest.raises(VaultKeyMissing, match="restore the key from its backup"):
        Vault.open(tmp_path / "vault.sqlite", key_path)
    assert not key_path.exists()  # a vault with data never gets a new key silently


def test_a_damaged_row_fails_authentication_and_logs_no_read(vault: Vault) -> None:
    vault.put(ALICE, RECORD)
    (sealed,) = read_rows(vault.path, "SELECT sealed FROM records WHERE subject = ?", ALICE)[0]
    damaged = bytearray(sealed)  # type: ignore[arg-type]
    damaged[-1] ^= 1
    write_rows(vault.path, "UPDATE records SET sealed = ?", bytes(damaged))
    with pytest.raises(CorruptedRecord, match="fails authentication"):
        vault.get(ALICE, "officer", "check")
    assert vault.access_log(ALICE) == []


def test_rows_moved_to_another_subject_do_not_open(vault: Vault) -> None:
    vault.put(ALICE, RECORD)
    vault.put(BOB, {"name": "Bob"})
    write_rows(vault.path, "UPDATE subjects SET wrapped_key = (SELECT wrapped_key FROM "
                           "subjects WHERE subject = ?) WHERE subject = ?", ALICE, BOB)
    write_rows(vault.path, "UPDATE records SET sealed = (SELECT sealed FROM records WHERE "
                           "subject = ?) WHERE subject = ?", ALICE, BOB)
    with pytest.raises(CorruptedRecord, match="another subject"):
        vault.get(BOB, "officer", "check")


def read_vault_files(path: Path) -> bytes:
    """Return the raw bytes of the database file and every file SQLite keeps beside it."""
    return b"".join(candidate.read_bytes() for suffix in ("", "-wal", "-journal", "-shm")
                    if (candidate := path.with_name(path.name + suffix)).exists())


def test_erase_leaves_nothing_of_the_subject_in_the_files(vault: Vault) -> None:
    """Plaintext, salts, the subject key, its wrapped form and every ciphertext are gone."""
    big = {**RECORD, "history": [f"{MARKER}-{index}" for index in range(1500)]}  # overflow pages
    vault.put(ALICE, RECORD)
    vault.correct(ALICE, big)
    vault.put(BOB, {"name": "Bob", "note": "kept"})
    salts = [vault.get(ALICE, "officer", "check", version=v).salt for v in (1, 2)]
    with vault.transaction():
        subject_key = vault.unwrap_subject_key(ALICE)
    secrets = [subject_key, *salts,
               *(row[0] for row in read_rows(vault.path, "SELECT wrapped_key FROM subjects "
                                                         "WHERE subject = ?", ALICE)),
               *(row[0] for row in read_rows(vault.path, "SELECT sealed FROM records "
                                                         "WHERE subject = ?", ALICE))]
    before = read_vault_files(vault.path)
    assert MARKER.encode() not in before  # the vault never stores plaintext
    assert all(secret[:32] in before for secret in secrets[3:])  # the search sees ciphertexts

    vault.erase(ALICE)

    after = read_vault_files(vault.path)
    assert MARKER.encode() not in after
    assert [secret.hex()[:16] for secret in secrets if secret[:16] in after] == []
    assert not vault.path.with_name(vault.path.name + "-wal").stat().st_size
    assert vault.get(BOB, "officer", "check").record["note"] == "kept"
    assert [entry.version for entry in vault.access_log(ALICE)] == [1, 2]


def test_every_write_is_one_transaction(vault: Vault) -> None:
    """A write refused half-way (here: the key unwrap fails) leaves no new version."""
    vault.put(ALICE, RECORD)
    write_rows(vault.path, "UPDATE subjects SET wrapped_key = ?", os.urandom(72))
    with pytest.raises(CorruptedRecord):
        vault.correct(ALICE, {"name": "x"})
    assert read_rows(vault.path, "SELECT version FROM records") == [(1,)]


def test_a_read_whose_log_entry_fails_returns_nothing(vault: Vault) -> None:
    """The log entry and the read are one transaction: no entry, no record."""
    vault.put(ALICE, RECORD)
    write_rows(vault.path, "CREATE TRIGGER refuse_log BEFORE INSERT ON access_log "
                           "BEGIN SELECT RAISE(ABORT, 'access log unwritable'); END")
    with pytest.raises(StorageError, match="access log unwritable"):
        vault.get(ALICE, "officer", "check")
    assert vault.access_log(ALICE) == []


def test_open_refuses_a_file_that_is_not_a_vault(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite"
    path.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(StorageError, match="not a database"):
        Vault.open(path, tmp_path / "vault.secret")


def test_erase_beside_a_reader_says_to_run_it_again(vault: Vault) -> None:
    """A reader holding old pages keeps the WAL from being emptied: the erasure is committed,
    and erasing again, once the reader is gone, scrubs the file."""
    vault.put(ALICE, RECORD)
    (sealed,) = read_rows(vault.path, "SELECT sealed FROM records")[0]
    vault.db.execute("PRAGMA busy_timeout=50")  # the default waits seconds for the reader
    reader = sqlite3.connect(vault.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM records").fetchone()
    with pytest.raises(StorageError, match="run the erase again"):
        vault.erase(ALICE)
    with pytest.raises(SubjectErased):
        vault.get(ALICE, "officer", "check")
    reader.close()
    vault.erase(ALICE)
    assert sealed[:16] not in read_vault_files(vault.path)  # type: ignore[index]
