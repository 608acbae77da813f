"""One city network for the portal's live tests: validators as processes on 127.0.0.1, run
as `seoulchain devnet` runs them (node/devnet.py, through bench/network.py's `LocalNetwork`,
the end-to-end tests' fixture), with the demo's city data seeded through node 0's API by the
devnet's own seeders. Started once for this directory's tests (package scope: it stops
after the last of them, before the rest of a test run; each node also stops by itself if
pytest dies: `--parent-pid`).

Fixtures:
- `city`: the running `CityNetwork` (its URLs, devnet root, demo documents);
- `demo`: the same object, under the name the verify page's tests use (url, home, docs);
- `browser`: one headless Chromium (Debian's /usr/bin/chromium) for them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from seoulchain.bench.network import LocalNetwork
from seoulchain.client.demo import seed_demo_from_home
from seoulchain.client.demo_identity import seed_identity_from_home
from seoulchain.client.http import NodeClient
from seoulchain.node.config import NodeConfig
from seoulchain.node.home import Home
from tests.e2e.conftest import configure_fast
from tests.portal.browser import launch_chromium, require_chromium

# Four validators, as `seoulchain devnet` makes by default: each block's commit carries the
# signatures of at least three agencies (more than two thirds of the voting power).
CITY_VALIDATORS = 4
# Imports, store open and peer dials of four nodes on a loaded 2-core machine.
CITY_START_TIMEOUT_S = 90.0
# The demo's records commit in a few dozen blocks; the last one reaches every node at once.
CITY_SYNC_TIMEOUT_S = 30.0
# A read of the seeded chain answers in milliseconds; a loaded machine is given ten seconds.
CITY_READ_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CityNetwork:
    """A running multi-validator network with the demo's city data."""

    network: LocalNetwork
    urls: list[str]
    home: Path  # the devnet directory: genesis.json, keys/, node-<i>/
    docs: Path  # the demo's documents and credentials (demo-docs/)
    height: int  # every node's height once seeding was done

    @property
    def url(self) -> str:
        """Return node 0's API origin, the one the browser talks to."""
        return self.urls[0]

    @property
    def portal(self) -> str:
        return f"{self.url}/portal/"

    def get_json(self, path: str, **params: object) -> Any:
        """Return node 0's JSON answer to GET `path` (asserting a 200)."""
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=CITY_READ_TIMEOUT_S)
        assert answer.status_code == 200, answer.text
        return answer.json()


def configure_city(index: int, config: NodeConfig) -> None:
    """Fast consensus and redials (the end-to-end tests' settings), but blocks only for
    transactions, so that the seeded chain stays as the demo leaves it."""
    configure_fast(index, config)
    config.chain.create_empty_blocks = False


def seed_city(network: LocalNetwork) -> None:
    """Seed the demo's documents, public records and identities as `seoulchain devnet`
    does (its poll is left out: no portal test reads it)."""
    root = network.devnet.root
    with NodeClient(network.urls[0]) as client:
        for seeder in (seed_demo_from_home, seed_identity_from_home):
            seeder(client, Home(root), root / "demo-docs", lambda line: None)


def wait_for_same_height(network: LocalNetwork) -> int:
    """Wait until every node has committed node 0's height; return it."""
    height = network.get_height(0) or 0
    network.wait_for_height(height, timeout_s=CITY_SYNC_TIMEOUT_S)
    return height


@pytest.fixture(scope="package")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CityNetwork]:
    root = tmp_path_factory.mktemp("city") / "devnet"
    with LocalNetwork.create(root, CITY_VALIDATORS, configure=configure_city) as network:
        network.start_all()
        network.wait_until(lambda: all(network.get_status(index) is not None
                                       for index in range(network.size)),
                           CITY_START_TIMEOUT_S, "every validator's API")
        seed_city(network)
        height = wait_for_same_height(network)
        yield CityNetwork(network, list(network.urls), root, root / "demo-docs", height)
        network.stop_all()


@pytest.fixture(scope="package")
def demo(city: CityNetwork) -> CityNetwork:
    """The city network, by the name the verify page's tests use (url, home, docs)."""
    return city


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    require_chromium()
    with launch_chromium() as running:
        yield running
