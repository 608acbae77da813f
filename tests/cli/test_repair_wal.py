"""`seoulchain repair-wal`: a WAL damaged before its end stops the node until it is cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.cli.main import app
from seoulchain.consensus.wal import HEADER_BYTES, WalDamaged
from seoulchain.crypto import sha256
from seoulchain.node.bft import WAL_FILE
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from seoulchain.node.wal import WriteAheadLog

runner = CliRunner()


def make_networked_home(root: Path) -> Home:
    """A fresh validator home that runs BFT consensus (a peer is configured)."""
    home = init_home(root, chain_id="repair-test")
    config = home.load_config()
    config.p2p.peers = [f"{sha256(b'peer').hex()}@127.0.0.1:9"]
    config.save(home.config_path)
    return home


def write_damaged_wal(path: Path) -> None:
    """Three records, the first damaged after it was written: intact ones follow it."""
    with WriteAheadLog(path, fsync=False) as wal:
        for payload in (b"first record", b"second record", b"third record"):
            wal.append(payload)
    data = bytearray(path.read_bytes())
    data[HEADER_BYTES + 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_damage_in_the_middle_stops_the_node_until_repair_wal_cuts_it(tmp_path: Path) -> None:
    home = make_networked_home(tmp_path / "home")
    wal_path = home.data_dir / WAL_FILE
    write_damaged_wal(wal_path)
    damaged = wal_path.read_bytes()
    with pytest.raises(WalDamaged, match=r"damaged at byte 0 .*intact records follow"):
        Node(home)
    assert wal_path.read_bytes() == damaged  # nothing is cut without the operator
    result = runner.invoke(app, ["repair-wal", "--home", str(home.root)])
    assert result.exit_code == 0, result.output
    assert "kept the first 0 records" in result.output
    assert "intact records after it included" in result.output
    assert wal_path.stat().st_size == 0
    Node(home).close()


def test_repair_wal_on_an_intact_log_changes_nothing(tmp_path: Path) -> None:
    home = make_networked_home(tmp_path / "home")
    wal_path = home.data_dir / WAL_FILE
    with WriteAheadLog(wal_path, fsync=False) as wal:
        wal.append(b"only record")
    before = wal_path.read_bytes()
    result = runner.invoke(app, ["repair-wal", "--home", str(home.root)])
    assert result.exit_code == 0 and "no damage; nothing changed" in result.output
    assert wal_path.read_bytes() == before
