"""Shared election material for the voting tests: small elections and a ballot forger."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from gmpy2 import mpz

from seoulchain.voting import (
    BELENIOS_2048,
    Election,
    PublicCredentials,
    Question,
    TrusteeKeyPair,
    combine_trustee_keys,
    compute_public_credential,
    generate_trustee_key,
    make_election,
)
from seoulchain.voting.archive import ArchiveReader, read_entries
from seoulchain.voting.ballot import (
    Answer,
    ballot_body,
    choices_prefix,
    credential_prefix,
    sign_ballot,
)
from seoulchain.voting.credential import derive_credential_secret
from seoulchain.voting.jsonform import dump_json
from seoulchain.voting.zkp import (
    combine,
    encrypt,
    prove_interval,
    random_exponent,
)

DATA = Path(__file__).parent / "data"
TOOL_ARCHIVE = DATA / "belenios-2.0-election.bel"
TOOL_CREDENTIALS = (DATA / "belenios-2.0-private-creds.txt").read_text().split()
TOOL_RESULT = ((1, 2), (2, 1, 1, 1))
# Fixed voter credentials with valid checksums (those of the belenios-tool vector).
CREDENTIALS = ("QCd-Bkf-h8J-atd-7RY", "3pH-5Zn-3bb-SkK-X27", "kAg-VhQ-iED-X1m-yKn")
QUESTIONS = [Question("Mayor?", ("Kim", "Lee"), 0, 1),
             Question("Parks?", ("Han river", "Namsan", "Bukhansan"), 1, 2, blank=True)]


@dataclass(frozen=True)
class Setup:
    """An election made by this library, with its trustees' private keys and voters."""

    election: Election
    trustees: tuple[TrusteeKeyPair, ...]
    credentials: PublicCredentials


@cache
def make_setup(uuid: str = "SeouLTest1234567", weights: tuple[int, ...] = (1, 2, 1)) -> Setup:
    """Return a two-trustee election with three voters of the given weights."""
    trustees = (generate_trustee_key(BELENIOS_2048), generate_trustee_key(BELENIOS_2048))
    election = make_election(uuid=uuid, name="Seoul", description="mVoting test",
                             group=BELENIOS_2048,
                             public_key=combine_trustee_keys(
                                 BELENIOS_2048, [pair.public for pair in trustees]),
                             questions=QUESTIONS)
    credentials = PublicCredentials({
        compute_public_credential(BELENIOS_2048, uuid, credential): weight
        for credential, weight in zip(CREDENTIALS, weights, strict=True)})
    return Setup(election, trustees, credentials)


def forge_ballot(election: Election, credential: str, plaintext: list[list[int]]) -> bytes:
    """Sign a ballot for non-blank questions whose proofs claim in-range values it lacks."""
    group, key = election.group, election.public_key
    secret = derive_credential_secret(group, election.uuid, credential)
    zkp = credential_prefix(election, group.exp_g(secret))
    answers = []
    for question, values in zip(election.questions, plaintext, strict=True):
        randomness = [random_exponent(group) for _ in values]
        choices = tuple(encrypt(group, key, r, value)
                        for r, value in zip(randomness, values, strict=True))
        individual = tuple(tuple(prove_interval(group, key, zkp, choice, r, min(value, 1), 0, 1))
                           for choice, r, value in zip(choices, randomness, values, strict=True))
        claimed = min(max(sum(values), question.min), question.max)
        overall = prove_interval(group, key, choices_prefix(zkp, choices),
                                 combine(group, list(choices)), mpz(sum(randomness)) % group.q,
                                 claimed, question.min, question.max)
        answers.append(Answer(choices, individual, tuple(overall), None))
    body = ballot_body(election, group.exp_g(secret), answers)
    return dump_json(sign_ballot(group, secret, body)).encode()


def resign(election: Election, credential: str, ballot: dict[str, Any]) -> bytes:
    """Return `ballot` (a parsed ballot, possibly edited) signed again with `credential`."""
    secret = derive_credential_secret(election.group, election.uuid, credential)
    body = {key: value for key, value in ballot.items() if key != "signature"}
    return dump_json(sign_ballot(election.group, secret, body)).encode()


def read_tool_archive() -> ArchiveReader:
    """Return the belenios-tool archive vector, indexed."""
    reader = ArchiveReader()
    reader.load(read_entries(TOOL_ARCHIVE))
    return reader
