"""State-tree test vectors (docs/spec/vectors/state-tree.json), generated from fixed inputs.

`build_vectors()` returns the same value on every run: fixed keys and values, no
randomness. docs/spec/vectors/state-tree.json is `render_vectors()`; a test regenerates it
and fails on any difference. Run: `python -m seoulchain.vectors.state_tree [output path]`
(or scripts/make-vectors).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

from seoulchain.codec import encode
from seoulchain.crypto.hashing import HASH_BYTES
from seoulchain.errors import DecodeError, VerificationError
from seoulchain.proofs.smt import (
    EMPTY_HASH,
    LEAF_PREFIX,
    NODE_BYTES_MAX,
    NODE_PREFIX,
    PROOF_BYTES_MAX,
    PROOF_FORMAT_VERSION,
    MemoryNodeStore,
    SparseMerkleProof,
    SparseMerkleTree,
    Version,
    compute_key_hash,
    compute_leaf_hash,
    compute_value_hash,
    decode_node_key,
    verify_proof,
)
from seoulchain.vectors import render_vectors_file, write_vectors_file

VECTORS_PATH = Path("docs/spec/vectors/state-tree.json")
_VECTOR_DOCS = 10


def _vector_history() -> list[dict[bytes, bytes | None]]:
    """Return the updates of versions 0-4 of the example tree."""
    first = {b"notary/doc/%02d" % index: b"anchored at height 0, #%d" % index
             for index in range(_VECTOR_DOCS)}
    second: dict[bytes, bytes | None] = {b"notary/doc/03": b"superseded at height 1",
                                         b"notary/doc/05": None, b"notary/doc/99": None}
    second.update({b"notary/doc/%02d" % index: b"anchored at height 1, #%d" % index
                   for index in range(_VECTOR_DOCS, _VECTOR_DOCS + 4)})
    state = {**first, **second}
    third: dict[bytes, bytes | None] = {key: None for key in state if key != b"notary/doc/00"}
    fourth: dict[bytes, bytes | None] = {b"notary/doc/00": None}
    fifth = {key: value for key, value in state.items() if value is not None}
    return [dict(first), second, third, fourth, dict(fifth)]


def _describe_key(key: bytes) -> dict[str, Any]:
    """Return a state key as text (when ASCII), hex, and its key hash."""
    return {"key": key.decode("ascii"), "key_hex": key.hex(),
            "key_hash_hex": compute_key_hash(key).hex()}


def _describe_proof(proof: SparseMerkleProof) -> dict[str, Any]:
    """Return a proof's decoded fields and its encoding."""
    leaf = None if proof.leaf is None else {"key_hash_hex": proof.leaf.key_hash.hex(),
                                            "value_hash_hex": proof.leaf.value_hash.hex(),
                                            "leaf_hash_hex": proof.leaf.hash().hex()}
    return {"depth": len(proof.siblings), "leaf": leaf,
            "siblings_hex": [sibling.hex() for sibling in proof.siblings],
            "proof_hex": proof.encode().hex()}


def _build_history_vectors(store: MemoryNodeStore
                           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply the example history; return its versions and every node it stored."""
    tree = SparseMerkleTree(store)
    versions, nodes = [], []
    for version, updates in enumerate(_vector_history()):
        batch = tree.apply_batch(version, updates)
        store.write_batch(batch)
        versions.append({
            "version": version,
            "updates": [{**_describe_key(key),
                         "value_hex": None if value is None else value.hex(),
                         "value_hash_hex": None if value is None
                         else compute_value_hash(value).hex()}
                        for key, value in sorted(updates.items())],
            "root_hex": batch.root.hex(),
            "stale_node_keys_hex": [entry.node_key.hex() for entry in batch.stale_nodes]})
        for node_key, data in batch.new_nodes:
            node_version, path = decode_node_key(node_key)
            nodes.append({"version": node_version, "path": path, "node_key_hex": node_key.hex(),
                          "node_hex": data.hex()})
    return versions, nodes


def _find_absent_key(tree: SparseMerkleTree, version: Version, ends_in_leaf: bool) -> bytes:
    """Return the first `absent/N` key whose proof ends in a leaf (or in an empty subtree)."""
    for index in itertools.count():
        key = b"notary/absent/%d" % index
        value_hash, proof = tree.get_with_proof(version, key)
        if value_hash is None and (proof.leaf is not None) == ends_in_leaf:
            return key
    raise AssertionError("unreachable")


def _build_proof_vectors(tree: SparseMerkleTree) -> list[dict[str, Any]]:
    """Return membership and non-membership proofs over the example history."""
    cases: list[tuple[str, Version, bytes]] = [
        (f"version 1: member {index:02d}", 1, b"notary/doc/%02d" % index)
        for index in (0, 3, 7, 12)]
    cases += [
        ("version 1: absent, path ends in an empty subtree", 1, _find_absent_key(tree, 1, False)),
        ("version 1: absent, path ends in another key's leaf", 1, _find_absent_key(tree, 1, True)),
        ("version 1: deleted key 05 is absent", 1, b"notary/doc/05"),
        ("version 2: the root is a single leaf, member", 2, b"notary/doc/00"),
        ("version 2: the root is a single leaf, absent", 2, b"notary/doc/01"),
        ("version 3: empty tree, absent", 3, b"notary/doc/00"),
    ]
    vectors = []
    for name, version, key in cases:
        value_hash, proof = tree.get_with_proof(version, key)
        root = tree.get_root(version)
        verify_proof(root, compute_key_hash(key), value_hash, proof)
        vectors.append({"name": name, "version": version, "root_hex": root.hex(),
                        **_describe_key(key),
                        "claim": "non-membership" if value_hash is None else "membership",
                        "value_hash_hex": None if value_hash is None else value_hash.hex(),
                        **_describe_proof(proof)})
    return vectors


def _build_deep_vectors() -> dict[str, Any]:
    """Return a tree of two key hashes that differ only in the last bit, and its proofs."""
    first, second = bytes(HASH_BYTES - 1) + b"\x00", bytes(HASH_BYTES - 1) + b"\x01"
    entries = {first: compute_value_hash(b"a"), second: compute_value_hash(b"b")}
    store = MemoryNodeStore()
    tree = SparseMerkleTree(store)
    batch = tree.apply_hashed_batch(0, entries)
    store.write_batch(batch)
    proofs = []
    for name, key_hash in (("member at depth 256", second),
                           ("absent, empty subtree at depth 255", bytes(HASH_BYTES - 1) + b"\x02"),
                           ("absent, empty subtree at depth 1", b"\x80" + bytes(HASH_BYTES - 1))):
        value_hash, proof = tree.get_with_proof_by_hash(0, key_hash)
        verify_proof(batch.root, key_hash, value_hash, proof)
        proofs.append({"name": name, "key_hash_hex": key_hash.hex(),
                       "claim": "non-membership" if value_hash is None else "membership",
                       "value_hash_hex": None if value_hash is None else value_hash.hex(),
                       **_describe_proof(proof)})
    return {"entries": [{"key_hash_hex": key.hex(), "value_hash_hex": value.hex()}
                        for key, value in entries.items()],
            "root_hex": batch.root.hex(), "proofs": proofs}


def _encode_raw_proof(fields: list[Any]) -> bytes:
    """Return the CBOR of proof fields that need not form a valid proof."""
    return encode(fields)


def _build_invalid_vectors(tree: SparseMerkleTree) -> list[dict[str, Any]]:
    """Return proofs and claims that a verifier must reject, each with its reason."""
    root = tree.get_root(1)
    member, absent = b"notary/doc/07", _find_absent_key(tree, 1, False)
    leaf_absent = _find_absent_key(tree, 1, True)
    value_hash, proof = tree.get_with_proof(1, member)
    assert value_hash is not None
    _, absent_proof = tree.get_with_proof(1, absent)
    fields = proof.to_cbor()
    siblings = list(proof.siblings)
    flipped = bytes([siblings[-1][0] ^ 1]) + siblings[-1][1:]
    cases: list[tuple[str, bytes, str, bytes | None, bytes, type[Exception], str, str]] = [
        ("wrong value hash", member, "membership", compute_value_hash(b"forged"),
         proof.encode(), VerificationError, "holds value hash",
         "the leaf's value hash differs from the claimed one"),
        ("one sibling byte flipped", member, "membership", value_hash,
         SparseMerkleProof(proof.leaf, (*siblings[:-1], flipped)).encode(), VerificationError,
         "leads to root", "the recomputed root differs"),
        ("another key's membership proof", b"notary/doc/00", "membership",
         tree.get_value_hash(1, b"notary/doc/00"), proof.encode(), VerificationError,
         "not", "the proof's leaf is a different key"),
        ("membership claimed with a proof ending in an empty subtree", absent, "membership",
         value_hash, absent_proof.encode(), VerificationError, "empty subtree",
         "an empty subtree holds no key"),
        ("non-membership claimed for a present key", member, "non-membership", None,
         proof.encode(), VerificationError, "the proof's leaf is the key",
         "the leaf shows the key is present"),
        ("non-membership with a leaf off the key's path", leaf_absent, "non-membership", None,
         proof.encode(), VerificationError, "share the key's path",
         "the leaf must share the key's first `depth` bits to stand where the key would"),
        ("top sibling dropped", member, "membership", value_hash,
         SparseMerkleProof(proof.leaf, tuple(siblings[:-1])).encode(), VerificationError,
         "leads to root", "a shorter path leads to another root"),
        ("empty sibling added on top", member, "membership", value_hash,
         SparseMerkleProof(proof.leaf, (*siblings, EMPTY_HASH)).encode(), VerificationError,
         "leads to root", "a longer path leads to another root"),
        ("non-canonical: empty deepest sibling", member, "membership", value_hash,
         SparseMerkleProof(proof.leaf, (EMPTY_HASH, *siblings)).encode(), VerificationError,
         "not canonical", "a leaf beside an empty subtree collapses one level up"),
        ("format version 2", member, "membership", value_hash,
         _encode_raw_proof([2, *fields[1:]]), DecodeError, "format version",
         "readers reject unknown proof versions"),
        ("unknown sixth field", member, "membership", value_hash,
         _encode_raw_proof([*fields, 0]), DecodeError, "5 fields",
         "a proof has exactly 5 fields"),
        ("bitmap one byte too long", member, "membership", value_hash,
         _encode_raw_proof([*fields[:3], fields[3] + b"\x00", fields[4]]), DecodeError,
         "ceil(depth / 8)", "the bitmap is exactly ceil(depth / 8) bytes"),
        ("bitmap padding bit set", member, "membership", value_hash,
         _encode_raw_proof([*fields[:3], fields[3][:-1] + bytes([fields[3][-1] | 1]),
                            fields[4]]), DecodeError, "padding",
         "bits past `depth` are zero"),
        ("one listed sibling missing", member, "membership", value_hash,
         _encode_raw_proof([*fields[:4], fields[4][:-1]]), DecodeError, "disagrees",
         "the list holds one hash per set bitmap bit"),
        ("listed sibling is the empty placeholder", member, "membership", value_hash,
         _encode_raw_proof([*fields[:4], [*fields[4][:-1], EMPTY_HASH]]), DecodeError,
         "left out", "empty siblings are only ever encoded as a clear bitmap bit"),
        ("sibling of 31 bytes", member, "membership", value_hash,
         _encode_raw_proof([*fields[:4], [*fields[4][:-1], fields[4][-1][:31]]]), DecodeError,
         "32 bytes", "every hash is 32 bytes"),
        ("leaf with 3 fields", member, "membership", value_hash,
         _encode_raw_proof([fields[0], [*fields[1], b""], *fields[2:]]), DecodeError,
         "[key hash, value hash]", "the leaf is exactly [key hash, value hash]"),
        ("depth 257", member, "membership", value_hash,
         _encode_raw_proof([*fields[:2], 257, bytes(33), []]), DecodeError, "depth",
         "no path is longer than 256 bits"),
        ("depth with a non-minimal CBOR head", member, "membership", value_hash,
         proof.encode().replace(bytes([0x00 + len(siblings)]) + bytes([0x40 + len(fields[3])]),
                                bytes([0x18, len(siblings), 0x40 + len(fields[3])]), 1),
         DecodeError, "canonical", "only the deterministic CBOR encoding is accepted"),
        ("trailing byte", member, "membership", value_hash, proof.encode() + b"\x00",
         DecodeError, "", "nothing may follow the proof"),
        ("empty input", member, "membership", value_hash, b"", DecodeError, "empty",
         "a proof is never empty"),
    ]
    vectors = []
    for name, key, claim, claimed_value_hash, data, error, fragment, reason in cases:
        _check_invalid_case(root, key, claimed_value_hash, data, error, fragment)
        vectors.append({"name": name, "version": 1, "root_hex": root.hex(), **_describe_key(key),
                        "claim": claim, "value_hash_hex":
                        None if claimed_value_hash is None else claimed_value_hash.hex(),
                        "proof_hex": data.hex(), "error": error.__name__, "reason": reason})
    vectors.append({"name": "root of 31 bytes", "version": 1, "root_hex": root[:31].hex(),
                    **_describe_key(member), "claim": "membership",
                    "value_hash_hex": value_hash.hex(), "proof_hex": proof.encode().hex(),
                    "error": "VerificationError", "reason": "a root is 32 bytes"})
    _check_invalid_case(root[:31], member, value_hash, proof.encode(), VerificationError, "root")
    return vectors


def _check_invalid_case(root: bytes, key: bytes, value_hash: bytes | None, data: bytes,
                        error: type[Exception], fragment: str) -> None:
    """Assert that decoding then verifying fails with `error` mentioning `fragment`."""
    try:
        proof = SparseMerkleProof.decode(data)
        verify_proof(root, compute_key_hash(key), value_hash, proof)
    except (DecodeError, VerificationError) as exc:
        assert type(exc) is error and fragment in str(exc), (error, fragment, exc)
        return
    raise AssertionError(f"invalid vector was accepted: {fragment}")


def build_vectors() -> dict[str, Any]:
    """Return every state-tree vector as one JSON-ready value."""
    store = MemoryNodeStore()
    versions, nodes = _build_history_vectors(store)
    tree = SparseMerkleTree(store)
    sample = b"notary/doc/00"
    return {
        "description": "seoulchain state tree test vectors; see docs/spec/state-tree.md. "
                       "Generated by `python -m seoulchain.vectors.state_tree`; do not edit.",
        "format_version": PROOF_FORMAT_VERSION,
        "notes": [
            "Byte strings are lower-case hex. Keys are ASCII state keys; key_hash is SHA-256(key).",
            "siblings_hex lists every sibling from the deepest level up, empty ones as 32 zero "
            "bytes; proof_hex is the wire form, which leaves empty siblings out.",
            "versions[4] re-inserts the state of version 1 into the empty tree of version 3: "
            "its root equals version 1's root.",
            "deep uses key hashes directly (no state key hashes to them).",
            "invalid: decode proof_hex, then verify the claim for key against root_hex; the "
            "named error must result (DecodeError at decoding, VerificationError at verifying).",
        ],
        "constants": {"empty_hash_hex": EMPTY_HASH.hex(), "leaf_prefix_hex": LEAF_PREFIX.hex(),
                      "node_prefix_hex": NODE_PREFIX.hex(), "proof_bytes_max": PROOF_BYTES_MAX,
                      "node_bytes_max": NODE_BYTES_MAX},
        "hashing": {**_describe_key(sample), "value_hex": _vector_history()[0][sample].hex(),
                    "value_hash_hex": compute_value_hash(_vector_history()[0][sample]).hex(),
                    "leaf_hash_hex": compute_leaf_hash(
                        compute_key_hash(sample),
                        compute_value_hash(_vector_history()[0][sample])).hex()},
        "versions": versions,
        "nodes": nodes,
        "proofs": _build_proof_vectors(tree),
        "deep": _build_deep_vectors(),
        "invalid": _build_invalid_vectors(tree),
    }


def render_vectors() -> str:
    """Return the vectors file's exact text."""
    return render_vectors_file(build_vectors())


def main(argv: list[str]) -> int:
    """Write the vectors file (default docs/spec/vectors/state-tree.json)."""
    return write_vectors_file(render_vectors(), argv, VECTORS_PATH)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
