"""A transaction whose node's answer is lost: committed, unknown, or never sent.

Nodes are fakes behind `httpx.MockTransport`, each URL's host one node; the real case (a
validator killed mid-request) is in tests/e2e/test_node_lifecycle.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import typer

from seoulchain.cli.exit_codes import EXIT_OUTCOME_UNKNOWN
from seoulchain.cli.txs import report_outcome_unknown
from seoulchain.client.http import (
    NodeClient,
    NodeUnavailable,
    OutcomeUnknown,
    TxRejected,
    submit_and_confirm,
)
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction

URLS = ["http://node-0:1", "http://node-1:1", "http://node-2:1"]
TX = Transaction.create(SigningKey.generate(), chain_id="outcome-test", nonce=1,
                        expiry_height=100, service="notary", method="anchor",
                        args={"doc_hash": b"\x01" * 32, "kind": "permit"})
COMMITTED = {"status": "committed", "hash": TX.hash().hex(), "height": 7, "index": 0,
             "result": {"code": 0, "code_name": "OK", "log": ""}}
Answer = Callable[[httpx.Request], httpx.Response]


def make_transport(nodes: dict[str, Answer]) -> httpx.MockTransport:
    """Route each request to the fake node named by its host."""
    return httpx.MockTransport(lambda request: nodes[request.url.host](request))


def lost(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset by peer", request=request)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def status_of(status: dict[str, object]) -> Answer:
    return lambda request: httpx.Response(200, json=status)


def submit(nodes: dict[str, Answer], timeout_s: float = 5.0) -> dict[str, object]:
    transport = make_transport(nodes)
    with NodeClient(URLS[0], transport=transport) as client:
        return submit_and_confirm(client, TX, timeout_s, URLS, lookup_s=0.6,
                                  transport=transport)


def test_outcome_lost_answer_then_committed_on_another_node_is_success() -> None:
    found = submit({"node-0": lost, "node-1": status_of({"status": "unknown"}),
                    "node-2": status_of(COMMITTED)})
    assert found == COMMITTED


def test_outcome_node_dies_while_waiting_then_committed_elsewhere_is_success() -> None:
    def accepts_then_dies(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"code": 0, "hash": TX.hash().hex()})
        return lost(request)

    found = submit({"node-0": accepts_then_dies, "node-1": status_of(COMMITTED),
                    "node-2": lost})
    assert found == COMMITTED


def test_outcome_not_confirmed_anywhere_is_unknown_not_failed() -> None:
    with pytest.raises(OutcomeUnknown) as raised:
        submit({"node-0": lost, "node-1": status_of({"status": "pending"}), "node-2": lost})
    assert raised.value.tx_hash == TX.hash()
    assert raised.value.lookup.statuses == {"http://node-1:1": "pending"}


def test_outcome_commit_timeout_is_unknown() -> None:
    def pending(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"code": 0, "hash": TX.hash().hex()})
        return httpx.Response(200, json={"status": "pending"})

    with pytest.raises(OutcomeUnknown, match="not committed within 0 s"):
        submit({"node-0": pending, "node-1": pending, "node-2": pending}, timeout_s=0.0)


def test_outcome_never_sent_and_refused_are_definite() -> None:
    with pytest.raises(NodeUnavailable) as raised:
        submit({"node-0": refused, "node-1": status_of(COMMITTED), "node-2": refused})
    assert not raised.value.request_sent

    def rejects(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"content-type": "application/problem+json"},
                              json={"type": "https://seoulchain.dev/problems/bad_nonce",
                                    "title": "Bad nonce", "status": 400, "code": "bad_nonce",
                                    "detail": "BAD_NONCE: used", "hash": TX.hash().hex(),
                                    "result": {"code": 5, "code_name": "BAD_NONCE",
                                               "log": "used"}})

    with pytest.raises(TxRejected):
        submit({"node-0": rejects, "node-1": status_of(COMMITTED), "node-2": rejects})


def test_outcome_unknown_report_gives_the_hash_the_check_command_and_exit_4(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(OutcomeUnknown) as raised:
        submit({"node-0": lost, "node-1": lost, "node-2": lost})
    with pytest.raises(typer.Exit) as exited:
        report_outcome_unknown(raised.value, Path("dev"), 107)
    assert exited.value.exit_code == EXIT_OUTCOME_UNKNOWN
    printed = capsys.readouterr().err
    assert "outcome unknown" in printed and "failed" not in printed
    assert f"seoulchain tx status {TX.hash().hex()} --home dev" in printed
    assert "until height 107" in printed


@pytest.mark.parametrize("timeout_s", [math.nan, math.inf, -1.0])
def test_wait_for_commit_refuses_a_wait_that_is_not_a_finite_number(timeout_s: float) -> None:
    with NodeClient("http://127.0.0.1:9") as client, pytest.raises(LocalError, match="finite"):
        client.wait_for_commit(b"\x00" * 32, timeout_s=timeout_s)
