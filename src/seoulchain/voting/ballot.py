"""Ballots: encryption with proofs, the signature, admission checks, and the Benaloh audit.

A plaintext gives, per question, one 0/1 value per answer, preceded by a blank flag when
the question allows blank (specification 4.11). Each value is encrypted as (g^r, y^r·g^m)
with a proof that m is 0 or 1 (hash prefix S0 = φ|credential); the answer carries an
overall proof that the sum lies in min..max, or, with blank allowed, a blank_proof (blank
flag 0 or sum 0) and an overall proof (blank flag 1 or sum in min..max), hash prefix
S = S0|α1,β1,…. The ballot is signed with the credential's secret: a Schnorr proof over
the Base64 SHA-256 of the ballot serialised without its signature.

`verify_ballot` is the admission check a validator runs; it refuses with the typed error of
the first failed check, cheapest first: shape, canonical bytes, election, credential,
signature, then the proofs (the expensive part, about ten modular exponentiations per
answer choice). `audit_ballot` is the voter's Benaloh check of a ballot they will not cast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gmpy2 import mpz

from seoulchain.voting.credential import PublicCredentials, derive_credential_secret
from seoulchain.voting.election import Election, Question, compute_hash_b64
from seoulchain.voting.errors import (
    AuditMismatch,
    BadBlankProof,
    BadIndividualProof,
    BadOverallProof,
    BadSignature,
    MalformedVotingData,
    NonCanonicalBallot,
    UnknownCredential,
    VotingUsageError,
    WrongElection,
)
from seoulchain.voting.group import (
    Group,
    compute_hash_zq,
    parse_exponent,
    parse_number,
)
from seoulchain.voting.jsonform import dump_json, load_json, require_dict, require_list
from seoulchain.voting.zkp import (
    Ciphertext,
    Proof,
    blank_statements,
    check_ciphertext,
    combine,
    encrypt,
    overall_blank_statements,
    parse_ciphertext,
    parse_proof,
    prove_interval,
    prove_or,
    random_exponent,
    verify_interval,
    verify_or,
)

Plaintext = Sequence[Sequence[int]]


@dataclass(frozen=True)
class Answer:
    """One question's encrypted choices and their proofs."""

    choices: tuple[Ciphertext, ...]
    individual_proofs: tuple[tuple[Proof, ...], ...]
    overall_proof: tuple[Proof, ...]
    blank_proof: tuple[Proof, ...] | None

    def to_json(self) -> dict[str, Any]:
        """Return the answer object in belenios-tool's field order."""
        body: dict[str, Any] = {
            "choices": [choice.to_json() for choice in self.choices],
            "individual_proofs": [[proof.to_json() for proof in proofs]
                                  for proofs in self.individual_proofs],
            "overall_proof": [proof.to_json() for proof in self.overall_proof]}
        if self.blank_proof is not None:
            body["blank_proof"] = [proof.to_json() for proof in self.blank_proof]
        return body


@dataclass(frozen=True)
class CreatedBallot:
    """A ballot as sent (`raw`), with what only its voter knows (for an audit)."""

    raw: bytes
    plaintext: tuple[tuple[int, ...], ...]
    randomness: tuple[tuple[mpz, ...], ...]

    @property
    def tracker(self) -> str:
        """The smart ballot tracker: Base64 SHA-256 of the ballot bytes."""
        return compute_hash_b64(self.raw)

    def randomness_json(self) -> bytes:
        """Return the encryption randomness as JSON, to reveal in a Benaloh audit."""
        return dump_json([[str(value) for value in row] for row in self.randomness]).encode()


@dataclass(frozen=True)
class VerifiedBallot:
    """A ballot that passed every admission check."""

    raw: bytes
    credential: mpz
    weight: int
    answers: tuple[Answer, ...]

    @property
    def tracker(self) -> str:
        """The smart ballot tracker: Base64 SHA-256 of the ballot bytes."""
        return compute_hash_b64(self.raw)


def credential_prefix(election: Election, credential: mpz) -> str:
    """Return S0 = "φ|credential", the prefix binding proofs to voter and election."""
    return f"{election.fingerprint}|{credential}"


def choices_prefix(zkp: str, choices: Sequence[Ciphertext]) -> str:
    """Return S = "S0|α1,β1,α2,β2,…" for an answer's overall and blank proofs."""
    return zkp + "|" + ",".join(f"{choice.alpha},{choice.beta}" for choice in choices)


def check_plaintext_answer(question: Question, values: Sequence[int], index: int) -> None:
    """Refuse a plaintext answer that the question does not allow."""
    if len(values) != question.choice_count or any(value not in (0, 1) for value in values):
        raise VotingUsageError(f"answer {index} needs {question.choice_count} values of 0 or 1")
    selected = sum(values[1:]) if question.blank else sum(values)
    if question.blank and values[0] == 1:
        if selected:
            raise VotingUsageError(f"answer {index} is blank but selects answers")
    elif not question.min <= selected <= question.max:
        raise VotingUsageError(f"answer {index} selects {selected} answers, not between "
                               f"{question.min} and {question.max}")


def encrypt_answer(election: Election, zkp: str, question: Question, values: Sequence[int],
                   ) -> tuple[Answer, tuple[mpz, ...]]:
    """Encrypt one question's values with their proofs; return the answer and randomness."""
    group, key = election.group, election.public_key
    randomness = tuple(random_exponent(group) for _ in values)
    choices = tuple(encrypt(group, key, secret, value)
                    for secret, value in zip(randomness, values, strict=True))
    individual = tuple(tuple(prove_interval(group, key, zkp, choice, secret, value, 0, 1))
                       for choice, secret, value in zip(choices, randomness, values, strict=True))
    prefix = choices_prefix(zkp, choices)
    first = 1 if question.blank else 0
    total = combine(group, list(choices[first:]))
    total_secret = sum(randomness[first:]) % group.q
    selected = sum(values[first:])
    if not question.blank:
        overall = prove_interval(group, key, prefix, total, total_secret, selected,
                                 question.min, question.max)
        return Answer(choices, individual, tuple(overall), None), randomness
    blank_flag = values[0]
    blank = prove_or(group, key, f"bproof0|{prefix}|", blank_statements(group, choices[0], total),
                     blank_flag, randomness[0] if blank_flag == 0 else total_secret)
    overall = prove_or(group, key, f"bproof1|{prefix}|",
                       overall_blank_statements(group, choices[0], total, question.min,
                                                question.max),
                       0 if blank_flag else 1 + selected - question.min,
                       randomness[0] if blank_flag else total_secret)
    return Answer(choices, individual, tuple(overall), tuple(blank)), randomness


def ballot_body(election: Election, credential: mpz, answers: Sequence[Answer],
                ) -> dict[str, Any]:
    """Return the ballot object without its signature, in belenios-tool's field order."""
    return {"election_uuid": election.uuid, "election_hash": election.fingerprint,
            "credential": str(credential), "answers": [answer.to_json() for answer in answers]}


def sign_ballot(group: Group, secret: mpz, body: dict[str, Any]) -> dict[str, Any]:
    """Return `body` with its Schnorr signature made with the credential secret."""
    ballot_hash = compute_hash_b64(dump_json(body).encode())
    nonce = random_exponent(group)
    challenge = compute_hash_zq(group, f"sig|{ballot_hash}|", [group.exp_g(nonce)])
    proof = Proof(challenge, (nonce - secret * challenge) % group.q)
    return {**body, "signature": {"hash": ballot_hash, "proof": proof.to_json()}}


def create_ballot(election: Election, credential: str, plaintext: Plaintext) -> CreatedBallot:
    """Encrypt, prove and sign a plaintext with a voter's private credential."""
    if len(plaintext) != len(election.questions):
        raise VotingUsageError(f"the election has {len(election.questions)} questions")
    for index, (question, values) in enumerate(zip(election.questions, plaintext, strict=True)):
        check_plaintext_answer(question, values, index)
    group = election.group
    secret = derive_credential_secret(group, election.uuid, credential)
    public = group.exp_g(secret)
    zkp = credential_prefix(election, public)
    encrypted = [encrypt_answer(election, zkp, question, values)
                 for question, values in zip(election.questions, plaintext, strict=True)]
    body = ballot_body(election, public, [answer for answer, _ in encrypted])
    raw = dump_json(sign_ballot(group, secret, body)).encode()
    return CreatedBallot(raw, tuple(tuple(values) for values in plaintext),
                         tuple(randomness for _, randomness in encrypted))


def parse_answer(group: Group, question: Question, value: Any, index: int) -> Answer:
    """Parse one answer object, checking list lengths against the question."""
    what = f"answer {index}"
    body = require_dict(value, {"choices", "individual_proofs", "overall_proof"}, what,
                        frozenset({"blank_proof"}))
    count = question.choice_count
    choices = tuple(parse_ciphertext(group, item, f"{what} choice {number}", check_members=False)
                    for number, item
                    in enumerate(require_list(body["choices"], f"{what} choices", count)))
    individual = tuple(
        tuple(parse_proof(group, proof, f"{what} proof") for proof in require_list(item, what, 2))
        for item in require_list(body["individual_proofs"], f"{what} proofs", count))
    disjuncts = question.max - question.min + 1 + (1 if question.blank else 0)
    overall = tuple(parse_proof(group, proof, f"{what} overall proof") for proof
                    in require_list(body["overall_proof"], f"{what} overall proof", disjuncts))
    if question.blank != ("blank_proof" in body):
        raise MalformedVotingData(f"{what} has a blank_proof if and only if blank is allowed")
    blank = None
    if question.blank:
        blank = tuple(parse_proof(group, proof, f"{what} blank proof") for proof
                      in require_list(body["blank_proof"], f"{what} blank proof", 2))
    return Answer(choices, individual, overall, blank)


def parse_ballot(election: Election, raw: bytes) -> tuple[dict[str, Any], tuple[Answer, ...]]:
    """Parse ballot bytes into its JSON object and typed answers (no check but shape; the
    choices' subgroup membership is left to `verify_answer`)."""
    body = require_dict(load_json(raw, "ballot"),
                        {"election_uuid", "election_hash", "credential", "answers",
                         "signature"}, "ballot")
    items = require_list(body["answers"], "ballot answers", len(election.questions))
    answers = tuple(parse_answer(election.group, question, item, index) for index, (question, item)
                    in enumerate(zip(election.questions, items, strict=True)))
    require_dict(body["signature"], {"hash", "proof"}, "ballot signature")
    return body, answers


def verify_signature(election: Election, body: dict[str, Any], credential: mpz) -> None:
    """Check the signature's hash and its Schnorr proof under the public credential."""
    group = election.group
    signature = body["signature"]
    unsigned = {key: value for key, value in body.items() if key != "signature"}
    if signature["hash"] != compute_hash_b64(dump_json(unsigned).encode()):
        raise BadSignature("the signature's hash is not the hash of the ballot")
    proof = parse_proof(group, signature["proof"], "signature proof")
    commitment = group.mul(group.exp_g(proof.response), group.pow(credential, proof.challenge))
    if compute_hash_zq(group, f"sig|{signature['hash']}|", [commitment]) != proof.challenge:
        raise BadSignature("the Schnorr signature does not verify under the credential")


def verify_answer(election: Election, zkp: str, question: Question, answer: Answer,
                  index: int) -> None:
    """Check one answer's individual, blank and overall proofs."""
    group, key = election.group, election.public_key
    for number, (choice, proofs) in enumerate(zip(answer.choices, answer.individual_proofs,
                                                  strict=True)):
        check_ciphertext(group, choice, f"answer {index} choice {number}")
        if not verify_interval(group, key, zkp, choice, list(proofs), 0, 1):
            raise BadIndividualProof(f"answer {index} choice {number} is not proven 0 or 1")
    prefix = choices_prefix(zkp, answer.choices)
    if answer.blank_proof is None:
        total = combine(group, list(answer.choices))
        if not verify_interval(group, key, prefix, total, list(answer.overall_proof),
                               question.min, question.max):
            raise BadOverallProof(f"answer {index} is not proven to select between "
                                  f"{question.min} and {question.max} answers")
        return
    total = combine(group, list(answer.choices[1:]))
    if not verify_or(group, key, f"bproof0|{prefix}|",
                     blank_statements(group, answer.choices[0], total), list(answer.blank_proof)):
        raise BadBlankProof(f"answer {index} is not proven either blank or not blank")
    if not verify_or(group, key, f"bproof1|{prefix}|",
                     overall_blank_statements(group, answer.choices[0], total, question.min,
                                              question.max), list(answer.overall_proof)):
        raise BadOverallProof(f"answer {index} is not proven blank or to select between "
                              f"{question.min} and {question.max} answers")


def verify_ballot(election: Election, raw: bytes, public_credentials: PublicCredentials,
                  ) -> VerifiedBallot:
    """Run every admission check on ballot bytes; raise the typed error of the first failure."""
    body, answers = parse_ballot(election, raw)
    if dump_json(body).encode() != raw:
        raise NonCanonicalBallot("the bytes are not the ballot's canonical serialisation")
    if body["election_uuid"] != election.uuid or body["election_hash"] != election.fingerprint:
        raise WrongElection("the ballot was made for another election (uuid or hash differs)")
    credential = parse_number(body["credential"], "credential")
    weight = public_credentials.weight_of(credential)
    if weight is None:
        raise UnknownCredential("the ballot's credential is not in the election's list")
    verify_signature(election, body, credential)
    zkp = credential_prefix(election, credential)
    for index, (question, answer) in enumerate(zip(election.questions, answers, strict=True)):
        verify_answer(election, zkp, question, answer, index)
    return VerifiedBallot(bytes(raw), credential, weight, answers)


def audit_ballot(election: Election, raw: bytes, randomness_json: bytes,
                 ) -> tuple[tuple[int, ...], ...]:
    """Benaloh audit: from revealed randomness, recover and return the ballot's plaintext."""
    group, key = election.group, election.public_key
    body, answers = parse_ballot(election, raw)
    if body["election_uuid"] != election.uuid or body["election_hash"] != election.fingerprint:
        raise WrongElection("the audited ballot was made for another election")
    rows = require_list(load_json(randomness_json, "randomness"), "randomness", len(answers))
    plaintext = []
    for index, (answer, row) in enumerate(zip(answers, rows, strict=True)):
        secrets = [parse_exponent(group, value, f"randomness {index}") for value
                   in require_list(row, f"randomness {index}", len(answer.choices))]
        plaintext.append(tuple(recover_value(group, key, choice, secret, index)
                               for choice, secret in zip(answer.choices, secrets, strict=True)))
    return tuple(plaintext)


def recover_value(group: Group, key: mpz, choice: Ciphertext, secret: mpz, index: int) -> int:
    """Return m in {0, 1} such that `choice` = (g^secret, y^secret·g^m), or refuse."""
    if group.exp_g(secret) != choice.alpha:
        raise AuditMismatch(f"answer {index}: α is not g^r for the revealed r")
    message = group.div(choice.beta, group.pow(key, secret))
    if message == 1:
        return 0
    if message == group.g:
        return 1
    raise AuditMismatch(f"answer {index}: a choice encrypts neither 0 nor 1")
