"""A one-validator node with its API, on the test module's own CHAIN_ID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.node.home import init_home
from seoulchain.node.node import Node


@pytest.fixture
def node(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id=request.module.CHAIN_ID))
    yield running
    running.close()


@pytest.fixture
def api(node: Node) -> TestClient:
    return TestClient(create_app(node))


@pytest.fixture(scope="module")
def idle_api(tmp_path_factory: pytest.TempPathFactory,
             request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """One node for the refusals: none of them changes it."""
    running = Node(init_home(tmp_path_factory.mktemp("idle") / "home",
                             chain_id=request.module.CHAIN_ID))
    yield TestClient(create_app(running))
    running.close()
