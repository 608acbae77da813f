"""Issued documents: issue, revoke, correct, and check a file's status as of a block time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.results import ResultCode, TxResult
from tests.conftest import LocalChain, make_genesis, make_key

ROLE = "document.issuer"
# A validity period the tests use: long past every test's last block.
DAY_MS = 86_400_000


def make_document_chain(path: Path) -> LocalChain:
    """A one-validator chain where keys 2 and 3 issue documents and key 2 governs (k = 1)."""
    validator, issuer = make_key(1), make_key(2)
    genesis = make_genesis(validator, issuer)
    genesis.roles[ROLE] = (issuer.public_key, make_key(3).public_key)
    return LocalChain(path, genesis, validator, issuer)


@pytest.fixture
def docs(tmp_path: Path) -> Iterator[LocalChain]:
    chain = make_document_chain(tmp_path / "documents.sqlite")
    yield chain
    chain.store.close()


def send(chain: LocalChain, method: str, key: SigningKey | None = None,
         **args: Any) -> TxResult:
    tx = chain.make_tx(key, service="document", method=method, args=args)
    return chain.commit(tx).execution.results[0]


def outcome(result: TxResult) -> str:
    return f"{result.code.name}: {result.log}"


def issue(chain: LocalChain, doc: bytes, **extra: Any) -> TxResult:
    return send(chain, "issue", doc_hash=doc, kind="business permit", **extra)


def check(chain: LocalChain, doc: bytes, at_ms: int | None = None) -> dict[str, Any]:
    at = chain.clock_ms if at_ms is None else at_ms
    return chain.engine.query("document", "check", {"doc_hash": doc.hex(), "at_ms": at})


def admit(chain: LocalChain, method: str, key: SigningKey | None = None,
          **args: Any) -> str:
    """Return the mempool's verdict on a document transaction (nothing is committed)."""
    raw = chain.make_tx(key, service="document", method=method, args=args).encode()
    result = chain.engine.check_tx(raw)
    return f"{result.code.name}: {result.log}"


def test_issue_then_check_is_valid_with_issuer_kind_and_validity(docs: LocalChain) -> None:
    doc = os.urandom(32)
    until = docs.clock_ms + DAY_MS
    result = issue(docs, doc, valid_until_ms=until, metadata={"office": "Mapo-gu"})
    assert result.code == ResultCode.OK
    assert [event.kind for event in result.events] == ["document.issued"]
    assert result.events[0].attributes["doc_hash"] == doc
    answer = check(docs, doc)
    assert answer["status"] == "valid"
    assert answer["issuer"] == docs.issuer.public_key and answer["kind"] == "business permit"
    assert answer["valid_from_ms"] == answer["time_ms"] and answer["valid_until_ms"] == until
    assert answer["metadata"] == {"office": "Mapo-gu"} and answer["latest"] == doc
    record = docs.engine.query("document", "document", {"doc_hash": doc.hex()})
    assert record is not None and record["revoked_height"] is None


def test_an_unknown_hash_checks_as_unknown(docs: LocalChain) -> None:
    doc = os.urandom(32)
    assert check(docs, doc) == {"doc_hash": doc, "at_ms": docs.clock_ms, "status": "unknown"}
    assert docs.engine.query("document", "document", {"doc_hash": doc.hex()}) is None


def test_validity_is_judged_at_the_given_block_time(docs: LocalChain) -> None:
    doc = os.urandom(32)
    start, until = docs.clock_ms + 10_000, docs.clock_ms + 20_000
    assert issue(docs, doc, valid_from_ms=start, valid_until_ms=until).code == ResultCode.OK
    assert check(docs, doc, start - 1)["status"] == "not_yet_valid"
    assert check(docs, doc, start)["status"] == "valid"
    assert check(docs, doc, until - 1)["status"] == "valid"
    assert check(docs, doc, until)["status"] == "expired"
    no_end = os.urandom(32)
    issue(docs, no_end)
    assert check(docs, no_end, 2**63 - 1)["status"] == "valid"


def test_revoke_records_the_reason_and_the_check_says_revoked(docs: LocalChain) -> None:
    doc = os.urandom(32)
    issue(docs, doc)
    result = send(docs, "revoke", doc_hash=doc, reason="issued in error")
    assert result.code == ResultCode.OK
    assert result.events[0].kind == "document.revoked"
    answer = check(docs, doc)
    assert answer["status"] == "revoked" and answer["revoked_reason"] == "issued in error"
    assert answer["revoked_height"] == docs.engine.height


def test_revoke_refusals(docs: LocalChain) -> None:
    doc = os.urandom(32)
    assert "is not issued" in outcome(send(docs, "revoke", doc_hash=doc, reason="x"))
    issue(docs, doc)
    other = send(docs, "revoke", make_key(3), doc_hash=doc, reason="x")
    assert "only the issuer who issued a document may revoke it" in outcome(other)
    assert outcome(send(docs, "revoke", doc_hash=doc, reason="x")).startswith("OK")
    assert "was revoked at height" in outcome(send(docs, "revoke", doc_hash=doc, reason="y"))
    old, new = os.urandom(32), os.urandom(32)
    issue(docs, old)
    send(docs, "supersede", old_hash=old, new_hash=new, reason="typo")
    refused = outcome(send(docs, "revoke", doc_hash=old, reason="x"))
    assert f"superseded by {new.hex()}: revoke the current version" in refused
    assert check(docs, old)["status"] == "superseded"


def test_supersede_links_both_ways_and_keeps_the_validity(docs: LocalChain) -> None:
    old, new, newer = os.urandom(32), os.urandom(32), os.urandom(32)
    until = docs.clock_ms + DAY_MS
    issue(docs, old, valid_until_ms=until)
    result = send(docs, "supersede", old_hash=old, new_hash=new, reason="wrong lot number")
    assert result.code == ResultCode.OK and result.events[0].kind == "document.superseded"
    send(docs, "supersede", old_hash=new, new_hash=newer, reason="wrong office",
         valid_until_ms=until + DAY_MS)
    answer = check(docs, old)
    assert answer["status"] == "superseded" and answer["superseded_by"] == new
    assert answer["superseded_reason"] == "wrong lot number" and answer["latest"] == newer
    middle = check(docs, new)
    assert middle["supersedes"] == old and middle["valid_until_ms"] == until
    current = check(docs, newer)
    assert current["status"] == "valid" and current["valid_until_ms"] == until + DAY_MS
    assert current["kind"] == "business permit"


def test_supersede_refusals(docs: LocalChain) -> None:
    old, new = os.urandom(32), os.urandom(32)
    args = {"old_hash": old, "new_hash": new, "reason": "typo"}
    assert "is not issued" in outcome(send(docs, "supersede", **args))
    issue(docs, old)
    taken = os.urandom(32)
    issue(docs, taken)
    assert "already issued" in outcome(send(docs, "supersede", **{**args, "new_hash": taken}))
    assert "only the issuer who issued" in outcome(send(docs, "supersede", make_key(3), **args))
    assert outcome(send(docs, "supersede", **args)).startswith("OK")
    again = {**args, "new_hash": os.urandom(32)}
    assert "already superseded" in outcome(send(docs, "supersede", **again))
    revoked = os.urandom(32)
    issue(docs, revoked)
    send(docs, "revoke", doc_hash=revoked, reason="withdrawn")
    fixed = {**args, "old_hash": revoked, "new_hash": os.urandom(32)}
    assert "was revoked at height" in outcome(send(docs, "supersede", **fixed))


def test_issue_refusals_leave_nothing_behind(docs: LocalChain) -> None:
    doc = os.urandom(32)
    issue(docs, doc)
    assert "is already issued" in outcome(issue(docs, doc))
    now = docs.clock_ms
    fresh = os.urandom(32)
    assert "must be after valid_from_ms" in outcome(
        issue(docs, fresh, valid_from_ms=now + 5000, valid_until_ms=now + 5000))
    assert "the document would be expired" in outcome(issue(docs, fresh, valid_until_ms=now))
    assert check(docs, fresh)["status"] == "unknown"


def test_only_document_issuers_may_issue(docs: LocalChain) -> None:
    outsider = make_key(4)
    verdict = admit(docs, "issue", outsider, doc_hash=os.urandom(32), kind="permit")
    assert verdict.startswith("UNAUTHORIZED") and ROLE in verdict


@pytest.mark.parametrize("bad", [-1, True, 2**63, "1767225600000"])
def test_a_validity_time_that_is_not_a_64_bit_integer_is_refused(docs: LocalChain,
                                                                  bad: object) -> None:
    verdict = admit(docs, "issue", doc_hash=os.urandom(32), kind="permit", valid_until_ms=bad)
    assert verdict.startswith("BAD_ARGS") and "valid_until_ms" in verdict


def test_a_float_validity_time_cannot_even_be_signed(docs: LocalChain) -> None:
    with pytest.raises(LocalError, match="float is not allowed"):
        docs.make_tx(service="document", method="issue",
                     args={"doc_hash": os.urandom(32), "kind": "permit", "valid_until_ms": 1.0})


@pytest.mark.parametrize(("field", "value"), [
    ("metadata", {"holder": "850101-1234567"}),
    ("metadata", {"contact": "010-1234-5678"}),
    ("kind", "permit for 02-123-4567"),
])
def test_personal_data_in_public_fields_is_refused(docs: LocalChain, field: str,
                                                    value: object) -> None:
    args = {"doc_hash": os.urandom(32), "kind": "permit", field: value}
    verdict = admit(docs, "issue", **args)
    assert verdict.startswith("BAD_ARGS") and "personal data must stay off chain" in verdict
    reason = admit(docs, "revoke", doc_hash=os.urandom(32), reason="call 010-1234-5678")
    assert reason.startswith("BAD_ARGS") and "reason: holds what looks like" in reason


def test_the_metadata_bound_is_a_governed_parameter(docs: LocalChain) -> None:
    proposal = docs.make_tx(service="gov", method="propose", args={
        "kind": "set_param", "deadline_height": 100, "param": "document.metadata_entries_max",
        "value": 1})
    assert docs.commit(proposal).execution.results[0].code == ResultCode.OK
    refused = issue(docs, os.urandom(32), metadata={"a": "1", "b": "2"})
    assert "at most 1 (document.metadata_entries_max)" in outcome(refused)
    assert issue(docs, os.urandom(32), metadata={"a": "1"}).code == ResultCode.OK


def test_notary_and_document_records_are_separate(docs: LocalChain) -> None:
    doc = os.urandom(32)
    issue(docs, doc)
    assert docs.engine.query("notary", "document", {"doc_hash": doc.hex()}) is None
    anchored = docs.commit(docs.make_tx(args={"doc_hash": doc, "kind": "permit"}))
    assert anchored.execution.results[0].code == ResultCode.OK
    assert check(docs, doc)["status"] == "valid"


# A random history over a few hashes: (method, document index, other index, offset ms).
OPERATIONS = st.lists(st.tuples(st.sampled_from(["issue", "revoke", "supersede"]),
                                st.integers(0, 3), st.integers(0, 3),
                                st.integers(-3000, 3000)), max_size=8)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_check_agrees_with_a_model_of_the_history(operations: list[tuple[str, int, int, int]]
                                                  ) -> None:
    """Whatever is issued, revoked or corrected, in any order, `check` answers what a plain
    model of the accepted operations says, and a refused operation changes nothing."""
    hashes = [bytes([index + 1]) * 32 for index in range(4)]
    model: dict[bytes, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as directory:
        chain = make_document_chain(Path(directory) / "chain.sqlite")
        try:
            for method, first, second, offset_ms in operations:
                apply_and_mirror(chain, model, method, hashes[first], hashes[second],
                                 offset_ms)
                for doc in hashes:
                    for at_ms in (chain.clock_ms, chain.clock_ms + 5000):
                        assert check(chain, doc, at_ms)["status"] == model_status(
                            model.get(doc), at_ms)
        finally:
            chain.store.close()


def apply_and_mirror(chain: LocalChain, model: dict[bytes, dict[str, Any]], method: str,
                     doc: bytes, other: bytes, offset_ms: int) -> None:
    """Send one operation; mirror it in the model when the model says it is allowed."""
    block_ms = chain.clock_ms + 1000  # the time of the block the operation lands in
    if method == "issue":
        until = block_ms + offset_ms
        result = issue(chain, doc, valid_until_ms=until)
        allowed = doc not in model and until > block_ms
        if allowed:
            model[doc] = {"until": until, "revoked": False, "by": None}
    elif method == "revoke":
        result = send(chain, "revoke", doc_hash=doc, reason="withdrawn")
        allowed = doc in model and not model[doc]["revoked"] and model[doc]["by"] is None
        if allowed:
            model[doc]["revoked"] = True
    else:
        result = send(chain, "supersede", old_hash=doc, new_hash=other, reason="typo")
        old = model.get(doc)
        allowed = (old is not None and not old["revoked"] and old["by"] is None
                   and other not in model and old["until"] > block_ms)
        if allowed:
            assert old is not None
            old["by"] = other
            model[other] = {"until": old["until"], "revoked": False, "by": None}
    assert (result.code == ResultCode.OK) == allowed, result.log


def model_status(entry: dict[str, Any] | None, at_ms: int) -> str:
    if entry is None:
        return "unknown"
    if entry["revoked"]:
        return "revoked"
    if entry["by"] is not None:
        return "superseded"
    return "expired" if at_ms >= entry["until"] else "valid"
