"""Reseeding the demo after a seeder died with its transactions still in a node's mempool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seoulchain.client import demo
from seoulchain.client.demo import (
    CORRECTION,
    DEMO_DOCUMENTS,
    await_pending_txs,
    seed_demo_data,
    submit,
)
from seoulchain.client.http import CommitTimeout
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto import sha256
from seoulchain.errors import RemoteError
from seoulchain.ledger.types import Transaction
from tests.client.test_demo import make_demo_chain
from tests.conftest import CHAIN_ID, LocalChain

# Blocks a test node commits while a client waits for one transaction.
WAIT_BLOCKS = 3


class Died(Exception):
    """The seeder stopped after its transaction reached the mempool."""


class MempoolClient:
    """A node whose transactions wait in its real mempool until the node commits a block:
    one block each time a transaction is awaited, and (`polled_blocks`) each time its status
    is asked while its mempool is not empty, as time passes between a waiter's polls."""

    def __init__(self, chain: LocalChain, die_after_submit: bool = False,
                 polled_blocks: bool = True):
        self.chain = chain
        self.die_after_submit = die_after_submit
        self.polled_blocks = polled_blocks

    def get_status(self) -> dict[str, Any]:
        status = {"chain_id": CHAIN_ID, "height": self.chain.engine.height,
                  "mempool_txs": len(self.chain.mempool)}
        if self.polled_blocks and len(self.chain.mempool):
            self.chain.commit()  # the node goes on committing while the client waits
        return status

    def query(self, service: str, name: str, **args: Any) -> dict[str, Any]:
        return {"height": self.chain.engine.height,
                "result": to_jsonable(self.chain.engine.query(service, name, args))}

    def get_next_nonce(self, public_key: bytes) -> int:
        return self.chain.engine.get_next_nonce(self.chain.engine.state, public_key)

    def submit(self, tx: Transaction) -> None:
        check = self.chain.mempool.add(tx.encode())
        assert check.ok, check.log
        if self.die_after_submit:
            raise Died

    def wait_for_commit(self, tx_hash: bytes) -> dict[str, Any]:
        for _ in range(WAIT_BLOCKS):
            self.chain.commit()
            record = self.chain.store.get_tx(tx_hash)
            if record is not None:
                return {"status": "committed", "result": {"code": record.code}}
        raise CommitTimeout(f"not committed within {WAIT_BLOCKS} blocks")


@pytest.fixture
def city(tmp_path: Path) -> tuple[LocalChain, dict[str, Any]]:
    chain, keys = make_demo_chain(tmp_path)
    yield chain, keys
    chain.store.close()


def die_with_a_pending_anchor(chain: LocalChain, keys: dict[str, Any], directory: Path) -> bytes:
    """Run a seeder that dies once its first anchor is in the mempool; return its hash."""
    with pytest.raises(Died):
        seed_demo_data(MempoolClient(chain, die_after_submit=True), keys,  # type: ignore[arg-type]
                       keys["city-hall"], directory, lambda line: None)
    assert len(chain.mempool) == 1
    return sha256((directory / DEMO_DOCUMENTS[0].file_name).read_bytes())


def test_a_reseed_waits_for_the_dead_seeders_pending_tx_and_skips_its_record(
        city: tuple[LocalChain, dict[str, Any]], tmp_path: Path) -> None:
    chain, keys = city
    first = die_with_a_pending_anchor(chain, keys, tmp_path / "docs")
    lines: list[str] = []
    client = MempoolClient(chain)
    await_pending_txs(client, lines.append)  # type: ignore[arg-type]
    assert lines == ["waiting for 1 pending transactions to commit before seeding"]
    assert chain.engine.query("notary", "document", {"doc_hash": first.hex()}) is not None
    committed = seed_demo_data(client, keys, keys["city-hall"],  # type: ignore[arg-type]
                               tmp_path / "docs", lines.append)
    assert committed == len(DEMO_DOCUMENTS) - 1 + 1  # the rest, and the correction
    for document in [*DEMO_DOCUMENTS, CORRECTION]:
        doc_hash = sha256((tmp_path / "docs" / document.file_name).read_bytes())
        assert chain.engine.query("notary", "document", {"doc_hash": doc_hash.hex()})


def test_without_waiting_the_resubmission_clashes_with_the_pending_nonce(
        city: tuple[LocalChain, dict[str, Any]], tmp_path: Path) -> None:
    """What the wait prevents: the same nonce signed again never commits."""
    chain, keys = city
    first = die_with_a_pending_anchor(chain, keys, tmp_path / "docs")
    with pytest.raises(CommitTimeout):
        submit(MempoolClient(chain, polled_blocks=False), keys[DEMO_DOCUMENTS[0].agency], CHAIN_ID,  # type: ignore[arg-type]
               "anchor", {"doc_hash": first, "kind": DEMO_DOCUMENTS[0].kind})


def test_a_mempool_that_never_drains_is_reported_not_waited_on_forever(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class BusyClient:
        def get_status(self) -> dict[str, Any]:
            return {"chain_id": CHAIN_ID, "height": 7, "mempool_txs": 40}

    monkeypatch.setattr(demo, "PENDING_POLL_S", 0.01)
    lines: list[str] = []
    with pytest.raises(RemoteError, match="still holds 40 transactions after 0 s; an earlier "
                                          "seeding's may be among them"):
        await_pending_txs(BusyClient(), lines.append, timeout_s=0.05)  # type: ignore[arg-type]
    assert lines == ["waiting for 40 pending transactions to commit before seeding"]
