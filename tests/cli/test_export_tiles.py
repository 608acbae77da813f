"""`seoulchain export-tiles`: certified checkpoints, incremental re-export, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from seoulchain.cli.main import app
from seoulchain.consensus.messages import verify_commit
from seoulchain.ledger.types import BlockHeader, Commit, Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.proofs.logtree import compute_leaf_hash, compute_range_root
from seoulchain.proofs.tiles import (
    CERTIFICATE_NAME,
    Tile,
    TileReader,
    read_checkpoint,
)
from tests.conftest import commit_next_height

CHAIN_ID = "tiles-cli-test"
runner = CliRunner()


def grow_chain(home: Home, blocks: list[int]) -> list[bytes]:
    """Open the node, commit a block per entry of `blocks` with that many txs, close it."""
    node = Node(home)
    key = home.load_key("operator")
    start = node.engine.tip.log_size
    raws = []
    try:
        for count in blocks:
            for _ in range(count):
                tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=start + len(raws) + 1,
                                        expiry_height=10_000, service="notary",
                                        method="anchor",
                                        args={"doc_hash": os.urandom(32), "kind": "permit"})
                assert node.submit(tx.encode()).ok
                raws.append(tx.encode())
            commit_next_height(node)
    finally:
        node.close()
    return raws


def export(home: Path, out: Path, *extra: str):
    return runner.invoke(app, ["export-tiles", "--home", str(home), str(out), "--quiet",
                               *extra])


def test_export_writes_tiles_and_a_commit_certified_checkpoint(tmp_path: Path) -> None:
    home = init_home(tmp_path / "home", chain_id=CHAIN_ID)
    raws = grow_chain(home, [200, 100])
    out = tmp_path / "tiles"
    result = export(home.root, out)
    assert result.exit_code == 0, result.output
    checkpoint = read_checkpoint(out)
    assert (checkpoint.origin, checkpoint.size) == (f"seoulchain/{CHAIN_ID}", 300)
    reader = TileReader(out, checkpoint.size)
    assert compute_range_root(0, 300, reader.read_node) == checkpoint.root
    assert reader.read_entries(Tile(0, 1, 44)) == raws[256:]
    assert reader.read_node(0, 7) == compute_leaf_hash(raws[7])
    # The certificate: a header whose log root is the checkpoint's, and its valid commit.
    certificate = json.loads((out / CERTIFICATE_NAME).read_text())
    assert certificate["checkpoint"] == (out / "checkpoint").read_text()
    header = BlockHeader.decode(bytes.fromhex(certificate["header_cbor"]))
    commit = Commit.decode(bytes.fromhex(certificate["commit_cbor"]))
    assert (header.log_size, header.log_root) == (checkpoint.size, checkpoint.root)
    assert header.block_id().hex() == certificate["block_id"]
    verify_commit(CHAIN_ID, home.load_genesis().validators, commit, header.block_id(),
                  header.height)


def test_reexport_after_growth_writes_only_the_new_tiles(tmp_path: Path) -> None:
    home = init_home(tmp_path / "home", chain_id=CHAIN_ID)
    grow_chain(home, [150, 150])
    out = tmp_path / "tiles"
    assert export(home.root, out).exit_code == 0
    first = read_checkpoint(out)
    grow_chain(home, [10])
    result = export(home.root, out)
    assert result.exit_code == 0, result.output
    assert "1 tiles and 1 entry bundles written" in result.output
    assert not (out / "tile/0/001.p/44").exists() and (out / "tile/0/001.p/54").exists()
    assert read_checkpoint(out).size == first.size + 10


def test_export_errors_are_clear(tmp_path: Path) -> None:
    result = export(tmp_path / "nowhere", tmp_path / "tiles")
    assert result.exit_code == 1 and "not a node home" in result.output
    home = init_home(tmp_path / "home", chain_id=CHAIN_ID)
    result = export(home.root, tmp_path / "tiles")
    assert result.exit_code == 1 and "no chain data" in result.output
    Node(home).close()
    result = export(home.root, tmp_path / "tiles")
    assert result.exit_code == 1 and "no committed block" in result.output
    grow_chain(home, [3])
    (tmp_path / "occupied").write_text("a file")
    result = export(home.root, tmp_path / "occupied")
    assert result.exit_code == 1 and "not a directory" in result.output
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "tile").write_text("a file where a directory must go")
    result = export(home.root, tmp_path / "ro")
    assert result.exit_code == 1 and "cannot write" in result.output
