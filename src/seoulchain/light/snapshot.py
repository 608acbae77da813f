"""State snapshots: the whole service state at one committed height, in verifiable chunks.

Theory of operation (docs/spec/proofs.md, "State sync snapshots"). A snapshot of height h
is a *manifest* and a list of *chunks*. The state tree (`proofs/smt.py`) splits by the
first `chunk_nibbles` nibbles of the key hash into 16^chunk_nibbles subtrees; chunk i holds
the (state key, value) entries of subtree i, sorted by key hash. The manifest carries
header h and its commit, the log frontier's perfect-subtree roots for header h's log size,
and for each chunk its kind (empty, one leaf, or more) and its subtree hash (the §2 hash of
the state tree spec at depth 4 * chunk_nibbles, with the usual collapsing: an empty chunk
is the empty hash, a one-entry chunk is that entry's leaf hash). Every manifest field is
bound by the header: the kinds decide how chunk hashes fold, so a wrong kind breaks the
fold; entry counts are deliberately absent, as no hash would bind them.

Verification is layered so that nothing unverified is ever written:

1. the header is proven by its commit against the validator set of h, which the caller
   learned from a trusted genesis through the light client (`verify_manifest` takes it);
2. the chunk hashes fold, by the same collapsing rules, to the header's `state_root`, and
   the log roots fold to its `log_root`;
3. each chunk, as it arrives, must decode strictly, sit in its subtree, and hash to the
   manifest's chunk hash (`SnapshotRestorer.add_chunk`); a bad chunk raises `BadChunk`
   naming its index, and the caller refetches it elsewhere.

`SnapshotRestorer` is sans-I/O: it turns verified chunks into rows (state entries and
state tree nodes, all at version h) and, at the end, the top tree nodes; the caller writes
them to a store in one transaction. The restored tree is built directly in the Jellyfish
layout at version h: each leaf at the shallowest nibble path where it is alone, no internal
node with a lone leaf child. Its root equals the header's because the root is a function
of the entries alone; its nodes may be laid out under other versions than the source's.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from seoulchain.codec import decode, encode
from seoulchain.consensus.messages import verify_commit
from seoulchain.errors import DecodeError, LocalError, RemoteError, VerificationError
from seoulchain.ledger.types import BlockHeader, Commit, ValidatorSet
from seoulchain.proofs.logtree import LogFrontier
from seoulchain.proofs.smt import (
    EMPTY_HASH,
    NODE_EMPTY,
    NODE_INTERNAL,
    NODE_LEAF,
    Child,
    EmptyNode,
    InternalNode,
    LeafNode,
    compute_key_hash,
    compute_value_hash,
    encode_node,
    encode_node_key,
)

SNAPSHOT_FORMAT_VERSION = 1
# 16^4 = 65,536 chunks: even a state of 100 million entries keeps chunks near 1,500 entries.
CHUNK_NIBBLES_MAX = 4
# A chunk is one HTTP response and one verification step: about a megabyte keeps a refetch
# cheap and progress smooth; the entry target bounds the hashing done per chunk likewise.
CHUNK_ENTRIES_TARGET = 4096
CHUNK_BYTES_TARGET = 1024 * 1024
# The decoder's ceiling for one chunk; the builder adds nibbles until every chunk fits.
CHUNK_BYTES_MAX = 16 * 1024 * 1024
# 65,536 chunk records of about 40 bytes, a commit of 150 signatures and the header.
MANIFEST_BYTES_MAX = 4 * 1024 * 1024
# A log of up to 2^64 leaves has at most 64 perfect subtrees.
LOG_ROOTS_MAX = 64
_HEX_DIGITS = "0123456789abcdef"


class BadManifest(VerificationError):
    """A manifest that does not decode or does not verify; `step` names the failed check."""

    def __init__(self, step: str, message: str):
        super().__init__(f"snapshot manifest: {step}: {message}")
        self.step = step


class BadChunk(VerificationError):
    """A chunk that does not decode or does not hash to its manifest entry."""

    def __init__(self, index: int, message: str):
        super().__init__(f"snapshot chunk {index}: {message}")
        self.index = index


class ChunkInfo(NamedTuple):
    """A chunk as the manifest describes it: its kind (smt NODE_*) and its subtree hash."""

    kind: int
    root: bytes


@dataclass(frozen=True)
class Manifest:
    """What a snapshot of height `height` contains and the hashes that bind it."""

    height: int
    header: BlockHeader
    commit: Commit
    state_root: bytes
    log_roots: tuple[bytes, ...]
    chunk_nibbles: int
    chunks: tuple[ChunkInfo, ...]

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    def to_cbor(self) -> list[Any]:
        return [SNAPSHOT_FORMAT_VERSION, self.height, self.header.to_cbor(),
                self.commit.to_cbor(), self.state_root, list(self.log_roots),
                self.chunk_nibbles, [[chunk.kind, chunk.root] for chunk in self.chunks]]

    def encode(self) -> bytes:
        return encode(self.to_cbor())

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse manifest bytes strictly (shape only; `verify_manifest` checks the hashes)."""
        try:
            return cls.from_cbor(decode(data, MANIFEST_BYTES_MAX))
        except BadManifest:
            raise
        except RemoteError as exc:
            raise BadManifest("decode", str(exc)) from exc

    @classmethod
    def from_cbor(cls, value: Any) -> Manifest:
        fields = _require_array(value, 8, "manifest")
        if fields[0] != SNAPSHOT_FORMAT_VERSION or type(fields[0]) is not int:
            raise DecodeError(f"unsupported snapshot format {fields[0]!r}")
        height = _require_uint(fields[1], "height")
        header = BlockHeader.from_cbor(fields[2])
        commit = Commit.from_cbor(fields[3])
        state_root = _require_hash(fields[4], "state_root")
        log_roots = tuple(_require_hash(item, "log root")
                          for item in _require_array(fields[5], None, "log roots"))
        if len(log_roots) > LOG_ROOTS_MAX:
            raise DecodeError(f"more than {LOG_ROOTS_MAX} log roots")
        nibbles = _require_uint(fields[6], "chunk_nibbles")
        if nibbles > CHUNK_NIBBLES_MAX:
            raise DecodeError(f"chunk_nibbles {nibbles} is above {CHUNK_NIBBLES_MAX}")
        records = _require_array(fields[7], 16 ** nibbles, "chunks")
        chunks = []
        for record in records:
            kind, root = _require_array(record, 2, "chunk record")
            if type(kind) is not int or kind not in (NODE_EMPTY, NODE_LEAF, NODE_INTERNAL):
                raise DecodeError(f"chunk kind {kind!r} is not 0, 1 or 2")
            chunks.append(ChunkInfo(kind, _require_hash(root, "chunk root")))
        return cls(height, header, commit, state_root, log_roots, nibbles, tuple(chunks))


@dataclass(frozen=True)
class Chunk:
    """The entries of one chunk: (state key, value) sorted by key hash."""

    height: int
    index: int
    entries: tuple[tuple[bytes, bytes], ...]

    def encode(self) -> bytes:
        return encode([SNAPSHOT_FORMAT_VERSION, self.height, self.index,
                       [[key, value] for key, value in self.entries]])

    @classmethod
    def decode(cls, data: bytes, index: int) -> Chunk:
        """Parse chunk bytes strictly, or raise `BadChunk` naming `index`."""
        try:
            fields = _require_array(decode(data, CHUNK_BYTES_MAX), 4, "chunk")
            if fields[0] != SNAPSHOT_FORMAT_VERSION or type(fields[0]) is not int:
                raise DecodeError(f"unsupported snapshot format {fields[0]!r}")
            entries = []
            for item in _require_array(fields[3], None, "chunk entries"):
                key, value = _require_array(item, 2, "chunk entry")
                if not isinstance(key, bytes) or not isinstance(value, bytes):
                    raise DecodeError("a chunk entry is not two byte strings")
                entries.append((key, value))
            return cls(_require_uint(fields[1], "height"), _require_uint(fields[2], "index"),
                       tuple(entries))
        except DecodeError as exc:
            raise BadChunk(index, f"does not decode: {exc}") from exc


@dataclass(frozen=True)
class Snapshot:
    """A built snapshot: the manifest and every chunk's bytes."""

    manifest: Manifest
    chunks: tuple[bytes, ...]


class Subtree(NamedTuple):
    """A subtree of the state tree as its parent sees it (kind is a smt NODE_* constant)."""

    kind: int
    hash: bytes
    leaf: LeafNode | None
    entries: int


EMPTY_SUBTREE = Subtree(NODE_EMPTY, EMPTY_HASH, None, 0)
# A hashed entry, sorted by `hex`: (key hash as hex, key hash, value hash).
_Hashed = tuple[str, bytes, bytes]
NodeRow = tuple[bytes, bytes]


# --------------------------------------------------------------------------- tree building


def compute_chunk_index(key_hash_hex: str, chunk_nibbles: int) -> int:
    """Return the chunk a key hash (as hex) falls in."""
    return int(key_hash_hex[:chunk_nibbles], 16) if chunk_nibbles else 0


def compute_chunk_path(index: int, chunk_nibbles: int) -> str:
    """Return the nibble path of chunk `index`'s subtree."""
    return format(index, f"0{chunk_nibbles}x") if chunk_nibbles else ""


def build_subtree(path: str, entries: Sequence[_Hashed], version: int,
                  nodes: list[NodeRow] | None) -> Subtree:
    """Return the subtree at `path` over sorted `entries`; append its nodes to `nodes`."""
    if not entries:
        return EMPTY_SUBTREE
    if len(entries) == 1:
        leaf = LeafNode(entries[0][1], entries[0][2])
        return Subtree(NODE_LEAF, leaf.hash(), leaf, 1)
    depth = len(path)
    children: list[Subtree] = []
    start = 0
    for digit in _HEX_DIGITS:
        end = start
        while end < len(entries) and entries[end][0][depth] == digit:
            end += 1
        children.append(build_subtree(path + digit, entries[start:end], version, nodes))
        start = end
    assert start == len(entries), "entries are not sorted by key hash"
    return join_subtrees(path, children, version, nodes)


def join_subtrees(path: str, children: Sequence[Subtree], version: int,
                  nodes: list[NodeRow] | None) -> Subtree:
    """Return the subtree at `path` whose 16 children are `children` (Jellyfish rules)."""
    present = [child for child in children if child.kind != NODE_EMPTY]
    if not present:
        return EMPTY_SUBTREE
    if len(present) == 1 and present[0].kind == NODE_LEAF:
        return present[0]  # a lone leaf moves up into the parent's slot
    slots: list[Child | None] = []
    for digit, child in zip(_HEX_DIGITS, children, strict=True):
        if child.kind == NODE_EMPTY:
            slots.append(None)
            continue
        if child.kind == NODE_LEAF and nodes is not None:
            assert child.leaf is not None
            nodes.append((encode_node_key(version, path + digit), encode_node(child.leaf)))
        slots.append(Child(version, child.hash, child.kind == NODE_LEAF))
    node = InternalNode(tuple(slots))
    if nodes is not None:
        nodes.append((encode_node_key(version, path), encode_node(node)))
    return Subtree(NODE_INTERNAL, node.hash(), None, sum(child.entries for child in present))


def build_top(path: str, chunk_nibbles: int, chunks: Sequence[Subtree], version: int,
              nodes: list[NodeRow] | None) -> Subtree:
    """Return the subtree at `path` above the chunk subtrees (the root for path "")."""
    if len(path) == chunk_nibbles:
        return chunks[compute_chunk_index(path, chunk_nibbles)]
    children = [build_top(path + digit, chunk_nibbles, chunks, version, nodes)
                for digit in _HEX_DIGITS]
    return join_subtrees(path, children, version, nodes)


def compute_root_node(top: Subtree, version: int) -> NodeRow | None:
    """Return the root row an empty or single-leaf tree still needs (internal roots exist)."""
    if top.kind == NODE_EMPTY:
        return encode_node_key(version, ""), encode_node(EmptyNode())
    if top.kind == NODE_LEAF:
        assert top.leaf is not None
        return encode_node_key(version, ""), encode_node(top.leaf)
    return None


def compute_subtree_of_info(info: ChunkInfo) -> Subtree:
    """Return the subtree a manifest's chunk record stands for, as its parent combines it."""
    return Subtree(info.kind, info.root, None, 0)


def hash_entries(entries: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, bytes, bytes,
                                                                          bytes, bytes]]:
    """Return (key hash hex, key hash, value hash, key, value) per entry, sorted by key hash."""
    hashed = []
    for key, value in entries:
        key_hash = compute_key_hash(key)
        hashed.append((key_hash.hex(), key_hash, compute_value_hash(value), key, value))
    hashed.sort()
    return hashed


# --------------------------------------------------------------------------- building


def choose_chunk_nibbles(entries: int, value_bytes: int) -> int:
    """Return the fewest nibbles that bring the average chunk under both targets."""
    nibbles = 0
    while nibbles < CHUNK_NIBBLES_MAX and (entries > CHUNK_ENTRIES_TARGET * 16 ** nibbles
                                           or value_bytes > CHUNK_BYTES_TARGET * 16 ** nibbles):
        nibbles += 1
    return nibbles


def build_snapshot(header: BlockHeader, commit: Commit, log_roots: Sequence[bytes],
                   entries: Iterable[tuple[bytes, bytes]]) -> Snapshot:
    """Cut the state `entries` at `header`'s height into chunks and describe them."""
    if commit.height != header.height or commit.block_id != header.block_id():
        raise LocalError("build_snapshot: the commit is not the header's")
    hashed = hash_entries(entries)
    total_bytes = sum(len(item[3]) + len(item[4]) for item in hashed)
    nibbles = choose_chunk_nibbles(len(hashed), total_bytes)
    while True:
        groups: list[list[tuple[str, bytes, bytes, bytes, bytes]]] = [[] for _ in
                                                                      range(16 ** nibbles)]
        for item in hashed:
            groups[compute_chunk_index(item[0], nibbles)].append(item)
        chunks = tuple(Chunk(header.height, index, tuple((item[3], item[4]) for item in group))
                       .encode() for index, group in enumerate(groups))
        if all(len(data) <= CHUNK_BYTES_MAX for data in chunks):
            break
        if nibbles == CHUNK_NIBBLES_MAX:
            raise LocalError(f"a snapshot chunk exceeds {CHUNK_BYTES_MAX} bytes")
        nibbles += 1
    infos = []
    for index, group in enumerate(groups):
        subtree = build_subtree(compute_chunk_path(index, nibbles),
                                [item[:3] for item in group], header.height, None)
        infos.append(ChunkInfo(subtree.kind, subtree.hash))
    manifest = Manifest(header.height, header, commit, header.state_root, tuple(log_roots),
                        nibbles, tuple(infos))
    check_manifest_hashes(manifest)  # the snapshot must verify before it is served
    return Snapshot(manifest, chunks)


# --------------------------------------------------------------------------- verifying


def check_manifest_hashes(manifest: Manifest) -> None:
    """Raise `BadManifest` unless the manifest's parts fold to its header's roots."""
    header = manifest.header
    if manifest.height != header.height:
        raise BadManifest("header", f"header is for height {header.height}, the manifest "
                                    f"says {manifest.height}")
    if manifest.commit.height != header.height or (
            manifest.commit.block_id != header.block_id()):
        raise BadManifest("commit", "the commit is not for the manifest's header")
    if manifest.state_root != header.state_root:
        raise BadManifest("state_root", "the manifest's state_root is not the header's")
    try:
        frontier = LogFrontier(header.log_size, manifest.log_roots)
    except LocalError as exc:
        raise BadManifest("log_roots", str(exc)) from exc
    if frontier.root() != header.log_root:
        raise BadManifest("log_roots", "the log roots do not fold to the header's log_root")
    for index, info in enumerate(manifest.chunks):
        if (info.kind == NODE_EMPTY) != (info.root == EMPTY_HASH):
            raise BadManifest("chunks", f"chunk {index} is of kind {info.kind} with root "
                                        f"{info.root.hex()}")
    subtrees = [compute_subtree_of_info(info) for info in manifest.chunks]
    if build_top("", manifest.chunk_nibbles, subtrees, manifest.height, None).hash != (
            header.state_root):
        raise BadManifest("chunks", "the chunk roots do not fold to the header's state_root")


def verify_manifest(manifest: Manifest, chain_id: str, validators: ValidatorSet) -> None:
    """Raise `BadManifest` unless `validators` (the trusted set of h) signed the header and
    every root in the manifest folds to the header's."""
    header = manifest.header
    if header.chain_id != chain_id:
        raise BadManifest("header", f"header is for chain {header.chain_id!r}, not {chain_id!r}")
    if validators.hash() != header.validators_hash:
        raise BadManifest("header", "the trusted validator set of this height is not the "
                                    "header's validators_hash")
    try:
        verify_commit(chain_id, validators, manifest.commit, header.block_id(), header.height)
    except RemoteError as exc:
        raise BadManifest("commit", str(exc)) from exc
    check_manifest_hashes(manifest)


@dataclass
class ChunkRows:
    """What one verified chunk writes: its state entries and its subtree's nodes."""

    index: int
    state: list[tuple[bytes, bytes]]
    nodes: list[NodeRow]


@dataclass
class SnapshotRestorer:
    """Turns a verified manifest's chunks into store rows, verifying each chunk (sans-I/O)."""

    manifest: Manifest
    subtrees: dict[int, Subtree] = field(default_factory=dict)
    entries: int = 0

    def add_chunk(self, index: int, data: bytes) -> ChunkRows:
        """Verify chunk `index`; return its rows, or raise `BadChunk` and keep nothing."""
        manifest = self.manifest
        if not 0 <= index < manifest.chunk_count:
            raise LocalError(f"chunk index {index} is outside 0..{manifest.chunk_count - 1}")
        if index in self.subtrees:
            raise LocalError(f"chunk {index} was already restored")
        chunk = Chunk.decode(data, index)
        if (chunk.height, chunk.index) != (manifest.height, index):
            raise BadChunk(index, f"is chunk {chunk.index} of height {chunk.height}")
        info = manifest.chunks[index]
        hashed = hash_entries(chunk.entries)
        if [item[3] for item in hashed] != [key for key, _ in chunk.entries]:
            raise BadChunk(index, "entries are not in key hash order")
        path = compute_chunk_path(index, manifest.chunk_nibbles)
        for previous, item in itertools.pairwise(hashed):
            if previous[1] == item[1]:
                raise BadChunk(index, "holds a key twice")
        if any(not item[0].startswith(path) for item in hashed):
            raise BadChunk(index, "holds a key outside its subtree")
        nodes: list[NodeRow] = []
        subtree = build_subtree(path, [item[:3] for item in hashed], manifest.height, nodes)
        if (subtree.kind, subtree.hash) != (info.kind, info.root):
            raise BadChunk(index, "does not hash to its root in the manifest")
        self.subtrees[index] = subtree
        self.entries += len(hashed)
        return ChunkRows(index, [(item[3], item[4]) for item in hashed], nodes)

    @property
    def missing(self) -> list[int]:
        return [index for index in range(self.manifest.chunk_count)
                if index not in self.subtrees]

    def finish(self) -> list[NodeRow]:
        """Return the nodes above the chunks (and the root); every chunk must be in."""
        if self.missing:
            raise LocalError(f"{len(self.missing)} chunks are not restored yet")
        manifest = self.manifest
        nodes: list[NodeRow] = []
        chunks = [self.subtrees[index] for index in range(manifest.chunk_count)]
        top = build_top("", manifest.chunk_nibbles, chunks, manifest.height, nodes)
        root_row = compute_root_node(top, manifest.height)
        if root_row is not None:
            nodes.append(root_row)
        assert top.hash == manifest.state_root, "verified chunks must fold to the state root"
        return nodes

    def compute_log_nodes(self) -> list[tuple[int, int, bytes]]:
        """Return the log frontier as stored log nodes (level, index, hash)."""
        rows = []
        size = self.manifest.header.log_size
        position = 0
        roots = iter(self.manifest.log_roots)
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                rows.append((level, position >> level, next(roots)))
                position += 1 << level
        return rows


def compute_manifest_id(data: bytes) -> bytes:
    """Return SHA-256 of the manifest bytes: names one snapshot across peers."""
    return hashlib.sha256(data).digest()


def _require_array(value: Any, length: int | None, name: str) -> list[Any]:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        raise DecodeError(f"{name} must be an array" + ("" if length is None
                                                          else f" of {length} items"))
    return value


def _require_uint(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise DecodeError(f"{name} must be an unsigned integer")
    return value


def _require_hash(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise DecodeError(f"{name} must be 32 bytes")
    return value
