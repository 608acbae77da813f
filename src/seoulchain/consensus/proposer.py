"""Deterministic weighted round-robin proposer selection, a pure function of (set, height, round).

Theory of operation: the proposer schedule is an endless sequence of *turns*, one per
(height, round) step, built from cycles of `total_power` turns. Inside a cycle, a validator
of power `w` that has already had `c` turns has priority `w / (2c + 1)`; the highest
priority takes the next turn, ties going to the lower public key (the set's order). So,
like CometBFT's proposer priority, priority grows with power and drops after each turn,
turns interleave smoothly, and every validator gets exactly `w` turns per cycle. This is
the Sainte-Laguë (Webster) highest-averages sequence.

Unlike CometBFT, there is no priority state carried from height to height: the proposer
of (height, round) is turn `(height - 1 + round) mod total_power` of the cycle, computable
by anyone holding the validator set, with nothing to persist or to disagree about when
the set changes. Turn `k` is found in O(n log n): count the turns each validator surely
had before `k` in closed form, then order the few remaining candidates with a heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from fractions import Fraction

from seoulchain.ledger.types import Height, Round, Validator, ValidatorSet


def compute_proposer(validator_set: ValidatorSet, height: Height, round_: Round) -> Validator:
    """Return the validator that proposes at (height, round)."""
    assert height >= 1 and round_ >= 0
    turn = (height - 1 + round_) % validator_set.total_power
    powers = [validator.power for validator in validator_set.validators]
    return validator_set.validators[compute_turn_holder(powers, turn)]


def compute_turn_holder(powers: Sequence[int], turn: int) -> int:
    """Return the index of the validator that holds `turn` (0-based) within one cycle."""
    total = sum(powers)
    assert all(power >= 1 for power in powers)
    assert 0 <= turn < total
    anchor = max(0, turn - (len(powers) + 1) // 2)
    taken = [compute_turns_before(power, total, anchor) for power in powers]
    assert sum(taken) <= turn
    candidates = [(compute_turn_key(taken[index], power), index)
                  for index, power in enumerate(powers) if taken[index] < power]
    heapq.heapify(candidates)
    for _ in range(turn - sum(taken)):
        _, index = heapq.heappop(candidates)
        taken[index] += 1
        if taken[index] < powers[index]:
            heapq.heappush(candidates, (compute_turn_key(taken[index], powers[index]), index))
    return candidates[0][1]


def compute_turn_key(turns_taken: int, power: int) -> Fraction:
    """Return the position of a validator's next turn in the cycle (lower comes first)."""
    return Fraction(2 * turns_taken + 1, 2 * power)


def compute_turns_before(power: int, total: int, anchor: int) -> int:
    """Return how many turns with key below `anchor / total` a validator of `power` has."""
    # Keys (2j + 1) / (2 power) < anchor / total  <=>  odd m = 2j + 1 < 2 anchor power / total.
    ceiling = -(-2 * anchor * power // total)
    return min(power, ceiling // 2)
