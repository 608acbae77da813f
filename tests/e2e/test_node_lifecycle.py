"""A node's life as an operator and a supervisor see it, with real processes.

How a node ends (exit status and the one line that says why), that validators die with
their devnet, that a transaction whose node dies mid-request is still reported as
committed, and that a devnet directory is taken by every command as --home.
"""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from seoulchain.bench.network import LocalNetwork, find_base_port
from seoulchain.cli.exit_codes import EXIT_OK, EXIT_STORAGE
from seoulchain.cli.main import app
from seoulchain.cli.txs import submit_and_wait
from seoulchain.client.http import NodeClient, NodeUnavailable
from seoulchain.crypto import SigningKey
from seoulchain.ledger.types import Transaction
from seoulchain.node.devnet import Devnet
from seoulchain.node.home import Home

from .conftest import MakeNetwork

pytestmark = pytest.mark.e2e

# A node start is a couple of seconds of imports on a loaded 2-core machine.
START_TIMEOUT_S = 60.0
# A validator notices that its supervisor is gone within a second (run.py polls each
# second; Linux signals it at once); the rest is its clean stop.
ORPHAN_EXIT_S = 10.0
# SQLite's busy timeout (5 s, Python's default) plus the node's stop.
STORAGE_FAILURE_EXIT_S = 30.0
runner = CliRunner()


def seoulchain(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seoulchain", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def is_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def find_pids(marker: str) -> list[int]:
    """Return the pids of processes whose command line mentions `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and " start " in cmdline:
                pids.append(int(entry.name))
    return pids


def answers(url: str) -> bool:
    with NodeClient(url, timeout_s=2.0) as client:
        try:
            client.get_status()
        except NodeUnavailable:
            return False
    return True


def anchor_tx(key: SigningKey, chain_id: str, nonce: int) -> Transaction:
    return Transaction.create(key, chain_id=chain_id, nonce=nonce, expiry_height=10_000,
                              service="notary", method="anchor",
                              args={"doc_hash": os.urandom(32), "kind": "permit"})


# ------------------------------------------------------------------ how a node ends


def test_node_exit_storage_failure_at_start(tmp_path: Path) -> None:
    """A store that cannot be opened: status 74 and one line naming the store and the fix."""
    home = tmp_path / "home"
    assert seoulchain("init", "--home", str(home), "--api-port",
                      str(find_base_port(1))).returncode == 0
    (home / "data" / "chain.sqlite").write_bytes(b"this is not a database" * 100)
    started = seoulchain("start", "--home", str(home))
    assert started.returncode == EXIT_STORAGE, started.stderr
    fatal = [line for line in started.stderr.splitlines() if "fatal:" in line]
    assert len(fatal) == 1 and "storage failed" in fatal[0], started.stderr
    assert f"seoulchain audit --home {home}" in fatal[0]
    assert "Traceback" not in started.stderr


def test_node_exit_storage_failure_while_running(make_network: MakeNetwork) -> None:
    """A validator whose store refuses a commit stops with status 74, not 0 (n=2)."""
    network = make_network(2)
    network.start_all()
    network.wait_for_height(1, timeout_s=START_TIMEOUT_S)
    key = Home(network.devnet.root).load_key("operator")
    lock = sqlite3.connect(network.nodes[0].home.store_path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # node-0's next commit times out on the lock
        nonce = network.clients[1].get_next_nonce(key.public_key)
        network.clients[1].submit(anchor_tx(key, network.chain_id, nonce))
        process = network.nodes[0].process
        assert process is not None
        process.wait(timeout=STORAGE_FAILURE_EXIT_S)
    finally:
        lock.close()
    assert process.returncode == EXIT_STORAGE, network.describe()
    log = (network.nodes[0].home.root / "node.log").read_text()
    fatal = [line for line in log.splitlines() if "fatal:" in line]
    assert len(fatal) == 1 and "storage failed" in fatal[0], log
    assert "database is locked" in fatal[0] and "seoulchain audit --home" in fatal[0]


# ------------------------------------------------------------------ supervisors


def test_validators_stop_when_their_devnet_is_killed(tmp_path: Path) -> None:
    """SIGKILL the devnet command: every validator it started exits within seconds (n=2);
    before that, the banner's commands work as printed without the virtualenv on PATH."""
    root = tmp_path / "devnet"
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep)
                           if part != bin_dir)
    env = {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"}
    out = (tmp_path / "devnet.out").open("w")
    devnet = subprocess.Popen(
        [sys.executable, "-m", "seoulchain", "devnet", "--home", str(root), "--validators",
         "2", "--base-port", str(find_base_port(2)), "--no-seed-demo"],
        stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env, start_new_session=True)
    try:
        wait_for(lambda: "devnet is running" in (tmp_path / "devnet.out").read_text(),
                 START_TIMEOUT_S, "the devnet banner")
        banner = (tmp_path / "devnet.out").read_text()
        commands = banner[banner.index("try, in another terminal:"):].splitlines()[1:]
        status = next(line.strip() for line in commands if " status " in line)
        cd = commands[0].strip()
        shown = subprocess.run(f"{cd} && {status}", shell=True, capture_output=True,
                               text=True, env=env, cwd="/", timeout=60)
        assert shown.returncode == 0, (status, shown.stdout, shown.stderr)
        pids = find_pids(str(root))
        assert len(pids) == 2 and all(is_alive(pid) for pid in pids)
    finally:
        os.killpg(devnet.pid, signal.SIGKILL)
        devnet.wait()
        out.close()
    try:
        wait_for(lambda: not any(is_alive(pid) for pid in pids), ORPHAN_EXIT_S,
                 "the validators to exit")
    finally:
        for pid in pids:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_devnet_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM the devnet command: it stops its validators and exits 0, as on Ctrl-C (n=1),
    also when its shell started it with SIGINT ignored (a background job)."""
    root = tmp_path / "devnet"
    out = (tmp_path / "devnet.out").open("w")
    devnet = subprocess.Popen(
        [sys.executable, "-m", "seoulchain", "devnet", "--home", str(root), "--validators",
         "1", "--base-port", str(find_base_port(1)), "--no-seed-demo"],
        stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_for(lambda: "devnet is running" in (tmp_path / "devnet.out").read_text(),
                 START_TIMEOUT_S, "the devnet banner")
        pids = find_pids(str(root))
        devnet.send_signal(signal.SIGTERM)
        assert devnet.wait(timeout=ORPHAN_EXIT_S + 20) == EXIT_OK
        assert "all nodes stopped" in (tmp_path / "devnet.out").read_text()
        assert pids and not any(is_alive(pid) for pid in pids)
    finally:
        if devnet.poll() is None:
            os.killpg(devnet.pid, signal.SIGKILL)
            devnet.wait()
        out.close()


# ------------------------------------------------------------------ a devnet as --home


class KillAfterSubmit(httpx.BaseTransport):
    """Forwards requests to a real node, then kills it before the answer to POST /v1/txs
    reaches the client: the transaction is in, the client sees a lost connection."""

    def __init__(self, network: LocalNetwork, index: int):
        self.inner = httpx.HTTPTransport()
        self.network = network
        self.index = index

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/txs":
            response.read()
            time.sleep(0.5)  # let the node gossip the transaction it just admitted
            self.network.kill(self.index)
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_devnet_home_tx_lost_answer_audit_export_start(make_network: MakeNetwork,
                                                       tmp_path: Path) -> None:
    """One 4-validator devnet through the commands that take its directory as --home."""
    network = make_network(4)
    root = network.devnet.root
    network.start_all()
    network.wait_for_height(1, timeout_s=START_TIMEOUT_S)

    # The node that took the transaction dies before answering: it is reported committed.
    with NodeClient(network.urls[0], transport=KillAfterSubmit(network, 0)) as client:
        committed = submit_and_wait(client, root, "operator", "notary", "anchor",
                                    {"doc_hash": os.urandom(32), "kind": "permit"}, 30.0)
    assert committed["status"] == "committed" and committed["result"]["code"] == 0
    assert network.clients[1].get_tx(bytes.fromhex(committed["hash"]))["status"] == "committed"
    network.wait_for_height(committed["height"], [1, 2, 3])
    checked = runner.invoke(app, ["tx", "status", committed["hash"], "--home", str(root)])
    assert checked.exit_code == 0 and "committed at height" in checked.output, checked.output
    network.stop_all()

    audited = runner.invoke(app, ["audit", "--home", str(root), "--quiet"])
    assert audited.exit_code == 0 and "audit passed" in audited.output, audited.output
    exported = runner.invoke(app, ["export-tiles", "--home", str(root), str(tmp_path / "t"),
                                   "--node-index", "2"])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "t" / "checkpoint").is_file()

    refused = seoulchain("start", "--home", str(root))
    assert refused.returncode == 1
    hinted = f"--home {root / 'node-0'}"
    assert hinted in refused.stderr
    node = subprocess.Popen([sys.executable, "-m", "seoulchain", "start",
                             *shlex.split(hinted)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for(lambda: answers(Devnet(root).api_urls()[0]) or node.poll() is not None,
                 START_TIMEOUT_S, "node-0 to start")
        assert node.poll() is None, node.stderr.read() if node.stderr else ""
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=30)
    assert node.returncode == EXIT_OK
