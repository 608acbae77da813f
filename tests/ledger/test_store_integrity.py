"""Block store integrity: a damaged block or SQLite page is refused with a clear StorageError."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.errors import StorageError
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import init_home
from seoulchain.node.node import Node
from tests.conftest import LocalChain, commit_next_height

BLOCKS = 4


@pytest.fixture
def built(chain: LocalChain) -> LocalChain:
    for _ in range(BLOCKS):
        chain.commit(*[chain.make_tx() for _ in range(3)])
    return chain


def read_row(path: Path, sql: str, *params: object) -> tuple[object, ...]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchone()
    finally:
        db.close()


def write(path: Path, sql: str, *params: object) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def flip_byte(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def test_every_byte_flip_in_a_stored_block_is_refused_on_read(built: LocalChain) -> None:
    (data,) = read_row(built.path, "SELECT data FROM blocks WHERE height = 2")
    for offset in range(len(data)):
        write(built.path, "UPDATE blocks SET data = ? WHERE height = 2", flip_byte(data, offset))
        for read in (built.store.get_block, built.store.get_block_bytes):
            with pytest.raises(StorageError, match=r"stored block 2 is corrupt.*state-sync"):
                read(2)
    write(built.path, "UPDATE blocks SET data = ? WHERE height = 2", data)
    assert built.store.get_block_bytes(2) == data
    assert built.store.get_block(2).block_id() == built.store.get_commit(2).block_id


@pytest.mark.parametrize("column", ["data", "block_id"])
def test_corrupt_block_is_logged_with_its_height(built: LocalChain, column: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    (value,) = read_row(built.path, f"SELECT {column} FROM blocks WHERE height = 3")
    write(built.path, f"UPDATE blocks SET {column} = ? WHERE height = 3", flip_byte(value, 20))
    with caplog.at_level(logging.ERROR, logger="seoulchain.store"), \
            pytest.raises(StorageError, match="block 3"):
        built.store.get_block(3)
    assert any("block 3 is corrupt" in record.getMessage() for record in caplog.records)
    assert built.store.get_block(2) is not None  # the rest of the chain is still served


def test_commit_that_is_not_the_stored_blocks_is_refused(built: LocalChain) -> None:
    (other,) = read_row(built.path, "SELECT data FROM commits WHERE height = 2")
    write(built.path, "UPDATE commits SET data = ? WHERE height = 3", other)
    with pytest.raises(StorageError, match="commit 3 is corrupt"):
        built.store.get_commit(3)


def page_offset(path: Path, table: str) -> tuple[int, int]:
    """Return the byte offset and size of `table`'s root page in the database file."""
    (page_size,) = read_row(path, "PRAGMA page_size")
    (root,) = read_row(path, "SELECT rootpage FROM sqlite_master WHERE name = ?", table)
    return (root - 1) * page_size, page_size


def damage_page(path: Path, table: str) -> None:
    """Overwrite `table`'s root page with garbage, as a failing disk might."""
    offset, size = page_offset(path, table)
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(bytes([0xA5]) * size)


def test_damaged_sqlite_page_under_the_blocks_is_a_storage_error(built: LocalChain) -> None:
    built.store.close()  # checkpoints the SQLite WAL into the database file
    damage_page(built.path, "blocks")
    store = BlockStore(built.path)
    try:
        assert store.get_tip().height == BLOCKS  # other tables are still readable
        with pytest.raises(StorageError, match=r"is damaged.*malformed.*state-sync"):
            store.get_block(2)
        with pytest.raises(StorageError, match="is damaged"):
            list(store.iter_blocks())
    finally:
        store.close()


def test_damaged_sqlite_page_under_the_metadata_fails_the_open(built: LocalChain) -> None:
    built.store.close()
    damage_page(built.path, "meta")
    with pytest.raises(StorageError, match=r"cannot open block store.*is damaged"):
        BlockStore(built.path)


# --------------------------------------------------------------------------- via the API


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    home = init_home(tmp_path / "home", chain_id="integrity-test")
    running = Node(home)
    key = home.load_key("operator")
    for nonce in range(1, 4):
        running.submit(Transaction.create(
            key, chain_id="integrity-test", nonce=nonce, expiry_height=100, service="notary",
            method="anchor", args={"doc_hash": os.urandom(32), "kind": "permit"}).encode())
        commit_next_height(running)
    yield running
    running.close()


@pytest.mark.parametrize("where", ["header", "body"])
def test_api_refuses_to_serve_a_corrupt_block(node: Node, where: str) -> None:
    api = TestClient(create_app(node), raise_server_exceptions=False)
    path = node.home.store_path
    (data,) = read_row(path, "SELECT data FROM blocks WHERE height = 2")
    offset = 20 if where == "header" else len(data) - 10
    write(path, "UPDATE blocks SET data = ? WHERE height = 2", flip_byte(data, offset))
    for url in ("/v1/blocks/2", "/v1/blocks/2?format=cbor", "/v1/light/2"):
        response = api.get(url)
        assert response.status_code >= 400, url
        assert "block 2 is corrupt" in response.json()["detail"], url
    assert api.get("/v1/blocks/3").status_code == 200
    assert api.get("/v1/light/3").status_code == 200
