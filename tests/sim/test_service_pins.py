"""The simulator's chain pins its services in genesis, as `init` and `devnet` do, so its
nodes run the same start-up and per-height version checks as a real node."""

from __future__ import annotations

import pytest

from seoulchain.execution.platform import ServicesMismatch, get_installed_versions
from seoulchain.execution.service import load_services
from seoulchain.services.notary import NotaryService
from seoulchain.sim.cluster import Cluster

MINUTE_MS = 60_000


class NotaryNext(NotaryService):
    """The notary at a version the simulated chain does not run."""

    version = "9.0.0"


def test_sim_genesis_pins_the_installed_services() -> None:
    cluster = Cluster(1, seed=11)
    assert cluster.genesis.services == get_installed_versions(load_services())
    assert {"gov", "notary"} <= set(cluster.genesis.services)


def test_sim_node_with_other_services_than_the_pins_refuses_to_start() -> None:
    """sim (n=4): a node restarted with another notary version is refused, naming it."""
    cluster = Cluster(4, seed=12)
    cluster.run_until(height=2, timeout_ms=MINUTE_MS)
    cluster.crash(0)
    cluster.services = {**cluster.services, "notary": NotaryNext()}
    with pytest.raises(ServicesMismatch, match=r"'notary' is at version 9\.0\.0"):
        cluster.restart(0)
