"""A CometBFT network for end-to-end tests: four seoulchain applications, each under its own
CometBFT node on loopback (`start --engine cometbft`), and the RPC helpers the tests share.

tests/e2e/conftest.py registers its fixtures: `cometbft_installed` (runs
scripts/install-cometbft, cached after the first build) and `cometbft_network` (one network
per module that asks for it, every process stopped at the end).
"""

from __future__ import annotations

import base64
import os
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
from seoulchain.node.abci import get_rpc_port
from seoulchain.node.devnet import Devnet, DevnetSupervisor, NodeProcess, create_devnet
from seoulchain.node.home import Home

ROOT = Path(__file__).resolve().parents[2]
VALIDATORS = 4
# Ports kept free beside the validators' for a node a test adds (API, P2P and RPC).
SPARE_NODES = 1
# The Go build of CometBFT on a loaded 2-core machine; a cached rerun takes a second.
INSTALL_TIMEOUT_S = 1200
# Start-up: imports, `cometbft init` and the first blocks (one a second by default).
START_TIMEOUT_S = 90.0
COMMIT_TIMEOUT_S = 60.0
CATCH_UP_TIMEOUT_S = 90.0
# CometBFT stops within its SIGTERM grace (node/abci.py) after its application does.
STOP_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def cometbft_installed() -> None:
    started = time.monotonic()
    result = subprocess.run([str(ROOT / "scripts" / "install-cometbft")], cwd=ROOT,
                            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"install-cometbft took {time.monotonic() - started:.0f} s")


@pytest.fixture(scope="module")
def cometbft_network(tmp_path_factory: pytest.TempPathFactory, cometbft_installed: None
                     ) -> Iterator[tuple[Devnet, DevnetSupervisor]]:
    root = tmp_path_factory.mktemp("cometbft") / "net"
    devnet = create_devnet(root, VALIDATORS,
                           base_port=find_base_port(VALIDATORS + SPARE_NODES))
    supervisor = DevnetSupervisor(devnet, "cometbft")
    supervisor.start()
    try:
        yield devnet, supervisor
    finally:
        supervisor.stop()
        wait_for(lambda: not find_processes(devnet.root), STOP_TIMEOUT_S,
                 "every application and CometBFT node to stop")


def get_rpc_urls(devnet: Devnet) -> list[str]:
    """Return each node's CometBFT RPC URL (beside the seoulchain API ports)."""
    return [get_rpc_url(home) for home in devnet.node_homes]


def get_rpc_url(home: Home) -> str:
    return f"http://127.0.0.1:{get_rpc_port(home.load_config())}"


def find_processes(root: Path) -> list[str]:
    """Return the command lines of running processes that name `root` (Linux /proc)."""
    return [cmdline for _, cmdline in find_process_ids(root)]


def find_process_ids(root: Path) -> list[tuple[int, str]]:
    """Return (pid, command line) of running processes that name `root` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in cmdline and entry.name.isdigit():
            found.append((int(entry.name), cmdline))
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


def anchor(url: str, key: SigningKey, chain_id: str, nonce: int,
           doc_hash: bytes | None = None) -> bytes:
    args = {"doc_hash": doc_hash or os.urandom(32), "kind": "permit"}
    submit(url, key, chain_id, nonce, "notary", "anchor", args)
    return args["doc_hash"]


def submit(url: str, key: SigningKey, chain_id: str, nonce: int, service: str, method: str,
           args: dict[str, Any]) -> str:
    tx = Transaction.create(key, chain_id=chain_id, nonce=nonce, expiry_height=100_000,
                            service=service, method=method, args=args)
    result = rpc(url, "broadcast_tx_sync", tx=base64.b64encode(tx.encode()).decode())
    assert result["code"] == 0, result
    return str(result["hash"])


def is_anchored(url: str, doc_hash: bytes) -> bool:
    answer = rpc(url, "abci_query", path="/query/notary/document",
                 data=encode({"doc_hash": doc_hash}).hex())["response"]
    return answer.get("code", 0) == 0 and decode(base64.b64decode(answer["value"])) is not None


def start_node(home: Home, env: dict[str, str] | None = None) -> NodeProcess:
    """Start `seoulchain start --engine cometbft` on `home`, logging to its node.log."""
    log = (home.root / "node.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "seoulchain", "start", "--home", str(home.root),
         "--parent-pid", str(os.getpid()), "--engine", "cometbft"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    return NodeProcess(home, process)


def restart(supervisor: DevnetSupervisor, index: int,
            env: dict[str, str] | None = None) -> None:
    """Start validator `index` again (its earlier process has exited), with `env` if given."""
    supervisor.nodes[index] = start_node(supervisor.nodes[index].home, env)
