"""logtree.md §12: node (ℓ, j) read from tiles, computed by the spec's definition alone.

The definition (`P(0, i) = t(i)`, `P(k + 1, i) = SHA-256(0x01 || P(k, 2i) || P(k, 2i + 1))`)
is implemented here with hashlib over the exported tile files, and compared with the
spec's example hashes, with `TileReader.read_node`, and with the RFC 9162 MTH of the
leaves, for every node with r = ℓ mod 8 from 0 to 7 (r >= 2 is where a right fold differs).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from seoulchain.proofs.logtree import compute_leaf_hash, compute_root
from seoulchain.proofs.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    Checkpoint,
    Tile,
    TileReader,
    TileWriter,
    compute_tile_path,
    make_tile_hash_reader,
)

LOGTREE_SPEC = Path(__file__).resolve().parents[2] / "docs/spec/logtree.md"
LEAVES = 1024  # the spec's example: D[i] = i as 4 bytes big-endian
ENTRIES = [index.to_bytes(4, "big") for index in range(LEAVES)]
LEAF_HASHES = [compute_leaf_hash(entry) for entry in ENTRIES]


def read_spec_examples() -> dict[tuple[int, int], str]:
    """Return the example node hashes that §12 states, by (ℓ, j)."""
    text = LOGTREE_SPEC.read_text()
    section = text[text.index("## 12. Tiles"):]
    found = re.findall(r"node `\((\d+), (\d+)\)`.*?`([0-9a-f]{64})`", section, re.S)
    return {(int(level), int(index)): digest for level, index, digest in found}


def read_perfect_node(level: int, index: int) -> bytes:
    return compute_root(LEAF_HASHES[index << level:(index + 1) << level])


@pytest.fixture(scope="module")
def tiles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiles")
    writer = TileWriter(out, make_tile_hash_reader(read_perfect_node),
                        lambda first, end: ENTRIES[first:end])
    writer.export(Checkpoint("spec-example", LEAVES, compute_root(LEAF_HASHES)))
    return out


def read_tile_level_hash(out: Path, tile_level: int, position: int) -> bytes:
    """t(i): hash `i mod 256` of tile (L, ⌊i/256⌋), read straight from its file."""
    tile_index = position // TILE_WIDTH
    width = min(TILE_WIDTH, (LEAVES >> (TILE_HEIGHT * tile_level)) - tile_index * TILE_WIDTH)
    data = (out / compute_tile_path(Tile(tile_level, tile_index, width))).read_bytes()
    offset = (position % TILE_WIDTH) * 32
    return data[offset:offset + 32]


def compute_node_by_spec(out: Path, level: int, index: int) -> bytes:
    """Node (ℓ, j) = P(r, j) over the hashes of tile level L = ⌊ℓ/8⌋, as §12 defines it."""
    tile_level, rest = divmod(level, TILE_HEIGHT)
    row = [read_tile_level_hash(out, tile_level, position)
           for position in range(index << rest, (index + 1) << rest)]
    for _ in range(rest):
        row = [hashlib.sha256(b"\x01" + left + right).digest()
               for left, right in zip(row[::2], row[1::2], strict=True)]
    assert len(row) == 1
    return row[0]


def compute_right_fold(hashes: list[bytes]) -> bytes:
    folded = hashes[-1]
    for node in reversed(hashes[:-1]):
        folded = hashlib.sha256(b"\x01" + node + folded).digest()
    return folded


def test_spec_tiles_examples_are_the_nodes_the_definition_and_the_reader_give(
        tiles_dir: Path) -> None:
    """logtree.md §12: its example nodes (r = 3 and r = 2) equal P(r, j) over the tile
    files, TileReader.read_node and the MTH of the leaves; the right fold does not."""
    examples = read_spec_examples()
    assert set(examples) == {(3, 1), (10, 0)}
    reader = TileReader(tiles_dir, LEAVES)
    for (level, index), digest in examples.items():
        expected = bytes.fromhex(digest)
        assert compute_node_by_spec(tiles_dir, level, index) == expected
        assert reader.read_node(level, index) == expected
        assert read_perfect_node(level, index) == expected
        tile_level, rest = divmod(level, TILE_HEIGHT)
        hashes = [read_tile_level_hash(tiles_dir, tile_level, position)
                  for position in range(index << rest, (index + 1) << rest)]
        assert compute_right_fold(hashes) != expected


@pytest.mark.parametrize("level", [0, 1, 2, 3, 5, 7, 8, 9, 10])
def test_spec_tiles_definition_matches_the_reader_for_every_node(tiles_dir: Path,
                                                                 level: int) -> None:
    reader = TileReader(tiles_dir, LEAVES)
    for index in range(LEAVES >> level):
        node = compute_node_by_spec(tiles_dir, level, index)
        assert node == reader.read_node(level, index) == read_perfect_node(level, index)
