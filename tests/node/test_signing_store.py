"""File signing store: durable atomic replacement; corruption is an error, not "nothing signed"."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.messages import Step
from seoulchain.consensus.safety import SafetyRules, SignedRecord, SigningRefused
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, StorageError
from seoulchain.ledger.types import (
    Height,
    Round,
    Transaction,
    Validator,
    ValidatorSet,
    VoteType,
)
from seoulchain.node.bft import SIGNING_STATE_FILE
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.node.signing_store import (
    MAGIC,
    FileSigningStateStore,
    SigningStateMissing,
    compute_file_bytes,
    compute_floor_record,
    parse_file_bytes,
    require_signing_state,
    write_floor_record,
)
from tests.conftest import commit_next_height

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


# ----------------------------------------------------------------- a missing file


@pytest.mark.parametrize(("present", "committed", "base", "validator", "refused"), [
    (False, 5, 0, True, True),     # a validator with blocks of its own: it may have signed
    (False, 9, 6, True, True),     # the same after a state sync, blocks since its base
    (True, 5, 0, True, False),     # the file is there
    (False, 0, 0, True, False),    # a new node: nothing committed, nothing signed
    (False, 6, 6, True, False),    # freshly state-synced: no block of its own yet
    (False, 5, 0, False, False),   # not in the next height's set: it signs nothing there
])
def test_missing_signing_state_is_refused_only_where_something_may_be_signed(
        tmp_path: Path, present: bool, committed: int, base: int, validator: bool,
        refused: bool) -> None:
    path = tmp_path / "signing-state.cbor"
    if present:
        FileSigningStateStore(path).save(make_record())
    if refused:
        with pytest.raises(SigningStateMissing, match=f"height {committed + 1}.*"
                                                      "--allow-missing-signing-state"):
            require_signing_state(path, committed, base, validator)
    else:
        require_signing_state(path, committed, base, validator)


def test_floor_record_forbids_the_next_height_and_allows_the_one_after(tmp_path: Path) -> None:
    path = tmp_path / "signing-state.cbor"
    FileSigningStateStore(path).save(compute_floor_record(5))
    rules = SafetyRules(KEY, CHAIN_ID, FileSigningStateStore(path))
    block_id = sha256(b"block")
    for vote_type, round_ in ((VoteType.PREVOTE, 0), (VoteType.PRECOMMIT, 3),
                              (VoteType.PRECOMMIT, 2**31 - 1)):
        with pytest.raises(SigningRefused):
            rules.sign_vote(vote_type, Height(6), Round(round_), block_id)
    with pytest.raises(SigningRefused):
        rules.sign_vote(VoteType.PREVOTE, Height(5), Round(0), block_id)
    vote = rules.sign_vote(VoteType.PREVOTE, Height(7), Round(0), block_id)
    assert vote.height == 7


def make_home_with_blocks(root: Path, blocks: int, *, peer_power: int = 0) -> Home:
    """A validator home with `blocks` committed blocks and no signing state; with
    `peer_power`, genesis also names a second validator (ours keeps a 2/3 majority)."""
    home = init_home(root, chain_id="signing-test")
    if peer_power:
        genesis = home.load_genesis()
        peer = Validator(SigningKey(sha256(b"peer")).public_key, peer_power, "peer")
        dataclasses.replace(genesis, validators=ValidatorSet.of(
            [*genesis.validators.validators, peer])).save(home.genesis_path)
    node = Node(home)
    operator = home.load_key("operator")
    try:
        for nonce in range(1, blocks + 1):
            node.submit(Transaction.create(
                operator, chain_id="signing-test", nonce=nonce, expiry_height=100,
                service="notary", method="anchor",
                args={"doc_hash": sha256(bytes([nonce])), "kind": "permit"}).encode())
            commit_next_height(node)
        assert node.engine.height == blocks
    finally:
        node.close()
    (home.data_dir / SIGNING_STATE_FILE).unlink()
    return home


def test_validator_with_blocks_and_no_signing_state_does_not_start(tmp_path: Path) -> None:
    home = make_home_with_blocks(tmp_path / "home", 3, peer_power=1)
    with pytest.raises(SigningStateMissing, match=r"signing-state\.cbor is missing"):
        Node(home)
    write_floor_record(home.data_dir / SIGNING_STATE_FILE, home.store_path)
    node = Node(home)  # the operator's override: it starts, signing nothing at height 4
    try:
        assert node.producer.core.machine._safety.last_signed == compute_floor_record(3)
    finally:
        node.close()
    assert write_floor_record(home.data_dir / SIGNING_STATE_FILE, home.store_path) is None


def test_lone_validator_with_blocks_and_no_signing_state_starts_and_commits(
        tmp_path: Path) -> None:
    """signing state (n=1): the only validator decides each height before any signature of
    it leaves the process, so a lost file (or a home that never had one) cannot lead to a
    second signature at a height it signed: it starts and goes on committing."""
    home = make_home_with_blocks(tmp_path / "home", 3)
    node = Node(home)
    try:
        operator = home.load_key("operator")
        assert node.submit(Transaction.create(
            operator, chain_id="signing-test", nonce=4, expiry_height=100, service="notary",
            method="anchor", args={"doc_hash": sha256(b"after"), "kind": "permit"}).encode()).ok
        committed = commit_next_height(node)
        assert committed is not None and committed.block.height == 4
    finally:
        node.close()
    assert (home.data_dir / SIGNING_STATE_FILE).exists()
