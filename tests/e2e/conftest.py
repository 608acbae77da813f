"""End-to-end fixtures: validators as real processes on 127.0.0.1, always cleaned up.

Every network a test makes is killed at teardown (each node in its own process group),
whatever the test did to it. Configs are tuned so scenarios take seconds: a short commit
pause, one-second consensus timeouts, quick redials, and empty blocks at every pause (the
stories watch heights advance; the shipped default waits for transactions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seoulchain.bench.network import Configure, LocalNetwork
from seoulchain.node.config import NodeConfig
from tests.e2e.cometbft_network import (  # noqa: F401  (fixtures of the CometBFT tests)
    cometbft_installed,
    cometbft_network,
)

# A block every few hundred milliseconds while all validators are up.
COMMIT_PAUSE_MS = 150
# A dead proposer costs one propose timeout per height it should have led.
TIMEOUT_PROPOSE_MS = 1000
TIMEOUT_VOTE_MS = 500
TIMEOUT_DELTA_MS = 250
# A healed link is redialed within a second (the default backoff grows to 30 s).
DIAL_BACKOFF_MIN_MS = 100
DIAL_BACKOFF_MAX_MS = 1000

MakeNetwork = Callable[..., LocalNetwork]


def configure_fast(index: int, config: NodeConfig) -> None:
    """Shorten the commit pause, timeouts and redial backoff for test scenarios; make empty
    blocks, so that heights advance while a story's network is idle."""
    config.chain.commit_pause_ms = COMMIT_PAUSE_MS
    config.chain.create_empty_blocks = True
    timeouts = config.consensus
    timeouts.timeout_propose_ms = TIMEOUT_PROPOSE_MS
    timeouts.timeout_prevote_ms = timeouts.timeout_precommit_ms = TIMEOUT_VOTE_MS
    timeouts.timeout_propose_delta_ms = TIMEOUT_DELTA_MS
    timeouts.timeout_prevote_delta_ms = timeouts.timeout_precommit_delta_ms = TIMEOUT_DELTA_MS
    config.p2p.dial_backoff_min_ms = DIAL_BACKOFF_MIN_MS
    config.p2p.dial_backoff_max_ms = DIAL_BACKOFF_MAX_MS


@pytest.fixture
def make_network(tmp_path: Path) -> Iterator[MakeNetwork]:
    """Return a factory of fast-configured local networks, all killed at teardown."""
    created: list[LocalNetwork] = []

    def make(validators: int = 4, *, issuers: int = 0,
             configure: Configure | None = None) -> LocalNetwork:
        def configure_all(index: int, config: NodeConfig) -> None:
            configure_fast(index, config)
            if configure is not None:
                configure(index, config)

        network = LocalNetwork.create(tmp_path / f"network-{len(created)}", validators,
                                      issuers=issuers, configure=configure_all)
        created.append(network)
        return network

    try:
        yield make
    finally:
        for network in created:
            network.close()
