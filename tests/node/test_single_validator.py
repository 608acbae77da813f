"""A single validator runs the validator core a network runs: BFT with one validator.

Its empty-block policy is the network's (docs/operations.md, "Empty blocks"): the first
height is never held back, later ones wait at round 0 for a transaction or the proof-of-life
interval; a transaction ends the wait at once, and one arriving during the idle commit pause
starts the next height after the busy pause. Times are the driver's virtual milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
from pathlib import Path

import pytest

from seoulchain.consensus.machine import ConsensusConfig
from seoulchain.consensus.safety import InMemorySigningStateStore
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction
from seoulchain.node.config import ChainConfig
from seoulchain.node.home import init_home
from seoulchain.node.node import Node
from seoulchain.node.validator import (
    Committed,
    Effect,
    Input,
    SetTimer,
    ValidatorConfig,
    ValidatorCore,
)
from seoulchain.sim.wal import MemoryWAL
from tests.conftest import LocalChain

INTERVAL_MS = 30_000
COMMIT_PAUSE_MS = 1_000
BUSY_COMMIT_PAUSE_MS = 100
MINUTE_MS = 60_000


class LoneValidator:
    """One validator's core over `chain`'s engine and mempool, its timers fired in order."""

    def __init__(self, chain: LocalChain, *, create_empty_blocks: bool = False,
                 interval_ms: int = INTERVAL_MS) -> None:
        self.now_ms = chain.clock_ms + 1_000  # after the genesis time
        config = ValidatorConfig(
            ConsensusConfig(chain.genesis.chain_id, create_empty_blocks=create_empty_blocks,
                            create_empty_blocks_interval_ms=interval_ms),
            commit_pause_ms=COMMIT_PAUSE_MS, busy_commit_pause_ms=BUSY_COMMIT_PAUSE_MS)
        self.core = ValidatorCore(key=chain.validator, engine=chain.engine,
                                  mempool=chain.mempool, wal=MemoryWAL(),
                                  signing_store=InMemorySigningStateStore(), config=config,
                                  clock=lambda: self.now_ms)
        self.timers: list[tuple[int, int, Input]] = []
        self.sequence = 0
        self.commit_times_ms: list[int] = []
        self.apply(self.core.start())

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, SetTimer):
                self.sequence += 1
                heapq.heappush(self.timers, (self.now_ms + effect.duration_ms, self.sequence,
                                             effect.event))
            elif isinstance(effect, Committed):
                self.commit_times_ms.append(effect.block.header.time_ms)

    def run_until(self, time_ms: int) -> None:
        """Fire every timer due by `time_ms`, in order, then set the clock to it."""
        while self.timers and self.timers[0][0] <= time_ms:
            due_ms, _, event = heapq.heappop(self.timers)
            self.now_ms = due_ms
            self.apply(self.core.handle(event))
        self.now_ms = time_ms

    def submit(self, raw: bytes) -> None:
        check, effects = self.core.submit_tx(raw)
        assert check.ok, check.log
        self.apply(effects)


def test_lone_validator_makes_an_empty_block_only_once_the_interval_has_passed(
        chain: LocalChain) -> None:
    """single validator (create_empty_blocks off, interval 30 s): height 1 at once; idle,
    height 2 only an interval after it started; a transaction is then committed at once."""
    lone = LoneValidator(chain)
    start_ms = lone.now_ms
    assert lone.commit_times_ms == [start_ms]  # a chain's first height is never held back
    height_2_start_ms = start_ms + COMMIT_PAUSE_MS
    lone.run_until(height_2_start_ms + INTERVAL_MS - 1)
    assert chain.engine.height == 1
    lone.run_until(height_2_start_ms + INTERVAL_MS)
    assert chain.engine.height == 2 and chain.store.get_block(2).txs == ()
    lone.run_until(lone.now_ms + 5_000)  # height 3 waits for transactions
    submitted_ms = lone.now_ms
    lone.submit(chain.make_tx().encode())
    lone.run_until(submitted_ms)  # the 0 ms notice of the admitted transaction
    assert chain.engine.height == 3 and len(chain.store.get_block(3).txs) == 1
    assert lone.commit_times_ms[-1] == submitted_ms


def test_lone_validator_with_interval_zero_never_makes_an_empty_block(
        chain: LocalChain) -> None:
    lone = LoneValidator(chain, interval_ms=0)
    lone.run_until(lone.now_ms + 10 * MINUTE_MS)
    assert chain.engine.height == 1


def test_lone_validator_with_empty_blocks_makes_one_every_commit_pause(
        chain: LocalChain) -> None:
    lone = LoneValidator(chain, create_empty_blocks=True)
    lone.run_until(lone.now_ms + 10 * COMMIT_PAUSE_MS)
    assert chain.engine.height == 11


def test_lone_validator_starts_the_next_height_after_the_busy_pause_for_a_tx(
        chain: LocalChain) -> None:
    """single validator: a tx arriving during the idle commit pause is committed after the
    busy pause, not the idle one (commit latency under light load)."""
    lone = LoneValidator(chain)
    lone.run_until(lone.now_ms + 300)  # inside the 1 s idle pause after height 1
    submitted_ms = lone.now_ms
    lone.submit(chain.make_tx().encode())
    lone.run_until(submitted_ms + BUSY_COMMIT_PAUSE_MS)
    assert chain.engine.height == 2
    assert lone.commit_times_ms[-1] == submitted_ms + BUSY_COMMIT_PAUSE_MS


def test_chain_config_refuses_an_interval_out_of_range() -> None:
    with pytest.raises(LocalError, match="create_empty_blocks_interval_ms"):
        ChainConfig(create_empty_blocks_interval_ms=-1)


def test_single_validator_node_runs_the_bft_producer_without_a_peer_port(
        tmp_path: Path) -> None:
    """node (n=1): `init` + the node's producer commit a client's transaction promptly,
    through the BFT driver, and listen on no peer port."""
    home = init_home(tmp_path / "home", chain_id="single-test")
    operator = home.load_key("operator")

    def anchor(nonce: int) -> bytes:
        return Transaction.create(operator, chain_id="single-test", nonce=nonce,
                                  expiry_height=100, service="notary", method="anchor",
                                  args={"doc_hash": bytes([nonce]) * 32, "kind": "permit"}
                                  ).encode()

    async def run(node: Node) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(node.producer.run(stop))
        try:
            first = await node.wait_for_tx(Transaction.decode(anchor(1)).hash(), 5.0)
            assert first.status == "committed" and first.height == 1
            await asyncio.sleep(0.3)  # inside the idle commit pause
            assert node.submit(anchor(2)).ok
            second = await node.wait_for_tx(Transaction.decode(anchor(2)).hash(), 5.0)
            assert second.status == "committed" and second.height == 2
            assert not node.producer.listening and node.producer.get_peers() == []
        finally:
            stop.set()
            await task

    node = Node(home)
    try:
        assert node.submit(anchor(1)).ok
        asyncio.run(run(node))
    finally:
        node.close()
