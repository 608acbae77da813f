"""Modelled CPU costs: off changes nothing; on, a node works one event at a time, its
throughput stays under the model's bound, and latency follows the per-tx cost."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from seoulchain.cli.sim import sim
from seoulchain.errors import LocalError
from seoulchain.sim.cluster import Cluster, SimLimits
from seoulchain.sim.costs import CpuCosts, EventWork
from seoulchain.sim.network import NetworkFaults
from seoulchain.sim.scale import compute_percentile, run_load_step

# The trace digest of `run_fault_scenario` before the cost model existed (commit ad4c6fb):
# with costs off, the event loop must process the very same items in the same order.
# A change to the validator core's behaviour or to the simulated chain's genesis (here: its
# governing agencies, whose members are genesis state, and its genesis roles, whose history
# is genesis state too) changes it legitimately, with the same
# time, item count and height; a change to the simulator's loop must not.
SCENARIO_DIGEST_BEFORE_COSTS = "04f0c36ae97f4827d71372839d786b9602ce9cfc22d47f6351a835c1ded2bb68"
# Per-tx costs ten times the measured ones: a low bound keeps these runs cheap in real CPU.
SLOW_TX_FACTOR = 10
SCALE_LIMITS = SimLimits(block_txs_max=2000, block_tx_bytes_max=4 * 1024 * 1024,
                         mempool_txs_max=20_000, mempool_bytes_max=64 * 1024 * 1024)

app = typer.Typer()
app.command()(sim)
runner = CliRunner()


def run_fault_scenario(costs: CpuCosts | None = None) -> Cluster:
    """Loss, duplication, a double voter, a crash and a restart (n=4, f=1)."""
    cluster = Cluster(n=4, seed=11, byzantine={3: "double_vote"}, costs=costs).set_faults(
        loss=0.1, duplicate=0.1, delay_spread_ms=50)
    cluster.submit(10, spread_ms=5_000)
    cluster.run_for(8_000)
    cluster.node(1).crash()
    cluster.run_for(2_000)
    cluster.node(1).restart()
    cluster.run_until(height=cluster.height + 2, timeout_ms=60_000)
    return cluster


def make_load_cluster(costs: CpuCosts, *, n: int = 4, seed: int = 3) -> Cluster:
    cluster = Cluster(n, seed, clients=16, limits=SCALE_LIMITS, costs=costs,
                      faults=NetworkFaults(delay_min_ms=1, delay_spread_ms=0))
    cluster.run_until(height=1, timeout_ms=30_000)
    return cluster


def test_costs_off_replays_the_trace_from_before_the_cost_model() -> None:
    """costs off (n=4, f=1, faults): the same items in the same order as before costs."""
    plain = run_fault_scenario()
    assert plain.trace_digest() == SCENARIO_DIGEST_BEFORE_COSTS
    assert (plain.now_ms, plain.items_processed, plain.height) == (12_050, 883, 12)
    assert run_fault_scenario(CpuCosts.zero()).trace_digest() == SCENARIO_DIGEST_BEFORE_COSTS
    assert all(node.busy_us == 0 for node in plain.nodes)


def test_costs_on_the_same_scenario_is_safe_and_replays_exactly() -> None:
    """costs on (n=4, f=1, faults): the checkers pass and a second run gives the same trace."""
    first, second = run_fault_scenario(CpuCosts()), run_fault_scenario(CpuCosts())
    first.check()
    assert first.trace_digest() == second.trace_digest() != SCENARIO_DIGEST_BEFORE_COSTS
    assert all(node.busy_us > 0 for node in first.nodes)


def test_costs_on_a_node_works_one_event_at_a_time() -> None:
    """costs on (n=4, load): each node's busy intervals are disjoint, and every commit the
    load sees at a node happens at the end of one of that node's intervals."""
    cluster = make_load_cluster(CpuCosts())
    intervals: dict[int, list[tuple[int, int]]] = {node.index: [] for node in cluster.nodes}
    cluster.on_busy = lambda index, start, end: intervals[index].append((start, end))
    load = cluster.offer_load(300, 1_500)
    cluster.run_for(3_000)
    assert load.backlog == 0 and len(load.latencies_us) == load.submitted == 450
    for index, spans in intervals.items():
        assert spans == sorted(spans) and len(spans) > 100
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"node {index} started work at {start} before {end}"
        assert all(start < end for start, end in spans)
    ends = {end for spans in intervals.values() for _, end in spans}
    assert set(load.commit_times_us) <= ends


def test_costs_on_committed_throughput_stays_under_the_bound() -> None:
    """costs on (n=4, offered the bound): no node commits faster than the model allows,
    since each tx it committed cost it an admission, an execution and a commit."""
    costs = CpuCosts().scaled_tx(SLOW_TX_FACTOR)
    bound = costs.compute_bound_tps()
    assert 150 < bound < 200
    cluster = make_load_cluster(costs)
    started_us = cluster.now_us
    cluster.offer_load(round(bound), 3_000)
    cluster.run_for(3_000)
    elapsed_s = (cluster.now_us - started_us) / 1_000_000
    for node in cluster.nodes:
        assert node.txs_committed > 0.2 * bound * elapsed_s, "the load hardly committed"
        assert node.txs_committed / elapsed_s <= bound
        assert node.txs_committed * costs.compute_tx_us() <= node.busy_us


def test_costs_on_latency_grows_with_the_per_tx_cost() -> None:
    """costs on (n=4, same load): four times the per-tx cost, a later finality."""
    fast = run_load_step(4, 100, costs=CpuCosts(), latency_ms=1, duration_ms=1_500)
    slow = run_load_step(4, 100, costs=CpuCosts().scaled_tx(4), latency_ms=1, duration_ms=1_500)
    assert fast.sustained and slow.committed == slow.submitted == 150
    assert slow.p50_ms > fast.p50_ms and slow.p99_ms > fast.p99_ms
    assert slow.busiest_node_share > fast.busiest_node_share


def test_costs_price_what_an_event_did() -> None:
    """The busy time of an event is the sum of its priced parts."""
    costs = CpuCosts()
    work = EventWork(consensus_messages=1, txs_admitted=2, blocks_executed=1, txs_executed=3,
                     blocks_committed=1, txs_committed=3, fsyncs=2)
    assert costs.compute_busy_us(work) == (20 + 230 + 2 * 210 + 1000 + 3 * 250 + 700 + 3 * 90
                                           + 2 * 3300)
    assert costs.compute_bound_tps() == pytest.approx(1e6 / 550)
    assert CpuCosts.zero().is_zero() and not costs.is_zero()
    with pytest.raises(LocalError):
        CpuCosts(fsync_us=-1)
    assert compute_percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert compute_percentile([1.0] * 99 + [9.0], 0.99) == 1.0


def test_cli_sim_scale_writes_well_formed_json(tmp_path: Path) -> None:
    """`seoulchain sim scale` on a tiny configuration: the table, and JSON without NaN."""
    output = tmp_path / "scale.json"
    result = runner.invoke(app, ["scale", "--validators", "1", "--duration-s", "0.3",
                                 "--steps", "1", "--json-out", str(output)])
    assert result.exit_code == 0, result.output
    assert "tps_max" in result.output and "wall time" in result.output
    document = json.loads(output.read_text(), parse_constant=lambda name: pytest.fail(name))
    assert document["costs"]["fsync_us"] == 3300 and document["duration_ms"] == 300
    (row,) = document["results"]
    assert row["validators"] == 1 and len(row["steps"]) == 1
    assert row["bound_tps"] == pytest.approx(1e6 / 550)
    assert row["steps"][0]["submitted"] == row["steps"][0]["offered_tps"] * 3 // 10


def test_cli_sim_rejects_malformed_validator_counts() -> None:
    for arguments in (["scale", "--validators", "4,x"], ["--validators", "0"],
                      ["--validators", "4,7"], ["scale", "--validators", "0"]):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2, (arguments, result.output)
        assert "--validators" in result.output or "validator count" in result.output
