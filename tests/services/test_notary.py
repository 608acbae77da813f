"""Notary service: anchoring, lookups, and corrections that keep history."""

from __future__ import annotations

import os

import pytest

from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode
from tests.conftest import LocalChain


def anchor(chain: LocalChain, doc: bytes, **extra: object) -> ResultCode:
    args = {"doc_hash": doc, "kind": "permit", **extra}
    return chain.commit(chain.make_tx(args=args)).execution.results[0].code


def supersede(chain: LocalChain, old: bytes, new: bytes, key: object = None) -> str:
    args = {"old_hash": old, "new_hash": new, "reason": "wrong address"}
    result = chain.commit(chain.make_tx(key, method="supersede", args=args)).execution.results[0]
    return result.code.name + ": " + result.log


def lookup(chain: LocalChain, doc: bytes) -> dict[str, object] | None:
    return chain.engine.query("notary", "document", {"doc_hash": doc.hex()})


def test_anchor_then_lookup_shows_issuer_height_and_metadata(chain: LocalChain) -> None:
    doc = os.urandom(32)
    assert anchor(chain, doc, metadata={"office": "Jongno-gu"}) == ResultCode.OK
    record = lookup(chain, doc)
    assert record is not None
    assert record["status"] == "valid"
    assert record["issuer"] == chain.issuer.public_key
    assert record["height"] == 1
    assert record["metadata"] == {"office": "Jongno-gu"}
    assert record["latest"] == doc


def test_lookup_of_unknown_document_is_none(chain: LocalChain) -> None:
    assert lookup(chain, os.urandom(32)) is None


def test_anchor_emits_an_event(chain: LocalChain) -> None:
    doc = os.urandom(32)
    committed = chain.commit(chain.make_tx(args={"doc_hash": doc, "kind": "permit"}))
    event = committed.execution.results[0].events[0]
    assert event.kind == "notary.anchored"
    assert event.attributes["doc_hash"] == doc


def test_supersede_keeps_the_old_record_and_links_both_ways(chain: LocalChain) -> None:
    old, new, newer = os.urandom(32), os.urandom(32), os.urandom(32)
    anchor(chain, old)
    assert supersede(chain, old, new).startswith("OK")
    assert supersede(chain, new, newer).startswith("OK")
    old_record = lookup(chain, old)
    assert old_record is not None
    assert old_record["status"] == "superseded"
    assert old_record["superseded_by"] == new
    assert old_record["superseded_reason"] == "wrong address"
    assert old_record["latest"] == newer
    new_record = lookup(chain, new)
    assert new_record is not None and new_record["supersedes"] == old


def test_supersede_refusals(chain: LocalChain) -> None:
    old, new = os.urandom(32), os.urandom(32)
    assert "not anchored" in supersede(chain, old, new)
    anchor(chain, old)
    taken = os.urandom(32)
    anchor(chain, taken)
    assert "already anchored" in supersede(chain, old, taken)
    assert supersede(chain, old, new).startswith("OK")
    assert "already superseded" in supersede(chain, old, os.urandom(32))


def test_only_the_original_issuer_may_supersede(chain: LocalChain) -> None:
    from tests.conftest import make_genesis, make_key

    second = make_key(3)
    genesis = make_genesis(chain.validator, chain.issuer)
    genesis.roles["notary.issuer"] = (chain.issuer.public_key, second.public_key)
    other = LocalChain(chain.path.with_name("two.sqlite"), genesis, chain.validator, chain.issuer)
    old = os.urandom(32)
    anchor(other, old)
    assert "only the issuer" in supersede(other, old, os.urandom(32), key=second)
    other.store.close()


def test_query_refuses_bad_arguments(chain: LocalChain) -> None:
    with pytest.raises(LocalError, match="doc_hash"):
        chain.engine.query("notary", "document", {"doc_hash": "zz"})
    with pytest.raises(LocalError, match="no query"):
        chain.engine.query("notary", "everything", {})


@pytest.mark.parametrize(("args", "field", "kind"), [
    ({"kind": "permit", "metadata": {"contact": "010-1234-5678"}}, "metadata.contact",
     "phone number"),
    ({"kind": "permit", "metadata": {"holder": "850101-1234567"}}, "metadata.holder",
     "resident registration number"),
    ({"kind": "permit for 02-123-4567"}, "kind", "phone number"),
])
def test_personal_data_in_public_fields_is_refused_alike_by_mempool_and_block(
        chain: LocalChain, args: dict[str, object], field: str, kind: str) -> None:
    raw = chain.make_tx(args={"doc_hash": os.urandom(32), **args}).encode()
    check = chain.engine.check_tx(raw)
    assert check.code == ResultCode.BAD_ARGS
    assert check.log.endswith(f"{field}: holds what looks like a {kind}; personal data must "
                              "stay off chain: keep it in the document or the agency's own "
                              "records, which the anchored SHA-256 commits to without "
                              "revealing them (to commit to one value alone, anchor a salted "
                              "hash of it)")
    # A proposer that includes it anyway: every node executes it to the same refusal.
    execution = chain.engine.execute_block(1, chain.clock_ms + 1000, [raw], strict=True)
    assert execution.results[0].code == ResultCode.BAD_ARGS
    assert execution.results[0].log == check.log
    assert not any(key.startswith(b"notary/") for key in execution.writes)


def test_a_correction_reason_with_personal_data_is_refused(chain: LocalChain) -> None:
    old = os.urandom(32)
    anchor(chain, old)
    args = {"old_hash": old, "new_hash": os.urandom(32),
            "reason": "holder moved, new number +82 10 9876 5432"}
    check = chain.engine.check_tx(chain.make_tx(method="supersede", args=args).encode())
    assert check.code == ResultCode.BAD_ARGS and "reason: holds what looks like" in check.log


def test_public_facts_with_numbers_are_still_accepted(chain: LocalChain) -> None:
    metadata = {"office": "Mapo-gu Office", "permit": "2026-0042", "lot": "112-7",
                "issued": "2026-01-05"}
    assert anchor(chain, os.urandom(32), metadata=metadata) == ResultCode.OK
