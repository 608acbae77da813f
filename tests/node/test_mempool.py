"""Mempool: bounded admission, duplicates, nonce-ordered reaping, recheck after commit."""

from __future__ import annotations

from seoulchain.execution.results import ResultCode
from seoulchain.node.mempool import Mempool
from tests.conftest import LocalChain, make_key


def test_full_mempool_answers_mempool_full(chain: LocalChain) -> None:
    pool = Mempool(chain.engine, txs_max=2, bytes_max=10**6)
    assert pool.add(chain.make_tx().encode()).ok
    assert pool.add(chain.make_tx().encode()).ok
    check = pool.add(chain.make_tx().encode())
    assert check.code == ResultCode.MEMPOOL_FULL
    assert "full" in check.log
    assert len(pool) == 2


def test_byte_limit_is_enforced(chain: LocalChain) -> None:
    raw = chain.make_tx().encode()
    pool = Mempool(chain.engine, txs_max=100, bytes_max=len(raw) + 10)
    assert pool.add(raw).ok
    assert pool.add(chain.make_tx().encode()).code == ResultCode.MEMPOOL_FULL
    assert pool.bytes_total == len(raw)


def test_duplicate_in_pool_and_after_commit(chain: LocalChain) -> None:
    raw = chain.make_tx().encode()
    assert chain.mempool.add(raw).ok
    assert chain.mempool.add(raw).code == ResultCode.DUPLICATE
    chain.commit()
    check = chain.mempool.add(raw)
    assert check.code == ResultCode.DUPLICATE and "already committed" in check.log
    # Any other stale nonce is still just a bad nonce.
    assert chain.mempool.add(chain.make_tx(nonce=1).encode()).code == ResultCode.BAD_NONCE


def test_reap_orders_each_signer_by_nonce(chain: LocalChain) -> None:
    first, second, third = (chain.make_tx() for _ in range(3))
    for tx in (third, first, second):
        assert chain.mempool.add(tx.encode()).ok
    committed = chain.commit()
    assert list(committed.block.txs) == [first.encode(), second.encode(), third.encode()]
    assert all(result.ok for result in committed.execution.results)
    assert len(chain.mempool) == 0


def test_commit_evicts_included_and_rechecks_the_rest(chain: LocalChain) -> None:
    keeper = chain.make_tx(expiry_height=1000)
    short_lived = chain.make_tx(make_key(2), nonce=keeper.nonce + 1, expiry_height=1)
    assert chain.mempool.add(keeper.encode()).ok
    assert chain.mempool.add(short_lived.encode()).ok
    chain.block_txs_max = 1
    chain.commit()
    assert len(chain.mempool) == 0  # the second expired at height 2 and was dropped
