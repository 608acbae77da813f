"""Trustee keys with proofs of knowledge, and the election key they combine into (n-of-n).

A trustee holds x in Z_q and publishes X = g^x with a Schnorr proof of knowledge whose
challenge is SHA-256("pok|" ‖ group name ‖ "|" ‖ X ‖ "|" ‖ A) mod q (specification 4.5).
The trustees structure is a list of ["Single", trustee_public_key] items; the election
public key is the product of their keys, so every trustee must take part in the tally.
`parse_trustees` reads n-of-n lists only; threshold ("Pedersen") items are read by
`threshold.parse_trustee_items`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gmpy2 import mpz

from seoulchain.voting.errors import (
    BadTrusteeKey,
    MalformedVotingData,
    UnsupportedElection,
    VotingUsageError,
)
from seoulchain.voting.group import Group, compute_hash_zq, parse_element, parse_exponent
from seoulchain.voting.jsonform import dump_json, load_json, require_dict, require_list
from seoulchain.voting.zkp import Proof, parse_proof, random_exponent

TRUSTEES_MAX = 32  # our bound on the number of trustees read from outside


@dataclass(frozen=True)
class TrusteePublicKey:
    """A trustee's public key X = g^x with its proof of knowledge of x."""

    public_key: mpz
    pok: Proof
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the trustee_public_key object in belenios-tool's field order."""
        body: dict[str, Any] = {"pok": self.pok.to_json(), "public_key": str(self.public_key)}
        if self.name is not None:
            body["name"] = self.name
        return body


@dataclass(frozen=True)
class TrusteeKeyPair:
    """A trustee's private exponent and its published key."""

    private_key: mpz
    public: TrusteePublicKey


def pok_prefix(group: Group, public_key: mpz) -> str:
    """Return the proof-of-knowledge hash prefix "pok|G|X|"."""
    return f"pok|{group.name}|{public_key}|"


def generate_trustee_key(group: Group, name: str | None = None) -> TrusteeKeyPair:
    """Draw a private key and prove knowledge of it."""
    private_key = random_exponent(group)
    return TrusteeKeyPair(private_key, make_trustee_public_key(group, private_key, name))


def make_trustee_public_key(group: Group, private_key: mpz, name: str | None = None,
                            ) -> TrusteePublicKey:
    """Return g^private_key with a fresh proof of knowledge."""
    public_key = group.exp_g(private_key)
    nonce = random_exponent(group)
    challenge = compute_hash_zq(group, pok_prefix(group, public_key), [group.exp_g(nonce)])
    return TrusteePublicKey(public_key, Proof(challenge, (nonce - private_key * challenge)
                                              % group.q), name)


def verify_trustee_key(group: Group, key: TrusteePublicKey) -> None:
    """Raise `BadTrusteeKey` unless the proof of knowledge verifies."""
    commitment = group.mul(group.exp_g(key.pok.response),
                           group.pow(key.public_key, key.pok.challenge))
    if compute_hash_zq(group, pok_prefix(group, key.public_key), [commitment]) != key.pok.challenge:
        raise BadTrusteeKey("the proof of knowledge of the private key does not verify")


def combine_trustee_keys(group: Group, keys: list[TrusteePublicKey]) -> mpz:
    """Return the election public key y = Π X_i after checking every proof."""
    if not keys:
        raise VotingUsageError("an election needs at least one trustee")
    election_key = mpz(1)
    for key in keys:
        verify_trustee_key(group, key)
        election_key = group.mul(election_key, key.public_key)
    return election_key


def parse_trustee_public_key(group: Group, value: Any, what: str) -> TrusteePublicKey:
    """Parse one trustee_public_key object (as in a .pubkey file of belenios-tool)."""
    body = require_dict(value, {"pok", "public_key"}, what, frozenset({"name"}))
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise MalformedVotingData(f"{what} name is not a string")
    return TrusteePublicKey(parse_element(group, body["public_key"], f"{what} public key"),
                            parse_proof(group, body["pok"], f"{what} pok"), name)


def parse_trustees(group: Group, raw: bytes) -> list[TrusteePublicKey]:
    """Parse a trustees.json structure of "Single" items and check every key's proof."""
    items = require_list(load_json(raw, "trustees"), "trustees")
    if not 1 <= len(items) <= TRUSTEES_MAX:
        raise MalformedVotingData(f"an election has 1 to {TRUSTEES_MAX} trustee items")
    keys = []
    for index, item in enumerate(items):
        kind = require_list(item, f"trustee item {index}", 2)
        if kind[0] == "Pedersen":
            raise UnsupportedElection("threshold (Pedersen) trustees are not n-of-n keys; "
                                      "read them with parse_trustee_items")
        if kind[0] != "Single":
            raise MalformedVotingData(f"trustee item {index} kind {kind[0]!r} is unknown")
        key = parse_trustee_public_key(group, kind[1], f"trustee {index}")
        verify_trustee_key(group, key)
        keys.append(key)
    return keys


def dump_trustees(keys: list[TrusteePublicKey]) -> bytes:
    """Return the trustees.json bytes for n-of-n "Single" trustees."""
    return dump_json([["Single", key.to_json()] for key in keys]).encode()


def parse_private_key(group: Group, raw: bytes) -> mpz:
    """Parse a belenios-tool .privkey file (a JSON string holding x)."""
    return parse_exponent(group, load_json(raw, "private key"), "private key")
