"""`seoulchain sim`: the summary line, replay commands for failing seeds, the canary rate."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from seoulchain.cli.sim import sim

app = typer.Typer()
app.command()(sim)
runner = CliRunner()


def test_cli_sim_campaign_prints_rates_and_the_summary_line() -> None:
    result = runner.invoke(app, ["--seeds", "3", "--start", "4"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == "seeds=3 violations=0 liveness_failures=0"
    assert any(line.startswith("simulated heights/s:") for line in lines)


def test_cli_sim_replays_one_seed_with_details() -> None:
    result = runner.invoke(app, ["--seed", "4"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("seed 4: n=")
    assert result.output.strip().endswith("seeds=1 violations=0 liveness_failures=0")


def test_cli_sim_canary_reports_the_detection_rate() -> None:
    result = runner.invoke(app, ["--seeds", "2", "--start", "1", "--canary", "--validators", "4"])
    assert result.exit_code == 0, result.output
    assert "canary detection rate: 2/2 = 100%" in result.output
    assert result.output.strip().endswith("seeds=2 violations=2 liveness_failures=0")


def test_cli_sim_failing_seed_prints_its_replay_command_and_exits_non_zero() -> None:
    """A canary seed the checkers miss is a failure; force one with a canary-free size."""
    result = runner.invoke(app, ["--seeds", "1", "--validators", "4", "--byzantine", "0",
                                 "--canary"])
    assert result.exit_code == 1
    assert "FAIL seed=0 canary not caught | replay: seoulchain sim --seed 0 --validators 4 " \
           "--byzantine 0 --canary" in result.output


def test_cli_sim_rejects_too_many_byzantine_validators() -> None:
    result = runner.invoke(app, ["--seeds", "1", "--validators", "4", "--byzantine", "2"])
    assert result.exit_code == 2
    assert "outside 0..f" in result.output
