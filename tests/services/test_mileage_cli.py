"""Mileage from the command line: the generic `tx` and `query` commands drive it, no CLI code.

A real node with its HTTP API runs in-process behind the CLI (as tests/cli/test_service_cli.py
does); its one agency (k = 1) grants itself the roles by a governance proposal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seoulchain.cli import gov, txs
from seoulchain.cli.main import app
from seoulchain.client.http import NodeClient
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id="mileage-cli", api_port=free_port()))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    monkeypatch.setattr(txs, "open_client", open_client)
    monkeypatch.setattr(gov, "open_client", open_client)
    yield running
    running.close()


def invoke(node: Node, *args: str) -> Any:
    result = RUNNER.invoke(app, [*args, "--home", str(node.home.root)])
    return result


def test_points_are_minted_transferred_redeemed_and_queried_from_the_cli(node: Node) -> None:
    home = Home(node.home.root)
    operator = home.load_key("operator").public_key.hex()
    for role in ("mileage.minter", "mileage.merchant_registrar"):
        granted = invoke(node, "gov", "propose", "grant_role", f"role={role}",
                         f"public_key={operator}")
        assert granted.exit_code == 0, granted.output
    for name in ("citizen", "shop"):
        assert invoke(node, "keys", "create", name).exit_code == 0
    citizen = home.load_key("citizen").public_key.hex()
    shop = home.load_key("shop").public_key.hex()
    steps = [
        ["tx", "mileage", "register_merchant", f"merchant={shop}", "name=Mangwon bakery"],
        ["tx", "mileage", "mint", f"to={citizen}", "amount=300",
         "reason=volunteered at the library"],
        ["tx", "mileage", "redeem", f"merchant={shop}", "amount=120", "--key", "citizen"],
    ]
    for step in steps:
        done = invoke(node, *step)
        assert done.exit_code == 0, done.output
        assert "committed at height" in done.stdout
    over = invoke(node, "tx", "mileage", "transfer", f"to={shop}", "amount=181",
                  "--key", "citizen")
    assert over.exit_code == 1
    assert "holds 180 unexpired points, fewer than the 181 asked" in " ".join(
        over.output.split())
    floating = invoke(node, "tx", "mileage", "transfer", f"to={shop}", "amount=1.5",
                      "--key", "citizen")
    assert floating.exit_code == 1 and "amount: '1.5' is not an integer" in floating.stderr
    supply = invoke(node, "query", "mileage", "supply", "--json")
    assert supply.exit_code == 0, supply.output
    assert json.loads(supply.stdout)["result"] == {"minted": 300, "burned": 120, "expired": 0,
                                                   "outstanding": 180}
    account = invoke(node, "query", "mileage", "account", f"account={citizen}", "--json")
    assert json.loads(account.stdout)["result"]["balance"] == 180
    unknown = invoke(node, "query", "mileage", "account", f"account={'00' * 32}")
    assert unknown.exit_code == 3
