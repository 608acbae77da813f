"""The single-validator chain from the command line, as an operator and a user use it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "seoulchain", *args], capture_output=True,
                            text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"seoulchain {' '.join(args)} failed:\n{result.stdout}\n"
                             f"{result.stderr}")
    return result


def start_node(home: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "seoulchain", "start", "--home",
                                str(home)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if cli("status", "--home", str(home), check=False).returncode == 0:
            return process
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.2)
    process.kill()
    raise AssertionError("node did not start")


def stop_node(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    assert process.returncode == 0
    return process.stderr.read().decode() if process.stderr else ""


def test_init_start_anchor_query_supersede_restart_audit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli("init", "--home", str(home), "--chain-id", "cli-test", "--api-port", str(free_port()))
    assert (home / "keys" / "validator.key").stat().st_mode & 0o777 == 0o600
    document, corrected = tmp_path / "permit.pdf", tmp_path / "permit-v2.pdf"
    document.write_bytes(b"building permit 2026-0042")
    corrected.write_bytes(b"building permit 2026-0042 (corrected)")

    node = start_node(home)
    try:
        anchored = cli("tx", "notary", "anchor", str(document), "--home", str(home),
                       "--meta", "office=Mapo-gu")
        assert "committed at height" in anchored.stdout
        shown = cli("query", "notary", str(document), "--home", str(home))
        assert "valid" in shown.stdout and "Mapo-gu" in shown.stdout
        cli("tx", "notary", "supersede", str(document), str(corrected), "--home", str(home),
            "--reason", "typo in the lot number")
        status = json.loads(cli("status", "--home", str(home), "--json").stdout)
        again = cli("tx", "notary", "anchor", str(document), "--home", str(home), check=False)
        assert again.returncode == 1 and "already anchored" in again.stderr
        missing = cli("query", "notary", "--hash", "00" * 32, "--home", str(home), check=False)
        assert missing.returncode == 3 and "not anchored" in missing.stdout
    finally:
        log = stop_node(node)
    assert "stopped" in log
    height = status["height"]
    assert height >= 2

    node = start_node(home)
    try:
        resumed = json.loads(cli("status", "--home", str(home), "--json").stdout)
        assert resumed["height"] >= height
        assert resumed["block_id"] != ""
        shown = cli("query", "notary", str(document), "--home", str(home))
        assert "superseded" in shown.stdout and "typo in the lot number" in shown.stdout
    finally:
        stop_node(node)

    audited = cli("audit", "--home", str(home), "--quiet")
    assert "audit passed" in audited.stdout
    db = sqlite3.connect(home / "data" / "chain.sqlite")
    data = db.execute("SELECT data FROM blocks WHERE height = 1").fetchone()[0]
    db.execute("UPDATE blocks SET data = ? WHERE height = 1", (data[:-1] + bytes([data[-1] ^ 1]),))
    db.commit()
    db.close()
    failed = cli("audit", "--home", str(home), "--quiet", check=False)
    assert failed.returncode == 2
    assert "FAILED at height 1" in failed.stderr


def test_clear_errors_for_common_mistakes(tmp_path: Path) -> None:
    missing = cli("start", "--home", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 1 and "seoulchain init" in missing.stderr
    home = tmp_path / "home"
    cli("init", "--home", str(home), "--api-port", str(free_port()))
    twice = cli("init", "--home", str(home), check=False)
    assert twice.returncode == 1 and "already holds" in twice.stderr
    down = cli("status", "--home", str(home), check=False)
    assert down.returncode == 1 and "no node answered" in down.stderr
    os.chmod(home / "keys" / "operator.key", 0o644)
    loose = cli("keys", "show", "--home", str(home), check=False)
    assert loose.returncode == 1 and "chmod 600" in loose.stderr
