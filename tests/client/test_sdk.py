"""The SDK against an in-process node: generated methods, refusals, events, proofs."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from seoulchain.api.app import create_app
from seoulchain.client import Seoulchain, TxFailed, create_key, load_key
from seoulchain.client.http import TxRejected
from seoulchain.errors import LocalError, RemoteError, VerificationError
from seoulchain.node.home import init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

VIN = "KMHD341CBGU123456"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(init_home(tmp_path / "home", chain_id="sdk-test"))
    yield running
    running.close()


@pytest.fixture
def sdk(node: Node) -> Iterator[Seoulchain]:
    transport = TestClient(create_app(node))._transport
    key = load_key(node.home.key_path("operator"))
    with Seoulchain("http://testserver", key=key, transport=transport) as made:
        yield made


def test_sdk_keys_are_created_once_and_load_back(tmp_path: Path) -> None:
    key = create_key(tmp_path / "app.key")
    assert load_key(tmp_path / "app.key").public_key == key.public_key
    with pytest.raises(LocalError, match="exists"):
        create_key(tmp_path / "app.key")


def test_sdk_generated_methods_sign_with_counted_nonces(node: Node, sdk: Seoulchain) -> None:
    assert "anchor" in dir(sdk.tx.notary) and "vehicle" in dir(sdk.tx)
    first = sdk.tx.notary.anchor(doc_hash=os.urandom(32), kind="permit", wait=False)
    second = sdk.submit("notary", "anchor", {"doc_hash": os.urandom(32), "kind": "permit"},
                        wait=False)
    commit_next_height(node)
    statuses = [sdk.wait_for_commit(admitted["hash"]) for admitted in (first, second)]
    assert [status["index"] for status in statuses] == [0, 1]
    assert sdk.node.get_next_nonce(sdk.require_key(None).public_key) == 3


def test_sdk_refuses_unknown_services_methods_and_arguments(sdk: Seoulchain) -> None:
    with pytest.raises(AttributeError, match="no service 'parking'"):
        _ = sdk.tx.parking
    with pytest.raises(LocalError, match="no method 'erase'"):
        sdk.tx.notary.erase(doc_hash=b"")
    with pytest.raises(LocalError, match="no argument 'colour'"):
        sdk.tx.notary.anchor(doc_hash=os.urandom(32), colour="red")
    with pytest.raises(LocalError, match="needs argument 'doc_hash'"):
        sdk.submit("notary", "anchor", {"kind": "permit"})
    keyless = Seoulchain("http://testserver", transport=sdk.node.http._transport)
    with pytest.raises(LocalError, match="no signing key"):
        keyless.tx.notary.anchor(doc_hash=os.urandom(32), kind="permit")


def test_sdk_reports_refused_and_failed_transactions(node: Node, sdk: Seoulchain) -> None:
    with pytest.raises(TxRejected) as refused:  # the operator is no vehicle registrar
        sdk.tx.vehicle.register(vin=VIN, wait=False)
    assert refused.value.code_name == "UNAUTHORIZED"
    # The refused nonce is read again from the node: the next transaction is admitted.
    admitted = sdk.tx.vehicle.scrap(vin=VIN, wait=False)
    commit_next_height(node)
    with pytest.raises(TxFailed) as failed:
        sdk.wait_for_commit(admitted["hash"])
    assert failed.value.code_name == "REFUSED"


def test_sdk_events_and_verified_proofs(node: Node, sdk: Seoulchain) -> None:
    admitted = sdk.tx.notary.anchor(doc_hash=os.urandom(32), kind="permit", wait=False)
    commit_next_height(node)
    events = list(sdk.events(from_height=1, to_height=1))
    assert [(event.kind, event.id) for event in events] == [("block", "1-0"), ("tx", "1-1")]
    assert events[1].data["hash"] == admitted["hash"]
    assert list(sdk.events(from_height=1, to_height=1, attr_kind="contract")) == []
    with pytest.raises(RemoteError, match="unknown parameter"):
        list(sdk.events(colour="red"))
    bundle = sdk.prove_tx(admitted["hash"])
    statement = sdk.verify(bundle)
    assert statement.height == 1 and admitted["hash"] in statement.text
    forged = copy.deepcopy(bundle)
    forged["genesis_hash"] = "00" * 32
    with pytest.raises(VerificationError):
        sdk.verify(forged)
