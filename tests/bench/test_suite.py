"""bench suite: the rate search, the step verdict, the figures and the JSON, with a fake
measurement (no processes, no clock)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.bench import suite
from seoulchain.bench.ledger import presign_anchors
from seoulchain.bench.suite import (
    ExactlyOnce,
    StepResult,
    SuiteOptions,
    VerifyRate,
    compose_report,
    compute_backlog_growth,
    compute_committed_rate,
    find_best_step,
    group_keys,
    judge_step,
    search_max_rate,
    summarize_step,
)
from seoulchain.cli.main import app
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError


def make_step(offered: float, committed: float | None = None, p99: float | None = 500.0,
              **changes: object) -> StepResult:
    step = StepResult(offered=offered, committed=offered if committed is None else committed,
                      p50=None if p99 is None else p99 / 2,
                      p95=None if p99 is None else p99 * 0.9, p99=p99, mempool=0,
                      backlog_growth_tx_per_s=0.0, submit_lag_ms_p99=5.0,
                      txs_offered=int(offered * 10), txs_acknowledged=int(offered * 10),
                      txs_committed=int(offered * 10), refused=0, missing=0, seconds=10.0)
    return judge_step(replace(step, **changes))  # type: ignore[arg-type]


def fake_network(capacity: float) -> tuple[list[float], suite.Measure]:
    """A network that commits everything up to `capacity` tx/s and falls behind beyond."""
    offered_rates: list[float] = []

    def measure(rate: float) -> StepResult:
        offered_rates.append(rate)
        if rate <= capacity:
            return make_step(rate)
        return make_step(rate, committed=capacity, p99=5000.0)

    return offered_rates, measure


# ------------------------------------------------------------------------------ search


def test_search_doubles_then_bisects_between_held_and_failed() -> None:
    offered, measure = fake_network(capacity=300.0)
    steps = search_max_rate(measure, 40.0)
    assert offered[:4] == [40.0, 80.0, 160.0, 320.0]
    assert offered[4] == pytest.approx((160 * 320) ** 0.5)
    assert offered[5] == pytest.approx((offered[4] * 320) ** 0.5)
    assert len(steps) == 7  # bisected until the gap is within RATE_RESOLUTION
    best = find_best_step(steps)
    assert best is not None and 300 / suite.RATE_RESOLUTION <= best.offered <= 300


def test_search_halves_when_the_first_rate_fails() -> None:
    offered, measure = fake_network(capacity=12.0)
    steps = search_max_rate(measure, 40.0)
    assert offered[:3] == [40.0, 20.0, 10.0]
    assert [step.sustained for step in steps[:3]] == [False, False, True]
    assert len(steps) == 6  # three bisections from 2x to within 1.1x
    assert all(10.0 <= rate <= 20.0 for rate in offered[3:])


def test_search_stops_at_the_step_budget_when_nothing_fails() -> None:
    offered, measure = fake_network(capacity=1e12)
    steps = search_max_rate(measure, 10.0, steps_max=6, refine_steps=2)
    assert offered == [10.0, 20.0, 40.0, 80.0]
    assert all(step.sustained for step in steps)


def test_search_with_nothing_sustained_uses_every_step_and_finds_no_best() -> None:
    offered, measure = fake_network(capacity=0.0)
    steps = search_max_rate(measure, 64.0, steps_max=5)
    assert offered == [64.0, 32.0, 16.0, 8.0, 4.0]
    assert find_best_step(steps) is None


def test_search_refuses_a_nonsense_plan() -> None:
    _, measure = fake_network(capacity=1.0)
    with pytest.raises(LocalError):
        search_max_rate(measure, 0.0)
    with pytest.raises(LocalError):
        search_max_rate(measure, 10.0, factor=1.0)


# ------------------------------------------------------------------------------ verdict


@pytest.mark.parametrize(("changes", "reason"), [
    ({"refused": 5}, "refused"),
    ({"missing": 1}, "not committed"),
    ({"p99": 2500.0}, "p99"),
    ({"submit_lag_ms_p99": 3000.0}, "behind schedule"),
    ({"backlog_growth_tx_per_s": 20.0}, "mempool growing"),
    ({"committed": 80.0}, "committed 80 of 100"),
])
def test_judge_step_names_the_broken_rule(changes: dict[str, object], reason: str) -> None:
    step = make_step(100.0, **changes)
    assert not step.sustained
    assert reason in step.reason


def test_judge_step_fails_a_step_with_no_latency() -> None:
    step = make_step(100.0, p99=None)
    assert not step.sustained and "p99 None" in step.reason


def test_judge_step_passes_a_step_that_keeps_up() -> None:
    step = make_step(100.0, committed=95.0, p99=1999.0, backlog_growth_tx_per_s=5.0)
    assert step.sustained and step.reason == ""


# ------------------------------------------------------------------------------ figures


def steady_load(rate: float, seconds: float, latency_s: float, block_s: float
                ) -> tuple[list[float], list[float]]:
    """Submissions at `rate`; each committed in the first block at least `latency_s` later."""
    submits = [index / rate for index in range(int(rate * seconds))]
    commits = [((submit + latency_s) // block_s + 1) * block_s for submit in submits]
    return submits, commits


def test_committed_rate_of_a_step_that_keeps_up_is_the_offered_rate() -> None:
    submits, commits = steady_load(100.0, 10.0, 0.3, 1.0)
    rate = compute_committed_rate(commits, submits, 10.0)
    assert rate == pytest.approx(100.0, rel=0.02)


def test_committed_rate_of_an_overloaded_step_is_the_drain_rate() -> None:
    submits = [index / 200.0 for index in range(2000)]  # 200 tx/s for 10 s
    commits = [1.0 + index / 100.0 for index in range(2000)]  # committed at 100 tx/s
    assert compute_committed_rate(commits, submits, 10.0) == pytest.approx(100.0, rel=0.01)


def test_committed_rate_of_a_single_batch_is_bounded_by_the_schedule() -> None:
    assert compute_committed_rate([1.0] * 40, [0.0] * 40, 1.0) == pytest.approx(40.0)
    assert compute_committed_rate([], [], 1.0) == 0.0


def test_backlog_growth_is_flat_when_kept_up_and_steep_when_overloaded() -> None:
    submits, commits = steady_load(100.0, 12.0, 0.3, 1.0)
    assert abs(compute_backlog_growth(submits, commits, 12.0)) < 5.0
    submits = [index / 200.0 for index in range(2400)]
    commits = [1.0 + index / 100.0 for index in range(2400)]
    assert compute_backlog_growth(submits, commits, 12.0) == pytest.approx(100.0, rel=0.1)


def test_backlog_growth_is_not_judged_on_a_short_window() -> None:
    submits = [index / 200.0 for index in range(200)]
    commits: list[float | None] = [None] * 200
    assert compute_backlog_growth(submits, commits, 1.0) == 0.0


def fake_load_report(rate: float, seconds: float) -> dict[str, object]:
    submits, commits = steady_load(rate, seconds, 0.3, 1.0)
    count = len(submits)
    codes = [0] * count
    codes[-1] = 5  # one refused (any code other than OK and DUPLICATE)
    committed: list[float | None] = list(commits)
    committed[-1] = None
    return {"submit_ended_s": seconds,
            "summary": {"submit_lag_ms_p99": 4.0},
            "txs": {"hash": [f"{index:064x}" for index in range(count)],
                    "code": codes, "submit_s": submits, "committed_s": committed}}


def test_summarize_step_counts_and_times_from_the_load_report() -> None:
    step = summarize_step(fake_load_report(50.0, 10.0), 50.0, mempool=60, seconds=14.0)
    assert (step.txs_offered, step.txs_acknowledged, step.txs_committed) == (500, 499, 499)
    assert step.refused == 1 and step.missing == 0
    assert step.p50 is not None and 300.0 <= step.p50 <= 1300.0
    assert step.p50 <= step.p95 <= step.p99  # type: ignore[operator]
    assert step.committed == pytest.approx(50.0, rel=0.05)
    assert step.mempool == 60
    assert not step.sustained  # one refusal in 500 is over REFUSED_FRACTION_MAX
    assert step.reason == "1 txs refused"


# ------------------------------------------------------------------------------ JSON


def test_report_has_the_issue_fields_and_is_json() -> None:
    _, measure = fake_network(capacity=300.0)
    steps = search_max_rate(measure, 40.0)
    verify = VerifyRate(per_core=15_000.0, all_cores=29_000.0, cores=2)
    check = ExactlyOnce(acknowledged=100, committed_once=100, first_height=2, last_height=40)
    report = compose_report(verify=verify, validators=4, tx_kind="notary", tx_bytes=185,
                            steps=steps, latency=make_step(140.0), check=check,
                            config={"duration_s": 120.0},
                            load_average={"start": [1.0, 1.0, 1.0], "end": [2.0, 2.0, 2.0]})
    decoded = json.loads(json.dumps(report))
    for key in ("tps_max", "latency", "bound", "ratio", "verify_rate_per_core", "validators",
                "cores", "tx_bytes", "heights", "steps", "exactly_once"):
        assert key in decoded
    assert decoded["bound"] == 7500.0
    assert decoded["ratio"] == pytest.approx(decoded["tps_max"] / 7500.0, abs=1e-4)
    assert set(decoded["latency"]) >= {"p50", "p95", "p99"}
    assert decoded["heights"] == {"first": 2, "last": 40, "blocks": 39}
    assert decoded["exactly_once"]["ok"] is True
    for step in decoded["steps"]:
        assert set(step) >= {"offered", "committed", "p50", "p99", "mempool", "sustained"}


@pytest.mark.slow  # importing matplotlib takes seconds
def test_plot_draws_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _, measure = fake_network(capacity=300.0)
    steps = search_max_rate(measure, 40.0)
    report = compose_report(
        verify=VerifyRate(15_000.0, 29_000.0, 2), validators=4, tx_kind="notary",
        tx_bytes=185, steps=steps, latency=make_step(140.0), check=ExactlyOnce(),
        config={}, load_average={"start": [0.0, 0.0, 0.0]})
    suite.plot_report(report, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")


# ------------------------------------------------------------------------------ plumbing


def test_options_refuse_what_cannot_be_measured() -> None:
    for options in (SuiteOptions(tx_kind="voting"), SuiteOptions(validators=0),
                    SuiteOptions(duration_s=1.0)):
        with pytest.raises(LocalError):
            options.check()
    options = SuiteOptions(duration_s=120.0)
    assert options.step_s == pytest.approx(9.6)
    assert options.latency_s == pytest.approx(24.0)


def test_signers_split_into_groups_of_a_run_each() -> None:
    keys = [SigningKey.generate() for _ in range(10)]
    assert [len(group) for group in group_keys(keys, 4)] == [4, 4]
    assert [len(group) for group in group_keys(keys[:5], 4)] == [5]


def test_cli_bench_refuses_an_unknown_tx_kind_before_starting_anything() -> None:
    result = CliRunner().invoke(app, ["bench", "--tx-kind", "voting", "--duration", "5"])
    assert result.exit_code == 1
    assert "--tx-kind" in result.output


def test_cli_bench_subcommands_still_answer() -> None:
    for name in ("ledger", "network", "proofs", "postgres"):
        result = CliRunner().invoke(app, ["bench", name, "--help"])
        assert result.exit_code == 0, result.output


def test_postgres_client_checks_accept_a_signed_anchor_and_refuse_a_forged_one() -> None:
    from seoulchain.bench.ledger import presign_anchors
    from seoulchain.bench.postgres import check_and_row

    raw = presign_anchors([SigningKey.generate()], "seoul-bench-pg-1", 1,
                          lambda phase, done, total: None)[0]
    tx_hash, signer, nonce, service, method, stored = check_and_row(raw)
    assert (nonce, service, method, stored) == (1, "notary", "anchor", raw)
    assert len(tx_hash) == 32 and len(signer) == 32
    forged = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(LocalError):
        check_and_row(forged)


def test_options_refuse_a_tx_size_the_notary_cannot_carry() -> None:
    for tx_bytes in (100, 10_000):
        with pytest.raises(LocalError, match="--tx-bytes"):
            SuiteOptions(tx_bytes=tx_bytes).check()
    SuiteOptions(tx_bytes=2000).check()
    assert SuiteOptions().compute_metadata(suite.BENCH_CHAIN_ID) is None
    metadata = SuiteOptions(tx_bytes=2000).compute_metadata(suite.BENCH_CHAIN_ID)
    assert metadata is not None
    raw = presign_anchors([SigningKey.generate()], suite.BENCH_CHAIN_ID, 1,
                          lambda phase, done, total: None, metadata=metadata)[0]
    assert abs(len(raw) - 2000) <= 1


def test_cli_bench_lists_tx_bytes_and_refuses_a_size_out_of_reach_before_starting() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0 and "--tx-bytes" in result.output
    result = CliRunner().invoke(app, ["bench", "--tx-bytes", "100", "--duration", "5"])
    assert result.exit_code == 1
    assert "--tx-bytes 100 is out of reach" in result.output
