"""C2SP tlog-tiles export: paths, tile plans, byte-exact files, and proofs from tiles alone."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from seoulchain.errors import VerificationError
from seoulchain.proofs.logtree import (
    MemoryLog,
    compute_consistency_proof,
    compute_inclusion_proof,
    compute_leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from seoulchain.proofs.tiles import (
    CERTIFICATE_NAME,
    CHECKPOINT_NAME,
    TILE_WIDTH,
    Checkpoint,
    Tile,
    TileError,
    TileReader,
    TileWriter,
    compute_entries_path,
    compute_tile_path,
    compute_tiles,
    decode_entry_bundle,
    encode_entry_bundle,
    encode_tile_index,
    format_checkpoint,
    make_tile_hash_reader,
    parse_checkpoint,
    read_checkpoint,
)

ORIGIN = "seoulchain/tiles-test"


# --------------------------------------------------------------------------- an independent model


def model_mth(data: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash, written straight from the recursive definition."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    split = 1 << ((len(data) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + model_mth(data[:split]) + model_mth(data[split:])).digest()


def model_files(data: Sequence[bytes]) -> dict[str, bytes]:
    """Every tile and bundle file of the log `data`, from the tlog-tiles text alone."""
    files: dict[str, bytes] = {}
    size = len(data)
    level = 0
    while size // 256**level:
        count = size // 256**level  # hashes available at this tile level
        for index in range((count + 255) // 256):
            width = min(256, count - index * 256)
            groups = _groups(index)
            name = "/".join([f"x{group:03d}" for group in groups[:-1]] + [f"{groups[-1]:03d}"])
            suffix = "" if width == 256 else f".p/{width}"
            hashes = b"".join(
                model_mth(data[(index * 256 + i) * 256**level:(index * 256 + i + 1) * 256**level])
                for i in range(width))
            files[f"tile/{level}/{name}{suffix}"] = hashes
            if level == 0:
                files[f"tile/entries/{name}{suffix}"] = b"".join(
                    len(entry).to_bytes(2, "big") + entry
                    for entry in data[index * 256:index * 256 + width])
        level += 1
    return files


def _groups(index: int) -> list[int]:
    groups = [index % 1000]
    index //= 1000
    while index:
        groups.append(index % 1000)
        index //= 1000
    return groups[::-1]


def read_tree(directory: Path) -> dict[str, bytes]:
    """Every tile and bundle file under `directory`."""
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted((directory / "tile").rglob("*")) if path.is_file()}


def make_entries(count: int, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(count)]


def make_log(entries: Sequence[bytes]) -> MemoryLog:
    log = MemoryLog()
    for entry in entries:
        log.append(entry)
    return log


def export(out: Path, entries: Sequence[bytes], origin: str = ORIGIN):
    log = make_log(entries)
    writer = TileWriter(out, make_tile_hash_reader(log.read_node),
                        lambda first, end: entries[first:end])
    return writer.export(Checkpoint(origin, log.size, log.root()), '{"certificate": 1}\n')


# --------------------------------------------------------------------------- paths


def test_tile_index_encoding_matches_the_spec_example() -> None:
    assert encode_tile_index(1234067) == "x001/x234/067"
    assert encode_tile_index(0) == "000"
    assert encode_tile_index(999) == "999"
    assert encode_tile_index(1000) == "x001/000"
    assert encode_tile_index(1_000_000) == "x001/x000/000"


def test_tile_paths_full_partial_and_entries() -> None:
    assert compute_tile_path(Tile(0, 1234067, 256)) == "tile/0/x001/x234/067"
    assert compute_tile_path(Tile(3, 1234067, 8)) == "tile/3/x001/x234/067.p/8"
    assert compute_entries_path(Tile(0, 1234067, 256)) == "tile/entries/x001/x234/067"
    assert compute_entries_path(Tile(0, 5, 1)) == "tile/entries/005.p/1"
    for bad in (Tile(0, 0, 0), Tile(0, 0, 257), Tile(64, 0, 1), Tile(0, -1, 1)):
        with pytest.raises(TileError):
            compute_tile_path(bad)
    with pytest.raises(TileError, match="level-0"):
        compute_entries_path(Tile(1, 0, 256))


def test_tiles_of_a_tree_of_70000_are_as_the_spec_lists() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level
    # 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and
    # one partial level 2 tile of width 1."
    tiles = compute_tiles(70_000)
    assert [tile for tile in tiles if tile.level == 0] == (
        [Tile(0, index, 256) for index in range(273)] + [Tile(0, 273, 112)])
    assert [tile for tile in tiles if tile.level > 0] == [
        Tile(1, 0, 256), Tile(1, 1, 17), Tile(2, 0, 1)]


def test_tiles_of_small_trees() -> None:
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
    # tile of width 1."
    assert compute_tiles(256) == [Tile(0, 0, 256), Tile(1, 0, 1)]
    assert compute_tiles(0) == []
    assert compute_tiles(1) == [Tile(0, 0, 1)]
    assert compute_tiles(255) == [Tile(0, 0, 255)]


def test_checkpoint_text_round_trips_and_is_strict() -> None:
    root = hashlib.sha256(b"root").digest()
    text = format_checkpoint(ORIGIN, 20852163, root)
    assert text == f"{ORIGIN}\n20852163\n{base64.b64encode(root).decode()}\n"
    assert parse_checkpoint(text) == Checkpoint(ORIGIN, 20852163, root)
    signed = text + "\n— seoulchain/tiles-test AAAA\n"
    assert parse_checkpoint(signed).size == 20852163
    for bad in (f"{ORIGIN}\n012\n{base64.b64encode(root).decode()}\n",
                f"{ORIGIN}\n12\n{base64.b64encode(root[:31]).decode()}\n",
                f"{ORIGIN}\n12\n", f"with space\n12\n{base64.b64encode(root).decode()}\n"):
        with pytest.raises(VerificationError):
            parse_checkpoint(bad)
    with pytest.raises(TileError):
        format_checkpoint("a b", 1, root)


def test_entry_bundles_are_uint16_length_prefixed() -> None:
    bundle = encode_entry_bundle([b"", b"ab", b"\xff" * 300])
    assert bundle == b"\x00\x00" + b"\x00\x02ab" + b"\x01\x2c" + b"\xff" * 300
    assert decode_entry_bundle(bundle, 3) == [b"", b"ab", b"\xff" * 300]
    for bad in (bundle[:-1], bundle + b"\x00"):
        with pytest.raises(VerificationError):
            decode_entry_bundle(bad, 3)
    with pytest.raises(TileError, match="uint16"):
        encode_entry_bundle([b"x" * 65_536])


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("size", [1, 255, 256, 257, 1000,
                                  pytest.param(65_536 + 300, marks=pytest.mark.slow)])
def test_export_is_byte_exact_against_an_independent_model(tmp_path: Path, size: int) -> None:
    entries = make_entries(size)
    report = export(tmp_path / "out", entries)
    assert read_tree(tmp_path / "out") == model_files(entries)
    checkpoint = read_checkpoint(tmp_path / "out")
    assert checkpoint == Checkpoint(ORIGIN, size, model_mth(entries))
    assert report.tiles_written == len(compute_tiles(size))
    assert (tmp_path / "out" / CERTIFICATE_NAME).read_text() == '{"certificate": 1}\n'


def test_an_auditor_recomputes_root_and_proofs_from_tiles_alone(tmp_path: Path) -> None:
    out = tmp_path / "out"
    entries = make_entries(5_000, seed=9)
    old_size = 3_333
    export(out, entries[:old_size])
    old = read_checkpoint(out)
    export(out, entries)
    new = read_checkpoint(out)
    log = make_log(entries)
    # The old checkpoint's partial tiles were replaced by fuller ones; the reader copes.
    assert not (out / compute_tile_path(Tile(0, old_size // 256, old_size % 256))).exists()
    for checkpoint in (old, new):
        reader = TileReader(out, checkpoint.size)
        assert log.root_at(checkpoint.size) == checkpoint.root
        for index in (0, 1, 255, 256, checkpoint.size // 2, checkpoint.size - 1):
            proof = compute_inclusion_proof(index, checkpoint.size, reader.read_node)
            assert proof == log.inclusion_proof(index, checkpoint.size)
            verify_inclusion(compute_leaf_hash(entries[index]), index, checkpoint.size, proof,
                             checkpoint.root)
    new_reader = TileReader(out, new.size)
    proof = compute_consistency_proof(old.size, new.size, new_reader.read_node)
    assert proof == log.consistency_proof(old.size, new.size)
    verify_consistency(old.size, new.size, old.root, new.root, proof)
    tile = Tile(0, old_size // 256, old_size % 256)
    assert TileReader(out, old.size).read_entries(tile) == entries[tile.first_node:old_size]


def test_reexport_writes_only_new_tiles_and_replaces_partials(tmp_path: Path) -> None:
    out = tmp_path / "out"
    entries = make_entries(1_000)
    export(out, entries[:600])
    full_tile = out / compute_tile_path(Tile(0, 0, 256))
    before = full_tile.stat().st_mtime_ns
    again = export(out, entries[:600])
    assert again.tiles_written == again.bundles_written == 0
    grown = export(out, entries)
    assert full_tile.stat().st_mtime_ns == before
    # 600 -> 1000: tile 2 becomes full, tile 3 is new, level 1's partial grows 2 -> 3.
    assert sorted(grown.written) == sorted([
        "tile/0/002", "tile/entries/002", "tile/0/003.p/232", "tile/entries/003.p/232",
        "tile/1/000.p/3", CERTIFICATE_NAME, CHECKPOINT_NAME])
    assert grown.partials_removed == 3  # tile/0/002.p/88, its bundle, tile/1/000.p/2
    assert read_tree(out) == model_files(entries)


def test_export_refuses_another_log_a_fork_or_a_shrunk_log(tmp_path: Path) -> None:
    out = tmp_path / "out"
    entries = make_entries(700)
    export(out, entries)
    with pytest.raises(TileError, match="holds the log"):
        export(out, entries, origin="seoulchain/other")
    with pytest.raises(TileError, match="larger"):
        export(out, entries[:500])
    forked = [*entries[:699], b"another ending", b"x"]
    with pytest.raises(TileError, match="not a prefix"):
        export(out, forked)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TileError, match="not a directory"):
        export(tmp_path / "file", entries)


def test_export_refuses_entries_that_do_not_match_their_leaf_hashes(tmp_path: Path) -> None:
    entries = make_entries(300)
    log = make_log(entries)
    tampered = [*entries]
    tampered[7] = b"not what was logged"
    writer = TileWriter(tmp_path / "out", make_tile_hash_reader(log.read_node),
                        lambda first, end: tampered[first:end])
    with pytest.raises(TileError, match="log entry 7"):
        writer.export(Checkpoint(ORIGIN, log.size, log.root()))
    assert not (tmp_path / "out" / CHECKPOINT_NAME).exists()


def test_export_names_an_entry_too_long_for_a_bundle(tmp_path: Path) -> None:
    entries = [b"a", b"x" * 65_536, b"c"]
    with pytest.raises(TileError, match="log entry 1 is 65536 bytes"):
        export(tmp_path / "out", entries)


def test_reader_rejects_damaged_tiles(tmp_path: Path) -> None:
    out = tmp_path / "out"
    entries = make_entries(300)
    export(out, entries)
    path = out / compute_tile_path(Tile(0, 0, 256))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(VerificationError, match="8192 bytes"):
        TileReader(out, 300).read_node(7, 0)
    with pytest.raises(VerificationError, match="missing"):
        TileReader(out, 300 + TILE_WIDTH).read_node(0, 520)
