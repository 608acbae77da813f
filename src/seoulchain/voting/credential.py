"""Voter credentials: the secret string, the exponent derived from it, the public list.

A private credential is 15 Base58 characters written XXX-XXX-XXX-XXX-XXX, the last one a
checksum (53 − value of the first 14 mod 53, specification 4.8). Its secret exponent is
PBKDF2-HMAC-SHA256(password = the credential as written, salt = election uuid, 1000
iterations, 32 bytes) read big-endian mod q, exactly as belenios-tool derives it, so a
tool-made credential votes here; the public credential is g^secret. The public list
(public_creds.json) holds "credential" or "credential,weight" strings.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from gmpy2 import mpz

from seoulchain.voting.election import BASE58_DIGITS
from seoulchain.voting.errors import MalformedVotingData, VotingUsageError
from seoulchain.voting.group import Group, parse_element, parse_number
from seoulchain.voting.jsonform import dump_json, load_json, require_list

CREDENTIAL_TOKEN_CHARS = 14  # specification 4.8: 14 random characters and a checksum
CREDENTIAL_CHECKSUM_MODULUS = 53
PBKDF2_ITERATIONS = 1000  # specification 4.8
VOTERS_MAX = 1_000_000  # our bound on a public credential list read from outside
WEIGHT_MAX = 10**9  # our bound on one voter's weight, so tallies stay small for the log


@dataclass(frozen=True)
class PublicCredentials:
    """The election's public credentials, each with its voter's weight."""

    weights: dict[mpz, int]

    def weight_of(self, credential: mpz) -> int | None:
        """Return the weight of `credential`, or None when it is not listed."""
        return self.weights.get(credential)


def generate_credential() -> str:
    """Return a fresh private credential with its checksum, formatted with dashes."""
    digits = [secrets.randbelow(58) for _ in range(CREDENTIAL_TOKEN_CHARS)]
    value = 0
    for digit in digits:
        value = value * 58 + digit
    checksum = CREDENTIAL_CHECKSUM_MODULUS - value % CREDENTIAL_CHECKSUM_MODULUS
    token = "".join(BASE58_DIGITS[digit] for digit in [*digits, checksum])
    return "-".join(token[index:index + 3] for index in range(0, 15, 3))


def check_credential(credential: str) -> str:
    """Return `credential` if it has the XXX-XXX-XXX-XXX-XXX shape and a valid checksum."""
    shaped = len(credential) == 15 or (
        len(credential) == 19 and all(credential[index] == "-" for index in (3, 7, 11, 15)))
    token = credential.replace("-", "")
    if len(token) != 15 or not shaped or any(char not in BASE58_DIGITS for char in token):
        raise VotingUsageError("a credential is 15 Base58 characters (XXX-XXX-XXX-XXX-XXX)")
    value = 0
    for char in token[:CREDENTIAL_TOKEN_CHARS]:
        value = value * 58 + BASE58_DIGITS.index(char)
    if (value + BASE58_DIGITS.index(token[-1])) % CREDENTIAL_CHECKSUM_MODULUS:
        raise VotingUsageError("the credential's checksum is wrong (a typing error?)")
    return credential


def derive_credential_secret(group: Group, uuid: str, credential: str) -> mpz:
    """Return secret(c) = PBKDF2-HMAC-SHA256(c, uuid, 1000) mod q."""
    derived = hashlib.pbkdf2_hmac("sha256", check_credential(credential).encode(),
                                  uuid.encode(), PBKDF2_ITERATIONS, 32)
    return mpz(int.from_bytes(derived, "big")) % group.q


def compute_public_credential(group: Group, uuid: str, credential: str) -> mpz:
    """Return public(c) = g^secret(c)."""
    return group.exp_g(derive_credential_secret(group, uuid, credential))


def parse_public_credentials(group: Group, raw: bytes) -> PublicCredentials:
    """Parse public_creds.json ("cred" or "cred,weight[,id]" strings), refusing duplicates."""
    items = require_list(load_json(raw, "public credentials"), "public credentials")
    if len(items) > VOTERS_MAX:
        raise MalformedVotingData(f"more than {VOTERS_MAX} public credentials")
    weights: dict[mpz, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise MalformedVotingData(f"public credential {index} is not a string")
        parts = item.split(",")
        credential = parse_element(group, parts[0], f"public credential {index}")
        weight = int(parse_number(parts[1], f"weight {index}")) if len(parts) > 1 else 1
        if not 0 < weight <= WEIGHT_MAX or len(parts) > 3 or credential in weights:
            raise MalformedVotingData(f"public credential {index} has a bad weight or repeats")
        weights[credential] = weight
    return PublicCredentials(weights)


def dump_public_credentials(credentials: PublicCredentials) -> bytes:
    """Return public_creds.json bytes, sorted, with weights only when one is not 1."""
    weighted = any(weight != 1 for weight in credentials.weights.values())
    items = sorted(credentials.weights.items(), key=lambda item: str(item[0]))
    return dump_json([f"{credential},{weight}" if weighted else str(credential)
                      for credential, weight in items]).encode()
