"""The checkers catch a deliberately unsafe validator; a seed replays exactly, in any process."""

from __future__ import annotations

import os
import subprocess
import sys

from seoulchain.sim.campaign import run_seed
from seoulchain.sim.cluster import Cluster

CANARY_SEEDS = range(8)


def test_sim_canary_forks_under_the_lock_split_attack() -> None:
    """sim canary (n=4, f=1): validators that ignore their lock decide w after one decided v."""
    cluster = Cluster(n=4, seed=5, byzantine={1: "lock_split"}, canary=True)
    cluster.submit(6, spread_ms=10_000)
    cluster.run_for(20_000)
    assert cluster.adversary.injections >= 1
    violations = cluster.violations()
    assert any(violation.checker == "agreement" for violation in violations)
    assert any(violation.checker == "state" for violation in violations)


def test_sim_honest_validators_survive_the_same_attack() -> None:
    """sim (n=4, f=1): the very attack that forks the canary leaves honest locks intact."""
    cluster = Cluster(n=4, seed=5, byzantine={1: "lock_split"})
    cluster.submit(6, spread_ms=10_000)
    cluster.run_for(20_000)
    assert cluster.adversary.injections >= 1
    cluster.check()


def test_sim_canary_is_caught_on_nearly_every_seed() -> None:
    """sim canary campaign: the checkers report a violation on at least 7 of 8 seeds."""
    results = [run_seed(seed, canary=True) for seed in CANARY_SEEDS]
    caught = [result.seed for result in results if result.violations]
    assert len(caught) >= 7, f"canary caught only on seeds {caught}"


def test_sim_same_seed_replays_the_same_trace_and_state_roots() -> None:
    """sim determinism: one seed run twice gives the same trace digest, heights and roots."""
    first, second = run_seed(1234), run_seed(1234)
    assert first.trace_digest == second.trace_digest
    assert (first.height, first.virtual_ms, first.items) == (
        second.height, second.virtual_ms, second.items)
    clusters = []
    for _ in range(2):
        cluster = Cluster(n=4, seed=99, byzantine={2: "double_vote"}).set_faults(
            loss=0.2, duplicate=0.2, delay_spread_ms=200)
        cluster.submit(8, spread_ms=8_000)
        cluster.run_for(15_000)
        clusters.append(cluster)
    assert [node.state_roots for node in clusters[0].nodes] == [
        node.state_roots for node in clusters[1].nodes]
    assert clusters[0].trace_digest() == clusters[1].trace_digest()
    assert run_seed(1235).trace_digest != first.trace_digest


def test_sim_seed_replays_identically_under_another_hash_seed() -> None:
    """sim determinism: a fresh interpreter with another PYTHONHASHSEED gives the same trace."""
    script = "from seoulchain.sim.campaign import run_seed; print(run_seed(77).trace_digest)"
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    output = subprocess.run([sys.executable, "-c", script], env=environment, check=True,
                            capture_output=True, text=True, timeout=120)
    assert output.stdout.strip() == run_seed(77).trace_digest
