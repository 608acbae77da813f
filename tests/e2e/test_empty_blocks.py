"""Four validators as real processes with `create_empty_blocks = false` and a short
proof-of-life interval: an idle network commits one empty block per interval, and a
transaction ends the wait at once.

Block times come from the headers (each is its proposer's clock when it proposed), so the
checks do not depend on how promptly this test polls a loaded machine.
"""

from __future__ import annotations

import itertools
import time

import pytest

from seoulchain.bench.ledger import presign_anchors
from seoulchain.bench.network import noop_progress
from seoulchain.node.config import NodeConfig

from .conftest import MakeNetwork

pytestmark = pytest.mark.e2e

INTERVAL_MS = 5_000
START_TIMEOUT_S = 60.0
COMMIT_TIMEOUT_S = 30.0
# Submit part-way through a wait, so that only the transaction can end it early.
IDLE_BEFORE_TX_S = 2.0


def wait_for_txs(index: int, config: NodeConfig) -> None:
    """The shipped empty-block policy, with an interval short enough for a test."""
    config.chain.create_empty_blocks = False
    config.chain.create_empty_blocks_interval_ms = INTERVAL_MS


def test_network_idle_commits_one_block_per_interval_and_a_tx_at_once(
        make_network: MakeNetwork) -> None:
    """network (n=4, create_empty_blocks off, interval 5 s): heights 2 and up of an idle
    network are an interval apart and empty; a submitted tx is committed in the next block,
    proposed well before the interval."""
    network = make_network(issuers=1, configure=wait_for_txs)
    network.start_all()
    network.wait_for_height(2, None, START_TIMEOUT_S)
    time.sleep(IDLE_BEFORE_TX_S)
    client = network.clients[0]
    raw = presign_anchors(network.issuers, network.chain_id, 1, noop_progress)[0]
    tx_hash = bytes.fromhex(client.submit(raw)["hash"])
    tx_height = client.wait_for_commit(tx_hash, COMMIT_TIMEOUT_S)["height"]
    blocks = [client.get_json(f"/v1/blocks/{height}") for height in range(1, tx_height + 1)]
    times = [block["header"]["time_ms"] for block in blocks]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= INTERVAL_MS for gap in gaps[:-1]), f"idle blocks came faster: {gaps}"
    assert gaps[-1] < INTERVAL_MS, f"the tx waited for the interval: {gaps}"
    assert [len(block["txs"]) for block in blocks] == [0] * (tx_height - 1) + [1]
    assert max(height or 0 for height in network.get_heights()) <= tx_height + 1
