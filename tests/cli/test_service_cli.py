"""One CLI for every service: a service installed as a package is listed, called and queried
from the command line by its own schemas, with no CLI code of its own.

The service below is installed the way a startup's package installs one (an entry point in
the `seoulchain.services` group, here a dist-info directory on sys.path), and a real node
with its HTTP API runs in-process behind the CLI.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi.testclient import TestClient
from pydantic import Field, StringConstraints
from typer.testing import CliRunner

from seoulchain.api.app import create_app
from seoulchain.cli import txs
from seoulchain.cli.main import app
from seoulchain.client.http import CommitTimeout, NodeClient
from seoulchain.execution.service import (
    HexBytes,
    QueryArgs,
    Service,
    ServiceState,
    StrictArgs,
    TxContext,
    load_services,
    query,
    tx_method,
)
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.conftest import commit_next_height

RUNNER = CliRunner()
ADMIN_ROLE = "counter.admin"


class AddArgs(StrictArgs):
    label: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    delta: Annotated[int, Field(ge=-1000, le=1000)]
    proof: Annotated[bytes, Field(min_length=32, max_length=32)] | None = None
    public: bool = True
    tags: list[str] = Field(default_factory=list, max_length=4)
    refs: dict[str, bytes] = Field(default_factory=dict)


class ResetArgs(StrictArgs):
    label: str


class CounterQuery(QueryArgs):
    label: str


class ProofQuery(QueryArgs):
    proof: Annotated[HexBytes, Field(min_length=32, max_length=32)]


class CounterService(Service):
    """Counts by label: a stand-in for a startup's service."""

    name = "counter"
    version = "0.3.1"

    @tx_method(args=AddArgs, roles=None)
    def add(self, ctx: TxContext, args: AddArgs) -> None:
        """Add delta to a label's count."""
        record = ctx.state.get(args.label.encode()) or {"count": 0}
        record.update(count=record["count"] + args.delta, signer=ctx.signer,
                      proof=args.proof, public=args.public, tags=args.tags, refs=args.refs)
        ctx.state.set(args.label.encode(), record)
        if args.proof is not None:
            ctx.state.set(b"proof/" + args.proof, args.label)

    @tx_method(args=ResetArgs, roles={ADMIN_ROLE})
    def reset(self, ctx: TxContext, args: ResetArgs) -> None:
        """Reset a label's count."""
        ctx.state.delete(args.label.encode())

    @query(args=CounterQuery)
    def count(self, state: ServiceState, args: CounterQuery) -> Any:
        """Return a label's record, or null."""
        return state.get(args.label.encode())

    @query(args=ProofQuery)
    def by_proof(self, state: ServiceState, args: ProofQuery) -> Any:
        """Return the label a proof was added under, or null."""
        return state.get(b"proof/" + args.proof)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class InProcessClient(NodeClient):
    """The node's real HTTP API, in-process; a wait for commit commits the next height."""

    def __init__(self, node: Node):
        self.node = node
        self.base_url = "http://127.0.0.1:9"  # nothing listens: a lookup elsewhere fails
        self.http = TestClient(create_app(node))

    def wait_for_commit(self, tx_hash: bytes, timeout_s: float = 30.0) -> dict[str, Any]:
        commit_next_height(self.node)
        return super().wait_for_commit(tx_hash, 0.0)


@pytest.fixture
def counter_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install CounterService as a package would: an entry point in `seoulchain.services`."""
    dist = tmp_path / "site" / "seoulchain_counter-0.3.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: seoulchain-counter\n"
                                   "Version: 0.3.1\n")
    (dist / "entry_points.txt").write_text(
        f"[seoulchain.services]\ncounter = {__name__}:CounterService\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


@pytest.fixture
def node(tmp_path: Path, counter_installed: None,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """A node running the counter service, reached by `tx` and `query` in-process."""
    running = Node(init_home(tmp_path / "home", chain_id="services-cli",
                             api_port=free_port()))

    def open_client(home: Path, url: str | None) -> NodeClient:
        return InProcessClient(running)

    monkeypatch.setattr(txs, "open_client", open_client)
    yield running
    running.close()


def invoke(node: Node, *args: str) -> Any:
    return RUNNER.invoke(app, [*args, "--home", str(node.home.root)])


def get_count(node: Node, label: str) -> Any:
    result = invoke(node, "query", "counter", "count", f"label={label}", "--json")
    assert result.exit_code in (0, 3), result.output
    return json.loads(result.stdout)["result"]


def test_services_lists_a_new_services_methods_schemas_roles_and_queries(
        node: Node) -> None:
    text = RUNNER.invoke(app, ["services", "counter"])
    assert text.exit_code == 0, text.output
    assert "counter 0.3.1 - Counts by label: a stand-in for a startup's service." in text.stdout
    assert "tx counter add (any signer) Add delta to a label's count." in text.stdout
    assert "tx counter reset (roles counter.admin) Reset a label's count." in text.stdout
    assert "query counter by_proof" in text.stdout
    lines = text.stdout.splitlines()
    assert any(line.split() == ["delta", "int[-1000..1000]", "required"] for line in lines)
    assert any(line.split()[:2] == ["proof", "bytes[32]"] for line in lines)
    described = json.loads(RUNNER.invoke(app, ["services", "counter", "--json"]).stdout)
    counter = described["services"][0]
    assert counter["version"] == "0.3.1"
    assert counter["methods"]["add"]["args"] == AddArgs.model_json_schema()
    assert counter["methods"]["reset"]["roles"] == [ADMIN_ROLE]
    api = TestClient(create_app(node)).get("/v1/services").json()
    assert {service["name"] for service in api["services"]} >= {"counter", "notary"}
    assert [one for one in api["services"] if one["name"] == "counter"] == [counter]


def test_tx_and_query_drive_a_new_service_by_its_schema(node: Node, tmp_path: Path) -> None:
    document = tmp_path / "permit.pdf"
    document.write_bytes(b"permit 2026-0042")
    digest = hashlib.sha256(document.read_bytes()).digest()
    added = invoke(node, "tx", "counter", "add", "label=bus", "delta=5", "public=false",
                   f"proof=@{document}", 'tags=["a", "b"]', 'refs={"x": "0a0b"}')
    assert added.exit_code == 0, added.output
    assert "committed at height 1" in added.stdout
    record = get_count(node, "bus")
    operator = Home(node.home.root).load_key("operator").public_key
    assert record == {"count": 5, "signer": operator.hex(), "proof": digest.hex(),
                      "public": False, "tags": ["a", "b"], "refs": {"x": "0a0b"}}
    found = invoke(node, "query", "counter", "by_proof", f"proof={digest.hex()}")
    assert found.exit_code == 0, found.output
    assert found.stdout == 'as of height 1\n"bus"\n'
    missing = invoke(node, "query", "counter", "count", "label=tram")
    assert missing.exit_code == 3 and missing.stdout.endswith("null\n")


def test_args_json_and_key_pick_the_arguments_and_the_signer(node: Node,
                                                             tmp_path: Path) -> None:
    created = invoke(node, "keys", "create", "clerk")
    assert created.exit_code == 0, created.output
    clerk = Home(node.home.root).load_key("clerk").public_key
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"label": "bus", "delta": 2, "proof": "11" * 32,
                                     "refs": {"y": "ff"}}))
    added = invoke(node, "tx", "counter", "add", "--args-json", str(args_file), "delta=-7",
                   "--key", "clerk", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["result"]["code_name"] == "OK"
    record = get_count(node, "bus")
    assert (record["count"], record["signer"], record["proof"], record["refs"]) == (
        -7, clerk.hex(), "11" * 32, {"y": "ff"})


@pytest.mark.parametrize(("args", "message"), [
    (["label=bus", "delta=1", "colour=red"],
     "counter.add has no argument 'colour'; its arguments: label, delta, proof, public, "
     "tags, refs"),
    (["label=bus"], "arguments do not match counter.add: delta: Field required"),
    (["label=bus", "delta=one"], "delta: 'one' is not an integer"),
    (["label=bus", "delta=5000"],
     "arguments do not match counter.add: delta: Input should be less than or equal to 1000"),
    (["label=bus", "delta=1", "proof=zz"], "proof: 'zz' is not hex"),
    (["label=bus", "delta=1", "proof=abcd"],
     "arguments do not match counter.add: proof: Data should have at least 32 bytes"),
    (["label=bus", "delta=1", "public=yes"], "public: 'yes' is not a bool (true or false)"),
    (["label=bus", "delta=1", "tags=a,b"], "tags: 'a,b' is not JSON"),
    (["label=bus", "delta=1", "refs={\"x\": \"zz\"}"], "refs.x: 'zz' is not hex"),
    (["label=bus", "delta=1", "label"], "'label' is not a key=value argument of counter.add"),
    (["label=bus", "delta=1", "delta=2"], "argument 'delta' of counter.add is given twice"),
])
def test_bad_arguments_are_refused_before_signing(node: Node, args: list[str],
                                                  message: str) -> None:
    result = invoke(node, "tx", "counter", "add", *args)
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
    assert len(node.mempool) == 0 and node.get_height() == 0


@pytest.mark.parametrize(("content", "message"), [
    ('["bus", 1]', "must hold a JSON object of counter.add's arguments"),
    ('{"label": "bus", "delta": 1, "colour": "red"}', "counter.add has no argument 'colour'"),
    ('{"label": "bus", "delta": "1"}', "delta: Input should be a valid integer"),
    ('{"label": "bus", "delta": 1', "is not JSON"),
])
def test_a_bad_args_json_file_is_refused_before_signing(node: Node, tmp_path: Path,
                                                        content: str, message: str) -> None:
    args_file = tmp_path / "args.json"
    args_file.write_text(content)
    result = invoke(node, "tx", "counter", "add", "--args-json", str(args_file))
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
    assert len(node.mempool) == 0


def test_unknown_service_method_and_query_are_named(node: Node) -> None:
    service = invoke(node, "tx", "bakery", "bake", "loaves=2")
    assert service.exit_code == 1
    names = ", ".join(sorted({*load_services(), "counter"}))
    assert f"no service named 'bakery' is installed; installed: {names}" in (
        " ".join(service.stderr.split()))
    method = invoke(node, "tx", "counter", "multiply", "by=2")
    assert "service 'counter' has no method 'multiply'; it has: add, reset" in method.stderr
    name = invoke(node, "query", "counter", "sum")
    assert "service 'counter' has no query 'sum'; it has: by_proof, count" in name.stderr


def test_a_tx_the_node_refuses_exits_1_with_its_reason(node: Node) -> None:
    result = invoke(node, "tx", "counter", "reset", "label=bus")
    assert result.exit_code == 1
    assert "requires one of the roles counter.admin" in " ".join(result.stderr.split())


def test_an_unconfirmed_commit_is_an_unknown_outcome_exit_4(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    def time_out(self: InProcessClient, tx_hash: bytes, timeout_s: float = 30.0) -> Any:
        raise CommitTimeout("not committed within 30 s (status: pending)")

    monkeypatch.setattr(InProcessClient, "wait_for_commit", time_out)
    result = invoke(node, "tx", "counter", "add", "label=bus", "delta=1")
    assert result.exit_code == 4, result.output
    assert "outcome unknown" in result.stderr and "do not resend it" in result.stderr


def test_notary_shortcuts_and_the_generic_form_take_one_path(node: Node,
                                                             tmp_path: Path) -> None:
    document, other = tmp_path / "permit.pdf", tmp_path / "deed.pdf"
    document.write_bytes(b"permit")
    other.write_bytes(b"deed")
    shortcut = invoke(node, "tx", "notary", "anchor", str(document), "--meta", "office=Mapo")
    assert shortcut.exit_code == 0, shortcut.output
    generic = invoke(node, "tx", "notary", "anchor", f"doc_hash=@{other}", "kind=deed")
    assert generic.exit_code == 0, generic.output
    digest = hashlib.sha256(b"deed").hexdigest()
    by_schema = invoke(node, "query", "notary", "document", f"doc_hash={digest}", "--json")
    assert json.loads(by_schema.stdout)["result"]["kind"] == "deed"
    friendly = invoke(node, "query", "notary", str(document))
    assert friendly.exit_code == 0 and "office: Mapo" in friendly.stdout
    too_long = invoke(node, "tx", "notary", "anchor", str(document), "--kind", "k" * 65)
    assert too_long.exit_code == 1
    assert "arguments do not match notary.anchor: kind:" in " ".join(too_long.stderr.split())


def test_keys_create_list_show_and_the_old_new(tmp_path: Path) -> None:
    home = init_home(tmp_path / "home", chain_id="keys-cli", api_port=free_port())
    assert RUNNER.invoke(app, ["keys", "create", "clerk", "--home", str(home.root)]
                         ).exit_code == 0
    assert RUNNER.invoke(app, ["keys", "new", "auditor", "--home", str(home.root)]
                         ).exit_code == 0
    again = RUNNER.invoke(app, ["keys", "create", "clerk", "--home", str(home.root)])
    assert again.exit_code == 1 and "a key named 'clerk' already exists" in again.stderr
    listed = json.loads(RUNNER.invoke(app, ["keys", "list", "--json", "--home",
                                            str(home.root)]).stdout)["keys"]
    assert [key["name"] for key in listed] == ["auditor", "clerk", "operator", "validator"]
    clerk = home.load_key("clerk").public_key.hex()
    assert {"name": "clerk", "public_key": clerk} in listed
    shown = RUNNER.invoke(app, ["keys", "show", "--name", "clerk", "--home", str(home.root)])
    assert shown.stdout == clerk + "\n"
    help_text = RUNNER.invoke(app, ["keys", "--help"]).stdout
    assert "│ create " in help_text and "│ new " not in help_text
