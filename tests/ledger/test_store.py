"""Block store: a block's writes are all-or-nothing, whatever point a crash hits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seoulchain.client.audit import audit_chain
from seoulchain.errors import LocalError, StorageError
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import (
    SCHEMA_MIGRATES_FROM,
    SCHEMA_VERSION,
    BlockStore,
    BlockWrite,
    TxFilter,
)
from seoulchain.ledger.types import Commit
from seoulchain.proofs.smt import MemoryNodeStore, SparseMerkleTree, TreeBatch, encode_node_key
from tests.conftest import LocalChain

CRASH_STEPS = ["begin", "block", "txs", "state", "state_tree", "log", "tip"]


class InjectedCrash(Exception):
    """Stands in for the process dying between two writes."""


def snapshot(store: BlockStore) -> tuple[object, ...]:
    tree_rows = [store.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                 for table in (store.state_tree.table, store.state_tree.stale_table)]
    return (store.get_tip(), list(store.iter_state()), store.count_txs(),
            store.get_block_bytes(2), store.get_commit(2), tree_rows)


@pytest.mark.parametrize("step", CRASH_STEPS)
def test_crash_between_writes_leaves_the_previous_height_intact(chain: LocalChain,
                                                                step: str) -> None:
    chain.commit(*[chain.make_tx() for _ in range(3)])
    before = snapshot(chain.store)

    def crash(at: str) -> None:
        if at == step:
            raise InjectedCrash(at)

    chain.reopen(crash_hook=crash)
    pending = [chain.make_tx() for _ in range(3)]
    with pytest.raises(InjectedCrash):
        chain.commit(*pending)
    chain.reopen()
    assert snapshot(chain.store) == before
    assert all(chain.store.get_tx(tx.hash()) is None for tx in pending)
    # The node restarts from the intact height and commits the same transactions again.
    committed = chain.commit(*pending)
    assert committed.block.height == 2
    assert audit_chain(chain.genesis, chain.store, load_services()).ok


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.conftest import LocalChain, make_genesis, make_key
    chain = LocalChain(Path({path!r}), make_genesis(make_key(1), make_key(2)), make_key(1),
                       make_key(2))
    chain.nonces[make_key(2).public_key] = chain.engine.get_next_nonce(chain.engine.state,
                                                                       make_key(2).public_key) - 1
    chain.clock_ms = chain.engine.tip.time_ms
    print("ready", flush=True)
    while True:
        chain.commit(*[chain.make_tx() for _ in range(20)])
""")


@pytest.mark.slow
def test_kill_9_at_random_moments_never_loses_or_tears_a_block(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    root = str(Path(__file__).resolve().parents[2])
    heights = []
    for delay_s in (0.3, 0.55, 0.8):
        process = subprocess.Popen([sys.executable, "-c", WRITER.format(root=root,
                                                                         path=str(path))],
                                   stdout=subprocess.PIPE)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(delay_s)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        store = BlockStore(path)
        tip = store.get_tip()
        assert tip is not None
        assert store.get_block(tip.height) is not None
        assert store.get_block(tip.height + 1) is None
        assert store.count_txs() == 20 * tip.height
        from tests.conftest import make_genesis, make_key
        report = audit_chain(make_genesis(make_key(1), make_key(2)), store, load_services())
        assert report.ok, report.failure
        heights.append(tip.height)
        store.close()
    assert heights == sorted(heights) and heights[-1] > heights[0]


def test_corrupt_database_file_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="cannot open"):
        BlockStore(path)


def test_store_refuses_a_different_genesis(chain: LocalChain) -> None:
    batch = SparseMerkleTree(MemoryNodeStore()).apply_batch(0, {})
    with pytest.raises(StorageError, match="different genesis"):
        chain.store.write_genesis_state(b"\x01" * 32, {}, batch, chain.genesis.validators)


def test_store_refuses_a_store_of_another_schema(chain: LocalChain) -> None:
    chain.store.set_meta("schema_version", SCHEMA_MIGRATES_FROM - 1)
    with pytest.raises(StorageError, match="schema"):
        BlockStore(chain.path)


def test_a_schema_3_store_gains_the_transaction_index_when_opened(chain: LocalChain) -> None:
    for _ in range(3):
        chain.commit(chain.make_tx(), chain.make_tx())
    indexed = chain.store.list_txs(TxFilter(service="notary"), None, 100)
    assert len(indexed.items) == 6
    chain.store.db.execute("DELETE FROM tx_kinds")
    chain.store.set_meta("schema_version", SCHEMA_MIGRATES_FROM)
    reopened = BlockStore(chain.path)
    assert reopened.get_meta("schema_version") == SCHEMA_VERSION
    assert reopened.list_txs(TxFilter(service="notary"), None, 100) == indexed


def test_commit_block_refuses_a_state_tree_batch_that_is_not_the_blocks(
        chain: LocalChain) -> None:
    chain.commit(chain.make_tx())
    block = chain.engine.prepare_proposal(time_ms=chain.clock_ms + 1,
                                          proposer=chain.validator.public_key,
                                          candidates=[chain.make_tx().encode()],
                                          last_commit=chain.store.get_commit(1))
    execution = chain.engine.executions[block.block_id()]
    batch = execution.state_tree
    assert batch is not None and batch.root == block.header.state_root
    commit = Commit(block.height, 0, block.block_id(), ())

    def write(state_tree: TreeBatch) -> BlockWrite:
        return BlockWrite(block, commit, [], execution.writes, state_tree, execution.log_nodes)

    (root_key, root_node), *others = batch.new_nodes
    misplaced = batch._replace(new_nodes=[(encode_node_key(1, ""), root_node), *others])
    for bad, reason in [(batch._replace(root=bytes(32)), "root"),
                        (misplaced, "no root node for version 2"),
                        (batch._replace(new_nodes=[*batch.new_nodes,
                                                   (encode_node_key(3, "0"), root_node)]),
                         "other than 2")]:
        with pytest.raises(LocalError, match=reason):
            chain.store.commit_block(write(bad))
    assert chain.store.get_tip().height == 1
    assert root_key == encode_node_key(2, "")
    chain.store.commit_block(write(batch))
    assert SparseMerkleTree(chain.store.state_tree).get_root(2) == block.header.state_root
