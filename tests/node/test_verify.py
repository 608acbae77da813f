"""Signature checks off the event loop: what verified is remembered, what did not is not."""

from __future__ import annotations

import asyncio
import dataclasses

from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.crypto import SigningKey, sha256
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Transaction, Validator, ValidatorSet
from seoulchain.node.verify import SignatureVerifier

CHAIN_ID = "seoul-verify-test"
ISSUER = SigningKey(sha256(b"verify-test/issuer"))


def make_engine() -> Engine:
    validator = SigningKey(sha256(b"verify-test/validator"))
    genesis = Genesis(CHAIN_ID, 1_700_000_000_000,
                      ValidatorSet.of([Validator(validator.public_key, 1, "v0")]),
                      {"notary.issuer": (ISSUER.public_key,)})
    return Engine(genesis, BlockStore(":memory:"), load_services(), verify_evidence_bytes)


def make_tx(nonce: int) -> Transaction:
    return Transaction.create(ISSUER, chain_id=CHAIN_ID, nonce=nonce, expiry_height=10**6,
                              service="notary", method="anchor",
                              args={"doc_hash": sha256(b"doc %d" % nonce), "kind": "permit"})


def test_verifier_remembers_good_signatures_only_and_admission_agrees() -> None:
    engine = make_engine()
    verifier = SignatureVerifier(engine, workers=2)
    good = [make_tx(nonce) for nonce in range(1, 201)]
    forged = dataclasses.replace(make_tx(999), signature=bytes(64))
    raws = [tx.encode() for tx in good] + [forged.encode(), b"not a tx"]
    try:
        asyncio.run(verifier.preverify(raws))
    finally:
        verifier.close()
    assert verifier.verified == 201  # the undecodable one is left to admission
    assert all(sha256(tx.encode()) in engine.verified for tx in good)
    assert sha256(forged.encode()) not in engine.verified
    assert engine.check_tx(good[0].encode()).ok
    assert not engine.check_tx(forged.encode()).ok
