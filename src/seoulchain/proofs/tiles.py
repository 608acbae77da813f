"""The transparency log as C2SP tlog-tiles static files, and an auditor's reader of them.

Theory of operation: C2SP tlog-tiles (https://c2sp.org/tlog-tiles) serves an RFC 9162 log
as immutable files a plain web server can host. Tile `(L, N)` holds up to 256 hashes: hash
`i` is the Merkle Tree Hash of the `256^L` leaves starting at `(N * 256 + i) * 256^L`,
which is exactly our stored perfect node `(8 * L, N * 256 + i)` (docs/spec/logtree.md §3),
so a tile is a re-layout of stored nodes, never a recomputation. For a tree of size `s`,
level `L` has `s // 256^(L+1)` full tiles and, when `w = (s // 256^L) % 256` is not 0, one
partial tile of width `w` at `tile/L/N.p/w`. Entry bundles `tile/entries/N[.p/w]` hold the
leaves themselves (for seoulchain, the raw bytes of each committed transaction), each
prefixed by its length as a big-endian uint16. The `checkpoint` file is the checkpoint
note text (origin, size, base64 root); seoulchain certifies it with the block commit,
written beside it as `checkpoint.certificate.json` by the caller, instead of a note
signature.

The functions here are pure (paths, tile plans, encodings) except `TileWriter`, which writes
a plan into a directory, and `TileReader`, which reads one back. The writer is incremental:
full tiles and partial tiles of a given width never change, so it writes only files that are
missing, then replaces the checkpoint, then deletes partial tiles superseded by fuller ones.
Every file is written to a temporary name and renamed, so a reader never sees half a tile
and a crashed export is finished by running it again. Before writing, every tile hash is
checked against the hash of its entry (level 0) or the fold of the tile below (higher
levels), so a damaged store cannot be exported as a valid-looking log.

The reader gives an auditor the log's perfect nodes from tile files alone (`read_node`), so
`logtree.compute_range_root`, `compute_inclusion_proof` and `compute_consistency_proof`
work unchanged on a downloaded tile directory. Errors: `TileError` (a `LocalError`) for
misuse, unwritable output or a refused export; `VerificationError` for tile files that are
missing, malformed or disagree with each other.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import LocalError, VerificationError
from seoulchain.proofs.logtree import (
    EMPTY_ROOT,
    TREE_SIZE_MAX,
    NodeReader,
    compute_leaf_hash,
    compute_range_root,
    compute_root,
)

# C2SP tlog-tiles: a tile is a subtree of height 8, so 256 hashes (8,192 bytes) when full.
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
TILE_BYTES_MAX = TILE_WIDTH * HASH_BYTES
# tlog-tiles: "<L> MUST be a decimal ASCII integer between 0 and 63".
TILE_LEVEL_MAX = 63
# Entry bundles length-prefix each entry with a big-endian uint16.
ENTRY_BYTES_MAX = 0xFFFF
ENTRY_LENGTH_BYTES = 2
CHECKPOINT_NAME = "checkpoint"
CERTIFICATE_NAME = "checkpoint.certificate.json"
# tlog-checkpoint: the origin is one non-empty line; we also refuse whitespace and "+" (the
# spec's recommendation) so it can be a key name in a signed note later.
ORIGIN_PATTERN = re.compile(r"[\x21-\x2a\x2c-\x7e]{1,256}")
_PARTIAL_PATTERN = re.compile(r"[1-9][0-9]{0,2}")

# (level, first index, count) -> the stored perfect nodes (TILE_HEIGHT * level, first ...).
TileHashReader = Callable[[int, int, int], Sequence[bytes]]
# (first, end) -> the leaf data of entries [first, end), in order.
EntryReader = Callable[[int, int], Sequence[bytes]]
Progress = Callable[[int, int], None]


class TileError(LocalError):
    """A tile export that cannot be done: bad arguments, an unwritable or foreign OUT."""


@dataclass(frozen=True, slots=True, order=True)
class Tile:
    """Tile `index` at tile level `level` holding `width` hashes (256 when full)."""

    level: int
    index: int
    width: int

    @property
    def is_partial(self) -> bool:
        """Return True for a partial tile (fewer than 256 hashes)."""
        return self.width < TILE_WIDTH

    @property
    def first_node(self) -> int:
        """Return the index, at binary level 8 * level, of the tile's first hash."""
        return self.index * TILE_WIDTH


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's size and its RFC 9162 root at that size, for an origin."""

    origin: str
    size: int
    root: bytes

    def to_note_text(self) -> str:
        """Return the checkpoint note text of C2SP tlog-checkpoint (three lines)."""
        return format_checkpoint(self.origin, self.size, self.root)


def encode_tile_index(index: int) -> str:
    """Return `index` as tlog-tiles path elements: 1234067 -> 'x001/x234/067'."""
    _require_index(index, "tile index")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def compute_tile_path(tile: Tile) -> str:
    """Return the tile's path under the log prefix, e.g. 'tile/0/x001/x234/067.p/8'."""
    _require_tile(tile)
    suffix = f".p/{tile.width}" if tile.is_partial else ""
    return f"tile/{tile.level}/{encode_tile_index(tile.index)}{suffix}"


def compute_entries_path(tile: Tile) -> str:
    """Return the path of the entry bundle of a level-0 tile, e.g. 'tile/entries/000.p/3'."""
    _require_tile(tile)
    if tile.level != 0:
        raise TileError(f"only level-0 tiles have entry bundles, not level {tile.level}")
    suffix = f".p/{tile.width}" if tile.is_partial else ""
    return f"tile/entries/{encode_tile_index(tile.index)}{suffix}"


def compute_tiles(size: int) -> list[Tile]:
    """Return every tile of a tree of `size` leaves, level by level, in index order."""
    _require_index(size, "tree size")
    tiles = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        hashes = size >> (TILE_HEIGHT * level)
        tiles.extend(Tile(level, index, TILE_WIDTH) for index in range(hashes // TILE_WIDTH))
        if hashes % TILE_WIDTH:
            tiles.append(Tile(level, hashes // TILE_WIDTH, hashes % TILE_WIDTH))
        level += 1
    return tiles


def compute_tile_for_node(level: int, index: int, size: int) -> tuple[Tile, int, int]:
    """Return the tile holding perfect node (level, index) of a tree of `size`, and the
    range [first, end) of the tile's hashes whose fold is that node."""
    _require_index(size, "tree size")
    if not 0 <= level < 64 or (index + 1) << level > size:
        raise TileError(f"perfect node ({level}, {index}) is not in a tree of size {size}")
    tile_level, rest = divmod(level, TILE_HEIGHT)
    first = index << rest
    end = (index + 1) << rest
    tile_index = first // TILE_WIDTH
    hashes = size >> (TILE_HEIGHT * tile_level)
    width = min(TILE_WIDTH, hashes - tile_index * TILE_WIDTH)
    offset = tile_index * TILE_WIDTH
    return Tile(tile_level, tile_index, width), first - offset, end - offset


def encode_tile(hashes: Sequence[bytes]) -> bytes:
    """Return the tile file: its hashes concatenated."""
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise TileError(f"a tile holds 1 to {TILE_WIDTH} hashes, not {len(hashes)}")
    for node in hashes:
        if not isinstance(node, bytes) or len(node) != HASH_BYTES:
            raise TileError(f"a tile hash must be {HASH_BYTES} bytes")
    return b"".join(hashes)


def decode_tile(data: bytes, width: int) -> list[bytes]:
    """Return the `width` hashes of a tile file, or raise `VerificationError`."""
    if not isinstance(data, bytes) or len(data) != width * HASH_BYTES:
        raise VerificationError(f"a tile of width {width} must be {width * HASH_BYTES} bytes")
    return [data[start:start + HASH_BYTES] for start in range(0, len(data), HASH_BYTES)]


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Return an entry bundle: each entry prefixed by its big-endian uint16 length."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TileError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, not {len(entries)}")
    parts = []
    for entry in entries:
        if not isinstance(entry, bytes) or len(entry) > ENTRY_BYTES_MAX:
            raise TileError(f"an entry bundle entry is bytes of at most {ENTRY_BYTES_MAX} "
                            f"bytes (uint16 length prefix)")
        parts.append(len(entry).to_bytes(ENTRY_LENGTH_BYTES, "big"))
        parts.append(entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes, width: int) -> list[bytes]:
    """Return the `width` entries of a bundle, or raise `VerificationError`."""
    entries = _split_entries(data)
    if len(entries) != width:
        raise VerificationError(f"entry bundle holds {len(entries)} entries, expected {width}")
    return entries


def format_checkpoint(origin: str, size: int, root: bytes) -> str:
    """Return the C2SP checkpoint note text: origin, decimal size, base64 root, each + LF."""
    _require_origin(origin)
    _require_index(size, "tree size")
    if not isinstance(root, bytes) or len(root) != HASH_BYTES:
        raise TileError(f"a checkpoint root must be {HASH_BYTES} bytes")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Return the checkpoint in note text (signature lines, if any, are ignored)."""
    body = text.split("\n\n", 1)[0]
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 3:
        raise VerificationError("a checkpoint has at least three lines: origin, size, root")
    origin, size_text, root_text = lines[:3]
    if not ORIGIN_PATTERN.fullmatch(origin):
        raise VerificationError(f"checkpoint origin {origin!r} is not a valid origin line")
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size_text) or int(size_text) > TREE_SIZE_MAX:
        raise VerificationError(f"checkpoint size {size_text!r} is not a decimal uint64")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:
        raise VerificationError("checkpoint root is not standard base64") from exc
    if len(root) != HASH_BYTES or base64.b64encode(root).decode() != root_text:
        raise VerificationError(f"checkpoint root is not a canonical {HASH_BYTES}-byte hash")
    return Checkpoint(origin, int(size_text), root)


def make_tile_hash_reader(read_node: NodeReader) -> TileHashReader:
    """Return a `TileHashReader` that reads nodes one by one through `read_node`."""
    def read(level: int, first: int, count: int) -> list[bytes]:
        return [read_node(TILE_HEIGHT * level, first + offset) for offset in range(count)]
    return read


# --------------------------------------------------------------------------- writing


@dataclass
class ExportReport:
    """What one export did."""

    checkpoint: Checkpoint
    tiles_written: int = 0
    bundles_written: int = 0
    files_kept: int = 0
    partials_removed: int = 0
    bytes_written: int = 0
    written: list[str] = field(default_factory=list)


class TileWriter:
    """Writes a log's tiles, entry bundles and checkpoint into a directory, incrementally."""

    def __init__(self, out: Path, read_hashes: TileHashReader, read_entries: EntryReader):
        self.out = Path(out)
        self.read_hashes = read_hashes
        self.read_entries = read_entries

    def export(self, checkpoint: Checkpoint, certificate: str | None = None,
               progress: Progress | None = None) -> ExportReport:
        """Write every missing file for `checkpoint`, then the checkpoint, then clean up."""
        self.check_previous(checkpoint)
        report = ExportReport(checkpoint)
        tiles = compute_tiles(checkpoint.size)
        pending = [tile for tile in tiles if not self.has_tile(tile)]
        waiting = set(pending)
        report.files_kept = sum(2 if tile.level == 0 else 1 for tile in tiles
                                if tile not in waiting)
        for done, tile in enumerate(pending, 1):
            self.write_tile(tile, report)
            if progress is not None:
                progress(done, len(pending))
        if checkpoint.size:
            root = compute_range_root(0, checkpoint.size, TileReader(self.out,
                                                                     checkpoint.size).read_node)
        else:
            root = EMPTY_ROOT
        if root != checkpoint.root:
            raise TileError(f"the tiles in {self.out} give root {root.hex()} for size "
                            f"{checkpoint.size}, not the checkpoint's {checkpoint.root.hex()}")
        if certificate is not None:
            self.write_file(CERTIFICATE_NAME, certificate.encode(), report)
        self.write_file(CHECKPOINT_NAME, checkpoint.to_note_text().encode(), report)
        report.partials_removed = self.remove_superseded(tiles)
        return report

    def check_previous(self, checkpoint: Checkpoint) -> None:
        """Refuse to overwrite an export of another log, or of a longer or forked log."""
        path = self.out / CHECKPOINT_NAME
        if self.out.exists() and not self.out.is_dir():
            raise TileError(f"{self.out} exists and is not a directory")
        try:
            text = path.read_text()
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            raise TileError(f"cannot read the existing checkpoint {path}: {exc}") from exc
        try:
            previous = parse_checkpoint(text)
        except VerificationError as exc:
            raise TileError(f"{path} is not a checkpoint ({exc}); choose an empty directory"
                            ) from exc
        if previous.origin != checkpoint.origin:
            raise TileError(f"{self.out} holds the log {previous.origin!r}, not "
                            f"{checkpoint.origin!r}; choose another directory")
        if previous.size > checkpoint.size:
            raise TileError(f"{self.out} holds a checkpoint of size {previous.size}, larger "
                            f"than this log's {checkpoint.size}")
        hash_reader = _HashNodeReader(self.read_hashes)
        if compute_range_root(0, previous.size, hash_reader.read_node) != previous.root:
            raise TileError(f"{self.out} holds a checkpoint of size {previous.size} that is "
                            "not a prefix of this log (a fork, or another chain)")

    def has_tile(self, tile: Tile) -> bool:
        """Return True if the tile (and, at level 0, its bundle) is already written."""
        paths = [compute_tile_path(tile)]
        if tile.level == 0:
            paths.append(compute_entries_path(tile))
        return all((self.out / path).is_file() for path in paths)

    def write_tile(self, tile: Tile, report: ExportReport) -> None:
        """Check and write one tile, and its entry bundle at level 0."""
        hashes = list(self.read_hashes(tile.level, tile.first_node, tile.width))
        if len(hashes) != tile.width:
            raise TileError(f"the log store returned {len(hashes)} hashes for {tile}")
        if tile.level == 0:
            first = tile.first_node
            entries = list(self.read_entries(first, first + tile.width))
            if len(entries) != tile.width:
                raise TileError(f"the log store returned {len(entries)} entries for {tile}")
            for offset, (entry, node) in enumerate(zip(entries, hashes, strict=True)):
                if compute_leaf_hash(entry) != node:
                    raise TileError(f"log entry {first + offset} does not hash to its stored "
                                    "leaf hash: the store is damaged (run seoulchain audit)")
                if len(entry) > ENTRY_BYTES_MAX:
                    raise TileError(f"log entry {first + offset} is {len(entry)} bytes; an "
                                    f"entry bundle holds entries of at most {ENTRY_BYTES_MAX}")
            self.write_file(compute_entries_path(tile), encode_entry_bundle(entries), report)
            report.bundles_written += 1
        else:
            below = self.read_hashes(tile.level - 1, tile.first_node * TILE_WIDTH,
                                     tile.width * TILE_WIDTH)
            for offset, node in enumerate(hashes):
                group = below[offset * TILE_WIDTH:(offset + 1) * TILE_WIDTH]
                if compute_root(group) != node:
                    raise TileError(f"stored log node ({TILE_HEIGHT * tile.level}, "
                                    f"{tile.first_node + offset}) is not the hash of the nodes "
                                    "below it: the store is damaged (run seoulchain audit)")
        self.write_file(compute_tile_path(tile), encode_tile(hashes), report)
        report.tiles_written += 1

    def write_file(self, relative: str, data: bytes, report: ExportReport) -> None:
        """Write `data` to OUT/relative through a temporary file and an atomic rename."""
        path = self.out / relative
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as exc:
            raise TileError(f"cannot write {path}: {exc.strerror or exc}") from exc
        report.bytes_written += len(data)
        report.written.append(relative)

    def remove_superseded(self, tiles: Iterable[Tile]) -> int:
        """Delete partial tiles and bundles narrower than the current ones; return how many."""
        removed = 0
        for tile in tiles:
            targets = [compute_tile_path(Tile(tile.level, tile.index, TILE_WIDTH))]
            if tile.level == 0:
                targets.append(compute_entries_path(Tile(0, tile.index, TILE_WIDTH)))
            for target in targets:
                partial_dir = self.out / (target + ".p")
                if not partial_dir.is_dir():
                    continue
                for child in partial_dir.iterdir():
                    if _PARTIAL_PATTERN.fullmatch(child.name) and int(child.name) < tile.width:
                        try:
                            child.unlink()
                        except OSError as exc:
                            raise TileError(f"cannot remove {child}: {exc.strerror}") from exc
                        removed += 1
                with contextlib.suppress(OSError):
                    partial_dir.rmdir()  # only succeeds once no partial is left
        return removed


class _HashNodeReader:
    """Adapts a `TileHashReader` to a `NodeReader` for nodes at any binary level."""

    def __init__(self, read_hashes: TileHashReader):
        self.read_hashes = read_hashes

    def read_node(self, level: int, index: int) -> bytes:
        tile_level, rest = divmod(level, TILE_HEIGHT)
        hashes = self.read_hashes(tile_level, index << rest, 1 << rest)
        return compute_root(list(hashes))


# --------------------------------------------------------------------------- reading


class TileReader:
    """An auditor's view of an exported log of `size` leaves: its perfect nodes, from tiles."""

    def __init__(self, directory: Path, size: int):
        _require_index(size, "tree size")
        self.directory = Path(directory)
        self.size = size
        self._tiles: dict[Tile, list[bytes]] = {}

    def read_tile(self, tile: Tile) -> list[bytes]:
        """Return a tile's hashes; a missing partial tile is cut from a fuller one."""
        cached = self._tiles.get(tile)
        if cached is not None:
            return cached
        for width, path in self._candidates(tile):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise VerificationError(f"cannot read tile {path}: {exc.strerror}") from exc
            hashes = decode_tile(data, width)[:tile.width]
            self._tiles[tile] = hashes
            return hashes
        raise VerificationError(f"tile {compute_tile_path(tile)} is missing from "
                                f"{self.directory}")

    def _candidates(self, tile: Tile) -> list[tuple[int, Path]]:
        """Return the files that can hold `tile`: itself, then the full tile, then wider
        partial tiles (the log may have replaced the partial tile a checkpoint named)."""
        candidates = [(tile.width, self.directory / compute_tile_path(tile))]
        full = self.directory / compute_tile_path(Tile(tile.level, tile.index, TILE_WIDTH))
        if tile.is_partial:
            candidates.append((TILE_WIDTH, full))
            partial_dir = Path(str(full) + ".p")
            if partial_dir.is_dir():
                wider = sorted(int(child.name) for child in partial_dir.iterdir()
                               if _PARTIAL_PATTERN.fullmatch(child.name))
                candidates.extend((width, partial_dir / str(width)) for width in wider
                                  if tile.width < width < TILE_WIDTH)
        return candidates

    def read_node(self, level: int, index: int) -> bytes:
        """Return perfect node (level, index) of the tree, folding tile hashes as needed."""
        try:
            tile, first, end = compute_tile_for_node(level, index, self.size)
        except TileError as exc:
            raise VerificationError(str(exc)) from exc
        return compute_root(self.read_tile(tile)[first:end])

    def read_entries(self, tile: Tile) -> list[bytes]:
        """Return the entries of a level-0 tile's bundle, checked against the tile's hashes."""
        path = self.directory / compute_entries_path(tile)
        try:
            data = path.read_bytes()
        except OSError as exc:
            if not tile.is_partial:
                raise VerificationError(f"cannot read entry bundle {path}: "
                                        f"{exc.strerror}") from exc
            data = self._read_wider_bundle(tile)
        entries = _split_entries(data)[:tile.width]
        if len(entries) != tile.width:
            raise VerificationError(f"entry bundle {path} holds fewer than {tile.width} entries")
        hashes = self.read_tile(tile)
        for offset, (entry, node) in enumerate(zip(entries, hashes, strict=True)):
            if compute_leaf_hash(entry) != node:
                raise VerificationError(f"entry {tile.first_node + offset} does not hash to "
                                        "its leaf hash in the tile")
        return entries

    def _read_wider_bundle(self, tile: Tile) -> bytes:
        """Return the bytes of a full or wider partial bundle for a missing partial one."""
        full = self.directory / compute_entries_path(Tile(0, tile.index, TILE_WIDTH))
        options = [full]
        partial_dir = Path(str(full) + ".p")
        if partial_dir.is_dir():
            options += sorted((child for child in partial_dir.iterdir()
                               if _PARTIAL_PATTERN.fullmatch(child.name)
                               and int(child.name) > tile.width),
                              key=lambda child: int(child.name))
        for option in options:
            try:
                return option.read_bytes()
            except OSError:
                continue
        raise VerificationError(f"entry bundle {compute_entries_path(tile)} is missing")


def read_checkpoint(directory: Path) -> Checkpoint:
    """Return the checkpoint of an exported log directory."""
    path = Path(directory) / CHECKPOINT_NAME
    try:
        return parse_checkpoint(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise VerificationError(f"cannot read checkpoint {path}: {exc}") from exc


def _split_entries(data: bytes) -> list[bytes]:
    """Return the length-prefixed entries of a bundle, or raise `VerificationError`."""
    if not isinstance(data, bytes):
        raise VerificationError("an entry bundle must be bytes")
    entries = []
    offset = 0
    while offset < len(data):
        if offset + ENTRY_LENGTH_BYTES > len(data):
            raise VerificationError("entry bundle ends inside a length prefix")
        length = int.from_bytes(data[offset:offset + ENTRY_LENGTH_BYTES], "big")
        offset += ENTRY_LENGTH_BYTES
        if offset + length > len(data):
            raise VerificationError("entry bundle ends inside an entry")
        entries.append(data[offset:offset + length])
        offset += length
    return entries


def _require_index(value: object, name: str) -> None:
    """Raise `TileError` unless `value` is an int from 0 to 2^64 - 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= TREE_SIZE_MAX:
        raise TileError(f"{name} must be an integer from 0 to 2^64-1, got {value!r}")


def _require_tile(tile: Tile) -> None:
    """Raise `TileError` unless `tile` has a valid level, index and width."""
    if not isinstance(tile, Tile):
        raise TileError(f"expected a Tile, got {type(tile).__name__}")
    _require_index(tile.index, "tile index")
    if isinstance(tile.level, bool) or not 0 <= tile.level <= TILE_LEVEL_MAX:
        raise TileError(f"tile level must be 0 to {TILE_LEVEL_MAX}, got {tile.level!r}")
    if isinstance(tile.width, bool) or not 1 <= tile.width <= TILE_WIDTH:
        raise TileError(f"tile width must be 1 to {TILE_WIDTH}, got {tile.width!r}")


def _require_origin(origin: object) -> None:
    """Raise `TileError` unless `origin` is a usable checkpoint origin line."""
    if not isinstance(origin, str) or not ORIGIN_PATTERN.fullmatch(origin):
        raise TileError(f"checkpoint origin {origin!r} must be 1 to 256 printable ASCII "
                        "characters without spaces or '+'")
