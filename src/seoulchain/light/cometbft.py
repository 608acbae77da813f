"""CometBFT light-client verification: signed headers of a chain run under CometBFT.

Theory of operation (docs/spec/proofs.md §13). Under the CometBFT engine the app hash in
CometBFT's header h + 1 is the seoulchain block id of height h, so a seoulchain header is
proven by CometBFT's *signed header* h + 1 (header and commit) with the validator set that
signed it. This module checks signed headers by CometBFT's light-client rules
(light/verifier.go of CometBFT v0.38), from the genesis validators as the root of trust:

- the header hash is the RFC 6962 Merkle root of the header's fields, each encoded as
  protobuf (types/block.go `Header.Hash`); the commit must be for that hash;
- a validator set hashes to the Merkle root of its members' `SimpleValidator` encodings, in
  CometBFT's order (power descending, then address);
- a commit signature signs the length-delimited protobuf `CanonicalVote` (precommit type,
  height, round, block id, the signature's timestamp, the chain id: types/vote.go
  `VoteSignBytes`), and only signatures for the block (flag COMMIT) count;
- adjacent headers (h = trusted + 1): `validators_hash` is the trusted
  `next_validators_hash` and > 2/3 of the header's own set signed; skipping: > trust level
  (1/3) of the trusted set's power signed too. Both check chain id, height and time order.

The protobuf encoding is written here, not taken from generated bindings, so a verifier
needs nothing beyond this package: a few field kinds (varint, sfixed64, length-delimited)
with proto3's rule that a scalar field at its default value is left out. There is no
trusting period, as for seoulchain's own light client (light/lightclient.py).

Pure and deterministic: no I/O, no clock; signed headers come from the caller.
"""

from __future__ import annotations

import base64
import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from seoulchain.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, is_valid_signature, sha256
from seoulchain.errors import DecodeError, LocalError, VerificationError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import CHAIN_ID_CHARS_MAX
from seoulchain.light.jsonfields import decode_hex, require_list, require_object
from seoulchain.light.lightclient import (
    BISECTION_STEPS_MAX,
    DEFAULT_TRUST_LEVEL,
    InsufficientTrust,
    is_trusted_enough,
)
from seoulchain.proofs.logtree import compute_leaf_hash, compute_root

# A CometBFT validator address is the first 20 bytes of SHA-256 of its Ed25519 key
# (crypto/ed25519 `PubKey.Address`).
ADDRESS_BYTES = 20
# Block, part-set and app hashes are SHA-256 digests; empty where CometBFT leaves them unset.
COMET_HASH_BYTES = 32
# types/block.go BlockIDFlag: absent, commit (signed the block), nil (signed no block).
FLAG_ABSENT = 1
FLAG_COMMIT = 2
FLAG_NIL = 3
# types.proto SignedMsgType PRECOMMIT.
PRECOMMIT_TYPE = 2
# CometBFT's own limit on a validator set (types/validator_set.go MaxVotesCount).
COMET_VALIDATORS_MAX = 10_000
# Nanoseconds in a second: CometBFT times are protobuf Timestamps (seconds, nanos).
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
# int64, the protobuf type of heights, rounds, powers and timestamp seconds.
INT64_MAX = 2**63 - 1
# protobuf wire types.
WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_BYTES = 2
RFC3339_NS = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")


# --------------------------------------------------------------------------- protobuf


def encode_varint(value: int) -> bytes:
    """Return `value` (0 <= value < 2^64) as a protobuf unsigned varint."""
    if not 0 <= value < 2**64:
        raise LocalError(f"{value} does not fit a protobuf varint")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def encode_tag(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def encode_varint_field(number: int, value: int) -> bytes:
    """A uint/int64/int32/enum field; proto3 leaves out the default 0."""
    return encode_tag(number, WIRE_VARINT) + encode_varint(value) if value else b""


def encode_sfixed64_field(number: int, value: int) -> bytes:
    """An sfixed64 field (little-endian two's complement); 0 is left out."""
    if not value:
        return b""
    return encode_tag(number, WIRE_FIXED64) + (value % 2**64).to_bytes(8, "little")


def encode_bytes_field(number: int, value: bytes) -> bytes:
    """A bytes or string field; empty is left out."""
    return encode_message_field(number, value) if value else b""


def encode_message_field(number: int, body: bytes) -> bytes:
    """An embedded message that is always present (gogoproto non-nullable), even if empty."""
    return encode_tag(number, WIRE_BYTES) + encode_varint(len(body)) + body


def encode_timestamp(time_ns: int) -> bytes:
    """google.protobuf.Timestamp {seconds = 1, nanos = 2} of a time after 1970."""
    seconds, nanos = divmod(time_ns, NS_PER_S)
    return encode_varint_field(1, seconds) + encode_varint_field(2, nanos)


# --------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class CometBlockId:
    """A CometBFT block id: the header hash and the block's part-set header."""

    hash: bytes
    parts_total: int
    parts_hash: bytes

    def encode(self) -> bytes:
        """tendermint.types.BlockID {hash = 1, part_set_header = 2 {total = 1, hash = 2}}."""
        parts = encode_varint_field(1, self.parts_total) + encode_bytes_field(2, self.parts_hash)
        return encode_bytes_field(1, self.hash) + encode_message_field(2, parts)


@dataclass(frozen=True, slots=True)
class CometHeader:
    """A CometBFT block header (types/block.go `Header`)."""

    version_block: int
    version_app: int
    chain_id: str
    height: int
    time_ns: int
    last_block_id: CometBlockId
    last_commit_hash: bytes
    data_hash: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    consensus_hash: bytes
    app_hash: bytes
    last_results_hash: bytes
    evidence_hash: bytes
    proposer_address: bytes

    def compute_field_encodings(self) -> list[bytes]:
        """Return the 14 leaves of the header hash, in `Header.Hash` order."""
        version = encode_varint_field(1, self.version_block) + \
            encode_varint_field(2, self.version_app)
        wrapped = [self.last_commit_hash, self.data_hash, self.validators_hash,
                   self.next_validators_hash, self.consensus_hash, self.app_hash,
                   self.last_results_hash, self.evidence_hash, self.proposer_address]
        # cdcEncode wraps each value in a gogotypes wrapper message {value = 1}.
        return [version, encode_bytes_field(1, self.chain_id.encode()),
                encode_varint_field(1, self.height), encode_timestamp(self.time_ns),
                self.last_block_id.encode(),
                *(encode_bytes_field(1, value) for value in wrapped)]

    def hash(self) -> bytes:
        """Return the header hash: the Merkle root of its field encodings."""
        return compute_merkle_root(self.compute_field_encodings())


@dataclass(frozen=True, slots=True)
class CommitSig:
    """One validator's entry in a commit: its flag, address, vote time and signature."""

    flag: int
    validator_address: bytes
    time_ns: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class CometCommit:
    """The precommits that decided a block: one entry per validator of its set, in order."""

    height: int
    round: int
    block_id: CometBlockId
    signatures: tuple[CommitSig, ...]

    def compute_vote_sign_bytes(self, chain_id: str, index: int) -> bytes:
        """Return what validator `index` signed: a length-delimited CanonicalVote."""
        sig = self.signatures[index]
        # CanonicalBlockID has BlockID's fields and numbers; a nil vote has none.
        block_id = encode_message_field(4, self.block_id.encode()) \
            if sig.flag == FLAG_COMMIT else b""
        vote = (encode_varint_field(1, PRECOMMIT_TYPE) + encode_sfixed64_field(2, self.height)
                + encode_sfixed64_field(3, self.round) + block_id
                + encode_message_field(5, encode_timestamp(sig.time_ns))
                + encode_bytes_field(6, chain_id.encode()))
        return encode_varint(len(vote)) + vote


@dataclass(frozen=True, slots=True)
class CometValidator:
    """A CometBFT validator: its Ed25519 key and voting power."""

    public_key: bytes
    power: int

    @property
    def address(self) -> bytes:
        return compute_address(self.public_key)

    def encode(self) -> bytes:
        """tendermint.types.SimpleValidator {pub_key = 1 {ed25519 = 1}, voting_power = 2}."""
        return encode_message_field(1, encode_bytes_field(1, self.public_key)) + \
            encode_varint_field(2, self.power)


@dataclass(frozen=True, slots=True)
class CometValidatorSet:
    """A validator set in CometBFT's order: power descending, then address ascending."""

    validators: tuple[CometValidator, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.validators) <= COMET_VALIDATORS_MAX:
            raise DecodeError(f"a validator set has 1..{COMET_VALIDATORS_MAX} members")
        order = [(-v.power, v.address) for v in self.validators]
        if order != sorted(set(order)) or len({v.address for v in self.validators}) != \
                len(order):
            raise DecodeError("validators must be in CometBFT's order (power descending, "
                              "then address) without duplicates")

    @classmethod
    def of(cls, validators: list[CometValidator]) -> CometValidatorSet:
        return cls(tuple(sorted(validators, key=lambda v: (-v.power, v.address))))

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> CometValidatorSet:
        """Return the genesis validators as CometBFT's genesis set."""
        return cls.of([CometValidator(v.public_key, v.power)
                       for v in genesis.validators.validators])

    def hash(self) -> bytes:
        return compute_merkle_root([validator.encode() for validator in self.validators])

    @property
    def total_power(self) -> int:
        return sum(validator.power for validator in self.validators)


@dataclass(frozen=True, slots=True)
class CometLightBlock:
    """One height as CometBFT's RPC serves it: header, commit, and the set that signed."""

    header: CometHeader
    commit: CometCommit
    validators: CometValidatorSet

    @property
    def height(self) -> int:
        return self.header.height


@dataclass(frozen=True, slots=True)
class CometTrustedState:
    """What the verifier trusts: a height, its time and set, and the next set's hash."""

    chain_id: str
    height: int
    time_ns: int
    validators: CometValidatorSet
    next_validators_hash: bytes

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> CometTrustedState:
        """Trust height 0: the genesis set signs height 1; time is the genesis time."""
        validators = CometValidatorSet.from_genesis(genesis)
        return cls(genesis.chain_id, 0, genesis.genesis_time_ms * NS_PER_MS, validators,
                   validators.hash())


def compute_address(public_key: bytes) -> bytes:
    """Return CometBFT's address of an Ed25519 validator key."""
    return sha256(public_key)[:ADDRESS_BYTES]


def compute_merkle_root(items: list[bytes]) -> bytes:
    """Return CometBFT's `merkle.HashFromByteSlices`: the RFC 6962 tree hash of `items`."""
    return compute_root([compute_leaf_hash(item) for item in items])


# --------------------------------------------------------------------------- verification


def verify_commit(chain_id: str, validators: CometValidatorSet, commit: CometCommit,
                  block_hash: bytes) -> None:
    """More than 2/3 of `validators`' power signed `commit` for `block_hash`, by index."""
    if commit.block_id.hash != block_hash:
        raise VerificationError(f"the commit of height {commit.height} is for block "
                                f"{commit.block_id.hash.hex()}, not {block_hash.hex()}")
    if len(commit.signatures) != len(validators.validators):
        raise VerificationError(f"the commit has {len(commit.signatures)} entries for "
                                f"{len(validators.validators)} validators")
    signed = 0
    for index, validator in enumerate(validators.validators):
        sig = commit.signatures[index]
        if sig.flag != FLAG_COMMIT:
            continue
        if sig.validator_address != validator.address:
            raise VerificationError(f"commit entry {index} is by {sig.validator_address.hex()}"
                                    f", not validator {validator.address.hex()}")
        check_signature(chain_id, commit, index, validator.public_key)
        signed += validator.power
    if 3 * signed <= 2 * validators.total_power:
        raise VerificationError(f"the commit of height {commit.height} carries {signed} of "
                                f"{validators.total_power} power, not more than 2/3")


def compute_trusted_power(chain_id: str, trusted: CometValidatorSet,
                          commit: CometCommit) -> int:
    """Return the power of `trusted` members with a valid COMMIT signature in `commit`."""
    by_address = {validator.address: validator for validator in trusted.validators}
    seen: set[bytes] = set()
    signed = 0
    for index, sig in enumerate(commit.signatures):
        validator = by_address.get(sig.validator_address)
        if sig.flag != FLAG_COMMIT or validator is None:
            continue
        if sig.validator_address in seen:
            raise VerificationError(f"validator {sig.validator_address.hex()} signs the "
                                    "commit twice")
        seen.add(sig.validator_address)
        check_signature(chain_id, commit, index, validator.public_key)
        signed += validator.power
    return signed


def check_signature(chain_id: str, commit: CometCommit, index: int, public_key: bytes) -> None:
    message = commit.compute_vote_sign_bytes(chain_id, index)
    if not is_valid_signature(public_key, message, commit.signatures[index].signature):
        raise VerificationError(f"the signature of commit entry {index} (validator "
                                f"{compute_address(public_key).hex()}) does not verify")


def check_signed_header(trusted: CometTrustedState, block: CometLightBlock) -> None:
    """Chain id, a later height and time, the set's hash, and > 2/3 of the set signed."""
    header = block.header
    if header.chain_id != trusted.chain_id:
        raise VerificationError(f"header {header.height} is of chain {header.chain_id!r}, "
                                f"not {trusted.chain_id!r}")
    if header.height <= trusted.height or block.commit.height != header.height:
        raise VerificationError(f"header {header.height} (commit {block.commit.height}) does "
                                f"not follow the trusted height {trusted.height}")
    # The first block carries the genesis time; every later one a strictly later time.
    if header.time_ns < trusted.time_ns or (trusted.height and header.time_ns ==
                                            trusted.time_ns):
        raise VerificationError(f"header {header.height}'s time is not after the trusted "
                                f"header's")
    if block.validators.hash() != header.validators_hash:
        raise VerificationError(f"the validator set does not hash to header "
                                f"{header.height}'s validators_hash")
    verify_commit(header.chain_id, block.validators, block.commit, header.hash())


def verify_signed_header(trusted: CometTrustedState, block: CometLightBlock,
                         trust_level: Fraction = DEFAULT_TRUST_LEVEL) -> CometTrustedState:
    """Verify `block` from `trusted` (adjacent or skipping) and return the new trust."""
    check_signed_header(trusted, block)
    header = block.header
    if header.height == trusted.height + 1:
        if header.validators_hash != trusted.next_validators_hash:
            raise VerificationError(f"header {header.height}'s validators_hash is not the "
                                    f"trusted next_validators_hash")
    else:
        signed = compute_trusted_power(trusted.chain_id, trusted.validators, block.commit)
        total = trusted.validators.total_power
        if not is_trusted_enough(signed, total, trust_level):
            raise InsufficientTrust(
                f"header {header.height}: the trusted set of height {trusted.height} holds "
                f"{signed} of {total} power among its signers, not more than {trust_level}")
    return CometTrustedState(trusted.chain_id, header.height, header.time_ns,
                             block.validators, header.next_validators_hash)


def trust_checkpoint(chain_id: str, block: CometLightBlock) -> CometTrustedState:
    """Trust a signed header the verifier named by height and hash (a checkpoint), as
    CometBFT's light client initialises from trust options: its set hashes to the header's
    `validators_hash` and more than 2/3 of that set signed its commit."""
    header = block.header
    if header.chain_id != chain_id:
        raise VerificationError(f"header {header.height} is of chain {header.chain_id!r}, "
                                f"not {chain_id!r}")
    if block.commit.height != header.height:
        raise VerificationError(f"the commit is of height {block.commit.height}, not "
                                f"{header.height}")
    if block.validators.hash() != header.validators_hash:
        raise VerificationError(f"the validator set does not hash to header "
                                f"{header.height}'s validators_hash")
    verify_commit(chain_id, block.validators, block.commit, header.hash())
    return CometTrustedState(chain_id, header.height, header.time_ns, block.validators,
                             header.next_validators_hash)


def trace_to(trusted: CometTrustedState, height: int,
             fetch: Callable[[int], CometLightBlock]) -> list[CometLightBlock]:
    """Return the signed headers that lead from `trusted` to `height`, bisecting as needed."""
    if height <= trusted.height:
        raise LocalError(f"height {height} is not after the trusted height {trusted.height}")
    trace: list[CometLightBlock] = []
    pending = [fetch(height)]
    # Each header is verified once and each bisection adds one: twice the bisection bound.
    for _ in range(BISECTION_STEPS_MAX * 2):
        candidate = pending[-1]
        try:
            trusted = verify_signed_header(trusted, candidate)
        except InsufficientTrust:
            pending.append(fetch((trusted.height + candidate.height) // 2))
            continue
        trace.append(pending.pop())
        if not pending:
            return trace
    raise VerificationError(f"no path of trust to height {height} within "
                            f"{BISECTION_STEPS_MAX} bisection steps")


# --------------------------------------------------------------------------- JSON forms


def parse_rfc3339_ns(text: Any, name: str) -> int:
    """Return an RFC 3339 UTC time as CometBFT's RPC writes it, in ns since the epoch."""
    match = RFC3339_NS.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise DecodeError(f"{name} {text!r} is not an RFC 3339 UTC time")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(9, "0")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds * NS_PER_S + int(fraction)


def parse_rpc_hex(value: Any, name: str, sizes: tuple[int, ...]) -> bytes:
    """Decode the upper-case hex CometBFT's RPC gives for hashes and addresses."""
    try:
        data = bytes.fromhex(value)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{name} is not hex") from exc
    if len(data) not in sizes:
        raise DecodeError(f"{name} must be {' or '.join(map(str, sizes))} bytes")
    return data


def parse_rpc_block_id(value: dict[str, Any], name: str) -> CometBlockId:
    return CometBlockId(parse_rpc_hex(value["hash"], f"{name} hash", (0, COMET_HASH_BYTES)),
                        int(value["parts"]["total"]),
                        parse_rpc_hex(value["parts"]["hash"], f"{name} parts hash",
                                      (0, COMET_HASH_BYTES)))


def light_block_from_rpc(signed_header: dict[str, Any],
                         validators: list[dict[str, Any]]) -> CometLightBlock:
    """Return a light block from CometBFT RPC's `/commit` and `/validators` answers."""
    try:
        raw, raw_commit = signed_header["header"], signed_header["commit"]
        hashes = {name: parse_rpc_hex(raw[name], name, (0, COMET_HASH_BYTES)) for name in (
            "last_commit_hash", "data_hash", "validators_hash", "next_validators_hash",
            "consensus_hash", "app_hash", "last_results_hash", "evidence_hash")}
        header = CometHeader(
            int(raw["version"]["block"]), int(raw["version"].get("app", 0)), raw["chain_id"],
            int(raw["height"]), parse_rfc3339_ns(raw["time"], "header time"),
            parse_rpc_block_id(raw["last_block_id"], "last_block_id"),
            proposer_address=parse_rpc_hex(raw["proposer_address"], "proposer_address",
                                           (ADDRESS_BYTES,)), **hashes)
        signatures = tuple(
            CommitSig(int(sig["block_id_flag"]),
                      parse_rpc_hex(sig["validator_address"], "validator_address",
                                    (0, ADDRESS_BYTES)),
                      0 if int(sig["block_id_flag"]) == FLAG_ABSENT
                      else parse_rfc3339_ns(sig["timestamp"], "signature time"),
                      base64.b64decode(sig["signature"] or ""))
            for sig in raw_commit["signatures"])
        commit = CometCommit(int(raw_commit["height"]), int(raw_commit["round"]),
                             parse_rpc_block_id(raw_commit["block_id"], "commit block_id"),
                             signatures)
        members = CometValidatorSet(tuple(
            CometValidator(base64.b64decode(item["pub_key"]["value"]),
                           int(item["voting_power"])) for item in validators))
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"CometBFT's signed header is malformed: {exc!r}") from exc
    return CometLightBlock(header, commit, members)


def block_id_to_json(block_id: CometBlockId) -> dict[str, Any]:
    return {"hash": block_id.hash.hex(), "parts_total": block_id.parts_total,
            "parts_hash": block_id.parts_hash.hex()}


def light_block_to_json(block: CometLightBlock) -> dict[str, Any]:
    """Return a light block in the bundle's form: lower-case hex, integers, ns times."""
    header, commit = block.header, block.commit
    return {
        "header": {
            "version_block": header.version_block, "version_app": header.version_app,
            "chain_id": header.chain_id, "height": header.height, "time_ns": header.time_ns,
            "last_block_id": block_id_to_json(header.last_block_id),
            **{name: getattr(header, name).hex() for name in HEADER_HASH_FIELDS}},
        "commit": {
            "height": commit.height, "round": commit.round,
            "block_id": block_id_to_json(commit.block_id),
            "signatures": [{"flag": sig.flag, "validator_address": sig.validator_address.hex(),
                            "time_ns": sig.time_ns, "signature": sig.signature.hex()}
                           for sig in commit.signatures]},
        "validators": [{"public_key": v.public_key.hex(), "power": v.power}
                       for v in block.validators.validators],
    }


HEADER_HASH_FIELDS = ("last_commit_hash", "data_hash", "validators_hash",
                      "next_validators_hash", "consensus_hash", "app_hash",
                      "last_results_hash", "evidence_hash", "proposer_address")
HEADER_FIELDS = {"version_block", "version_app", "chain_id", "height", "time_ns",
                 "last_block_id", *HEADER_HASH_FIELDS}


def light_block_from_json(value: Any, name: str) -> CometLightBlock:
    """Parse a bundle's light block strictly (exact fields, canonical hex, int ranges)."""
    fields = require_object(value, name, {"header", "commit", "validators"})
    raw = require_object(fields["header"], f"{name} header", HEADER_FIELDS)
    chain_id = raw["chain_id"]
    if not isinstance(chain_id, str) or not 0 < len(chain_id) <= CHAIN_ID_CHARS_MAX:
        raise DecodeError(f"{name} chain_id must be a text of 1..{CHAIN_ID_CHARS_MAX} chars")
    header = CometHeader(
        require_int64(raw["version_block"], "version_block"),
        require_int64(raw["version_app"], "version_app"), chain_id,
        require_int64(raw["height"], "height", 1), require_int64(raw["time_ns"], "time_ns"),
        block_id_from_json(raw["last_block_id"], f"{name} last_block_id"),
        proposer_address=decode_hash(raw["proposer_address"], "proposer_address",
                                     (ADDRESS_BYTES,)),
        **{field: decode_hash(raw[field], field) for field in HEADER_HASH_FIELDS
           if field != "proposer_address"})
    commit = commit_from_json(fields["commit"], f"{name} commit")
    members = require_list(fields["validators"], f"{name} validators", COMET_VALIDATORS_MAX)
    validators = CometValidatorSet(tuple(validator_from_json(item, f"{name} validator")
                                         for item in members))
    return CometLightBlock(header, commit, validators)


def commit_from_json(value: Any, name: str) -> CometCommit:
    fields = require_object(value, name, {"height", "round", "block_id", "signatures"})
    signatures = []
    for item in require_list(fields["signatures"], f"{name} signatures",
                             COMET_VALIDATORS_MAX):
        sig = require_object(item, f"{name} signature",
                             {"flag", "validator_address", "time_ns", "signature"})
        flag = require_int64(sig["flag"], "signature flag", FLAG_ABSENT)
        if flag not in (FLAG_ABSENT, FLAG_COMMIT, FLAG_NIL):
            raise DecodeError(f"signature flag {flag} is not 1 (absent), 2 or 3")
        sizes = (0,) if flag == FLAG_ABSENT else (ADDRESS_BYTES,)
        signature_sizes = (0,) if flag == FLAG_ABSENT else (SIGNATURE_BYTES,)
        signatures.append(CommitSig(
            flag, decode_hash(sig["validator_address"], "validator_address", sizes),
            require_int64(sig["time_ns"], "signature time_ns"),
            decode_hash(sig["signature"], "signature", signature_sizes)))
    return CometCommit(require_int64(fields["height"], "commit height", 1),
                       require_int64(fields["round"], "commit round"),
                       block_id_from_json(fields["block_id"], f"{name} block_id"),
                       tuple(signatures))


def validator_from_json(value: Any, name: str) -> CometValidator:
    fields = require_object(value, name, {"public_key", "power"})
    return CometValidator(decode_hash(fields["public_key"], "public_key",
                                      (PUBLIC_KEY_BYTES,)),
                          require_int64(fields["power"], "power", 1))


def block_id_from_json(value: Any, name: str) -> CometBlockId:
    fields = require_object(value, name, {"hash", "parts_total", "parts_hash"})
    return CometBlockId(decode_hash(fields["hash"], f"{name} hash"),
                        require_int64(fields["parts_total"], f"{name} parts_total"),
                        decode_hash(fields["parts_hash"], f"{name} parts_hash"))


def decode_hash(value: Any, name: str, sizes: tuple[int, ...] = (0, COMET_HASH_BYTES)) -> bytes:
    """Decode canonical lower-case hex of one of the allowed sizes."""
    data = decode_hex(value, name)
    if len(data) not in sizes:
        raise DecodeError(f"{name} must be {' or '.join(map(str, sizes))} bytes")
    return data


def require_int64(value: Any, name: str, minimum: int = 0) -> int:
    if type(value) is not int or not minimum <= value <= INT64_MAX:
        raise DecodeError(f"{name} must be an integer from {minimum} to 2^63 - 1")
    return value
