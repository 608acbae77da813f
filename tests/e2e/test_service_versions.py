"""A node whose installed services are not the ones its genesis pins does not start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seoulchain.bench.network import find_base_port
from seoulchain.cli.exit_codes import EXIT_UPGRADE_REQUIRED

pytestmark = pytest.mark.e2e


def seoulchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seoulchain", *args], capture_output=True,
                          text=True, timeout=120)


def test_start_refused_when_installed_version_differs(tmp_path: Path) -> None:
    """Status 78 and one line naming the service, both versions and what to install."""
    home = tmp_path / "home"
    assert seoulchain("init", "--home", str(home), "--api-port",
                      str(find_base_port(1))).returncode == 0
    genesis_path = home / "genesis.json"
    genesis = json.loads(genesis_path.read_text())
    assert genesis["services"]["notary"] == "1.0.0"
    genesis["services"]["notary"] = "2.0.0"
    genesis_path.write_text(json.dumps(genesis))
    started = seoulchain("start", "--home", str(home))
    assert started.returncode == EXIT_UPGRADE_REQUIRED, started.stderr
    fatal = [line for line in started.stderr.splitlines() if "fatal:" in line]
    assert len(fatal) == 1, started.stderr
    assert ("service 'notary' is at version 1.0.0 but the chain runs 2.0.0; install notary "
            "2.0.0") in fatal[0]
    assert "Traceback" not in started.stderr
