"""ElGamal ciphertexts and the Fiat-Shamir proofs of Belenios 2.0 (specification 4.3-4.13).

Every proof is a list of (challenge, response) pairs over commitments A = g^response·X^challenge
(and B likewise for a second base); the prover picks the challenges of the false disjuncts at
random and derives the true one from the hash, the verifier recomputes every commitment and
checks that the challenges add up to the hash. `prove_disjunction`/`verify_disjunction` are
the interval proofs ("prove|S|α,β|A0,B0,…"), the others are the blank-vote proofs
("bproof0", "bproof1"). Nothing here reads JSON except `parse_proof` and `parse_ciphertext`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from gmpy2 import mpz

from seoulchain.voting.errors import InvalidGroupElement
from seoulchain.voting.group import (
    Group,
    compute_hash_zq,
    parse_element,
    parse_exponent,
    parse_residue,
)
from seoulchain.voting.jsonform import require_dict


@dataclass(frozen=True)
class Proof:
    """One Schnorr-style (challenge, response) pair."""

    challenge: mpz
    response: mpz

    def to_json(self) -> dict[str, str]:
        """Return {"challenge", "response"} as base-10 strings."""
        return {"challenge": str(self.challenge), "response": str(self.response)}


@dataclass(frozen=True)
class Ciphertext:
    """An ElGamal ciphertext (α, β) = (g^r, y^r·g^m)."""

    alpha: mpz
    beta: mpz

    def to_json(self) -> dict[str, str]:
        """Return {"alpha", "beta"} as base-10 strings."""
        return {"alpha": str(self.alpha), "beta": str(self.beta)}


def random_exponent(group: Group) -> mpz:
    """Return a uniformly random exponent in [0, q)."""
    return mpz(secrets.randbelow(int(group.q)))


def parse_proof(group: Group, value: Any, what: str) -> Proof:
    """Parse a proof object whose numbers must be reduced modulo q."""
    body = require_dict(value, {"challenge", "response"}, what)
    return Proof(parse_exponent(group, body["challenge"], f"{what} challenge"),
                 parse_exponent(group, body["response"], f"{what} response"))


def parse_ciphertext(group: Group, value: Any, what: str, *, check_members: bool = True,
                     ) -> Ciphertext:
    """Parse a ciphertext object; its numbers are checked to be group elements unless
    `check_members` is false (the caller then runs `check_ciphertext` before use)."""
    body = require_dict(value, {"alpha", "beta"}, what)
    if check_members:
        return Ciphertext(parse_element(group, body["alpha"], f"{what} alpha"),
                          parse_element(group, body["beta"], f"{what} beta"))
    return Ciphertext(parse_residue(group, body["alpha"], f"{what} alpha"),
                      parse_residue(group, body["beta"], f"{what} beta"))


def check_ciphertext(group: Group, ciphertext: Ciphertext, what: str) -> None:
    """Raise `InvalidGroupElement` unless α and β are in the order-q subgroup."""
    if not (group.is_member(ciphertext.alpha) and group.is_member(ciphertext.beta)):
        raise InvalidGroupElement(f"{what} is not a pair of elements of {group.name}")


def encrypt(group: Group, public_key: mpz, randomness: mpz, message: int) -> Ciphertext:
    """Encrypt the small integer `message` in the exponent under `public_key`."""
    return Ciphertext(group.exp_g(randomness),
                      group.mul(group.pow(public_key, randomness), group.exp_g(mpz(message))))


def combine(group: Group, ciphertexts: list[Ciphertext]) -> Ciphertext:
    """Return the componentwise product (the encryption of the sum)."""
    alpha, beta = mpz(1), mpz(1)
    for ciphertext in ciphertexts:
        alpha = alpha * ciphertext.alpha % group.p
        beta = beta * ciphertext.beta % group.p
    return Ciphertext(alpha, beta)


def commit_pair(group: Group, public_key: mpz, proof: Proof, alpha: mpz, shifted_beta: mpz,
                ) -> tuple[mpz, mpz]:
    """Return (g^response·α^challenge, y^response·β'^challenge) for one disjunct."""
    p = group.p
    return (group.exp_g(proof.response) * group.pow(alpha, proof.challenge) % p,
            group.pow(public_key, proof.response) * group.pow(shifted_beta, proof.challenge) % p)


def shift_beta(group: Group, beta: mpz, value: int) -> mpz:
    """Return β/g^value, the β of the statement "this encrypts `value`"."""
    return beta if value == 0 else group.div(beta, group.exp_g(mpz(value)))


def prove_or(group: Group, public_key: mpz, prefix: str,
             statements: list[tuple[mpz, mpz]], true_index: int, secret: mpz) -> list[Proof]:
    """Prove that (α_i, β'_i) = (g^r, y^r) for one i among `statements` (hash after `prefix`)."""
    proofs: list[Proof | None] = []
    commitments: list[mpz] = []
    for index, (alpha, shifted_beta) in enumerate(statements):
        if index == true_index:
            nonce = random_exponent(group)
            commitments += [group.exp_g(nonce), group.pow(public_key, nonce)]
            proofs.append(None)
            continue
        fake = Proof(random_exponent(group), random_exponent(group))
        commitments += commit_pair(group, public_key, fake, alpha, shifted_beta)
        proofs.append(fake)
    total = sum(proof.challenge for proof in proofs if proof is not None)
    challenge = (compute_hash_zq(group, prefix, commitments) - total) % group.q
    proofs[true_index] = Proof(challenge, (nonce - secret * challenge) % group.q)
    return [proof for proof in proofs if proof is not None]


def verify_or(group: Group, public_key: mpz, prefix: str,
              statements: list[tuple[mpz, mpz]], proofs: list[Proof]) -> bool:
    """Check a `prove_or` proof: commitments recomputed, challenges sum to the hash."""
    if len(proofs) != len(statements):
        return False
    commitments: list[mpz] = []
    for proof, (alpha, shifted_beta) in zip(proofs, statements, strict=True):
        commitments += commit_pair(group, public_key, proof, alpha, shifted_beta)
    total = sum(proof.challenge for proof in proofs) % group.q
    return compute_hash_zq(group, prefix, commitments) == total


def interval_statements(group: Group, ciphertext: Ciphertext, low: int, high: int,
                        ) -> list[tuple[mpz, mpz]]:
    """Return the statements "encrypts m" for m = low..high."""
    return [(ciphertext.alpha, shift_beta(group, ciphertext.beta, value))
            for value in range(low, high + 1)]


def interval_prefix(zkp: str, ciphertext: Ciphertext) -> str:
    """Return the hash prefix "prove|S|α,β|" of an interval proof."""
    return f"prove|{zkp}|{ciphertext.alpha},{ciphertext.beta}|"


def prove_interval(group: Group, public_key: mpz, zkp: str, ciphertext: Ciphertext,
                   randomness: mpz, value: int, low: int, high: int) -> list[Proof]:
    """iprove(S, r, value − low, low..high): `ciphertext` encrypts a value in low..high."""
    return prove_or(group, public_key, interval_prefix(zkp, ciphertext),
                    interval_statements(group, ciphertext, low, high), value - low, randomness)


def verify_interval(group: Group, public_key: mpz, zkp: str, ciphertext: Ciphertext,
                    proofs: list[Proof], low: int, high: int) -> bool:
    """Check an interval proof for low..high."""
    return verify_or(group, public_key, interval_prefix(zkp, ciphertext),
                     interval_statements(group, ciphertext, low, high), proofs)


def blank_statements(group: Group, blank: Ciphertext, total: Ciphertext
                     ) -> list[tuple[mpz, mpz]]:
    """Statements of blank_proof: m0 = 0 or mΣ = 0."""
    return [(blank.alpha, blank.beta), (total.alpha, total.beta)]


def overall_blank_statements(group: Group, blank: Ciphertext, total: Ciphertext, low: int,
                             high: int) -> list[tuple[mpz, mpz]]:
    """Statements of a blank-allowed overall_proof: m0 = 1 or mΣ in low..high."""
    return [(blank.alpha, shift_beta(group, blank.beta, 1)),
            *interval_statements(group, total, low, high)]
