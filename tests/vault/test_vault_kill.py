"""The vault survives its process being killed mid-write: every put that returned is there,
readable, and the file opens cleanly (a real subprocess, SIGKILL)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seoulchain.vault import Vault

# The writer reports each put after it returns; it is killed once this many are reported.
PUTS_BEFORE_KILL = 60
WRITER_WAIT_S_MAX = 60.0
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from seoulchain.vault import Vault

    vault = Vault.open(Path(sys.argv[1]), Path(sys.argv[2]))
    for index in range(100_000):
        subject = f"did:seoul:citizen-{index}"
        vault.put(subject, {"index": index, "address": "x" * (index % 3000)})
        print(index, flush=True)
""")


@pytest.mark.e2e
def test_vault_kill_mid_puts_keeps_every_committed_put(tmp_path: Path) -> None:
    path, key_path = tmp_path / "vault.sqlite", tmp_path / "vault.secret"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(key_path)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    reported: list[int] = []
    deadline = time.monotonic() + WRITER_WAIT_S_MAX
    while len(reported) < PUTS_BEFORE_KILL and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        reported.append(int(line))
    writer.send_signal(signal.SIGKILL)
    reported += [int(line) for line in writer.stdout.read().split()]
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert len(reported) >= PUTS_BEFORE_KILL

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = [row[0] for row in db.execute("SELECT subject FROM subjects")]
    assert len(stored) >= len(reported)
    with Vault.open(path, key_path) as vault:
        for subject in stored:  # every row there is whole: nothing half-written
            record = vault.get(subject, "auditor", "crash check").record
            assert subject == f"did:seoul:citizen-{record['index']}"
        assert {f"did:seoul:citizen-{index}" for index in reported} <= set(stored)
        vault.put("did:seoul:after-crash", {"ok": True})
