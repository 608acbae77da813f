"""The election structure of Belenios 2.0 (format version 1) and its fingerprint.

An election is published once, as bytes; its fingerprint is BASE64(SHA-256(bytes)) without
padding, so an `Election` keeps the exact bytes it was made from (`raw`) and never
re-serialises them. `make_election` writes a new one field by field in the order of
belenios-tool 2.0 (version, description, name, group, public_key, questions, uuid);
`parse_election` reads one from outside. Only homomorphic questions are supported: a voter
selects between `min` and `max` of the `answers`, or votes blank when `blank` is true.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from gmpy2 import mpz

from seoulchain.voting.errors import MalformedVotingData, UnsupportedElection, VotingUsageError
from seoulchain.voting.group import Group, get_group, parse_element
from seoulchain.voting.jsonform import dump_json, load_json, require_dict, require_list

ELECTION_FORMAT_VERSION = 1  # Belenios specification 2.0, section 4.10
BASE58_DIGITS = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
UUID_CHARS_MIN = 14  # specification 4.2: Base58, at least 14 characters
UUID_CHARS_MAX = 64  # our bound on a uuid read from outside
# Bounds on what a question may ask, so a ballot's proofs stay small: each answer costs a
# ciphertext and a 2-way proof, each value of min..max a disjunct of the overall proof.
QUESTIONS_MAX = 16
ANSWERS_MAX = 64


@dataclass(frozen=True)
class Question:
    """A homomorphic question: select between `min` and `max` answers, or blank if allowed."""

    question: str
    answers: tuple[str, ...]
    min: int
    max: int
    blank: bool = False

    @property
    def choice_count(self) -> int:
        """Number of encrypted choices in an answer (one more than answers when blank)."""
        return len(self.answers) + (1 if self.blank else 0)


@dataclass(frozen=True)
class Election:
    """A parsed election with the exact bytes it was published as."""

    raw: bytes
    uuid: str
    name: str
    description: str
    group: Group
    public_key: mpz
    questions: tuple[Question, ...]

    @property
    def fingerprint(self) -> str:
        """The election hash φ: unpadded Base64 of SHA-256 over the published bytes."""
        return compute_hash_b64(self.raw)


def compute_hash_b64(data: bytes) -> str:
    """Return Belenios's H_JSON: Base64 of SHA-256 without padding."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def generate_uuid() -> str:
    """Return a fresh election uuid: 14 random Base58 characters, as belenios-tool makes."""
    return "".join(secrets.choice(BASE58_DIGITS) for _ in range(UUID_CHARS_MIN))


def check_uuid(uuid: object) -> str:
    """Return `uuid` if it is a Base58 string of allowed length."""
    if (not isinstance(uuid, str) or not UUID_CHARS_MIN <= len(uuid) <= UUID_CHARS_MAX
            or any(char not in BASE58_DIGITS for char in uuid)):
        raise MalformedVotingData("uuid is not a Base58 string of 14 to 64 characters")
    return uuid


def check_question(question: Question) -> Question:
    """Return `question` if its bounds are consistent and within limits."""
    answers = len(question.answers)
    if not 1 <= answers <= ANSWERS_MAX:
        raise VotingUsageError(f"a question has 1 to {ANSWERS_MAX} answers, not {answers}")
    if not 0 <= question.min <= question.max <= answers:
        raise VotingUsageError(f"question bounds need 0 <= min <= max <= {answers}, got "
                               f"min={question.min} max={question.max}")
    return question


def question_to_json(question: Question) -> dict[str, Any]:
    """Return the question object in belenios-tool's field order."""
    body: dict[str, Any] = {"answers": list(question.answers)}
    if question.blank:
        body["blank"] = True
    body.update(min=question.min, max=question.max, question=question.question)
    return body


def make_election(*, uuid: str, name: str, description: str, group: Group,
                  public_key: mpz, questions: list[Question]) -> Election:
    """Write a new election (format version 1) and return it parsed from its own bytes."""
    if not 1 <= len(questions) <= QUESTIONS_MAX:
        raise VotingUsageError(f"an election has 1 to {QUESTIONS_MAX} questions")
    for question in questions:
        check_question(question)
    try:
        check_uuid(uuid)
    except MalformedVotingData as exc:
        raise VotingUsageError(str(exc)) from None
    body = {"version": ELECTION_FORMAT_VERSION, "description": description, "name": name,
            "group": group.name, "public_key": str(public_key),
            "questions": [question_to_json(question) for question in questions],
            "uuid": uuid}
    return parse_election(dump_json(body).encode())


def parse_question(value: Any, index: int) -> Question:
    """Parse one question object from an election."""
    what = f"question {index}"
    if isinstance(value, dict) and "type" in value:
        raise UnsupportedElection(f"{what} is non-homomorphic ({value.get('type')!r}); only "
                                  "homomorphic questions are supported")
    body = require_dict(value, {"answers", "min", "max", "question"}, what,
                        frozenset({"blank"}))
    answers = require_list(body["answers"], f"{what} answers")
    if not all(isinstance(answer, str) for answer in answers) or not isinstance(
            body["question"], str):
        raise MalformedVotingData(f"{what} has a non-string text")
    bounds = (body["min"], body["max"])
    blank = body.get("blank", False)
    if not all(type(bound) is int for bound in bounds) or type(blank) is not bool:
        raise MalformedVotingData(f"{what} has non-integer bounds or a non-boolean blank")
    question = Question(question=body["question"], answers=tuple(answers), min=bounds[0],
                        max=bounds[1], blank=blank)
    try:
        return check_question(question)
    except VotingUsageError as exc:
        raise MalformedVotingData(f"{what}: {exc}") from None


def parse_election(raw: bytes) -> Election:
    """Parse election bytes from outside (Belenios election format version 1)."""
    body = require_dict(load_json(raw, "election"),
                        {"version", "description", "name", "group", "public_key",
                         "questions", "uuid"}, "election",
                        frozenset({"administrator", "credential_authority"}))
    if body["version"] != ELECTION_FORMAT_VERSION:
        raise UnsupportedElection(f"election format version {body['version']!r} is not 1")
    try:
        group = get_group(body["group"])
    except (VotingUsageError, TypeError):
        raise UnsupportedElection(f"election group {body['group']!r} is not supported") from None
    questions = require_list(body["questions"], "election questions")
    if not 1 <= len(questions) <= QUESTIONS_MAX:
        raise MalformedVotingData(f"an election has 1 to {QUESTIONS_MAX} questions")
    if not isinstance(body["name"], str) or not isinstance(body["description"], str):
        raise MalformedVotingData("election name and description must be strings")
    return Election(raw=bytes(raw), uuid=check_uuid(body["uuid"]), name=body["name"],
                    description=body["description"], group=group,
                    public_key=parse_element(group, body["public_key"], "election public key"),
                    questions=tuple(parse_question(item, index)
                                    for index, item in enumerate(questions)))
