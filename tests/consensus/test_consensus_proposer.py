"""Proposer rotation: exact weighted shares, smooth interleaving, purity and speed."""

from __future__ import annotations

import time
from collections import Counter
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.consensus.proposer import compute_proposer, compute_turn_holder
from seoulchain.ledger.types import Validator, ValidatorSet


def make_set(powers: list[int]) -> ValidatorSet:
    return ValidatorSet.of([Validator(index.to_bytes(32, "big"), power)
                            for index, power in enumerate(powers, start=1)])


def brute_force_cycle(powers: list[int]) -> list[int]:
    """Every turn of a cycle: highest w / (2c + 1) first, ties to the lower index."""
    turns = [(Fraction(2 * taken + 1, 2 * power), index)
             for index, power in enumerate(powers) for taken in range(power)]
    return [index for _, index in sorted(turns)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=9))
def test_turns_match_the_brute_force_priority_order(powers: list[int]) -> None:
    cycle = brute_force_cycle(powers)
    assert [compute_turn_holder(powers, turn) for turn in range(sum(powers))] == cycle


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=10), st.integers(1, 10**6))
def test_each_validator_proposes_exactly_its_power_per_cycle(powers: list[int],
                                                             start: int) -> None:
    validator_set = make_set(powers)
    total = validator_set.total_power
    counts = Counter(compute_proposer(validator_set, height, 0).public_key
                     for height in range(start, start + total))
    assert counts == {v.public_key: v.power for v in validator_set.validators}


def test_frequency_is_proportional_to_power_over_many_heights() -> None:
    """proposer: powers 1, 2, 3, 10 over 1,000 heights: shares within one turn per cycle."""
    validator_set = make_set([1, 2, 3, 10])
    heights = 1000
    counts = Counter(compute_proposer(validator_set, height, 0).public_key
                     for height in range(1, heights + 1))
    for validator in validator_set.validators:
        expected = heights * validator.power / validator_set.total_power
        assert abs(counts[validator.public_key] - expected) <= validator.power


def test_equal_powers_rotate_in_key_order_and_rounds_advance_the_rotation() -> None:
    validator_set = make_set([1, 1, 1, 1])
    keys = [v.public_key for v in validator_set.validators]
    assert [compute_proposer(validator_set, 1, r).public_key for r in range(6)] == (
        keys + keys[:2])
    assert compute_proposer(validator_set, 3, 2) == compute_proposer(validator_set, 1, 4)


def test_turns_interleave_within_a_cycle() -> None:
    """proposer: turn positions are (2c + 1) / 2w — 1/8, 3/8, 5/8, 7/8 against 1/2 and 1/2."""
    assert [compute_turn_holder([1, 1, 4], turn) for turn in range(6)] == [2, 2, 0, 1, 2, 2]
    assert [compute_turn_holder([3, 2], turn) for turn in range(5)] == [0, 1, 0, 1, 0]


def test_selection_is_pure_and_fast_for_large_powers() -> None:
    validator_set = make_set([10**12 + index for index in range(150)])
    started = time.perf_counter()
    first = [compute_proposer(validator_set, 10**15 + h, 7) for h in range(50)]
    assert time.perf_counter() - started < 1.0
    assert first == [compute_proposer(validator_set, 10**15 + h, 7) for h in range(50)]
