"""Proofs anyone can check offline: the RFC 9162 transparency log and the state tree.

`logtree` holds the transaction log and its inclusion and consistency proofs, `smt` the
sparse Merkle state tree whose root is a header's `state_root`. This module adds the one
thing a client of the chain needs on top: a state proof as the engine hands it out (a key,
its value or none, the tree proof) and `verify_state_proof`, which checks it against the
`state_root` of a header whose commit the client has verified (docs/spec/state-tree.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass

from seoulchain.errors import DecodeError, VerificationError
from seoulchain.proofs.smt import (
    SparseMerkleProof,
    compute_value_hash,
    verify_membership,
    verify_non_membership,
)


@dataclass(frozen=True, slots=True)
class StateProof:
    """A state key's value at a height (None: absent) and the encoded tree proof of it."""

    height: int
    key: bytes
    value: bytes | None
    proof: bytes


def verify_state_proof(state_root: bytes, proof: StateProof) -> None:
    """Raise `VerificationError` unless `proof` holds under `state_root`."""
    # Malformed proof bytes raise `DecodeError`, as every decoder does.
    if not isinstance(proof, StateProof):
        raise VerificationError(f"expected a StateProof, got {type(proof).__name__}")
    tree_proof = SparseMerkleProof.decode(proof.proof)
    if proof.value is None:
        verify_non_membership(state_root, proof.key, tree_proof)
    elif isinstance(proof.value, bytes):
        verify_membership(state_root, proof.key, compute_value_hash(proof.value), tree_proof)
    else:
        raise VerificationError(f"a state value is bytes or None, got "
                                f"{type(proof.value).__name__}")


def is_valid_state_proof(state_root: bytes, proof: StateProof) -> bool:
    """Return True if `proof` verifies under `state_root` (malformed bytes: False)."""
    try:
        verify_state_proof(state_root, proof)
    except (VerificationError, DecodeError):
        return False
    return True
