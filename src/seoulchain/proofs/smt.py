"""The authenticated state tree: a Jellyfish-style sparse Merkle tree over 256-bit keys.

Theory of operation. Logically the tree is the binary sparse Merkle tree of the Diem
whitepaper: a state key `k` sits at the 256-bit path SHA-256(k) (most significant bit first,
0 = left), and maps to the value hash SHA-256(value). Subtrees are collapsed so that the
root commits to the key set alone, never to the order of history:

- an empty subtree hashes to `EMPTY_HASH` (32 zero bytes);
- a subtree holding exactly one entry hashes to that entry's leaf hash
  SHA-256(0x00 || key_hash || value_hash), wherever the leaf sits;
- any other subtree hashes to SHA-256(0x01 || left || right).

Proofs are therefore plain binary sibling lists (docs/spec/state-tree.md).

Storage is the Jellyfish layout (Diem/Aptos): a stored internal node covers four binary
levels and has up to 16 children, one per nibble; each child reference holds the child's
version and hash and whether it is a leaf. A node is stored once, immutably, under the node
key (version, nibble path), encoded big-endian so that one version's nodes are contiguous.
We chose 16-ary storage over one row per binary node because in CPython the cost of a
node is its row read, decode and encode (tens of microseconds), not its hashes: a path of
~log2(n) binary nodes becomes ~log16(n) stored nodes, 4x fewer rows read per proof and
written per update, for the same binary hashes (sibling hashes inside a node are recomputed
from its 16 children when needed).

`SparseMerkleTree.apply_batch(version, updates)` is pure: it reads version - 1 through a
`NodeStore` and returns the new root, the new nodes and the nodes it made stale; the caller
persists them (in the block's SQLite transaction) before applying version + 1. Every version
writes its own root node, so each applied version stays readable until pruned; `prune`
deletes the nodes stale since a given version or earlier. Misuse raises `LocalError`, bad
stored bytes `StorageError`, bad proof bytes `DecodeError` and a proof that does not verify
`VerificationError`.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeAlias

from seoulchain.codec import decode, encode
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import DecodeError, LocalError, StorageError, VerificationError

Version: TypeAlias = int
# A nibble path as lower-case hex text: one character per nibble, the root is "".
NibblePath: TypeAlias = str

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# The placeholder hash of an empty subtree; no SHA-256 output is known to equal it.
EMPTY_HASH = bytes(HASH_BYTES)

KEY_BITS = 8 * HASH_BYTES
NIBBLE_BITS = 4
CHILDREN_PER_NODE = 1 << NIBBLE_BITS
# A leaf can sit at most one nibble per stored level below the root: 256 / 4.
NIBBLES_MAX = KEY_BITS // NIBBLE_BITS
# A proof climbs at most one binary level per sibling, from depth 256 to the root.
PROOF_SIBLINGS_MAX = KEY_BITS
# Node keys store the version as a big-endian uint64.
VERSION_MAX = 2**64 - 1
# A batch is one block's state writes; a block holds at most 10,000 transactions
# (ledger.types.BLOCK_TXS_MAX), each writing a handful of keys.
BATCH_UPDATES_MAX = 1 << 20
# Pruning deletes stale nodes in chunks of this many, so one call never holds them all.
PRUNE_CHUNK_NODES = 10_000
# A tree keeps the decoded internal nodes of nibble depth 0 to 2 (the root, 16 and 256
# nodes), which nearly every batch and proof reads again. A deeper node is read about once
# before a batch rewrites it under a new key: keeping those saved less decoding than the
# garbage collector then spent walking them (docs/performance.md, "State tree").
NODE_CACHE_DEPTH_MAX = 2
# A few versions' worth of those 273 nodes (a large batch rewrites all of them, and the next
# batch reads only the newest version's): about 1.7 KiB a node.
NODE_CACHE_NODES_MAX = 1024
NODE_FORMAT_VERSION = 1
PROOF_FORMAT_VERSION = 1

NODE_EMPTY = 0
NODE_LEAF = 1
NODE_INTERNAL = 2


def _compute_cbor_head_bytes(argument: int) -> int:
    """Return the size of a CBOR head carrying `argument` (RFC 8949 §3)."""
    if argument < 24:
        return 1
    return 1 + next(size for size in (1, 2, 4, 8) if argument < 1 << (8 * size))


_HASH_ITEM_BYTES = _compute_cbor_head_bytes(HASH_BYTES) + HASH_BYTES
# The largest valid encoded proof: [1, [key, value], 256, bitmap(32 bytes), 256 hashes].
PROOF_BYTES_MAX = (
    1 + 1 + (1 + 2 * _HASH_ITEM_BYTES) + _compute_cbor_head_bytes(PROOF_SIBLINGS_MAX)
    + _compute_cbor_head_bytes(PROOF_SIBLINGS_MAX // 8) + PROOF_SIBLINGS_MAX // 8
    + _compute_cbor_head_bytes(PROOF_SIBLINGS_MAX) + PROOF_SIBLINGS_MAX * _HASH_ITEM_BYTES
)
# The largest valid encoded node: an internal node with 16 children of uint64 versions.
NODE_BYTES_MAX = (
    1 + 1 + 1 + 2 * _compute_cbor_head_bytes(2**CHILDREN_PER_NODE - 1) + 1
    + CHILDREN_PER_NODE * (1 + _compute_cbor_head_bytes(VERSION_MAX) + _HASH_ITEM_BYTES)
)
# version (8) || nibble count (1) || packed nibbles (32).
NODE_KEY_BYTES_MAX = 8 + 1 + NIBBLES_MAX // 2

_NIBBLE_DIGITS = "0123456789abcdef"
_ROOT_PATH: NibblePath = ""


# --------------------------------------------------------------------------- hashing


# These run several times per updated key: they call hashlib once on the joined bytes, the
# same digest as `crypto.sha256(*parts)` for a fraction of its cost.


def compute_key_hash(key: bytes) -> bytes:
    """Return the tree position of a namespaced state key: SHA-256(key)."""
    return hashlib.sha256(key).digest()


def compute_value_hash(value: bytes) -> bytes:
    """Return the value hash a leaf commits to: SHA-256(value)."""
    return hashlib.sha256(value).digest()


def compute_leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    """Return the leaf hash SHA-256(0x00 || key_hash || value_hash)."""
    return hashlib.sha256(LEAF_PREFIX + key_hash + value_hash).digest()


def compute_node_hash(left: bytes, right: bytes) -> bytes:
    """Return the internal node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class LeafNode:
    """One entry: the key's hash and the hash of its value."""

    key_hash: bytes
    value_hash: bytes

    def hash(self) -> bytes:
        """Return the leaf hash."""
        return compute_leaf_hash(self.key_hash, self.value_hash)


@dataclass(frozen=True, slots=True)
class Child:
    """A reference from an internal node to a child stored at (version, path + nibble)."""

    version: Version
    hash: bytes
    is_leaf: bool


@dataclass(frozen=True, slots=True)
class InternalNode:
    """Four binary levels of the tree: 16 child slots, one per nibble, `None` when empty."""

    children: tuple[Child | None, ...]

    def hash(self) -> bytes:
        """Return the hash of the binary subtree this node stands for."""
        return compute_internal_hash(self.children)


@dataclass(frozen=True, slots=True)
class EmptyNode:
    """The root of an empty tree (the only place an empty node is stored)."""

    def hash(self) -> bytes:
        """Return the empty-subtree placeholder."""
        return EMPTY_HASH


Node: TypeAlias = EmptyNode | LeafNode | InternalNode
# One binary subtree inside an internal node: (hash, kind) with kind a NODE_* constant.
_Slot: TypeAlias = tuple[bytes, int]
_EMPTY_SLOT: _Slot = (EMPTY_HASH, NODE_EMPTY)


def compute_internal_levels(children: Sequence[Child | None]) -> list[list[_Slot]]:
    """Return the binary subtrees of an internal node, bottom up: 16, 8, 4, 2 and 1 slots."""
    # A range with no child is empty, a range whose only child is a leaf is that leaf, and
    # any other range is the node hash of its halves: the collapsing rules of the tree.
    level: list[_Slot] = [
        _EMPTY_SLOT if child is None
        else (child.hash, NODE_LEAF if child.is_leaf else NODE_INTERNAL)
        for child in children
    ]
    levels = [level]
    while len(level) > 1:
        parents: list[_Slot] = []
        for left, right in zip(level[::2], level[1::2], strict=True):
            if right[1] == NODE_EMPTY and left[1] != NODE_INTERNAL:
                parents.append(left)
            elif left[1] == NODE_EMPTY and right[1] != NODE_INTERNAL:
                parents.append(right)
            else:
                parents.append(
                    (hashlib.sha256(NODE_PREFIX + left[0] + right[0]).digest(), NODE_INTERNAL))
        levels.append(parents)
        level = parents
    return levels


def compute_internal_hash(children: Sequence[Child | None]) -> bytes:
    """Return the hash of an internal node: the top slot of `compute_internal_levels`."""
    # The same collapsing rules, in place over two flat lists: this runs for every node an
    # update writes, where building the levels' tuples would cost a quarter more time.
    hashes: list[bytes] = []
    kinds: list[int] = []
    for child in children:
        if child is None:
            hashes.append(EMPTY_HASH)
            kinds.append(NODE_EMPTY)
        else:
            hashes.append(child.hash)
            kinds.append(NODE_LEAF if child.is_leaf else NODE_INTERNAL)
    width = len(hashes)
    while width > 1:
        for left in range(0, width, 2):
            left_kind, right_kind = kinds[left], kinds[left + 1]
            if right_kind == NODE_EMPTY and left_kind != NODE_INTERNAL:
                hashes[left >> 1], kinds[left >> 1] = hashes[left], left_kind
            elif left_kind == NODE_EMPTY and right_kind != NODE_INTERNAL:
                hashes[left >> 1], kinds[left >> 1] = hashes[left + 1], right_kind
            else:
                hashes[left >> 1] = hashlib.sha256(
                    NODE_PREFIX + hashes[left] + hashes[left + 1]).digest()
                kinds[left >> 1] = NODE_INTERNAL
        width >>= 1
    return hashes[0]


# --------------------------------------------------------------------------- node keys


def encode_node_key(version: Version, path: NibblePath) -> bytes:
    """Return the storage key of a node: uint64 version || nibble count || packed nibbles."""
    assert 0 <= version <= VERSION_MAX and len(path) <= NIBBLES_MAX
    padded = path + "0" if len(path) % 2 else path
    return (version << 8 | len(path)).to_bytes(9, "big") + bytes.fromhex(padded)


def decode_node_key(data: bytes) -> tuple[Version, NibblePath]:
    """Return (version, nibble path) from a node key, or raise `DecodeError`."""
    _require(isinstance(data, bytes), "a node key must be bytes")
    _require(9 <= len(data) <= NODE_KEY_BYTES_MAX, f"a node key of {len(data)} bytes")
    nibbles = data[8]
    _require(nibbles <= NIBBLES_MAX, f"a node key of {nibbles} nibbles")
    _require(len(data) == 9 + (nibbles + 1) // 2, "node key length disagrees with its nibbles")
    path = data[9:].hex()
    _require(len(path) == nibbles or path[-1] == "0", "node key padding nibble is not zero")
    return int.from_bytes(data[:8], "big"), path[:nibbles]


# --------------------------------------------------------------------------- node encoding


# The node layouts of §4 are fixed, so the hot paths write and parse their bytes directly
# instead of going through the generic codec (whose strict decode re-encodes to check). The
# direct forms are the same deterministic CBOR: `encode_node` falls back to the codec for
# any field outside the layout, and `decode_node` to the strict decoder for any byte string
# that is not exactly a canonical node, so both give what the codec gives for every input.
_HASH_HEAD = b"\x58\x20"  # a byte string of 32 bytes
_LEAF_HEAD = b"\x84\x01\x01"  # [1, 1, ...]: a 4-item array, format 1, kind leaf
_INTERNAL_HEAD = b"\x85\x01\x02"  # [1, 2, ...]: a 5-item array, format 1, kind internal
_EMPTY_NODE_BYTES = b"\x82\x01\x00"  # [1, 0]
_LEAF_NODE_BYTES = len(_LEAF_HEAD) + 2 * (len(_HASH_HEAD) + HASH_BYTES)
_CHILD_HEAD = 0x82  # [version, hash]
_ARRAY_HEAD = 0x80  # major type 4; an internal node's child list has at most 16 < 24 items
# Canonical CBOR heads of an unsigned integer by its argument size: 1, 2, 4 or 8 bytes.
_UINT_HEADS = ((0x18, 1, 24), (0x19, 2, 1 << 8), (0x1A, 4, 1 << 16), (0x1B, 8, 1 << 32))


class _NotCanonical(Exception):
    """The bytes are not a canonical node; the strict decoder decides what they are."""


def _encode_uint(value: int) -> bytes:
    """Return the canonical CBOR encoding of an unsigned integer below 2^64."""
    if value < 24:
        return bytes((value,))
    for initial, size, _ in _UINT_HEADS:
        if value < 1 << (8 * size):
            return bytes((initial,)) + value.to_bytes(size, "big")
    raise AssertionError(value)


def _read_uint(data: bytes, offset: int) -> tuple[int, int]:
    """Return (value, next offset) of a canonical CBOR unsigned integer at `offset`."""
    initial = data[offset]
    if initial < 24:
        return initial, offset + 1
    for head, size, smallest in _UINT_HEADS:
        if initial == head:
            end = offset + 1 + size
            if end > len(data):
                raise _NotCanonical
            value = int.from_bytes(data[offset + 1:end], "big")
            if value < smallest:
                raise _NotCanonical  # a longer head than the value needs
            return value, end
    raise _NotCanonical


def _is_hash(value: object) -> bool:
    """Return True if `value` is a 32-byte string."""
    return type(value) is bytes and len(value) == HASH_BYTES


def encode_node(node: Node) -> bytes:
    """Return the deterministic CBOR encoding of a node (docs/spec/state-tree.md §4)."""
    if type(node) is LeafNode:
        if _is_hash(node.key_hash) and _is_hash(node.value_hash):
            return b"".join((_LEAF_HEAD, _HASH_HEAD, node.key_hash, _HASH_HEAD,
                             node.value_hash))
    elif type(node) is InternalNode:
        if len(node.children) == CHILDREN_PER_NODE and all(
                child is None or (type(child.version) is int and 0 <= child.version <= VERSION_MAX
                                  and _is_hash(child.hash) and type(child.is_leaf) is bool)
                for child in node.children):
            return _encode_internal(node.children)
    elif type(node) is EmptyNode:
        return _EMPTY_NODE_BYTES
    return _encode_node_with_codec(node)


def _encode_internal(children: tuple[Child | None, ...]) -> bytes:
    """Return the encoding of an internal node whose 16 children have valid fields."""
    existence = leaves = 0
    parts = [_INTERNAL_HEAD, b""]
    for nibble, child in enumerate(children):
        if child is not None:
            existence |= 1 << nibble
            if child.is_leaf:
                leaves |= 1 << nibble
            parts.append(_encode_child_head(child.version))
            parts.append(child.hash)
    parts[1] = b"".join((_encode_uint(existence), _encode_uint(leaves),
                         bytes((_ARRAY_HEAD | existence.bit_count(),))))
    return b"".join(parts)


@functools.lru_cache(maxsize=4096)
def _encode_child_head(version: Version) -> bytes:
    """Return the bytes of a child entry before its hash: [version, (32-byte string head)."""
    # Memoised: a tree's children carry the versions of recent blocks over and over.
    return bytes((_CHILD_HEAD,)) + _encode_uint(version) + _HASH_HEAD


def _encode_node_with_codec(node: Node) -> bytes:
    """Return a node's encoding through the generic codec (the definition of §4)."""
    if isinstance(node, LeafNode):
        return encode([NODE_FORMAT_VERSION, NODE_LEAF, node.key_hash, node.value_hash])
    if isinstance(node, InternalNode):
        existence = leaves = 0
        entries = []
        for nibble, child in enumerate(node.children):
            if child is not None:
                existence |= 1 << nibble
                leaves |= int(child.is_leaf) << nibble
                entries.append([child.version, child.hash])
        return encode([NODE_FORMAT_VERSION, NODE_INTERNAL, existence, leaves, entries])
    return encode([NODE_FORMAT_VERSION, NODE_EMPTY])


def decode_node(data: bytes) -> Node:
    """Decode a stored node, or raise `DecodeError` whatever the bytes."""
    if type(data) is bytes:
        try:
            return _decode_canonical_node(data)
        except (_NotCanonical, IndexError):
            pass
    return _decode_node_with_codec(data)


def _decode_canonical_node(data: bytes) -> Node:
    """Return the node `data` encodes if it is exactly a valid node's canonical encoding."""
    head = data[:3]
    if head == _LEAF_HEAD:
        if (len(data) != _LEAF_NODE_BYTES or data[3:5] != _HASH_HEAD
                or data[37:39] != _HASH_HEAD):
            raise _NotCanonical
        return LeafNode(data[5:37], data[39:71])
    if head == _INTERNAL_HEAD:
        existence, offset = _read_uint(data, 3)
        leaves, offset = _read_uint(data, offset)
        count = existence.bit_count()
        if (not 0 < existence < 1 << CHILDREN_PER_NODE or leaves & ~existence
                or (count == 1 and leaves == existence) or data[offset] != _ARRAY_HEAD | count):
            raise _NotCanonical
        offset += 1
        children: list[Child | None] = [None] * CHILDREN_PER_NODE
        for nibble in range(CHILDREN_PER_NODE):
            if existence >> nibble & 1:
                if data[offset] != _CHILD_HEAD:
                    raise _NotCanonical
                version, offset = _read_uint(data, offset + 1)
                child_hash = data[offset + 2:offset + 34]
                if (data[offset:offset + 2] != _HASH_HEAD or len(child_hash) != HASH_BYTES
                        or child_hash == EMPTY_HASH):
                    raise _NotCanonical
                offset += 34
                children[nibble] = Child(version, child_hash, bool(leaves >> nibble & 1))
        if offset != len(data):
            raise _NotCanonical
        return InternalNode(tuple(children))
    if data != _EMPTY_NODE_BYTES:
        raise _NotCanonical
    return EmptyNode()


def _decode_node_with_codec(data: bytes) -> Node:
    """Decode a node through the strict codec: the definition of §4, with its errors."""
    fields = decode(data, NODE_BYTES_MAX)
    _require(isinstance(fields, list) and len(fields) >= 2, "a node is an array of >= 2 fields")
    _require(type(fields[0]) is int and fields[0] == NODE_FORMAT_VERSION,
             f"unsupported node format version {fields[0]!r}")
    kind = fields[1]
    if type(kind) is int and kind == NODE_LEAF:
        _require(len(fields) == 4, "a leaf node has 4 fields")
        return LeafNode(_require_hash(fields[2], "leaf key hash"),
                        _require_hash(fields[3], "leaf value hash"))
    if type(kind) is int and kind == NODE_INTERNAL:
        _require(len(fields) == 5, "an internal node has 5 fields")
        return InternalNode(_decode_children(fields[2], fields[3], fields[4]))
    _require(type(kind) is int and kind == NODE_EMPTY, f"unknown node kind {kind!r}")
    _require(len(fields) == 2, "an empty node has 2 fields")
    return EmptyNode()


def _decode_children(existence: Any, leaves: Any, entries: Any) -> tuple[Child | None, ...]:
    """Rebuild the 16 child slots of an internal node from its bitmaps and entries."""
    for bitmap, name in ((existence, "existence bitmap"), (leaves, "leaf bitmap")):
        _require(type(bitmap) is int and 0 <= bitmap < 1 << CHILDREN_PER_NODE,
                 f"{name} must be a 16-bit unsigned integer")
    _require(existence != 0, "an internal node has at least one child")
    _require(leaves & ~existence == 0, "leaf bitmap marks a child that does not exist")
    _require(not (existence.bit_count() == 1 and leaves == existence),
             "an internal node whose only child is a leaf must collapse into that leaf")
    _require(isinstance(entries, list) and len(entries) == existence.bit_count(),
             "internal node child count disagrees with its existence bitmap")
    children: list[Child | None] = [None] * CHILDREN_PER_NODE
    remaining = iter(entries)
    # The hot loop of every read: plain ifs, no message formatting unless something is wrong.
    for nibble in range(CHILDREN_PER_NODE):
        if existence >> nibble & 1:
            entry = next(remaining)
            if type(entry) is not list or len(entry) != 2:
                raise DecodeError("a child is [version, hash]")
            version, child_hash = entry
            if type(version) is not int or not 0 <= version <= VERSION_MAX:
                raise DecodeError("child version must be a uint64")
            if type(child_hash) is not bytes or len(child_hash) != HASH_BYTES:
                raise DecodeError("child hash must be 32 bytes")
            if child_hash == EMPTY_HASH:
                raise DecodeError("a child hash is never the empty placeholder")
            children[nibble] = Child(version, child_hash, bool(leaves >> nibble & 1))
    return tuple(children)


def compute_node_fault(node: Node, version: Version, path: NibblePath) -> str | None:
    """Return why `node` cannot be stored at (version, path), or None if it can."""
    if isinstance(node, LeafNode):
        if not node.key_hash.hex().startswith(path):
            return "leaf key hash does not start with its nibble path"
        return None
    if isinstance(node, InternalNode):
        if len(path) >= NIBBLES_MAX:
            return f"internal node below nibble depth {NIBBLES_MAX - 1}"
        present = [child for child in node.children if child is not None]
        if not present or (len(present) == 1 and present[0].is_leaf):
            return "internal node with no children, or whose only child is a leaf"
        if max([child.version for child in present]) > version:
            return "internal node refers to a child newer than itself"
        return None
    return None if path == _ROOT_PATH else "an empty node below the root"


# --------------------------------------------------------------------------- stores


class VersionUnavailableError(LocalError):
    """A state tree version was asked for that is not stored: pruned, or never written."""


class StaleNode(NamedTuple):
    """A node that is no longer part of the tree from `stale_since_version` on."""

    stale_since_version: Version
    node_key: bytes


class TreeBatch(NamedTuple):
    """What one `apply_batch` produces: the root, new nodes in key order, and stale nodes."""

    root: bytes
    new_nodes: list[tuple[bytes, bytes]]
    stale_nodes: list[StaleNode]


class NodeStore(Protocol):
    """Where the tree reads its nodes: encoded node bytes by node key."""

    def get_node(self, node_key: bytes) -> bytes | None: ...


class PrunableNodeStore(NodeStore, Protocol):
    """A node store that can also persist batches and forget stale nodes."""

    def write_batch(self, batch: TreeBatch) -> None: ...

    def list_stale(self, before_version: Version, limit: int) -> list[StaleNode]: ...

    def delete_stale(self, entries: Sequence[StaleNode]) -> None: ...


class MemoryNodeStore:
    """A dict-backed node store for tests, the simulator and audit replay."""

    __slots__ = ("nodes", "stale")

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}
        self.stale: set[StaleNode] = set()

    def get_node(self, node_key: bytes) -> bytes | None:
        """Return the encoded node stored under `node_key`, or None."""
        return self.nodes.get(node_key)

    def write_batch(self, batch: TreeBatch) -> None:
        """Store a batch's new nodes and stale index; refuse to overwrite a node."""
        for node_key, data in batch.new_nodes:
            if node_key in self.nodes:
                raise StorageError(f"state tree node {node_key.hex()} is already stored")
            self.nodes[node_key] = data
        self.stale.update(batch.stale_nodes)

    def list_stale(self, before_version: Version, limit: int) -> list[StaleNode]:
        """Return up to `limit` stale entries with stale_since_version <= `before_version`."""
        return sorted(entry for entry in self.stale
                      if entry.stale_since_version <= before_version)[:limit]

    def delete_stale(self, entries: Sequence[StaleNode]) -> None:
        """Delete the given stale nodes and their stale entries."""
        for entry in entries:
            self.nodes.pop(entry.node_key, None)
            self.stale.discard(entry)


def prune(store: PrunableNodeStore, before_version: Version) -> int:
    """Delete every node only versions below `before_version` need; return how many."""
    # A node stale since version s belongs to versions < s only, so it goes when
    # s <= before_version: versions >= before_version stay fully readable and provable.
    _require_local_version(before_version, "before_version")
    pruned = 0
    while entries := store.list_stale(before_version, PRUNE_CHUNK_NODES):
        for entry in entries:
            version, _ = decode_node_key(entry.node_key)
            assert version < entry.stale_since_version <= before_version, entry
        store.delete_stale(entries)
        pruned += len(entries)
    return pruned


def is_needed_by_versions(entry: StaleNode, versions: Sequence[Version]) -> bool:
    """Return True if a stale node belongs to one of `versions` (sorted ascending)."""
    # A node written at version c and stale since s is part of exactly the versions c .. s-1.
    created, _ = decode_node_key(entry.node_key)
    position = bisect.bisect_left(versions, created)
    return position < len(versions) and versions[position] < entry.stale_since_version


# --------------------------------------------------------------------------- proofs


@dataclass(frozen=True, slots=True)
class SparseMerkleProof:
    """The leaf found on a key's path (if any) and every sibling hash from there up."""

    # `siblings[0]` is the sibling at the deepest level, `siblings[-1]` the root's child;
    # empty subtrees appear as `EMPTY_HASH` here and are compressed away on the wire.

    leaf: LeafNode | None
    siblings: tuple[bytes, ...]

    def to_cbor(self) -> list[Any]:
        """Return [version, leaf, depth, bitmap, non-empty siblings] (the wire form)."""
        bitmap = bytearray((len(self.siblings) + 7) // 8)
        listed = []
        for position, sibling in enumerate(self.siblings):
            if sibling != EMPTY_HASH:
                bitmap[position // 8] |= 0x80 >> (position % 8)
                listed.append(sibling)
        leaf = None if self.leaf is None else [self.leaf.key_hash, self.leaf.value_hash]
        return [PROOF_FORMAT_VERSION, leaf, len(self.siblings), bytes(bitmap), listed]

    def encode(self) -> bytes:
        """Return the deterministic CBOR encoding of the proof."""
        data = encode(self.to_cbor())
        assert len(data) <= PROOF_BYTES_MAX, len(data)
        return data

    @classmethod
    def decode(cls, data: bytes) -> SparseMerkleProof:
        """Decode a proof, or raise `DecodeError` whatever the bytes."""
        return cls.from_cbor(decode(data, PROOF_BYTES_MAX))

    @classmethod
    def from_cbor(cls, value: Any) -> SparseMerkleProof:
        """Rebuild a proof from its CBOR value, checking every field."""
        _require(isinstance(value, list) and len(value) == 5, "a proof is an array of 5 fields")
        version, leaf_value, depth, bitmap, listed = value
        _require(type(version) is int and version == PROOF_FORMAT_VERSION,
                 f"unsupported proof format version {version!r}")
        leaf = None
        if leaf_value is not None:
            _require(isinstance(leaf_value, list) and len(leaf_value) == 2,
                     "a proof leaf is [key hash, value hash] or null")
            leaf = LeafNode(_require_hash(leaf_value[0], "proof leaf key hash"),
                            _require_hash(leaf_value[1], "proof leaf value hash"))
        _require(type(depth) is int and 0 <= depth <= PROOF_SIBLINGS_MAX,
                 f"proof depth must be an integer from 0 to {PROOF_SIBLINGS_MAX}")
        _require(isinstance(bitmap, bytes) and len(bitmap) == (depth + 7) // 8,
                 "proof bitmap must be ceil(depth / 8) bytes")
        _require(depth % 8 == 0 or bitmap[-1] & (0xFF >> (depth % 8)) == 0,
                 "proof bitmap padding bits must be zero")
        present = sum(byte.bit_count() for byte in bitmap)
        _require(isinstance(listed, list) and len(listed) == present,
                 "proof sibling count disagrees with its bitmap")
        remaining = iter(listed)
        siblings = []
        for position in range(depth):
            if bitmap[position // 8] & (0x80 >> (position % 8)):
                sibling = _require_hash(next(remaining), f"proof sibling {position}")
                _require(sibling != EMPTY_HASH, "an empty sibling must be left out of the list")
                siblings.append(sibling)
            else:
                siblings.append(EMPTY_HASH)
        return cls(leaf, tuple(siblings))


def compute_root_from_proof(key_hash: bytes, proof: SparseMerkleProof) -> bytes:
    """Return the root `proof` implies for the path of `key_hash` (after shape checks)."""
    _require_remote_hash(key_hash, "key hash")
    _require_proof_shape(proof)
    current = EMPTY_HASH if proof.leaf is None else proof.leaf.hash()
    path = int.from_bytes(key_hash, "big")
    depth = len(proof.siblings)
    for position, sibling in enumerate(proof.siblings):
        if path >> (KEY_BITS - depth + position) & 1:
            current = compute_node_hash(sibling, current)
        else:
            current = compute_node_hash(current, sibling)
    return current


def verify_proof(root: bytes, key_hash: bytes, value_hash: bytes | None,
                 proof: SparseMerkleProof) -> None:
    """Raise `VerificationError` unless `proof` shows key_hash -> value_hash (None: absent)."""
    _require_remote_hash(root, "root")
    _require_remote_hash(key_hash, "key hash")
    _require_proof_shape(proof)
    leaf = proof.leaf
    if value_hash is not None:
        _require_remote_hash(value_hash, "value hash")
        if leaf is None:
            raise VerificationError("membership claimed but the proof ends in an empty subtree")
        if leaf.key_hash != key_hash:
            raise VerificationError(
                f"membership claimed but the proof's leaf is key {leaf.key_hash.hex()}, "
                f"not {key_hash.hex()}")
        if leaf.value_hash != value_hash:
            raise VerificationError(
                f"the proof's leaf holds value hash {leaf.value_hash.hex()}, "
                f"not {value_hash.hex()}")
    elif leaf is not None:
        if leaf.key_hash == key_hash:
            raise VerificationError("non-membership claimed but the proof's leaf is the key")
        if _compute_common_prefix_bits(leaf.key_hash, key_hash) < len(proof.siblings):
            raise VerificationError(
                "the proof's leaf does not share the key's path down to the proof's depth")
    computed = compute_root_from_proof(key_hash, proof)
    if computed != root:
        raise VerificationError(f"proof leads to root {computed.hex()}, not {root.hex()}")


def verify_membership(root: bytes, key: bytes, value_hash: bytes,
                      proof: SparseMerkleProof) -> None:
    """Raise `VerificationError` unless `proof` shows state `key` holds `value_hash`."""
    if value_hash is None:
        raise VerificationError("membership needs a value hash")
    verify_proof(root, compute_key_hash(_require_remote_key(key)), value_hash, proof)


def verify_non_membership(root: bytes, key: bytes, proof: SparseMerkleProof) -> None:
    """Raise `VerificationError` unless `proof` shows state `key` is absent under `root`."""
    verify_proof(root, compute_key_hash(_require_remote_key(key)), None, proof)


def is_valid_membership(root: bytes, key: bytes, value_hash: bytes,
                        proof: SparseMerkleProof) -> bool:
    """Return True if `proof` shows state `key` holds `value_hash` under `root`."""
    try:
        verify_membership(root, key, value_hash, proof)
    except VerificationError:
        return False
    return True


def is_valid_non_membership(root: bytes, key: bytes, proof: SparseMerkleProof) -> bool:
    """Return True if `proof` shows state `key` is absent under `root`."""
    try:
        verify_non_membership(root, key, proof)
    except VerificationError:
        return False
    return True


def _require_proof_shape(proof: object) -> None:
    """Raise `VerificationError` unless `proof` is a well-formed, canonical proof value."""
    if not isinstance(proof, SparseMerkleProof):
        raise VerificationError(f"expected a SparseMerkleProof, got {type(proof).__name__}")
    if proof.leaf is not None:
        if not isinstance(proof.leaf, LeafNode):
            raise VerificationError("proof leaf must be a LeafNode or None")
        _require_remote_hash(proof.leaf.key_hash, "proof leaf key hash")
        _require_remote_hash(proof.leaf.value_hash, "proof leaf value hash")
    if not isinstance(proof.siblings, tuple | list):
        raise VerificationError("proof siblings must be a sequence of hashes")
    if len(proof.siblings) > PROOF_SIBLINGS_MAX:
        raise VerificationError(f"proof has {len(proof.siblings)} siblings, at most "
                                f"{PROOF_SIBLINGS_MAX} fit a 256-bit key")
    for position, sibling in enumerate(proof.siblings):
        _require_remote_hash(sibling, f"proof sibling {position}")
    if proof.siblings and proof.siblings[0] == EMPTY_HASH:
        # A leaf or empty subtree beside an empty sibling would have collapsed one level up.
        raise VerificationError("proof is not canonical: its deepest sibling is empty")


def _compute_common_prefix_bits(first: bytes, second: bytes) -> int:
    """Return how many leading bits two 32-byte strings share."""
    difference = int.from_bytes(first, "big") ^ int.from_bytes(second, "big")
    return KEY_BITS - difference.bit_length()


# --------------------------------------------------------------------------- the tree


class _Result(NamedTuple):
    """A subtree after a batch: its kind, whether it changed, and where it lives."""

    kind: int
    changed: bool
    hash: bytes
    version: Version = 0
    leaf: LeafNode | None = None
    # For a leaf already stored: the (version, path) it is stored at, else None.
    origin: tuple[Version, NibblePath] | None = None


_UNCHANGED_EMPTY = _Result(NODE_EMPTY, False, EMPTY_HASH)
# One update: (key hash as hex, key hash, value hash or None to delete).
_Update: TypeAlias = tuple[str, bytes, bytes | None]


class _BatchBuilder:
    """The new and stale nodes of one version while `apply_batch` walks the tree."""

    def __init__(self, tree: SparseMerkleTree, version: Version) -> None:
        self.tree = tree
        self.version = version
        self.new_nodes: dict[bytes, bytes] = {}
        self.stale: set[bytes] = set()

    def write(self, path: NibblePath, node: Node) -> None:
        """Record a new node at (this version, path)."""
        fault = compute_node_fault(node, self.version, path)
        assert fault is None, fault
        node_key = encode_node_key(self.version, path)
        assert node_key not in self.new_nodes, (self.version, path)
        if type(node) is InternalNode:
            # The builder's children are decoded or computed here: their fields are valid.
            data = self.new_nodes[node_key] = _encode_internal(node.children)
            self.tree._remember(node_key, data, node)
        else:
            self.new_nodes[node_key] = encode_node(node)

    def retire(self, version: Version, path: NibblePath) -> None:
        """Record that the node at (version, path) is stale from this version on."""
        assert version < self.version
        self.stale.add(encode_node_key(version, path))

    def update(self, path: NibblePath, child: Child | None, updates: list[_Update]) -> _Result:
        """Return the subtree at `path` (currently `child`) after `updates`."""
        if child is None:
            return self.insert_fresh(path, [item for item in updates if item[2] is not None])
        node = self.tree.read_node(child.version, path)
        if isinstance(node, LeafNode) and child.is_leaf:
            return self.update_leaf(path, child.version, node, updates)
        if isinstance(node, InternalNode) and not child.is_leaf:
            return self.update_internal(path, child, node.children, updates)
        raise StorageError(f"state tree node {child.version}/{path or '<root>'} is not the "
                           f"{'leaf' if child.is_leaf else 'internal node'} its parent says")

    def insert_fresh(self, path: NibblePath, inserts: list[_Update]) -> _Result:
        """Return a new subtree at `path` holding exactly `inserts`."""
        if not inserts:
            return _UNCHANGED_EMPTY
        if len(inserts) == 1:
            _, key_hash, value_hash = inserts[0]
            assert value_hash is not None
            leaf = LeafNode(key_hash, value_hash)
            return _Result(NODE_LEAF, True, leaf.hash(), leaf=leaf)
        return self.update_internal(path, None, (None,) * CHILDREN_PER_NODE, inserts)

    def update_leaf(self, path: NibblePath, version: Version, leaf: LeafNode,
                    updates: list[_Update]) -> _Result:
        """Return the subtree at `path`, now the stored `leaf`, after `updates`."""
        if len(updates) == 1 and updates[0][1] == leaf.key_hash:
            # The common case, a new value for the leaf's own key (or its deletion).
            value_hash = updates[0][2]
            if value_hash == leaf.value_hash:
                return _Result(NODE_LEAF, False, leaf.hash(), leaf=leaf, origin=(version, path))
            self.retire(version, path)
            if value_hash is None:
                return _Result(NODE_EMPTY, True, EMPTY_HASH)
            updated = LeafNode(leaf.key_hash, value_hash)
            return _Result(NODE_LEAF, True, updated.hash(), leaf=updated)
        entries = {leaf.key_hash: leaf.value_hash}
        for _, key_hash, value_hash in updates:
            if value_hash is None:
                entries.pop(key_hash, None)
            else:
                entries[key_hash] = value_hash
        if entries == {leaf.key_hash: leaf.value_hash}:
            return _Result(NODE_LEAF, False, leaf.hash(), leaf=leaf, origin=(version, path))
        self.retire(version, path)
        fresh = sorted((key_hash.hex(), key_hash, value_hash)
                       for key_hash, value_hash in entries.items())
        return self.insert_fresh(path, fresh)._replace(changed=True)

    def update_internal(self, path: NibblePath, child: Child | None,
                        children: tuple[Child | None, ...], updates: list[_Update]) -> _Result:
        """Return the subtree at `path`, now an internal node (or nothing), after `updates`."""
        depth = len(path)
        assert depth < NIBBLES_MAX, "two distinct keys share all 256 bits"
        slots: list[Child | _Result | None] = list(children)
        results: list[int] = []  # the nibbles whose slot now holds a changed subtree
        changed = False
        for digit, group in itertools.groupby(updates, key=lambda item: item[0][depth]):
            nibble = int(digit, 16)
            result = self.update(path + digit, children[nibble], list(group))
            if result.changed:
                changed = True
                if result.kind == NODE_EMPTY:
                    slots[nibble] = None
                else:
                    slots[nibble] = result
                    results.append(nibble)
        if not changed:
            assert child is not None
            return _Result(NODE_INTERNAL, False, child.hash, version=child.version)
        if child is not None:
            self.retire(child.version, path)
        present = [nibble for nibble, slot in enumerate(slots) if slot is not None]
        if not present:
            return _Result(NODE_EMPTY, True, EMPTY_HASH)
        if len(present) == 1:
            collapsed = self.collapse(path, present[0], slots[present[0]])
            if collapsed is not None:
                return collapsed
        for nibble in results:
            slots[nibble] = self.place(path + _NIBBLE_DIGITS[nibble], slots[nibble])
        node = InternalNode(tuple(slots))  # type: ignore[arg-type]  # only Child or None left
        self.write(path, node)
        return _Result(NODE_INTERNAL, True, node.hash(), version=self.version)

    def collapse(self, path: NibblePath, nibble: int, slot: Child | _Result | None
                 ) -> _Result | None:
        """Return the lone leaf of a one-child node so it moves up, or None to keep the node."""
        if isinstance(slot, _Result):
            return slot._replace(changed=True) if slot.kind == NODE_LEAF else None
        assert slot is not None
        if not slot.is_leaf:
            return None
        child_path = path + format(nibble, "x")
        leaf = self.tree.read_node(slot.version, child_path)
        if not isinstance(leaf, LeafNode):
            raise StorageError(f"state tree node {slot.version}/{child_path} is not a leaf")
        return _Result(NODE_LEAF, True, slot.hash, leaf=leaf, origin=(slot.version, child_path))

    def place(self, path: NibblePath, slot: _Result) -> Child:
        """Return the child reference for `slot` at `path`, writing a leaf that moved or is new."""
        if slot.kind == NODE_INTERNAL:
            return Child(slot.version, slot.hash, False)
        assert slot.kind == NODE_LEAF and slot.leaf is not None
        if slot.origin is not None:
            if slot.origin[1] == path:
                return Child(slot.origin[0], slot.hash, True)
            self.retire(*slot.origin)
        self.write(path, slot.leaf)
        return Child(self.version, slot.hash, True)

    def finish(self, root: bytes) -> TreeBatch:
        """Return the batch, new nodes in key order and stale entries sorted."""
        assert not self.stale & self.new_nodes.keys()
        return TreeBatch(root, sorted(self.new_nodes.items()),
                         sorted(StaleNode(self.version, node_key) for node_key in self.stale))


class SparseMerkleTree:
    """Reads and updates the versioned state tree held in a `NodeStore`."""

    # The tree keeps decoded internal nodes by node key, each with the exact bytes it was
    # decoded from or encoded to. Every read still asks the store and uses a kept node only
    # if the store returns those same bytes, so the cache can never answer for the store:
    # not for a node pruned or rolled back, nor for one of two unpersisted batches that
    # wrote different nodes under the same keys (two proposals for one height).

    __slots__ = ("_cache", "cache_nodes_max", "store")

    def __init__(self, store: NodeStore, cache_nodes_max: int = NODE_CACHE_NODES_MAX) -> None:
        self.store = store
        self.cache_nodes_max = cache_nodes_max
        self._cache: dict[bytes, tuple[bytes, InternalNode]] = {}

    def apply_batch(self, version: Version, updates: Mapping[bytes, bytes | None]) -> TreeBatch:
        """Return version `version` of the tree: version - 1 with `updates` (None deletes)."""
        # Keys are namespaced state keys and values their bytes; both are hashed here.
        # Version 0 starts from the empty tree. Nothing is written: the caller persists the
        # batch (in the block's transaction) before applying the next version.
        if not isinstance(updates, Mapping):
            raise LocalError("updates must be a mapping from state keys to values or None")
        hashed: dict[bytes, bytes | None] = {}
        for key, value in updates.items():
            if not isinstance(key, bytes) or not (value is None or isinstance(value, bytes)):
                raise LocalError("state keys and values must be bytes (None deletes)")
            hashed[compute_key_hash(key)] = None if value is None else compute_value_hash(value)
        assert len(hashed) == len(updates), "two state keys with one SHA-256"
        return self.apply_hashed_batch(version, hashed)

    def apply_hashed_batch(self, version: Version,
                           updates: Mapping[bytes, bytes | None]) -> TreeBatch:
        """Return version `version` of the tree after updates already hashed to 32 bytes."""
        _require_local_version(version, "version")
        if len(updates) > BATCH_UPDATES_MAX:
            raise LocalError(f"a batch holds at most {BATCH_UPDATES_MAX} updates")
        items: list[_Update] = []
        for key_hash, value_hash in updates.items():
            _require_local_hash(key_hash, "key hash")
            if value_hash is not None:
                _require_local_hash(value_hash, "value hash")
            items.append((key_hash.hex(), key_hash, value_hash))
        items.sort()
        builder = _BatchBuilder(self, version)
        root_child: Child | None = None
        if version > 0:
            old_root = self.read_root(version - 1)
            builder.retire(version - 1, _ROOT_PATH)
            if not isinstance(old_root, EmptyNode):
                root_child = Child(version - 1, old_root.hash(), isinstance(old_root, LeafNode))
        result = builder.update(_ROOT_PATH, root_child, items)
        self._write_root(builder, result, root_child)
        return builder.finish(result.hash)

    def _write_root(self, builder: _BatchBuilder, result: _Result,
                    old_root: Child | None) -> None:
        """Write this version's root node, whatever happened below it."""
        if result.kind == NODE_EMPTY:
            builder.write(_ROOT_PATH, EmptyNode())
        elif result.kind == NODE_LEAF:
            assert result.leaf is not None
            if result.origin is not None and result.origin[1] != _ROOT_PATH:
                builder.retire(*result.origin)
            builder.write(_ROOT_PATH, result.leaf)
        elif not result.changed:
            assert old_root is not None
            builder.write(_ROOT_PATH, self.read_node(old_root.version, _ROOT_PATH))

    def get_root(self, version: Version) -> bytes:
        """Return the root hash of version `version`."""
        return self.read_root(version).hash()

    def get_value_hash(self, version: Version, key: bytes) -> bytes | None:
        """Return the value hash of state `key` at `version`, or None if absent."""
        return self.get_with_proof(version, key)[0]

    def get_with_proof(self, version: Version, key: bytes
                       ) -> tuple[bytes | None, SparseMerkleProof]:
        """Return the value hash of state `key` at `version` (or None) and its proof."""
        if not isinstance(key, bytes):
            raise LocalError("a state key must be bytes")
        return self.get_with_proof_by_hash(version, compute_key_hash(key))

    def get_with_proof_by_hash(self, version: Version, key_hash: bytes
                               ) -> tuple[bytes | None, SparseMerkleProof]:
        """Return the value hash at `key_hash` in version `version` (or None) and its proof."""
        _require_local_hash(key_hash, "key hash")
        node: Node = self.read_root(version)
        key_hex = key_hash.hex()
        path = _ROOT_PATH
        top_down: list[bytes] = []
        expected_hash: bytes | None = None
        leaf: LeafNode | None = None
        while isinstance(node, InternalNode):
            levels = compute_internal_levels(node.children)
            if expected_hash is not None and levels[-1][0][0] != expected_hash:
                raise StorageError(f"state tree node {version}/{path} does not hash to the "
                                   "hash its parent holds")
            found = self._descend(node, levels, path, int(key_hex[len(path)], 16), top_down)
            if not isinstance(found, Child):
                leaf = found
                break
            path += key_hex[len(path)]
            node = self.read_node(found.version, path)
            expected_hash = found.hash
        else:
            leaf = node if isinstance(node, LeafNode) else None
        value_hash = leaf.value_hash if leaf is not None and leaf.key_hash == key_hash else None
        return value_hash, SparseMerkleProof(leaf, tuple(reversed(top_down)))

    def _descend(self, node: InternalNode, levels: list[list[_Slot]], path: NibblePath,
                 nibble: int, top_down: list[bytes]) -> Child | LeafNode | None:
        """Return the child to walk into, or the leaf (or None) ending the path in `node`."""
        # Walks the node's four binary levels toward `nibble`, appending each sibling.
        for height in range(NIBBLE_BITS, 0, -1):
            kind = levels[height][nibble >> height][1]
            if kind != NODE_INTERNAL:
                return self._read_terminal(node, path, nibble, height, kind)
            top_down.append(levels[height - 1][(nibble >> (height - 1)) ^ 1][0])
        child = node.children[nibble]
        if child is None or child.is_leaf:
            return self._read_terminal(node, path, nibble, 0, NODE_EMPTY if child is None
                                       else NODE_LEAF)
        return child

    def _read_terminal(self, node: InternalNode, path: NibblePath, nibble: int, height: int,
                       kind: int) -> LeafNode | None:
        """Return the leaf (or None if empty) that ends a path at `height` inside `node`."""
        if kind == NODE_EMPTY:
            return None
        start = nibble >> height << height
        candidates = [(position, child) for position, child in
                      enumerate(node.children[start:start + (1 << height)], start)
                      if child is not None]
        assert len(candidates) == 1 and candidates[0][1].is_leaf
        position, child = candidates[0]
        leaf = self.read_node(child.version, path + format(position, "x"))
        if not isinstance(leaf, LeafNode) or leaf.hash() != child.hash:
            raise StorageError(f"state tree leaf {child.version}/{path}{position:x} does not "
                               "match the hash its parent holds")
        return leaf

    def read_root(self, version: Version) -> Node:
        """Return the root node of `version`, or raise `LocalError` if it is not stored."""
        _require_local_version(version, "version")
        node_key = encode_node_key(version, _ROOT_PATH)
        data = self.store.get_node(node_key)
        if data is None:
            raise VersionUnavailableError(
                f"no state tree at version {version}: never written, or pruned")
        return self._decode_cached(node_key, data, version, _ROOT_PATH)

    def read_node(self, version: Version, path: NibblePath) -> Node:
        """Return the node stored at (version, path), or raise `StorageError`."""
        node_key = encode_node_key(version, path)
        data = self.store.get_node(node_key)
        if data is None:
            raise StorageError(f"state tree node {version}/{path or '<root>'} is missing")
        return self._decode_cached(node_key, data, version, path)

    def _decode_cached(self, node_key: bytes, data: bytes, version: Version,
                       path: NibblePath) -> Node:
        """Return the node `data` holds, from the cache if it kept exactly these bytes."""
        cached = self._cache.get(node_key)
        if cached is not None and cached[0] == data:
            return cached[1]
        node = self._decode_checked(data, version, path)
        if type(node) is InternalNode:
            self._remember(node_key, data, node)
        return node

    def _remember(self, node_key: bytes, data: bytes, node: InternalNode) -> None:
        """Keep a decoded node near the root, dropping the oldest quarter of the cache when full."""
        if node_key[8] > NODE_CACHE_DEPTH_MAX or self.cache_nodes_max <= 0:
            return
        if len(self._cache) >= self.cache_nodes_max:
            dropped = max(1, self.cache_nodes_max // 4)
            self._cache = dict(list(self._cache.items())[dropped:])
        self._cache[node_key] = (data, node)

    @staticmethod
    def _decode_checked(data: bytes, version: Version, path: NibblePath) -> Node:
        """Decode a stored node and check it can sit at (version, path)."""
        try:
            node = decode_node(data)
        except DecodeError as exc:
            raise StorageError(f"state tree node {version}/{path or '<root>'} is corrupt: "
                               f"{exc}") from exc
        fault = compute_node_fault(node, version, path)
        if fault is not None:
            raise StorageError(f"state tree node {version}/{path or '<root>'}: {fault}")
        return node


# --------------------------------------------------------------------------- checks


def _require(condition: bool, message: str) -> None:
    """Raise `DecodeError(message)` unless `condition` holds."""
    if not condition:
        raise DecodeError(message)


def _require_hash(value: Any, name: str) -> bytes:
    """Return `value` if it is a 32-byte string, else raise `DecodeError`."""
    _require(isinstance(value, bytes) and len(value) == HASH_BYTES,
             f"{name} must be {HASH_BYTES} bytes")
    return value


def _require_remote_hash(value: object, name: str) -> None:
    """Raise `VerificationError` unless `value` is a 32-byte hash."""
    if not isinstance(value, bytes):
        raise VerificationError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_BYTES:
        raise VerificationError(f"{name} must be {HASH_BYTES} bytes, got {len(value)}")


def _require_remote_key(value: object) -> bytes:
    """Return `value` if it is a byte-string state key, else raise `VerificationError`."""
    if not isinstance(value, bytes):
        raise VerificationError(f"state key must be bytes, got {type(value).__name__}")
    return value


def _require_local_hash(value: object, name: str) -> None:
    """Raise `LocalError` unless `value` is a 32-byte hash."""
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise LocalError(f"{name} must be {HASH_BYTES} bytes, got {value!r}")


def _require_local_version(value: object, name: str) -> None:
    """Raise `LocalError` unless `value` is a uint64 version."""
    if type(value) is not int or not 0 <= value <= VERSION_MAX:
        raise LocalError(f"{name} must be an integer from 0 to 2^64-1, got {value!r}")
