"""Offline audit: passes on an intact chain, names the first bad height when altered."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from seoulchain.client.audit import audit_chain
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from tests.conftest import LocalChain

BLOCKS = 6


@pytest.fixture
def built(chain: LocalChain) -> LocalChain:
    for _ in range(BLOCKS):
        chain.commit(*[chain.make_tx() for _ in range(4)])
    chain.store.close()
    return chain


def audit(chain: LocalChain) -> object:
    store = BlockStore(chain.path)
    try:
        return audit_chain(chain.genesis, store, load_services())
    finally:
        store.close()


def tamper(chain: LocalChain, sql: str, *params: object) -> None:
    db = sqlite3.connect(chain.path)
    db.execute(sql, params)
    db.commit()
    db.close()


def flip_byte(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def read(chain: LocalChain, sql: str, *params: object) -> bytes:
    db = sqlite3.connect(chain.path)
    value = db.execute(sql, params).fetchone()[0]
    db.close()
    return value


def test_intact_chain_passes(built: LocalChain) -> None:
    report = audit(built)
    assert report.ok, report.failure
    assert report.blocks == BLOCKS
    assert report.txs == 4 * BLOCKS


@pytest.mark.parametrize("offset_from_end", [1, 40, 120, 300])
def test_any_altered_block_byte_fails_at_that_height(built: LocalChain,
                                                     offset_from_end: int) -> None:
    data = read(built, "SELECT data FROM blocks WHERE height = 4")
    tamper(built, "UPDATE blocks SET data = ? WHERE height = 4",
           flip_byte(data, len(data) - offset_from_end))
    report = audit(built)
    assert not report.ok
    assert report.bad_height in (4, 5)  # block 5 embeds block 4's commit
    assert report.bad_height == 4 or "embedded commit" in report.failure


def test_every_single_byte_flip_in_a_block_is_detected(built: LocalChain) -> None:
    data = read(built, "SELECT data FROM blocks WHERE height = 2")
    for offset in range(0, len(data), 7):
        tamper(built, "UPDATE blocks SET data = ? WHERE height = 2", flip_byte(data, offset))
        assert not audit(built).ok, f"flip at byte {offset} went unnoticed"
    tamper(built, "UPDATE blocks SET data = ? WHERE height = 2", data)
    assert audit(built).ok


def test_forged_commit_signature_fails(built: LocalChain) -> None:
    data = read(built, "SELECT data FROM commits WHERE height = 3")
    tamper(built, "UPDATE commits SET data = ? WHERE height = 3", flip_byte(data, len(data) - 2))
    report = audit(built)
    assert report.bad_height == 3
    assert "commit" in report.failure


def test_altered_state_value_fails(built: LocalChain) -> None:
    key, value = sqlite3.connect(built.path).execute(
        "SELECT key, value FROM state WHERE key > ? AND key < ? LIMIT 1",
        (b"notary/", b"notary0")).fetchone()
    tamper(built, "UPDATE state SET value = ? WHERE key = ?", flip_byte(value, 5), key)
    report = audit(built)
    assert not report.ok
    assert "stored state differs" in report.failure


def test_deleted_state_key_fails(built: LocalChain) -> None:
    tamper(built, "DELETE FROM state WHERE key = (SELECT MAX(key) FROM state)")
    assert not audit(built).ok


def test_altered_tx_index_fails(built: LocalChain) -> None:
    tamper(built, "UPDATE txs SET code = 11 WHERE height = 2")
    report = audit(built)
    assert report.bad_height == 2
    assert "transaction index" in report.failure


def test_a_forged_validator_set_history_fails_at_its_height(built: LocalChain) -> None:
    """Proofs and light clients read the stored set of each height: a row claiming another
    set from height 4 on is caught by the audit."""
    genesis_set = read(built, "SELECT data FROM validator_sets WHERE height = 1")
    tamper(built, "INSERT INTO validator_sets VALUES (4, ?)", flip_byte(genesis_set, 10))
    report = audit(built)
    assert report.bad_height == 4
    assert "validator set from height 4" in report.failure


def test_missing_block_fails(built: LocalChain) -> None:
    tamper(built, "DELETE FROM blocks WHERE height = 3")
    report = audit(built)
    assert report.bad_height == 3
    assert "missing" in report.failure


def test_audit_against_the_wrong_genesis_fails(built: LocalChain) -> None:
    from tests.conftest import make_genesis, make_key

    built.genesis = make_genesis(make_key(5), make_key(2))
    report = audit(built)
    assert "genesis" in report.failure


def node_key_at(chain: LocalChain, height: int, depth: int) -> bytes:
    """Return the first state tree node key written at `height` with `depth` nibbles."""
    prefix = height.to_bytes(8, "big") + bytes([depth])
    return read(chain, "SELECT node_key FROM state_nodes WHERE node_key >= ? AND node_key < ? "
                       "ORDER BY node_key LIMIT 1", prefix, prefix + b"\xff")


@pytest.mark.parametrize("depth", [0, 1])
def test_altered_state_tree_node_fails_at_the_height_that_wrote_it(built: LocalChain,
                                                                   depth: int) -> None:
    node_key = node_key_at(built, 3, depth)
    data = read(built, "SELECT node FROM state_nodes WHERE node_key = ?", node_key)
    tamper(built, "UPDATE state_nodes SET node = ? WHERE node_key = ?",
           flip_byte(data, len(data) - 1), node_key)
    report = audit(built)
    assert report.bad_height == 3
    assert "state tree" in report.failure


def test_deleted_state_tree_node_fails_at_the_height_that_wrote_it(built: LocalChain) -> None:
    tamper(built, "DELETE FROM state_nodes WHERE node_key = ?", node_key_at(built, 4, 1))
    report = audit(built)
    assert report.bad_height == 4
    assert "state tree" in report.failure


def test_altered_state_tree_root_at_the_tip_fails(built: LocalChain) -> None:
    node_key = node_key_at(built, BLOCKS, 0)
    data = read(built, "SELECT node FROM state_nodes WHERE node_key = ?", node_key)
    tamper(built, "UPDATE state_nodes SET node = ? WHERE node_key = ?",
           flip_byte(data, len(data) - 1), node_key)
    report = audit(built)
    assert report.bad_height == BLOCKS
    assert "state tree" in report.failure


def test_altered_stale_node_index_fails(built: LocalChain) -> None:
    tamper(built, "DELETE FROM state_nodes_stale WHERE stale_since = 2")
    report = audit(built)
    assert report.bad_height == 2
    assert "state_nodes_stale" in report.failure


def test_audit_while_blocks_commit_reads_one_snapshot(built: LocalChain) -> None:
    built.open()  # the node's own connection, committing while the audit reads

    def commit_meanwhile(height: int, tip: int) -> None:
        built.commit(built.make_tx())

    store = BlockStore(built.path)
    try:
        report = audit_chain(built.genesis, store, load_services(), commit_meanwhile)
    finally:
        store.close()
    assert report.ok, report.failure
    assert (report.tip_height, report.blocks) == (BLOCKS, BLOCKS)
    assert built.store.get_tip().height == 2 * BLOCKS
    assert audit(built).ok


def test_audit_passes_while_another_thread_commits_blocks(built: LocalChain) -> None:
    built.open()
    done = threading.Event()
    committed: list[int] = []

    def commit_until_done() -> None:
        while not done.is_set() and len(committed) < 200:
            committed.append(built.commit(built.make_tx()).block.height)

    writer = threading.Thread(target=commit_until_done)
    writer.start()
    try:
        while len(committed) < 3:
            time.sleep(0.005)
        reports = [audit(built) for _ in range(3)]
    finally:
        done.set()
        writer.join()
    assert all(report.ok for report in reports), [report.failure for report in reports]
    assert reports[-1].tip_height > BLOCKS
