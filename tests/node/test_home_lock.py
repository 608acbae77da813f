"""Home lock: one process at a time runs a node home or writes its store; others fail at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seoulchain.node.home import init_home
from seoulchain.node.lock import HomeInUse, acquire_home_lock
from seoulchain.node.node import Node

# Python's start-up on a loaded 2-core machine; the refusal itself is immediate.
CLI_TIMEOUT_S = 60.0

HOLDER = """
import sys
from pathlib import Path
from seoulchain.node.lock import acquire_home_lock
lock = acquire_home_lock(Path(sys.argv[1]), "test holder")
print("locked", flush=True)
sys.stdin.read()
"""

PROBE = """
import sys
from pathlib import Path
from seoulchain.node.lock import HomeInUse, acquire_home_lock
try:
    acquire_home_lock(Path(sys.argv[1]), "probe").release()
except HomeInUse as exc:
    print(exc)
    sys.exit(3)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A separate process holding the lock of `tmp_path` until its stdin closes."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def probe(root: Path) -> subprocess.CompletedProcess[str]:
    """Try the lock from another process; exit status 3 means it was refused."""
    return subprocess.run([sys.executable, "-c", PROBE, str(root)], capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)


def test_second_process_is_refused_at_once_naming_the_holder(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    with pytest.raises(HomeInUse, match=f"in use by process {holder.pid} \\(test holder\\)"):
        acquire_home_lock(tmp_path, "second")
    assert time.monotonic() - started < 1.0
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait()
    with acquire_home_lock(tmp_path, "after the holder exited"):
        pass


def test_lock_of_a_killed_holder_is_free_again(tmp_path: Path,
                                               holder: subprocess.Popen[str]) -> None:
    holder.kill()  # SIGKILL: the holder cannot clean up; the kernel drops its lock
    holder.wait()
    with acquire_home_lock(tmp_path, "after a kill -9"):
        pass


def test_lock_is_reentrant_in_one_process_and_held_until_the_last_release(
        tmp_path: Path) -> None:
    outer = acquire_home_lock(tmp_path, "outer")
    inner = acquire_home_lock(tmp_path, "inner")
    inner.release()
    refused = probe(tmp_path)
    assert refused.returncode == 3 and f"process {os.getpid()} (outer)" in refused.stdout
    outer.release()
    assert probe(tmp_path).returncode == 0


def test_running_node_holds_its_home_against_start_and_state_sync(tmp_path: Path) -> None:
    home = init_home(tmp_path / "home", chain_id="lock-test")
    node = Node(home)
    try:
        for command in (["start"], ["state-sync", "--from", "http://127.0.0.1:9"]):
            result = subprocess.run(
                [sys.executable, "-m", "seoulchain", *command, "--home", str(home.root)],
                capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
            assert result.returncode == 1, result.stderr
            assert f"is in use by process {os.getpid()}" in " ".join(result.stderr.split())
        audit = subprocess.run(
            [sys.executable, "-m", "seoulchain", "audit", "--home", str(home.root), "--quiet"],
            capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        assert audit.returncode == 0, audit.stderr  # read-only: no lock needed
    finally:
        node.close()
    assert probe(home.root).returncode == 0  # released by close
