"""Helper processes end with their parent: a SIGKILLed supervisor leaves no child behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# A child that outlived its parent would sleep this long; the test waits far less.
CHILD_SLEEP_S = 60
GONE_WITHIN_S = 5.0

SUPERVISOR = f"""
import subprocess, sys, time
from seoulchain.node.parent import kill_with_parent
child = subprocess.Popen(["sleep", "{CHILD_SLEEP_S}"], start_new_session=True,
                         preexec_fn=kill_with_parent)
print(child.pid, flush=True)
time.sleep({CHILD_SLEEP_S})
"""


def is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_parent_child_started_with_kill_with_parent_dies_with_a_sigkilled_parent() -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE,
                                  text=True)
    child_pid = 0
    try:
        assert supervisor.stdout is not None
        child_pid = int(supervisor.stdout.readline())
        assert is_running(child_pid)
        supervisor.kill()
        supervisor.wait()
        deadline = time.monotonic() + GONE_WITHIN_S
        while is_running(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_running(child_pid), "the child outlived its SIGKILLed parent"
    finally:
        supervisor.kill()
        supervisor.wait()
        if child_pid and is_running(child_pid):
            os.kill(child_pid, signal.SIGKILL)
