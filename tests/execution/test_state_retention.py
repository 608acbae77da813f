"""State tree retention: old versions pruned as blocks commit, pinned and recent ones kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from seoulchain.client.audit import audit_chain
from seoulchain.errors import LocalError
from seoulchain.execution.engine import STATE_RETENTION_VERSIONS_DEFAULT, Engine
from seoulchain.execution.service import compute_nonce_key, load_services
from seoulchain.node.config import NodeConfig
from seoulchain.proofs.smt import VersionUnavailableError, compute_key_hash, verify_proof
from tests.conftest import LocalChain


class InjectedCrash(Exception):
    """Stands in for the process dying in the middle of a block's transaction."""


def count_nodes(chain: LocalChain) -> int:
    table = chain.store.state_tree.table
    return chain.store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def grow(chain: LocalChain, blocks: int) -> None:
    for _ in range(blocks):
        chain.commit(chain.make_tx(), chain.make_tx())


def issuer_nonce_key(chain: LocalChain) -> bytes:
    return b"auth/" + compute_nonce_key(chain.issuer.public_key)


def assert_provable(chain: LocalChain, version: int) -> None:
    """The issuer's nonce key has a valid proof at `version` against that header's root."""
    block = chain.store.get_block(version)
    root = block.header.state_root if block is not None else chain.engine.tip.state_root
    key = issuer_nonce_key(chain)
    value_hash, proof = chain.engine.state_tree.get_with_proof(version, key)
    assert value_hash is not None
    verify_proof(root, compute_key_hash(key), value_hash, proof)


def test_retention_prunes_old_versions_and_keeps_recent_ones(chain: LocalChain) -> None:
    grow(chain, 10)
    rows_before = count_nodes(chain)
    tip_root = chain.engine.tip.state_root
    chain.engine.state_retention_versions = 3
    grow(chain, 1)  # height 11: versions below 8 go
    assert chain.store.get_state_tree_floor() == 8
    assert count_nodes(chain) < rows_before
    for version in range(8, 12):
        assert_provable(chain, version)
    for version in (1, 5, 7):
        with pytest.raises(VersionUnavailableError, match="pruned"):
            chain.engine.state_tree.get_with_proof(version, issuer_nonce_key(chain))
    assert chain.engine.state_tree.get_root(11) == chain.engine.tip.state_root != tip_root
    proof = chain.engine.get_state_proof("auth", compute_nonce_key(chain.issuer.public_key))
    assert proof.value is not None
    assert audit_chain(chain.genesis, chain.store, load_services()).ok


def test_pinned_versions_survive_pruning_until_unpinned(chain: LocalChain) -> None:
    grow(chain, 6)
    chain.store.pin_state_version(2)
    chain.store.pin_state_version(4)
    chain.engine.state_retention_versions = 2
    grow(chain, 4)  # height 10: floor 8
    for version in (2, 4, 8, 9, 10):
        assert_provable(chain, version)
    for version in (1, 3, 5, 7):
        with pytest.raises(VersionUnavailableError):
            chain.engine.state_tree.get_root(version)
    assert audit_chain(chain.genesis, chain.store, load_services()).ok
    rows = count_nodes(chain)
    chain.store.unpin_state_version(2)
    assert count_nodes(chain) < rows
    with pytest.raises(VersionUnavailableError):
        chain.engine.state_tree.get_root(2)
    assert_provable(chain, 4)
    with pytest.raises(VersionUnavailableError, match="cannot be pinned"):
        chain.store.pin_state_version(3)
    with pytest.raises(VersionUnavailableError, match="cannot be pinned"):
        chain.store.pin_state_version(99)
    assert chain.store.get_pinned_state_versions() == frozenset({4})
    assert audit_chain(chain.genesis, chain.store, load_services()).ok


def test_pruning_rolls_back_with_a_block_that_does_not_commit(chain: LocalChain) -> None:
    grow(chain, 6)
    rows = count_nodes(chain)

    def crash(at: str) -> None:
        if at == "state_tree":  # after the prune's deletes, before the block's commit
            raise InjectedCrash(at)

    chain.reopen(crash_hook=crash)
    chain.engine.state_retention_versions = 2
    pending = [chain.make_tx()]
    with pytest.raises(InjectedCrash):
        chain.commit(*pending)
    chain.reopen()
    assert count_nodes(chain) == rows and chain.store.get_state_tree_floor() == 0
    assert_provable(chain, 1)
    chain.engine.state_retention_versions = 2
    chain.commit(*pending)
    assert chain.store.get_state_tree_floor() == 5
    assert chain.store.prune_state_tree(5) == 0  # idempotent: nothing left to do
    assert_provable(chain, 5)
    assert audit_chain(chain.genesis, chain.store, load_services()).ok


def test_retention_is_configured_with_a_documented_default(tmp_path: Path,
                                                           chain: LocalChain) -> None:
    assert NodeConfig().state.retention_versions == STATE_RETENTION_VERSIONS_DEFAULT > 0
    path = tmp_path / "config.toml"
    path.write_text("[state]\nretention_versions = 0\n")
    assert NodeConfig.load(path).state.retention_versions == 0
    path.write_text("[state]\nretention = 5\n")
    with pytest.raises(LocalError, match="unknown option"):
        NodeConfig.load(path)
    path.write_text("[state]\nretention_versions = -1\n")
    with pytest.raises(LocalError, match=r"\[state\] retention_versions"):
        NodeConfig.load(path)
    with pytest.raises(LocalError, match="retention"):
        Engine(chain.genesis, chain.store, load_services(), state_retention_versions=-1)
