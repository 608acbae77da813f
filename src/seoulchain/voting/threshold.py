"""Threshold ("Pedersen") trustees: t of µ trustees suffice to decrypt (specification 4.6).

A Pedersen item of trustees.json publishes the threshold t (the number of trustees needed),
each trustee's certificate (its signature key vk = g^sk and channel encryption key, signed
with sk: challenge SHA-256("sigmsg|" ‖ M ‖ "|" ‖ A) mod q), each trustee i's signed
commitments A_i0..A_i(t−1) to its secret polynomial f_i, and each trustee j's verification
key g^S_j, S_j = Σ_i f_i(j), with a proof of knowledge. Anyone checks that every
verification key equals Π_i Π_k A_ik^(j^k); the item's sub-key is Π_i A_i0 = g^Σ f_i(0).
A trustee j's partial decryption is α^S_j, proven against its verification key like a
"Single" one; any t of them combine with Lagrange coefficients at 0 into α^Σ f_i(0).

Decryption owners are numbered from 1 across the whole trustees list: a "Single" item takes
one number, a Pedersen item of µ trustees the next µ (as `belenios-tool --trustee-id`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gmpy2 import invert, mpz

from seoulchain.voting.errors import BadTrusteeKey, MalformedVotingData
from seoulchain.voting.group import Group, compute_hash_zq, parse_element
from seoulchain.voting.jsonform import dump_json, load_json, require_dict, require_list
from seoulchain.voting.trustees import (
    TRUSTEES_MAX,
    TrusteePublicKey,
    parse_trustee_public_key,
    verify_trustee_key,
)
from seoulchain.voting.zkp import Proof, parse_proof


@dataclass(frozen=True)
class SignedMessage:
    """A message string with a Schnorr signature over it (signed_msg)."""

    message: str
    signature: Proof

    def to_json(self) -> dict[str, Any]:
        """Return the signed_msg object in belenios-tool's field order."""
        return {"message": self.message, "signature": self.signature.to_json()}


@dataclass(frozen=True)
class ThresholdTrustees:
    """A verified Pedersen item: threshold, certificates, commitments, verification keys."""

    threshold: int
    certificates: tuple[SignedMessage, ...]
    coefexps: tuple[SignedMessage, ...]
    commitments: tuple[tuple[mpz, ...], ...]
    verification_keys: tuple[TrusteePublicKey, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the threshold_parameters object in belenios-tool's field order."""
        return {"threshold": self.threshold,
                "certs": [cert.to_json() for cert in self.certificates],
                "coefexps": [signed.to_json() for signed in self.coefexps],
                "verification_keys": [key.to_json() for key in self.verification_keys]}


TrusteeItem = TrusteePublicKey | ThresholdTrustees


def verify_signed_message(group: Group, verification_key: mpz, signed: SignedMessage,
                          what: str) -> None:
    """Raise `BadTrusteeKey` unless the signature verifies under `verification_key`."""
    proof = signed.signature
    commitment = group.mul(group.exp_g(proof.response), group.pow(verification_key,
                                                                  proof.challenge))
    if compute_hash_zq(group, f"sigmsg|{signed.message}|", [commitment]) != proof.challenge:
        raise BadTrusteeKey(f"{what}: the signature does not verify")


def parse_signed_message(group: Group, value: Any, what: str) -> SignedMessage:
    """Parse a signed_msg object (its signature is checked separately)."""
    body = require_dict(value, {"message", "signature"}, what)
    if not isinstance(body["message"], str):
        raise MalformedVotingData(f"{what} message is not a string")
    return SignedMessage(body["message"], parse_proof(group, body["signature"], what))


def parse_certificate(group: Group, value: Any, index: int) -> tuple[SignedMessage, mpz]:
    """Parse and check a self-signed certificate; return it and its verification key."""
    signed = parse_signed_message(group, value, f"certificate {index}")
    keys = require_dict(load_json(signed.message, "certificate keys"),
                        {"verification", "encryption"}, f"certificate {index} keys")
    verification = parse_element(group, keys["verification"], f"certificate {index} key")
    parse_element(group, keys["encryption"], f"certificate {index} encryption key")
    verify_signed_message(group, verification, signed, f"certificate {index}")
    return signed, verification


def parse_coefexps(group: Group, value: Any, index: int, verification: mpz, threshold: int,
                   ) -> tuple[SignedMessage, tuple[mpz, ...]]:
    """Parse trustee `index`'s signed polynomial commitments A_i0..A_i(t−1)."""
    signed = parse_signed_message(group, value, f"coefexps {index}")
    verify_signed_message(group, verification, signed, f"coefexps {index}")
    body = require_dict(load_json(signed.message, "coefexps"), {"coefexps"},
                        f"coefexps {index}")
    items = require_list(body["coefexps"], f"coefexps {index}", threshold)
    return signed, tuple(parse_element(group, item, f"coefexps {index}") for item in items)


def compute_verification_key(group: Group, commitments: Iterable[Sequence[mpz]], index: int,
                             ) -> mpz:
    """Return Π_i Π_k A_ik^(index^k), the key trustee `index` (from 1) must publish."""
    key = mpz(1)
    for row in commitments:
        for power, commitment in enumerate(row):
            key = group.mul(key, group.pow(commitment, mpz(index) ** power % group.q))
    return key


def parse_threshold_trustees(group: Group, value: Any, what: str) -> ThresholdTrustees:
    """Parse a Pedersen item and check every signature, proof and verification key."""
    body = require_dict(value, {"threshold", "certs", "coefexps", "verification_keys"}, what)
    certs = require_list(body["certs"], f"{what} certs")
    count = len(certs)
    threshold = body["threshold"]
    if not 1 <= count <= TRUSTEES_MAX or type(threshold) is not int or not (
            1 <= threshold <= count):
        raise MalformedVotingData(f"{what} needs 1 to {TRUSTEES_MAX} trustees and a "
                                  f"threshold between 1 and their number")
    certificates = [parse_certificate(group, cert, index) for index, cert in enumerate(certs)]
    coefexps = [parse_coefexps(group, item, index, verification, threshold) for index, (
        item, (_, verification)) in enumerate(zip(
            require_list(body["coefexps"], f"{what} coefexps", count), certificates,
            strict=True))]
    commitments = tuple(row for _, row in coefexps)
    keys = []
    for index, item in enumerate(require_list(body["verification_keys"],
                                              f"{what} verification keys", count), start=1):
        key = parse_trustee_public_key(group, item, f"{what} verification key {index}")
        verify_trustee_key(group, key)
        if key.public_key != compute_verification_key(group, commitments, index):
            raise BadTrusteeKey(f"verification key {index} does not match the published "
                                f"polynomial commitments")
        keys.append(key)
    return ThresholdTrustees(threshold, tuple(cert for cert, _ in certificates),
                             tuple(signed for signed, _ in coefexps), commitments, tuple(keys))


def parse_trustee_items(group: Group, raw: bytes) -> list[TrusteeItem]:
    """Parse a trustees.json of "Single" and "Pedersen" items, checking every item."""
    items = require_list(load_json(raw, "trustees"), "trustees")
    if not 1 <= len(items) <= TRUSTEES_MAX:
        raise MalformedVotingData(f"an election has 1 to {TRUSTEES_MAX} trustee items")
    parsed: list[TrusteeItem] = []
    for index, item in enumerate(items):
        kind = require_list(item, f"trustee item {index}", 2)
        if kind[0] == "Single":
            key = parse_trustee_public_key(group, kind[1], f"trustee {index}")
            verify_trustee_key(group, key)
            parsed.append(key)
        elif kind[0] == "Pedersen":
            parsed.append(parse_threshold_trustees(group, kind[1], f"trustee item {index}"))
        else:
            raise MalformedVotingData(f"trustee item {index} kind {kind[0]!r} is unknown")
    if sum(len(list_decryption_keys([item])) for item in parsed) > TRUSTEES_MAX:
        raise MalformedVotingData(f"an election has at most {TRUSTEES_MAX} trustees")
    return parsed


def dump_trustee_items(items: Sequence[TrusteeItem]) -> bytes:
    """Return the trustees.json bytes of "Single" and "Pedersen" items."""
    return dump_json([["Single", item.to_json()] if isinstance(item, TrusteePublicKey)
                      else ["Pedersen", item.to_json()] for item in items]).encode()


def list_decryption_keys(items: Sequence[TrusteeItem]) -> list[TrusteePublicKey]:
    """Return the key each decryption owner proves against; owner k has entry k − 1."""
    keys: list[TrusteePublicKey] = []
    for item in items:
        keys.extend([item] if isinstance(item, TrusteePublicKey) else item.verification_keys)
    return keys


def compute_election_key(group: Group, items: Sequence[TrusteeItem]) -> mpz:
    """Return the election public key, the product of every item's sub-key (3.1.1)."""
    key = mpz(1)
    for item in items:
        if isinstance(item, TrusteePublicKey):
            key = group.mul(key, item.public_key)
            continue
        for row in item.commitments:  # the Pedersen sub-key Π_i A_i0 (4.6.4)
            key = group.mul(key, row[0])
    return key


def compute_lagrange_coefficients(group: Group, indexes: Sequence[int]) -> list[mpz]:
    """Return λ_δ = Π_{k ≠ δ} k / (k − δ) mod q for each δ of `indexes` (distinct, ≥ 1)."""
    coefficients = []
    for delta in indexes:
        numerator, denominator = mpz(1), mpz(1)
        for other in indexes:
            if other != delta:
                numerator = numerator * other % group.q
                denominator = denominator * (other - delta) % group.q
        coefficients.append(numerator * invert(denominator, group.q) % group.q)
    return coefficients
