"""Decoder fuzzing: whatever the bytes, a decoder returns a value or raises DecodeError.

Three input families per decoder: arbitrary bytes; byte-level mutations of valid encodings
(bit flips, interesting head bytes, insertions, deletions, truncations, splices); and
structure-aware mutations that replace one node of a valid value with another data-model
value and re-encode it (well-formed, canonical CBOR that breaks the structure's rules).
Anything parsed must re-encode to exactly the input (canonical) and carry version 1.

The fast tests run a few hundred examples each; the `slow` tier runs more than 100,000 in
total (`SLOW_EXAMPLES_TOTAL`), with the count asserted rather than assumed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.codec import decode, encode
from seoulchain.errors import DecodeError
from seoulchain.ledger.types import Block, BlockHeader, Commit, Transaction

VECTORS_PATH = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors" / "ledger.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "codec": decode,
    "transaction": Transaction.decode,
    "block": Block.decode,
    "commit": Commit.decode,
    "block_header": BlockHeader.decode,
}
SECTION_OF = {"transaction": "transactions", "block": "blocks", "commit": "commits",
              "block_header": "block_headers"}
ALL_SEEDS = [bytes.fromhex(item["cbor_hex"])
             for section in ("codec", "transactions", "validator_sets", "commits",
                             "block_headers", "blocks")
             for item in VECTORS[section]]


def get_own_seeds(decoder_name: str) -> list[bytes]:
    """Return the valid encodings of the decoder's own structure (all vectors for codec)."""
    if decoder_name == "codec":
        return ALL_SEEDS
    return [bytes.fromhex(item["cbor_hex"]) for item in VECTORS[SECTION_OF[decoder_name]]]


def get_seeds(decoder_name: str) -> list[bytes]:
    """Return valid encodings to mutate: mostly the decoder's own, some of every other."""
    if decoder_name == "codec":
        return ALL_SEEDS
    return get_own_seeds(decoder_name) * 10 + ALL_SEEDS


def check_decoder(decoder_name: str, data: bytes) -> None:
    """Decode `data`: DecodeError is fine; a result must be canonical; anything else fails."""
    try:
        parsed = DECODERS[decoder_name](data)
    except DecodeError:
        return
    if decoder_name == "codec":
        assert encode(parsed) == data
        return
    assert encode(parsed.to_cbor()) == data
    assert type(parsed.version) is int and parsed.version == 1


# --------------------------------------------------------------------------- strategies

# Head bytes that change an item's kind or length form: each width, indefinite, tags,
# simple values, floats, break.
INTERESTING_BYTES = [0x00, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x20, 0x38, 0x40, 0x57, 0x58,
                     0x5B, 0x5F, 0x60, 0x78, 0x7B, 0x7F, 0x80, 0x81, 0x88, 0x89, 0x8E, 0x8F,
                     0x90, 0x98, 0x9B, 0x9F, 0xA0, 0xA1, 0xB8, 0xBF, 0xC0, 0xC2, 0xC3, 0xD8,
                     0xD9, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFF]
INTERESTING_VALUES = [0, 1, 2, -1, 2**64 - 1, -(2**64), True, False, None, b"", bytes(31),
                      bytes(32), bytes(33), bytes(64), "", "x", "seoul-devnet-1\n", "Notary",
                      [], [b""], {}, {"k": 1}, [1] * 15]
SMALL_VALUES = (st.sampled_from(INTERESTING_VALUES) | st.integers(-(2**64), 2**64 - 1)
                | st.binary(max_size=70) | st.text(max_size=8))


def arbitrary_bytes(decoder_name: str) -> st.SearchStrategy[bytes]:
    del decoder_name
    return st.binary(max_size=256)


@st.composite
def byte_mutations(draw: st.DrawFn, decoder_name: str) -> bytes:
    """Return a valid encoding with one to four byte-level mutations applied."""
    seeds = get_seeds(decoder_name)
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.integers(0, 6))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == 0 and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == 1 and data:
            data[position] = draw(st.sampled_from(INTERESTING_BYTES))
        elif operation == 2 and data:
            data[position] = draw(st.integers(0, 255))
        elif operation == 3:
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif operation == 4:
            del data[position:position + draw(st.integers(1, 8))]
        elif operation == 5:
            del data[position:]
        else:
            donor = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(donor)))
            data[position:position + draw(st.integers(0, 40))] = donor[start:start + 40]
    return bytes(data)


def update_node(value: Any, path: list[int], change: Callable[[Any], Any]) -> Any:
    """Return `value` with `change` applied to the node at `path` (indexes into arrays and
    map values, taken modulo their length); a path through a scalar stops at that scalar."""
    if not path or not isinstance(value, list | dict) or not value:
        return change(value)
    index, rest = path[0], path[1:]
    if isinstance(value, list):
        index %= len(value)
        return [update_node(item, rest, change) if position == index else item
                for position, item in enumerate(value)]
    key = sorted(value)[index % len(value)]
    return {**value, key: update_node(value[key], rest, change)}


@st.composite
def structure_mutations(draw: st.DrawFn, decoder_name: str) -> bytes:
    """Return a valid value with one node replaced, or an array shortened or lengthened,
    re-encoded canonically: well-formed CBOR that breaks the structure's own rules."""
    value = decode(draw(st.sampled_from(get_own_seeds(decoder_name))))
    path = draw(st.lists(st.integers(0, 20), min_size=1, max_size=3))
    kind = draw(st.sampled_from(["replace"] * 6 + ["drop", "insert", "root"]))
    position = draw(st.integers(0, 20))
    if kind == "replace":
        replacement = draw(SMALL_VALUES)
        return encode(update_node(value, path, lambda node: replacement))
    if kind == "drop":
        return encode(update_node(value, path[:-1], lambda node: drop_item(node, position)))
    if kind == "insert":
        item = draw(SMALL_VALUES)
        return encode(update_node(value, path[:-1], lambda node: insert_item(node, position,
                                                                               item)))
    return encode(draw(st.lists(SMALL_VALUES, max_size=16)))


def drop_item(node: Any, position: int) -> Any:
    if isinstance(node, list) and node:
        position %= len(node)
        return node[:position] + node[position + 1:]
    return node


def insert_item(node: Any, position: int, item: Any) -> Any:
    if isinstance(node, list):
        position %= len(node) + 1
        return [*node[:position], item, *node[position:]]
    return node


STRATEGIES: dict[str, Callable[[str], st.SearchStrategy[bytes]]] = {
    "arbitrary bytes": arbitrary_bytes,
    "byte mutations": byte_mutations,
    "structure mutations": structure_mutations,
}
CASES = [(decoder_name, strategy_name) for decoder_name in DECODERS
         for strategy_name in STRATEGIES]
CASE_IDS = [f"{decoder_name}: {strategy_name}" for decoder_name, strategy_name in CASES]

FAST_EXAMPLES = 300
SLOW_EXAMPLES_TOTAL = 100_000
SLOW_EXAMPLES = math.ceil(SLOW_EXAMPLES_TOTAL / len(CASES))


def run_fuzz(decoder_name: str, strategy_name: str, examples: int, **options: Any) -> int:
    """Run one decoder against one input family; return how many inputs it was fed."""
    fed = 0

    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
              **options)
    @given(STRATEGIES[strategy_name](decoder_name))
    def fuzz(data: bytes) -> None:
        nonlocal fed
        fed += 1
        check_decoder(decoder_name, data)

    fuzz()
    return fed


@pytest.mark.parametrize(("decoder_name", "strategy_name"), CASES, ids=CASE_IDS)
def test_decoder_fuzz(decoder_name: str, strategy_name: str) -> None:
    assert run_fuzz(decoder_name, strategy_name, FAST_EXAMPLES) >= FAST_EXAMPLES


@pytest.mark.slow
@pytest.mark.parametrize(("decoder_name", "strategy_name"), CASES, ids=CASE_IDS)
def test_decoder_fuzz_slow(decoder_name: str, strategy_name: str) -> None:
    fed = run_fuzz(decoder_name, strategy_name, SLOW_EXAMPLES, database=None)
    assert fed >= SLOW_EXAMPLES, f"only {fed} of {SLOW_EXAMPLES} examples ran"


def test_decoder_fuzz_slow_tier_totals_at_least_100k() -> None:
    assert SLOW_EXAMPLES * len(CASES) >= SLOW_EXAMPLES_TOTAL


@pytest.mark.parametrize("decoder_name", DECODERS)
def test_decoder_fuzz_seeds_are_valid(decoder_name: str) -> None:
    """The mutations start from inputs the decoder accepts (else they test nothing)."""
    for data in get_own_seeds(decoder_name):
        check_decoder(decoder_name, data)
        DECODERS[decoder_name](data)


@pytest.mark.parametrize("decoder_name", DECODERS)
def test_decoder_fuzz_truncations_byte_by_byte(decoder_name: str) -> None:
    """Every proper prefix of a valid encoding is rejected, by every decoder."""
    for data in get_own_seeds(decoder_name)[:3]:
        for end in range(len(data)):
            with pytest.raises(DecodeError):
                DECODERS[decoder_name](data[:end])
