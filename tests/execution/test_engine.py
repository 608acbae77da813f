"""Execution engine: every admission rule, failure isolation, and block validation."""

from __future__ import annotations

import os
from dataclasses import replace

import cbor2
import pytest

from seoulchain.codec import decode, encode
from seoulchain.crypto import SigningKey
from seoulchain.execution.engine import InvalidBlock
from seoulchain.execution.results import ResultCode
from seoulchain.execution.state import StateCache
from seoulchain.ledger.types import TX_BYTES_MAX, Block
from tests.conftest import LocalChain


def test_check_tx_accepts_a_well_formed_anchor(chain: LocalChain) -> None:
    check = chain.engine.check_tx(chain.make_tx().encode())
    assert check.code == ResultCode.OK


def test_check_tx_refuses_a_forged_signature(chain: LocalChain) -> None:
    tx = chain.make_tx()
    forged = replace(tx, signature=bytes([tx.signature[0] ^ 1]) + tx.signature[1:])
    check = chain.engine.check_tx(forged.encode())
    assert check.code == ResultCode.BAD_SIGNATURE
    assert "signature" in check.log


def test_check_tx_refuses_a_signature_by_another_key(chain: LocalChain) -> None:
    tx = chain.make_tx()
    other = SigningKey(bytes([9]) * 32)
    stolen = replace(tx, signature=other.sign(tx.sign_bytes()))
    assert chain.engine.check_tx(stolen.encode()).code == ResultCode.BAD_SIGNATURE


def test_check_tx_refuses_the_wrong_chain(chain: LocalChain) -> None:
    check = chain.engine.check_tx(chain.make_tx(chain_id="other-chain").encode())
    assert check.code == ResultCode.WRONG_CHAIN
    assert "other-chain" in check.log


def test_replayed_transaction_is_refused_by_nonce(chain: LocalChain) -> None:
    tx = chain.make_tx()
    chain.commit(tx)
    check = chain.engine.check_tx(tx.encode())
    assert check.code == ResultCode.BAD_NONCE


def test_commit_forgets_its_txs_from_the_admission_caches(chain: LocalChain) -> None:
    """A committed tx can never be included again (its nonce is used): keeping its decoding
    and verified signature would only hold memory until evicted."""
    committed, pending = chain.make_tx(), chain.make_tx()
    raw = committed.encode()
    assert chain.engine.check_tx(raw).ok and chain.engine.check_tx(pending.encode()).ok
    chain.commit(committed)
    assert raw not in chain.engine.decoded and committed.hash() not in chain.engine.verified
    assert pending.encode() in chain.engine.decoded and pending.hash() in chain.engine.verified
    assert chain.engine.check_tx(raw).code == ResultCode.BAD_NONCE  # checked afresh


def test_state_cache_keeps_hot_keys_and_stays_bounded() -> None:
    """The read cache evicts the least recently used entry: a key read again and again (a
    signer's nonce) survives a stream of one-off reads (new documents), and the cache never
    holds more than its bound."""
    store = {b"hot": b"1", **{b"cold/%d" % index: b"x" for index in range(100)}}
    reads: list[bytes] = []

    class Base:
        def get_state(self, key: bytes) -> bytes | None:
            reads.append(key)
            return store.get(key)

    cache = StateCache(Base(), entries_max=8)
    for index in range(100):
        assert cache.get_state(b"hot") == b"1"
        assert cache.get_state(b"cold/%d" % index) == b"x"
        assert len(cache.entries) <= 8
    assert reads.count(b"hot") == 1


def test_nonce_far_ahead_is_refused(chain: LocalChain) -> None:
    check = chain.engine.check_tx(chain.make_tx(nonce=10_000).encode())
    assert check.code == ResultCode.BAD_NONCE
    assert "window" in check.log


def test_expired_transaction_is_refused(chain: LocalChain) -> None:
    chain.commit(chain.make_tx())
    check = chain.engine.check_tx(chain.make_tx(expiry_height=1).encode())
    assert check.code == ResultCode.EXPIRED


def test_unknown_service_and_method_are_refused_by_name(chain: LocalChain) -> None:
    check = chain.engine.check_tx(chain.make_tx(service="lottery", args={}).encode())
    assert check.code == ResultCode.UNKNOWN_SERVICE
    assert "notary" in check.log
    check = chain.engine.check_tx(chain.make_tx(method="burn", args={}).encode())
    assert check.code == ResultCode.UNKNOWN_METHOD
    assert "anchor" in check.log


def test_caller_without_the_role_is_refused(chain: LocalChain) -> None:
    stranger = SigningKey(bytes([7]) * 32)
    check = chain.engine.check_tx(chain.make_tx(stranger).encode())
    assert check.code == ResultCode.UNAUTHORIZED
    assert "notary.issuer" in check.log


@pytest.mark.parametrize("args", [
    {"doc_hash": b"short", "kind": "permit"},
    {"doc_hash": os.urandom(32)},
    {"doc_hash": os.urandom(32), "kind": "permit", "extra": 1},
    {"doc_hash": "0" * 64, "kind": "permit"},
    {"doc_hash": os.urandom(32), "kind": "permit", "metadata": {"k": 5}},
])
def test_arguments_not_matching_the_schema_are_refused(chain: LocalChain,
                                                       args: dict[str, object]) -> None:
    check = chain.engine.check_tx(chain.make_tx(args=args).encode())
    assert check.code == ResultCode.BAD_ARGS
    assert "notary.anchor" in check.log


def test_oversized_transaction_is_refused(chain: LocalChain) -> None:
    args = {"doc_hash": os.urandom(32), "kind": "permit", "metadata": {"x": "a" * TX_BYTES_MAX}}
    raw = encode(chain.make_tx(args=args).to_cbor())
    check = chain.engine.check_tx(raw)
    assert check.code == ResultCode.TOO_LARGE


def test_non_canonical_cbor_is_refused(chain: LocalChain) -> None:
    tx = chain.make_tx()
    fields = tx.to_cbor()
    # The same value with an indefinite-length outer array is valid CBOR but not canonical.
    raw = cbor2.dumps(fields, canonical=True)
    indefinite = b"\x9f" + raw[1:] + b"\xff"
    assert decode(raw) == fields
    assert chain.engine.check_tx(indefinite).code == ResultCode.MALFORMED
    assert chain.engine.check_tx(b"\xff\x00garbage").code == ResultCode.MALFORMED


def test_chain_keeps_running_after_bad_input(chain: LocalChain) -> None:
    assert not chain.mempool.add(b"\x00").ok
    assert not chain.mempool.add(chain.make_tx(chain_id="x", nonce=99).encode()).ok
    committed = chain.commit(chain.make_tx())
    assert committed.block.height == 1
    assert committed.execution.results[0].ok


def test_failing_tx_changes_no_state_but_consumes_its_nonce(chain: LocalChain) -> None:
    doc = os.urandom(32)
    chain.commit(chain.make_tx(args={"doc_hash": doc, "kind": "permit"}))
    before = dict(chain.store.iter_state())
    duplicate = chain.make_tx(args={"doc_hash": doc, "kind": "other"})
    committed = chain.commit(duplicate)
    result = committed.execution.results[0]
    assert result.code == ResultCode.REFUSED
    assert "already anchored" in result.log
    after = dict(chain.store.iter_state())
    changed = {key for key in after if before.get(key) != after[key]}
    assert changed == {b"auth/nonce/" + chain.issuer.public_key}
    record = chain.engine.query("notary", "document", {"doc_hash": doc.hex()})
    assert record["kind"] == "permit"


def test_prepare_proposal_skips_admission_failures(chain: LocalChain) -> None:
    good = chain.make_tx()
    gap = chain.make_tx(nonce=good.nonce + 5)
    block = chain.engine.prepare_proposal(time_ms=chain.clock_ms + 1,
                                          proposer=chain.validator.public_key,
                                          candidates=[gap.encode(), good.encode()],
                                          last_commit=None)
    assert list(block.txs) == [good.encode()]


def test_identical_blocks_give_identical_roots_on_two_engines(chain: LocalChain) -> None:
    txs = [chain.make_tx() for _ in range(20)]
    committed = chain.commit(*txs)
    other = LocalChain(chain.path.with_name("other.sqlite"), chain.genesis, chain.validator,
                       chain.issuer)
    execution = other.engine.process_proposal(committed.block)
    assert execution.state_root == committed.block.header.state_root
    assert execution.results_root == committed.block.header.results_root
    other.store.close()


@pytest.mark.parametrize("field_name", ["tx_root", "log_root", "state_root", "results_root",
                                        "validators_hash"])
def test_process_proposal_rejects_a_wrong_root(chain: LocalChain, field_name: str) -> None:
    block = chain.engine.prepare_proposal(time_ms=chain.clock_ms + 1,
                                          proposer=chain.validator.public_key,
                                          candidates=[chain.make_tx().encode()],
                                          last_commit=None)
    chain.engine.executions.clear()
    bad_header = replace(block.header, **{field_name: bytes(32)})
    with pytest.raises(InvalidBlock, match=field_name):
        chain.engine.process_proposal(Block(bad_header, block.txs, None))


def test_process_proposal_rejects_a_block_with_a_forged_tx(chain: LocalChain) -> None:
    tx = chain.make_tx()
    forged = replace(tx, signature=bytes(64)).encode()
    block = chain.engine.prepare_proposal(time_ms=chain.clock_ms + 1,
                                          proposer=chain.validator.public_key,
                                          candidates=[tx.encode()], last_commit=None)
    chain.engine.executions.clear()
    with pytest.raises(InvalidBlock, match="signature"):
        chain.engine.process_proposal(Block(block.header, (forged,), None))


def test_process_proposal_rejects_bad_links(chain: LocalChain) -> None:
    chain.commit(chain.make_tx())
    block = chain.engine.prepare_proposal(time_ms=chain.clock_ms + 1,
                                          proposer=chain.validator.public_key,
                                          candidates=[chain.make_tx().encode()],
                                          last_commit=chain.store.get_commit(1))
    chain.engine.executions.clear()
    for changes, reason in [({"prev_block_id": bytes(32)}, "prev_block_id"),
                            ({"height": 5}, "height"),
                            ({"time_ms": 0}, "time"),
                            ({"proposer": bytes(32)}, "proposer"),
                            ({"chain_id": "other"}, "chain")]:
        with pytest.raises(InvalidBlock, match=reason):
            chain.engine.process_proposal(Block(replace(block.header, **changes), block.txs,
                                                block.last_commit))


def test_signature_is_verified_once_per_transaction(chain: LocalChain,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import seoulchain.execution.engine as engine_module

    calls = []
    real = engine_module.is_valid_signature

    def counting(*args: object) -> bool:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "is_valid_signature", counting)
    chain.commit(*[chain.make_tx() for _ in range(5)])
    assert len(calls) == 5


def test_transaction_decode_refuses_wrong_version(chain: LocalChain) -> None:
    fields = chain.make_tx().to_cbor()
    fields[0] = 2
    assert chain.engine.check_tx(encode(fields)).code == ResultCode.MALFORMED
