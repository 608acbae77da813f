"""A lone validator follows its validator set: it opens its peer port only once a committed
block names another validator (governance adds one), and pins that validator's key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from seoulchain.ledger.types import Height, Transaction
from seoulchain.node.home import init_home
from seoulchain.node.node import Node
from seoulchain.node.validator import Committed, NextHeightDue
from tests.conftest import make_key

CHAIN_ID = "follow-test"
SECOND_VALIDATOR = make_key(90)


def commit_height(node: Node) -> int:
    """Run the node's next height in-process and hand the commit to the producer, as its
    event loop does; return the height committed."""
    producer = node.producer
    if producer.core_started:
        effects = producer.core.handle(NextHeightDue(Height(node.engine.height + 1)))
    else:
        effects = producer.start_core()
    committed = [effect for effect in effects if isinstance(effect, Committed)]
    assert len(committed) == 1
    producer.apply(committed)
    return node.engine.height


def test_lone_validator_listens_once_governance_adds_a_second_validator(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """node (n=1 -> 2): no peer port while alone; the block that passes the proposal (its
    set of h + 2 names another node) starts the transport, with that node's key pinned."""
    home = init_home(tmp_path / "home", chain_id=CHAIN_ID)
    operator = home.load_key("operator")  # the lone member agency's key: k = 1
    node = Node(home)
    producer = node.producer
    started: list[int] = []

    async def record_start() -> None:
        started.append(node.engine.height)

    monkeypatch.setattr(producer.transport, "start", record_start)

    async def scenario() -> None:
        producer.stop_event = asyncio.Event()  # running, as `run` leaves it
        assert commit_height(node) == 1
        await asyncio.sleep(0)
        assert started == [] and not producer.listening
        proposal = Transaction.create(
            operator, chain_id=CHAIN_ID, nonce=1, expiry_height=100, service="gov",
            method="propose", args={"kind": "set_validator", "power": 1,
                                    "public_key": SECOND_VALIDATOR.public_key,
                                    "deadline_height": 10})
        assert node.submit(proposal.encode()).ok
        assert commit_height(node) == 2
        assert node.engine.next_validators.get_power(SECOND_VALIDATOR.public_key) == 1
        await asyncio.sleep(0)
        assert started == [2] and producer.listening
        assert SECOND_VALIDATOR.public_key in producer.trusted_keys
        producer.follow_validator_set()  # the same sets again: no second start
        await asyncio.sleep(0)
        assert started == [2]

    try:
        asyncio.run(scenario())
    finally:
        node.close()
