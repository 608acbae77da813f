"""API against its own OpenAPI description: generated requests to every route of a node.

Schemathesis reads /openapi.json from a node with a committed block, generates requests
for every operation (valid and invalid parameters), and checks that no answer is a server
error and that each answer conforms to the description: its status and content type are
documented, and a problem document has the problem schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from seoulchain.api.app import create_app
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

CHAIN_ID = "fuzz-test"
# Generated requests in all, over about 40 operations: a few per operation and parameter
# edge, about a minute on one core.
EXAMPLES_MAX = 400
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    running = Node(init_home(tmp_path_factory.mktemp("fuzz") / "home", chain_id=CHAIN_ID))
    running.config.api.rate_limit_per_s = 0.0  # every generated request reaches its route
    key = Home(running.home.root).load_key("operator")
    tx = Transaction.create(key, chain_id=CHAIN_ID, nonce=1, expiry_height=100,
                            service="notary", method="anchor",
                            args={"doc_hash": os.urandom(32), "kind": "permit"})
    assert running.submit(tx.encode()).ok
    commit_next_height(running)
    yield running
    running.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_route_answers_as_described(node: Node) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(node))
    cases = st.one_of(schema.as_strategy(GenerationMode.POSITIVE),
                      schema.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES_MAX, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
