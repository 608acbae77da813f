"""A validator home with real processes: one process per home, and no start without its
signing state unless the operator overrides it knowingly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from seoulchain.bench.network import LocalNetwork
from seoulchain.cli.exit_codes import EXIT_ERROR, EXIT_STORAGE
from seoulchain.node.bft import SIGNING_STATE_FILE

from .conftest import MakeNetwork

pytestmark = pytest.mark.e2e

# A node start is a couple of seconds of imports on a loaded 2-core machine.
START_TIMEOUT_S = 60.0
# Heights the rejoined validator has to show up in a commit within, at most.
REJOIN_HEIGHTS_MAX = 40


def seoulchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seoulchain", *args], capture_output=True,
                          text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


def test_one_process_per_home_and_no_silent_start_without_signing_state(
        make_network: MakeNetwork) -> None:
    network = make_network(4)
    network.start_all()
    network.wait_for_height(3, timeout_s=START_TIMEOUT_S)
    node = network.nodes[0]
    assert node.process is not None
    started = time.monotonic()
    second = seoulchain("start", "--home", str(node.home.root))
    assert second.returncode == EXIT_ERROR, one_line(second)
    assert f"is in use by process {node.process.pid} (seoulchain start)" in one_line(second)
    assert time.monotonic() - started < START_TIMEOUT_S / 2
    assert network.get_height(0) is not None  # the first is untouched

    network.stop(0)
    (node.home.data_dir / SIGNING_STATE_FILE).unlink()
    refused = seoulchain("start", "--home", str(node.home.root))
    assert refused.returncode == EXIT_STORAGE, one_line(refused)
    assert "--allow-missing-signing-state" in one_line(refused)
    assert not (node.home.data_dir / SIGNING_STATE_FILE).exists()

    if node.log is not None:
        node.log.close()
    node.log = (node.home.root / "node.log").open("ab")
    node.process = subprocess.Popen(
        [sys.executable, "-m", "seoulchain", "start", "--home", str(node.home.root),
         "--allow-missing-signing-state", "--parent-pid", str(os.getpid())],
        stdout=node.log, stderr=subprocess.STDOUT, start_new_session=True)
    key = node.home.load_key("validator").public_key.hex()
    rejoined_from = max(height or 0 for height in network.get_heights())
    network.wait_for_height(rejoined_from + 2, [0], timeout_s=START_TIMEOUT_S)
    # The override lets it sign again above the floor: its precommit lands in a commit once
    # it has caught up (a commit holds the precommits that arrived in time, so on a loaded
    # machine a few heights may pass without it).
    assert signs_again(network, key, rejoined_from + 2), network.describe()
    assert (node.home.data_dir / SIGNING_STATE_FILE).exists()


def signs_again(network: LocalNetwork, key: str, from_height: int) -> bool:
    """Return True once a commit from `from_height` on carries `key`'s precommit."""
    for height in range(from_height, from_height + REJOIN_HEIGHTS_MAX):
        network.wait_for_height(height, [1], timeout_s=START_TIMEOUT_S)
        commit = network.clients[1].get_json(f"/v1/blocks/{height}")["commit"]
        if key in {signature["validator"] for signature in commit["signatures"]}:
            return True
    return False
