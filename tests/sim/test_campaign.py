"""Fault campaigns: many seeds across cluster sizes, faults and Byzantine behaviours.

The fast tier runs a handful of seeds; the `simulation` tier (`pytest -m simulation`) runs
the campaign CI relies on, sized to stay within a few minutes on a two-core machine.
"""

from __future__ import annotations

from collections import Counter

import pytest

from seoulchain.sim.campaign import SeedResult, run_seed

# CI's campaign: about 0.25 s per seed on the 2-core box, 4-5 minutes in all; see
# docs/simulation.md for the measurement.
CAMPAIGN_SEEDS = range(10_000, 11_000)
CANARY_CAMPAIGN_SEEDS = range(20_000, 20_060)
# The default per-test timeout (300 s) would cut a campaign short on a busy machine.
CAMPAIGN_TIMEOUT_S = 1800


def describe(results: list[SeedResult]) -> str:
    return "\n".join(f"{result.replay_command}: {result.violations or result.liveness_failure}"
                     for result in results)


def test_sim_campaign_smoke_over_a_few_seeds() -> None:
    """sim campaign (fast tier): eight seeds, every size and fault drawn, no failure."""
    results = [run_seed(seed) for seed in range(8)]
    failed = [result for result in results if result.failed]
    assert not failed, describe(failed)
    assert {result.plan.n for result in results} >= {4, 5, 7}


def test_sim_campaign_fixed_size_and_byzantine_count() -> None:
    """sim campaign: --validators 7 --byzantine 2 are honoured by every seed."""
    result = run_seed(3, validators=7, byzantine=2)
    assert result.plan.n == 7 and len(result.plan.byzantine) == 2
    assert result.replay_command == "seoulchain sim --seed 3 --validators 7 --byzantine 2"
    assert not result.failed, describe([result])


def test_sim_campaign_without_empty_blocks_over_a_few_seeds() -> None:
    """sim campaign (create_empty_blocks off, 5 s proof of life): eight seeds, no failure;
    the replay command names the interval."""
    results = [run_seed(seed, empty_blocks_interval_ms=5000) for seed in range(8)]
    failed = [result for result in results if result.failed]
    assert not failed, describe(failed)
    assert results[0].replay_command == "seoulchain sim --seed 0 --empty-blocks-interval-ms 5000"


@pytest.mark.parametrize("interval_ms", [None, 5000])
def test_sim_campaign_single_validator_seeds(interval_ms: int | None) -> None:
    """sim campaign (n=1, the path `seoulchain init` + `start` run): eight seeds of crashes,
    torn WAL writes, slowness and clock skew, with empty blocks on and off; no failure."""
    results = [run_seed(seed, validators=1, empty_blocks_interval_ms=interval_ms)
               for seed in range(8)]
    failed = [result for result in results if result.failed]
    assert not failed, describe(failed)
    assert {result.plan.n for result in results} == {1}
    assert any(result.plan.crashes for result in results)


@pytest.mark.simulation
@pytest.mark.timeout(CAMPAIGN_TIMEOUT_S)
def test_sim_campaign_many_seeds_keeps_safety_and_liveness() -> None:
    """sim campaign (simulation tier): 1000 seeds across n in {1, 4, 5, 7}, every fault class."""
    results = [run_seed(seed) for seed in CAMPAIGN_SEEDS]
    unsafe = [result for result in results if result.violations]
    assert not unsafe, describe(unsafe)
    stalled = [result for result in results if result.liveness_failure]
    assert not stalled, describe(stalled)
    sizes = Counter(result.plan.n for result in results)
    assert set(sizes) == {1, 4, 5, 7}
    behaviours = {name for result in results for name in result.plan.byzantine.values()}
    assert behaviours >= {"silent", "partial", "equivocate", "double_vote", "invalid_proposal",
                          "twins", "lock_split"}


@pytest.mark.simulation
@pytest.mark.timeout(CAMPAIGN_TIMEOUT_S)
def test_sim_canary_campaign_is_caught_on_nearly_every_seed() -> None:
    """sim canary campaign (simulation tier): the checkers catch at least 90 % of seeds."""
    results = [run_seed(seed, canary=True) for seed in CANARY_CAMPAIGN_SEEDS]
    missed = [result.seed for result in results if not result.violations]
    assert len(missed) <= len(results) // 10, f"canary missed on seeds {missed}"
