"""`seoulchain query notary`: readable text by default, plain JSON with --json, names and UTC."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seoulchain.cli import txs
from seoulchain.cli.main import app
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.ledger.genesis import Agency
from tests.conftest import LocalChain

RUNNER = CliRunner()


class ChainClient:
    """Answers the two requests `query notary` makes, as the node's API would."""

    def __init__(self, chain: LocalChain):
        self.chain = chain

    def query(self, service: str, name: str, **args: Any) -> dict[str, Any]:
        result = self.chain.engine.query(service, name, args)
        return {"height": self.chain.engine.height, "result": to_jsonable(result)}

    def get_genesis(self) -> dict[str, Any]:
        return self.chain.genesis.to_json()


@pytest.fixture
def named_chain(chain: LocalChain, monkeypatch: pytest.MonkeyPatch) -> LocalChain:
    """The test chain, its genesis naming the issuer's agency, reached by `query`."""
    chain.genesis = replace(chain.genesis, agencies=(Agency("mapo-gu",
                                                            chain.issuer.public_key),))

    @contextlib.contextmanager
    def open_client(home: Path, node: str | None) -> Iterator[ChainClient]:
        yield ChainClient(chain)

    monkeypatch.setattr(txs, "open_client", open_client)
    return chain


def run_query(*args: str) -> Any:
    return RUNNER.invoke(app, ["query", "notary", "--home", "unused", *args])


def anchor_and_correct(chain: LocalChain) -> tuple[bytes, bytes]:
    old, new = os.urandom(32), os.urandom(32)
    chain.commit(chain.make_tx(args={"doc_hash": old, "kind": "building-permit",
                                     "metadata": {"office": "Mapo-gu Office"}}))
    chain.commit(chain.make_tx(method="supersede", args={
        "old_hash": old, "new_hash": new, "reason": 'lot 112-7 "corrected"'}))
    return old, new


def test_query_prints_labelled_text_with_the_agency_name_and_utc_times(
        named_chain: LocalChain) -> None:
    old, new = anchor_and_correct(named_chain)
    result = run_query("--hash", old.hex())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    issuer = named_chain.issuer.public_key.hex()
    assert lines[0] == f"document sha256:{old.hex()}"
    assert f"  issuer           mapo-gu (ed25519 {issuer})" in lines
    assert "  status           superseded" in lines
    assert "  kind             building-permit" in lines
    assert "  anchored         height 1, 2023-11-14T22:13:21.000Z (UTC)" in lines
    assert f"  superseded by    sha256:{new.hex()} at height 2" in lines
    assert '  reason           lot 112-7 "corrected"' in lines
    assert "  metadata         office: Mapo-gu Office" in lines
    for repr_text in ("None", "{'", "b'", "time_ms", "1700000001000"):
        assert repr_text not in result.output


def test_query_json_is_plain_json_with_iso_times(named_chain: LocalChain) -> None:
    old, new = anchor_and_correct(named_chain)
    result = run_query("--hash", new.hex(), "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["anchored"] is True and view["doc_hash"] == new.hex()
    assert view["issuer_name"] == "mapo-gu"
    assert view["time"] == "2023-11-14T22:13:22.000Z" and view["time_ms"] == 1_700_000_002_000
    assert view["supersedes"] == old.hex() and view["superseded_by"] is None


def test_query_of_an_unknown_document_says_so_and_exits_3(named_chain: LocalChain) -> None:
    text = run_query("--hash", "00" * 32)
    assert text.exit_code == 3
    assert text.output.strip() == f"document sha256:{'00' * 32} is not anchored (as of height 0)"
    answer = run_query("--hash", "00" * 32, "--json")
    assert answer.exit_code == 3
    assert json.loads(answer.output) == {"doc_hash": "00" * 32, "anchored": False,
                                         "as_of_height": 0}


def test_an_issuer_genesis_does_not_name_is_shown_by_key(chain: LocalChain,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    @contextlib.contextmanager
    def open_client(home: Path, node: str | None) -> Iterator[ChainClient]:
        yield ChainClient(chain)

    chain.genesis = replace(chain.genesis, agencies=(), threshold=0)  # names no agency
    monkeypatch.setattr(txs, "open_client", open_client)
    doc = os.urandom(32)
    chain.commit(chain.make_tx(args={"doc_hash": doc, "kind": "permit"}))
    result = run_query("--hash", doc.hex())
    assert f"  issuer           ed25519 {chain.issuer.public_key.hex()}" in result.output


@pytest.mark.parametrize(("text", "shown"), [
    ("Mapo-gu Office", "Mapo-gu Office"), ("a\nforged line", '"a\\nforged line"'),
    (" padded", '" padded"'), ("", '""'), ("tab\there", '"tab\\there"')])
def test_query_quotes_chain_text_that_would_mislead(text: str, shown: str) -> None:
    assert txs.show_text(text) == shown
