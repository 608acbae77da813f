"""Ledger types: round trips, signing, validator sets, and each decoder rule of the spec."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey, is_valid_signature
from seoulchain.errors import DecodeError, LocalError
from seoulchain.ledger.types import (
    BLOCK_TXS_MAX,
    FORMAT_VERSION,
    HEIGHT_MAX,
    ROUND_MAX,
    TX_BYTES_MAX,
    TX_CONTEXT,
    VALIDATORS_MAX,
    VOTE_CONTEXT,
    Block,
    BlockHeader,
    Commit,
    CommitSig,
    Transaction,
    Validator,
    ValidatorSet,
    VoteType,
    compute_vote_sign_bytes,
)
from tests.codec.test_cbor import KEYS, SCALARS

KEYRING = [SigningKey(bytes(range(32 * index, 32 * index + 32))) for index in range(6)]
CHAIN_ID = "seoul-devnet-1"

# --------------------------------------------------------------------------- strategies

U64 = st.integers(min_value=0, max_value=2**64 - 1)
HEIGHTS = st.integers(min_value=1, max_value=HEIGHT_MAX)
ROUNDS = st.integers(min_value=0, max_value=ROUND_MAX)
HASHES = st.binary(min_size=32, max_size=32)
CHAIN_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}", fullmatch=True)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
ARGS = st.dictionaries(KEYS, st.recursive(
    SCALARS, lambda children: st.lists(children, max_size=3)
    | st.dictionaries(KEYS, children, max_size=3), max_leaves=8), max_size=5)


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    key = draw(st.sampled_from(KEYRING))
    return Transaction.create(key, chain_id=draw(CHAIN_IDS), nonce=draw(HEIGHTS),
                              expiry_height=draw(U64), service=draw(NAMES),
                              method=draw(NAMES), args=draw(ARGS))


VALIDATORS = st.builds(Validator, public_key=HASHES, power=st.integers(1, 2**64 - 1),
                       name=st.text(max_size=64))
VALIDATOR_SETS = st.lists(VALIDATORS, min_size=1, max_size=8,
                          unique_by=lambda validator: validator.public_key).map(ValidatorSet.of)
COMMIT_SIGS = st.builds(CommitSig, validator=HASHES,
                        signature=st.binary(min_size=64, max_size=64))
COMMITS = st.builds(Commit, height=HEIGHTS, round=ROUNDS, block_id=HASHES,
                    signatures=st.lists(COMMIT_SIGS, max_size=5).map(tuple))


@st.composite
def headers(draw: st.DrawFn, height: int | None = None) -> BlockHeader:
    height = draw(HEIGHTS) if height is None else height
    link = st.just(b"") if height == 1 else HASHES
    return BlockHeader(
        chain_id=draw(CHAIN_IDS), height=height, time_ms=draw(U64),
        prev_block_id=draw(link), tx_root=draw(HASHES), log_root=draw(HASHES),
        log_size=draw(U64), state_root=draw(HASHES), results_root=draw(HASHES),
        evidence_root=draw(HASHES), validators_hash=draw(HASHES),
        next_validators_hash=draw(HASHES), proposer=draw(HASHES), last_commit_hash=draw(link))


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    height = draw(st.sampled_from([1, 2]) | HEIGHTS)
    header = draw(headers(height))
    txs = draw(st.lists(transactions().map(Transaction.encode), max_size=3))
    last_commit = None if height == 1 else draw(COMMITS)
    evidence = draw(st.lists(st.binary(max_size=40), max_size=2))
    return Block(header, tuple(txs), last_commit, tuple(evidence))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- round trips


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(transactions())
def test_types_transaction_round_trip_and_signature(tx: Transaction) -> None:
    data = tx.encode()
    decoded = Transaction.decode(data)
    assert decoded == tx
    assert decoded.encode() == data
    assert tx.hash().hex() == sha256_hex(data)
    assert is_valid_signature(tx.signer, tx.sign_bytes(), tx.signature)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(transactions())
def test_types_transaction_sign_bytes_derive_from_the_encoding(tx: Transaction) -> None:
    """The spec's shortcut: sign bytes = context prefix + the encoding minus its signature."""
    data = tx.encode()
    assert data[0] == 0x89 and data[-66:-64] == b"\x58\x40"
    prefix = b"\x83" + encode(TX_CONTEXT) + encode(tx.chain_id)
    assert tx.sign_bytes() == prefix + b"\x88" + data[1:-66]
    assert tx.sign_bytes() == encode([TX_CONTEXT, tx.chain_id, tx.to_cbor()[:8]])
    # A decoded tx (the node's case) takes the shortcut; a built one re-encodes.
    assert Transaction.decode(data).sign_bytes() == tx.sign_bytes()


@given(VALIDATOR_SETS)
def test_types_validator_set_round_trip(validators: ValidatorSet) -> None:
    data = encode(validators.to_cbor())
    assert ValidatorSet.from_cbor(decode(data)) == validators
    assert validators.hash().hex() == sha256_hex(data)


@given(COMMITS)
def test_types_commit_round_trip(commit: Commit) -> None:
    data = commit.encode()
    assert Commit.decode(data) == commit
    assert commit.hash().hex() == sha256_hex(data)


@given(headers())
def test_types_header_round_trip_and_block_id(header: BlockHeader) -> None:
    data = header.encode()
    assert BlockHeader.decode(data) == header
    assert header.block_id().hex() == sha256_hex(data)
    assert len(decode(data)) == 15


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(blocks())
def test_types_block_round_trip(block: Block) -> None:
    data = block.encode()
    decoded = Block.decode(data)
    assert decoded == block
    assert decoded.encode() == data
    assert decoded.block_id() == block.header.block_id()


# --------------------------------------------------------------------------- transactions


def make_tx(**changes: Any) -> Transaction:
    fields = {"chain_id": CHAIN_ID, "nonce": 1, "expiry_height": 10, "service": "notary",
              "method": "register", "args": {"digest": bytes(32)}}
    fields.update(changes)
    return Transaction.create(KEYRING[0], **fields)


@pytest.mark.parametrize("change", [
    {"chain_id": "seoul-testnet-1"}, {"nonce": 2}, {"expiry_height": 11},
    {"service": "points"}, {"method": "revoke"}, {"args": {"digest": bytes(31)}},
    {"signer": KEYRING[1].public_key},
], ids=lambda change: next(iter(change)))
def test_types_transaction_signature_covers_every_field(change: dict[str, Any]) -> None:
    tx = make_tx()
    fields = {"chain_id": tx.chain_id, "signer": tx.signer, "nonce": tx.nonce,
              "expiry_height": tx.expiry_height, "service": tx.service, "method": tx.method,
              "args": tx.args, "signature": tx.signature}
    tampered = Transaction(**{**fields, **change})
    assert not is_valid_signature(tampered.signer, tampered.sign_bytes(), tampered.signature)


def test_types_transaction_signed_by_another_key_is_a_local_error() -> None:
    unsigned = Transaction(CHAIN_ID, KEYRING[0].public_key, 1, 0, "notary", "register", {})
    with pytest.raises(LocalError):
        unsigned.signed(KEYRING[1])


def test_types_transaction_hash_covers_the_signature() -> None:
    tx = make_tx()
    other = Transaction(tx.chain_id, tx.signer, tx.nonce, tx.expiry_height, tx.service,
                        tx.method, tx.args, bytes(64))
    assert other.hash() != tx.hash()


def test_types_unsigned_transaction_does_not_decode() -> None:
    unsigned = Transaction(CHAIN_ID, KEYRING[0].public_key, 1, 0, "notary", "register", {})
    with pytest.raises(DecodeError, match="signature"):
        Transaction.decode(unsigned.encode())


def test_types_transaction_size_limit() -> None:
    tx = make_tx(args={"blob": bytes(TX_BYTES_MAX - 200)})
    assert len(tx.encode()) <= TX_BYTES_MAX
    assert Transaction.decode(tx.encode()) == tx
    big = make_tx(args={"blob": bytes(TX_BYTES_MAX)})
    with pytest.raises(DecodeError, match="limit"):
        Transaction.decode(big.encode())


def tx_fields_with(index: int, value: Any) -> bytes:
    fields = make_tx().to_cbor()
    fields[index] = value
    return encode(fields)


@pytest.mark.parametrize(("index", "value"), [
    (0, 2), (0, 0), (0, True), (1, ""), (1, "a" * 51), (1, "chain\n"), (1, "bad chain"),
    (1, b"seoul"), (2, bytes(31)), (2, bytes(33)), (2, "key"), (3, 0), (3, -1), (3, True),
    (3, False), (4, -1), (4, None), (5, "Notary"), (5, "notary\n"), (5, "1notary"),
    (5, "n" * 33), (5, ""), (6, "re-gister"), (7, []), (7, None), (8, b""), (8, bytes(63)),
])
def test_types_transaction_decoder_rules(index: int, value: Any) -> None:
    with pytest.raises(DecodeError):
        Transaction.decode(tx_fields_with(index, value))


def test_types_transaction_field_count_and_shape() -> None:
    fields = make_tx().to_cbor()
    for bad in (fields[:8], [*fields, 0], {"version": 1}, 1, None):
        with pytest.raises(DecodeError):
            Transaction.decode(encode(bad))


def test_types_transaction_boundary_values_decode() -> None:
    tx = make_tx(chain_id="A" * 50, nonce=2**64 - 1, expiry_height=0, service="a",
                 method="m" * 32, args={})
    assert Transaction.decode(tx.encode()) == tx


# --------------------------------------------------------------------------- validator sets


def validator(index: int, power: int = 10, name: str = "") -> Validator:
    return Validator(KEYRING[index].public_key, power, name)


def test_types_validator_set_of_sorts_by_public_key() -> None:
    members = [validator(index) for index in range(5)]
    validators = ValidatorSet.of(list(reversed(members)))
    keys = [member.public_key for member in validators.validators]
    assert keys == sorted(keys)
    assert ValidatorSet.of(members) == validators
    assert ValidatorSet.of(members).hash() == validators.hash()


@pytest.mark.parametrize("members", [
    [], [validator(0), validator(0)], [validator(index % 6) for index in range(7)],
])
def test_types_validator_set_rejects_empty_or_duplicates(members: list[Validator]) -> None:
    with pytest.raises(DecodeError):
        ValidatorSet.of(members)


def test_types_validator_set_rejects_unsorted_members() -> None:
    members = ValidatorSet.of([validator(0), validator(1)]).validators
    with pytest.raises(DecodeError):
        ValidatorSet(tuple(reversed(members)))


def test_types_validator_set_size_limit() -> None:
    members = [Validator(index.to_bytes(32, "big"), 1) for index in range(VALIDATORS_MAX + 1)]
    assert len(ValidatorSet.of(members[:VALIDATORS_MAX]).validators) == VALIDATORS_MAX
    with pytest.raises(DecodeError):
        ValidatorSet.of(members)


@pytest.mark.parametrize("entry", [
    [bytes(32), 0, ""], [bytes(32), True, ""], [bytes(32), -1, ""], [bytes(31), 1, ""],
    [bytes(32), 1, "n" * 65], [bytes(32), 1, b"name"], [bytes(32), 1], [bytes(32), 1, "", 0],
])
def test_types_validator_decoder_rules(entry: list[Any]) -> None:
    with pytest.raises(DecodeError):
        ValidatorSet.from_cbor(decode(encode([entry])))


def test_types_validator_set_power_and_quorum() -> None:
    validators = ValidatorSet.of([validator(0, 10), validator(1, 10), validator(2, 10),
                                  validator(3, 10)])
    assert validators.total_power == 40
    assert validators.get_power(KEYRING[2].public_key) == 10
    assert validators.get_power(KEYRING[5].public_key) == 0
    assert not validators.is_quorum(26)  # 78 > 80 fails
    assert validators.is_quorum(27)  # 81 > 80
    assert validators.is_quorum(30)
    three = ValidatorSet.of([validator(0, 1), validator(1, 1), validator(2, 1)])
    assert not three.is_quorum(2)  # exactly 2/3 is not more than 2/3
    assert three.is_quorum(3)


# --------------------------------------------------------------------------- votes and commits


def test_types_vote_sign_bytes_layout() -> None:
    block_id = bytes(range(32))
    sign_bytes = compute_vote_sign_bytes(CHAIN_ID, VoteType.PRECOMMIT, 7, 3, block_id)
    assert decode(sign_bytes) == [VOTE_CONTEXT, CHAIN_ID,
                                  [FORMAT_VERSION, VoteType.PRECOMMIT, 7, 3, block_id]]
    nil_vote = compute_vote_sign_bytes(CHAIN_ID, VoteType.PREVOTE, 7, 3, b"")
    assert decode(nil_vote)[2][4] == b""
    assert VoteType.PREVOTE == 1 and VoteType.PRECOMMIT == 2


def test_types_vote_sign_bytes_differ_by_every_field() -> None:
    base = (CHAIN_ID, VoteType.PRECOMMIT, 7, 3, bytes(32))
    variants = [("seoul-testnet-1", *base[1:]), (base[0], VoteType.PREVOTE, *base[2:]),
                (*base[:2], 8, *base[3:]), (*base[:3], 4, base[4]), (*base[:4], b"")]
    seen = {compute_vote_sign_bytes(*base)}
    for variant in variants:
        seen.add(compute_vote_sign_bytes(*variant))
    assert len(seen) == 1 + len(variants)


def test_types_commit_signatures_verify_as_precommits() -> None:
    block_id = bytes(range(32))
    sign_bytes = compute_vote_sign_bytes(CHAIN_ID, VoteType.PRECOMMIT, 5, 1, block_id)
    commit = Commit(5, 1, block_id, tuple(CommitSig(key.public_key, key.sign(sign_bytes))
                                          for key in KEYRING[:3]))
    decoded = Commit.decode(commit.encode())
    for sig in decoded.signatures:
        assert is_valid_signature(sig.validator, sign_bytes, sig.signature)
        prevote = compute_vote_sign_bytes(CHAIN_ID, VoteType.PREVOTE, 5, 1, block_id)
        assert not is_valid_signature(sig.validator, prevote, sig.signature)


@pytest.mark.parametrize(("index", "value"), [
    (0, 2), (0, True), (1, 0), (1, True), (2, -1), (3, b""), (3, bytes(31)),
    (4, [[bytes(32)]]), (4, [[bytes(32), bytes(64), 0]]), (4, [[bytes(31), bytes(64)]]),
    (4, [[bytes(32), bytes(63)]]), (4, [[bytes(32), bytes(64)]] * (VALIDATORS_MAX + 1)),
    (4, None),
])
def test_types_commit_decoder_rules(index: int, value: Any) -> None:
    fields = Commit(1, 0, bytes(32), ()).to_cbor()
    fields[index] = value
    with pytest.raises(DecodeError):
        Commit.decode(encode(fields))


# --------------------------------------------------------------------------- headers and blocks


def make_header(height: int, **changes: Any) -> BlockHeader:
    link = b"" if height == 1 else bytes([7]) * 32
    fields = {"chain_id": CHAIN_ID, "height": height, "time_ms": 1_767_225_600_000,
              "prev_block_id": link, "tx_root": bytes([1]) * 32, "log_root": bytes([2]) * 32,
              "log_size": 0, "state_root": bytes([3]) * 32, "results_root": bytes([4]) * 32,
              "evidence_root": bytes([5]) * 32, "validators_hash": bytes([6]) * 32,
              "next_validators_hash": bytes([6]) * 32, "proposer": KEYRING[1].public_key,
              "last_commit_hash": link}
    fields.update(changes)
    return BlockHeader(**fields)


def test_types_header_field_order() -> None:
    header = make_header(2)
    assert header.to_cbor() == [
        FORMAT_VERSION, header.chain_id, header.height, header.time_ms, header.prev_block_id,
        header.tx_root, header.log_root, header.log_size, header.state_root,
        header.results_root, header.evidence_root, header.validators_hash,
        header.next_validators_hash, header.proposer, header.last_commit_hash]


def test_types_header_links_are_empty_exactly_at_height_one() -> None:
    assert BlockHeader.decode(make_header(1).encode()).prev_block_id == b""
    for changes in ({"prev_block_id": bytes(32)}, {"last_commit_hash": bytes(32)}):
        with pytest.raises(DecodeError, match="height 1"):
            BlockHeader.decode(make_header(1, **changes).encode())
    for changes in ({"prev_block_id": b""}, {"last_commit_hash": b""}):
        with pytest.raises(DecodeError):
            BlockHeader.decode(make_header(2, **changes).encode())


@pytest.mark.parametrize(("index", "value"), [
    (0, 2), (0, True), (1, "chain\n"), (1, ""), (2, 0), (2, True), (2, -1), (3, -1),
    (3, None), (5, bytes(31)), (6, bytes(33)), (7, b""), (7, -1), (8, b""), (9, bytes(31)),
    (10, None), (11, bytes(31)), (12, bytes(33)), (13, b""), (13, bytes(31)),
])
def test_types_header_decoder_rules(index: int, value: Any) -> None:
    fields = make_header(2).to_cbor()
    fields[index] = value
    with pytest.raises(DecodeError):
        BlockHeader.decode(encode(fields))


def test_types_header_field_count() -> None:
    fields = make_header(2).to_cbor()
    for bad in (fields[:14], [*fields, b""]):
        with pytest.raises(DecodeError, match="15 fields"):
            BlockHeader.decode(encode(bad))


def make_block(height: int, **changes: Any) -> Block:
    last_commit = None if height == 1 else Commit(height - 1, 0, bytes([7]) * 32, ())
    fields = {"header": make_header(height), "txs": (make_tx().encode(),),
              "last_commit": last_commit, "evidence": ()}
    fields.update(changes)
    return Block(**fields)


def test_types_block_last_commit_is_null_exactly_at_height_one() -> None:
    assert Block.decode(make_block(1).encode()).last_commit is None
    assert Block.decode(make_block(2).encode()).last_commit is not None
    with pytest.raises(DecodeError):
        Block.decode(make_block(1, last_commit=Commit(1, 0, bytes(32), ())).encode())
    with pytest.raises(DecodeError):
        Block.decode(make_block(2, last_commit=None).encode())


def test_types_block_keeps_the_received_bytes() -> None:
    block = make_block(2, evidence=(b"evidence",))
    data = block.encode()
    decoded = Block.decode(data)
    assert decoded.encode() == data == block.encode()
    assert decoded.block_id() == block.header.block_id() and decoded.height == 2


@pytest.mark.parametrize(("index", "value"), [
    (0, 2), (0, True), (2, [b""]), (2, ["tx"]), (2, [bytes(TX_BYTES_MAX + 1)]), (2, None),
    (4, [1]), (4, None), (4, [None]),
])
def test_types_block_decoder_rules(index: int, value: Any) -> None:
    fields = make_block(1).to_cbor()
    fields[index] = value
    with pytest.raises(DecodeError):
        Block.decode(encode(fields))


def test_types_block_tx_count_limit() -> None:
    fields = make_block(1).to_cbor()
    fields[2] = [b"\x00"] * (BLOCK_TXS_MAX + 1)
    with pytest.raises(DecodeError, match="txs"):
        Block.decode(encode(fields))
    fields[2] = [b"\x00"] * BLOCK_TXS_MAX
    assert len(Block.decode(encode(fields)).txs) == BLOCK_TXS_MAX
