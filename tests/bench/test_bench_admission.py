"""bench voting --admission: the option's refusals, and tiny runs against a real node (the
built-in engine, and the application under CometBFT) whose table reports the status latency
while the ballots are admitted and committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.bench.voting import ADMISSION_BALLOTS_MAX, check_cometbft_installed
from seoulchain.cli.main import app
from seoulchain.errors import LocalError
from seoulchain.node.abci import ABCI_PB_ENV, COMETBFT_BIN_ENV

# A CometBFT run of three ballots: start-up, the poll's opening margin (about 20 blocks of
# one second) and the ballots' block; far above the ~30 s it takes on the build machine.
COMETBFT_RUN_TIMEOUT_S = 240


def is_cometbft_installed() -> bool:
    try:
        check_cometbft_installed()
    except LocalError:
        return False
    return True


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


def test_cometbft_run_without_the_binary_is_refused_naming_the_install_script(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMETBFT_BIN_ENV, str(tmp_path / "no-cometbft"))
    result = CliRunner().invoke(app, ["bench", "voting", "--admission", "2",
                                      "--engine", "cometbft"])
    assert result.exit_code == 1
    assert "scripts/install-cometbft" in result.output and "no cometbft binary" in result.output


def test_cometbft_run_without_the_abci_bindings_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "cometbft"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv(COMETBFT_BIN_ENV, str(binary))
    monkeypatch.setenv(ABCI_PB_ENV, str(tmp_path / "no-bindings"))
    result = CliRunner().invoke(app, ["bench", "voting", "--admission", "2",
                                      "--engine", "cometbft"])
    assert result.exit_code == 1
    assert "no ABCI protobuf bindings" in result.output
    assert "scripts/install-cometbft" in result.output


def test_an_unknown_engine_is_refused_by_the_parser() -> None:
    result = CliRunner().invoke(app, ["bench", "voting", "--admission", "2",
                                      "--engine", "tendermint"])
    assert result.exit_code == 2 and "--engine" in result.output


def test_engine_does_not_apply_to_the_in_process_ballots_run() -> None:
    result = CliRunner().invoke(app, ["bench", "voting", "--ballots", "1",
                                      "--engine", "cometbft"])
    assert result.exit_code == 1
    assert "--engine applies to --admission" in result.output


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


@pytest.mark.e2e  # a CometBFT node and the application, a poll set up, three ballots committed
@pytest.mark.timeout(COMETBFT_RUN_TIMEOUT_S)
@pytest.mark.skipif(not is_cometbft_installed(),
                    reason="no CometBFT binary or ABCI bindings; run scripts/install-cometbft")
def test_tiny_admission_run_under_cometbft_commits_every_ballot(tmp_path: Path) -> None:
    out = tmp_path / "admission.json"
    result = CliRunner().invoke(app, ["bench", "voting", "--admission", "3", "--workers", "1",
                                      "--engine", "cometbft", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["engine"] == "cometbft" and figures["ballots"] == 3
    assert figures["open_blocks"] > 3  # the poll opened after its ballots were made
    assert figures["committed_s"] >= figures["admitted_s"] > 0
    assert figures["status_ms_max"] >= figures["status_ms_p99"] >= figures["status_ms_p50"] > 0
    assert "committed under cometbft" in result.output
    assert f"{figures['committed_s']} s" in result.output
