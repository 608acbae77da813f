"""Proposal, vote and evidence encodings; signature checks; strict commit verification."""

from __future__ import annotations

import contextlib

import pytest
from consensus_harness import (
    CHAIN_ID,
    make_block,
    make_keys,
    make_validator_set,
    proposer_index,
    sign_proposal,
    sign_vote,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.events import (
    ProposalReceived,
    ProposalValueReady,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    ValidationResult,
    VoteReceived,
    decode_event,
    encode_event,
)
from seoulchain.consensus.evidence import DuplicateVoteEvidence
from seoulchain.consensus.messages import (
    InvalidSignatureError,
    Proposal,
    UnknownValidatorError,
    Vote,
    verify_commit,
)
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, LocalError, VerificationError
from seoulchain.ledger.types import Commit, CommitSig, VoteType

KEYS = make_keys(4)
VALIDATORS = make_validator_set(KEYS)
BLOCK = make_block(1, VALIDATORS, KEYS[0].public_key, tag=b"tx")
BLOCK_ID = BLOCK.block_id()
PROPOSER = KEYS[proposer_index(VALIDATORS, KEYS, 1, 0)]


def make_commit(signers: list[int], *, height: int = 1, round_: int = 0,
                block_id: bytes = BLOCK_ID) -> Commit:
    votes = [sign_vote(KEYS[i], VoteType.PRECOMMIT, height, round_, block_id) for i in signers]
    return Commit(height, round_, block_id, tuple(vote.to_commit_sig() for vote in votes))


def sample_encodings() -> list[bytes]:
    vote = sign_vote(KEYS[1], VoteType.PREVOTE, 1, 0, BLOCK_ID)
    nil = sign_vote(KEYS[1], VoteType.PRECOMMIT, 1, 0, b"")
    other = sign_vote(KEYS[1], VoteType.PREVOTE, 1, 0, sha256(b"other"))
    return [vote.encode(), nil.encode(), sign_proposal(PROPOSER, 1, 0, BLOCK).encode(),
            DuplicateVoteEvidence.create(vote, other).encode()]


# ---------------------------------------------------------------- votes and proposals


def test_vote_roundtrip_and_verify() -> None:
    vote = sign_vote(KEYS[2], VoteType.PRECOMMIT, 7, 3, BLOCK_ID)
    assert Vote.decode(vote.encode()) == vote
    vote.verify(CHAIN_ID, VALIDATORS)
    with pytest.raises(InvalidSignatureError):
        vote.verify("other-chain", VALIDATORS)
    stranger = sign_vote(SigningKey(sha256(b"stranger")), VoteType.PREVOTE, 7, 3, BLOCK_ID)
    with pytest.raises(UnknownValidatorError):
        stranger.verify(CHAIN_ID, VALIDATORS)


def test_nil_vote_roundtrip() -> None:
    vote = sign_vote(KEYS[0], VoteType.PREVOTE, 1, 0, b"")
    assert Vote.decode(vote.encode()).is_nil


def test_proposal_roundtrip_and_verify() -> None:
    proposal = sign_proposal(PROPOSER, 1, 0, BLOCK)
    decoded = Proposal.decode(proposal.encode())
    assert decoded == proposal and decoded.block_id == BLOCK_ID
    proposal.verify(CHAIN_ID, VALIDATORS)


def test_proposal_from_the_wrong_proposer_fails() -> None:
    wrong = KEYS[(KEYS.index(PROPOSER) + 1) % 4]
    with pytest.raises(InvalidSignatureError):
        sign_proposal(wrong, 1, 0, BLOCK).verify(CHAIN_ID, VALIDATORS)


def test_proposal_for_a_block_of_another_chain_or_height_fails() -> None:
    foreign = make_block(1, VALIDATORS, KEYS[0].public_key, chain_id="elsewhere")
    with pytest.raises(VerificationError):
        sign_proposal(PROPOSER, 1, 0, foreign).verify(CHAIN_ID, VALIDATORS)
    later = make_block(2, VALIDATORS, KEYS[0].public_key)
    with pytest.raises(VerificationError):
        sign_proposal(PROPOSER, 1, 0, later).verify(CHAIN_ID, VALIDATORS)


def test_proposal_pol_round_must_be_below_round() -> None:
    bad = Proposal(1, 2, 2, BLOCK, b"\x00" * 64)
    with pytest.raises(DecodeError):
        Proposal.decode(bad.encode())


def test_precommit_sign_bytes_are_commit_sign_bytes() -> None:
    commit = make_commit([0, 1, 2])
    verify_commit(CHAIN_ID, VALIDATORS, commit, BLOCK_ID, 1)
    assert Commit.decode(commit.encode()) == commit


# ---------------------------------------------------------------- verify_commit strictness


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: Commit(2, c.round, c.block_id, c.signatures), "height"),
    (lambda c: Commit(c.height, c.round, sha256(b"x"), c.signatures), "block id"),
    (lambda c: Commit(c.height, 1, c.block_id, c.signatures), "invalid commit signature"),
    (lambda c: Commit(c.height, c.round, c.block_id, c.signatures[:2]), "two thirds"),
    (lambda c: Commit(c.height, c.round, c.block_id, (c.signatures[0], *c.signatures[:2])),
     "duplicate"),
    (lambda c: Commit(c.height, c.round, c.block_id, c.signatures[::-1]), "order"),
    (lambda c: Commit(c.height, c.round, c.block_id, ()), "two thirds"),
    (lambda c: Commit(c.height, c.round, c.block_id, c.signatures, version=2), "version"),
])
def test_verify_commit_rejects(mutate, message: str) -> None:
    commit = mutate(make_commit([0, 1, 2]))
    with pytest.raises(VerificationError, match=message):
        verify_commit(CHAIN_ID, VALIDATORS, commit, BLOCK_ID, 1)


def test_verify_commit_rejects_unknown_and_forged_signers() -> None:
    commit = make_commit([0, 1, 2, 3])
    outsider = CommitSig(b"\xff" * 32, commit.signatures[0].signature)
    with pytest.raises(UnknownValidatorError):
        verify_commit(CHAIN_ID, VALIDATORS,
                      Commit(1, 0, BLOCK_ID, (*commit.signatures, outsider)), BLOCK_ID, 1)
    forged = CommitSig(commit.signatures[3].validator, commit.signatures[0].signature)
    with pytest.raises(InvalidSignatureError):
        verify_commit(CHAIN_ID, VALIDATORS, Commit(1, 0, BLOCK_ID, (*commit.signatures[:3],
                                                                     forged)), BLOCK_ID, 1)


def test_verify_commit_counts_power_not_heads() -> None:
    validators = make_validator_set(KEYS, [1, 1, 1, 10])
    verify_commit(CHAIN_ID, validators, make_commit([3]), BLOCK_ID, 1)
    with pytest.raises(VerificationError, match="two thirds"):
        verify_commit(CHAIN_ID, validators, make_commit([0, 1, 2]), BLOCK_ID, 1)


# ---------------------------------------------------------------- evidence


def test_evidence_is_canonical_encodable_and_verifiable() -> None:
    one = sign_vote(KEYS[1], VoteType.PREVOTE, 3, 2, sha256(b"one"))
    two = sign_vote(KEYS[1], VoteType.PREVOTE, 3, 2, sha256(b"two"))
    evidence = DuplicateVoteEvidence.create(one, two)
    assert evidence == DuplicateVoteEvidence.create(two, one)
    assert DuplicateVoteEvidence.decode(evidence.encode()) == evidence
    evidence.verify(CHAIN_ID, VALIDATORS)
    assert evidence.hash() == sha256(evidence.encode())


def test_evidence_rejects_non_conflicting_or_forged_votes() -> None:
    one = sign_vote(KEYS[1], VoteType.PREVOTE, 3, 2, sha256(b"one"))
    with pytest.raises(LocalError):
        DuplicateVoteEvidence.create(one, sign_vote(KEYS[1], VoteType.PREVOTE, 3, 1, b""))
    with pytest.raises(LocalError):
        DuplicateVoteEvidence.create(one, sign_vote(KEYS[2], VoteType.PREVOTE, 3, 2, b""))
    two = sign_vote(KEYS[1], VoteType.PREVOTE, 3, 2, sha256(b"two"))
    evidence = DuplicateVoteEvidence.create(one, two)
    forged = Vote(evidence.vote_b.vote_type, 3, 2, evidence.vote_b.block_id, KEYS[1].public_key,
                  evidence.vote_a.signature)
    with pytest.raises(InvalidSignatureError):
        DuplicateVoteEvidence(evidence.vote_a, forged).verify(CHAIN_ID, VALIDATORS)
    swapped = DuplicateVoteEvidence(evidence.vote_b, evidence.vote_a)
    with pytest.raises(DecodeError):
        DuplicateVoteEvidence.decode(swapped.encode())
    with pytest.raises(VerificationError):
        swapped.verify(CHAIN_ID, VALIDATORS)


# ---------------------------------------------------------------- events (WAL payloads)


def test_every_event_roundtrips() -> None:
    commit = make_commit([0, 1, 2])
    events = [
        StartHeight(2, VALIDATORS, commit), StartHeight(1, VALIDATORS, None),
        ProposalReceived(b"\x01\x02"), VoteReceived(b"\x03"),
        TimeoutFired(TimeoutKind.PREVOTE, 4, 5), ValidationResult(4, BLOCK_ID, False),
        ProposalValueReady(1, 3, BLOCK),
    ]
    for event in events:
        assert decode_event(encode_event(event)) == event


# ---------------------------------------------------------------- decoders never crash


DECODERS = [Vote.decode, Proposal.decode, DuplicateVoteEvidence.decode, decode_event]


def assert_only_decode_error(data: bytes) -> None:
    for decoder in DECODERS:
        with contextlib.suppress(DecodeError):
            decoder(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decoders_raise_only_decode_error_on_arbitrary_bytes(data: bytes) -> None:
    assert_only_decode_error(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sample_encodings()), st.integers(0, 10_000), st.integers(0, 255))
def test_decoders_raise_only_decode_error_on_mutated_encodings(encoded: bytes, position: int,
                                                               byte: int) -> None:
    mutated = bytearray(encoded)
    mutated[position % len(mutated)] = byte
    assert_only_decode_error(bytes(mutated))


def test_decoders_reject_every_truncation() -> None:
    """decoders: each valid encoding fed byte by byte is rejected until it is whole."""
    decoders = [Vote.decode, Vote.decode, Proposal.decode, DuplicateVoteEvidence.decode]
    for decoder, encoded in zip(decoders, sample_encodings(), strict=True):
        for end in range(len(encoded)):
            with pytest.raises(DecodeError):
                decoder(encoded[:end])
        decoder(encoded)


CBOR_LEAVES = (st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=40)
               | st.sampled_from([b"\x00" * 32, b"\x01" * 64, b"", -1, 0, 1, 2, True, None])
               | st.text(max_size=8))
# Arrays of the lengths the decoders expect, holding leaves or arrays of leaves.
CBOR_SHAPES = st.lists(CBOR_LEAVES | st.lists(CBOR_LEAVES, max_size=16), min_size=1, max_size=8)


def check_shapes(value: list) -> None:
    from seoulchain.codec import encode

    assert_only_decode_error(encode(value))
    assert_only_decode_error(encode([1, *value]))


@settings(max_examples=150, deadline=None)
@given(CBOR_SHAPES)
def test_decoders_raise_only_decode_error_on_well_formed_cbor_of_any_shape(value: list) -> None:
    check_shapes(value)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(CBOR_SHAPES)
def test_decoders_raise_only_decode_error_on_many_cbor_shapes(value: list) -> None:
    check_shapes(value)
