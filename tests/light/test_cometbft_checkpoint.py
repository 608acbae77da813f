"""CometBFT bundles from a checkpoint: a signed header the verifier trusts by height and
hash, then CometBFT's light-client rules (and bisection across set changes) from there."""

from __future__ import annotations

import base64
import copy
from dataclasses import replace
from typing import Any

import pytest

from seoulchain.errors import LocalError, VerificationError
from seoulchain.ledger.types import BlockHeader
from seoulchain.light.bundle import (
    BundleError,
    Checkpoint,
    assemble_bundle,
    build_cometbft_sections,
    verify_bundle,
)
from seoulchain.light.cometbft import (
    FLAG_ABSENT,
    CometLightBlock,
    CommitSig,
    light_block_from_json,
    trace_to,
    trust_checkpoint,
)
from tests.light.test_cometbft import (
    CHAIN_ID,
    REAL_BUNDLE,
    REAL_GENESIS,
    SyntheticChain,
    make_keys,
)

REAL_BLOCK = light_block_from_json(REAL_BUNDLE["cometbft"]["light_blocks"][0], "real")
REAL_HEADER = BlockHeader.decode(base64.b64decode(REAL_BUNDLE["cometbft"]["header"]))


class RealSource:
    """The real bundle's network as a proof source: its one signed header and seoulchain
    header (heights 153 and 152)."""

    def get_comet_light_block(self, height: int) -> CometLightBlock:
        assert height == REAL_BLOCK.height, height
        return REAL_BLOCK

    def get_header(self, height: int) -> BlockHeader:
        assert height == REAL_HEADER.height
        return REAL_HEADER


def make_checkpoint_bundle() -> dict[str, Any]:
    sections = build_cometbft_sections(RealSource(), REAL_GENESIS, REAL_HEADER.height,  # type: ignore[arg-type]
                                       checkpoint_height=REAL_BLOCK.height)
    return assemble_bundle(REAL_GENESIS, sections, REAL_BUNDLE["proof"])


def test_a_checkpoint_bundle_verifies_with_the_trusted_header_only() -> None:
    bundle = make_checkpoint_bundle()
    assert bundle["trust"] == {"from": "checkpoint", "height": 153,
                               "block_id": REAL_BLOCK.header.hash().hex()}
    trusted = Checkpoint(153, REAL_BLOCK.header.hash())
    statement = verify_bundle(bundle, REAL_GENESIS, trusted)
    assert statement.kind == "document" and "at height 150" in statement.text
    with pytest.raises(BundleError, match="starts from a checkpoint"):
        verify_bundle(bundle, REAL_GENESIS)
    with pytest.raises(BundleError, match="not the trusted one"):
        verify_bundle(bundle, REAL_GENESIS, Checkpoint(153, b"\x01" * 32))


def test_a_checkpoint_bundle_refuses_a_first_header_other_than_the_checkpoint() -> None:
    bundle = make_checkpoint_bundle()
    forged = copy.deepcopy(bundle)
    forged["cometbft"]["light_blocks"][0]["header"]["time_ns"] += 1
    with pytest.raises(BundleError) as caught:
        verify_bundle(forged, REAL_GENESIS, Checkpoint(153, REAL_BLOCK.header.hash()))
    assert caught.value.step == "cometbft light block 1"
    assert "not the trusted checkpoint" in str(caught.value)


def test_the_trusted_height_must_reach_the_proving_header() -> None:
    with pytest.raises(LocalError, match="from 1 to 153"):
        build_cometbft_sections(RealSource(), REAL_GENESIS, 152,  # type: ignore[arg-type]
                                checkpoint_height=154)


def test_a_checkpoint_header_needs_its_set_and_two_thirds_of_its_signatures() -> None:
    assert trust_checkpoint(REAL_BLOCK.header.chain_id, REAL_BLOCK).height == 153
    short = replace(REAL_BLOCK, commit=replace(REAL_BLOCK.commit, signatures=tuple(
        CommitSig(FLAG_ABSENT, b"", 0, b"") if index < 2 else sig
        for index, sig in enumerate(REAL_BLOCK.commit.signatures))))
    with pytest.raises(VerificationError, match="not more than 2/3"):
        trust_checkpoint(REAL_BLOCK.header.chain_id, short)
    with pytest.raises(VerificationError, match="of chain"):
        trust_checkpoint("another-chain", REAL_BLOCK)


def test_from_a_checkpoint_after_a_set_change_one_header_reaches_the_tip() -> None:
    """Trusting a header of the new set, the verifier skips straight to the tip; from
    genesis it must bisect through the change (tests/light/test_cometbft.py)."""
    chain = SyntheticChain(make_keys(4, 1), make_keys(4, 20), switch=10, top=60)
    trusted = trust_checkpoint(CHAIN_ID, chain.fetch(20))
    assert trusted.validators == chain.sets[20]
    assert [block.height for block in trace_to(trusted, 50, chain.fetch)] == [50]
