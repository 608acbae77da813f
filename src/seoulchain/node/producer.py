"""Block producers: what decides the next block. The BFT consensus plugs in here.

`BlockProducer` is the interface the node drives. `SoloProducer` is the single-validator
producer: every interval it reaps the mempool, asks the engine to prepare a block, signs the
precommit that forms the block's commit (the same vote format BFT validators sign), and
commits. A single validator holds all voting power, so its own precommit is a valid commit. With
`create_empty_blocks` off it cuts a block only for transactions, or once the last block is
`create_empty_blocks_interval_ms` old (the proof of life of an idle chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.engine import CommittedBlock, Engine, TxCheck
from seoulchain.ledger.types import Commit, CommitSig, VoteType, compute_vote_sign_bytes
from seoulchain.node.config import ChainConfig
from seoulchain.node.mempool import Mempool

CommitListener = Callable[[CommittedBlock], None]


class BlockProducer(Protocol):
    """Drives the chain forward until `stop` is set; admits clients' transactions."""

    async def run(self, stop: asyncio.Event) -> None: ...

    def submit(self, raw: bytes) -> TxCheck: ...

    def submit_batch(self, raws: list[bytes]) -> list[TxCheck]: ...

    def get_peers(self) -> list[dict[str, object]]: ...


class SoloProducer:
    """Produces and commits blocks alone, as the only validator of the chain."""

    def __init__(self, engine: Engine, mempool: Mempool, key: SigningKey, config: ChainConfig,
                 on_commit: CommitListener):
        self.engine = engine
        self.mempool = mempool
        self.key = key
        self.config = config
        self.on_commit = on_commit

    def submit(self, raw: bytes) -> TxCheck:
        return self.mempool.add(raw)

    def submit_batch(self, raws: list[bytes]) -> list[TxCheck]:
        return [self.mempool.add(raw) for raw in raws]

    def get_peers(self) -> list[dict[str, object]]:
        return []

    def is_empty_block_due(self, now_ms: int) -> bool:
        """True if an idle chain makes a block now: always with create_empty_blocks, else
        once the last block is create_empty_blocks_interval_ms old (0: never)."""
        interval_ms = self.config.create_empty_blocks_interval_ms
        return self.config.create_empty_blocks or (
            interval_ms > 0 and now_ms - self.engine.tip.time_ms >= interval_ms)

    def produce_block(self, now_ms: int) -> CommittedBlock | None:
        """Cut, sign and commit one block; None when there is nothing to do."""
        engine = self.engine
        if not engine.validators.is_quorum(engine.validators.get_power(self.key.public_key)):
            raise LocalError("this validator no longer holds more than 2/3 of the voting power "
                             "for the next height; the chain needs its BFT validator network")
        candidates = self.mempool.reap(self.config.block_txs_max, self.config.block_tx_bytes_max)
        if not candidates and not self.is_empty_block_due(now_ms):
            return None
        last_commit = engine.store.get_commit(engine.height) if engine.height else None
        block = engine.prepare_proposal(time_ms=now_ms, proposer=self.key.public_key,
                                        candidates=candidates, last_commit=last_commit,
                                        txs_max=self.config.block_txs_max,
                                        bytes_max=self.config.block_tx_bytes_max)
        block_id = block.block_id()
        signature = self.key.sign(compute_vote_sign_bytes(
            engine.chain_id, VoteType.PRECOMMIT, block.height, 0, block_id))
        commit = Commit(block.height, 0, block_id, (CommitSig(self.key.public_key, signature),))
        committed = engine.commit(block, commit)
        execution = committed.execution
        self.mempool.update(execution.tx_hashes)
        self.on_commit(committed)
        return committed

    async def run(self, stop: asyncio.Event) -> None:
        interval_s = self.config.block_interval_ms / 1000
        while not stop.is_set():
            started = time.monotonic()
            self.produce_block(int(time.time() * 1000))
            elapsed = time.monotonic() - started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval_s - elapsed))
