"""bench voting: a tiny poll over worker processes tallies to the sum of its choices, the
options' refusals, and belenios-tool's verdict on the exported archive."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.bench import voting as voting_bench
from seoulchain.bench.voting import PLAINTEXTS, run_voting_bench
from seoulchain.cli.main import app
from seoulchain.errors import LocalError
from seoulchain.voting import create_ballot


def expected_sum(ballots: int, seed: int) -> list[list[int]]:
    """Return the per-choice sum of the plaintexts the bench draws for `ballots` and `seed`."""
    rng = random.Random(seed)
    drawn = [rng.choice(PLAINTEXTS) for _ in range(ballots)]
    return [[sum(plain[question][choice] for plain in drawn)
             for choice in range(len(PLAINTEXTS[0][question]))]
            for question in range(len(PLAINTEXTS[0]))]


def test_tiny_poll_over_two_workers_tallies_to_the_sum_of_the_choices() -> None:
    seen: list[tuple[str, int, int]] = []
    figures = run_voting_bench(4, workers=2, seed=3,
                               progress=lambda phase, done, total: seen.append(
                                   (phase, done, total)))
    assert figures["result"] == expected_sum(4, 3)
    assert figures["workers"] == 2 and figures["ballots"] == 4
    assert ("verify", 4, 4) in seen and ("create", 4, 4) in seen
    assert figures["verify_per_s"] > 0 and figures["ballot_bytes_mean"] > 10_000


def test_a_tally_that_differs_from_the_choices_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers are forked, so they make every ballot with this replacement: all choose the first.
    monkeypatch.setattr(voting_bench, "create_ballot",
                        lambda election, credential, plaintext: create_ballot(
                            election, credential, PLAINTEXTS[0]))
    assert expected_sum(4, 0) != [[4, 0], [0, 4, 0, 0]]  # seed 0 draws more than the first
    with pytest.raises(AssertionError, match="differs from the plaintexts' sum"):
        run_voting_bench(4, workers=2, seed=0)


@pytest.mark.parametrize("workers", [0, voting_bench.WORKERS_MAX + 1])
def test_worker_count_out_of_range_is_refused(workers: int) -> None:
    with pytest.raises(LocalError, match="workers must be"):
        run_voting_bench(4, workers=workers)


def test_cli_refuses_zero_workers() -> None:
    result = CliRunner().invoke(app, ["bench", "voting", "--ballots", "4", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output


def test_missing_belenios_tool_is_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LocalError, match="scripts/install-belenios"):
        run_voting_bench(4, workers=2, belenios_dir=tmp_path / "archive")


@pytest.mark.skipif(shutil.which("belenios-tool") is None, reason="belenios-tool not installed")
def test_a_directory_already_in_use_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other.bel").write_bytes(b"")
    with pytest.raises(LocalError, match="new or empty directory"):
        run_voting_bench(4, workers=2, belenios_dir=tmp_path)


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("belenios-tool") is None, reason="belenios-tool not installed")
def test_cli_export_passes_belenios_tool_verify(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = CliRunner().invoke(app, [
        "bench", "voting", "--ballots", "4", "--workers", "2",
        "--belenios-verify", str(tmp_path / "archive"), "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["belenios_verdict"] == "pass"
    assert "all checks passed" in figures["belenios_output"]
    assert Path(figures["archive"]).parent == tmp_path / "archive"
    assert figures["result"] == expected_sum(4, 0)
