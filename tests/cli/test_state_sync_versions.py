"""State sync checks the installed services against the versions the restored chain runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seoulchain.cli import statesync
from seoulchain.cli.statesync import sync_from_peers
from seoulchain.execution.platform import ServicesMismatch
from seoulchain.ledger.store import BlockStore
from seoulchain.node.node import Node
from seoulchain.node.statesync import SnapshotFiles
from seoulchain.services.notary import NotaryService
from tests.cli.test_state_sync import (
    commit_anchors,
    connect_to,
    make_admin_api,
    make_joiner,
    node,  # noqa: F401 (the fixture)
)


def test_state_sync_names_a_missing_service(node: Node, tmp_path: Path,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_admin_api(node)
    commit_anchors(node, 2)
    api.post("/v1/snapshots")
    joiner = make_joiner(tmp_path, node)
    monkeypatch.setattr(statesync, "load_services", lambda: {"notary": NotaryService()})
    store = BlockStore(joiner.store_path)
    try:
        with pytest.raises(ServicesMismatch, match=re.escape("service 'gov' 1.0.0 is missing")):
            sync_from_peers(store, joiner.load_genesis(), ["http://peer"],
                            SnapshotFiles(joiner.data_dir / "snapshots"),
                            connect=connect_to(api))
    finally:
        store.close()
