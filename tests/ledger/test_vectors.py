"""The committed test vectors: fresh, self-consistent, and checked in both directions.

Hashes are recomputed here with hashlib straight from the vector bytes, and signatures are
checked against the public keys, so a vector cannot merely agree with the code that made it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey, compute_sign_bytes, is_valid_signature
from seoulchain.errors import DecodeError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import (
    Block,
    BlockHeader,
    Commit,
    Transaction,
    ValidatorSet,
    VoteType,
    compute_vote_sign_bytes,
)
from seoulchain.vectors import ledger as vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors" / "ledger.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
PUBLIC_KEYS = {item["name"]: bytes.fromhex(item["public_key_hex"]) for item in VECTORS["keys"]}
SEEDS = {item["name"]: bytes.fromhex(item["seed_hex"]) for item in VECTORS["keys"]}


def by_name(section: str) -> dict[str, Any]:
    return {item["name"]: item for item in VECTORS[section]}


def sha256_hex(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


def assert_signed(vector: dict[str, Any]) -> None:
    """The signature verifies, and signing the sign bytes with the seed reproduces it."""
    sign_bytes = bytes.fromhex(vector["sign_bytes_hex"])
    signature = bytes.fromhex(vector["signature_hex"])
    assert is_valid_signature(PUBLIC_KEYS[vector["key"]], sign_bytes, signature)
    assert SigningKey(SEEDS[vector["key"]]).sign(sign_bytes) == signature


# --------------------------------------------------------------------------- freshness


def test_vectors_committed_file_equals_a_fresh_generation() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == vectors.render_vectors(), (
        "docs/spec/vectors/ledger.json is stale: run scripts/make-vectors and review the diff")


def test_vectors_keys_come_from_their_fixed_seeds() -> None:
    for index, item in enumerate(VECTORS["keys"]):
        seed = bytes(range(32 * index, 32 * index + 32))
        assert item["seed_hex"] == seed.hex()
        assert item["public_key_hex"] == SigningKey(seed).public_key.hex()


# --------------------------------------------------------------------------- valid vectors


@pytest.mark.parametrize("vector", VECTORS["codec"], ids=lambda vector: vector["name"])
def test_vectors_codec(vector: dict[str, Any]) -> None:
    value = vectors.from_typed_json(vector["value"])
    data = bytes.fromhex(vector["cbor_hex"])
    assert encode(value) == data
    assert decode(data) == value
    assert vectors.to_typed_json(decode(data)) == vector["value"]
    assert vector["hash_hex"] == sha256_hex(vector["cbor_hex"])


@pytest.mark.parametrize("vector", VECTORS["signing"], ids=lambda vector: vector["name"])
def test_vectors_signing(vector: dict[str, Any]) -> None:
    payload = vectors.from_typed_json(vector["payload"])
    sign_bytes = compute_sign_bytes(vector["context_tag"], vector["chain_id"], payload)
    assert sign_bytes.hex() == vector["sign_bytes_hex"]
    assert decode(sign_bytes) == [vector["context_tag"], vector["chain_id"], payload]
    assert_signed(vector)


def test_vectors_signing_domains_do_not_share_signatures() -> None:
    signatures = [bytes.fromhex(item["signature_hex"]) for item in VECTORS["signing"]]
    for vector in VECTORS["signing"]:
        others = [signature for signature in signatures
                  if signature.hex() != vector["signature_hex"]]
        for signature in others:
            assert not is_valid_signature(PUBLIC_KEYS[vector["key"]],
                                          bytes.fromhex(vector["sign_bytes_hex"]), signature)


@pytest.mark.parametrize("vector", VECTORS["transactions"], ids=lambda vector: vector["name"])
def test_vectors_transaction(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["cbor_hex"])
    tx = vectors.transaction_from_json(vector["value"])
    assert tx.encode() == data
    decoded = Transaction.decode(data)
    assert decoded == tx and decoded.encode() == data
    assert vectors.transaction_to_json(decoded) == vector["value"]
    assert decoded.hash().hex() == vector["hash_hex"] == sha256_hex(vector["cbor_hex"])
    assert decoded.sign_bytes().hex() == vector["sign_bytes_hex"]
    assert decoded.signature.hex() == vector["signature_hex"]
    assert decoded.signer == PUBLIC_KEYS[vector["key"]]
    assert_signed(vector)


@pytest.mark.parametrize("vector", VECTORS["validator_sets"], ids=lambda vector: vector["name"])
def test_vectors_validator_set(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["cbor_hex"])
    validators = vectors.validator_set_from_json(vector["value"])
    assert encode(validators.to_cbor()) == data
    decoded = ValidatorSet.from_cbor(decode(data))
    assert decoded == validators
    assert decoded.hash().hex() == vector["hash_hex"] == sha256_hex(vector["cbor_hex"])


@pytest.mark.parametrize("vector", VECTORS["votes"], ids=lambda vector: vector["name"])
def test_vectors_vote(vector: dict[str, Any]) -> None:
    value = vector["value"]
    sign_bytes = compute_vote_sign_bytes(value["chain_id"], value["vote_type"], value["height"],
                                         value["round"], bytes.fromhex(value["block_id"]))
    assert sign_bytes.hex() == vector["sign_bytes_hex"]
    assert bytes.fromhex(value["validator"]) == PUBLIC_KEYS[vector["key"]]
    assert_signed(vector)


@pytest.mark.parametrize("vector", VECTORS["commits"], ids=lambda vector: vector["name"])
def test_vectors_commit(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["cbor_hex"])
    commit = vectors.commit_from_json(vector["value"])
    assert commit.encode() == data
    decoded = Commit.decode(data)
    assert decoded == commit and decoded.encode() == data
    assert decoded.hash().hex() == vector["hash_hex"] == sha256_hex(vector["cbor_hex"])
    sign_bytes = compute_vote_sign_bytes(vector["chain_id"], VoteType.PRECOMMIT, decoded.height,
                                         decoded.round, decoded.block_id)
    assert sign_bytes.hex() == vector["sign_bytes_hex"]
    validators = vectors.validator_set_from_json(
        by_name("validator_sets")["four agencies, equal power"]["value"])
    signers = [sig.validator for sig in decoded.signatures]
    assert len(set(signers)) == len(signers)
    for sig in decoded.signatures:
        assert validators.get_power(sig.validator) > 0
        assert is_valid_signature(sig.validator, sign_bytes, sig.signature)
    assert validators.is_quorum(sum(validators.get_power(key) for key in signers))


@pytest.mark.parametrize("vector", VECTORS["block_headers"], ids=lambda vector: vector["name"])
def test_vectors_block_header(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["cbor_hex"])
    header = vectors.header_from_json(vector["value"])
    assert header.encode() == data
    decoded = BlockHeader.decode(data)
    assert decoded == header and decoded.encode() == data
    assert vectors.header_to_json(decoded) == vector["value"]
    assert decoded.block_id().hex() == vector["hash_hex"] == sha256_hex(vector["cbor_hex"])


@pytest.mark.parametrize("vector", VECTORS["blocks"], ids=lambda vector: vector["name"])
def test_vectors_block(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["cbor_hex"])
    block = vectors.block_from_json(vector["value"])
    assert block.encode() == data
    decoded = Block.decode(data)
    assert decoded == block and decoded.encode() == data
    assert vectors.block_to_json(decoded) == vector["value"]
    assert decoded.block_id().hex() == vector["hash_hex"]
    # The header is embedded right after the block's array head and version: 85 01 <header>.
    header_hex = by_name("block_headers")[f"header of block {decoded.height}"]["cbor_hex"]
    assert data[:2] == b"\x85\x01" and data[2:].hex().startswith(header_hex)
    assert sha256_hex(header_hex) == vector["hash_hex"]
    for raw in decoded.txs:
        tx = Transaction.decode(raw)
        assert is_valid_signature(tx.signer, tx.sign_bytes(), tx.signature)


def test_vectors_blocks_link_into_a_chain() -> None:
    chain = [Block.decode(bytes.fromhex(item["cbor_hex"])) for item in VECTORS["blocks"]]
    commits = {commit.height: commit for commit in (
        Commit.decode(bytes.fromhex(item["cbor_hex"])) for item in VECTORS["commits"])}
    validators = vectors.validator_set_from_json(
        by_name("validator_sets")["four agencies, equal power"]["value"])
    assert [block.height for block in chain] == [1, 2, 3]
    assert chain[0].header.prev_block_id == b"" and chain[0].last_commit is None
    for previous, block in itertools.pairwise(chain):
        assert block.header.prev_block_id == previous.block_id()
        assert block.last_commit is not None
        assert block.last_commit == commits[previous.height]
        assert block.last_commit.block_id == previous.block_id()
        assert block.header.last_commit_hash == block.last_commit.hash()
    log_size = 0
    for block in chain:
        log_size += len(block.txs)
        assert block.header.log_size == log_size
        assert block.header.validators_hash == validators.hash()


# --------------------------------------------------------------------------- invalid vectors


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda vector: vector["name"])
def test_vectors_invalid_input_is_rejected(vector: dict[str, Any]) -> None:
    decoder = vectors.DECODERS[vector["decoder"]]
    with pytest.raises(DecodeError):
        decoder(bytes.fromhex(vector["cbor_hex"]))


def test_vectors_invalid_names_are_unique() -> None:
    names = [vector["name"] for vector in VECTORS["invalid"]]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("needle", [
    "non-canonical int", "unsorted map keys", "duplicate map keys", "indefinite-length",
    "float", "tag", "trailing", "format version 2", "fields", "wrong hash length",
    "oversized", "bool where int expected", "truncated", "invalid UTF-8", "nested 33",
    "height 1 with a non-empty prev_block_id", "height 2 without last_commit",
])
def test_vectors_invalid_list_covers_each_rejection_class(needle: str) -> None:
    assert any(needle in vector["name"] for vector in VECTORS["invalid"]), needle


def test_vectors_every_decoder_has_invalid_vectors() -> None:
    assert {vector["decoder"] for vector in VECTORS["invalid"]} == set(vectors.DECODERS)


def test_vectors_oversized_transaction_is_one_byte_over_the_limit() -> None:
    (vector,) = [item for item in VECTORS["invalid"] if "oversized" in item["name"]]
    assert len(bytes.fromhex(vector["cbor_hex"])) == vectors.TX_BYTES_MAX + 1


# --------------------------------------------------------------------------- genesis

LEDGER_SPEC = (VECTORS_PATH.parents[1] / "ledger.md").read_text(encoding="utf-8")


def read_genesis_field_order() -> list[str]:
    """Return the hashed genesis fields in the order of ledger.md §16.2's table."""
    section = LEDGER_SPEC[LEDGER_SPEC.index("### 16.2 The hashed value"):]
    rows = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    return [row.split("|")[2].strip().strip("`") for row in rows]


def compute_genesis_value_from_spec(file: dict[str, Any]) -> list[Any]:
    """Build the hashed value of a genesis file following ledger.md §16 alone."""
    version = file.get("version", 1)
    validators = sorted(([bytes.fromhex(item["public_key"]), item["power"],
                          item.get("name", "")] for item in file["validators"]),
                        key=lambda entry: entry[0])
    roles = {name: sorted({bytes.fromhex(key) for key in keys})
             for name, keys in file.get("roles", {}).items()}
    fields = {"version": version, "chain_id": file["chain_id"],
              "genesis_time_ms": file["genesis_time_ms"], "validator_set": validators,
              "roles": roles}
    if version == 2:
        agencies = file["agencies"]
        fields["agencies"] = [agencies["version"], [
            [member["name"], bytes.fromhex(member["public_key"])]
            for member in agencies["members"]]]
        threshold = file.get("governance", {}).get("threshold", 0)
        if threshold:
            fields["governance"] = {"threshold": threshold}
    return [fields[name] for name in read_genesis_field_order() if name in fields]


def test_genesis_spec_lists_the_hashed_fields_in_order() -> None:
    assert read_genesis_field_order() == ["version", "chain_id", "genesis_time_ms",
                                          "validator_set", "roles", "agencies", "governance"]


@pytest.mark.parametrize("vector", VECTORS["genesis"], ids=lambda vector: vector["name"])
def test_vectors_genesis_hash_follows_the_spec(vector: dict[str, Any]) -> None:
    value = compute_genesis_value_from_spec(vector["file"])
    assert encode(value).hex() == vector["cbor_hex"]
    assert vectors.from_typed_json(vector["value"]) == decode(bytes.fromhex(vector["cbor_hex"]))
    assert vector["hash_hex"] == sha256_hex(vector["cbor_hex"])
    genesis = Genesis.from_json(vector["file"])
    assert genesis.hash().hex() == vector["hash_hex"]
    assert Genesis.from_json(genesis.to_json()).hash() == genesis.hash()


def test_vectors_genesis_order_and_duplicates_do_not_change_the_hash() -> None:
    hashes = {vector["name"]: vector["hash_hex"] for vector in VECTORS["genesis"]}
    by_hand = next(name for name in hashes if "by hand" in name)
    canonical = next(name for name in hashes if "two agencies" in name)
    assert hashes[by_hand] == hashes[canonical]
    assert len(set(hashes.values())) == len(hashes) - 1


def test_vectors_genesis_version_1_keeps_its_five_field_hash() -> None:
    (vector,) = [item for item in VECTORS["genesis"] if item["file"]["version"] == 1]
    value = decode(bytes.fromhex(vector["cbor_hex"]))
    assert value[0] == 1 and len(value) == 5


@pytest.mark.parametrize("vector", VECTORS["invalid_genesis"],
                         ids=lambda vector: vector["name"])
def test_vectors_invalid_genesis_is_refused(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        Genesis.from_json(vector["file"])
