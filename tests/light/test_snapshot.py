"""State sync snapshots: build, verify chunk by chunk, restore, and continue the chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from seoulchain.client.audit import audit_chain
from seoulchain.codec import decode, encode
from seoulchain.consensus.evidence import verify_evidence_bytes
from seoulchain.errors import LocalError, RemoteError
from seoulchain.execution.engine import Engine
from seoulchain.execution.service import load_services
from seoulchain.ledger.store import BlockStore
from seoulchain.light import snapshot as snapshot_module
from seoulchain.light.lightclient import LightClient
from seoulchain.light.snapshot import (
    BadChunk,
    BadManifest,
    Chunk,
    Manifest,
    SnapshotRestorer,
    build_subtree,
    build_top,
    compute_root_node,
    hash_entries,
    verify_manifest,
)
from seoulchain.node.proofs import StoreProofSource
from seoulchain.node.statesync import (
    SnapshotFiles,
    StateSyncFailed,
    restore_snapshot,
    take_snapshot,
)
from seoulchain.proofs.smt import EMPTY_HASH, MemoryNodeStore, SparseMerkleTree
from tests.conftest import LocalChain, make_key


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut the few dozen entries of a test chain into 16 chunks, as a big state would be."""
    monkeypatch.setattr(snapshot_module, "CHUNK_ENTRIES_TARGET", 4)


def grow_chain(chain: LocalChain, blocks: int = 6, txs_per_block: int = 5) -> None:
    """Commit anchors and validator-set changes (several set entries in the chain state)."""
    for index in range(blocks):
        txs = [chain.make_tx() for _ in range(txs_per_block)]
        if index in (1, 3):
            txs.append(chain.make_tx(service="gov", method="propose",
                                     args={"kind": "set_validator", "deadline_height": 1000,
                                           "public_key": make_key(40 + index).public_key,
                                           "power": 1, "name": f"extra{index}"}))
        chain.commit(*txs)


def verified_manifest(chain: LocalChain) -> tuple[Manifest, tuple[bytes, ...]]:
    snapshot = take_snapshot(chain.store)
    manifest = Manifest.decode(snapshot.manifest.encode())
    light = LightClient.from_genesis(chain.genesis)
    trusted = light.verify_to(manifest.height,
                              StoreProofSource(chain.genesis, chain.store).get_light_block)
    verify_manifest(manifest, chain.genesis.chain_id, trusted.validators)
    return manifest, snapshot.chunks


def restore_into(path: Path, chain: LocalChain, manifest: Manifest,
                 chunks: tuple[bytes, ...], **kwargs: object) -> BlockStore:
    store = BlockStore(path)
    restore_snapshot(store, chain.genesis, manifest, [chunks.__getitem__], **kwargs)  # type: ignore[arg-type]
    return store


def test_round_trip_restores_state_and_continues_like_a_replayed_node(
        chain: LocalChain, tmp_path: Path) -> None:
    grow_chain(chain)
    manifest, chunks = verified_manifest(chain)
    assert manifest.height == chain.engine.height
    assert manifest.chunk_count == 16
    restored = restore_into(tmp_path / "restored.sqlite", chain, manifest, chunks,
                            files=SnapshotFiles(tmp_path / "snapshots"))
    assert list(restored.iter_state()) == list(chain.store.iter_state())
    assert restored.get_base_height() == manifest.height
    assert restored.get_block(manifest.height) is None  # blocks are held from base + 1
    engine = Engine(chain.genesis, restored, load_services(), verify_evidence_bytes)
    assert engine.tip == chain.engine.tip
    assert (engine.last_validators, engine.validators, engine.next_validators) == (
        chain.engine.last_validators, chain.engine.validators, chain.engine.next_validators)
    assert len(engine.validators.validators) == 3
    for _ in range(3):
        committed = chain.commit(*[chain.make_tx() for _ in range(4)])
        block = committed.block
        engine.commit(block, chain.store.get_commit(block.height))
        assert engine.tip == chain.engine.tip
    proof = engine.get_state_proof("notary", b"x")
    assert proof.height == chain.engine.height
    # The audit of the state-synced store replays from the snapshot on.
    report = audit_chain(chain.genesis, restored, load_services())
    assert report.ok, report.failure
    assert report.blocks == 3
    restored.close()


def test_chunked_build_gives_the_state_trees_root_and_nodes() -> None:
    """At version 0 the restored layout must equal the tree's own, node for node."""
    tree = SparseMerkleTree(MemoryNodeStore())
    for entries in ([], [(b"a", b"1")], [(b"a", b"1"), (b"b", b"2")],
                    [(i.to_bytes(2, "big"), bytes([i % 256])) for i in range(300)]):
        batch = tree.apply_batch(0, dict(entries))
        hashed = [item[:3] for item in hash_entries(entries)]
        for nibbles in (0, 1, 2):
            paths = [format(index, f"0{nibbles}x") if nibbles else ""
                     for index in range(16 ** nibbles)]
            nodes: list[tuple[bytes, bytes]] = []
            subtrees = [build_subtree(path, [item for item in hashed if item[0].startswith(path)],
                                      0, nodes) for path in paths]
            top = build_top("", nibbles, subtrees, 0, nodes)
            root_row = compute_root_node(top, 0)
            if root_row is not None:
                nodes.append(root_row)
            assert top.hash == batch.root
            assert sorted(nodes) == sorted(batch.new_nodes)
    assert build_top("", 0, [build_subtree("", [], 1, None)], 1, None).hash == EMPTY_HASH


def test_every_flipped_chunk_byte_is_refused_and_never_half_applied(
        chain: LocalChain) -> None:
    grow_chain(chain, blocks=2)
    manifest, chunks = verified_manifest(chain)
    index = next(i for i, info in enumerate(manifest.chunks) if info.kind == 2)
    data = chunks[index]
    for position in range(len(data)):
        bad = bytearray(data)
        bad[position] ^= 0x01
        restorer = SnapshotRestorer(manifest)
        with pytest.raises(BadChunk) as caught:
            restorer.add_chunk(index, bytes(bad))
        assert caught.value.index == index
        assert restorer.subtrees == {}
    # A chunk that is valid but belongs elsewhere, or drops or reorders entries, fails too.
    other = next(i for i, info in enumerate(manifest.chunks) if i != index and info.kind)
    with pytest.raises(BadChunk):
        SnapshotRestorer(manifest).add_chunk(index, chunks[other])
    entries = Chunk.decode(data, index).entries
    for forged in (entries[1:], entries[::-1], entries + entries[:1]):
        with pytest.raises(BadChunk):
            SnapshotRestorer(manifest).add_chunk(index, Chunk(manifest.height, index,
                                                              forged).encode())


def test_every_flipped_manifest_byte_is_refused(chain: LocalChain) -> None:
    grow_chain(chain, blocks=2)
    manifest, _ = verified_manifest(chain)
    validators = chain.engine.last_validators
    data = manifest.encode()
    for position in range(len(data)):
        bad = bytearray(data)
        bad[position] ^= 0x01
        with pytest.raises(RemoteError):
            verify_manifest(Manifest.decode(bytes(bad)), chain.genesis.chain_id, validators)


def test_wrong_header_or_commit_is_refused(chain: LocalChain) -> None:
    grow_chain(chain, blocks=3)
    manifest, _ = verified_manifest(chain)
    earlier = chain.store.get_block(manifest.height - 1)
    assert earlier is not None
    fields = manifest.to_cbor()
    swapped_commit = list(fields)
    swapped_commit[3] = chain.store.get_commit(manifest.height - 1).to_cbor()  # type: ignore
    swapped_header = list(fields)
    swapped_header[2] = earlier.header.to_cbor()
    for forged in (swapped_commit, swapped_header):
        with pytest.raises(BadManifest):
            verify_manifest(Manifest.decode(encode(forged)), chain.genesis.chain_id,
                            chain.engine.last_validators)
    # Signed by a set that is not the trusted one: refused at the commit step.
    stranger_set = chain.genesis.validators.of(
        [*chain.genesis.validators.validators[:0],
         type(chain.genesis.validators.validators[0])(make_key(9).public_key, 10, "x")])
    with pytest.raises(BadManifest) as caught:
        verify_manifest(manifest, chain.genesis.chain_id, stranger_set)
    assert caught.value.step == "header"
    with pytest.raises(BadManifest):
        verify_manifest(manifest, "another-chain", chain.engine.last_validators)
    assert decode(manifest.encode())[1] == manifest.height


def test_a_bad_chunk_is_refetched_from_another_source(chain: LocalChain,
                                                      tmp_path: Path) -> None:
    grow_chain(chain, blocks=2)
    manifest, chunks = verified_manifest(chain)
    asked: list[tuple[str, int]] = []

    def liar(index: int) -> bytes:
        asked.append(("liar", index))
        return Chunk(manifest.height, index, ((b"notary/forged", b"x"),)).encode()

    def honest(index: int) -> bytes:
        asked.append(("honest", index))
        return chunks[index]

    store = BlockStore(tmp_path / "restored.sqlite")
    restore_snapshot(store, chain.genesis, manifest, [liar, honest])
    assert list(store.iter_state()) == list(chain.store.iter_state())
    assert ("liar", 0) in asked and ("honest", 0) in asked
    store.close()
    lonely = BlockStore(tmp_path / "lonely.sqlite")
    with pytest.raises(StateSyncFailed, match="chunk 0"):
        restore_snapshot(lonely, chain.genesis, manifest, [liar])
    assert lonely.is_blank()
    lonely.close()


RESTORE_STEPS = ["restore_begin", "restore_chunk", "restore_tree", "restore_base"]


class InjectedCrash(Exception):
    """Stands in for the process dying between two writes of the restore."""


@pytest.mark.parametrize("step", RESTORE_STEPS)
def test_crash_during_restore_leaves_nothing_then_restore_succeeds(
        chain: LocalChain, tmp_path: Path, step: str) -> None:
    grow_chain(chain, blocks=2)
    manifest, chunks = verified_manifest(chain)

    def crash(at: str) -> None:
        if at == step:
            raise InjectedCrash(at)

    path = tmp_path / "restored.sqlite"
    store = BlockStore(path, crash_hook=crash)
    with pytest.raises(InjectedCrash):
        restore_snapshot(store, chain.genesis, manifest, [chunks.__getitem__])
    store.close()
    store = BlockStore(path)
    assert store.is_blank()
    assert store.db.execute("SELECT COUNT(*) FROM state_nodes").fetchone()[0] == 0
    restore_snapshot(store, chain.genesis, manifest, [chunks.__getitem__])
    assert store.get_tip() == chain.store.get_tip()
    store.close()


def test_restore_refuses_a_store_that_is_not_blank(chain: LocalChain) -> None:
    grow_chain(chain, blocks=1)
    manifest, chunks = verified_manifest(chain)
    with pytest.raises(LocalError, match="not empty"):
        restore_snapshot(chain.store, chain.genesis, manifest, [chunks.__getitem__])
