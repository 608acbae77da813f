"""Light client: sequential and skipping verification, bisection, fork detection, forgeries."""

from __future__ import annotations

from fractions import Fraction

import pytest

from seoulchain.errors import LocalError, VerificationError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Commit
from seoulchain.light.lightclient import (
    ForkDetected,
    InsufficientTrust,
    LightBlock,
    LightClient,
    TrustedState,
    verify_light_block,
)
from seoulchain.vectors.proofs import (
    CHAIN_ID,
    GENESIS_TIME_MS,
    MemoryChain,
    build_story_chain,
    make_key,
    make_validator_set,
    sign_commit,
)

KEYS = [make_key(index) for index in range(8)]


def new_chain(members: list[int], blocks: int = 0) -> MemoryChain:
    chain = MemoryChain(Genesis(CHAIN_ID, GENESIS_TIME_MS, make_validator_set(members), {}),
                        KEYS)
    for _ in range(blocks):
        chain.add_block()
    return chain


class CountingProvider:
    """A header provider that records which heights were asked for."""

    def __init__(self, chain: MemoryChain):
        self.chain = chain
        self.asked: list[int] = []

    def __call__(self, height: int) -> LightBlock:
        self.asked.append(height)
        return self.chain.get_light_block(height)


def test_sequential_verification_follows_every_header_through_set_changes() -> None:
    chain, _ = build_story_chain()
    client = LightClient.from_genesis(chain.genesis, trust_level=None)
    provider = CountingProvider(chain)
    block = client.verify_sequential(12, provider)
    assert block.block_id() == chain.get_light_block(12).block_id()
    assert provider.asked == list(range(1, 13))
    assert client.trusted.height == 12
    assert client.trusted.validators == make_validator_set([4, 5, 6, 7])


def test_skipping_goes_straight_to_a_header_the_trusted_set_signed() -> None:
    chain, _ = build_story_chain()
    client = LightClient.from_genesis(chain.genesis)
    provider = CountingProvider(chain)
    client.verify_to(7, provider)  # set B = 0, 1, 4, 5: half of it is in genesis set A
    assert provider.asked == [7]
    assert [block.height for block in client.trace] == [7]


def test_bisection_finds_a_pivot_when_the_target_set_is_new() -> None:
    chain, _ = build_story_chain()
    client = LightClient.from_genesis(chain.genesis)
    provider = CountingProvider(chain)
    client.verify_to(12, provider)  # set C shares no key with A: pivot at 6 (set B)
    assert provider.asked == [12, 6]
    assert [block.height for block in client.trace] == [6, 12]


def test_trust_exactly_one_third_is_not_enough() -> None:
    chain = new_chain([0, 1, 2])
    chain.add_block(next_set=make_validator_set([0, 3, 4]))
    for _ in range(3):
        chain.add_block()
    trusted = TrustedState.from_genesis(chain.genesis)
    with pytest.raises(InsufficientTrust, match="10 of 30"):
        verify_light_block(trusted, chain.get_light_block(4))
    client = LightClient(trusted)
    client.verify_to(4, chain.get_light_block)  # bisects through height 2 instead
    assert [block.height for block in client.trace] == [2, 3, 4]


def test_sequential_only_client_refuses_to_skip() -> None:
    chain = new_chain([0, 1, 2, 3], blocks=3)
    trusted = TrustedState.from_genesis(chain.genesis)
    with pytest.raises(VerificationError, match="skipping is not allowed"):
        verify_light_block(trusted, chain.get_light_block(3), trust_level=None)
    with pytest.raises(LocalError):
        LightClient(trusted, trust_level=Fraction(1, 10))


def test_commit_below_two_thirds_is_rejected() -> None:
    chain = new_chain([0, 1, 2, 3])
    block = chain.add_block(signers=[KEYS[0].public_key, KEYS[1].public_key])
    with pytest.raises(VerificationError, match="not more than two thirds"):
        verify_light_block(TrustedState.from_genesis(chain.genesis), block)


def test_forged_and_foreign_signatures_are_rejected() -> None:
    chain = new_chain([0, 1, 2, 3], blocks=1)
    block = chain.get_light_block(1)
    trusted = TrustedState.from_genesis(chain.genesis)
    outsider = sign_commit(CHAIN_ID, [*KEYS[:3], KEYS[5]], 1, block.block_id())
    with pytest.raises(VerificationError, match="unknown validator"):
        verify_light_block(trusted, LightBlock(block.header, outsider, block.validators))
    sigs = list(block.commit.signatures)
    sigs[1] = type(sigs[1])(sigs[1].validator, bytes(64))
    forged = Commit(1, 0, block.block_id(), tuple(sigs))
    with pytest.raises(VerificationError, match="invalid commit signature"):
        verify_light_block(trusted, LightBlock(block.header, forged, block.validators))
    other_chain = sign_commit("other-chain", KEYS[:4], 1, block.block_id())
    with pytest.raises(VerificationError, match="invalid commit signature"):
        verify_light_block(trusted, LightBlock(block.header, other_chain, block.validators))


def test_a_set_the_trusted_header_did_not_name_is_rejected() -> None:
    honest = new_chain([0, 1, 2, 3], blocks=1)
    impostor = new_chain([4, 5, 6, 7], blocks=3)
    trusted = TrustedState.from_genesis(honest.genesis)
    with pytest.raises(VerificationError, match="names validators"):
        verify_light_block(trusted, impostor.get_light_block(1))
    with pytest.raises(InsufficientTrust):
        verify_light_block(trusted, impostor.get_light_block(3))


def test_headers_must_link_and_move_forward_in_time() -> None:
    chain = new_chain([0, 1, 2, 3], blocks=2)
    other = new_chain([0, 1, 2, 3], blocks=0)
    other.add_block(writes={b"x/y": b"\x01"})  # another block 1, same signers
    other.add_block()
    trusted = verify_light_block(TrustedState.from_genesis(chain.genesis),
                                 chain.get_light_block(1))
    with pytest.raises(VerificationError, match="does not link"):
        verify_light_block(trusted, other.get_light_block(2))
    later = TrustedState(CHAIN_ID, 1, trusted.block_id, GENESIS_TIME_MS + 10_000,
                         trusted.validators, trusted.next_validators_hash)
    with pytest.raises(VerificationError, match="not after the trusted time"):
        verify_light_block(later, chain.get_light_block(2))


def test_provider_answering_for_another_height_is_rejected() -> None:
    chain = new_chain([0, 1, 2, 3], blocks=3)
    client = LightClient.from_genesis(chain.genesis)
    with pytest.raises(VerificationError, match="asked for height 3"):
        client.verify_to(3, lambda height: chain.get_light_block(2))


def fork_pair() -> tuple[MemoryChain, MemoryChain]:
    """Two chains from one genesis, the same validators signing both from height 3 on."""
    primary = new_chain([0, 1, 2, 3], blocks=2)
    witness = new_chain([0, 1, 2, 3], blocks=2)
    primary.add_block(writes={b"notary/doc/a": b"\x01"})
    witness.add_block(writes={b"notary/doc/a": b"\x02"})
    primary.add_block()
    witness.add_block()
    return primary, witness


def test_fork_detection_names_both_headers_and_the_double_signers() -> None:
    primary, witness = fork_pair()
    client = LightClient.from_genesis(primary.genesis)
    client.verify_to(4, primary.get_light_block)
    client.check_witness(4, primary.get_light_block)  # an honest witness agrees
    with pytest.raises(ForkDetected) as caught:
        client.check_witness(4, witness.get_light_block)
    evidence = caught.value.evidence
    assert evidence.height == 4
    assert evidence.first.block_id() == primary.get_light_block(4).block_id()
    assert evidence.second.block_id() == witness.get_light_block(4).block_id()
    assert evidence.common_signers == tuple(sorted(key.public_key for key in KEYS[:4]))
    assert "validators that signed both" in str(caught.value)


def test_a_conflicting_block_shown_to_the_client_is_a_fork() -> None:
    primary, witness = fork_pair()
    client = LightClient.from_genesis(primary.genesis, trust_level=None)
    client.verify_sequential(3, primary.get_light_block)
    with pytest.raises(ForkDetected):
        client.accept(witness.get_light_block(3))


def test_a_witness_with_a_fabricated_set_is_faulty_not_a_fork() -> None:
    primary = new_chain([0, 1, 2, 3], blocks=3)
    fabricated = new_chain([4, 5, 6, 7], blocks=3)
    client = LightClient.from_genesis(primary.genesis)
    client.verify_to(3, primary.get_light_block)
    with pytest.raises(VerificationError) as caught:
        client.check_witness(3, fabricated.get_light_block)
    assert not isinstance(caught.value, ForkDetected)


def test_trusting_a_checkpoint_checks_its_commit() -> None:
    chain, _ = build_story_chain()
    checkpoint = chain.get_light_block(8)
    client = LightClient(TrustedState.from_light_block(checkpoint, CHAIN_ID))
    client.verify_to(12, chain.get_light_block)
    assert client.trusted.height == 12
    broken = LightBlock(checkpoint.header, chain.get_light_block(7).commit,
                        checkpoint.validators)
    with pytest.raises(VerificationError):
        TrustedState.from_light_block(broken, CHAIN_ID)
