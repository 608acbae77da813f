"""Proof bundles: the committed vectors, strict parsing, and every flipped byte rejected."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from seoulchain.errors import VerificationError
from seoulchain.execution.results import ResultCode
from seoulchain.ledger.genesis import Genesis
from seoulchain.light import bundle as bundle_module
from seoulchain.light.bundle import (
    BundleError,
    Checkpoint,
    build_document_bundle,
    build_tx_bundle,
    parse_bundle,
    render_bundle,
    verify_bundle,
)
from seoulchain.vectors import proofs as vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors" / "proofs.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
GENESIS = Genesis.from_json(VECTORS["genesis"])


def test_vectors_file_matches_the_generator() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == vectors.render_vectors(), (
        "docs/spec/vectors/proofs.json is stale: run scripts/make-vectors")


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda vector: vector["name"])
def test_valid_vector_verifies_and_says_what_it_proves(vector: dict[str, Any]) -> None:
    checkpoint = vector["checkpoint"]
    trusted = None if checkpoint is None else Checkpoint(
        checkpoint["height"], bytes.fromhex(checkpoint["block_id"]))
    statement = verify_bundle(vector["bundle"], GENESIS, trusted)
    assert statement.text == vector["statement"]
    assert verify_bundle(render_bundle(vector["bundle"]), GENESIS, trusted) == statement


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda vector: vector["name"])
def test_invalid_vector_fails_at_its_step(vector: dict[str, Any]) -> None:
    with pytest.raises(BundleError) as caught:
        verify_bundle(vector["bundle"], GENESIS)
    assert caught.value.step.startswith(vector["step"])
    assert str(caught.value) == vector["error"]


def test_statements_read_as_the_issue_asks() -> None:
    statements = {vector["name"]: vector["statement"] for vector in VECTORS["valid"]}
    text = statements["document anchored, not superseded"]
    assert text.startswith("document sha256:")
    assert " was anchored by " in text and " at height 2, time 2026-01-01T00:00:02.000Z" in text
    assert text.endswith("not superseded as of height 12 (time 2026-01-01T00:00:12.000Z)")
    assert "superseded by sha256:" in statements["document superseded"]
    assert "was not anchored as of height 12" in statements["document never anchored"]


def test_result_code_names_match_the_engine() -> None:
    for code in ResultCode:
        if code.value in bundle_module.RESULT_CODE_NAMES:
            assert bundle_module.RESULT_CODE_NAMES[code.value] == code.name


def test_a_bundle_for_another_genesis_fails_at_the_genesis_step() -> None:
    other = Genesis("another-chain", GENESIS.genesis_time_ms, GENESIS.validators, {})
    with pytest.raises(BundleError) as caught:
        verify_bundle(VECTORS["valid"][0]["bundle"], other)
    assert caught.value.step == "genesis"


def test_checkpoint_must_be_the_stated_one() -> None:
    vector = next(item for item in VECTORS["valid"] if item["checkpoint"] is not None)
    with pytest.raises(BundleError, match="not the trusted one"):
        verify_bundle(vector["bundle"], GENESIS, Checkpoint(10, bytes(32)))


def test_a_bundle_from_a_checkpoint_at_the_proof_height_verifies() -> None:
    chain, hashes = vectors.build_story_chain()
    height = chain.get_tx_proof(hashes["tx2"]).height
    bundle = build_tx_bundle(chain, chain.genesis, hashes["tx2"], checkpoint_height=height)
    checkpoint = Checkpoint(height, bytes.fromhex(bundle["trust"]["block_id"]))
    assert verify_bundle(bundle, chain.genesis, checkpoint).height == height


@pytest.mark.parametrize("text", [
    b'{"a":1,"a":2}', b'{"version":1.0}', b'{"x":NaN}', b"[1]", b"\xff", b"",
])
def test_parse_is_strict(text: bytes) -> None:
    with pytest.raises(BundleError) as caught:
        verify_bundle(text, GENESIS)
    assert caught.value.step == "parse"
    with pytest.raises(BundleError):
        parse_bundle(text)


def test_builder_refuses_a_source_that_lies_about_the_tx() -> None:
    chain, hashes = vectors.build_story_chain()
    honest = chain.get_tx_proof

    def lying(tx_hash: bytes) -> Any:
        return honest(hashes["tx1"])

    chain.get_tx_proof = lying  # type: ignore[method-assign]
    with pytest.raises(VerificationError, match="another transaction"):
        build_tx_bundle(chain, chain.genesis, hashes["tx2"])


def flip_positions(size: int, sample: int | None) -> list[int]:
    positions = list(range(size))
    if sample is not None and sample < size:
        positions = sorted(random.Random(5).sample(positions, sample))
    return positions


def assert_every_flip_fails(data: bytes, genesis: Genesis, checkpoint: Checkpoint | None,
                            positions: list[int], masks: tuple[int, ...] = (0x01,),
                            rotate_masks: bool = False) -> None:
    """Flip each position with every mask, or with one mask per position in turn (rotate)."""
    verify_bundle(data, genesis, checkpoint)
    for index, position in enumerate(positions):
        chosen = (masks[index % len(masks)],) if rotate_masks else masks
        for mask in chosen:
            flipped = bytearray(data)
            flipped[position] ^= mask
            with pytest.raises(VerificationError):
                verify_bundle(bytes(flipped), genesis, checkpoint)


def story_document_bundle() -> tuple[bytes, Genesis]:
    chain, hashes = vectors.build_story_chain()
    bundle = build_document_bundle(chain, chain.genesis, hashes["permit-1"])
    return render_bundle(bundle), chain.genesis


def test_flipped_bytes_fail_sampled() -> None:
    data, genesis = story_document_bundle()
    assert_every_flip_fails(data, genesis, None, flip_positions(len(data), 200),
                            masks=(0x01, 0x20, 0x80))


@pytest.mark.slow
def test_every_flipped_byte_fails() -> None:
    for vector in VECTORS["valid"]:
        checkpoint = vector["checkpoint"]
        trusted = None if checkpoint is None else Checkpoint(
            checkpoint["height"], bytes.fromhex(checkpoint["block_id"]))
        data = render_bundle(vector["bundle"])
        # Every byte once, the bit flipped rotating over low, high and case bits: the
        # vectors grow with each claim kind, and four flips of every byte outgrew the tier.
        assert_every_flip_fails(data, GENESIS, trusted, flip_positions(len(data), None),
                                masks=(0x01, 0x02, 0x20, 0x80), rotate_masks=True)
