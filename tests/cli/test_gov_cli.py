"""`seoulchain gov`: four agencies (k = 3) propose, approve, list and read the consortium
from the command line, against a real node's HTTP API in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.cli import gov, txs
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.crypto import SigningKey
from seoulchain.node.agencies import DEMO_AGENCIES
from seoulchain.node.home import init_home
from seoulchain.node.node import Node
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A demo-like home: four agencies, k = 3, its node reached in-process."""
    root = tmp_path / "home"
    running = Node(init_home(root, chain_id="gov-cli", api_port=free_port(),
                             agencies=DEMO_AGENCIES))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    monkeypatch.setattr(txs, "open_client", open_client)
    monkeypatch.setattr(gov, "open_client", open_client)
    yield root
    running.close()


def run(home: Path, *args: str) -> tuple[int, str]:
    result = RUNNER.invoke(app, ["gov", *args, "--home", str(home)])
    return result.exit_code, result.stdout + result.stderr


def test_gov_cli_three_agencies_grant_a_role(home: Path) -> None:
    code, text = run(home, "members")
    assert code == 0, text
    assert "k = 3 of 4" in text and "mapo-gu" in text
    registrar = SigningKey.generate().public_key.hex()
    code, text = run(home, "propose", "grant_role", "role=vehicle.registrar",
                     f"public_key={registrar}", "--deadline-blocks", "50")
    assert code == 0, text
    assert "gov.proposed" in text and "proposal=1" in text
    assert run(home, "approve", "1", "--key", "mapo-gu")[0] == 0
    code, text = run(home, "approve", "1", "--key", "jongno-gu")
    assert code == 0, text
    assert "gov.passed" in text and "gov.role_granted" in text
    code, text = run(home, "show", "1", "--json")
    record = json.loads(text)["result"]
    assert record["status"] == "passed"
    assert [item["member"] for item in record["approvals"]] == ["city-hall", "mapo-gu",
                                                                "jongno-gu"]
    code, text = run(home, "list", "--status", "passed")
    assert code == 0 and "#1  passed" in text


def test_gov_cli_refusals_are_reported(home: Path) -> None:
    code, text = run(home, "propose", "set_threshold", "threshold=9")
    assert code == 1
    assert "the threshold must be from 1 to 4" in " ".join(text.split())
    code, text = run(home, "propose", "grant_role", "role=vehicle.registrar",
                     "public_key=abcd")
    assert code == 1 and "public_key" in text
    code, text = run(home, "params")
    assert code == 0 and "[]" in text
