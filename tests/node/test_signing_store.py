"""File signing store: durable atomic replacement; corruption is an error, not "nothing signed"."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.messages import Step
from seoulchain.consensus.safety import SafetyRules, SignedRecord, SigningRefused
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, StorageError
from seoulchain.ledger.types import Height, Round, VoteType
from seoulchain.node.signing_store import (
    MAGIC,
    FileSigningStateStore,
    compute_file_bytes,
    parse_file_bytes,
)

CHAIN_ID = "seoul-test"
KEY = SigningKey(sha256(b"signing-store-test"))


def make_record(height: int = 7, round_: int = 1, step: Step = Step.PREVOTE) -> SignedRecord:
    return SignedRecord(Height(height), Round(round_), step, sha256(b"block"), sha256(b"bytes"))


def test_a_fresh_store_has_signed_nothing(tmp_path: Path) -> None:
    assert FileSigningStateStore(tmp_path / "signing.state").load() is None


def test_saved_record_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "signing.state"
    FileSigningStateStore(path).save(make_record())
    assert FileSigningStateStore(path).load() == make_record()
    assert path.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "signing.state.tmp").exists()


def test_each_save_replaces_the_whole_record(tmp_path: Path) -> None:
    store = FileSigningStateStore(tmp_path / "signing.state")
    store.save(make_record(7, 1, Step.PREVOTE))
    store.save(make_record(7, 1, Step.PRECOMMIT))
    assert store.load() == make_record(7, 1, Step.PRECOMMIT)
    assert store.saves == 2


def test_a_crash_before_the_rename_leaves_the_old_record(tmp_path: Path) -> None:
    """A torn temporary file (the crash hit during write) never replaces the record."""
    path = tmp_path / "signing.state"
    store = FileSigningStateStore(path)
    store.save(make_record(7, 1))
    store.temp_path.write_bytes(compute_file_bytes(make_record(8, 0))[:11])
    assert FileSigningStateStore(path).load() == make_record(7, 1)


@pytest.mark.parametrize("damage", ["flip a payload bit", "truncate", "wrong magic", "empty",
                                    "appended garbage"])
def test_a_corrupt_file_is_a_storage_error_not_an_empty_store(tmp_path: Path,
                                                              damage: str) -> None:
    path = tmp_path / "signing.state"
    FileSigningStateStore(path).save(make_record())
    data = bytearray(path.read_bytes())
    if damage == "flip a payload bit":
        data[-3] ^= 0x01
    elif damage == "truncate":
        del data[-5:]
    elif damage == "wrong magic":
        data[0:len(MAGIC)] = b"x" * len(MAGIC)
    elif damage == "empty":
        data.clear()
    else:
        data += b"\x00" * 4
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corrupt"):
        FileSigningStateStore(path).load()


def test_an_unreadable_store_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot read"):
        FileSigningStateStore(blocker / "signing.state").load()


def test_a_failed_save_is_a_storage_error_and_nothing_is_signed(tmp_path: Path) -> None:
    """The disk goes away under the store: save fails, so the safety rules never sign."""
    store = FileSigningStateStore(tmp_path / "signing.state")
    safety = SafetyRules(KEY, CHAIN_ID, store)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    store.path = blocker / "signing.state"
    with pytest.raises(StorageError, match="cannot save"):
        safety.sign_vote(VoteType.PREVOTE, Height(1), Round(0), sha256(b"v"))
    assert safety.last_signed is None


def test_safety_rules_over_the_file_refuse_a_conflict_after_restart(tmp_path: Path) -> None:
    """Sign at (5, 0, prevote), 'restart', then try another block at the same step."""
    path = tmp_path / "signing.state"
    first = SafetyRules(KEY, CHAIN_ID, FileSigningStateStore(path))
    vote = first.sign_vote(VoteType.PREVOTE, Height(5), Round(0), sha256(b"v"))
    restarted = SafetyRules(KEY, CHAIN_ID, FileSigningStateStore(path))
    again = restarted.sign_vote(VoteType.PREVOTE, Height(5), Round(0), sha256(b"v"))
    assert again.signature == vote.signature
    with pytest.raises(SigningRefused):
        restarted.sign_vote(VoteType.PREVOTE, Height(5), Round(0), sha256(b"w"))
    with pytest.raises(SigningRefused):
        restarted.sign_vote(VoteType.PREVOTE, Height(4), Round(9), sha256(b"w"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parsing_any_bytes_returns_a_record_or_raises_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_file_bytes(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2**40), st.integers(0, 2**20), st.sampled_from(list(Step)))
def test_file_bytes_round_trip(height: int, round_: int, step: Step) -> None:
    record = make_record(height, round_, step)
    assert parse_file_bytes(compute_file_bytes(record)) == record
