"""The single-validator ledger benchmark builds a real, auditable chain and reports growth."""

from __future__ import annotations

from pathlib import Path

from seoulchain.bench.ledger import run_ledger_bench
from seoulchain.client.audit import audit_chain
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.node.home import Home


def test_ledger_bench_commits_every_tx_and_records_growth_checkpoints(tmp_path: Path) -> None:
    result = run_ledger_bench(tmp_path / "chain", 1200, 400, lambda *args: None)
    assert (result.txs, result.blocks) == (1200, 3)
    assert [point.txs for point in result.checkpoints] == [1200]
    point = result.checkpoints[0]
    assert point.span_tx_per_s > 0 and point.rss_mb > 0 and point.disk_bytes_per_tx > 0
    home = Home(tmp_path / "chain")
    store = BlockStore(home.store_path)
    try:
        report = audit_chain(home.load_genesis(), store, load_services())
    finally:
        store.close()
    assert report.ok and report.txs == 1200
