"""Test vectors for the ledger formats of docs/spec/ledger.md, generated deterministically.

Theory of operation: every key comes from a fixed seed and Ed25519 signing is deterministic
(RFC 8032), so `build_vectors()` returns the same value on every run and machine, and
`render_vectors()` the same text. The committed file docs/spec/vectors/ledger.json is that
text; a test regenerates it and fails on any difference, so a change to any encoding shows
up as a diff of the vectors, never silently.

Each valid vector carries a JSON-friendly `value`, the CBOR bytes (`cbor_hex`), the hash
and, where something is signed, the exact bytes signed and the signature. Each invalid
vector names the decoder that must reject it and why. The `*_from_json` helpers rebuild a
structure from its `value`, so tests (and other implementations) can go value -> bytes as
well as bytes -> value.

Run: `python -m seoulchain.vectors.ledger [output path]` (or scripts/make-vectors).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey, compute_sign_bytes, sha256
from seoulchain.ledger.genesis import AGENCIES_VERSION, GENESIS_VERSION_V1, Agency, Genesis
from seoulchain.ledger.types import (
    FORMAT_VERSION,
    TX_BYTES_MAX,
    VALIDATOR_NAME_CHARS_MAX,
    VALIDATORS_MAX,
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
from seoulchain.vectors import render_vectors_file, write_vectors_file

DEFAULT_PATH = Path("docs/spec/vectors/ledger.json")
CHAIN_ID = "seoul-devnet-1"
# 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
GENESIS_TIME_MS = 1_767_225_600_000
BLOCK_INTERVAL_MS = 1_000

# Fixed seeds: key i has seed bytes(range(32 * i, 32 * i + 32)).
KEY_NAMES = ("alice", "validator-0", "validator-1", "validator-2", "validator-3", "bob")


def get_keys() -> dict[str, SigningKey]:
    """Return the named example keys, each from its fixed seed."""
    return {name: SigningKey(bytes(range(32 * index, 32 * index + 32)))
            for index, name in enumerate(KEY_NAMES)}


def compute_placeholder_root(label: str) -> bytes:
    """Return an arbitrary but fixed 32-byte value standing in for a root in the examples."""
    return sha256(f"seoulchain test vector placeholder: {label}".encode())


# --------------------------------------------------------------------------- typed JSON


def to_typed_json(value: Any) -> Any:
    """Describe a CBOR data-model value in JSON without losing its type."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, list | tuple):
        return {"array": [to_typed_json(item) for item in value]}
    if isinstance(value, dict):
        # Pairs in wire order: sorted by the encoded key, as the deterministic encoding is.
        pairs = sorted(value.items(), key=lambda pair: encode(pair[0]))
        return {"map": [[key, to_typed_json(item)] for key, item in pairs]}
    raise TypeError(f"{type(value).__name__} is outside the data model")


def from_typed_json(description: Any) -> Any:
    """Rebuild the data-model value described by `to_typed_json`."""
    if description is None or isinstance(description, bool):
        return description
    ((kind, content),) = description.items()
    if kind == "int":
        return int(content)
    if kind == "bytes":
        return bytes.fromhex(content)
    if kind == "text":
        return content
    if kind == "array":
        return [from_typed_json(item) for item in content]
    if kind == "map":
        return {key: from_typed_json(item) for key, item in content}
    raise ValueError(f"unknown typed JSON kind {kind!r}")


# --------------------------------------------------------------------------- structure <-> JSON


def transaction_to_json(tx: Transaction) -> dict[str, Any]:
    return {"version": tx.version, "chain_id": tx.chain_id, "signer": tx.signer.hex(),
            "nonce": tx.nonce, "expiry_height": tx.expiry_height, "service": tx.service,
            "method": tx.method, "args": to_typed_json(tx.args),
            "signature": tx.signature.hex()}


def transaction_from_json(value: dict[str, Any]) -> Transaction:
    return Transaction(value["chain_id"], bytes.fromhex(value["signer"]), value["nonce"],
                       value["expiry_height"], value["service"], value["method"],
                       from_typed_json(value["args"]), bytes.fromhex(value["signature"]),
                       value["version"])


def validator_set_to_json(validators: ValidatorSet) -> list[dict[str, Any]]:
    return [{"public_key": validator.public_key.hex(), "power": validator.power,
             "name": validator.name} for validator in validators.validators]


def validator_set_from_json(value: list[dict[str, Any]]) -> ValidatorSet:
    return ValidatorSet(tuple(Validator(bytes.fromhex(item["public_key"]), item["power"],
                                        item["name"]) for item in value))


def commit_to_json(commit: Commit) -> dict[str, Any]:
    return {"version": commit.version, "height": commit.height, "round": commit.round,
            "block_id": commit.block_id.hex(),
            "signatures": [{"validator": sig.validator.hex(), "signature": sig.signature.hex()}
                           for sig in commit.signatures]}


def commit_from_json(value: dict[str, Any]) -> Commit:
    signatures = tuple(CommitSig(bytes.fromhex(sig["validator"]), bytes.fromhex(sig["signature"]))
                       for sig in value["signatures"])
    return Commit(value["height"], value["round"], bytes.fromhex(value["block_id"]), signatures,
                  value["version"])


HEADER_HASH_FIELDS = ("prev_block_id", "tx_root", "log_root", "state_root", "results_root",
                      "evidence_root", "validators_hash", "next_validators_hash", "proposer",
                      "last_commit_hash")


def header_to_json(header: BlockHeader) -> dict[str, Any]:
    return {"version": header.version, "chain_id": header.chain_id, "height": header.height,
            "time_ms": header.time_ms, "prev_block_id": header.prev_block_id.hex(),
            "tx_root": header.tx_root.hex(), "log_root": header.log_root.hex(),
            "log_size": header.log_size, "state_root": header.state_root.hex(),
            "results_root": header.results_root.hex(),
            "evidence_root": header.evidence_root.hex(),
            "validators_hash": header.validators_hash.hex(),
            "next_validators_hash": header.next_validators_hash.hex(),
            "proposer": header.proposer.hex(), "last_commit_hash": header.last_commit_hash.hex()}


def header_from_json(value: dict[str, Any]) -> BlockHeader:
    fields = dict(value)
    for name in HEADER_HASH_FIELDS:
        fields[name] = bytes.fromhex(fields[name])
    return BlockHeader(**fields)


def block_to_json(block: Block) -> dict[str, Any]:
    last_commit = None if block.last_commit is None else commit_to_json(block.last_commit)
    return {"version": block.version, "header": header_to_json(block.header),
            "txs": [tx.hex() for tx in block.txs], "last_commit": last_commit,
            "evidence": [item.hex() for item in block.evidence]}


def block_from_json(value: dict[str, Any]) -> Block:
    last_commit = None if value["last_commit"] is None else commit_from_json(value["last_commit"])
    return Block(header_from_json(value["header"]),
                 tuple(bytes.fromhex(tx) for tx in value["txs"]), last_commit,
                 tuple(bytes.fromhex(item) for item in value["evidence"]), value["version"])


def decode_validator_set(data: bytes) -> ValidatorSet:
    """Decode a validator set from canonical CBOR bytes, or raise `DecodeError`."""
    return ValidatorSet.from_cbor(decode(data))


# Every decoder named by an invalid vector; each must raise DecodeError on its input.
DECODERS: dict[str, Callable[[bytes], Any]] = {
    "codec": decode,
    "transaction": Transaction.decode,
    "validator_set": decode_validator_set,
    "commit": Commit.decode,
    "block_header": BlockHeader.decode,
    "block": Block.decode,
}


# --------------------------------------------------------------------------- valid vectors


def build_codec_vectors() -> list[dict[str, Any]]:
    """Return data-model examples covering each head size, type and the map key order."""
    examples: list[tuple[str, Any]] = [
        ("uint 0", 0), ("uint 23 (last one-byte head)", 23),
        ("uint 24 (first 1-byte argument)", 24),
        ("uint 255", 255), ("uint 256", 256), ("uint 65535", 65535), ("uint 65536", 65536),
        ("uint 2^32-1", 2**32 - 1), ("uint 2^32", 2**32), ("uint 2^64-1 (largest)", 2**64 - 1),
        ("nint -1", -1), ("nint -24", -24), ("nint -25", -25), ("nint -2^64 (smallest)", -(2**64)),
        ("false", False), ("true", True), ("null", None),
        ("empty byte string", b""), ("byte string", bytes(range(4))),
        ("byte string of 24 bytes", bytes(24)),
        ("empty text", ""), ("ascii text", "seoul"), ("hangul text (UTF-8)", "서울"),
        ("empty array", []), ("array", [1, [2, 3], b"\x04"]),
        ("empty map", {}),
        ("map keys sorted by encoded bytes: shorter keys first",
         {"aa": 2, "b": 1, "c": 3, "": 0}),
        ("map with nested values", {"z": {"y": [None, True]}, "a": -1}),
        ("array nested 32 deep (deepest allowed)", nest_arrays(32, 0)),
    ]
    return [{"name": name, "value": to_typed_json(value), "cbor_hex": encode(value).hex(),
             "hash_hex": sha256(encode(value)).hex()} for name, value in examples]


def nest_arrays(depth: int, inner: Any) -> Any:
    """Return `inner` wrapped in `depth` one-element arrays."""
    value = inner
    for _ in range(depth):
        value = [value]
    return value


def build_signing_vectors(keys: dict[str, SigningKey]) -> list[dict[str, Any]]:
    """Return examples of the generic domain-separated signature."""
    cases = [("same payload, context seoulchain/tx", "seoulchain/tx", CHAIN_ID),
             ("same payload, context seoulchain/vote", "seoulchain/vote", CHAIN_ID),
             ("same payload, another chain", "seoulchain/tx", "seoul-testnet-1")]
    payload = [FORMAT_VERSION, "hello"]
    vectors = []
    for name, context_tag, chain_id in cases:
        sign_bytes = compute_sign_bytes(context_tag, chain_id, payload)
        vectors.append({"name": name, "key": "alice", "context_tag": context_tag,
                        "chain_id": chain_id, "payload": to_typed_json(payload),
                        "sign_bytes_hex": sign_bytes.hex(),
                        "signature_hex": keys["alice"].sign(sign_bytes).hex()})
    return vectors


def build_transactions(keys: dict[str, SigningKey]) -> list[tuple[str, str, Transaction]]:
    """Return (name, signer key name, signed transaction) examples."""
    alice, bob = keys["alice"], keys["bob"]
    return [
        ("notary register", "alice", Transaction.create(
            alice, chain_id=CHAIN_ID, nonce=1, expiry_height=100, service="notary",
            method="register", args={"digest": sha256(b"example document"),
                                     "label": "building permit 2026-0142"})),
        ("empty args", "alice", Transaction.create(
            alice, chain_id=CHAIN_ID, nonce=2, expiry_height=50, service="governance",
            method="ping", args={})),
        ("nested args with every data-model type", "bob", Transaction.create(
            bob, chain_id=CHAIN_ID, nonce=7, expiry_height=1_000, service="points",
            method="mint", args={"note": "서울 mileage", "amount": 250, "refund": -5,
                                 "tags": ["bus", "subway"], "meta": {"k": None, "ok": True},
                                 "ref": b"\x00\xff"})),
        ("largest integers", "alice", Transaction.create(
            alice, chain_id=CHAIN_ID, nonce=2**64 - 1, expiry_height=2**64 - 1,
            service="points", method="burn", args={"low": -(2**64), "high": 2**64 - 1})),
    ]


def build_transaction_vectors(txs: list[tuple[str, str, Transaction]]) -> list[dict[str, Any]]:
    return [{"name": name, "key": key_name, "value": transaction_to_json(tx),
             "cbor_hex": tx.encode().hex(), "hash_hex": tx.hash().hex(),
             "sign_bytes_hex": tx.sign_bytes().hex(), "signature_hex": tx.signature.hex()}
            for name, key_name, tx in txs]


def build_validator_sets(keys: dict[str, SigningKey]) -> dict[str, ValidatorSet]:
    """Return a one-member set and the four-agency set the example blocks use."""
    names = ("Seoul Metropolitan Government", "교통정보센터 (Transport)", "Gangnam-gu Office",
             "Citizen Audit Board")
    members = [Validator(keys[f"validator-{index}"].public_key, 10, name)
               for index, name in enumerate(names)]
    return {"single validator": ValidatorSet.of([Validator(keys["validator-0"].public_key, 1)]),
            "four agencies, equal power": ValidatorSet.of(members)}


def build_validator_set_vectors(sets: dict[str, ValidatorSet]) -> list[dict[str, Any]]:
    return [{"name": name, "value": validator_set_to_json(validators),
             "cbor_hex": encode(validators.to_cbor()).hex(), "hash_hex": validators.hash().hex()}
            for name, validators in sets.items()]


def build_vote_vectors(keys: dict[str, SigningKey], block_id: bytes) -> list[dict[str, Any]]:
    """Return vote sign bytes and signatures for a prevote, a precommit and a nil prevote."""
    cases = [("prevote for a block", VoteType.PREVOTE, 2, 0, block_id),
             ("precommit for a block in round 3", VoteType.PRECOMMIT, 2, 3, block_id),
             ("prevote for nil (empty block id)", VoteType.PREVOTE, 2, 1, b"")]
    key = keys["validator-2"]
    vectors = []
    for name, vote_type, height, round_, voted_id in cases:
        sign_bytes = compute_vote_sign_bytes(CHAIN_ID, vote_type, height, round_, voted_id)
        vectors.append({"name": name, "key": "validator-2",
                        "value": {"chain_id": CHAIN_ID, "vote_type": vote_type, "height": height,
                                  "round": round_, "block_id": voted_id.hex(),
                                  "validator": key.public_key.hex()},
                        "sign_bytes_hex": sign_bytes.hex(),
                        "signature_hex": key.sign(sign_bytes).hex()})
    return vectors


def compute_commit(keys: list[SigningKey], height: int, round_: int, block_id: bytes) -> Commit:
    """Return the commit signed by `keys`, signatures in public-key order."""
    sign_bytes = compute_vote_sign_bytes(CHAIN_ID, VoteType.PRECOMMIT, height, round_, block_id)
    signatures = tuple(CommitSig(key.public_key, key.sign(sign_bytes))
                       for key in sorted(keys, key=lambda key: key.public_key))
    return Commit(height, round_, block_id, signatures)


def build_header(height: int, prev: Block | None, last_commit: Commit | None,
                 validators: ValidatorSet, proposer: bytes, log_size: int) -> BlockHeader:
    """Return an example header; roots other than the hashes it links are placeholders."""
    return BlockHeader(
        chain_id=CHAIN_ID, height=height,
        time_ms=GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
        prev_block_id=b"" if prev is None else prev.block_id(),
        tx_root=compute_placeholder_root(f"tx_root {height}"),
        log_root=compute_placeholder_root(f"log_root {height}"), log_size=log_size,
        state_root=compute_placeholder_root(f"state_root {height}"),
        results_root=compute_placeholder_root(f"results_root {height}"),
        evidence_root=compute_placeholder_root(f"evidence_root {height}"),
        validators_hash=validators.hash(), next_validators_hash=validators.hash(),
        proposer=proposer, last_commit_hash=b"" if last_commit is None else last_commit.hash())


def build_chain(keys: dict[str, SigningKey], validators: ValidatorSet,
                txs: list[Transaction]) -> tuple[list[Block], list[Commit]]:
    """Return three linked example blocks and the commits of blocks 1 and 2."""
    signers = [keys[f"validator-{index}"] for index in range(4)]
    proposers = [validator.public_key for validator in validators.validators]
    blocks: list[Block] = []
    commits: list[Commit] = []
    plan = [([txs[0], txs[1]], ()), ([txs[2]], ()), ([txs[3]], (b"opaque evidence bytes",))]
    log_size = 0
    for height, (block_txs, evidence) in enumerate(plan, start=1):
        log_size += len(block_txs)
        prev = blocks[-1] if blocks else None
        last_commit = commits[-1] if commits else None
        header = build_header(height, prev, last_commit, validators,
                              proposers[(height - 1) % 4], log_size)
        block = Block(header, tuple(tx.encode() for tx in block_txs), last_commit, evidence)
        blocks.append(block)
        # Block 1 is committed by three of four validators in round 0, block 2 by all four
        # in round 2 (after two failed rounds); either is more than 2/3 of the power.
        committers = signers[:3] if height == 1 else signers
        commits.append(compute_commit(committers, height, 0 if height == 1 else 2,
                                      block.block_id()))
    return blocks, commits[:2]


def build_commit_vectors(commits: list[Commit]) -> list[dict[str, Any]]:
    vectors = []
    for commit in commits:
        sign_bytes = compute_vote_sign_bytes(CHAIN_ID, VoteType.PRECOMMIT, commit.height,
                                             commit.round, commit.block_id)
        vectors.append({"name": f"commit of block {commit.height}, "
                                f"{len(commit.signatures)} of 4 validators",
                        "chain_id": CHAIN_ID, "value": commit_to_json(commit),
                        "cbor_hex": commit.encode().hex(), "hash_hex": commit.hash().hex(),
                        "sign_bytes_hex": sign_bytes.hex()})
    return vectors


def build_block_vectors(blocks: list[Block]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (header vectors, block vectors); a block's hash is its header's block id."""
    headers = [{"name": f"header of block {block.height}", "value": header_to_json(block.header),
                "cbor_hex": block.header.encode().hex(), "hash_hex": block.block_id().hex()}
               for block in blocks]
    described = {1: "block 1: two txs, no last commit", 2: "block 2: one tx, commit of block 1",
                 3: "block 3: one tx, commit of block 2, one opaque evidence item"}
    full = [{"name": described[block.height], "value": block_to_json(block),
             "cbor_hex": block.encode().hex(), "hash_hex": block.block_id().hex()}
            for block in blocks]
    return headers, full


# --------------------------------------------------------------------------- invalid vectors


def encode_head(major: int, argument: int, argument_bytes: int) -> bytes:
    """Return a CBOR head with the argument in exactly `argument_bytes` bytes (0 = inline)."""
    if argument_bytes == 0:
        return bytes([major << 5 | argument])
    additional = {1: 24, 2: 25, 4: 26, 8: 27}[argument_bytes]
    return bytes([major << 5 | additional]) + argument.to_bytes(argument_bytes, "big")


def encode_array_raw(items: list[bytes]) -> bytes:
    """Return an array whose item encodings are given verbatim (canonical or not)."""
    return encode_head(4, len(items), 0 if len(items) < 24 else 1) + b"".join(items)


def encode_fields_with(fields: list[Any], index: int, raw: bytes) -> bytes:
    """Encode `fields` as an array, but with field `index` replaced by the raw bytes `raw`."""
    items = [encode(field) for field in fields]
    items[index] = raw
    return encode_array_raw(items)


def replaced(fields: list[Any], index: int, value: Any) -> list[Any]:
    copy = list(fields)
    copy[index] = value
    return copy


CODEC_INVALID: list[tuple[str, str, str]] = [
    ("empty input", "", "no data item"),
    ("non-canonical int: 23 with a 1-byte argument", "1817",
     "integers use the shortest head (RFC 8949 §4.2.1)"),
    ("non-canonical int: 255 with a 2-byte argument", "1900ff", "integers use the shortest head"),
    ("non-canonical int: 0 with an 8-byte argument", "1b0000000000000000",
     "integers use the shortest head"),
    ("non-canonical negative int: -1 with a 1-byte argument", "3800",
     "integers use the shortest head"),
    ("non-canonical length: byte string", "580101", "lengths use the shortest head"),
    ("non-canonical length: text string", "780161", "lengths use the shortest head"),
    ("non-canonical length: array", "9800", "lengths use the shortest head"),
    ("non-canonical length: map", "b800", "lengths use the shortest head"),
    ("unsorted map keys", "a2616200616100", "map keys sort by their encoded bytes"),
    ("map keys in text order instead of encoded-bytes order", "a262616100616200",
     '"b" (0x6162) sorts before "aa" (0x626161): shorter keys first'),
    ("duplicate map keys", "a2616100616101", "a map key appears at most once"),
    ("indefinite-length array", "9f01ff", "indefinite lengths are not allowed"),
    ("indefinite-length map", "bf616100ff", "indefinite lengths are not allowed"),
    ("indefinite-length byte string", "5f4101ff", "indefinite lengths are not allowed"),
    ("indefinite-length text string", "7f6161ff", "indefinite lengths are not allowed"),
    ("half-precision float 1.0", "f93c00", "floats are outside the data model"),
    ("single-precision float 1.0", "fa3f800000", "floats are outside the data model"),
    ("double-precision float 1.0", "fb3ff0000000000000", "floats are outside the data model"),
    ("tag 1 (epoch time)", "c11a5f5e1000", "tags are outside the data model"),
    ("tag 2 bignum of small value", "c24101", "tags are outside the data model"),
    ("tag 2 bignum 2^64 (out of range)", "c249010000000000000000",
     "integers are limited to 64-bit arguments; tags are outside the data model"),
    ("tag 2 bignum of 2048 bytes", "c2590800" + "01" * 2048,
     "tags are outside the data model (regression: must not raise ValueError)"),
    ("tag 24 (embedded CBOR)", "d8184101", "tags are outside the data model"),
    ("tag 55799 (self-described CBOR)", "d9d9f701", "tags are outside the data model"),
    ("tag 28/29 (shared reference cycle)", "d81c81d81d00",
     "tags are outside the data model"),
    ("undefined", "f7", "undefined is outside the data model"),
    ("simple value 16", "f0", "simple values other than false/true/null are not allowed"),
    ("simple value 32", "f820", "simple values other than false/true/null are not allowed"),
    ("reserved additional information 28", "1c", "not well-formed CBOR"),
    ("lone break byte", "ff", "not well-formed CBOR"),
    ("trailing bytes after the data item", "0100", "exactly one data item"),
    ("truncated array", "8201", "not well-formed CBOR: input ends inside the item"),
    ("truncated argument", "19ff", "not well-formed CBOR: input ends inside the head"),
    ("byte string longer than the input", "5bffffffffffffffff00",
     "not well-formed CBOR: input ends inside the item"),
    ("array claiming 2^32-1 items", "9affffffff00", "input ends inside the item"),
    ("invalid UTF-8 in text string", "62c328", "text strings are valid UTF-8"),
    ("integer map key", "a10100", "map keys are text strings"),
    ("byte string map key", "a1416100", "map keys are text strings"),
    ("array nested 33 deep", "81" * 33 + "00", "nesting deeper than 32"),
]


def build_invalid_vectors(txs: list[tuple[str, str, Transaction]], validators: ValidatorSet,
                          blocks: list[Block], commits: list[Commit]) -> list[dict[str, Any]]:
    """Return inputs that each decoder must reject with DecodeError, with the reason."""
    vectors = [{"name": name, "decoder": "codec", "cbor_hex": hex_text, "reason": reason}
               for name, hex_text, reason in CODEC_INVALID]
    for name, decoder, data, reason in (
        *build_invalid_transactions(txs[0][2]),
        *build_invalid_validator_sets(validators),
        *build_invalid_commits(commits[0]),
        *build_invalid_headers(blocks[0].header, blocks[1].header),
        *build_invalid_blocks(blocks[0], blocks[1]),
    ):
        vectors.append({"name": name, "decoder": decoder, "cbor_hex": data.hex(),
                        "reason": reason})
    return vectors


InvalidCase = tuple[str, str, bytes, str]


def build_invalid_transactions(tx: Transaction) -> list[InvalidCase]:
    fields = tx.to_cbor()
    cases: list[tuple[str, Any, str]] = [
        ("format version 2", replaced(fields, 0, 2), "readers reject unknown versions"),
        ("format version 0", replaced(fields, 0, 0), "readers reject unknown versions"),
        ("format version true (bool where int expected)", replaced(fields, 0, True),
         "the version is an integer; true is not 1"),
        ("8 fields", fields[:8], "a transaction has exactly 9 fields"),
        ("10 fields", [*fields, b""], "a transaction has exactly 9 fields"),
        ("map instead of array", {"version": 1}, "a transaction is an array"),
        ("chain_id empty", replaced(fields, 1, ""), "chain_id matches the chain-id pattern"),
        ("chain_id with trailing newline", replaced(fields, 1, "seoul-devnet-1\n"),
         "chain_id matches the chain-id pattern in full"),
        ("signer of 31 bytes", replaced(fields, 2, fields[2][:31]), "signer is 32 bytes"),
        ("nonce 0", replaced(fields, 3, 0), "nonce is at least 1"),
        ("nonce true (bool where int expected)", replaced(fields, 3, True),
         "nonce is an integer"),
        ("nonce negative", replaced(fields, 3, -1), "nonce is an unsigned integer"),
        ("expiry_height as text", replaced(fields, 4, "100"), "expiry_height is an integer"),
        ("service with an upper-case letter", replaced(fields, 5, "Notary"),
         "service matches [a-z][a-z0-9_]{0,31}"),
        ("service with trailing newline", replaced(fields, 5, "notary\n"),
         "service matches the name pattern in full"),
        ("method of 33 characters", replaced(fields, 6, "m" * 33),
         "method matches [a-z][a-z0-9_]{0,31}"),
        ("args as an array", replaced(fields, 7, []), "args is a map"),
        ("signature empty (unsigned)", replaced(fields, 8, b""), "signature is 64 bytes"),
        ("signature of 65 bytes", replaced(fields, 8, fields[8] + b"\x00"),
         "signature is 64 bytes"),
        ("oversized: encoding of 65537 bytes", compute_oversized_fields(fields),
         "a transaction encoding is at most 65536 bytes"),
    ]
    result: list[InvalidCase] = [(f"transaction: {name}", "transaction", encode(value), reason)
                                 for name, value, reason in cases]
    oversized = result[-1][2]
    assert len(oversized) == TX_BYTES_MAX + 1, len(oversized)
    result += [
        ("transaction: non-canonical nonce (1 with a 1-byte argument)", "transaction",
         encode_fields_with(fields, 3, encode_head(0, fields[3], 1)),
         "every integer uses the shortest head"),
        ("transaction: trailing byte", "transaction", tx.encode() + b"\x00",
         "exactly one data item"),
        ("transaction: truncated by one byte", "transaction", tx.encode()[:-1],
         "input ends inside the item"),
    ]
    return result


def compute_oversized_fields(fields: list[Any]) -> list[Any]:
    """Return `fields` with args padded so that the encoding is TX_BYTES_MAX + 1 bytes."""
    target = TX_BYTES_MAX + 1
    base = len(encode(replaced(fields, 7, {"blob": b""})))
    for size in range(target - base - 8, target - base + 1):
        padded = replaced(fields, 7, {"blob": bytes(size)})
        if len(encode(padded)) == target:
            return padded
    raise AssertionError("no padding gives the target size")


def build_invalid_validator_sets(validators: ValidatorSet) -> list[InvalidCase]:
    members = validators.to_cbor()
    key = members[0][0]
    cases: list[tuple[str, Any, str]] = [
        ("empty", [], "a validator set has 1 to 150 members"),
        ("not sorted by public key", list(reversed(members)),
         "members are sorted by public key"),
        ("duplicate public key", [members[0], members[0]], "public keys are distinct"),
        ("power 0", [[key, 0, "x"]], "power is at least 1"),
        ("power true (bool where int expected)", [[key, True, "x"]], "power is an integer"),
        ("name of 65 characters", [[key, 1, "n" * (VALIDATOR_NAME_CHARS_MAX + 1)]],
         "name is at most 64 characters"),
        ("public key of 33 bytes", [[key + b"\x00", 1, "x"]], "public_key is 32 bytes"),
        ("validator with 2 fields", [[key, 1]], "a validator has exactly 3 fields"),
        ("151 members", [[index.to_bytes(32, "big"), 1, ""] for index in
                         range(VALIDATORS_MAX + 1)], "a validator set has 1 to 150 members"),
    ]
    return [(f"validator set: {name}", "validator_set", encode(value), reason)
            for name, value, reason in cases]


def build_invalid_commits(commit: Commit) -> list[InvalidCase]:
    fields = commit.to_cbor()
    sig = fields[4][0]
    cases: list[tuple[str, Any, str]] = [
        ("format version 2", replaced(fields, 0, 2), "readers reject unknown versions"),
        ("4 fields", fields[:4], "a commit has exactly 5 fields"),
        ("height 0", replaced(fields, 1, 0), "height is at least 1"),
        ("round negative", replaced(fields, 2, -1), "round is an unsigned integer"),
        ("block_id empty (a nil commit)", replaced(fields, 3, b""), "block_id is 32 bytes"),
        ("block_id of 31 bytes (wrong hash length)", replaced(fields, 3, fields[3][:31]),
         "block_id is 32 bytes"),
        ("signature entry with 3 fields", replaced(fields, 4, [[*sig, b""]]),
         "a commit signature has exactly 2 fields"),
        ("signature of 63 bytes", replaced(fields, 4, [[sig[0], sig[1][:63]]]),
         "signature is 64 bytes"),
        ("151 signatures", replaced(fields, 4, [sig] * (VALIDATORS_MAX + 1)),
         "at most 150 signatures"),
    ]
    return [(f"commit: {name}", "commit", encode(value), reason)
            for name, value, reason in cases]


def build_invalid_headers(first: BlockHeader, second: BlockHeader) -> list[InvalidCase]:
    fields, later = first.to_cbor(), second.to_cbor()
    cases: list[tuple[str, Any, str]] = [
        ("format version 2", replaced(fields, 0, 2), "readers reject unknown versions"),
        ("14 fields", fields[:14], "a header has exactly 15 fields"),
        ("16 fields", [*fields, b""], "a header has exactly 15 fields"),
        ("chain_id with trailing newline", replaced(fields, 1, "seoul-devnet-1\n"),
         "chain_id matches the chain-id pattern in full"),
        ("height 0", replaced(fields, 2, 0), "height is at least 1"),
        ("height true (bool where int expected)", replaced(fields, 2, True),
         "height is an integer"),
        ("time_ms negative", replaced(fields, 3, -1), "time_ms is an unsigned integer"),
        ("height 1 with a non-empty prev_block_id", replaced(fields, 4, bytes(32)),
         "block 1 has no predecessor: prev_block_id is empty"),
        ("height 1 with a non-empty last_commit_hash", replaced(fields, 14, bytes(32)),
         "block 1 has no previous commit: last_commit_hash is empty"),
        ("height 2 with an empty prev_block_id", replaced(later, 4, b""),
         "above height 1 prev_block_id is 32 bytes"),
        ("height 2 with an empty last_commit_hash", replaced(later, 14, b""),
         "above height 1 last_commit_hash is 32 bytes"),
        ("tx_root of 31 bytes (wrong hash length)", replaced(fields, 5, fields[5][:31]),
         "tx_root is 32 bytes"),
        ("state_root of 33 bytes (wrong hash length)", replaced(fields, 8, fields[8] + b"\x00"),
         "state_root is 32 bytes"),
        ("log_size as bytes", replaced(fields, 7, b"\x01"), "log_size is an integer"),
        ("proposer empty", replaced(fields, 13, b""), "proposer is a 32-byte public key"),
    ]
    return [(f"block header: {name}", "block_header", encode(value), reason)
            for name, value, reason in cases]


def build_invalid_blocks(first: Block, second: Block) -> list[InvalidCase]:
    fields, later = first.to_cbor(), second.to_cbor()
    cases: list[tuple[str, Any, str]] = [
        ("format version 2", replaced(fields, 0, 2), "readers reject unknown versions"),
        ("4 fields", fields[:4], "a block has exactly 5 fields"),
        ("height 2 without last_commit", replaced(later, 3, None),
         "every block above height 1 carries the previous block's commit"),
        ("height 1 with a last_commit", replaced(fields, 3, later[3]),
         "block 1 has no previous commit"),
        ("empty tx", replaced(fields, 2, [b""]), "a tx is a non-empty byte string"),
        ("tx as a decoded array instead of bytes", replaced(fields, 2, [decode(later[2][0])]),
         "txs are carried as their raw encoded bytes"),
        ("evidence item as an integer", replaced(fields, 4, [1]),
         "evidence items are byte strings"),
        ("header with a wrong version", replaced(fields, 1, replaced(fields[1], 0, 2)),
         "the embedded header is checked like a header"),
        ("last_commit with a wrong version", replaced(later, 3, replaced(later[3], 0, 2)),
         "the embedded commit is checked like a commit"),
    ]
    return [(f"block: {name}", "block", encode(value), reason)
            for name, value, reason in cases]


# --------------------------------------------------------------------------- genesis


def build_genesis_files(keys: dict[str, SigningKey],
                        validators: ValidatorSet) -> list[tuple[str, dict[str, Any]]]:
    """Return (name, genesis file value) examples of each genesis version (ledger.md §16)."""
    alice, bob = keys["alice"].public_key, keys["bob"].public_key
    version_2 = Genesis(CHAIN_ID, GENESIS_TIME_MS, validators,
                        {"notary.issuer": (alice, bob), "vehicle.registrar": (alice,)},
                        (Agency("city-hall", alice), Agency("mapo-gu", bob)),
                        threshold=2).to_json()
    by_hand = copy.deepcopy(version_2)
    by_hand["validators"].reverse()
    by_hand["roles"] = {"vehicle.registrar": [alice.hex()],
                        "notary.issuer": [bob.hex(), alice.hex(), bob.hex()]}
    version_1 = {key: value for key, value in version_2.items()
                 if key not in ("agencies", "governance")}
    version_1["version"] = GENESIS_VERSION_V1
    no_agencies = {key: value for key, value in version_2.items() if key != "governance"}
    no_agencies["agencies"] = {"version": AGENCIES_VERSION, "members": []}
    return [
        ("version 2: four validators, two agencies (k = 2), two roles", version_2),
        ("version 2 as written by hand: validators and role members out of order, a member "
         "listed twice", by_hand),
        ("version 2 naming no agency", no_agencies),
        ("version 1 (no agencies field)", version_1),
    ]


def build_genesis_vectors(keys: dict[str, SigningKey],
                          validators: ValidatorSet) -> list[dict[str, Any]]:
    vectors = []
    for name, file in build_genesis_files(keys, validators):
        genesis = Genesis.from_json(file)
        data = encode(genesis.to_cbor())
        vectors.append({"name": name, "file": file, "value": to_typed_json(genesis.to_cbor()),
                        "cbor_hex": data.hex(), "hash_hex": genesis.hash().hex()})
    return vectors


def build_invalid_genesis_vectors(keys: dict[str, SigningKey],
                                  validators: ValidatorSet) -> list[dict[str, Any]]:
    """Return genesis files a reader MUST refuse, each with the rule it breaks."""
    valid = build_genesis_files(keys, validators)[0][1]

    def changed(**fields: Any) -> dict[str, Any]:
        return {**copy.deepcopy(valid), **fields}

    agencies = valid["agencies"]
    first, second = agencies["members"]
    cases = [
        ("version 3", changed(version=3), "readers reject unknown genesis versions"),
        ("version 1 with agencies", changed(version=1),
         "a version 1 genesis has no agencies field"),
        ("unknown field", changed(extra=1), "unknown fields are refused, never skipped"),
        ("agencies version 2", changed(agencies={**agencies, "version": 2}),
         "readers reject unknown agencies versions"),
        ("agency name with upper case", changed(agencies={**agencies, "members": [
            {**first, "name": "City-Hall"}, second]}),
         "an agency name is [a-z][a-z0-9-]{0,63}"),
        ("two agencies with one name", changed(agencies={**agencies, "members": [
            first, {**second, "name": first["name"]}]}), "agency names are unique"),
        ("two agencies with one key", changed(agencies={**agencies, "members": [
            first, {**second, "public_key": first["public_key"]}]}),
         "agency public keys are unique"),
        ("agency key of 31 bytes", changed(agencies={**agencies, "members": [
            {**first, "public_key": first["public_key"][:62]}, second]}),
         "a public key is 32 bytes"),
        ("governance threshold above the agencies", changed(governance={"threshold": 3}),
         "the threshold k is from 1 to the number of agencies"),
        ("governance threshold 0", changed(governance={"threshold": 0}),
         "the threshold k is from 1 to the number of agencies"),
        ("agencies without a governance threshold",
         {key: value for key, value in valid.items() if key != "governance"},
         "a genesis that names agencies sets their threshold"),
        ("validator power 0", changed(validators=[
            {**valid["validators"][0], "power": 0}, *valid["validators"][1:]]),
         "validator power is at least 1"),
        ("validator power as text", changed(validators=[
            {**valid["validators"][0], "power": "10"}, *valid["validators"][1:]]),
         "validator power is a JSON integer"),
        ("genesis_time_ms negative", changed(genesis_time_ms=-1),
         "genesis_time_ms is an unsigned integer"),
    ]
    return [{"name": name, "file": file, "reason": reason} for name, file, reason in cases]


# --------------------------------------------------------------------------- assembly


def build_vectors() -> dict[str, Any]:
    """Return every vector as one JSON-ready value."""
    keys = get_keys()
    txs = build_transactions(keys)
    sets = build_validator_sets(keys)
    validators = sets["four agencies, equal power"]
    blocks, commits = build_chain(keys, validators, [tx for _, _, tx in txs])
    headers, full_blocks = build_block_vectors(blocks)
    return {
        "description": "seoulchain ledger format test vectors; see docs/spec/ledger.md. "
                       "Generated by `python -m seoulchain.vectors.ledger`; do not edit.",
        "format_version": FORMAT_VERSION,
        "notes": [
            "Integers in `value` objects are exact JSON integers (some exceed 2^53).",
            "Byte strings in `value` objects are lower-case hex.",
            "CBOR values of arbitrary type (codec values, transaction args, payloads) use "
            "typed JSON: {\"int\": \"decimal\"}, {\"bytes\": \"hex\"}, {\"text\": \"...\"}, "
            "{\"array\": [...]}, {\"map\": [[key, value], ...]}, and JSON true/false/null.",
            "hash_hex is SHA-256 of the bytes in cbor_hex; for a block it is the block id, "
            "SHA-256 of the encoded header, not of the whole block.",
            "Header roots (tx_root, log_root, state_root, results_root, evidence_root) are "
            "placeholders (SHA-256 of a label): these vectors fix the encoding, not the "
            "Merkle computations. prev_block_id, last_commit_hash and validators hashes are "
            "real links between the vectors.",
            "Each key's seed is in `keys`; Ed25519 is deterministic, so signing sign_bytes_hex "
            "with that seed reproduces signature_hex.",
        ],
        "keys": [{"name": name, "seed_hex": key.seed.hex(), "public_key_hex": key.public_key.hex()}
                 for name, key in keys.items()],
        "codec": build_codec_vectors(),
        "signing": build_signing_vectors(keys),
        "transactions": build_transaction_vectors(txs),
        "validator_sets": build_validator_set_vectors(sets),
        "votes": build_vote_vectors(keys, blocks[1].block_id()),
        "commits": build_commit_vectors(commits),
        "block_headers": headers,
        "blocks": full_blocks,
        "invalid": build_invalid_vectors(txs, validators, blocks, commits),
        "genesis": build_genesis_vectors(keys, validators),
        "invalid_genesis": build_invalid_genesis_vectors(keys, validators),
    }


def render_vectors() -> str:
    """Return the vectors file's exact text."""
    return render_vectors_file(build_vectors())


def main(argv: list[str]) -> int:
    return write_vectors_file(render_vectors(), argv, DEFAULT_PATH)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
