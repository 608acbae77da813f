"""Shared fixtures: a single-validator chain running in-process on a temporary store.

`LocalChain` runs the validator core that `seoulchain start` runs (BFT consensus with one
validator), stepped by hand: each `commit` is one height, decided inside one input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.consensus.machine import ConsensusConfig
from seoulchain.consensus.safety import InMemorySigningStateStore
from seoulchain.crypto import SigningKey
from seoulchain.execution.engine import CommittedBlock, Engine
from seoulchain.execution.platform import get_installed_versions
from seoulchain.execution.results import TxResult
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Agency, Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Commit, Height, Transaction, Validator, ValidatorSet
from seoulchain.node.mempool import Mempool
from seoulchain.node.node import Node
from seoulchain.node.validator import (
    Committed,
    Effect,
    NextHeightDue,
    SetTimer,
    ValidatorConfig,
    ValidatorCore,
)
from seoulchain.sim.wal import MemoryWAL

CHAIN_ID = "seoul-test-1"
# Rounds of timers `LocalChain.commit` fires before it gives up on a height.
TIMER_ROUNDS_MAX = 20
GENESIS_TIME_MS = 1_700_000_000_000


def make_key(index: int) -> SigningKey:
    """Return a deterministic test key."""
    return SigningKey(bytes([index]) * 32)


@dataclass
class LocalChain:
    """A lone validator's engine, mempool and validator core over a store at `path`."""

    path: Path
    genesis: Genesis
    validator: SigningKey
    issuer: SigningKey
    store: BlockStore = field(init=False)
    engine: Engine = field(init=False)
    mempool: Mempool = field(init=False)
    # Started by the first commit after (re)opening, as the node starts it when it runs.
    core: ValidatorCore | None = field(init=False, default=None)
    block_txs_max: int = 5000
    clock_ms: int = GENESIS_TIME_MS
    nonces: dict[bytes, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.open()

    def open(self, crash_hook: Any = None) -> None:
        self.store = BlockStore(self.path, crash_hook=crash_hook)
        self.engine = Engine(self.genesis, self.store, load_services(), verify_evidence_bytes)
        self.mempool = Mempool(self.engine, 100_000, 512 * 1024 * 1024)
        self.core = None

    def reopen(self, crash_hook: Any = None) -> None:
        self.store.close()
        self.open(crash_hook)

    def make_tx(self, key: SigningKey | None = None, *, service: str = "notary",
                method: str = "anchor", args: dict[str, Any] | None = None,
                nonce: int | None = None, expiry_height: int = 1_000_000,
                chain_id: str = CHAIN_ID) -> Transaction:
        """Sign a transaction; by default an anchor of a fresh random document."""
        key = key or self.issuer
        if nonce is None:
            nonce = self.nonces.get(key.public_key, 0) + 1
            self.nonces[key.public_key] = nonce
        if args is None:
            args = {"doc_hash": os.urandom(32), "kind": "permit"}
        return Transaction.create(key, chain_id=chain_id, nonce=nonce,
                                  expiry_height=expiry_height, service=service, method=method,
                                  args=args)

    def commit(self, *txs: Transaction | bytes, advance_ms: int = 1000) -> CommittedBlock:
        """Submit `txs` to the mempool and commit the next height, `advance_ms` later."""
        for tx in txs:
            raw = tx.encode() if isinstance(tx, Transaction) else tx
            check = self.mempool.add(raw)
            assert check.ok, check.log
        self.clock_ms += advance_ms
        height = self.engine.height + 1
        effects = self.step()
        # Another validator in the set (joined by governance, running nowhere here) may hold
        # the proposal: fire the core's timers so that a later round decides without it.
        for _ in range(TIMER_ROUNDS_MAX):
            committed = [effect.result for effect in effects if isinstance(effect, Committed)]
            timers = [effect for effect in effects if isinstance(effect, SetTimer)]
            if committed or not timers:
                break
            effects = []
            for timer in timers:
                self.clock_ms += timer.duration_ms
                assert self.core is not None
                effects.extend(self.core.handle(timer.event))
        assert committed, f"height {height} did not commit: the validator cannot decide alone"
        return committed[0]

    def step(self) -> list[Effect]:
        """Start the next height (the core, first), as the node's commit-pause timer does."""
        if self.core is None:
            self.core = ValidatorCore(
                key=self.validator, engine=self.engine, mempool=self.mempool, wal=MemoryWAL(),
                signing_store=InMemorySigningStateStore(),
                config=ValidatorConfig(ConsensusConfig(self.genesis.chain_id),
                                       block_txs_max=self.block_txs_max),
                clock=lambda: self.clock_ms)
            return self.core.start()
        return self.core.handle(NextHeightDue(Height(self.engine.height + 1)))


def commit_next_height(node: Node) -> CommittedBlock | None:
    """Run a one-validator node's next height in-process, as its event loop does when the
    commit pause ends: the block holds the mempool's txs (None: nothing to commit)."""
    producer = node.producer
    if producer.core_started:
        effects = producer.core.handle(NextHeightDue(Height(node.engine.height + 1)))
    else:
        effects = producer.start_core()
    committed = [effect.result for effect in effects if isinstance(effect, Committed)]
    for result in committed:
        producer.on_commit(result)
    return committed[0] if committed else None


def make_genesis(validator: SigningKey, issuer: SigningKey) -> Genesis:
    """A one-validator genesis where `issuer` may anchor documents and, as the one member
    agency of a governance of k = 1, changes validators and roles alone."""
    return Genesis(CHAIN_ID, GENESIS_TIME_MS,
                   ValidatorSet.of([Validator(validator.public_key, 10, "v0")]),
                   {"notary.issuer": (issuer.public_key,)},
                   (Agency("city-hall", issuer.public_key),), threshold=1,
                   services=get_installed_versions(load_services()))


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LocalChain]:
    validator, issuer = make_key(1), make_key(2)
    local = LocalChain(tmp_path / "chain.sqlite", make_genesis(validator, issuer), validator,
                       issuer)
    yield local
    local.store.close()


class EngineChain:
    """An engine over a store, committing each block as proposed (no consensus): property
    tests drive a service through many blocks fast, the proposer's precommit-free commit
    standing in for the one the core would gather."""

    def __init__(self, path: Path, genesis: Genesis, proposer: SigningKey, service: str):
        self.store = BlockStore(path)
        self.engine = Engine(genesis, self.store, load_services(), verify_evidence_bytes)
        self.proposer = proposer
        self.service = service
        self.nonces: dict[bytes, int] = {}
        self.last_commit: Commit | None = None
        self.time_ms = genesis.genesis_time_ms

    def sign(self, key: SigningKey, method: str, args: dict[str, Any]) -> Transaction:
        nonce = self.nonces.get(key.public_key, 0) + 1
        self.nonces[key.public_key] = nonce
        return Transaction.create(key, chain_id=self.engine.chain_id, nonce=nonce,
                                  expiry_height=10**6, service=self.service, method=method,
                                  args=args)

    def run_block(self, txs: list[Transaction]) -> list[TxResult]:
        """Commit the next height holding `txs`, in order; return their results."""
        self.time_ms += 1000
        raws = [tx.encode() for tx in txs]
        block = self.engine.prepare_proposal(time_ms=self.time_ms,
                                             proposer=self.proposer.public_key,
                                             candidates=raws, last_commit=self.last_commit)
        assert list(block.txs) == raws
        self.last_commit = Commit(block.header.height, 0, block.block_id(), ())
        return list(self.engine.commit(block, self.last_commit).execution.results)
