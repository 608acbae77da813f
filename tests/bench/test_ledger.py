"""The single-validator ledger benchmark builds a real, auditable chain and reports growth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.bench.ledger import (
    compute_padding_metadata,
    get_anchor_bytes_range,
    run_ledger_bench,
    sign_anchor,
)
from seoulchain.cli.main import app
from seoulchain.client.audit import audit_chain
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home
from seoulchain.services.notary import AnchorArgs

# A padded tx is the target size for a fresh signer's first nonce (to a byte); later nonces
# encode a byte or two longer.
TX_BYTES_SLACK = 3


def test_ledger_bench_commits_every_tx_and_records_growth_checkpoints(tmp_path: Path) -> None:
    result = run_ledger_bench(tmp_path / "chain", 1200, 400, lambda *args: None)
    assert (result.txs, result.blocks) == (1200, 3)
    assert [point.txs for point in result.checkpoints] == [1200]
    point = result.checkpoints[0]
    assert point.span_tx_per_s > 0 and point.rss_mb > 0 and point.disk_bytes_per_tx > 0
    # The stage breakdown names where a tx's time goes; the timed stages were really run.
    assert list(result.stages_us) == ["signature", "admission_other", "execution",
                                      "state_tree", "store_commit"]
    assert all(result.stages_us[name] > 0
               for name in ("signature", "execution", "state_tree", "store_commit"))
    assert result.cpu_us_per_tx > 0
    home = Home(tmp_path / "chain")
    store = BlockStore(home.store_path)
    try:
        report = audit_chain(home.load_genesis(), store, load_services())
    finally:
        store.close()
    assert report.ok and report.txs == 1200


def test_ledger_bench_pads_txs_that_the_notary_admits_and_reports_their_size(
        tmp_path: Path) -> None:
    result = run_ledger_bench(tmp_path / "chain", 200, 100, lambda *args: None, tx_bytes=2000)
    assert (result.txs, result.blocks) == (200, 2)
    assert abs(result.tx_bytes - 2000) <= TX_BYTES_SLACK
    store = BlockStore(Home(tmp_path / "chain").store_path)
    try:
        blocks = [store.get_block(height) for height in range(1, result.blocks + 1)]
        raws = [raw for block in blocks if block is not None for raw in block.txs]
        records = [store.get_tx(Transaction.decode(raw).hash()) for raw in raws]
    finally:
        store.close()
    assert len(raws) == 200
    assert all(record is not None and record.code == ResultCode.OK for record in records)
    for raw in raws:
        tx = Transaction.decode(raw)
        assert abs(len(raw) - 2000) <= TX_BYTES_SLACK
        assert AnchorArgs.model_validate(tx.args).metadata == tx.args["metadata"]


@pytest.mark.parametrize("tx_bytes", [212, 236, 500, 1000, 1264, 2000, 4000, 4445])
def test_padding_metadata_reaches_the_target_within_the_notary_schema(tx_bytes: int) -> None:
    metadata = compute_padding_metadata(tx_bytes, "seoul-bench-1")
    args = AnchorArgs.model_validate({"doc_hash": bytes(32), "kind": "bench",
                                      "metadata": metadata})
    assert args.metadata == metadata
    raw = sign_anchor([SigningKey.generate()], "seoul-bench-1", 0, metadata=metadata)
    assert abs(len(raw) - tx_bytes) <= 1
    assert Transaction.decode(raw).args["metadata"] == metadata


def test_padding_of_the_bare_anchor_size_is_no_metadata() -> None:
    bare, smallest, largest = get_anchor_bytes_range("seoul-bench-1")
    assert bare < smallest < largest
    assert compute_padding_metadata(bare, "seoul-bench-1") == {}
    raw = sign_anchor([SigningKey.generate()], "seoul-bench-1", 0)
    assert len(raw) == bare and "metadata" not in Transaction.decode(raw).args


def test_padding_refuses_sizes_out_of_reach_naming_the_range(tmp_path: Path) -> None:
    bare, smallest, largest = get_anchor_bytes_range("seoul-bench-1")
    for tx_bytes in (0, bare - 1, bare + 1, smallest - 1, largest + 1, 100_000):
        with pytest.raises(LocalError, match=f"{bare} bytes bare or {smallest}..{largest}"):
            compute_padding_metadata(tx_bytes, "seoul-bench-1")
    with pytest.raises(LocalError, match="out of reach"):
        run_ledger_bench(tmp_path / "chain", 10, 10, lambda *args: None, tx_bytes=largest + 1)
    assert not (tmp_path / "chain").exists()


def test_cli_bench_ledger_lists_tx_bytes_and_refuses_a_size_out_of_reach(
        tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "ledger", "--help"])
    assert result.exit_code == 0 and "--tx-bytes" in result.output
    result = CliRunner().invoke(app, ["bench", "ledger", "--home", str(tmp_path / "chain"),
                                      "--tx-bytes", "10000"])
    assert result.exit_code == 1 and "out of reach" in result.output
    assert not (tmp_path / "chain").exists()


def read_committed(home_dir: Path) -> list[tuple[str, ResultCode]]:
    """Return every committed tx's service and result code, in chain order."""
    store = BlockStore(Home(home_dir).store_path)
    try:
        out = []
        height = 1
        while (block := store.get_block(height)) is not None:
            height += 1
            for raw in block.txs:
                tx = Transaction.decode(raw)
                record = store.get_tx(tx.hash())
                assert record is not None
                out.append((tx.service, record.code))
        return out
    finally:
        store.close()


def test_cli_bench_ledger_city_mix_commits_every_service_tx_and_reports_each(
        tmp_path: Path) -> None:
    json_path = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "ledger", "--home", str(tmp_path / "bench"),
                                      "--txs", "60", "--block-txs", "20", "--mix", "city",
                                      "--json-out", str(json_path)])
    assert result.exit_code == 0, result.output
    services = ["vehicle", "document", "funds", "labor", "mileage", "notary"]
    for name in [*services, "mix city"]:
        assert name in result.output
    report = json.loads(json_path.read_text())
    assert (report["txs"], report["block_txs"], report["mix"]) == (60, 20, "city")
    assert list(report["services"]) == services
    assert set(report["mix_weights"]) == set(services)
    runs = {**report["services"], "mix-city": report["mix_result"]}
    for name, run in runs.items():
        assert (run["txs"], run["blocks"]) == (60, 3)
        assert run["tx_per_s"] > 0 and run["home"] == str(tmp_path / "bench" / name)
        committed = read_committed(tmp_path / "bench" / name)
        assert committed and all(code == ResultCode.OK for _, code in committed)
        expected = set(services) if name == "mix-city" else {name}
        assert {service for service, _ in committed} == expected


def test_cli_bench_ledger_runs_only_the_named_services_and_refuses_unknown_ones(
        tmp_path: Path) -> None:
    json_path = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "ledger", "--home", str(tmp_path / "a"),
                                      "--txs", "10", "--block-txs", "10", "--service",
                                      "labor", "--service", "mileage",
                                      "--json-out", str(json_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(json_path.read_text())
    assert list(report["services"]) == ["labor", "mileage"] and report["mix_result"] is None
    for arguments in (["--service", "parking"], ["--mix", "village"],
                      ["--service", "notary", "--tx-bytes", "500"]):
        result = CliRunner().invoke(app, ["bench", "ledger", "--home", str(tmp_path / "b"),
                                          "--txs", "10", *arguments])
        assert result.exit_code == 1 and arguments[1] in result.output
        assert not (tmp_path / "b").exists()
