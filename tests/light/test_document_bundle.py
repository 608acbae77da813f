"""Issued-document bundles: the status judged offline at the proving header's time, and a
server that hides a revocation caught."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from seoulchain.codec import cbor
from seoulchain.crypto import sha256
from seoulchain.errors import LocalError
from seoulchain.light.bundle import BundleError, build_document_bundle, verify_bundle
from seoulchain.node.proofs import StoreProofSource
from seoulchain.proofs import StateProof
from tests.conftest import LocalChain, make_genesis, make_key

PERMIT, LICENCE, PASS = (sha256(name) for name in (b"permit", b"licence", b"pass"))


@pytest.fixture
def issued(tmp_path: Path) -> Iterator[LocalChain]:
    """A chain where the issuer key holds `document.issuer` and has issued three documents:
    a permit (revoked), a licence (valid) and a pass (valid for five seconds)."""
    validator, issuer = make_key(1), make_key(2)
    genesis = make_genesis(validator, issuer)
    genesis.roles["document.issuer"] = (issuer.public_key,)
    local = LocalChain(tmp_path / "docs.sqlite", genesis, validator, issuer)
    send(local, "issue", doc_hash=PERMIT, kind="permit")
    send(local, "issue", doc_hash=LICENCE, kind="licence")
    send(local, "issue", doc_hash=PASS, kind="pass", valid_until_ms=local.clock_ms + 5_000)
    send(local, "revoke", doc_hash=PERMIT, reason="business closed")
    local.commit()
    yield local
    local.store.close()


def send(chain: LocalChain, method: str, **args: Any) -> None:
    result = chain.commit(chain.make_tx(service="document", method=method,
                                       args=args)).execution.results[0]
    assert result.code == 0, result.log


def document_bundle(chain: LocalChain, doc_hash: bytes,
                    source: StoreProofSource | None = None) -> dict[str, Any]:
    source = source or StoreProofSource(chain.genesis, chain.store)
    return json.loads(json.dumps(build_document_bundle(source, chain.genesis, doc_hash,
                                                       service="document")))


def test_each_status_is_read_offline(issued: LocalChain) -> None:
    statuses = {name: verify_bundle(document_bundle(issued, doc_hash), issued.genesis)
                for name, doc_hash in (("permit", PERMIT), ("licence", LICENCE),
                                       ("pass", PASS), ("unknown", sha256(b"other")))}
    assert {name: statement.facts["status"] for name, statement in statuses.items()} == {
        "permit": "revoked", "licence": "valid", "pass": "valid", "unknown": "unknown"}
    assert '(reason: "business closed")' in statuses["permit"].text
    assert statuses["unknown"].text.startswith("UNKNOWN: document sha256:")
    # Later blocks move the proving header's time past the pass's validity.
    for _ in range(3):
        issued.commit(advance_ms=2_000)
    expired = verify_bundle(document_bundle(issued, PASS), issued.genesis)
    assert expired.facts["status"] == "expired" and expired.text.startswith("EXPIRED:")


def test_builder_refuses_an_unknown_service(issued: LocalChain) -> None:
    with pytest.raises(LocalError, match="documents are anchored by notary or document"):
        build_document_bundle(StoreProofSource(issued.genesis, issued.store), issued.genesis,
                              PERMIT, service="vehicle")


class HidingSource(StoreProofSource):
    """A server that serves the permit's record with its revocation removed."""

    def get_state_proof(self, namespace: str, key: bytes) -> StateProof:
        proof = super().get_state_proof(namespace, key)
        if proof.value is None:
            return proof
        record = cbor.decode(proof.value)
        return replace(proof, value=cbor.encode({
            **record, "revoked_height": None, "revoked_time_ms": None, "revoked_reason": None}))


def test_a_server_hiding_a_revocation_is_caught(issued: LocalChain) -> None:
    with pytest.raises(BundleError, match="the proof's leaf holds value hash") as caught:
        document_bundle(issued, PERMIT, HidingSource(issued.genesis, issued.store))
    assert caught.value.step.startswith("proof against header")
