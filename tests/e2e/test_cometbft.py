"""Four seoulchain applications under four CometBFT nodes on loopback (`--engine cometbft`):
they commit anchored documents, agree on every app hash, and an application killed with
SIGKILL resumes through CometBFT's handshake and catches up.

The module runs scripts/install-cometbft first (cached after the first build).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seoulchain.bench.network import find_base_port
from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey
from seoulchain.ledger.types import Transaction
from seoulchain.node.devnet import Devnet, DevnetSupervisor, NodeProcess, create_devnet

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VALIDATORS = 4
# The Go build of CometBFT on a loaded 2-core machine; a cached rerun takes a second.
INSTALL_TIMEOUT_S = 1200
# Start-up: imports, `cometbft init` and the first blocks (one a second by default).
START_TIMEOUT_S = 90.0
COMMIT_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 90.0
ANCHORS = 5
# CometBFT stops within its SIGTERM grace (node/abci.py) after its application does.
STOP_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def installed() -> None:
    started = time.monotonic()
    result = subprocess.run([str(ROOT / "scripts" / "install-cometbft")], cwd=ROOT,
                            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"install-cometbft took {time.monotonic() - started:.0f} s")


@pytest.fixture
def network(tmp_path: Path, installed: None) -> Iterator[tuple[Devnet, DevnetSupervisor]]:
    devnet = create_devnet(tmp_path / "net", VALIDATORS, base_port=find_base_port(VALIDATORS))
    supervisor = DevnetSupervisor(devnet, "cometbft")
    supervisor.start()
    try:
        yield devnet, supervisor
    finally:
        supervisor.stop()
        wait_for(lambda: not find_processes(devnet.root), STOP_TIMEOUT_S,
                 "every application and CometBFT node to stop")


def find_processes(root: Path) -> list[str]:
    """Return the command lines of running processes that name `root` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in cmdline:
            found.append(cmdline)
    return found


def rpc(url: str, method: str, **params: Any) -> Any:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                  "params": params}, timeout=10.0).json()
    assert "error" not in reply, reply
    return reply["result"]


def get_height(url: str) -> int:
    try:
        return int(rpc(url, "status")["sync_info"]["latest_block_height"])
    except (httpx.HTTPError, ValueError):
        return -1


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def get_app_hash(url: str, height: int) -> str:
    """Return the app hash the header of `height + 1` carries for block `height`."""
    return str(rpc(url, "block", height=str(height + 1))["block"]["header"]["app_hash"])


def anchor(url: str, key: SigningKey, chain_id: str, nonce: int) -> bytes:
    tx = Transaction.create(key, chain_id=chain_id, nonce=nonce, expiry_height=100_000,
                            service="notary", method="anchor",
                            args={"doc_hash": os.urandom(32), "kind": "permit"})
    result = rpc(url, "broadcast_tx_sync", tx=base64.b64encode(tx.encode()).decode())
    assert result["code"] == 0, result
    return tx.args["doc_hash"]


def is_anchored(url: str, doc_hash: bytes) -> bool:
    answer = rpc(url, "abci_query", path="/query/notary/document",
                 data=encode({"doc_hash": doc_hash}).hex())["response"]
    return answer.get("code", 0) == 0 and decode(base64.b64decode(answer["value"])) is not None


def restart(supervisor: DevnetSupervisor, index: int) -> None:
    node = supervisor.nodes[index]
    log = (node.home.root / "node.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "seoulchain", "start", "--home", str(node.home.root),
         "--parent-pid", str(os.getpid()), "--engine", "cometbft"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    supervisor.nodes[index] = NodeProcess(node.home, process)


def test_four_applications_agree_and_one_recovers_from_sigkill(
        network: tuple[Devnet, DevnetSupervisor]) -> None:
    devnet, supervisor = network
    urls = devnet.api_urls()
    chain_id = devnet.load_info()["chain_id"]
    key = SigningKey.load(devnet.keys_dir / "operator.key")
    wait_for(lambda: all(get_height(url) >= 2 for url in urls), START_TIMEOUT_S,
             "every node at height 2")

    docs = [anchor(urls[0], key, str(chain_id), nonce) for nonce in range(1, ANCHORS + 1)]
    wait_for(lambda: all(is_anchored(url, doc) for url in urls for doc in docs),
             COMMIT_TIMEOUT_S, "the anchors on every node")
    common = min(get_height(url) for url in urls) - 1
    for height in range(1, common + 1):
        assert len({get_app_hash(url, height) for url in urls}) == 1, height

    victim = supervisor.nodes[3]
    victim.process.send_signal(signal.SIGKILL)  # the application; CometBFT follows it
    victim.process.wait()
    later = anchor(urls[0], key, str(chain_id), ANCHORS + 1)
    wait_for(lambda: is_anchored(urls[0], later), COMMIT_TIMEOUT_S, "a commit without node 3")
    target = get_height(urls[0])

    restart(supervisor, 3)
    wait_for(lambda: get_height(urls[3]) >= target + 1, CATCH_UP_TIMEOUT_S,
             "node 3 to catch up")
    assert is_anchored(urls[3], later)
    info = rpc(urls[3], "abci_info")["response"]
    app_height = int(info["last_block_height"])
    wait_for(lambda: get_height(urls[0]) > app_height, COMMIT_TIMEOUT_S, "the next header")
    assert base64.b64decode(info["last_block_app_hash"]).hex().upper() == \
        get_app_hash(urls[0], app_height)
