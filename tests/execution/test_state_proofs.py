"""State root and state proofs: the header's state_root is the state tree's root at h."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from seoulchain.errors import DecodeError, LocalError, StorageError, VerificationError
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import (
    AUTH_NAMESPACE,
    compute_nonce_key,
    compute_role_key,
    load_services,
)
from seoulchain.ledger.types import Block
from seoulchain.proofs import StateProof, is_valid_state_proof, verify_state_proof
from seoulchain.proofs.smt import (
    EMPTY_HASH,
    MemoryNodeStore,
    SparseMerkleProof,
    SparseMerkleTree,
    encode_node_key,
)
from seoulchain.services.notary import compute_doc_key
from tests.conftest import LocalChain


def anchor(chain: LocalChain, doc_hash: bytes) -> Block:
    """Commit one block anchoring `doc_hash`; return it."""
    return chain.commit(chain.make_tx(args={"doc_hash": doc_hash, "kind": "permit"})).block


def header_root(chain: LocalChain, height: int) -> bytes:
    block = chain.store.get_block(height)
    assert block is not None
    return block.header.state_root


def test_state_root_is_the_tree_root_of_the_whole_state(chain: LocalChain) -> None:
    for _ in range(3):
        chain.commit(*[chain.make_tx() for _ in range(5)])
    # docs/spec/state-tree.md §2: the root is a function of the set of entries alone, so a
    # fresh tree over the stored state in one batch has the header's root.
    fresh = SparseMerkleTree(MemoryNodeStore()).apply_batch(0, dict(chain.store.iter_state()))
    assert fresh.root == header_root(chain, 3) == chain.engine.tip.state_root


def test_genesis_state_root_is_version_0_of_the_tree(chain: LocalChain) -> None:
    genesis_root = chain.store.get_meta("genesis_state_root")
    assert genesis_root == chain.engine.state_tree.get_root(0) != EMPTY_HASH
    proof = chain.engine.get_state_proof(
        AUTH_NAMESPACE, compute_role_key("notary.issuer", chain.issuer.public_key))
    assert proof.value is not None
    assert proof.height == 0
    assert isinstance(genesis_root, bytes)
    verify_state_proof(genesis_root, proof)


def test_proofs_of_present_and_absent_keys_verify_against_the_header(chain: LocalChain) -> None:
    doc = os.urandom(32)
    block = anchor(chain, doc)
    record = chain.engine.get_state_proof("notary", compute_doc_key(doc))
    nonce = chain.engine.get_state_proof(AUTH_NAMESPACE,
                                         compute_nonce_key(chain.issuer.public_key))
    absent = chain.engine.get_state_proof("notary", os.urandom(32))
    root = block.header.state_root
    assert record.height == nonce.height == absent.height == block.height == 1
    assert record.key.startswith(b"notary/") and record.value is not None
    assert record.value == chain.store.get_state(record.key)
    assert absent.value is None
    for proof in (record, nonce, absent):
        verify_state_proof(root, proof)
        assert is_valid_state_proof(root, proof)


def test_altered_value_key_or_proof_fails(chain: LocalChain) -> None:
    doc = os.urandom(32)
    root = anchor(chain, doc).header.state_root
    proof = chain.engine.get_state_proof("notary", compute_doc_key(doc))
    assert proof.value is not None
    forged = [replace(proof, value=proof.value[:-1] + bytes([proof.value[-1] ^ 1])),
              replace(proof, value=None),
              replace(proof, key=b"notary/" + os.urandom(32)),
              replace(proof, proof=SparseMerkleProof(None, ()).encode())]
    for bad in forged:
        with pytest.raises(VerificationError):
            verify_state_proof(root, bad)
        assert not is_valid_state_proof(root, bad)
    absent = chain.engine.get_state_proof("notary", os.urandom(32))
    with pytest.raises(VerificationError):
        verify_state_proof(root, replace(absent, value=b"\xa0"))
    with pytest.raises(DecodeError):
        verify_state_proof(root, replace(proof, proof=proof.proof + b"\x00"))
    assert not is_valid_state_proof(root, replace(proof, proof=b""))
    with pytest.raises(VerificationError):
        verify_state_proof(bytes(32), proof)


def test_proofs_are_for_the_latest_height(chain: LocalChain) -> None:
    doc = os.urandom(32)
    first_root = anchor(chain, doc).header.state_root
    old = chain.engine.get_state_proof(AUTH_NAMESPACE,
                                       compute_nonce_key(chain.issuer.public_key))
    block = anchor(chain, os.urandom(32))
    new = chain.engine.get_state_proof(AUTH_NAMESPACE,
                                       compute_nonce_key(chain.issuer.public_key))
    assert (old.height, new.height) == (1, 2) and old.value != new.value
    verify_state_proof(first_root, old)
    verify_state_proof(block.header.state_root, new)
    assert not is_valid_state_proof(block.header.state_root, old)
    # The record anchored at height 1 is unchanged, and provable against header 2.
    record = chain.engine.get_state_proof("notary", compute_doc_key(doc))
    verify_state_proof(block.header.state_root, record)


def test_get_state_proof_refuses_misuse(chain: LocalChain) -> None:
    with pytest.raises(LocalError):
        chain.engine.get_state_proof("notary", "text")  # type: ignore[arg-type]
    with pytest.raises(LocalError):
        chain.engine.get_state_proof(b"notary", b"key")  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        verify_state_proof(bytes(32), "not a proof")  # type: ignore[arg-type]
    proof = StateProof(0, b"k", "text", b"")  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        verify_state_proof(bytes(32), proof)


def test_empty_blocks_still_advance_the_tree_version(chain: LocalChain) -> None:
    anchor(chain, os.urandom(32))
    for height in (2, 3):
        committed = chain.commit()
        assert committed.block.txs == ()
        assert chain.engine.state_tree.get_root(height) == committed.block.header.state_root
    assert header_root(chain, 3) == header_root(chain, 1)


def test_two_proposals_for_one_height_then_the_second_commits(chain: LocalChain) -> None:
    anchor(chain, os.urandom(32))
    engine = chain.engine
    last_commit = chain.store.get_commit(1)
    first = engine.prepare_proposal(time_ms=chain.clock_ms + 1,
                                    proposer=chain.validator.public_key,
                                    candidates=[chain.make_tx().encode()],
                                    last_commit=last_commit)
    chain.nonces[chain.issuer.public_key] -= 1
    second_tx = chain.make_tx()
    second = engine.prepare_proposal(time_ms=chain.clock_ms + 2,
                                     proposer=chain.validator.public_key,
                                     candidates=[second_tx.encode()], last_commit=last_commit)
    assert first.header.state_root != second.header.state_root
    chain.mempool.add(second_tx.encode())
    chain.clock_ms += 2
    engine.executions.pop(first.block_id())
    committed = chain.commit(advance_ms=0)
    assert committed.block.header.state_root == second.header.state_root
    assert engine.state_tree.get_root(2) == second.header.state_root
    verify_state_proof(second.header.state_root,
                       engine.get_state_proof(AUTH_NAMESPACE,
                                              compute_nonce_key(chain.issuer.public_key)))


def test_restart_checks_the_state_tree_against_the_tip(chain: LocalChain) -> None:
    anchor(chain, os.urandom(32))
    chain.reopen()
    assert chain.engine.state_tree.get_root(1) == header_root(chain, 1)
    root_key = encode_node_key(1, "")
    (data,) = chain.store.db.execute("SELECT node FROM state_nodes WHERE node_key = ?",
                                     (root_key,)).fetchone()
    chain.store.db.execute("UPDATE state_nodes SET node = ? WHERE node_key = ?",
                           (data[:-1] + bytes([data[-1] ^ 1]), root_key))
    with pytest.raises(StorageError, match="does not match"):
        Engine(chain.genesis, chain.store, load_services())
    chain.store.db.execute("DELETE FROM state_nodes WHERE node_key = ?", (root_key,))
    with pytest.raises(StorageError, match="height 1"):
        Engine(chain.genesis, chain.store, load_services())
