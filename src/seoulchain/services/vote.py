"""Polls (`vote`): Belenios 2.0 elections whose ballot box, tally and result live on chain.

Theory of operation. An organiser (role `vote.organiser`) creates a poll: its questions,
who is eligible (holders of a credential type of the `vc` service, or a list the organiser
keeps off chain and commits to by hash), its open and close heights, and its trustees. Either
every trustee decrypts (n-of-n): each is a chain key with the Belenios public key it
generated, whose proof of knowledge is checked here, and the election key is their product.
Or any t of n do (threshold): the trustees are chain keys, in the order of the threshold
parameters the key ceremony made (belenios-tool's Pedersen item: certificates, signed
polynomial commitments, verification keys with proofs), every signature, proof and
verification key of which is checked here, and the election key is the tool's, Π_i A_i0.
The election (group, election public key, questions, a uuid derived from the creating
transaction) is fixed at creation; its hash is what every ballot names. Before the poll
opens the organiser publishes the public credentials, in batches: only public credentials,
unlinked to identities (the organiser, as credential authority, hands each voter the
private credential off chain after checking eligibility).

While open (open_height <= height < close_height, or until the organiser closes it), anyone
casts a ballot from any chain key (a fresh one keeps the vote unlinked to the voter's other
transactions): the ballot must name this election, carry a registered credential and pass
every proof (`voting.ballot.verify_ballot`), or the transaction is refused with the failed check.
Every ballot stays in state; the last ballot of a credential is the counted one (a re-vote
replaces it). Turnout (credentials that voted) is public while the poll is open; no partial
result exists, since nothing is decrypted before close.

After close: `tally` sums the counted ballots homomorphically, TALLY_BATCH_BALLOTS at a time
(each transaction's work is bounded; the last batch commits the encrypted tally); each
trustee posts its partial decryption with proofs (`decrypt`, checked against its key, or for
a threshold poll its verification key); once all are in (t of them for a threshold poll),
`publish_result` records the result, refused unless it is what the shares decrypt to (a
threshold poll's shares combined with Lagrange coefficients at 0).

State (namespace `vote`): `poll/<id>` → the poll record; `cred/<id>/<SHA-256 of the public
credential>` → {index, ballot: the counted ballot's number or None, cast: its ballots};
`credidx/<id>/<index, 4 bytes>` → a credential, in publication order;
`ballot/<id>/<number, 4 bytes>` → {credential, ballot text, hash, height, replaces};
`share/<id>/<trustee index, 1 byte>` → a trustee's partial decryption. A threshold poll's
record also holds `threshold_parameters` (the Pedersen item's JSON text) and, per trustee,
its verification key as `public_key`; an n-of-n poll's record has no such field.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated, Any, Literal

import base58
from gmpy2 import mpz
from pydantic import Field, StringConstraints, model_validator

from seoulchain.crypto.hashing import sha256
from seoulchain.execution.service import (
    Precheck,
    QueryArgs,
    Service,
    ServiceError,
    ServiceState,
    StrictArgs,
    TxContext,
    query,
    tx_method,
)
from seoulchain.ledger.types import PUBLIC_KEY_BYTES, TX_BYTES_MAX
from seoulchain.services.notary import PublicText
from seoulchain.services.vc import (
    CredentialType,
    get_type_count,
    is_counting_version,
)
from seoulchain.voting.ballot import verify_ballot
from seoulchain.voting.credential import PublicCredentials
from seoulchain.voting.election import Election, Question, make_election, parse_election
from seoulchain.voting.errors import (
    BadTrusteeKey,
    MalformedVotingData,
    VotingCheckFailed,
    VotingUsageError,
)
from seoulchain.voting.group import get_group, parse_element
from seoulchain.voting.jsonform import dump_json, load_json, require_dict
from seoulchain.voting.tally import (
    EncryptedTally,
    PartialDecryption,
    dump_result,
    parse_encrypted_tally,
    parse_partial_decryption,
    parse_result,
    verify_items_result,
    verify_partial_decryption,
)
from seoulchain.voting.threshold import (
    ThresholdTrustees,
    TrusteeItem,
    compute_election_key,
    parse_threshold_trustees,
)
from seoulchain.voting.trustees import (
    TrusteePublicKey,
    combine_trustee_keys,
    parse_trustee_public_key,
)
from seoulchain.voting.zkp import combine, parse_ciphertext

ORGANISER_ROLE = "vote.organiser"
VC_SERVICE = "vc"
# Belenios 2.0's default group (a 2048-bit safe-prime-order subgroup).
GROUP_NAME = "BELENIOS-2048"
# Bytes of the creating transaction's hash in a poll's uuid: 16 bytes make 21 or 22 Base58
# characters, above Belenios's minimum of 14.
UUID_SOURCE_BYTES = 16
# Parsed elections kept in memory: parsing checks the election key's group membership.
ELECTIONS_CACHED = 64
# Ballot verdicts remembered: a ballot is checked at admission (by a node's precheck
# workers) and again in its block, and the second check is a lookup. ~15 KB a ballot with
# its election, so ~15 MiB at most.
VERIFIED_BALLOTS_CACHED = 1024
POLL_ID_CHARS_MAX = 64
TITLE_CHARS_MAX = 200
QUESTION_CHARS_MAX = 500
ANSWER_CHARS_MAX = 200
# Questions and encrypted choices of one poll (an answer is a choice, and so is the blank
# flag of a question that allows blank). A BELENIOS-2048 ballot takes about 2.0 KB per
# choice with its proofs (12,183 B for 6 choices, `seoulchain bench voting`), so 30 choices
# keep the largest ballot (about 61 KB) inside a transaction's TX_BYTES_MAX (64 KiB).
POLL_QUESTIONS_MAX = 8
POLL_CHOICES_MAX = 30
# Trustees of one poll: each posts a partial decryption of every answer (about 0.8 KB per
# answer with its proof), which must fit one transaction.
POLL_TRUSTEES_MAX = 16
# A trustee's public key (Belenios trusted JSON: a group element and its proof) as text.
TRUSTEE_KEY_CHARS_MAX = 4096
# Threshold parameters (a Pedersen item) as text: per trustee 1.5 KB of certificate, 0.6 KB
# per polynomial commitment and 0.8 KB of verification key (measured: 5 of 8 trustees take
# 45,238 B, 8 of 8 60,151 B), so they fit a transaction's TX_BYTES_MAX (64 KiB) beside the
# questions up to 8 of 8.
THRESHOLD_PARAMETERS_CHARS_MAX = TX_BYTES_MAX - 4096
# Parsed threshold parameters kept in memory: parsing checks every signature and key.
THRESHOLD_PARAMETERS_CACHED = 64
# Public credentials are group elements in decimal: at most 617 digits in BELENIOS-2048.
CREDENTIAL_CHARS_MAX = 700
# Credentials published per transaction: a public credential is up to 617 decimal digits,
# so 96 of them (about 60 KB) fit a transaction's TX_BYTES_MAX (64 KiB) with its envelope.
CREDENTIALS_PER_TX_MAX = 96
# Ballots one credential may cast (its first and its changes of mind), so that a poll's
# ballots stay bounded (at most CREDENTIALS_MAX x 16, inside a 4-byte ballot number).
BALLOTS_PER_CREDENTIAL_MAX = 16
# Credentials (voters) of one poll: a city-wide poll of Seoul's ~9.4 million residents fits.
CREDENTIALS_MAX = 10_000_000
# A ballot's JSON text: the transaction limit less room for the envelope and signature.
BALLOT_CHARS_MAX = TX_BYTES_MAX - 1024
# Counted ballots summed per `tally` transaction: reading a ballot and multiplying its
# ciphertexts in takes well under 1 ms, so a batch stays far below a block's time.
TALLY_BATCH_BALLOTS = 1000
# Partial decryption and result JSON texts: one trustee's factors and proofs for every answer.
SHARE_CHARS_MAX = TX_BYTES_MAX - 1024
RESULT_CHARS_MAX = 16 * 1024
# The fields of a Belenios 2.0 ballot object.
BALLOT_FIELDS = frozenset({"election_uuid", "election_hash", "credential", "answers",
                           "signature"})
# Ballots a `ballots` query returns at most.
BALLOTS_PAGE_MAX = 100

PollId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", min_length=1,
                                          max_length=POLL_ID_CHARS_MAX)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=TITLE_CHARS_MAX), PublicText]
QuestionText = Annotated[str, StringConstraints(min_length=1, max_length=QUESTION_CHARS_MAX),
                         PublicText]
AnswerText = Annotated[str, StringConstraints(min_length=1, max_length=ANSWER_CHARS_MAX),
                       PublicText]
Credential = Annotated[str, StringConstraints(pattern=r"^[0-9]+$", min_length=1,
                                              max_length=CREDENTIAL_CHARS_MAX)]
ChainKey = Annotated[bytes, Field(min_length=PUBLIC_KEY_BYTES, max_length=PUBLIC_KEY_BYTES)]
Height = Annotated[int, Field(ge=1, le=2**63 - 1)]


class QuestionArgs(StrictArgs):
    question: QuestionText
    answers: Annotated[list[AnswerText], Field(min_length=1, max_length=POLL_CHOICES_MAX)]
    min: Annotated[int, Field(ge=0, le=POLL_CHOICES_MAX)] = 0
    max: Annotated[int, Field(ge=1, le=POLL_CHOICES_MAX)] = 1
    blank: bool = False

    @model_validator(mode="after")
    def check_bounds(self) -> QuestionArgs:
        """Require min <= max <= the number of answers."""
        if not self.min <= self.max <= len(self.answers):
            raise ValueError(f"need min <= max <= answers ({len(self.answers)}); "
                             f"got min {self.min}, max {self.max}")
        return self


class EligibilityArgs(StrictArgs):
    kind: Literal["credential", "list"]
    credential_type: CredentialType | None = None
    list_hash: Annotated[bytes, Field(min_length=32, max_length=32)] | None = None

    @model_validator(mode="after")
    def check_kind(self) -> EligibilityArgs:
        """A credential rule names a credential type; a list rule the list's SHA-256."""
        if self.kind == "credential" and (self.credential_type is None or self.list_hash):
            raise ValueError("eligibility 'credential' takes credential_type only")
        if self.kind == "list" and (self.list_hash is None or self.credential_type):
            raise ValueError("eligibility 'list' takes list_hash only")
        return self


class TrusteeArgs(StrictArgs):
    chain_key: ChainKey
    # An n-of-n trustee's Belenios public key; none for a threshold trustee, whose keys are
    # in the poll's threshold_parameters.
    public_key: Annotated[str, StringConstraints(min_length=1,
                                                 max_length=TRUSTEE_KEY_CHARS_MAX)] | None = None


class CreatePollArgs(StrictArgs):
    poll_id: PollId
    title: Title
    questions: Annotated[list[QuestionArgs], Field(min_length=1, max_length=POLL_QUESTIONS_MAX)]
    eligibility: EligibilityArgs
    open_height: Height
    close_height: Height
    trustees: Annotated[list[TrusteeArgs], Field(min_length=1, max_length=POLL_TRUSTEES_MAX)]
    threshold: Annotated[int, Field(ge=1, le=POLL_TRUSTEES_MAX)]
    # A threshold poll's Pedersen item (belenios-tool's threshold.json); None: n-of-n.
    threshold_parameters: Annotated[str, StringConstraints(
        min_length=2, max_length=THRESHOLD_PARAMETERS_CHARS_MAX)] | None = None


class AddCredentialsArgs(StrictArgs):
    poll_id: PollId
    credentials: Annotated[list[Credential], Field(min_length=1,
                                                   max_length=CREDENTIALS_PER_TX_MAX)]


class CastArgs(StrictArgs):
    poll_id: PollId
    ballot: Annotated[str, StringConstraints(min_length=2, max_length=BALLOT_CHARS_MAX)]

    @model_validator(mode="after")
    def check_ballot_shape(self) -> CastArgs:
        """Refuse at admission a ballot that is not a Belenios ballot object (the proofs need
        the poll's election, so they are checked when the transaction executes)."""
        try:
            require_dict(load_json(self.ballot, "ballot"), BALLOT_FIELDS, "ballot")
        except MalformedVotingData as exc:
            raise ValueError(str(exc)) from None
        return self


class PollArgs(StrictArgs):
    poll_id: PollId


class DecryptArgs(StrictArgs):
    poll_id: PollId
    share: Annotated[str, StringConstraints(min_length=2, max_length=SHARE_CHARS_MAX)]


class ResultArgs(StrictArgs):
    poll_id: PollId
    result: Annotated[str, StringConstraints(min_length=2, max_length=RESULT_CHARS_MAX)]


class PollQuery(QueryArgs):
    poll_id: PollId


class BallotsQuery(QueryArgs):
    poll_id: PollId
    start: Annotated[int, Field(ge=0, le=2**32)] = 0
    limit: Annotated[int, Field(ge=1, le=BALLOTS_PAGE_MAX)] = BALLOTS_PAGE_MAX


class CredentialsQuery(QueryArgs):
    poll_id: PollId
    start: Annotated[int, Field(ge=0, le=2**32)] = 0
    limit: Annotated[int, Field(ge=1, le=CREDENTIALS_PER_TX_MAX)] = CREDENTIALS_PER_TX_MAX


def compute_poll_key(poll_id: str) -> bytes:
    return b"poll/" + poll_id.encode()


def compute_credential_key(poll_id: str, credential: str) -> bytes:
    return b"cred/" + poll_id.encode() + b"/" + sha256(credential.encode())


def compute_credential_index_key(poll_id: str, index: int) -> bytes:
    return b"credidx/" + poll_id.encode() + b"/" + index.to_bytes(4, "big")


def compute_ballot_key(poll_id: str, number: int) -> bytes:
    return b"ballot/" + poll_id.encode() + b"/" + number.to_bytes(4, "big")


def compute_share_key(poll_id: str, trustee: int) -> bytes:
    return b"share/" + poll_id.encode() + b"/" + trustee.to_bytes(1, "big")


def compute_uuid(tx_hash: bytes) -> str:
    """Return the election uuid derived from the creating transaction (Base58, 14+ chars)."""
    return base58.b58encode(tx_hash[:UUID_SOURCE_BYTES]).decode()


@lru_cache(maxsize=ELECTIONS_CACHED)
def load_election(text: str) -> Election:
    """Return a poll's election parsed from its stored text (a pure function, memoised)."""
    return parse_election(text.encode())


def parse_trustee_keys(texts: list[str]) -> list[TrusteePublicKey]:
    """Parse the trustees' public keys (Belenios trustee_public_key JSON texts)."""
    group = get_group(GROUP_NAME)
    return [parse_trustee_public_key(group, load_json(text, f"trustee {index}'s key"),
                                     f"trustee {index}'s key")
            for index, text in enumerate(texts)]


@lru_cache(maxsize=THRESHOLD_PARAMETERS_CACHED)
def load_threshold_parameters(text: str) -> ThresholdTrustees:
    """Return threshold parameters parsed, every signature, proof and verification key
    checked (a pure function, memoised)."""
    return parse_threshold_trustees(get_group(GROUP_NAME),
                                    load_json(text, "threshold parameters"),
                                    "threshold parameters")


def dump_verification_keys(parameters: ThresholdTrustees) -> list[str]:
    """Return the threshold trustees' verification keys as trustee public key texts."""
    return [dump_json(key.to_json()) for key in parameters.verification_keys]


def load_trustee_items(trustee_keys: list[str], threshold_parameters: str | None,
                       ) -> list[TrusteeItem]:
    """Return a poll's trustees as Belenios items: a "Single" per key, or one "Pedersen"."""
    if threshold_parameters is None:
        return list(parse_trustee_keys(trustee_keys))
    return [load_threshold_parameters(threshold_parameters)]


def compute_election_text(uuid: str, title: str, questions: list[dict[str, Any]],
                          trustee_keys: list[str], threshold_parameters: str | None = None,
                          ) -> str:
    """Return the election a poll's settings make: its key the product of the trustees'
    keys, each proof of knowledge checked; or, with threshold parameters, the key they
    make (the trustee keys must then be their verification keys)."""
    group = get_group(GROUP_NAME)
    if threshold_parameters is None:
        public_key = combine_trustee_keys(group, parse_trustee_keys(trustee_keys))
    else:
        parameters = load_threshold_parameters(threshold_parameters)
        if trustee_keys != dump_verification_keys(parameters):
            raise BadTrusteeKey("the trustees' keys are not the threshold parameters' "
                                "verification keys")
        public_key = compute_election_key(group, [parameters])
    election = make_election(
        uuid=uuid, name=title, description=title, group=group, public_key=public_key,
        questions=[Question(item["question"], tuple(item["answers"]), item["min"],
                            item["max"], item["blank"]) for item in questions])
    return election.raw.decode()


def check_public_credential(text: str) -> None:
    """Refuse a public credential that is not a group element written canonically."""
    value = parse_element(get_group(GROUP_NAME), text, "public credential")
    if str(value) != text:
        raise MalformedVotingData("a public credential is written without leading zeros")


def check_cast_ballot(election: Election, ballot: str, credential: str) -> None:
    """Run every admission check of a ballot whose credential is published (weight 1)."""
    verify_ballot(election, ballot.encode(), PublicCredentials({mpz(credential): 1}))


# A ballot check's verdict: None when the ballot passed, else its refusal as the error's
# class and the one argument that rebuilds the same error.
BallotVerdict = tuple[type[Exception], str] | None
# Verdicts of `compute_ballot_verdict` by its arguments, oldest evicted first: a memo of a
# pure function, filled by `verify_cast_ballot` or by a node's precheck workers.
_ballot_verdicts: OrderedDict[tuple[str, str, str], BallotVerdict] = OrderedDict()


def rebuild_refusal(refusal: tuple[type[Exception], str]) -> Exception:
    """Return the error a refused ballot's verdict stands for."""
    error_class, detail = refusal
    return error_class(detail)


def compute_ballot_verdict(election_text: str, ballot: str, credential: str) -> BallotVerdict:
    """Run `check_cast_ballot` and return its verdict (a pure function; a node runs it in
    worker processes); an error the verdict cannot rebuild exactly is raised instead."""
    try:
        check_cast_ballot(load_election(election_text), ballot, credential)
    except (MalformedVotingData, VotingCheckFailed, VotingUsageError) as exc:
        refusal = (type(exc), exc.detail if isinstance(exc, VotingCheckFailed) else str(exc))
        if str(rebuild_refusal(refusal)) != str(exc):
            raise
        return refusal
    return None


def record_ballot_verdict(verdict: BallotVerdict, election_text: str, ballot: str,
                          credential: str) -> None:
    """Remember `compute_ballot_verdict`'s verdict on these arguments (bounded)."""
    _ballot_verdicts[(election_text, ballot, credential)] = verdict
    _ballot_verdicts.move_to_end((election_text, ballot, credential))
    if len(_ballot_verdicts) > VERIFIED_BALLOTS_CACHED:
        _ballot_verdicts.popitem(last=False)


def verify_cast_ballot(election_text: str, ballot: str, credential: str) -> None:
    """`check_cast_ballot`, memoised for the node: its verdict, computed here or recorded by
    a precheck, is a pure function of its arguments; a refusal raises the same error."""
    key = (election_text, ballot, credential)
    verdict = _ballot_verdicts[key] if key in _ballot_verdicts else compute_ballot_verdict(*key)
    record_ballot_verdict(verdict, *key)
    if verdict is not None:
        raise rebuild_refusal(verdict)


def prepare_cast_precheck(state: ServiceState, args: CastArgs) -> Precheck | None:
    """Return the proof check `cast` would run on this ballot, for a node to run ahead; None
    when committed state has it refused before its proofs, or its verdict is known."""
    poll = state.get(compute_poll_key(args.poll_id))
    ballot = load_json(args.ballot, "ballot")  # an object: CastArgs checked its shape
    credential = ballot.get("credential")
    if (poll is None or not isinstance(credential, str)
            or not state.has(compute_credential_key(args.poll_id, credential))):
        return None
    key = (poll["election"], args.ballot, credential)
    if key in _ballot_verdicts:
        return None
    return Precheck(compute_ballot_verdict, record_ballot_verdict, key)


def compute_tally_batch(election: Election, ballots: list[str]) -> EncryptedTally:
    """Return the encrypted tally of admitted ballots, one per credential (weight 1).

    The ballots passed every check when they were cast, so their ciphertexts are read
    without repeating the group membership checks (one exponentiation per number)."""
    group = election.group
    answers = [load_json(ballot, "ballot")["answers"] for ballot in ballots]
    rows = []
    for index, question in enumerate(election.questions):
        rows.append(tuple(
            combine(group, [parse_ciphertext(group, answer[index]["choices"][choice],
                                             "choice", check_members=False)
                            for answer in answers])
            for choice in range(question.choice_count)))
    return EncryptedTally(tuple(rows), len(ballots), len(ballots))


def add_tallies(election: Election, left: EncryptedTally, right: EncryptedTally
                ) -> EncryptedTally:
    """Return the homomorphic sum of two encrypted tallies of disjoint ballots."""
    rows = tuple(tuple(combine(election.group, [one, other])
                       for one, other in zip(left_row, right_row, strict=True))
                 for left_row, right_row in zip(left.ciphertexts, right.ciphertexts,
                                                strict=True))
    return EncryptedTally(rows, left.num_tallied + right.num_tallied,
                          left.total_weight + right.total_weight)


def dump_tally(tally: EncryptedTally) -> dict[str, Any]:
    """Return an encrypted tally as stored: its JSON text and counts."""
    return {"ciphertexts": tally.to_json().decode(), "num_tallied": tally.num_tallied,
            "total_weight": tally.total_weight}


def load_tally(election: Election, stored: dict[str, Any]) -> EncryptedTally:
    """Return a stored encrypted tally, parsed."""
    return parse_encrypted_tally(election, stored["ciphertexts"].encode(),
                                 stored["num_tallied"], stored["total_weight"])


def verify_share(election: Election, tally: EncryptedTally, trustee_key: str,
                 share: str) -> None:
    """Refuse a partial decryption unless its proofs verify for the trustee and tally."""
    verify_partial_decryption(election, tally, parse_trustee_keys([trustee_key])[0],
                              parse_partial_decryption(election, share.encode()))


def load_partials(election: Election, shares: list[str | None],
                  ) -> dict[int, PartialDecryption]:
    """Return the posted partial decryptions keyed by owner number (trustee index + 1)."""
    return {owner: parse_partial_decryption(election, share.encode())
            for owner, share in enumerate(shares, start=1) if share is not None}


def check_result(election: Election, tally: EncryptedTally, trustee_keys: list[str],
                 shares: list[str | None], result: str,
                 threshold_parameters: str | None = None) -> str:
    """Return the result's canonical text, or refuse unless it is what the shares decrypt
    (every trustee's for n-of-n; t of them, Lagrange-combined, for a threshold poll)."""
    counts = parse_result(election, result.encode())
    verify_items_result(election, tally, load_trustee_items(trustee_keys,
                                                            threshold_parameters),
                        load_partials(election, shares), counts)
    return dump_result(counts).decode()


def compute_trustee_keys(args: CreatePollArgs) -> list[str]:
    """Return each trustee's key as the poll records it (its Belenios key, or its threshold
    verification key), refusing trustees that do not fit the threshold."""
    chain_keys = [trustee.chain_key for trustee in args.trustees]
    if len(set(chain_keys)) != len(chain_keys):
        raise ServiceError("each trustee has a chain key of its own")
    given = [trustee.public_key for trustee in args.trustees]
    if args.threshold_parameters is None:
        if args.threshold != len(args.trustees):
            raise ServiceError(f"every trustee decrypts: threshold must be "
                               f"{len(args.trustees)}, the number of trustees (or give "
                               f"threshold parameters)")
        if any(key is None for key in given):
            raise ServiceError("an n-of-n trustee needs its Belenios public key")
        return [key for key in given if key is not None]
    if any(key is not None for key in given):
        raise ServiceError("a threshold trustee's keys are in the threshold parameters, "
                           "not given per trustee")
    if not 1 <= args.threshold <= len(args.trustees):
        raise ServiceError(f"a threshold poll needs 1 <= threshold <= {len(args.trustees)}, "
                           f"the number of trustees; got {args.threshold}")
    parameters = check_crypto("the threshold parameters", load_threshold_parameters,
                              args.threshold_parameters)
    count = len(parameters.verification_keys)
    if count != len(args.trustees):
        raise ServiceError(f"the threshold parameters are of {count} trustees; the poll "
                           f"names {len(args.trustees)} chain keys")
    if args.threshold != parameters.threshold:
        raise ServiceError(f"threshold {args.threshold} is not the threshold parameters' "
                           f"{parameters.threshold} of {count}")
    return dump_verification_keys(parameters)


def get_poll(state: ServiceState, poll_id: str) -> dict[str, Any]:
    """Return a poll's record or refuse an unknown poll."""
    poll = state.get(compute_poll_key(poll_id))
    if poll is None:
        raise ServiceError(f"no poll {poll_id!r}")
    return poll


def compute_phase(poll: dict[str, Any], height: int) -> str:
    """Return a poll's phase at `height`: setup, open, closed, tallied, decrypted or final."""
    if poll["result"] is not None:
        return "final"
    if poll["tally"] is not None:
        return "decrypted" if poll["shares_count"] >= poll["threshold"] else "tallied"
    if height >= poll["close_height"]:
        return "closed"
    return "open" if height >= poll["open_height"] else "setup"


def require_phase(poll: dict[str, Any], height: int, *phases: str) -> None:
    """Refuse unless the poll is in one of `phases` at `height`."""
    phase = compute_phase(poll, height)
    if phase not in phases:
        raise ServiceError(f"poll {poll['poll_id']!r} is {phase} at height {height}; this "
                           f"needs it {' or '.join(phases)} (opens at {poll['open_height']}, "
                           f"closes at {poll['close_height']})")


def check_crypto(what: str, check: Any, *args: Any) -> Any:
    """Run a voting check; refuse with its reason if it fails."""
    try:
        return check(*args)
    except (MalformedVotingData, VotingCheckFailed, VotingUsageError) as exc:
        raise ServiceError(f"{what} refused: {exc}") from exc


def require_eligible_holders(ctx: TxContext, credential_type: str, total: int) -> None:
    """Refuse `total` credentials for a poll of `credential_type` holders when fewer
    credentials of the type are anchored and not revoked in `vc` at this height (counted
    from vc 1.1.0 on; a chain running vc 1.0.0 keeps no counts and is not capped)."""
    if not is_counting_version(ctx.get_platform().get_version(VC_SERVICE)):
        return
    counts = get_type_count(ctx.read_service_state(VC_SERVICE), credential_type)
    live = counts["anchored"] - counts["revoked"]
    if total > live:
        raise ServiceError(f"this would publish {total} credentials for a poll of "
                           f"{credential_type} holders, but only {live} {credential_type} "
                           f"credentials are anchored and not revoked at height {ctx.height}")


class VoteService(Service):
    """Polls with Belenios 2.0 ballots: create, publish credentials, cast, tally, decrypt."""

    name = "vote"
    version = "1.1.0"

    @tx_method(args=CreatePollArgs, roles={ORGANISER_ROLE})
    def create_poll(self, ctx: TxContext, args: CreatePollArgs) -> None:
        """Create a poll: questions, eligibility, heights, trustees; the election is fixed."""
        if ctx.state.has(compute_poll_key(args.poll_id)):
            raise ServiceError(f"poll {args.poll_id!r} already exists")
        if not ctx.height < args.open_height < args.close_height:
            raise ServiceError(f"need this height {ctx.height} < open_height "
                               f"{args.open_height} < close_height {args.close_height}")
        choices = sum(len(question.answers) + question.blank for question in args.questions)
        if choices > POLL_CHOICES_MAX:
            raise ServiceError(f"a poll has at most {POLL_CHOICES_MAX} choices (answers and "
                               f"blank flags) in all, so that a ballot fits a transaction; "
                               f"this one has {choices}")
        trustee_keys = compute_trustee_keys(args)
        questions = [question.model_dump() for question in args.questions]
        election = check_crypto("the election", compute_election_text,
                                compute_uuid(ctx.tx_hash), args.title, questions,
                                trustee_keys, args.threshold_parameters)
        poll = {"poll_id": args.poll_id, "title": args.title, "organiser": ctx.signer,
                "questions": questions, "eligibility": args.eligibility.model_dump(),
                "open_height": args.open_height, "close_height": args.close_height,
                "created_height": ctx.height, "threshold": args.threshold,
                "trustees": [{"chain_key": trustee.chain_key, "public_key": key}
                             for trustee, key in zip(args.trustees, trustee_keys, strict=True)],
                "election": election, "election_hash": load_election(election).fingerprint,
                "credentials_count": 0, "ballots_count": 0, "voted_count": 0,
                "closed_height": None, "tally": None, "tally_progress": 0,
                "tally_sum": None, "shares_count": 0, "result": None}
        if args.threshold_parameters is not None:
            poll["threshold_parameters"] = dump_json(
                load_threshold_parameters(args.threshold_parameters).to_json())
        ctx.state.set(compute_poll_key(args.poll_id), poll)
        ctx.emit("vote.created", poll_id=args.poll_id, organiser=ctx.signer,
                 election_hash=poll["election_hash"])

    @tx_method(args=AddCredentialsArgs, roles={ORGANISER_ROLE})
    def add_credentials(self, ctx: TxContext, args: AddCredentialsArgs) -> None:
        """Publish public credentials of eligible voters, before the poll opens (a poll of
        a credential type's holders: no more in all than that type's live credentials)."""
        poll = self.get_own_poll(ctx, args.poll_id)
        require_phase(poll, ctx.height, "setup")
        if len(set(args.credentials)) != len(args.credentials):
            raise ServiceError("a credential appears twice in this batch")
        if poll["credentials_count"] + len(args.credentials) > CREDENTIALS_MAX:
            raise ServiceError(f"a poll has at most {CREDENTIALS_MAX} credentials")
        if poll["eligibility"]["kind"] == "credential":
            require_eligible_holders(ctx, poll["eligibility"]["credential_type"],
                                     poll["credentials_count"] + len(args.credentials))
        for credential in args.credentials:
            check_crypto(f"credential {credential[:16]}...", check_public_credential,
                         credential)
            key = compute_credential_key(args.poll_id, credential)
            if ctx.state.has(key):
                raise ServiceError(f"credential {credential[:16]}... is already published")
            index = poll["credentials_count"]
            ctx.state.set(key, {"index": index, "ballot": None, "cast": 0})
            ctx.state.set(compute_credential_index_key(args.poll_id, index), credential)
            poll["credentials_count"] = index + 1
        ctx.state.set(compute_poll_key(args.poll_id), poll)
        ctx.emit("vote.credentials", poll_id=args.poll_id, added=len(args.credentials),
                 total=poll["credentials_count"])

    @tx_method(args=CastArgs, roles=None, admitted_only=True, precheck=prepare_cast_precheck)
    def cast(self, ctx: TxContext, args: CastArgs) -> None:
        """Cast a ballot: its credential, election and every proof are checked; it replaces
        the credential's earlier ballot."""
        poll = get_poll(ctx.state, args.poll_id)
        require_phase(poll, ctx.height, "open")
        ballot = check_crypto("ballot", load_json, args.ballot, "ballot")
        credential = ballot.get("credential") if isinstance(ballot, dict) else None
        if not isinstance(credential, str):
            raise ServiceError("the ballot names no credential")
        key = compute_credential_key(args.poll_id, credential)
        record = ctx.state.get(key)
        if record is None:
            raise ServiceError(f"credential {credential[:16]}... is not published for "
                               f"poll {args.poll_id!r}")
        if record["cast"] >= BALLOTS_PER_CREDENTIAL_MAX:
            raise ServiceError(f"this credential has cast {record['cast']} ballots, the most "
                               f"one credential may ({BALLOTS_PER_CREDENTIAL_MAX})")
        check_crypto("ballot", verify_cast_ballot, poll["election"], args.ballot, credential)
        number = poll["ballots_count"]
        ballot_hash = sha256(args.ballot.encode())
        ctx.state.set(compute_ballot_key(args.poll_id, number), {
            "credential": credential, "ballot": args.ballot, "hash": ballot_hash,
            "height": ctx.height, "replaces": record["ballot"]})
        if record["ballot"] is None:
            poll["voted_count"] += 1
        record["ballot"] = number
        record["cast"] += 1
        ctx.state.set(key, record)
        poll["ballots_count"] = number + 1
        ctx.state.set(compute_poll_key(args.poll_id), poll)
        ctx.emit("vote.cast", poll_id=args.poll_id, ballot_hash=ballot_hash, number=number)

    @tx_method(args=PollArgs, roles={ORGANISER_ROLE})
    def close(self, ctx: TxContext, args: PollArgs) -> None:
        """Close an open poll now, before its close height (its organiser only)."""
        poll = self.get_own_poll(ctx, args.poll_id)
        require_phase(poll, ctx.height, "open", "setup")
        poll["close_height"] = ctx.height
        poll["closed_height"] = ctx.height
        ctx.state.set(compute_poll_key(args.poll_id), poll)
        ctx.emit("vote.closed", poll_id=args.poll_id, height=ctx.height)

    @tx_method(args=PollArgs, roles=None)
    def tally(self, ctx: TxContext, args: PollArgs) -> None:
        """Sum the next TALLY_BATCH_BALLOTS counted ballots; the last batch commits the tally."""
        poll = get_poll(ctx.state, args.poll_id)
        require_phase(poll, ctx.height, "closed")
        election = load_election(poll["election"])
        start = poll["tally_progress"]
        end = min(start + TALLY_BATCH_BALLOTS, poll["credentials_count"])
        batch = compute_tally_batch(election, self.get_counted_ballots(ctx.state, poll,
                                                                       start, end))
        if poll["tally_sum"] is not None:
            batch = add_tallies(election, load_tally(election, poll["tally_sum"]), batch)
        poll["tally_sum"] = dump_tally(batch)
        poll["tally_progress"] = end
        if end == poll["credentials_count"]:
            poll["tally"] = poll["tally_sum"]
            ctx.emit("vote.tallied", poll_id=args.poll_id, counted=batch.num_tallied)
        ctx.state.set(compute_poll_key(args.poll_id), poll)

    def get_counted_ballots(self, state: ServiceState, poll: dict[str, Any], start: int,
                            end: int) -> list[str]:
        """Return the counted ballot texts of the credentials with index start..end-1."""
        ballots = []
        for index in range(start, end):
            credential = state.get(compute_credential_index_key(poll["poll_id"], index))
            number = state.get(compute_credential_key(poll["poll_id"], credential))["ballot"]
            if number is not None:
                ballots.append(state.get(compute_ballot_key(poll["poll_id"], number))["ballot"])
        return ballots

    @tx_method(args=DecryptArgs, roles=None)
    def decrypt(self, ctx: TxContext, args: DecryptArgs) -> None:
        """Record a trustee's partial decryption of the tally, its proofs checked."""
        poll = get_poll(ctx.state, args.poll_id)
        require_phase(poll, ctx.height, "tallied", "decrypted")
        trustee = next((index for index, item in enumerate(poll["trustees"])
                        if item["chain_key"] == ctx.signer), None)
        if trustee is None:
            raise ServiceError(f"the signer is not a trustee of poll {args.poll_id!r}")
        if ctx.state.has(compute_share_key(args.poll_id, trustee)):
            raise ServiceError(f"trustee {trustee} already decrypted poll {args.poll_id!r}")
        election = load_election(poll["election"])
        check_crypto(f"trustee {trustee}'s partial decryption", verify_share, election,
                     load_tally(election, poll["tally"]),
                     poll["trustees"][trustee]["public_key"], args.share)
        ctx.state.set(compute_share_key(args.poll_id, trustee), args.share)
        poll["shares_count"] += 1
        ctx.state.set(compute_poll_key(args.poll_id), poll)
        ctx.emit("vote.decrypted", poll_id=args.poll_id, trustee=trustee)

    @tx_method(args=ResultArgs, roles=None)
    def publish_result(self, ctx: TxContext, args: ResultArgs) -> None:
        """Record the result, refused unless it is what the trustees' shares decrypt to."""
        poll = get_poll(ctx.state, args.poll_id)
        require_phase(poll, ctx.height, "tallied", "decrypted")
        if poll["shares_count"] < poll["threshold"]:
            raise ServiceError(
                f"poll {args.poll_id!r} is tallied at height {ctx.height} but its result "
                f"needs {poll['threshold'] - poll['shares_count']} more partial "
                f"decryption(s): {poll['shares_count']} of the {poll['threshold']} needed "
                f"are posted")
        election = load_election(poll["election"])
        shares = [ctx.state.get(compute_share_key(args.poll_id, index))
                  for index in range(len(poll["trustees"]))]
        poll["result"] = check_crypto(
            "the result", check_result, election, load_tally(election, poll["tally"]),
            [trustee["public_key"] for trustee in poll["trustees"]], shares, args.result,
            poll.get("threshold_parameters"))
        ctx.state.set(compute_poll_key(args.poll_id), poll)
        ctx.emit("vote.result", poll_id=args.poll_id,
                 result_hash=sha256(poll["result"].encode()))

    def check_invariants(self, entries: Iterable[tuple[bytes, Any]]) -> list[str]:
        """Check each poll's counts against its entries: credentials, ballots, voters, shares."""
        polls: dict[str, dict[str, Any]] = {}
        counts: dict[str, Counter[str]] = {}
        for key, value in entries:
            kind, _, rest = key.partition(b"/")
            poll_id = rest.split(b"/", 1)[0].decode()
            if kind == b"poll":
                polls[poll_id] = value
                continue
            tally = counts.setdefault(poll_id, Counter())
            tally[kind.decode()] += 1
            if kind == b"cred" and value["ballot"] is not None:
                tally["voted"] += 1
        problems = []
        for poll_id, poll in polls.items():
            found = counts.get(poll_id, Counter())
            expected = {"cred": poll["credentials_count"], "credidx": poll["credentials_count"],
                        "ballot": poll["ballots_count"], "voted": poll["voted_count"],
                        "share": poll["shares_count"]}
            problems += [f"poll {poll_id!r} counts {number} {name} entries but has "
                         f"{found[name]}" for name, number in expected.items()
                         if found[name] != number]
        problems += [f"entries of poll {poll_id!r}, which does not exist"
                     for poll_id in counts if poll_id not in polls]
        return problems

    def get_own_poll(self, ctx: TxContext, poll_id: str) -> dict[str, Any]:
        """Return a poll the signer organises, or refuse."""
        poll = get_poll(ctx.state, poll_id)
        if poll["organiser"] != ctx.signer:
            raise ServiceError(f"only poll {poll_id!r}'s organiser may do this")
        return poll

    @query(args=PollQuery)
    def poll(self, state: ServiceState, args: PollQuery) -> dict[str, Any] | None:
        """Return a poll's record: questions, eligibility, heights, trustees, election."""
        poll = state.get(compute_poll_key(args.poll_id))
        if poll is None:
            return None
        return {key: value for key, value in poll.items() if key != "tally_sum"}

    @query(args=PollQuery)
    def turnout(self, state: ServiceState, args: PollQuery) -> dict[str, Any] | None:
        """Return how many credentials voted, of how many, and the ballots cast."""
        poll = state.get(compute_poll_key(args.poll_id))
        if poll is None:
            return None
        return {"poll_id": args.poll_id, "voted": poll["voted_count"],
                "credentials": poll["credentials_count"], "ballots": poll["ballots_count"]}

    @query(args=BallotsQuery)
    def ballots(self, state: ServiceState, args: BallotsQuery) -> list[dict[str, Any]]:
        """Return ballots from number `start` in cast order, each with whether it counts."""
        poll = state.get(compute_poll_key(args.poll_id))
        if poll is None:
            return []
        page = []
        for number in range(args.start, min(args.start + args.limit, poll["ballots_count"])):
            stored = state.get(compute_ballot_key(args.poll_id, number))
            counted = state.get(compute_credential_key(args.poll_id, stored["credential"]))
            page.append({"number": number, "counted": counted["ballot"] == number, **stored})
        return page

    @query(args=CredentialsQuery)
    def credentials(self, state: ServiceState, args: CredentialsQuery) -> list[str]:
        """Return the published public credentials from index `start`, in order."""
        poll = state.get(compute_poll_key(args.poll_id))
        if poll is None:
            return []
        end = min(args.start + args.limit, poll["credentials_count"])
        return [state.get(compute_credential_index_key(args.poll_id, index))
                for index in range(args.start, end)]

    @query(args=PollQuery)
    def shares(self, state: ServiceState, args: PollQuery) -> list[str | None]:
        """Return each trustee's partial decryption (JSON text) or None if not yet posted."""
        poll = state.get(compute_poll_key(args.poll_id))
        if poll is None:
            return []
        return [state.get(compute_share_key(args.poll_id, index))
                for index in range(len(poll["trustees"]))]

    @query(args=PollQuery)
    def result(self, state: ServiceState, args: PollQuery) -> dict[str, Any] | None:
        """Return a poll's published result (None until it is published)."""
        poll = state.get(compute_poll_key(args.poll_id))
        if poll is None or poll["result"] is None:
            return None
        return {"poll_id": args.poll_id, "result": json.loads(poll["result"]),
                "voted": poll["voted_count"], "election_hash": poll["election_hash"]}
