"""Shared fixtures: a single-validator chain running in-process on a temporary store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.crypto import SigningKey
from seoulchain.execution.engine import CommittedBlock, Engine
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction, Validator, ValidatorSet
from seoulchain.node.config import ChainConfig
from seoulchain.node.mempool import Mempool
from seoulchain.node.producer import SoloProducer

CHAIN_ID = "seoul-test-1"
GENESIS_TIME_MS = 1_700_000_000_000


def make_key(index: int) -> SigningKey:
    """Return a deterministic test key."""
    return SigningKey(bytes([index]) * 32)


@dataclass
class LocalChain:
    """A solo validator's engine, mempool and producer over a store at `path`."""

    path: Path
    genesis: Genesis
    validator: SigningKey
    issuer: SigningKey
    store: BlockStore = field(init=False)
    engine: Engine = field(init=False)
    mempool: Mempool = field(init=False)
    producer: SoloProducer = field(init=False)
    clock_ms: int = GENESIS_TIME_MS
    nonces: dict[bytes, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.open()

    def open(self, crash_hook: Any = None) -> None:
        self.store = BlockStore(self.path, crash_hook=crash_hook)
        self.engine = Engine(self.genesis, self.store, load_services(), verify_evidence_bytes)
        self.mempool = Mempool(self.engine, 100_000, 512 * 1024 * 1024)
        self.producer = SoloProducer(self.engine, self.mempool, self.validator,
                                     ChainConfig(block_txs_max=5000), lambda committed: None)

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

    def commit(self, *txs: Transaction | bytes) -> CommittedBlock:
        """Submit `txs` to the mempool and produce one block with them."""
        for tx in txs:
            raw = tx.encode() if isinstance(tx, Transaction) else tx
            check = self.mempool.add(raw)
            assert check.ok, check.log
        self.clock_ms += 1000
        committed = self.producer.produce_block(self.clock_ms)
        assert committed is not None
        return committed


def make_genesis(validator: SigningKey, issuer: SigningKey) -> Genesis:
    """A one-validator genesis where `issuer` may anchor documents and change validators."""
    return Genesis(CHAIN_ID, GENESIS_TIME_MS,
                   ValidatorSet.of([Validator(validator.public_key, 10, "v0")]),
                   {"notary.issuer": (issuer.public_key,),
                    "validators.admin": (issuer.public_key,)})


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LocalChain]:
    validator, issuer = make_key(1), make_key(2)
    local = LocalChain(tmp_path / "chain.sqlite", make_genesis(validator, issuer), validator,
                       issuer)
    yield local
    local.store.close()
