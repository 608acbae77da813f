"""The voting benchmark runs end to end and reports every figure (values are not asserted)."""

from __future__ import annotations

import pytest

from seoulchain.bench.voting import run_voting_bench
from seoulchain.errors import LocalError


@pytest.mark.slow
def test_voting_bench_reports_its_figures() -> None:
    figures = run_voting_bench(2, trustees=1)
    assert figures["ballots"] == 2 and figures["choices_per_ballot"] == 6
    assert set(figures) >= {"ballot_bytes_mean", "verify_ms_median", "verify_ballots_per_s",
                            "tally_ms", "decrypt_ms_per_trustee", "verify_and_tally_s"}
    with pytest.raises(LocalError):
        run_voting_bench(0)
