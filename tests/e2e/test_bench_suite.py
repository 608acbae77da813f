"""bench: a short smoke of `seoulchain bench` against real validator processes, and the
PostgreSQL baseline against a throwaway cluster (skipped, saying how to install it, when
PostgreSQL is not installed; CI installs it and requires it).

Only completion and the JSON's shape are checked: no figure is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seoulchain.errors import LocalError

pytestmark = pytest.mark.e2e

# Ten seconds of load (the CI smoke), plus network start, signing and drains.
SMOKE_DURATION_S = 10
SMOKE_TIMEOUT_S = 280


def test_bench_smoke_completes_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "seoulchain", "bench", "--validators", "4", "--duration",
         str(SMOKE_DURATION_S), "--json-out", str(out)],
        capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    for key in ("tps_max", "bound", "ratio", "verify_rate_per_core", "cores", "tx_bytes"):
        assert isinstance(report[key], int | float), key
    assert report["validators"] == 4
    assert set(report["latency"]) >= {"p50", "p95", "p99"}
    assert report["heights"]["last"] >= report["heights"]["first"] >= 1
    assert report["steps"] and all({"offered", "committed", "p50", "p99", "mempool"}
                                   <= set(step) for step in report["steps"])
    assert report["exactly_once"]["ok"] is True
    # Each step names the heights it spanned, read back from the commits.
    assert all(step["heights"] >= 1 and 0 <= step["later_round_heights"] <= step["heights"]
               for step in report["steps"])
    assert "tps_max" in result.stdout


def require_postgres() -> None:
    """Skip, saying how to install it, when PostgreSQL is missing; fail instead where required.

    CI sets SEOULCHAIN_REQUIRE_POSTGRES=1 after running scripts/install-postgres, so a
    broken install fails the suite instead of skipping this tier silently.
    """
    from seoulchain.bench.postgres import find_postgres_bin, import_psycopg

    try:
        import_psycopg()
        find_postgres_bin()
    except LocalError as exc:
        reason = f"{exc} (run scripts/install-postgres to include this test)"
        if os.environ.get("SEOULCHAIN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SEOULCHAIN_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)


def test_postgres_baseline_inserts_checked_records_append_only() -> None:
    require_postgres()
    from seoulchain.bench.postgres import run_postgres_bench

    result = run_postgres_bench(txs=300, clients=2, batch_rows=1)
    assert result.rows == 300
    assert result.append_only
    assert result.tx_per_s > 0 and result.latency_ms_p50 is not None
