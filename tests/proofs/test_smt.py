"""Tests of the sparse Merkle state tree: a naive reference, properties, tampering, storage.

The reference below recomputes roots and proof paths straight from the definitions of
docs/spec/state-tree.md §2 with hashlib, over a plain dict of key hash -> value hash,
independently of the module under test: no nodes, no nibbles, no versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.errors import DecodeError, LocalError, StorageError, VerificationError
from seoulchain.ledger.state_nodes import SqliteNodeStore
from seoulchain.proofs import smt
from seoulchain.proofs.smt import (
    BATCH_UPDATES_MAX,
    EMPTY_HASH,
    NODE_BYTES_MAX,
    PROOF_BYTES_MAX,
    PROOF_SIBLINGS_MAX,
    Child,
    EmptyNode,
    InternalNode,
    LeafNode,
    MemoryNodeStore,
    SparseMerkleProof,
    SparseMerkleTree,
    TreeBatch,
    compute_key_hash,
    compute_value_hash,
    decode_node,
    decode_node_key,
    encode_node,
    encode_node_key,
    is_valid_membership,
    is_valid_non_membership,
    prune,
    verify_membership,
    verify_non_membership,
    verify_proof,
)
from seoulchain.vectors import state_tree as state_tree_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "docs/spec/vectors/state-tree.json"
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- The reference: roots and paths from the definitions ---------------------------------


def ref_sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def ref_bit(key_hash: bytes, depth: int) -> int:
    return key_hash[depth // 8] >> (7 - depth % 8) & 1


def ref_root(entries: dict[bytes, bytes], depth: int = 0) -> bytes:
    """Empty -> zeros; one entry -> its leaf; else node(left half, right half)."""
    if not entries:
        return bytes(32)
    if len(entries) == 1:
        ((key_hash, value_hash),) = entries.items()
        return ref_sha(b"\x00", key_hash, value_hash)
    left = {k: v for k, v in entries.items() if ref_bit(k, depth) == 0}
    right = {k: v for k, v in entries.items() if ref_bit(k, depth) == 1}
    return ref_sha(b"\x01", ref_root(left, depth + 1), ref_root(right, depth + 1))


def ref_path(entries: dict[bytes, bytes], key_hash: bytes
             ) -> tuple[tuple[bytes, bytes] | None, list[bytes]]:
    """Return the leaf (or None) that ends the key's path and the siblings, deepest first."""
    current, depth, top_down = entries, 0, []
    while len(current) > 1:
        side = ref_bit(key_hash, depth)
        same = {k: v for k, v in current.items() if ref_bit(k, depth) == side}
        other = {k: v for k, v in current.items() if ref_bit(k, depth) != side}
        top_down.append(ref_root(other, depth + 1))
        current, depth = same, depth + 1
    return next(iter(current.items()), None), top_down[::-1]


def ref_fold(key_hash: bytes, leaf: tuple[bytes, bytes] | None, siblings: list[bytes]) -> bytes:
    node = bytes(32) if leaf is None else ref_sha(b"\x00", *leaf)
    depth = len(siblings)
    for position, sibling in enumerate(siblings):
        if ref_bit(key_hash, depth - 1 - position):
            node = ref_sha(b"\x01", sibling, node)
        else:
            node = ref_sha(b"\x01", node, sibling)
    return node


def test_reference_model_small_cases() -> None:
    one, two = bytes(32), b"\x80" + bytes(31)
    leaf_one, leaf_two = ref_sha(b"\x00", one, b"v" * 32), ref_sha(b"\x00", two, b"w" * 32)
    assert ref_root({}) == bytes(32)
    assert ref_root({one: b"v" * 32}) == leaf_one
    assert ref_root({one: b"v" * 32, two: b"w" * 32}) == ref_sha(b"\x01", leaf_one, leaf_two)


# --- Helpers ------------------------------------------------------------------------------


class History:
    """A tree applied version by version, with the model state of every version."""

    def __init__(self, store: Any = None) -> None:
        self.store = MemoryNodeStore() if store is None else store
        self.tree = SparseMerkleTree(self.store)
        self.states: list[dict[bytes, bytes]] = []
        self.batches: list[TreeBatch] = []

    def apply(self, updates: dict[bytes, bytes | None], hashed: bool = False) -> TreeBatch:
        version = len(self.states)
        state = dict(self.states[-1]) if self.states else {}
        if hashed:
            batch = self.tree.apply_hashed_batch(version, updates)
            changes = updates
        else:
            batch = self.tree.apply_batch(version, updates)
            changes = {compute_key_hash(key): None if value is None else compute_value_hash(value)
                       for key, value in updates.items()}
        self.store.write_batch(batch)
        for key_hash, value_hash in changes.items():
            if value_hash is None:
                state.pop(key_hash, None)
            else:
                state[key_hash] = value_hash
        self.states.append(state)
        self.batches.append(batch)
        return batch

    def check_version(self, version: int, key_hashes: list[bytes]) -> None:
        """The root matches the reference; each key's proof is the reference path and verifies."""
        state = self.states[version]
        root = ref_root(state)
        assert self.tree.get_root(version) == root == self.batches[version].root
        for key_hash in key_hashes:
            value_hash, proof = self.tree.get_with_proof_by_hash(version, key_hash)
            assert value_hash == state.get(key_hash)
            leaf, siblings = ref_path(state, key_hash)
            assert proof.leaf == (None if leaf is None else LeafNode(*leaf))
            assert list(proof.siblings) == siblings
            assert SparseMerkleProof.decode(proof.encode()) == proof
            verify_proof(root, key_hash, value_hash, proof)


def reachable(tree: SparseMerkleTree, version: int) -> dict[bytes, Any]:
    """Return every node key reachable from the root of `version`, with its node."""
    found: dict[bytes, Any] = {}

    def visit(node_version: int, path: str) -> None:
        node = tree.read_node(node_version, path)
        found[encode_node_key(node_version, path)] = node
        if isinstance(node, InternalNode):
            for nibble, child in enumerate(node.children):
                if child is not None:
                    visit(child.version, path + format(nibble, "x"))

    visit(version, "")
    return found


def shape(tree: SparseMerkleTree, version: int) -> dict[str, Any]:
    """Return the stored tree of `version` by path, ignoring the versions nodes were made at."""
    result = {}
    for node_key, node in reachable(tree, version).items():
        _, path = decode_node_key(node_key)
        if isinstance(node, InternalNode):
            node = tuple(None if c is None else (c.hash, c.is_leaf) for c in node.children)
        result[path] = node
    return result


def key(index: int) -> bytes:
    return b"svc/key/%d" % index


def crafted_key_hash(bits: frozenset[int]) -> bytes:
    """A key hash of zeros with `bits` set: keys that share long prefixes (deep paths)."""
    value = 0
    for bit in bits:
        value |= 1 << (255 - bit)
    return value.to_bytes(32, "big")


# Positions chosen so that crafted keys diverge at the top, inside a nibble, on nibble
# borders and at the very last bits (depth 256).
CRAFTED_BITS = (0, 1, 3, 4, 7, 8, 100, 127, 128, 200, 251, 252, 254, 255)

updates_strategy = st.dictionaries(
    st.integers(0, 40).map(key), st.one_of(st.none(), st.binary(min_size=0, max_size=6)),
    max_size=12)
crafted_strategy = st.dictionaries(
    st.frozensets(st.sampled_from(CRAFTED_BITS), max_size=4).map(crafted_key_hash),
    st.one_of(st.none(), st.binary(min_size=32, max_size=32)), max_size=10)


# --- Known answers ------------------------------------------------------------------------



def test_smt_empty_tree_root_is_the_placeholder_and_proves_absence() -> None:
    history = History()
    batch = history.apply({})
    assert batch.root == EMPTY_HASH == bytes(32)
    value_hash, proof = history.tree.get_with_proof(0, b"anything")
    assert value_hash is None and proof == SparseMerkleProof(None, ())
    verify_non_membership(EMPTY_HASH, b"anything", proof)
    assert proof.encode() == bytes.fromhex("8501f6004080")


def test_smt_single_entry_root_is_its_leaf_hash() -> None:
    history = History()
    batch = history.apply({b"notary/doc": b"value"})
    key_hash, value_hash = hashlib.sha256(b"notary/doc").digest(), hashlib.sha256(b"value").digest()
    assert batch.root == ref_sha(b"\x00", key_hash, value_hash)
    found, proof = history.tree.get_with_proof(0, b"notary/doc")
    assert found == value_hash and proof.siblings == ()
    verify_membership(batch.root, b"notary/doc", value_hash, proof)


def test_smt_two_keys_split_at_the_first_differing_bit() -> None:
    left, right = crafted_key_hash(frozenset()), crafted_key_hash(frozenset({255}))
    history = History()
    history.apply({left: b"a" * 32, right: b"b" * 32}, hashed=True)
    history.check_version(0, [left, right, crafted_key_hash(frozenset({254}))])
    _, proof = history.tree.get_with_proof_by_hash(0, right)
    assert len(proof.siblings) == 256
    assert proof.siblings[0] == ref_sha(b"\x00", left, b"a" * 32)
    assert set(proof.siblings[1:]) == {EMPTY_HASH}
    # 1 listed sibling of 255 empty ones: the wire form stays small.
    assert len(proof.encode()) < 150


# --- Against the reference, with random batches --------------------------------------------


def run_history(batches: list[dict[bytes, bytes | None]], hashed: bool) -> History:
    history = History()
    for updates in batches:
        history.apply(updates, hashed=hashed)
    return history


def probe_keys(history: History, extra: list[bytes]) -> list[bytes]:
    seen = {key_hash for state in history.states for key_hash in state}
    return sorted(seen | set(extra))


@FAST
@given(st.lists(updates_strategy, min_size=1, max_size=6))
def test_smt_random_batches_match_the_reference_at_every_version(batches: list[Any]) -> None:
    history = run_history(batches, hashed=False)
    probes = probe_keys(history, [compute_key_hash(key(index)) for index in range(41, 44)])
    for version in range(len(batches)):
        history.check_version(version, probes)


@settings(FAST, max_examples=20)
@given(st.lists(crafted_strategy, min_size=1, max_size=4))
def test_smt_deep_paths_match_the_reference(batches: list[Any]) -> None:
    history = run_history(batches, hashed=True)
    probes = probe_keys(history, [crafted_key_hash(frozenset({bit})) for bit in (0, 254, 255)])
    for version in range(len(batches)):
        history.check_version(version, probes)


@pytest.mark.slow
@SLOW
@given(st.lists(updates_strategy, min_size=1, max_size=12))
def test_smt_random_batches_match_the_reference_slow(batches: list[Any]) -> None:
    history = run_history(batches, hashed=False)
    probes = probe_keys(history, [compute_key_hash(key(index)) for index in range(41, 50)])
    for version in range(len(batches)):
        history.check_version(version, probes)


@pytest.mark.slow
@settings(SLOW, max_examples=100)
@given(st.lists(crafted_strategy, min_size=1, max_size=10))
def test_smt_deep_paths_match_the_reference_slow(batches: list[Any]) -> None:
    history = run_history(batches, hashed=True)
    for version in range(len(batches)):
        history.check_version(version, probe_keys(history, []))


@pytest.mark.slow
def test_smt_large_random_history_matches_the_reference() -> None:
    import random

    rng = random.Random(7)
    history = History()
    for _ in range(25):
        history.apply({key(rng.randrange(3000)): None if rng.random() < 0.2 else rng.randbytes(4)
                       for _ in range(rng.randrange(1, 400))})
    for version in (0, 12, 24):
        history.check_version(version, [compute_key_hash(key(i)) for i in range(0, 3000, 37)])


# --- Canonical form -----------------------------------------------------------------------


@FAST
@given(updates_strategy, updates_strategy)
def test_smt_deleting_inserted_keys_restores_the_never_inserted_tree(
        base: dict[bytes, bytes | None], extra: dict[bytes, bytes | None]) -> None:
    base = {k: v for k, v in base.items() if v is not None}
    added = {k: v for k, v in extra.items() if v is not None and k not in base}
    history = History()
    history.apply(base)
    history.apply(added)
    history.apply(dict.fromkeys(added))
    assert history.batches[2].root == history.batches[0].root
    # Not only the root: the stored nodes collapse back to the same shape.
    assert shape(history.tree, 2) == shape(history.tree, 0)
    history.apply(dict.fromkeys(base))
    assert history.batches[3].root == EMPTY_HASH
    assert isinstance(history.tree.read_root(3), EmptyNode)


@FAST
@given(updates_strategy, st.randoms(use_true_random=False))
def test_smt_batch_order_does_not_matter(updates: dict[bytes, bytes | None], rng: Any) -> None:
    first = History()
    first.apply({key(index): b"seed" for index in range(0, 40, 3)})
    second = History()
    second.apply({key(index): b"seed" for index in reversed(range(0, 40, 3))})
    items = list(updates.items())
    rng.shuffle(items)
    assert first.apply(updates) == second.apply(dict(items))


@FAST
@given(updates_strategy, updates_strategy)
def test_smt_one_batch_equals_two_batches(first: dict[bytes, bytes | None],
                                          second: dict[bytes, bytes | None]) -> None:
    split = History()
    split.apply(first)
    split.apply(second)
    merged = History()
    merged.apply({**first, **second})
    assert split.batches[1].root == merged.batches[0].root
    assert shape(split.tree, 1) == shape(merged.tree, 0)


def test_smt_no_op_updates_write_only_a_new_root() -> None:
    history = History()
    history.apply({key(index): b"v" for index in range(50)})
    batch = history.apply({key(3): b"v", key(99): None})
    assert batch.root == history.batches[0].root
    assert [decode_node_key(node_key) for node_key, _ in batch.new_nodes] == [(1, "")]
    assert batch.stale_nodes == [smt.StaleNode(1, encode_node_key(0, ""))]


def test_smt_new_and_stale_nodes_are_exactly_what_changed() -> None:
    history = History()
    for version in range(6):
        history.apply({key(index): b"%d" % version
                       for index in range(version * 7, version * 7 + 20)})
        if version == 0:
            continue
        before, after = reachable(history.tree, version - 1), reachable(history.tree, version)
        batch = history.batches[version]
        assert {node_key for node_key, _ in batch.new_nodes} == after.keys() - before.keys()
        assert {entry.node_key for entry in batch.stale_nodes} == before.keys() - after.keys()
        assert all(decode_node_key(node_key)[0] == version for node_key, _ in batch.new_nodes)


# --- Proof verification is strict -----------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> History:
    history = History()
    history.apply({key(index): b"value %d" % index for index in range(200)})
    history.apply({key(index): None for index in range(0, 200, 3)})
    return history


@pytest.fixture(scope="module")
def proofs(sample: History) -> list[tuple[bytes, bytes | None, SparseMerkleProof]]:
    return sample_proofs(sample)


def sample_proofs(history: History) -> list[tuple[bytes, bytes | None, SparseMerkleProof]]:
    """A member, an absent key ending in an empty subtree, and one ending in a leaf."""
    found: dict[str, tuple[bytes, bytes | None, SparseMerkleProof]] = {}
    for index in range(400):
        value_hash, proof = history.tree.get_with_proof(1, key(index))
        kind = "member" if value_hash else "empty" if proof.leaf is None else "leaf"
        found.setdefault(kind, (key(index), value_hash, proof))
    return [found["member"], found["empty"], found["leaf"]]


def is_accepted(root: bytes, state_key: bytes, value_hash: bytes | None, data: bytes) -> bool:
    try:
        proof = SparseMerkleProof.decode(data)
        verify_proof(root, compute_key_hash(state_key), value_hash, proof)
    except (DecodeError, VerificationError):
        return False
    return True


def flips(data: bytes) -> Iterator[bytes]:
    for position in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            yield data[:position] + bytes([data[position] ^ mask]) + data[position + 1:]


def test_smt_every_flipped_byte_of_proof_root_or_value_fails(sample: History) -> None:
    root = sample.tree.get_root(1)
    for state_key, value_hash, proof in sample_proofs(sample):
        data = proof.encode()
        assert is_accepted(root, state_key, value_hash, data)
        for altered in flips(data):
            assert not is_accepted(root, state_key, value_hash, altered)
        for altered in flips(root):
            assert not is_accepted(altered, state_key, value_hash, data)
        if value_hash is not None:
            for altered in flips(value_hash):
                assert not is_accepted(root, state_key, altered, data)


def test_smt_claims_are_checked_against_the_proofs_leaf(sample: History) -> None:
    root = sample.tree.get_root(1)
    (member, value_hash, proof), (absent, _, empty_proof), (other, _, leaf_proof) = (
        sample_proofs(sample))
    assert value_hash is not None
    assert is_valid_membership(root, member, value_hash, proof)
    assert not is_valid_non_membership(root, member, proof)
    assert not is_valid_membership(root, absent, value_hash, empty_proof)
    assert is_valid_non_membership(root, absent, empty_proof)
    assert is_valid_non_membership(root, other, leaf_proof)
    assert not is_valid_membership(root, other, value_hash, leaf_proof)
    # A member's proof shows absence only of keys sharing its whole path: not of others.
    assert not is_valid_non_membership(root, absent, proof)
    with pytest.raises(VerificationError, match="membership needs a value hash"):
        verify_membership(root, member, None, proof)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [
    "not a proof", SparseMerkleProof(None, (b"x" * 31,)),
    SparseMerkleProof(None, (EMPTY_HASH, b"x" * 32)),
    SparseMerkleProof(None, (b"x" * 32,) * (PROOF_SIBLINGS_MAX + 1)),
    SparseMerkleProof(LeafNode(b"k" * 32, b"v" * 33), ()),
    SparseMerkleProof("leaf", ()),  # type: ignore[arg-type]
])
def test_smt_malformed_in_memory_proofs_are_refused(bad: Any) -> None:
    with pytest.raises(VerificationError):
        verify_proof(EMPTY_HASH, bytes(32), None, bad)


def test_smt_malformed_arguments_are_verification_errors(sample: History) -> None:
    root = sample.tree.get_root(1)
    member, value_hash, proof = sample_proofs(sample)[0]
    assert value_hash is not None
    for args in [(root[:31], member, value_hash), (root, "text key", value_hash),
                 (root, member, value_hash[:31]), (root, member, "hash")]:
        with pytest.raises(VerificationError):
            verify_membership(*args, proof)  # type: ignore[arg-type]


# --- Encodings and decoder fuzz --------------------------------------------------------------


def test_smt_limits_are_the_largest_valid_encodings() -> None:
    largest = SparseMerkleProof(LeafNode(b"k" * 32, b"v" * 32), (b"s" * 32,) * 256)
    assert len(largest.encode()) == PROOF_BYTES_MAX
    full = InternalNode(tuple(Child(2**64 - 1, bytes([n + 1]) * 32, True) for n in range(16)))
    assert len(encode_node(full)) == NODE_BYTES_MAX
    with pytest.raises(DecodeError, match="limit"):
        SparseMerkleProof.decode(largest.encode() + b"\x00")


def test_smt_every_prefix_of_a_valid_encoding_is_refused(sample: History) -> None:
    for _, _, proof in sample_proofs(sample):
        data = proof.encode()
        for end in range(len(data)):
            with pytest.raises(DecodeError):
                SparseMerkleProof.decode(data[:end])
    for node_data in list(sample.store.nodes.values())[:20]:
        decode_node(node_data)
        for end in range(len(node_data)):
            with pytest.raises(DecodeError):
                decode_node(node_data[:end])


def check_decoders(data: bytes) -> None:
    """Each decoder returns a value or raises DecodeError, nothing else."""
    for decoder in (SparseMerkleProof.decode, decode_node, decode_node_key):
        with contextlib.suppress(DecodeError):
            decoder(data)


@FAST
@given(st.binary(max_size=400))
def test_smt_decoders_raise_only_decode_error(data: bytes) -> None:
    check_decoders(data)


@FAST
@given(st.data())
def test_smt_mutated_proofs_decode_or_fail_cleanly(
        sample: History, proofs: list[Any], data: st.DataObject) -> None:
    root = sample.tree.get_root(1)
    state_key, value_hash, proof = data.draw(st.sampled_from(proofs))
    encoded = bytearray(proof.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(encoded) - 1))
        operation = data.draw(st.sampled_from(["set", "delete", "insert"]))
        if operation == "set":
            encoded[position] = data.draw(st.integers(0, 255))
        elif operation == "delete":
            del encoded[position]
        else:
            encoded.insert(position, data.draw(st.integers(0, 255)))
    if bytes(encoded) != proof.encode():
        assert not is_accepted(root, state_key, value_hash, bytes(encoded))


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(st.binary(max_size=2000))
def test_smt_decoders_raise_only_decode_error_slow(data: bytes) -> None:
    check_decoders(data)


@pytest.mark.parametrize(("fields", "fragment"), [
    ([2, 0], "format version"), ([1, 3], "unknown node kind"), ([1, 0, 0], "2 fields"),
    ([1, 1, bytes(32)], "4 fields"), ([1, 1, bytes(32), bytes(31)], "32 bytes"),
    ([1, 2, 0, 0, []], "at least one child"), ([1, 2, 1, 2, [[0, b"h" * 32]]], "does not exist"),
    ([1, 2, 1, 1, [[0, b"h" * 32]]], "must collapse"), ([1, 2, 3, 0, [[0, b"h" * 32]]],
                                                        "disagrees"),
    ([1, 2, 3, 0, [[0, b"h" * 32], [True, b"h" * 32]]], "uint64"),
    ([1, 2, 3, 0, [[0, b"h" * 32], [0, bytes(32)]]], "empty placeholder"),
    ([1, 2, 1 << 16, 0, []], "16-bit"), ([True, 0], "format version"),
])
def test_smt_node_decoder_rejects_malformed_nodes(fields: list[Any], fragment: str) -> None:
    from seoulchain.codec import encode

    with pytest.raises(DecodeError, match=fragment):
        decode_node(encode(fields))


def test_smt_node_keys_round_trip_and_sort_by_version() -> None:
    keys = [(0, ""), (0, "f"), (1, ""), (1, "0"), (1, "0f"), (2, "a" * 64), (256, "123")]
    encoded = [encode_node_key(version, path) for version, path in keys]
    assert [decode_node_key(node_key) for node_key in encoded] == keys
    assert sorted(encoded)[:2] == encoded[:2] and sorted(encoded)[-1] == encoded[-1]
    assert encoded[4] == bytes.fromhex("0000000000000001" "02" "0f")
    for bad in [b"", bytes(8), bytes(8) + b"\x41" + bytes(33), bytes(8) + b"\x01\x01",
                bytes(8) + b"\x02\x01\x02"]:
        with pytest.raises(DecodeError):
            decode_node_key(bad)


# --- Storage --------------------------------------------------------------------------------


def open_sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def commit(connection: sqlite3.Connection, store: SqliteNodeStore, batch: TreeBatch) -> None:
    connection.execute("BEGIN IMMEDIATE")
    store.write_batch(batch)
    connection.execute("COMMIT")


def test_smt_sqlite_store_round_trip(tmp_path: Path) -> None:
    connection = open_sqlite(tmp_path / "state.sqlite")
    store = SqliteNodeStore(connection)
    memory = History()
    tree = SparseMerkleTree(store)
    for version in range(8):
        updates = {key(index): None if index % 5 == version % 5 else b"%d" % version
                   for index in range(version * 10, version * 10 + 60)}
        batch = tree.apply_batch(version, updates)
        assert batch == memory.apply(updates)
        commit(connection, store, batch)
    connection.close()
    reopened = open_sqlite(tmp_path / "state.sqlite")
    store = SqliteNodeStore(reopened)  # CREATE TABLE IF NOT EXISTS: reopening is harmless
    tree = SparseMerkleTree(store)
    for version in range(8):
        assert tree.get_root(version) == memory.batches[version].root
        for index in range(0, 140, 7):
            assert tree.get_with_proof(version, key(index)) == (
                memory.tree.get_with_proof(version, key(index)))
    # The Jellyfish layout: one version's nodes are one contiguous key range.
    rows = reopened.execute("SELECT node_key FROM state_nodes WHERE node_key >= ? AND "
                            "node_key < ?", ((3).to_bytes(8, "big"),
                                             (4).to_bytes(8, "big"))).fetchall()
    assert [row[0] for row in rows] == [node_key for node_key, _ in memory.batches[3].new_nodes]
    reopened.close()


def test_smt_sqlite_store_writes_inside_the_callers_transaction(tmp_path: Path) -> None:
    connection = open_sqlite(tmp_path / "state.sqlite")
    store = SqliteNodeStore(connection, table="tree")
    tree = SparseMerkleTree(store)
    commit(connection, store, tree.apply_batch(0, {b"a": b"1"}))
    batch = tree.apply_batch(1, {b"b": b"2"})
    connection.execute("BEGIN IMMEDIATE")
    store.write_batch(batch)
    connection.execute("ROLLBACK")
    with pytest.raises(LocalError, match="version 1"):
        tree.get_root(1)
    commit(connection, store, batch)
    assert tree.get_root(1) == batch.root
    with pytest.raises(StorageError, match="overlaps"):
        commit(connection, store, batch)
    connection.execute("ROLLBACK")
    with pytest.raises(LocalError, match="table name"):
        SqliteNodeStore(connection, table="t; DROP TABLE tree")


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_smt_pruning_keeps_retained_versions_provable(tmp_path: Path, backend: str) -> None:
    connection = open_sqlite(tmp_path / "state.sqlite") if backend == "sqlite" else None
    store: Any = MemoryNodeStore() if connection is None else SqliteNodeStore(connection)
    history = History(store)
    for version in range(20):
        history.apply({key(index): None if (index + version) % 7 == 0 else b"%d" % version
                       for index in range(version * 5, version * 5 + 30)})
    retained = range(12, 20)
    live = set().union(*(reachable(history.tree, version).keys() for version in retained))
    assert prune(store, 12) > 0
    remaining = (set(store.nodes) if connection is None else
                 {row[0] for row in connection.execute("SELECT node_key FROM state_nodes")})
    assert remaining == live
    probes = [compute_key_hash(key(index)) for index in range(0, 130, 3)]
    for version in retained:
        history.check_version(version, probes)
    for version in range(12):
        with pytest.raises(LocalError, match="pruned"):
            history.tree.get_root(version)
    assert prune(store, 12) == 0
    history.apply({key(1000): b"after pruning"})
    history.check_version(20, probes)


def test_smt_corrupt_or_missing_nodes_are_storage_errors() -> None:
    history = History()
    history.apply({key(index): b"v" for index in range(64)})
    store = history.store
    inner = next(node_key for node_key in store.nodes if decode_node_key(node_key)[1] != "")
    original = store.nodes[inner]
    deep_key = next(k for k in (key(index) for index in range(64))
                    if compute_key_hash(k).hex().startswith(decode_node_key(inner)[1]))
    store.nodes[inner] = b"\xff"
    with pytest.raises(StorageError, match="corrupt"):
        history.tree.get_with_proof(0, deep_key)
    del store.nodes[inner]
    with pytest.raises(StorageError, match="missing"):
        history.tree.get_with_proof(0, deep_key)
    with pytest.raises(StorageError, match="missing"):
        history.tree.apply_batch(1, {deep_key: None})
    # A well-formed node that is not the one its parent committed to.
    node = decode_node(original)
    if isinstance(node, LeafNode):
        store.nodes[inner] = encode_node(LeafNode(node.key_hash, b"x" * 32))
    else:
        children = [c for c in node.children if c is not None]
        swapped = Child(children[0].version, b"y" * 32, children[0].is_leaf)
        store.nodes[inner] = encode_node(InternalNode(tuple(
            swapped if c == children[0] else c for c in node.children)))
    with pytest.raises(StorageError, match="hash"):
        history.tree.get_with_proof(0, deep_key)


# --- The direct node codec and the node cache -----------------------------------------------
#
# `encode_node` / `decode_node` write and parse the fixed node layouts directly; the generic
# codec (`_encode_node_with_codec`, `_decode_node_with_codec`) is the definition they must
# agree with on every input, valid or not.

VERSION_EDGES = (0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1)
child_strategy = st.one_of(
    st.none(),
    st.builds(Child, st.one_of(st.sampled_from(VERSION_EDGES), st.integers(0, 2**64 - 1)),
              st.binary(min_size=32, max_size=32), st.booleans()))
node_strategy = st.one_of(
    st.just(EmptyNode()),
    st.builds(LeafNode, st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32)),
    st.lists(child_strategy, min_size=16, max_size=16).map(lambda c: InternalNode(tuple(c))))


def decode_both(data: bytes) -> tuple[Any, Any]:
    """Return what the direct and the strict node decoder make of `data` (or the error type)."""
    outcomes = []
    for decoder in (decode_node, smt._decode_node_with_codec):
        try:
            outcomes.append(decoder(data))
        except DecodeError:
            outcomes.append(DecodeError)
    return outcomes[0], outcomes[1]


@FAST
@given(node_strategy)
def test_smt_direct_node_codec_equals_the_generic_codec(node: Any) -> None:
    data = encode_node(node)
    assert data == smt._encode_node_with_codec(node)
    direct, strict = decode_both(data)
    assert direct == strict
    if strict is not DecodeError:
        assert direct == node


def test_smt_direct_node_encoder_falls_back_for_fields_outside_the_layout() -> None:
    def internal(*children: Child) -> InternalNode:
        return InternalNode(children + (None,) * (16 - len(children)))

    odd_nodes = [LeafNode(b"k" * 31, b"v" * 32),
                 internal(Child(True, b"h" * 32, False)),  # type: ignore[arg-type]
                 internal(Child(1, b"h" * 33, False), Child(2, b"g" * 32, True)),
                 internal(Child(1, b"h" * 32, 1), Child(2, b"g" * 32, False)),  # type: ignore[arg-type]
                 InternalNode((Child(1, b"h" * 32, False),) * 3)]
    for node in odd_nodes:
        assert encode_node(node) == smt._encode_node_with_codec(node)


@FAST
@given(st.data())
def test_smt_mutated_nodes_decode_as_the_strict_decoder_says(sample: History,
                                                             data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(sorted(sample.store.nodes.values())))
    encoded = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, max(0, len(encoded) - 1)))
        operation = data.draw(st.sampled_from(["set", "delete", "insert"]))
        if operation == "set" and encoded:
            encoded[position] = data.draw(st.integers(0, 255))
        elif operation == "delete" and encoded:
            del encoded[position]
        else:
            encoded.insert(position, data.draw(st.integers(0, 255)))
    direct, strict = decode_both(bytes(encoded))
    assert direct == strict


def test_smt_stored_nodes_all_take_the_direct_path(sample: History) -> None:
    for data in sample.store.nodes.values():
        assert smt._decode_canonical_node(data) == smt._decode_node_with_codec(data)


def test_smt_node_cache_never_answers_for_the_store(tmp_path: Path) -> None:
    connection = open_sqlite(tmp_path / "state.sqlite")
    store = SqliteNodeStore(connection)
    tree = SparseMerkleTree(store)
    reference = History()
    base = {key(index): b"v0" for index in range(600)}
    commit(connection, store, tree.apply_batch(0, base))
    reference.apply(base)
    # Two proposals for version 1 write different nodes under the same node keys; the tree
    # keeps the second one's, the store gets the first.
    chosen = {key(index): b"first" for index in range(0, 600, 3)}
    first = tree.apply_batch(1, chosen)
    second = tree.apply_batch(1, {key(index): b"second" for index in range(1, 600, 3)})
    shared = dict(first.new_nodes).keys() & dict(second.new_nodes).keys()
    assert any(dict(first.new_nodes)[k] != dict(second.new_nodes)[k] for k in shared)
    commit(connection, store, first)
    reference.apply(chosen)
    # A batch read back inside its transaction, rolled back, and another one committed.
    kept = {key(index): b"kept" for index in range(40, 90)}
    kept_batch = tree.apply_batch(2, kept)
    rolled_back = tree.apply_batch(2, {key(index): b"rolled back" for index in range(50)})
    connection.execute("BEGIN IMMEDIATE")
    store.write_batch(rolled_back)
    assert tree.get_with_proof(2, key(7))[0] == compute_value_hash(b"rolled back")
    connection.execute("ROLLBACK")
    commit(connection, store, kept_batch)
    reference.apply(kept)
    reference.tree = tree  # check the SQLite tree, with its cache, against the model
    probes = [compute_key_hash(key(index)) for index in range(0, 620, 7)]
    for version in range(3):
        reference.check_version(version, probes)
    # A kept node altered in the store: the read sees the store's bytes, not the cache's.
    connection.execute("UPDATE state_nodes SET node = ? WHERE node_key = ?",
                       (b"\xff", smt.encode_node_key(2, "")))
    with pytest.raises(StorageError, match="corrupt"):
        tree.get_with_proof(2, key(7))


def test_smt_node_cache_is_bounded_and_holds_only_nodes_near_the_root() -> None:
    store = MemoryNodeStore()
    tree = SparseMerkleTree(store, cache_nodes_max=40)
    for version in range(12):
        store.write_batch(tree.apply_batch(version, {key(version * 300 + index): b"v"
                                                     for index in range(300)}))
        tree.get_with_proof(version, key(5))
    assert 0 < len(tree._cache) <= 40
    assert all(node_key[8] <= smt.NODE_CACHE_DEPTH_MAX for node_key in tree._cache)
    for cache_nodes_max in (0, 1, 3):
        small = SparseMerkleTree(store, cache_nodes_max=cache_nodes_max)
        for version in range(12):
            small.get_with_proof(version, key(version))
        assert len(small._cache) <= cache_nodes_max
        assert small.get_root(11) == tree.get_root(11)


# --- API misuse ------------------------------------------------------------------------------


def test_smt_misuse_is_a_local_error() -> None:
    history = History()
    history.apply({b"a": b"1"})
    tree = history.tree
    for bad_version in (-1, True, 2**64, "1"):
        with pytest.raises(LocalError):
            tree.apply_batch(bad_version, {})  # type: ignore[arg-type]
    with pytest.raises(LocalError, match="version 4"):
        tree.apply_batch(5, {})  # versions are consecutive: 5 builds on 4
    with pytest.raises(LocalError):
        tree.apply_batch(1, {"text": b"1"})  # type: ignore[dict-item]
    with pytest.raises(LocalError):
        tree.apply_batch(1, {b"a": 1})  # type: ignore[dict-item]
    with pytest.raises(LocalError):
        tree.apply_hashed_batch(1, {b"short": None})
    with pytest.raises(LocalError):
        tree.get_with_proof(0, "text")  # type: ignore[arg-type]
    with pytest.raises(LocalError, match="never written"):
        tree.get_root(9)
    assert BATCH_UPDATES_MAX >= 10_000


# --- Committed vectors ------------------------------------------------------------------------


def test_smt_vectors_committed_file_equals_a_fresh_generation() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == state_tree_vectors.render_vectors(), (
        "docs/spec/vectors/state-tree.json is stale: run `python -m seoulchain.vectors.state_tree` "
        "and review the diff")


def test_smt_vectors_agree_with_the_reference() -> None:
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    state: dict[bytes, bytes] = {}
    roots = {}
    for version in vectors["versions"]:
        for update in version["updates"]:
            key_hash = hashlib.sha256(bytes.fromhex(update["key_hex"])).digest()
            if update["value_hex"] is None:
                state.pop(key_hash, None)
            else:
                state[key_hash] = hashlib.sha256(bytes.fromhex(update["value_hex"])).digest()
        assert version["root_hex"] == ref_root(state).hex()
        roots[version["version"]] = version["root_hex"]
    cases = [(item, bytes.fromhex(item["key_hash_hex"]), item.get("root_hex"))
             for item in vectors["proofs"]]
    cases += [(item, bytes.fromhex(item["key_hash_hex"]), vectors["deep"]["root_hex"])
              for item in vectors["deep"]["proofs"]]
    for item, key_hash, root in cases:
        if "key_hex" in item:
            assert hashlib.sha256(bytes.fromhex(item["key_hex"])).digest() == key_hash
            assert roots[item["version"]] == root
        leaf = None if item["leaf"] is None else (bytes.fromhex(item["leaf"]["key_hash_hex"]),
                                                  bytes.fromhex(item["leaf"]["value_hash_hex"]))
        siblings = [bytes.fromhex(sibling) for sibling in item["siblings_hex"]]
        assert ref_fold(key_hash, leaf, siblings).hex() == root
        assert (leaf is not None and leaf[0] == key_hash) == (item["claim"] == "membership")
        proof = SparseMerkleProof.decode(bytes.fromhex(item["proof_hex"]))
        assert proof.leaf == (None if leaf is None else LeafNode(*leaf))
        assert list(proof.siblings) == siblings
        value_hash = item["value_hash_hex"] and bytes.fromhex(item["value_hash_hex"])
        verify_proof(bytes.fromhex(root), key_hash, value_hash, proof)


def test_smt_invalid_vectors_fail_with_the_named_error() -> None:
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    assert len(vectors["invalid"]) >= 20
    for item in vectors["invalid"]:
        expected = {"DecodeError": DecodeError, "VerificationError": VerificationError}[
            item["error"]]
        with pytest.raises(expected):
            proof = SparseMerkleProof.decode(bytes.fromhex(item["proof_hex"]))
            value_hash = item["value_hash_hex"] and bytes.fromhex(item["value_hash_hex"])
            if item["claim"] == "membership":
                verify_membership(bytes.fromhex(item["root_hex"]), bytes.fromhex(item["key_hex"]),
                                  value_hash, proof)
            else:
                verify_non_membership(bytes.fromhex(item["root_hex"]),
                                      bytes.fromhex(item["key_hex"]), proof)


def test_smt_vector_nodes_decode_and_sit_where_their_keys_say() -> None:
    vectors = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    for item in vectors["nodes"]:
        node_key = bytes.fromhex(item["node_key_hex"])
        assert decode_node_key(node_key) == (item["version"], item["path"])
        node = decode_node(bytes.fromhex(item["node_hex"]))
        assert encode_node(node).hex() == item["node_hex"]
        assert smt.compute_node_fault(node, item["version"], item["path"]) is None
