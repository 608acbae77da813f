"""CometBFT light verification: a real v0.38.26 bundle, the hand-written protobuf against
the generated bindings, and every refusal (signature, power, set hash, trust, app hash)."""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from seoulchain.crypto import SigningKey
from seoulchain.errors import DecodeError, VerificationError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Validator, ValidatorSet
from seoulchain.light.bundle import BundleError, verify_bundle
from seoulchain.light.cometbft import (
    FLAG_ABSENT,
    FLAG_COMMIT,
    FLAG_NIL,
    CometBlockId,
    CometCommit,
    CometHeader,
    CometLightBlock,
    CometTrustedState,
    CometValidator,
    CometValidatorSet,
    CommitSig,
    InsufficientTrust,
    encode_timestamp,
    light_block_from_json,
    light_block_from_rpc,
    parse_rfc3339_ns,
    trace_to,
    verify_signed_header,
)
from seoulchain.node.abci import ABCI_PB_DEFAULT

DATA = Path(__file__).resolve().parent / "data"
# Written by `seoulchain prove document --home` against a 4-validator CometBFT v0.38.26
# devnet (`seoulchain devnet --engine cometbft`).
REAL_BUNDLE: dict[str, Any] = json.loads((DATA / "cometbft_document.bundle").read_text())
REAL_GENESIS = Genesis.load(DATA / "cometbft_genesis.json")
CHAIN_ID = "comet-test-1"
GENESIS_TIME_MS = 1_790_000_000_000
SECOND_NS = 1_000_000_000


def verify_real(bundle: dict[str, Any]) -> str:
    return verify_bundle(bundle, REAL_GENESIS).text


def fail_real(bundle: dict[str, Any]) -> BundleError:
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle, REAL_GENESIS)
    return caught.value


def test_real_cometbft_bundle_verifies_offline() -> None:
    text = verify_real(REAL_BUNDLE)
    doc_hash = hashlib.sha256((DATA / "cometbft_document.txt").read_bytes()).hexdigest()
    assert text.startswith(f"document sha256:{doc_hash}")
    assert "was anchored by city-hall" in text and "at height 150" in text


@pytest.mark.parametrize("path, step", [
    (("commit", "signatures", 0, "signature"), "cometbft light block 1 (height 153)"),
    (("header", "app_hash"), "cometbft light block 1 (height 153)"),
    (("header", "time_ns"), "cometbft light block 1 (height 153)"),
    (("validators", 0, "public_key"), "cometbft light block 1 (height 153)"),
])
def test_real_bundle_with_any_field_changed_fails(path: tuple[Any, ...], step: str) -> None:
    bundle = copy.deepcopy(REAL_BUNDLE)
    target = bundle["cometbft"]["light_blocks"][0]
    for part in path[:-1]:
        target = target[part]
    value = target[path[-1]]
    target[path[-1]] = value + 1 if isinstance(value, int) else \
        ("0" if value[0] != "0" else "1") + value[1:]
    assert fail_real(bundle).step == step


def test_real_bundle_refuses_a_commit_short_of_two_thirds() -> None:
    bundle = copy.deepcopy(REAL_BUNDLE)
    signatures = bundle["cometbft"]["light_blocks"][0]["commit"]["signatures"]
    for sig in signatures[:2]:
        sig.update(flag=FLAG_ABSENT, validator_address="", time_ns=0, signature="")
    assert "not more than 2/3" in str(fail_real(bundle))


def test_real_bundle_refuses_another_seoulchain_header() -> None:
    bundle = copy.deepcopy(REAL_BUNDLE)
    header = bundle["cometbft"]["header"]
    bundle["cometbft"]["header"] = header[:-4] + ("AAAA" if header[-4:] != "AAAA" else "AAAB")
    assert fail_real(bundle).step in ("cometbft header", "proof against header 152")


def test_real_bundle_refuses_another_genesis() -> None:
    other = Genesis("another-chain", REAL_GENESIS.genesis_time_ms, REAL_GENESIS.validators)
    with pytest.raises(BundleError) as caught:
        verify_bundle(REAL_BUNDLE, other)
    assert caught.value.step == "genesis"


def test_real_bundle_refuses_unknown_fields() -> None:
    bundle = copy.deepcopy(REAL_BUNDLE)
    bundle["cometbft"]["light_blocks"][0]["header"]["extra"] = 1
    assert "unknown ['extra']" in str(fail_real(bundle))


def test_sequential_verification_refuses_a_skip() -> None:
    with pytest.raises(BundleError) as caught:
        verify_bundle(REAL_BUNDLE, REAL_GENESIS, trust_level=None)
    assert "skipping is not allowed" in str(caught.value)


# --------------------------------------------------------------------------- synthetic chains


def make_keys(count: int, base: int) -> list[SigningKey]:
    return [SigningKey(bytes([base + index]) * 32) for index in range(count)]


def make_set(keys: list[SigningKey], power: int = 10) -> CometValidatorSet:
    return CometValidatorSet.of([CometValidator(key.public_key, power) for key in keys])


def sign_block(header: CometHeader, validators: CometValidatorSet,
               keys: list[SigningKey], signers: int | None = None) -> CometLightBlock:
    """Return `header` with a commit signed by the first `signers` members of the set."""
    by_key = {key.public_key: key for key in keys}
    block_id = CometBlockId(header.hash(), 1, b"\x07" * 32)
    time_ns = header.time_ns + SECOND_NS
    count = len(validators.validators) if signers is None else signers
    sigs = [CommitSig(FLAG_COMMIT, v.address, time_ns, b"") if index < count
            else CommitSig(FLAG_ABSENT, b"", 0, b"")
            for index, v in enumerate(validators.validators)]
    commit = CometCommit(header.height, 0, block_id, tuple(sigs))
    signed = [replace(sig, signature=by_key[v.public_key].sign(
        commit.compute_vote_sign_bytes(header.chain_id, index))) if sig.flag == FLAG_COMMIT
        else sig for index, (sig, v) in enumerate(zip(sigs, validators.validators, strict=True))]
    return CometLightBlock(header, replace(commit, signatures=tuple(signed)), validators)


def make_header(height: int, validators: CometValidatorSet,
                next_validators: CometValidatorSet) -> CometHeader:
    empty = b"\xe3" * 32
    return CometHeader(11, 1, CHAIN_ID, height, GENESIS_TIME_MS * 1_000_000 + height * SECOND_NS,
                       CometBlockId(b"\x01" * 32, 1, b"\x02" * 32), empty, empty,
                       validators.hash(), next_validators.hash(), empty, b"\x05" * 32, empty,
                       empty, validators.validators[0].address)


class SyntheticChain:
    """Heights 1..`top` whose set changes from `first` to `second` after `switch`."""

    def __init__(self, first: list[SigningKey], second: list[SigningKey], switch: int,
                 top: int):
        self.keys = first + second
        self.sets = {height: make_set(first if height <= switch else second)
                     for height in range(1, top + 2)}
        self.genesis = Genesis(CHAIN_ID, GENESIS_TIME_MS, ValidatorSet.of(
            [Validator(key.public_key, 10) for key in first]))
        self.fetched: list[int] = []

    def fetch(self, height: int) -> CometLightBlock:
        self.fetched.append(height)
        header = make_header(height, self.sets[height], self.sets[height + 1])
        return sign_block(header, self.sets[height], self.keys)


def test_skipping_from_genesis_with_the_same_set_takes_one_header() -> None:
    keys = make_keys(4, 1)
    chain = SyntheticChain(keys, keys, 100, 50)
    trace = trace_to(CometTrustedState.from_genesis(chain.genesis), 40, chain.fetch)
    assert [block.height for block in trace] == [40]


def test_a_replaced_set_is_crossed_by_bisection_through_the_change() -> None:
    chain = SyntheticChain(make_keys(4, 1), make_keys(4, 50), 5, 20)
    trusted = CometTrustedState.from_genesis(chain.genesis)
    trace = trace_to(trusted, 12, chain.fetch)
    heights = [block.height for block in trace]
    assert 5 in heights and 6 in heights and heights[-1] == 12
    for block in trace:
        trusted = verify_signed_header(trusted, block)
    assert trusted.validators == chain.sets[12]


def test_skipping_into_a_replaced_set_is_refused() -> None:
    chain = SyntheticChain(make_keys(4, 1), make_keys(4, 50), 5, 20)
    with pytest.raises(InsufficientTrust, match="not more than 1/3"):
        verify_signed_header(CometTrustedState.from_genesis(chain.genesis), chain.fetch(12))


def test_adjacent_header_must_carry_the_trusted_next_set() -> None:
    chain = SyntheticChain(make_keys(4, 1), make_keys(4, 50), 5, 20)
    trusted = verify_signed_header(CometTrustedState.from_genesis(chain.genesis),
                                   chain.fetch(4))
    other = SyntheticChain(make_keys(4, 1), make_keys(4, 50), 3, 20)
    with pytest.raises(VerificationError, match="next_validators_hash"):
        verify_signed_header(trusted, other.fetch(5))


def test_a_commit_of_two_of_four_is_refused() -> None:
    keys = make_keys(4, 1)
    chain = SyntheticChain(keys, keys, 100, 10)
    validators = chain.sets[1]
    block = sign_block(make_header(1, validators, validators), validators, keys, signers=2)
    with pytest.raises(VerificationError, match="20 of 40 power, not more than 2/3"):
        verify_signed_header(CometTrustedState.from_genesis(chain.genesis), block)
    three = sign_block(make_header(1, validators, validators), validators, keys, signers=3)
    assert verify_signed_header(CometTrustedState.from_genesis(chain.genesis), three).height == 1


def test_a_trust_level_above_the_signers_is_refused() -> None:
    keys = make_keys(4, 1)
    chain = SyntheticChain(keys, keys, 100, 10)
    validators = chain.sets[1]
    block = sign_block(make_header(7, validators, validators), validators, keys, signers=3)
    trusted = CometTrustedState.from_genesis(chain.genesis)
    with pytest.raises(InsufficientTrust):
        verify_signed_header(trusted, block, Fraction(3, 4))


def test_validator_set_order_is_cometbfts() -> None:
    keys = make_keys(3, 1)
    members = [CometValidator(keys[0].public_key, 5), CometValidator(keys[1].public_key, 20),
               CometValidator(keys[2].public_key, 10)]
    assert [v.power for v in CometValidatorSet.of(members).validators] == [20, 10, 5]
    with pytest.raises(DecodeError, match="CometBFT's order"):
        CometValidatorSet(tuple(members))


def test_rfc3339_times_parse_to_nanoseconds() -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:01.5Z", "t") == 1_500_000_000
    assert parse_rfc3339_ns("2026-12-03T12:57:01.364083884Z", "t") % SECOND_NS == 364083884
    assert parse_rfc3339_ns("1970-01-01T00:00:02Z", "t") == 2 * SECOND_NS
    with pytest.raises(DecodeError):
        parse_rfc3339_ns("2026-12-03 12:57:01Z", "t")


def test_light_block_json_rejects_upper_case_hex() -> None:
    raw = copy.deepcopy(REAL_BUNDLE["cometbft"]["light_blocks"][0])
    raw["header"]["app_hash"] = raw["header"]["app_hash"].upper()
    with pytest.raises(DecodeError, match="lower-case hex"):
        light_block_from_json(raw, "block")


# --------------------------------------------------------------------------- bindings cross-check


@pytest.fixture(scope="module")
def pb() -> Any:
    """The generated CometBFT protobuf bindings (scripts/install-cometbft), if present."""
    if not (ABCI_PB_DEFAULT / "tendermint" / "types" / "canonical_pb2.py").exists():
        pytest.skip("no generated CometBFT bindings; run scripts/install-cometbft")
    if str(ABCI_PB_DEFAULT) not in sys.path:
        sys.path.insert(0, str(ABCI_PB_DEFAULT))
    from google.protobuf import timestamp_pb2, wrappers_pb2
    from tendermint.types import canonical_pb2, types_pb2, validator_pb2
    from tendermint.version import types_pb2 as version_pb2

    return {"canonical": canonical_pb2, "types": types_pb2, "validator": validator_pb2,
            "version": version_pb2, "timestamp": timestamp_pb2, "wrappers": wrappers_pb2}


def make_pb_timestamp(pb: Any, time_ns: int) -> Any:
    return pb["timestamp"].Timestamp(seconds=time_ns // SECOND_NS, nanos=time_ns % SECOND_NS)


@pytest.mark.parametrize("flag, round_", [(FLAG_COMMIT, 0), (FLAG_COMMIT, 3), (FLAG_NIL, 1)])
def test_vote_sign_bytes_match_the_bindings(pb: Any, flag: int, round_: int) -> None:
    block = light_block_from_json(REAL_BUNDLE["cometbft"]["light_blocks"][0], "block")
    sig = replace(block.commit.signatures[0], flag=flag)
    commit = replace(block.commit, round=round_, signatures=(sig,))
    vote = pb["canonical"].CanonicalVote(
        type=2, height=commit.height, round=round_, chain_id=block.header.chain_id)
    vote.timestamp.CopyFrom(make_pb_timestamp(pb, sig.time_ns))
    if flag == FLAG_COMMIT:
        vote.block_id.hash = commit.block_id.hash
        vote.block_id.part_set_header.total = commit.block_id.parts_total
        vote.block_id.part_set_header.hash = commit.block_id.parts_hash
    body = vote.SerializeToString()
    assert commit.compute_vote_sign_bytes(block.header.chain_id, 0) == bytes([len(body)]) + body


def test_header_field_encodings_match_the_bindings(pb: Any) -> None:
    header = light_block_from_json(REAL_BUNDLE["cometbft"]["light_blocks"][0], "block").header
    block_id = pb["types"].BlockID(hash=header.last_block_id.hash)
    block_id.part_set_header.total = header.last_block_id.parts_total
    block_id.part_set_header.hash = header.last_block_id.parts_hash
    wrappers = pb["wrappers"]
    expected = [
        pb["version"].Consensus(block=header.version_block, app=header.version_app),
        wrappers.StringValue(value=header.chain_id), wrappers.Int64Value(value=header.height),
        make_pb_timestamp(pb, header.time_ns), block_id,
        *(wrappers.BytesValue(value=getattr(header, name)) for name in (
            "last_commit_hash", "data_hash", "validators_hash", "next_validators_hash",
            "consensus_hash", "app_hash", "last_results_hash", "evidence_hash",
            "proposer_address"))]
    assert header.compute_field_encodings() == [item.SerializeToString() for item in expected]
    assert encode_timestamp(0) == make_pb_timestamp(pb, 0).SerializeToString()


def test_simple_validator_encoding_matches_the_bindings(pb: Any) -> None:
    validator = CometValidator(b"\x09" * 32, 300)
    message = pb["validator"].SimpleValidator(voting_power=300)
    message.pub_key.ed25519 = validator.public_key
    assert validator.encode() == message.SerializeToString()


def test_rpc_answers_of_a_real_network_parse_and_verify_from_genesis() -> None:
    """CometBFT's own /commit and /validators JSON (height 3 of the bundle's network)."""
    answers = json.loads((DATA / "cometbft_rpc_height_3.json").read_text())
    block = light_block_from_rpc(answers["commit"]["result"]["signed_header"],
                                 answers["validators"]["result"]["validators"])
    trusted = verify_signed_header(CometTrustedState.from_genesis(REAL_GENESIS), block)
    assert trusted.height == 3 and trusted.validators == CometValidatorSet.from_genesis(
        REAL_GENESIS)
    broken = copy.deepcopy(answers["commit"]["result"]["signed_header"])
    broken["header"]["time"] = "yesterday"
    with pytest.raises(DecodeError, match="RFC 3339"):
        light_block_from_rpc(broken, answers["validators"]["result"]["validators"])
