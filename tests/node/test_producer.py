"""The single-validator producer's empty-block policy (create_empty_blocks and its interval)."""

from __future__ import annotations

import pytest

from seoulchain.errors import LocalError
from seoulchain.node.config import ChainConfig
from seoulchain.node.producer import SoloProducer
from tests.conftest import LocalChain


def make_producer(chain: LocalChain, config: ChainConfig) -> SoloProducer:
    return SoloProducer(chain.engine, chain.mempool, chain.validator, config, lambda _: None)


def test_solo_producer_makes_an_empty_block_only_once_the_interval_has_passed(
        chain: LocalChain) -> None:
    """producer (create_empty_blocks off, interval 30 s): idle, no block until the last one
    is 30 s old; a transaction is cut at once."""
    producer = make_producer(chain, ChainConfig(create_empty_blocks_interval_ms=30_000))
    start_ms = chain.engine.tip.time_ms
    assert producer.produce_block(start_ms + 29_999) is None
    committed = producer.produce_block(start_ms + 30_000)
    assert committed is not None and committed.block.txs == ()
    assert producer.produce_block(start_ms + 31_000) is None
    assert chain.mempool.add(chain.make_tx().encode()).ok
    committed = producer.produce_block(start_ms + 31_000)
    assert committed is not None and len(committed.block.txs) == 1


def test_solo_producer_interval_zero_never_makes_an_empty_block(chain: LocalChain) -> None:
    producer = make_producer(chain, ChainConfig(create_empty_blocks_interval_ms=0))
    assert producer.produce_block(chain.engine.tip.time_ms + 10**9) is None


def test_chain_config_refuses_an_interval_out_of_range() -> None:
    with pytest.raises(LocalError, match="create_empty_blocks_interval_ms"):
        ChainConfig(create_empty_blocks_interval_ms=-1)
