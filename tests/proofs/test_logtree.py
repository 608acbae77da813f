"""Tests of the RFC 9162 log tree: known vectors, a reference model, exhaustive and tamper checks.

The vectors are the RFC 6962 test data shared by certificate-transparency-go and
transparency-dev/merkle (testonly/constants.go, testonly/reference_test.go,
proof/verify_test.go). The reference model below is written straight from the recursive
definitions of RFC 9162 §2.1 with hashlib, independently of the module under test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.errors import LocalError, StorageError, VerificationError
from seoulchain.proofs.logtree import (
    CONSISTENCY_PROOF_HASHES_MAX,
    EMPTY_ROOT,
    INCLUSION_PROOF_HASHES_MAX,
    TREE_SIZE_MAX,
    LogFrontier,
    MemoryLog,
    compute_consistency_proof,
    compute_consistency_proof_length,
    compute_inclusion_proof,
    compute_inclusion_proof_length,
    compute_leaf_hash,
    compute_node_hash,
    compute_range_root,
    compute_root,
    compute_root_from_inclusion_proof,
    is_valid_consistency,
    is_valid_inclusion,
    verify_consistency,
    verify_inclusion,
)

# --- Known-answer vectors (RFC 6962 test data, as in transparency-dev/merkle) ----------------

VECTOR_LEAVES = [
    bytes.fromhex(leaf)
    for leaf in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

# VECTOR_NODES[level][index]: every perfect subtree of the 8-leaf tree.
VECTOR_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# VECTOR_ROOTS[size] for sizes 0..8.
VECTOR_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# (index, size, proof): zero-based leaf index.
VECTOR_INCLUSION_PROOFS = [
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# (old_size, new_size, proof).
VECTOR_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
FAST_SIZE_MAX = 64
SLOW_SIZE_MAX = 300
TAMPER_SIZE_MAX = 16


# --- Reference model, straight from RFC 9162 §2.1 --------------------------------------------


def ref_split(size: int) -> int:
    """Return the largest power of two strictly smaller than `size` (RFC 9162 §2.1.1 `k`)."""
    split = 1
    while split * 2 < size:
        split *= 2
    return split


@cache
def ref_mth(entries: tuple[bytes, ...]) -> bytes:
    """Return MTH(D[n]) by the recursive definition."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    split = ref_split(len(entries))
    return hashlib.sha256(b"\x01" + ref_mth(entries[:split]) + ref_mth(entries[split:])).digest()


def ref_path(index: int, entries: tuple[bytes, ...]) -> list[bytes]:
    """Return PATH(m, D[n]) by the recursive definition."""
    if len(entries) == 1:
        return []
    split = ref_split(len(entries))
    if index < split:
        return [*ref_path(index, entries[:split]), ref_mth(entries[split:])]
    return [*ref_path(index - split, entries[split:]), ref_mth(entries[:split])]


def ref_subproof(old_size: int, entries: tuple[bytes, ...], is_whole: bool) -> list[bytes]:
    """Return SUBPROOF(m, D[n], b) by the recursive definition."""
    if old_size == len(entries):
        return [] if is_whole else [ref_mth(entries)]
    split = ref_split(len(entries))
    if old_size <= split:
        return [*ref_subproof(old_size, entries[:split], is_whole), ref_mth(entries[split:])]
    return [*ref_subproof(old_size - split, entries[split:], False), ref_mth(entries[:split])]


def ref_proof(old_size: int, entries: tuple[bytes, ...]) -> list[bytes]:
    """Return PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return ref_subproof(old_size, entries, True)


def ref_path_sides(index: int, size: int) -> list[bool]:
    """Return, top down, whether the leaf lies in the left subtree at each split of PATH."""
    sides = []
    while size > 1:
        split = ref_split(size)
        sides.append(index < split)
        index, size = (index, split) if index < split else (index - split, size - split)
    return sides


def ref_subproof_sides(old_size: int, size: int) -> list[bool]:
    """Return, top down, the branch SUBPROOF takes at each split, then whether b stays true."""
    sides = []
    is_whole = True
    while old_size != size:
        split = ref_split(size)
        sides.append(old_size <= split)
        if old_size <= split:
            size = split
        else:
            old_size, size, is_whole = old_size - split, size - split, False
    return [*sides, is_whole]


# --- Fixtures and helpers --------------------------------------------------------------------

ENTRIES = tuple(b"seoulchain leaf %d" % position for position in range(SLOW_SIZE_MAX + 1))


@pytest.fixture(scope="module")
def log() -> MemoryLog:
    """Return a log of SLOW_SIZE_MAX + 1 leaves whose history answers every smaller size."""
    memory_log = MemoryLog()
    for entry in ENTRIES:
        memory_log.append(entry)
    return memory_log


@pytest.fixture(scope="module")
def vector_log() -> MemoryLog:
    """Return the 8-leaf log of the RFC 6962 test data."""
    memory_log = MemoryLog()
    for entry in VECTOR_LEAVES:
        memory_log.append(entry)
    return memory_log


def hexes(hashes: Sequence[bytes]) -> list[str]:
    """Return the hashes as hex strings."""
    return [node.hex() for node in hashes]


def flip_byte(value: bytes, position: int) -> bytes:
    """Return `value` with the lowest bit of one byte flipped."""
    return value[:position] + bytes([value[position] ^ 0x01]) + value[position + 1 :]


def every_byte_flipped(value: bytes) -> list[bytes]:
    """Return every variant of `value` with exactly one byte changed."""
    return [flip_byte(value, position) for position in range(len(value))]


def every_proof_byte_flipped(proof: list[bytes]) -> list[list[bytes]]:
    """Return every variant of `proof` with exactly one byte of one hash changed."""
    variants = []
    for position, node in enumerate(proof):
        for changed in every_byte_flipped(node):
            variants.append([*proof[:position], changed, *proof[position + 1 :]])
    return variants


class CountingReader:
    """A synthetic node store that answers any (level, index) and counts reads."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self, level: int, index: int) -> bytes:
        self.reads += 1
        return hashlib.sha256(b"synthetic %d %d" % (level, index)).digest()


# --- Hashing and known vectors ---------------------------------------------------------------


def test_hashing_empty_leaf_and_node_domains() -> None:
    assert EMPTY_ROOT.hex() == VECTOR_ROOTS[0]
    assert compute_leaf_hash(b"").hex() == VECTOR_NODES[0][0]
    assert compute_leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = compute_leaf_hash(b"a"), compute_leaf_hash(b"b")
    assert compute_node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert compute_node_hash(left, right) != compute_node_hash(right, left)


def test_vectors_every_perfect_node(vector_log: MemoryLog) -> None:
    expected = {
        (level, index): node
        for level, row in enumerate(VECTOR_NODES)
        for index, node in enumerate(row)
    }
    assert {key: node.hex() for key, node in vector_log.nodes.items()} == expected


@pytest.mark.parametrize("size", range(len(VECTOR_ROOTS)))
def test_vectors_roots(size: int, vector_log: MemoryLog) -> None:
    leaf_hashes = [compute_leaf_hash(entry) for entry in VECTOR_LEAVES[:size]]
    assert compute_root(leaf_hashes).hex() == VECTOR_ROOTS[size]
    assert vector_log.root_at(size).hex() == VECTOR_ROOTS[size]
    assert compute_range_root(0, size, vector_log.read_node).hex() == VECTOR_ROOTS[size]
    assert ref_mth(tuple(VECTOR_LEAVES[:size])).hex() == VECTOR_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION_PROOFS)
def test_vectors_inclusion(index: int, size: int, proof: list[str], vector_log: MemoryLog) -> None:
    assert hexes(vector_log.inclusion_proof(index, size)) == proof
    assert hexes(ref_path(index, tuple(VECTOR_LEAVES[:size]))) == proof
    root = bytes.fromhex(VECTOR_ROOTS[size])
    leaf_hash = compute_leaf_hash(VECTOR_LEAVES[index])
    verify_inclusion(leaf_hash, index, size, [bytes.fromhex(node) for node in proof], root)


@pytest.mark.parametrize(("old_size", "new_size", "proof"), VECTOR_CONSISTENCY_PROOFS)
def test_vectors_consistency(
    old_size: int, new_size: int, proof: list[str], vector_log: MemoryLog
) -> None:
    assert hexes(vector_log.consistency_proof(old_size, new_size)) == proof
    assert hexes(ref_proof(old_size, tuple(VECTOR_LEAVES[:new_size]))) == proof
    old_root = bytes.fromhex(VECTOR_ROOTS[old_size])
    new_root = bytes.fromhex(VECTOR_ROOTS[new_size])
    verify_consistency(old_size, new_size, old_root, new_root, [bytes.fromhex(n) for n in proof])


# --- Agreement with the reference model ------------------------------------------------------


def test_compute_root_matches_reference_and_frontier() -> None:
    leaf_hashes = []
    frontier = LogFrontier()
    for size, entry in enumerate(ENTRIES[:FAST_SIZE_MAX + 1]):
        assert compute_root(leaf_hashes) == ref_mth(ENTRIES[:size]) == frontier.root()
        leaf_hashes.append(compute_leaf_hash(entry))
        frontier.append(leaf_hashes[-1])


def test_compute_root_large_matches_frontier() -> None:
    frontier = LogFrontier()
    leaf_hashes = [compute_leaf_hash(b"%d" % position) for position in range(5_003)]
    for leaf_hash in leaf_hashes:
        frontier.append(leaf_hash)
    assert compute_root(leaf_hashes) == frontier.root()


def test_range_root_every_aligned_range(log: MemoryLog) -> None:
    for begin in range(FAST_SIZE_MAX + 1):
        for end in range(begin, FAST_SIZE_MAX + 1):
            width = 1 << (end - begin - 1).bit_length() if end > begin else 1
            if begin % width:
                with pytest.raises(LocalError, match="not aligned"):
                    compute_range_root(begin, end, log.read_node)
            else:
                assert compute_range_root(begin, end, log.read_node) == ref_mth(ENTRIES[begin:end])


def test_inclusion_every_index_and_size(log: MemoryLog) -> None:
    for size in range(1, FAST_SIZE_MAX + 1):
        root = log.root_at(size)
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            assert proof == ref_path(index, ENTRIES[:size])
            assert len(proof) == compute_inclusion_proof_length(index, size)
            verify_inclusion(compute_leaf_hash(ENTRIES[index]), index, size, proof, root)


def test_consistency_every_pair_of_sizes(log: MemoryLog) -> None:
    for new_size in range(FAST_SIZE_MAX + 1):
        new_root = log.root_at(new_size)
        for old_size in range(new_size + 1):
            proof = log.consistency_proof(old_size, new_size)
            if old_size > 0:
                assert proof == ref_proof(old_size, ENTRIES[:new_size])
            assert len(proof) == compute_consistency_proof_length(old_size, new_size)
            verify_consistency(old_size, new_size, log.root_at(old_size), new_root, proof)


@pytest.mark.slow
def test_consistency_every_pair_of_sizes_up_to_300(log: MemoryLog) -> None:
    roots = [log.root_at(size) for size in range(SLOW_SIZE_MAX + 1)]
    for new_size in range(SLOW_SIZE_MAX + 1):
        for old_size in range(new_size + 1):
            proof = log.consistency_proof(old_size, new_size)
            if old_size > 0:
                assert proof == ref_proof(old_size, ENTRIES[:new_size])
            verify_consistency(old_size, new_size, roots[old_size], roots[new_size], proof)
        for index in range(new_size):
            proof = log.inclusion_proof(index, new_size)
            assert proof == ref_path(index, ENTRIES[:new_size])
            leaf_hash = compute_leaf_hash(ENTRIES[index])
            verify_inclusion(leaf_hash, index, new_size, proof, roots[new_size])


@pytest.mark.slow
def test_compute_root_one_million_leaves() -> None:
    leaf_hashes = [compute_leaf_hash(position.to_bytes(8, "big")) for position in range(1 << 20)]
    frontier = LogFrontier()
    for leaf_hash in leaf_hashes:
        frontier.append(leaf_hash)
    assert compute_root(leaf_hashes) == frontier.root()


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_proofs_property(data: st.DataObject, log: MemoryLog) -> None:
    size = data.draw(st.integers(1, SLOW_SIZE_MAX), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old_size = data.draw(st.integers(0, size), label="old_size")
    root = log.root_at(size)
    inclusion = log.inclusion_proof(index, size)
    assert inclusion == ref_path(index, ENTRIES[:size])
    assert is_valid_inclusion(compute_leaf_hash(ENTRIES[index]), index, size, inclusion, root)
    consistency = log.consistency_proof(old_size, size)
    if old_size:
        assert consistency == ref_proof(old_size, ENTRIES[:size])
    assert is_valid_consistency(old_size, size, log.root_at(old_size), root, consistency)


# --- Tampering: any change to a proof, root, leaf, index or size is caught -------------------


def test_inclusion_rejects_any_flipped_byte(log: MemoryLog) -> None:
    for size in range(1, TAMPER_SIZE_MAX + 1):
        root = log.root_at(size)
        for index in range(size):
            leaf_hash = compute_leaf_hash(ENTRIES[index])
            proof = log.inclusion_proof(index, size)
            for changed_proof in every_proof_byte_flipped(proof):
                assert not is_valid_inclusion(leaf_hash, index, size, changed_proof, root)
            for changed_root in every_byte_flipped(root):
                assert not is_valid_inclusion(leaf_hash, index, size, proof, changed_root)
            for changed_leaf in every_byte_flipped(leaf_hash):
                assert not is_valid_inclusion(changed_leaf, index, size, proof, root)


def test_consistency_rejects_any_flipped_byte(log: MemoryLog) -> None:
    for new_size in range(1, TAMPER_SIZE_MAX + 1):
        new_root = log.root_at(new_size)
        for old_size in range(new_size + 1):
            old_root = log.root_at(old_size)
            proof = log.consistency_proof(old_size, new_size)
            for changed_proof in every_proof_byte_flipped(proof):
                probe = (old_size, new_size, old_root, new_root, changed_proof)
                assert not is_valid_consistency(*probe)
            for changed_old in every_byte_flipped(old_root):
                assert not is_valid_consistency(old_size, new_size, changed_old, new_root, proof)
            if old_size == 0 and new_size > 0:
                continue  # An empty tree is consistent with every tree: nothing binds new_root.
            for changed_new in every_byte_flipped(new_root):
                assert not is_valid_consistency(old_size, new_size, old_root, changed_new, proof)


def test_inclusion_rejects_any_other_index(log: MemoryLog) -> None:
    for size in range(1, 2 * TAMPER_SIZE_MAX + 1):
        root = log.root_at(size)
        for index in range(size):
            leaf_hash = compute_leaf_hash(ENTRIES[index])
            proof = log.inclusion_proof(index, size)
            for other in range(size + 2):
                if other != index:
                    assert not is_valid_inclusion(leaf_hash, other, size, proof, root)


def test_inclusion_other_size_passes_only_on_an_identical_path(log: MemoryLog) -> None:
    # RFC 9162 proofs bind the size only through the shape of the path: the proof of leaf 0
    # in a tree of 3 is also a valid-looking proof of leaf 0 in a tree of 4 with the same
    # root. The size must come from the signed header that carries the root.
    for size in range(1, TAMPER_SIZE_MAX + 1):
        root = log.root_at(size)
        for index in range(size):
            leaf_hash = compute_leaf_hash(ENTRIES[index])
            proof = log.inclusion_proof(index, size)
            for other in range(2 * size + 2):
                if other == size:
                    continue
                same_path = index < other and ref_path_sides(index, other) == ref_path_sides(
                    index, size
                )
                assert is_valid_inclusion(leaf_hash, index, other, proof, root) == same_path
    assert is_valid_inclusion(
        compute_leaf_hash(ENTRIES[0]), 0, 4, log.inclusion_proof(0, 3), log.root_at(3)
    )


def test_consistency_rejects_any_other_old_size(log: MemoryLog) -> None:
    for new_size in range(1, 2 * TAMPER_SIZE_MAX + 1):
        new_root = log.root_at(new_size)
        for old_size in range(1, new_size):
            old_root = log.root_at(old_size)
            proof = log.consistency_proof(old_size, new_size)
            for other in range(new_size + 2):
                if other != old_size:
                    assert not is_valid_consistency(other, new_size, old_root, new_root, proof)


def test_consistency_other_new_size_passes_only_on_an_identical_path(log: MemoryLog) -> None:
    for new_size in range(2, TAMPER_SIZE_MAX + 1):
        new_root = log.root_at(new_size)
        for old_size in range(1, new_size):
            old_root = log.root_at(old_size)
            proof = log.consistency_proof(old_size, new_size)
            expected_sides = ref_subproof_sides(old_size, new_size)
            for other in range(2 * new_size + 2):
                if other == new_size:
                    continue
                same_path = old_size < other and (
                    ref_subproof_sides(old_size, other) == expected_sides
                )
                passes = is_valid_consistency(old_size, other, old_root, new_root, proof)
                assert passes == same_path


@pytest.mark.parametrize(("index", "size", "proof"), VECTOR_INCLUSION_PROOFS[1:])
def test_inclusion_rejects_structural_changes(index: int, size: int, proof: list[str]) -> None:
    nodes = [bytes.fromhex(node) for node in proof]
    root = bytes.fromhex(VECTOR_ROOTS[size])
    leaf_hash = compute_leaf_hash(VECTOR_LEAVES[index])
    verify_inclusion(leaf_hash, index, size, nodes, root)
    probes = {
        "size * 2": (leaf_hash, index, size * 2, nodes, root),
        "size // 2": (leaf_hash, index, size // 2, nodes, root),
        "index = size": (leaf_hash, size, size, nodes, root),
        "negative index": (leaf_hash, -1, size, nodes, root),
        "short leaf": (leaf_hash[:-1], index, size, nodes, root),
        "long leaf": (leaf_hash + b"\x00", index, size, nodes, root),
        "wrong leaf": (b"WrongLeaf", index, size, nodes, root),
        "empty root": (leaf_hash, index, size, nodes, EMPTY_ROOT),
        "random root": (leaf_hash, index, size, nodes, SOME_HASH),
        "short root": (leaf_hash, index, size, nodes, root[:-1]),
        "trailing empty": (leaf_hash, index, size, [*nodes, b""], root),
        "trailing root": (leaf_hash, index, size, [*nodes, root], root),
        "leading empty": (leaf_hash, index, size, [b"", *nodes], root),
        "leading root": (leaf_hash, index, size, [root, *nodes], root),
        "removed last": (leaf_hash, index, size, nodes[:-1], root),
        "removed first": (leaf_hash, index, size, nodes[1:], root),
        "inserted": (leaf_hash, index, size, [nodes[0], SOME_HASH, *nodes[1:]], root),
        "reversed": (leaf_hash, index, size, nodes[::-1], root),
        "short hash": (leaf_hash, index, size, [nodes[0][:-1], *nodes[1:]], root),
        "text hash": (leaf_hash, index, size, [nodes[0].hex(), *nodes[1:]], root),
        "bool size": (leaf_hash, index, True, nodes, root),
        "huge size": (leaf_hash, index, TREE_SIZE_MAX + 1, nodes, root),
    }
    if len(nodes) < 2:
        del probes["reversed"]
    for name, probe in probes.items():
        with pytest.raises(VerificationError):
            verify_inclusion(*probe)
        assert not is_valid_inclusion(*probe), name


@pytest.mark.parametrize(("old_size", "new_size", "proof"), VECTOR_CONSISTENCY_PROOFS[1:])
def test_consistency_rejects_structural_changes(
    old_size: int, new_size: int, proof: list[str]
) -> None:
    nodes = [bytes.fromhex(node) for node in proof]
    old_root = bytes.fromhex(VECTOR_ROOTS[old_size])
    new_root = bytes.fromhex(VECTOR_ROOTS[new_size])
    verify_consistency(old_size, new_size, old_root, new_root, nodes)
    probes = {
        "old - 1": (old_size - 1, new_size, old_root, new_root, nodes),
        "old + 1": (old_size + 1, new_size, old_root, new_root, nodes),
        "old ^ 2": (old_size ^ 2, new_size, old_root, new_root, nodes),
        "new * 2": (old_size, new_size * 2, old_root, new_root, nodes),
        "new // 2": (old_size, new_size // 2, old_root, new_root, nodes),
        "swapped sizes": (new_size, old_size, old_root, new_root, nodes),
        "wrong old root": (old_size, new_size, SOME_HASH, new_root, nodes),
        "wrong new root": (old_size, new_size, old_root, SOME_HASH, nodes),
        "swapped roots": (old_size, new_size, new_root, old_root, nodes),
        "short old root": (old_size, new_size, old_root[:-1], new_root, nodes),
        "text new root": (old_size, new_size, old_root, new_root.hex(), nodes),
        "empty proof": (old_size, new_size, old_root, new_root, []),
        "trailing empty": (old_size, new_size, old_root, new_root, [*nodes, b""]),
        "trailing old root": (old_size, new_size, old_root, new_root, [*nodes, old_root]),
        "trailing new root": (old_size, new_size, old_root, new_root, [*nodes, new_root]),
        "leading empty": (old_size, new_size, old_root, new_root, [b"", *nodes]),
        "leading old root": (old_size, new_size, old_root, new_root, [old_root, *nodes]),
        "leading new root": (old_size, new_size, old_root, new_root, [new_root, *nodes]),
        "leading first": (old_size, new_size, old_root, new_root, [nodes[0], *nodes]),
        "truncated": (old_size, new_size, old_root, new_root, nodes[:-1]),
        "long hash": (old_size, new_size, old_root, new_root, [nodes[0] + b"\x00", *nodes[1:]]),
        "none proof": (old_size, new_size, old_root, new_root, None),
        "negative old": (-1, new_size, old_root, new_root, nodes),
    }
    for name, probe in probes.items():
        with pytest.raises(VerificationError):
            verify_consistency(*probe)  # type: ignore[arg-type]
        assert not is_valid_consistency(*probe), name  # type: ignore[arg-type]


def test_consistency_edge_sizes() -> None:
    leaf_hash = compute_leaf_hash(b"x")
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, SOME_HASH, [])
    verify_consistency(1, 1, leaf_hash, leaf_hash, [])
    assert not is_valid_consistency(0, 0, EMPTY_ROOT, SOME_HASH, [])
    assert not is_valid_consistency(0, 0, SOME_HASH, SOME_HASH, [])
    assert not is_valid_consistency(0, 1, SOME_HASH, leaf_hash, [])
    assert not is_valid_consistency(1, 1, leaf_hash, SOME_HASH, [])
    assert not is_valid_consistency(0, 1, EMPTY_ROOT, leaf_hash, [EMPTY_ROOT])
    assert not is_valid_consistency(1, 1, leaf_hash, leaf_hash, [EMPTY_ROOT])
    assert not is_valid_consistency(1, 0, leaf_hash, EMPTY_ROOT, [])
    assert not is_valid_consistency(2, 1, leaf_hash, leaf_hash, [])
    assert not is_valid_consistency(1, 2, leaf_hash, SOME_HASH, [])


def test_inclusion_single_leaf_and_empty_tree() -> None:
    leaf_hash = compute_leaf_hash(b"data")
    verify_inclusion(leaf_hash, 0, 1, [], leaf_hash)
    assert compute_root_from_inclusion_proof(leaf_hash, 0, 1, []) == leaf_hash
    assert not is_valid_inclusion(leaf_hash, 0, 1, [], b"")
    assert not is_valid_inclusion(b"", 0, 1, [], leaf_hash)
    assert not is_valid_inclusion(b"", 0, 1, [], b"")
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1)]:
        with pytest.raises(VerificationError, match="not in a tree"):
            verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_verification_messages_are_clear(vector_log: MemoryLog) -> None:
    leaf_hash = compute_leaf_hash(VECTOR_LEAVES[5])
    proof = vector_log.inclusion_proof(5, 8)
    with pytest.raises(VerificationError, match="has 2 hashes, expected 3"):
        verify_inclusion(leaf_hash, 5, 8, proof[:2], vector_log.root())
    with pytest.raises(VerificationError, match="hash 1 must be 32 bytes, got 31"):
        verify_inclusion(leaf_hash, 5, 8, [proof[0], proof[1][:-1], proof[2]], vector_log.root())
    with pytest.raises(VerificationError, match="leads to root"):
        verify_inclusion(leaf_hash, 4, 8, proof, vector_log.root())
    with pytest.raises(VerificationError, match="old size 8 is larger than new size 6"):
        verify_consistency(8, 6, vector_log.root(), vector_log.root(), [])
    with pytest.raises(VerificationError, match="leads to old root"):
        verify_consistency(6, 8, SOME_HASH, vector_log.root(), vector_log.consistency_proof(6))


def test_proof_lengths_stay_within_limits() -> None:
    sizes = [1, 2, 3, 2**32 + 1, 2**63, 2**63 + 1, TREE_SIZE_MAX]
    for size in sizes:
        for index in {0, 1, 2, size // 2, size - 2, size - 1}:
            if not 0 <= index < size:
                continue
            assert compute_inclusion_proof_length(index, size) <= INCLUSION_PROOF_HASHES_MAX
    assert compute_inclusion_proof_length(0, TREE_SIZE_MAX) == INCLUSION_PROOF_HASHES_MAX
    assert compute_consistency_proof_length(3, TREE_SIZE_MAX) == CONSISTENCY_PROOF_HASHES_MAX
    for old_size in [1, 2, 3, 5, 2**40 + 3, 2**63 - 1, 2**63 + 1, TREE_SIZE_MAX - 1]:
        length = compute_consistency_proof_length(old_size, TREE_SIZE_MAX)
        assert length <= CONSISTENCY_PROOF_HASHES_MAX


# --- Proving from stored perfect nodes only --------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 1000, 2**20 - 1, 2**40 + 12_345, TREE_SIZE_MAX])
def test_proofs_read_logarithmically_many_nodes(size: int) -> None:
    read_limit = 2 * size.bit_length() + 2
    for index in {0, size // 3, size - 1}:
        reader = CountingReader()
        proof = compute_inclusion_proof(index, size, reader)
        assert len(proof) == compute_inclusion_proof_length(index, size)
        assert reader.reads <= read_limit
    for old_size in {1, size // 3 or 1, size - 1 or 1}:
        reader = CountingReader()
        proof = compute_consistency_proof(old_size, size, reader)
        assert len(proof) == compute_consistency_proof_length(old_size, size)
        assert reader.reads <= read_limit
    reader = CountingReader()
    compute_range_root(0, size, reader)
    assert reader.reads == size.bit_count()


def test_proving_rejects_misuse(log: MemoryLog) -> None:
    with pytest.raises(LocalError):
        compute_inclusion_proof(5, 5, log.read_node)
    with pytest.raises(LocalError):
        compute_inclusion_proof(-1, 5, log.read_node)
    with pytest.raises(LocalError):
        compute_inclusion_proof(0, 0, log.read_node)
    with pytest.raises(LocalError):
        compute_consistency_proof(6, 5, log.read_node)
    with pytest.raises(LocalError):
        compute_consistency_proof(-1, 5, log.read_node)
    with pytest.raises(LocalError):
        compute_range_root(3, 2, log.read_node)
    with pytest.raises(LocalError):
        compute_range_root(0, TREE_SIZE_MAX + 1, log.read_node)
    with pytest.raises(LocalError):
        log.inclusion_proof(0, log.size + 1)
    with pytest.raises(LocalError):
        log.consistency_proof(1, log.size + 1)
    with pytest.raises(LocalError):
        log.read_node(0, log.size)
    with pytest.raises(LocalError):
        compute_root([b"short"])
    assert compute_consistency_proof(0, 5, log.read_node) == []
    assert compute_consistency_proof(5, 5, log.read_node) == []
    assert compute_range_root(7, 7, log.read_node) == EMPTY_ROOT


def test_proving_rejects_a_corrupt_store() -> None:
    with pytest.raises(StorageError):
        compute_inclusion_proof(0, 2, lambda level, index: b"short")
    with pytest.raises(StorageError):
        LogFrontier.from_reader(3, lambda level, index: "not bytes")  # type: ignore[arg-type,return-value]


# --- The appender ----------------------------------------------------------------------------


def test_frontier_append_reports_exactly_the_new_perfect_nodes() -> None:
    frontier = LogFrontier()
    stored: dict[tuple[int, int], bytes] = {}
    for size in range(1, 2 * FAST_SIZE_MAX + 1):
        created = frontier.append(compute_leaf_hash(ENTRIES[size - 1]))
        expected_keys = [
            (level, (size >> level) - 1)
            for level in range(size.bit_length())
            if size % (1 << level) == 0
        ]
        assert [(level, index) for level, index, _ in created] == expected_keys
        assert created[0] == (0, size - 1, compute_leaf_hash(ENTRIES[size - 1]))
        for level, index, node in created:
            assert (level, index) not in stored
            assert node == ref_mth(ENTRIES[index << level : (index + 1) << level])
            stored[(level, index)] = node
        assert frontier.size == size
        assert frontier.root() == ref_mth(ENTRIES[:size])
        assert len(frontier.roots) == size.bit_count()
        rebuilt = LogFrontier.from_reader(size, lambda level, index: stored[(level, index)])
        assert rebuilt.roots == frontier.roots
        assert rebuilt.root() == frontier.root()


def test_frontier_copy_is_independent() -> None:
    frontier = LogFrontier()
    for entry in ENTRIES[:5]:
        frontier.append(compute_leaf_hash(entry))
    copied = frontier.copy()
    copied.append(compute_leaf_hash(ENTRIES[5]))
    assert (frontier.size, frontier.root()) == (5, ref_mth(ENTRIES[:5]))
    assert (copied.size, copied.root()) == (6, ref_mth(ENTRIES[:6]))
    assert LogFrontier().root() == EMPTY_ROOT


def test_frontier_rejects_misuse() -> None:
    with pytest.raises(LocalError):
        LogFrontier(3, [SOME_HASH])
    with pytest.raises(LocalError):
        LogFrontier(1, [b"short"])
    with pytest.raises(LocalError):
        LogFrontier().append(b"short")
    full = LogFrontier(TREE_SIZE_MAX, [SOME_HASH] * 64)
    with pytest.raises(LocalError, match="full"):
        full.append(SOME_HASH)


def test_memory_log_story() -> None:
    memory_log = MemoryLog()
    assert (memory_log.size, memory_log.root()) == (0, EMPTY_ROOT)
    assert memory_log.append(b"first") == 0
    assert memory_log.append_leaf_hash(compute_leaf_hash(b"second")) == 1
    assert memory_log.append(b"third") == 2
    assert memory_log.root() == ref_mth((b"first", b"second", b"third"))
    old_root = memory_log.root()
    for position in range(3, 20):
        memory_log.append(b"entry %d" % position)
    proof = memory_log.consistency_proof(3)
    verify_consistency(3, 20, old_root, memory_log.root(), proof)
    inclusion = memory_log.inclusion_proof(1)
    verify_inclusion(compute_leaf_hash(b"second"), 1, 20, inclusion, memory_log.root())
    assert memory_log.root_at(3) == old_root
