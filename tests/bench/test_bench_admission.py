"""bench voting --admission: the option's refusals, and a tiny run against a real node whose
table reports the status latency while the ballots are admitted and committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.bench.voting import ADMISSION_BALLOTS_MAX
from seoulchain.cli.main import app


def test_more_ballots_than_one_batch_holds_are_refused_before_any_node_starts() -> None:
    result = CliRunner().invoke(app, ["bench", "voting", "--admission",
                                      str(ADMISSION_BALLOTS_MAX + 1)])
    assert result.exit_code == 1
    assert f"1 to {ADMISSION_BALLOTS_MAX} ballots" in result.output


def test_zero_ballots_are_refused_by_the_parser() -> None:
    result = CliRunner().invoke(app, ["bench", "voting", "--admission", "0"])
    assert result.exit_code == 2 and "--admission" in result.output


def test_belenios_export_does_not_combine_with_admission(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "voting", "--admission", "2",
                                      "--belenios-verify", str(tmp_path / "archive")])
    assert result.exit_code == 1
    assert "does not apply to --admission" in result.output
    assert not (tmp_path / "archive").exists()


@pytest.mark.slow  # a real `seoulchain start` process, a poll set up, three ballots committed
def test_tiny_admission_run_prints_the_status_latency_table(tmp_path: Path) -> None:
    out = tmp_path / "admission.json"
    result = CliRunner().invoke(app, ["bench", "voting", "--admission", "3", "--workers", "1",
                                      "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["ballots"] == 3 and figures["status_requests"] >= 1
    assert figures["committed_s"] >= figures["admitted_s"] > 0
    assert figures["status_ms_max"] >= figures["status_ms_p99"] >= figures["status_ms_p50"] > 0
    assert "status latency p50 / p99 / max" in result.output
    assert f"{figures['committed_s']} s" in result.output
