"""Ledger data types and their byte-exact encodings (specified in docs/spec/ledger.md).

Theory of operation: each structure is a frozen dataclass with `to_cbor()` giving its
deterministic CBOR value (an array with a version number first), `encode()` giving bytes,
and a `decode(bytes)` classmethod that either returns the structure or raises
`DecodeError` — whatever the input. Decoding checks shape and field types only;
signatures and cross-references are checked by the layers that own those rules
(execution for transactions, consensus/audit for commits).

Signatures are domain-separated: a transaction signs `CBOR(["seoulchain/tx", chain_id,
body])`, a vote signs `CBOR(["seoulchain/vote", chain_id, vote_body])`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, NewType

from seoulchain.codec import decode, encode
from seoulchain.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SigningKey, sha256
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import DecodeError, LocalError
from seoulchain.proofs.logtree import compute_leaf_hash, compute_root

Height = NewType("Height", int)
Round = NewType("Round", int)
VotingPower = NewType("VotingPower", int)

FORMAT_VERSION = 1
TX_CONTEXT = "seoulchain/tx"
VOTE_CONTEXT = "seoulchain/vote"

# A transaction carries a document hash and a little metadata; 64 KiB leaves ample room
# while keeping a block of thousands of transactions within BLOCK_BYTES_MAX.
TX_BYTES_MAX = 64 * 1024
# Bounds a block so that one can be decoded, stored and gossiped in well under a second.
BLOCK_BYTES_MAX = 8 * 1024 * 1024
# Bounds per-block work (decoding, execution, the tx index); a node's own blocks carry
# fewer by default ([chain] block_txs_max).
BLOCK_TXS_MAX = 10_000
# Same limit as CometBFT's chain-id.
CHAIN_ID_CHARS_MAX = 50
NAME_CHARS_MAX = 32
# Validators beyond this would make every commit too large to check quickly.
VALIDATORS_MAX = 150
# The highest block height anywhere (headers, commits, votes, proposals): CometBFT keeps
# heights in an int64, and SQLite's INTEGER, which the block store keys by, is one too.
HEIGHT_MAX = 2**63 - 1
# The highest round anywhere (commits, votes, proposals): CometBFT keeps rounds in an int32.
ROUND_MAX = 2**31 - 1
# Longest human-readable validator name.
VALIDATOR_NAME_CHARS_MAX = 64

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
CHAIN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
EMPTY_HASH = b""


class VoteType:
    """Vote kinds, as integers on the wire."""

    PREVOTE = 1
    PRECOMMIT = 2


def require(condition: bool, message: str) -> None:
    """Raise `DecodeError(message)` unless `condition` holds."""
    if not condition:
        raise DecodeError(message)


def require_int(value: Any, name: str, minimum: int = 0) -> int:
    """Return `value` if it is an int (not bool) >= minimum, else raise `DecodeError`."""
    require(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an integer")
    require(value >= minimum, f"{name} must be >= {minimum}")
    return int(value)


def require_height(value: Any, name: str) -> Height:
    """Return `value` as a height in 1..HEIGHT_MAX, else raise `DecodeError`."""
    height = require_int(value, name, 1)
    require(height <= HEIGHT_MAX, f"{name} exceeds {HEIGHT_MAX}")
    return Height(height)


def require_round(value: Any, name: str, minimum: int = 0) -> Round:
    """Return `value` as a round in minimum..ROUND_MAX, else raise `DecodeError`."""
    round_ = require_int(value, name, minimum)
    require(round_ <= ROUND_MAX, f"{name} exceeds {ROUND_MAX}")
    return Round(round_)


def require_bytes(value: Any, name: str, size: int | None = None,
                  allow_empty: bool = False) -> bytes:
    """Return `value` if it is bytes of the given size (or empty when allowed)."""
    require(isinstance(value, bytes), f"{name} must be a byte string")
    if allow_empty and value == b"":
        return value
    if size is not None:
        require(len(value) == size, f"{name} must be {size} bytes, got {len(value)}")
    return value


def require_str(value: Any, name: str, pattern: re.Pattern[str]) -> str:
    """Return `value` if it is a text string matching `pattern`."""
    require(isinstance(value, str), f"{name} must be a text string")
    # fullmatch, not match: with match, "$" also accepts a trailing newline.
    require(pattern.fullmatch(value) is not None, f"{name} {value!r} is not well formed")
    return value


def require_array(value: Any, name: str, length: int | None = None) -> list[Any]:
    """Return `value` if it is an array (of `length` items when given)."""
    require(isinstance(value, list), f"{name} must be an array")
    if length is not None:
        require(len(value) == length, f"{name} must have {length} fields, got {len(value)}")
    return value


def require_version(value: Any, name: str) -> None:
    """Raise unless `value` is the format version this software reads."""
    # The type test matters: in Python `True == 1`, so a bool would pass the comparison.
    require(type(value) is int and value == FORMAT_VERSION,
            f"{name} has unsupported format version {value!r}")


# --------------------------------------------------------------------------- transactions

# CBOR heads of the 9-item transaction, the 8-item body and a 64-byte signature string.
_TX_ARRAY_HEAD = b"\x89"
_BODY_ARRAY_HEAD = b"\x88"
_SIGNATURE_HEAD = b"\x58\x40"
_SIGNATURE_ITEM_BYTES = len(_SIGNATURE_HEAD) + SIGNATURE_BYTES


@functools.lru_cache(maxsize=16)
def _compute_sign_prefix(chain_id: str) -> bytes:
    """Return the sign bytes' head: the 3-item array head, the context and the chain id."""
    return b"\x83" + encode(TX_CONTEXT) + encode(chain_id)


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed request to call `service.method(args)` on behalf of `signer`."""

    chain_id: str
    signer: bytes
    nonce: int
    expiry_height: int
    service: str
    method: str
    args: dict[str, Any]
    signature: bytes = b""
    version: int = FORMAT_VERSION
    _raw: bytes = field(default=b"", init=False, compare=False, repr=False)

    def body(self) -> list[Any]:
        """Return the signed fields as a CBOR array."""
        return [self.version, self.chain_id, self.signer, self.nonce, self.expiry_height,
                self.service, self.method, self.args]

    def sign_bytes(self) -> bytes:
        """Return the exact bytes the signer signs."""
        raw = self._raw
        if raw[:1] == _TX_ARRAY_HEAD and raw[-_SIGNATURE_ITEM_BYTES:-SIGNATURE_BYTES] == \
                _SIGNATURE_HEAD:
            # The canonical encoding of an array is its head followed by its items' encodings,
            # so the body's items are the canonical tx's bytes between its head and the
            # signature item: the same bytes `encode` would give, without re-encoding.
            return (_compute_sign_prefix(self.chain_id) + _BODY_ARRAY_HEAD
                    + raw[1:-_SIGNATURE_ITEM_BYTES])
        return encode([TX_CONTEXT, self.chain_id, self.body()])

    def to_cbor(self) -> list[Any]:
        return [*self.body(), self.signature]

    def encode(self) -> bytes:
        """Return the canonical encoding (computed once; the decoded bytes when decoded)."""
        if not self._raw:
            object.__setattr__(self, "_raw", encode(self.to_cbor()))
        return self._raw

    def hash(self) -> bytes:
        """Return the transaction hash: SHA-256 of its full encoding."""
        return sha256(self.encode())

    def signed(self, key: SigningKey) -> Transaction:
        """Return a copy signed by `key`, which must be the signer's key."""
        if key.public_key != self.signer:
            raise LocalError("signing key does not match the transaction's signer")
        signature = key.sign(self.sign_bytes())
        return Transaction(self.chain_id, self.signer, self.nonce, self.expiry_height,
                           self.service, self.method, self.args, signature, self.version)

    @classmethod
    def create(cls, key: SigningKey, *, chain_id: str, nonce: int, expiry_height: int,
               service: str, method: str, args: dict[str, Any]) -> Transaction:
        """Build and sign a transaction in one step."""
        unsigned = cls(chain_id, key.public_key, nonce, expiry_height, service, method, args)
        return unsigned.signed(key)

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        """Decode a transaction, checking field types and the size limit."""
        value = decode(data, TX_BYTES_MAX)
        tx = cls.from_cbor(value)
        object.__setattr__(tx, "_raw", bytes(data))
        return tx

    @classmethod
    def from_cbor(cls, value: Any) -> Transaction:
        fields = require_array(value, "transaction", 9)
        require_version(fields[0], "transaction")
        require(isinstance(fields[7], dict), "transaction args must be a map")
        return cls(
            chain_id=require_str(fields[1], "transaction chain_id", CHAIN_ID_PATTERN),
            signer=require_bytes(fields[2], "signer", PUBLIC_KEY_BYTES),
            nonce=require_int(fields[3], "nonce", 1),
            expiry_height=require_int(fields[4], "expiry_height", 0),
            service=require_str(fields[5], "service", NAME_PATTERN),
            method=require_str(fields[6], "method", NAME_PATTERN),
            args=fields[7],
            signature=require_bytes(fields[8], "signature", SIGNATURE_BYTES),
            version=fields[0],
        )


# --------------------------------------------------------------------------- validators


@dataclass(frozen=True, slots=True)
class Validator:
    """One agency's validator: its Ed25519 public key, voting power and display name."""

    public_key: bytes
    power: int
    name: str = ""

    def to_cbor(self) -> list[Any]:
        return [self.public_key, self.power, self.name]

    @classmethod
    def from_cbor(cls, value: Any) -> Validator:
        fields = require_array(value, "validator", 3)
        name = fields[2]
        require(isinstance(name, str) and len(name) <= VALIDATOR_NAME_CHARS_MAX,
                "validator name must be a short text string")
        return cls(require_bytes(fields[0], "validator public_key", PUBLIC_KEY_BYTES),
                   require_int(fields[1], "validator power", 1), name)


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """An ordered validator set; order is by public key so that every node agrees."""

    validators: tuple[Validator, ...]

    def __post_init__(self) -> None:
        keys = [validator.public_key for validator in self.validators]
        if not 1 <= len(keys) <= VALIDATORS_MAX:
            raise DecodeError(f"a validator set has 1..{VALIDATORS_MAX} members")
        if keys != sorted(set(keys)):
            raise DecodeError("validators must be sorted by public key, without duplicates")

    @classmethod
    def of(cls, validators: list[Validator]) -> ValidatorSet:
        """Return the set of `validators` in canonical order."""
        return cls(tuple(sorted(validators, key=lambda validator: validator.public_key)))

    def to_cbor(self) -> list[Any]:
        return [validator.to_cbor() for validator in self.validators]

    @classmethod
    def from_cbor(cls, value: Any) -> ValidatorSet:
        items = require_array(value, "validator set")
        return cls(tuple(Validator.from_cbor(item) for item in items))

    def hash(self) -> bytes:
        return sha256(encode(self.to_cbor()))

    @property
    def total_power(self) -> int:
        return sum(validator.power for validator in self.validators)

    def get_power(self, public_key: bytes) -> int:
        """Return the voting power of `public_key`, 0 if it is not a member."""
        for validator in self.validators:
            if validator.public_key == public_key:
                return validator.power
        return 0

    def is_quorum(self, power: int) -> bool:
        """Return True if `power` is more than two thirds of the total."""
        return 3 * power > 2 * self.total_power


# --------------------------------------------------------------------------- votes, commits


@dataclass(frozen=True, slots=True)
class CommitSig:
    """One validator's precommit signature inside a commit."""

    validator: bytes
    signature: bytes

    def to_cbor(self) -> list[Any]:
        return [self.validator, self.signature]

    @classmethod
    def from_cbor(cls, value: Any) -> CommitSig:
        fields = require_array(value, "commit signature", 2)
        return cls(require_bytes(fields[0], "commit validator", PUBLIC_KEY_BYTES),
                   require_bytes(fields[1], "commit signature", SIGNATURE_BYTES))


def compute_vote_sign_bytes(chain_id: str, vote_type: int, height: int, round_: int,
                            block_id: bytes) -> bytes:
    """Return the bytes a validator signs to vote for `block_id` (empty for nil)."""
    return encode([VOTE_CONTEXT, chain_id, [FORMAT_VERSION, vote_type, height, round_, block_id]])


@dataclass(frozen=True, slots=True)
class Commit:
    """Precommits for `block_id` at (height, round) from more than 2/3 of voting power."""

    height: int
    round: int
    block_id: bytes
    signatures: tuple[CommitSig, ...]
    version: int = FORMAT_VERSION

    def to_cbor(self) -> list[Any]:
        return [self.version, self.height, self.round, self.block_id,
                [sig.to_cbor() for sig in self.signatures]]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    def hash(self) -> bytes:
        return sha256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        return cls.from_cbor(decode(data, BLOCK_BYTES_MAX))

    @classmethod
    def from_cbor(cls, value: Any) -> Commit:
        fields = require_array(value, "commit", 5)
        require_version(fields[0], "commit")
        sigs = require_array(fields[4], "commit signatures")
        require(len(sigs) <= VALIDATORS_MAX, "commit has too many signatures")
        return cls(require_height(fields[1], "commit height"),
                   require_round(fields[2], "commit round"),
                   require_bytes(fields[3], "commit block_id", HASH_BYTES),
                   tuple(CommitSig.from_cbor(sig) for sig in sigs))


# --------------------------------------------------------------------------- blocks


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """A block header; its SHA-256 over the deterministic encoding is the block id.

    The roots describe the chain *after* this block's transactions were executed.
    """

    chain_id: str
    height: int
    time_ms: int
    prev_block_id: bytes
    tx_root: bytes
    log_root: bytes
    log_size: int
    state_root: bytes
    results_root: bytes
    evidence_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    proposer: bytes
    last_commit_hash: bytes
    version: int = FORMAT_VERSION

    def to_cbor(self) -> list[Any]:
        return [self.version, self.chain_id, self.height, self.time_ms, self.prev_block_id,
                self.tx_root, self.log_root, self.log_size, self.state_root,
                self.results_root, self.evidence_root, self.validators_hash,
                self.next_validators_hash, self.proposer, self.last_commit_hash]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    def block_id(self) -> bytes:
        """Return the block id: SHA-256 of the encoded header."""
        return sha256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        return cls.from_cbor(decode(data, TX_BYTES_MAX))

    @classmethod
    def from_cbor(cls, value: Any) -> BlockHeader:
        fields = require_array(value, "block header", 15)
        require_version(fields[0], "block header")
        first = fields[2] == 1
        if first:  # block 1 has no predecessor: both links are the empty byte string
            require(fields[4] == EMPTY_HASH and fields[14] == EMPTY_HASH,
                    "prev_block_id and last_commit_hash must be empty at height 1")
        return cls(
            chain_id=require_str(fields[1], "chain_id", CHAIN_ID_PATTERN),
            height=require_height(fields[2], "height"),
            time_ms=require_int(fields[3], "time_ms", 0),
            prev_block_id=require_bytes(fields[4], "prev_block_id", HASH_BYTES, allow_empty=first),
            tx_root=require_bytes(fields[5], "tx_root", HASH_BYTES),
            log_root=require_bytes(fields[6], "log_root", HASH_BYTES),
            log_size=require_int(fields[7], "log_size", 0),
            state_root=require_bytes(fields[8], "state_root", HASH_BYTES),
            results_root=require_bytes(fields[9], "results_root", HASH_BYTES),
            evidence_root=require_bytes(fields[10], "evidence_root", HASH_BYTES),
            validators_hash=require_bytes(fields[11], "validators_hash", HASH_BYTES),
            next_validators_hash=require_bytes(fields[12], "next_validators_hash", HASH_BYTES),
            proposer=require_bytes(fields[13], "proposer", PUBLIC_KEY_BYTES),
            last_commit_hash=require_bytes(fields[14], "last_commit_hash", HASH_BYTES,
                                           allow_empty=first),
            version=fields[0],
        )


@dataclass(frozen=True, slots=True)
class Block:
    """A header, the transactions it orders, the commit of the previous block, and evidence."""

    header: BlockHeader
    txs: tuple[bytes, ...]
    last_commit: Commit | None
    evidence: tuple[bytes, ...] = ()
    version: int = FORMAT_VERSION
    _encoded: bytes = field(default=b"", init=False, compare=False, repr=False)

    def to_cbor(self) -> list[Any]:
        last_commit = None if self.last_commit is None else self.last_commit.to_cbor()
        return [self.version, self.header.to_cbor(), list(self.txs), last_commit,
                list(self.evidence)]

    def encode(self) -> bytes:
        if self._encoded:
            return self._encoded
        return encode(self.to_cbor())

    def block_id(self) -> bytes:
        return self.header.block_id()

    @property
    def height(self) -> int:
        return self.header.height

    @classmethod
    def decode(cls, data: bytes) -> Block:
        value = decode(data, BLOCK_BYTES_MAX)
        block = cls.from_cbor(value)
        object.__setattr__(block, "_encoded", bytes(data))
        return block

    @classmethod
    def from_cbor(cls, value: Any) -> Block:
        fields = require_array(value, "block", 5)
        require_version(fields[0], "block")
        header = BlockHeader.from_cbor(fields[1])
        txs = require_array(fields[2], "block txs")
        require(len(txs) <= BLOCK_TXS_MAX, f"block has more than {BLOCK_TXS_MAX} txs")
        for tx in txs:
            require(isinstance(tx, bytes) and 0 < len(tx) <= TX_BYTES_MAX,
                    "block tx must be a non-empty byte string within the tx size limit")
        last_commit = None if fields[3] is None else Commit.from_cbor(fields[3])
        require((last_commit is None) == (header.height == 1),
                "every block but the first carries the previous block's commit")
        evidence = require_array(fields[4], "block evidence")
        for item in evidence:
            require(isinstance(item, bytes), "evidence items must be byte strings")
        return cls(header, tuple(txs), last_commit, tuple(evidence))


def find_body_defect(block: Block) -> str | None:
    """Return how the block's txs, evidence or last commit differ from what its header names."""
    header = block.header
    if header.tx_root != compute_root([compute_leaf_hash(tx) for tx in block.txs]):
        return "its transactions are not the ones its header's tx_root names"
    if header.evidence_root != compute_root([compute_leaf_hash(item) for item in block.evidence]):
        return "its evidence is not the one its header's evidence_root names"
    last_commit_hash = b"" if block.last_commit is None else block.last_commit.hash()
    if header.last_commit_hash != last_commit_hash:
        return "its previous block's commit is not the one its header names"
    return None
