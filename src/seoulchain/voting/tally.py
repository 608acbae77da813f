"""The homomorphic tally, trustees' partial decryptions with proofs, and the result.

The encrypted tally multiplies, choice by choice, the ciphertexts of the last ballot of each
credential, each raised to its voter's weight (specification 4.16): it encrypts the weighted
count of every answer. Each trustee publishes α^x for every tallied ciphertext with a proof
that log_g X = log_α(α^x), hash SHA-256("decrypt|φ|X|" ‖ A,B) mod q (4.18). With every
trustee's factor (n-of-n), β / Π α^x_i = g^count, and the count is found by a bounded
search (baby-step giant-step up to the total weight). With a threshold ("Pedersen") item,
the factors of t of its trustees combine with Lagrange coefficients into the item's factor
(4.19); partial decryptions are then keyed by owner number (`threshold.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gmpy2 import mpz

from seoulchain.voting.ballot import VerifiedBallot
from seoulchain.voting.election import Election
from seoulchain.voting.errors import (
    BadDecryptionShare,
    MalformedVotingData,
    ResultMismatch,
    VotingUsageError,
)
from seoulchain.voting.group import Group, compute_hash_zq, parse_element
from seoulchain.voting.jsonform import dump_json, load_json, require_dict, require_list
from seoulchain.voting.threshold import (
    TrusteeItem,
    compute_lagrange_coefficients,
    list_decryption_keys,
)
from seoulchain.voting.trustees import TrusteePublicKey
from seoulchain.voting.zkp import Ciphertext, Proof, parse_ciphertext, parse_proof, random_exponent

Matrix = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class EncryptedTally:
    """Per question, per choice, the product of the tallied ciphertexts."""

    ciphertexts: tuple[tuple[Ciphertext, ...], ...]
    num_tallied: int
    total_weight: int

    def to_json(self) -> bytes:
        """Return the encrypted_tally JSON (an array of arrays of ciphertexts)."""
        return dump_json([[ciphertext.to_json() for ciphertext in row]
                          for row in self.ciphertexts]).encode()


@dataclass(frozen=True)
class PartialDecryption:
    """One trustee's decryption factors α^x and their proofs, shaped like the tally."""

    factors: tuple[tuple[mpz, ...], ...]
    proofs: tuple[tuple[Proof, ...], ...]

    def to_json(self) -> bytes:
        """Return the partial_decryption JSON."""
        return dump_json({
            "decryption_factors": [[str(factor) for factor in row] for row in self.factors],
            "decryption_proofs": [[proof.to_json() for proof in row] for row in self.proofs],
        }).encode()


def select_last_ballots(ballots: Sequence[VerifiedBallot]) -> list[VerifiedBallot]:
    """Keep each credential's last ballot, in the order of those last ballots (last(B))."""
    last: dict[mpz, VerifiedBallot] = {}
    for ballot in ballots:
        last.pop(ballot.credential, None)
        last[ballot.credential] = ballot
    return list(last.values())


def compute_encrypted_tally(election: Election, ballots: Sequence[VerifiedBallot],
                            ) -> EncryptedTally:
    """Multiply the weighted ciphertexts of each credential's last verified ballot."""
    group = election.group
    tallied = select_last_ballots(ballots)
    rows = []
    for index, question in enumerate(election.questions):
        row = []
        for choice in range(question.choice_count):
            alpha, beta = mpz(1), mpz(1)
            for ballot in tallied:
                ciphertext = ballot.answers[index].choices[choice]
                weight = mpz(ballot.weight)
                alpha = alpha * group.pow(ciphertext.alpha, weight) % group.p
                beta = beta * group.pow(ciphertext.beta, weight) % group.p
            row.append(Ciphertext(alpha, beta))
        rows.append(tuple(row))
    return EncryptedTally(tuple(rows), len(tallied), sum(ballot.weight for ballot in tallied))


def decryption_prefix(election: Election, public_key: mpz) -> str:
    """Return the decryption proof's hash prefix "decrypt|φ|X|"."""
    return f"decrypt|{election.fingerprint}|{public_key}|"


def compute_partial_decryption(election: Election, tally: EncryptedTally, private_key: mpz,
                               ) -> PartialDecryption:
    """Return α^x for every tallied ciphertext, each with its proof of correctness."""
    group = election.group
    prefix = decryption_prefix(election, group.exp_g(private_key))
    factors, proofs = [], []
    for row in tally.ciphertexts:
        factors.append(tuple(group.pow(ciphertext.alpha, private_key) for ciphertext in row))
        row_proofs = []
        for ciphertext in row:
            nonce = random_exponent(group)
            challenge = compute_hash_zq(group, prefix, [group.exp_g(nonce),
                                                        group.pow(ciphertext.alpha, nonce)])
            row_proofs.append(Proof(challenge, (nonce - private_key * challenge) % group.q))
        proofs.append(tuple(row_proofs))
    return PartialDecryption(tuple(factors), tuple(proofs))


def verify_partial_decryption(election: Election, tally: EncryptedTally,
                              trustee: TrusteePublicKey, partial: PartialDecryption) -> None:
    """Raise `BadDecryptionShare` unless every factor is proven α^x for the trustee's X."""
    group = election.group
    key = trustee.public_key
    prefix = decryption_prefix(election, key)
    if [len(row) for row in partial.factors] != [len(row) for row in tally.ciphertexts] or [
            len(row) for row in partial.proofs] != [len(row) for row in tally.ciphertexts]:
        raise BadDecryptionShare("the partial decryption is not shaped like the tally")
    for row, factors, proofs in zip(tally.ciphertexts, partial.factors, partial.proofs,
                                    strict=True):
        for ciphertext, factor, proof in zip(row, factors, proofs, strict=True):
            commitment_g = group.mul(group.exp_g(proof.response), group.pow(key, proof.challenge))
            commitment_alpha = group.mul(group.pow(ciphertext.alpha, proof.response),
                                         group.pow(factor, proof.challenge))
            if compute_hash_zq(group, prefix, [commitment_g, commitment_alpha]) != proof.challenge:
                raise BadDecryptionShare("a decryption factor's proof does not verify for "
                                         "this trustee and tally")


def compute_plain_powers(election: Election, tally: EncryptedTally,
                         factors: Sequence[Sequence[mpz]]) -> list[list[mpz]]:
    """Return g^count = β / F for every tallied ciphertext and its synthetic factor F."""
    return [[election.group.div(ciphertext.beta, factor)
             for ciphertext, factor in zip(row, factor_row, strict=True)]
            for row, factor_row in zip(tally.ciphertexts, factors, strict=True)]


def compute_pedersen_factors(election: Election, tally: EncryptedTally,
                             shares: Sequence[tuple[int, PartialDecryption]],
                             ) -> list[list[mpz]]:
    """Return Π_δ factor_δ^λ_δ per ciphertext from shares (index in the item, decryption)."""
    group = election.group
    lambdas = compute_lagrange_coefficients(group, [index for index, _ in shares])
    return [[math.prod((group.pow(partial.factors[row][choice], lam)
                        for (_, partial), lam in zip(shares, lambdas, strict=True)),
                       start=mpz(1)) % group.p
             for choice in range(len(tally.ciphertexts[row]))]
            for row in range(len(tally.ciphertexts))]


def compute_decryption_factors(election: Election, tally: EncryptedTally,
                               items: Sequence[TrusteeItem],
                               partials: Mapping[int, PartialDecryption]) -> list[list[mpz]]:
    """Verify each owner's partial decryption and combine them per item (4.19)."""
    keys = list_decryption_keys(items)
    for owner, partial in partials.items():
        if not 1 <= owner <= len(keys):
            raise VotingUsageError(f"decryption owner {owner} is not one of the {len(keys)} "
                                   f"trustees")
        verify_partial_decryption(election, tally, keys[owner - 1], partial)
    group = election.group
    combined = [[mpz(1)] * len(row) for row in tally.ciphertexts]
    offset = 0
    for item in items:
        if isinstance(item, TrusteePublicKey):
            if offset + 1 not in partials:
                raise VotingUsageError(f"the partial decryption of mandatory trustee "
                                       f"{offset + 1} is missing")
            sub = [list(row) for row in partials[offset + 1].factors]
            offset += 1
        else:
            count = len(item.verification_keys)
            shares = [(owner - offset, partials[owner])
                      for owner in range(offset + 1, offset + count + 1) if owner in partials]
            if len(shares) < item.threshold:
                raise VotingUsageError(f"threshold decryption needs {item.threshold} of "
                                       f"{count} trustees' partial decryptions, got "
                                       f"{len(shares)}")
            sub = compute_pedersen_factors(election, tally, shares[:item.threshold])
            offset += count
        combined = [[group.mul(left, right) for left, right in zip(row, sub_row, strict=True)]
                    for row, sub_row in zip(combined, sub, strict=True)]
    return combined


def compute_discrete_log(group: Group, value: mpz, bound: int) -> int:
    """Return k in 0..bound with g^k = value (baby-step giant-step), or refuse."""
    steps = math.isqrt(bound) + 1
    baby: dict[mpz, int] = {}
    power = mpz(1)
    for exponent in range(steps):
        baby.setdefault(power, exponent)
        power = power * group.g % group.p
    giant = group.exp_g(group.q - steps)  # g^(−steps)
    current = value
    for block in range(steps + 1):
        if current in baby and block * steps + baby[current] <= bound:
            return block * steps + baby[current]
        current = current * giant % group.p
    raise ResultMismatch(f"a decrypted count is not between 0 and the total weight {bound}")


def owned_partials(trustees: Sequence[TrusteePublicKey],
                   partials: Sequence[PartialDecryption]) -> dict[int, PartialDecryption]:
    """Number n-of-n partial decryptions by owner, refusing a missing one."""
    if len(partials) != len(trustees):
        raise VotingUsageError(f"n-of-n decryption needs all {len(trustees)} trustees' "
                               f"partial decryptions, got {len(partials)}")
    return dict(enumerate(partials, start=1))


def compute_result(election: Election, tally: EncryptedTally,
                   trustees: Sequence[TrusteePublicKey],
                   partials: Sequence[PartialDecryption]) -> Matrix:
    """Verify every trustee's partial decryption and return the per-answer counts (n-of-n)."""
    return compute_items_result(election, tally, trustees, owned_partials(trustees, partials))


def verify_result(election: Election, tally: EncryptedTally,
                  trustees: Sequence[TrusteePublicKey], partials: Sequence[PartialDecryption],
                  result: Matrix) -> None:
    """Raise `ResultMismatch` unless g^result = β / Π factors for every count (n-of-n)."""
    verify_items_result(election, tally, trustees, owned_partials(trustees, partials), result)


def compute_items_result(election: Election, tally: EncryptedTally,
                         items: Sequence[TrusteeItem],
                         partials: Mapping[int, PartialDecryption]) -> Matrix:
    """Verify the owners' partial decryptions and return the counts, for any trustees list."""
    factors = compute_decryption_factors(election, tally, items, partials)
    return tuple(tuple(compute_discrete_log(election.group, power, tally.total_weight)
                       for power in row)
                 for row in compute_plain_powers(election, tally, factors))


def verify_items_result(election: Election, tally: EncryptedTally,
                        items: Sequence[TrusteeItem], partials: Mapping[int, PartialDecryption],
                        result: Matrix) -> None:
    """Raise `ResultMismatch` unless g^result = β / F for every count, F as in 4.19."""
    powers = compute_plain_powers(election, tally,
                                  compute_decryption_factors(election, tally, items, partials))
    if [len(row) for row in result] != [len(row) for row in powers]:
        raise ResultMismatch("the result is not shaped like the tally")
    for row, counts in zip(powers, result, strict=True):
        for power, count in zip(row, counts, strict=True):
            if not 0 <= count <= tally.total_weight or election.group.exp_g(mpz(count)) != power:
                raise ResultMismatch("a count does not match the tally and the decryptions")


def parse_encrypted_tally(election: Election, raw: bytes, num_tallied: int,
                          total_weight: int) -> EncryptedTally:
    """Parse an encrypted_tally JSON (as `belenios-tool election compute-encrypted-tally`)."""
    rows = require_list(load_json(raw, "encrypted tally"), "encrypted tally",
                        len(election.questions))
    return EncryptedTally(tuple(
        tuple(parse_ciphertext(election.group, item, f"tally {index}") for item
              in require_list(row, f"tally {index}", question.choice_count))
        for index, (row, question) in enumerate(zip(rows, election.questions, strict=True))),
        num_tallied, total_weight)


def parse_partial_decryption(election: Election, raw: bytes) -> PartialDecryption:
    """Parse a partial_decryption JSON (as `belenios-tool election decrypt` prints)."""
    body = require_dict(load_json(raw, "partial decryption"),
                        {"decryption_factors", "decryption_proofs"}, "partial decryption")
    shape = [question.choice_count for question in election.questions]
    factors = require_list(body["decryption_factors"], "factors", len(shape))
    proofs = require_list(body["decryption_proofs"], "proofs", len(shape))
    return PartialDecryption(
        tuple(tuple(parse_element(election.group, item, "decryption factor")
                    for item in require_list(row, "factors", size))
              for row, size in zip(factors, shape, strict=True)),
        tuple(tuple(parse_proof(election.group, item, "decryption proof")
                    for item in require_list(row, "proofs", size))
              for row, size in zip(proofs, shape, strict=True)))


def dump_result(result: Matrix) -> bytes:
    """Return the election result JSON {"result": [[count, …], …]}."""
    return dump_json({"result": [list(row) for row in result]}).encode()


def parse_result(election: Election, raw: bytes) -> Matrix:
    """Parse an election result JSON into per-question counts."""
    body = require_dict(load_json(raw, "result"), {"result"}, "result")
    rows = require_list(body["result"], "result", len(election.questions))
    result = []
    for row, question in zip(rows, election.questions, strict=True):
        counts = require_list(row, "result row", question.choice_count)
        if not all(type(count) is int and count >= 0 for count in counts):
            raise MalformedVotingData("a result count is not a non-negative integer")
        result.append(tuple(counts))
    return tuple(result)


def sized_tally_json(tally: EncryptedTally, tally_hash: str) -> dict[str, Any]:
    """Return the sized_encrypted_tally object referring to the tally by its hash."""
    return {"num_tallied": tally.num_tallied, "total_weight": tally.total_weight,
            "encrypted_tally": tally_hash}
