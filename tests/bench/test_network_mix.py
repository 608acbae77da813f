"""`seoulchain bench network --mix`: option parsing, the mix's load, and the results check.

The network itself is not started here (that takes a minute on a loaded machine); the run
function is replaced by one that records what the command asked of it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seoulchain.bench import network as network_bench
from seoulchain.bench.mix import CITY_MIX_WEIGHTS, MixWorkload
from seoulchain.bench.network import NetworkBenchResult, count_results_not_ok, presign_load
from seoulchain.cli.main import app
from seoulchain.ledger.types import Transaction

RUNNER = CliRunner()
RESULT = NetworkBenchResult(
    validators=4, txs_offered=20, rate_offered_tx_per_s=10.0, batch_txs=5,
    commit_pause_ms=1000, txs_acknowledged=20, txs_committed=20, committed_tx_per_s=9.5,
    latency_ms_p50=200.0, latency_ms_p90=300.0, latency_ms_p99=400.0, latency_ms_max=450.0,
    submit_lag_ms_p99=2.0, blocks=3, txs_acknowledged_not_committed=0,
    txs_committed_more_than_once=0, agreement_height=5, forks=0, refused_by_code={},
    directory=None, mix="city")


def run_bench(monkeypatch: pytest.MonkeyPatch, result: NetworkBenchResult,
              *args: str) -> tuple[Any, dict[str, Any]]:
    asked: dict[str, Any] = {}

    def fake_run(**kwargs: Any) -> NetworkBenchResult:
        asked.update(kwargs)
        return result

    monkeypatch.setattr(network_bench, "run_network_bench", fake_run)
    return RUNNER.invoke(app, ["bench", "network", *args]), asked


def test_mix_city_is_passed_to_the_run_and_named_in_the_report(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    shown, asked = run_bench(monkeypatch, RESULT, "--mix", "city", "--txs", "20", "--rate",
                             "10", "--json-out", str(out))
    assert shown.exit_code == 0, shown.output
    assert asked["mix"] == "city" and asked["txs"] == 20
    assert "20 txs of the city mix offered at 10 tx/s" in shown.stdout
    assert "p50 200.0 ms, p99 400.0 ms" in shown.stdout
    assert '"mix": "city"' in out.read_text()


def test_anchors_remain_the_default_load(monkeypatch: pytest.MonkeyPatch) -> None:
    shown, asked = run_bench(monkeypatch, replace(RESULT, mix=None), "--txs", "20")
    assert shown.exit_code == 0, shown.output
    assert asked["mix"] is None and "20 txs offered at" in shown.stdout


def test_unknown_mix_is_refused_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    shown, asked = run_bench(monkeypatch, RESULT, "--mix", "town")
    assert shown.exit_code != 0 and asked == {}
    assert "no service mix 'town'; choose from city" in " ".join(shown.output.split())


def test_a_committed_tx_that_did_not_execute_ok_fails_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    shown, _ = run_bench(monkeypatch, replace(RESULT, results_not_ok={"REFUSED": 3}),
                         "--mix", "city")
    assert shown.exit_code == 2
    assert "committed txs that did not execute OK: 3 REFUSED" in shown.stdout


class PagedClient:
    """Serves `/v1/blocks/{h}/txs` pages of result codes, two items a page."""

    def __init__(self, codes: dict[int, list[int]]):
        self.codes = codes

    def get_json(self, path: str, limit: int, cursor: str | None = None) -> dict[str, Any]:
        height = int(path.split("/")[3])
        start = int(cursor or 0)
        items = [{"code": code} for code in self.codes[height][start:start + 2]]
        more = start + 2 < len(self.codes[height])
        return {"items": items, "next_cursor": str(start + 2) if more else None}


def test_results_are_counted_over_every_page_of_every_height() -> None:
    client = PagedClient({1: [11, 11], 2: [0, 0, 0, 11, 9], 3: [12]})
    assert count_results_not_ok(client, 2, 3) == {"REFUSED": 1, "UNAUTHORIZED": 1,  # type: ignore[arg-type]
                                                  "INTERNAL": 1}


class ChainOnly:
    """The part of a network `presign_load` reads for a mix: its chain id."""

    chain_id = "seoul-bench-net-1"


def test_mix_load_is_signed_after_its_setup_by_keys_granted_in_genesis() -> None:
    workload = MixWorkload(CITY_MIX_WEIGHTS)
    roles = workload.roles()
    txs, setup = presign_load(ChainOnly(), 40, workload,  # type: ignore[arg-type]
                              lambda *progress: None)
    assert len(txs) == 40 and len(setup) == 2
    decoded = [Transaction.decode(raw) for raw in txs]
    assert {tx.service for tx in decoded} == set(CITY_MIX_WEIGHTS)
    for tx in decoded:  # each service's signers hold its role from genesis
        if tx.service in ("vehicle", "document", "notary"):
            role = {"vehicle": "vehicle.registrar", "document": "document.issuer",
                    "notary": "notary.issuer"}[tx.service]
            assert tx.signer in roles[role]
    # Labor's employers proposed in setup with nonce 1: the timed work records follow.
    assert [tx.nonce for tx in decoded if tx.service == "labor"] == [2] * 4
