"""The RFC 9162 (Certificate Transparency v2) Merkle tree over every committed transaction.

Theory of operation: the log is an append-only list of leaves; its root is the Merkle Tree
Hash (MTH) of RFC 9162 §2.1.1, with leaves hashed as SHA-256(0x00 || data) and interior
nodes as SHA-256(0x01 || left || right). Storage keeps only *perfect* subtrees: node
(level, index) is the MTH of leaves [index * 2^level, (index + 1) * 2^level), and level 0
holds the leaf hashes. Every other hash a proof needs is the MTH of an *aligned* range
(its start a multiple of the range length rounded up to a power of two), which is the
right fold of at most log2(n) stored perfect nodes, so roots and proofs read O(log n)
nodes through a caller-supplied `NodeReader`; this module does no I/O.

`LogFrontier` is the append side: it keeps the perfect-subtree roots of the binary
decomposition of the size and reports exactly the perfect nodes each append creates, so
the block store persists those and nothing else. `MemoryLog` is a dict-backed log for
tests, audit replay and the simulator.

Verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 and are strict: sizes, indexes, hash
lengths and the exact proof length are checked before any hashing, and every failure
raises `VerificationError`. Misuse on the proving side raises `LocalError`; a reader that
returns something other than a hash raises `StorageError`. The spec is docs/spec/logtree.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from seoulchain.crypto import sha256
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import LocalError, StorageError, VerificationError

NodeReader = Callable[[int, int], bytes]
# A new perfect node reported by `LogFrontier.append`: (level, index, hash).
NewNode = tuple[int, int, bytes]

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"")

# RFC 9162 §4.9 and §4.12 carry tree_size and leaf_index as uint64.
TREE_SIZE_MAX = 2**64 - 1
# A path climbs at most one level per hash: at most 64 levels below a uint64-sized root.
INCLUSION_PROOF_HASHES_MAX = 64
# The 64 levels plus the seed hash of the old tree's last perfect subtree (RFC 9162 §2.1.4.2).
CONSISTENCY_PROOF_HASHES_MAX = 65


def compute_leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 || data)."""
    return sha256(LEAF_PREFIX, data)


def compute_node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return sha256(NODE_PREFIX, left, right)


def compute_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of RFC 9162 §2.1.1 over `leaf_hashes`, level by level."""
    for leaf_hash in leaf_hashes:
        _require_local_hash(leaf_hash, "leaf hash")
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    # Pairing neighbours and carrying an odd last node up unchanged builds exactly the MTH
    # tree, because MTH splits at the largest power of two: every pair is aligned.
    while len(level) > 1:
        pairs = iter(level)
        parents = [
            hashlib.sha256(NODE_PREFIX + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        if len(level) % 2:
            parents.append(level[-1])
        level = parents
    return level[0]


def compute_range_root(begin: int, end: int, read_node: NodeReader) -> bytes:
    """Return the MTH of leaves [begin, end) from at most log2(n) stored perfect nodes."""
    _require_local_size(begin, "range begin")
    _require_local_size(end, "range end")
    if not 0 <= begin <= end:
        raise LocalError(f"leaf range [{begin}, {end}) is not a valid range")
    if begin == end:
        return EMPTY_ROOT
    if begin % _compute_bit_ceil(end - begin):
        raise LocalError(
            f"leaf range [{begin}, {end}) is not aligned: its start must be a multiple of "
            f"{_compute_bit_ceil(end - begin)} to be a subtree of the log"
        )
    nodes = []
    position = begin
    for level in reversed(range((end - begin).bit_length())):
        if (end - begin) >> level & 1:
            nodes.append(_read_checked(read_node, level, position >> level))
            position += 1 << level
    return _fold_right(nodes)


def compute_inclusion_proof(index: int, size: int, read_node: NodeReader) -> list[bytes]:
    """Return PATH(index, D[size]) of RFC 9162 §2.1.3.1, the leaf's sibling hashes bottom up."""
    _require_local_size(size, "tree size")
    _require_local_size(index, "leaf index")
    if not 0 <= index < size:
        raise LocalError(f"leaf index {index} is not in a tree of size {size}")
    siblings = []
    begin, end = 0, size
    while end - begin > 1:
        split = begin + _compute_split(end - begin)
        if index < split:
            siblings.append(compute_range_root(split, end, read_node))
            end = split
        else:
            siblings.append(compute_range_root(begin, split, read_node))
            begin = split
    siblings.reverse()
    return siblings


def compute_consistency_proof(old_size: int, new_size: int, read_node: NodeReader) -> list[bytes]:
    """Return PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1, empty if a size is 0 or equal."""
    _require_local_size(new_size, "new tree size")
    _require_local_size(old_size, "old tree size")
    if not 0 <= old_size <= new_size:
        raise LocalError(f"old size {old_size} is not between 0 and new size {new_size}")
    if old_size in (0, new_size):
        return []
    appended = []
    begin, end = 0, new_size
    is_old_root_known = True
    while old_size != end:
        split = begin + _compute_split(end - begin)
        if old_size <= split:
            appended.append(compute_range_root(split, end, read_node))
            end = split
        else:
            appended.append(compute_range_root(begin, split, read_node))
            begin = split
            is_old_root_known = False
    seed = [] if is_old_root_known else [compute_range_root(begin, end, read_node)]
    return seed + appended[::-1]


def compute_inclusion_proof_length(index: int, size: int) -> int:
    """Return the number of hashes in the inclusion proof of leaf `index` in a tree of `size`."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def compute_consistency_proof_length(old_size: int, new_size: int) -> int:
    """Return the number of hashes in the consistency proof from `old_size` to `new_size`."""
    if old_size in (0, new_size):
        return 0
    shift = _compute_trailing_zeros(old_size)
    seed = 0 if old_size == 1 << shift else 1
    return compute_inclusion_proof_length(old_size - 1, new_size) - shift + seed


def compute_root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that `proof` implies for `leaf_hash` at `index` (RFC 9162 §2.1.3.2)."""
    _require_remote_size(size, "tree size")
    _require_remote_size(index, "leaf index")
    if index >= size:
        raise VerificationError(f"leaf index {index} is not in a tree of size {size}")
    _require_remote_hash(leaf_hash, "leaf hash")
    _require_remote_proof(proof, compute_inclusion_proof_length(index, size), "inclusion")
    fn, sn = index, size - 1
    result = leaf_hash
    for sibling in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = compute_node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = compute_node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the path to the root")
    return result


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise `VerificationError` unless `proof` shows `leaf_hash` at `index` under `root`."""
    _require_remote_hash(root, "root")
    computed = compute_root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise VerificationError(
            f"inclusion proof of leaf {index} in a tree of size {size} leads to root "
            f"{computed.hex()}, not {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise `VerificationError` unless `proof` shows the old tree is a prefix of the new one."""
    _require_remote_size(new_size, "new tree size")
    _require_remote_size(old_size, "old tree size")
    if old_size > new_size:
        raise VerificationError(f"old size {old_size} is larger than new size {new_size}")
    _require_remote_hash(old_root, "old root")
    _require_remote_hash(new_root, "new root")
    _require_remote_proof(
        proof, compute_consistency_proof_length(old_size, new_size), "consistency"
    )
    if old_size == 0:
        if old_root != EMPTY_ROOT:
            raise VerificationError("old root of an empty tree is not the empty-tree hash")
        if new_size == 0 and new_root != EMPTY_ROOT:
            raise VerificationError("new root of an empty tree is not the empty-tree hash")
        return
    if old_size == new_size:
        if old_root != new_root:
            raise VerificationError(f"two different roots for the same tree size {old_size}")
        return
    computed_old, computed_new = _compute_consistency_roots(old_size, new_size, old_root, proof)
    if computed_old != old_root:
        raise VerificationError(
            f"consistency proof {old_size}->{new_size} leads to old root "
            f"{computed_old.hex()}, not {old_root.hex()}"
        )
    if computed_new != new_root:
        raise VerificationError(
            f"consistency proof {old_size}->{new_size} leads to new root "
            f"{computed_new.hex()}, not {new_root.hex()}"
        )


def is_valid_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return True if `proof` shows `leaf_hash` at `index` in the tree of `size` under `root`."""
    try:
        verify_inclusion(leaf_hash, index, size, proof, root)
    except VerificationError:
        return False
    return True


def is_valid_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return True if `proof` shows the tree of `old_size` is a prefix of that of `new_size`."""
    try:
        verify_consistency(old_size, new_size, old_root, new_root, proof)
    except VerificationError:
        return False
    return True


def compute_checkpoint_consistency(
    old_size: int, new_size: int, read_node: NodeReader
) -> tuple[bytes, bytes, list[bytes]]:
    """Return the roots at `old_size` and `new_size` and the consistency proof between them."""
    # Every block header is a checkpoint (log_size, log_root) certified by its commit; this
    # serves a proof between any two, checked here before it leaves (a failure means the
    # stored nodes disagree with each other, so it is a storage error).
    old_root = compute_range_root(0, old_size, read_node)
    new_root = compute_range_root(0, new_size, read_node)
    proof = compute_consistency_proof(old_size, new_size, read_node)
    try:
        verify_consistency(old_size, new_size, old_root, new_root, proof)
    except VerificationError as exc:
        raise StorageError(f"stored log nodes give an inconsistent proof: {exc}") from exc
    return old_root, new_root, proof


def compute_checkpoint_inclusion(
    index: int, size: int, read_node: NodeReader
) -> tuple[bytes, bytes, list[bytes]]:
    """Return leaf `index`'s hash, the root at `size` and the inclusion proof between them."""
    proof = compute_inclusion_proof(index, size, read_node)
    leaf_hash = _read_checked(read_node, 0, index)
    root = compute_range_root(0, size, read_node)
    try:
        verify_inclusion(leaf_hash, index, size, proof, root)
    except VerificationError as exc:
        raise StorageError(f"stored log nodes give an invalid inclusion proof: {exc}") from exc
    return leaf_hash, root, proof


class LogFrontier:
    """The perfect-subtree roots of a log's size decomposition: enough to append and root."""

    __slots__ = ("_roots", "_size")

    def __init__(self, size: int = 0, roots: Sequence[bytes] = ()) -> None:
        _require_local_size(size, "tree size")
        if len(roots) != size.bit_count():
            raise LocalError(
                f"a tree of size {size} has {size.bit_count()} perfect subtrees, "
                f"got {len(roots)} roots"
            )
        for subtree_root in roots:
            _require_local_hash(subtree_root, "subtree root")
        self._size = size
        self._roots = list(roots)

    def __repr__(self) -> str:
        return f"LogFrontier(size={self._size}, root={self.root().hex()})"

    @classmethod
    def from_reader(cls, size: int, read_node: NodeReader) -> LogFrontier:
        """Rebuild the frontier of a log of `size` leaves from its stored perfect nodes."""
        _require_local_size(size, "tree size")
        roots = []
        position = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                roots.append(_read_checked(read_node, level, position >> level))
                position += 1 << level
        return cls(size, roots)

    @property
    def size(self) -> int:
        """Return the number of leaves appended so far."""
        return self._size

    @property
    def roots(self) -> tuple[bytes, ...]:
        """Return the perfect-subtree roots, largest (leftmost) first."""
        return tuple(self._roots)

    def copy(self) -> LogFrontier:
        """Return an independent copy of this frontier."""
        return LogFrontier(self._size, self._roots)

    def append(self, leaf_hash: bytes) -> list[NewNode]:
        """Append a leaf hash; return every perfect node it completes, the leaf itself first."""
        _require_local_hash(leaf_hash, "leaf hash")
        if self._size >= TREE_SIZE_MAX:
            raise LocalError(f"the log is full at {TREE_SIZE_MAX} leaves")
        index = self._size
        created = [(0, index, leaf_hash)]
        node = leaf_hash
        level = 0
        while index >> level & 1:
            node = compute_node_hash(self._roots.pop(), node)
            level += 1
            created.append((level, index >> level, node))
        self._roots.append(node)
        self._size += 1
        return created

    def root(self) -> bytes:
        """Return the current Merkle Tree Hash by folding the subtree roots right to left."""
        return _fold_right(self._roots) if self._roots else EMPTY_ROOT


class MemoryLog:
    """An in-memory log keeping every perfect node in a dict keyed by (level, index)."""

    __slots__ = ("_frontier", "_nodes")

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._frontier = LogFrontier()

    def __repr__(self) -> str:
        return f"MemoryLog(size={self.size}, root={self.root().hex()})"

    @property
    def size(self) -> int:
        """Return the number of leaves in the log."""
        return self._frontier.size

    @property
    def nodes(self) -> dict[tuple[int, int], bytes]:
        """Return a copy of every stored perfect node, keyed by (level, index)."""
        return dict(self._nodes)

    def append(self, data: bytes) -> int:
        """Append a leaf holding `data`; return its index."""
        return self.append_leaf_hash(compute_leaf_hash(data))

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        """Append an already hashed leaf; return its index."""
        index = self.size
        for level, position, node in self._frontier.append(leaf_hash):
            self._nodes[(level, position)] = node
        return index

    def read_node(self, level: int, index: int) -> bytes:
        """Return the stored perfect node (level, index), or raise `LocalError` if absent."""
        node = self._nodes.get((level, index))
        if node is None:
            raise LocalError(f"no perfect node ({level}, {index}) in a log of size {self.size}")
        return node

    def root(self) -> bytes:
        """Return the current Merkle Tree Hash."""
        return self._frontier.root()

    def root_at(self, size: int) -> bytes:
        """Return the Merkle Tree Hash the log had when it held `size` leaves."""
        self._require_size(size)
        return compute_range_root(0, size, self.read_node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf `index` in the tree of `size` (default: now)."""
        size = self.size if size is None else self._require_size(size)
        return compute_inclusion_proof(index, size, self.read_node)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Return the consistency proof from `old_size` to `new_size` (default: now)."""
        new_size = self.size if new_size is None else self._require_size(new_size)
        return compute_consistency_proof(old_size, new_size, self.read_node)

    def _require_size(self, size: int) -> int:
        """Return `size` if the log has reached it, else raise `LocalError`."""
        if not 0 <= size <= self.size:
            raise LocalError(f"tree size {size} is not between 0 and the log size {self.size}")
        return size


def _compute_consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Return the (old, new) roots a consistency proof implies, as RFC 9162 §2.1.4.2 does."""
    path = list(proof)
    if old_size == 1 << _compute_trailing_zeros(old_size):
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_result = new_result = path[0]
    for node in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old_result = compute_node_hash(node, old_result)
            new_result = compute_node_hash(node, new_result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_result = compute_node_hash(new_result, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("consistency proof is shorter than the path to the root")
    return old_result, new_result


def _compute_split(size: int) -> int:
    """Return the largest power of two strictly below `size` (which must be at least 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _compute_bit_ceil(size: int) -> int:
    """Return the smallest power of two at least `size`."""
    return 1 << (size - 1).bit_length()


def _compute_trailing_zeros(value: int) -> int:
    """Return the number of trailing zero bits of a positive integer."""
    return (value & -value).bit_length() - 1


def _fold_right(nodes: Sequence[bytes]) -> bytes:
    """Return node(n0, node(n1, ... node(n[k-2], n[k-1]))) for a non-empty list."""
    result = nodes[-1]
    for node in reversed(nodes[:-1]):
        result = compute_node_hash(node, result)
    return result


def _read_checked(read_node: NodeReader, level: int, index: int) -> bytes:
    """Read a stored node and check that the store returned a hash."""
    node = read_node(level, index)
    if not isinstance(node, bytes) or len(node) != HASH_BYTES:
        raise StorageError(f"stored log node ({level}, {index}) is not a {HASH_BYTES}-byte hash")
    return node


def _is_size(value: object) -> bool:
    """Return True if `value` is an int (not a bool) usable as a uint64 size or index."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= TREE_SIZE_MAX


def _require_local_size(value: object, name: str) -> None:
    """Raise `LocalError` unless `value` is a valid size or index."""
    if not _is_size(value):
        raise LocalError(f"{name} must be an integer from 0 to 2^64-1, got {value!r}")


def _require_local_hash(value: object, name: str) -> None:
    """Raise `LocalError` unless `value` is a 32-byte hash."""
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise LocalError(f"{name} must be {HASH_BYTES} bytes, got {value!r}")


def _require_remote_size(value: object, name: str) -> None:
    """Raise `VerificationError` unless `value` is a valid size or index."""
    if not _is_size(value):
        raise VerificationError(f"{name} must be an integer from 0 to 2^64-1, got {value!r}")


def _require_remote_hash(value: object, name: str) -> None:
    """Raise `VerificationError` unless `value` is a 32-byte hash."""
    if not isinstance(value, bytes):
        raise VerificationError(f"{name} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_BYTES:
        raise VerificationError(f"{name} must be {HASH_BYTES} bytes, got {len(value)}")


def _require_remote_proof(proof: Sequence[bytes], expected: int, kind: str) -> None:
    """Raise `VerificationError` unless `proof` is a list of exactly `expected` hashes."""
    if not isinstance(proof, list | tuple):
        raise VerificationError(f"{kind} proof must be a list of hashes")
    if len(proof) != expected:
        raise VerificationError(
            f"{kind} proof has {len(proof)} hashes, expected {expected} for these sizes"
        )
    for position, node in enumerate(proof):
        _require_remote_hash(node, f"{kind} proof hash {position}")
