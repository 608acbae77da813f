"""Universal verification of a poll from chain data alone, and the reads it needs.

Theory of operation. `fetch_poll_data` reads, through a node's API, everything the `vote`
service recorded of a poll: its record (election, trustees, tally, result), the published
public credentials, every ballot cast (re-votes included) and the trustees' partial
decryptions. `verify_poll` then re-checks, in order, each step anyone can check without
trusting the node or the organiser, and stops at the first that fails, naming it:

1. election: it is the election the poll's title, questions and trustee keys make (each
   trustee key's proof of knowledge verifies; for a threshold poll, every certificate,
   signed commitment and verification key of its threshold parameters, the trustees' keys
   are those verification keys and the election key is the one they make), and its hash is
   the one ballots name;
2. credentials: distinct, each a valid public credential, as many as the poll counts;
3. ballots: each ballot's credential is published and every proof verifies; the counted
   ballot of a credential is its last one; the turnout is the number of such credentials;
4. tally: the homomorphic product of the counted ballots is the committed tally;
5. decryptions: each trustee's partial decryption verifies against its key (a threshold
   trustee's verification key) and the tally;
6. result: the announced result is what the partial decryptions give (for a threshold poll,
   t of them combined with Lagrange coefficients at 0).

`export_poll_archive` writes the same data as a Belenios archive (`UUID.bel`) that
`belenios-tool election verify` checks: n-of-n trustees as "Single" items, a threshold
poll's as its one "Pedersen" item, each posted share under its owner number.

The data can come from a node (a light client's trust in the node's answers is a separate
matter: `seoulchain prove` gives state proofs) or from a `LocalChain` in tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gmpy2 import mpz

from seoulchain.client.http import NodeClient
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto.hashing import sha256
from seoulchain.errors import RemoteError, VerificationError
from seoulchain.services.vote import (
    BALLOTS_PAGE_MAX,
    CREDENTIALS_PER_TX_MAX,
    check_cast_ballot,
    check_public_credential,
    check_result,
    compute_election_text,
    compute_tally_batch,
    dump_tally,
    load_election,
    load_partials,
    load_tally,
    load_threshold_parameters,
    load_trustee_items,
    verify_share,
)
from seoulchain.voting.archive import export_archive
from seoulchain.voting.credential import PublicCredentials
from seoulchain.voting.election import Election
from seoulchain.voting.errors import MalformedVotingData, VotingCheckFailed, VotingUsageError
from seoulchain.voting.tally import EncryptedTally


class PollNotFound(RemoteError):
    """The node knows no poll by that id."""


class PollVerificationFailed(VerificationError):
    """A step of universal verification failed; `step` names it."""

    def __init__(self, step: str, detail: str):
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass
class PollData:
    """What the chain records of one poll."""

    poll: dict[str, Any]
    credentials: list[str]
    ballots: list[dict[str, Any]]
    shares: list[str | None]


@dataclass
class VerificationReport:
    """The steps verified, each with what it covered."""

    poll_id: str
    steps: list[tuple[str, str]] = field(default_factory=list)

    def add(self, step: str, summary: str) -> None:
        self.steps.append((step, summary))


Reader = Callable[..., Any]


def fetch_poll_data(read: Reader, poll_id: str) -> PollData:
    """Read a poll's record, credentials, ballots and shares through `read(name, **args)`."""
    poll = read("poll", poll_id=poll_id)
    if poll is None:
        raise PollNotFound(f"no poll {poll_id!r} on this chain")
    credentials: list[str] = []
    while len(credentials) < poll["credentials_count"]:
        page = read("credentials", poll_id=poll_id, start=len(credentials),
                    limit=CREDENTIALS_PER_TX_MAX)
        if not page:
            raise RemoteError(f"the node returned {len(credentials)} of "
                              f"{poll['credentials_count']} credentials")
        credentials.extend(page)
    ballots: list[dict[str, Any]] = []
    while len(ballots) < poll["ballots_count"]:
        page = read("ballots", poll_id=poll_id, start=len(ballots), limit=BALLOTS_PAGE_MAX)
        if not page:
            raise RemoteError(f"the node returned {len(ballots)} of "
                              f"{poll['ballots_count']} ballots")
        ballots.extend(page)
    return PollData(poll, credentials, ballots, read("shares", poll_id=poll_id))


def make_node_reader(client: NodeClient) -> Reader:
    """Return a reader of the `vote` service's queries through a node's API."""
    def read(name: str, **args: Any) -> Any:
        return client.query("vote", name, **args)["result"]
    return read


def make_engine_reader(engine: Any) -> Reader:
    """Return a reader of the `vote` queries on an engine, in the API's JSON shapes."""
    def read(name: str, **args: Any) -> Any:
        return to_jsonable(engine.query("vote", name, args))
    return read


def run_step(step: str, check: Callable[..., Any], *args: Any) -> Any:
    """Run a check; turn a voting failure into a failure of `step`."""
    try:
        return check(*args)
    except (MalformedVotingData, VotingCheckFailed, VotingUsageError) as exc:
        raise PollVerificationFailed(step, str(exc)) from exc


def verify_poll(data: PollData) -> VerificationReport:
    """Re-check a poll from its chain data, step by step; raise at the first failure."""
    poll = data.poll
    report = VerificationReport(poll["poll_id"])
    election = verify_election(poll, report)
    verify_credentials(data, report)
    counted = verify_ballots(data, election, report)
    if poll["tally"] is None:
        report.add("tally", "not yet tallied")
        return report
    tally = verify_tally(poll, election, counted, report)
    verify_shares(data, election, tally, report)
    if poll["result"] is None:
        report.add("result", "not yet published")
        return report
    keys = [trustee["public_key"] for trustee in poll["trustees"]]
    canonical = run_step("result", check_result, election, tally, keys, data.shares,
                         poll["result"], poll.get("threshold_parameters"))
    if canonical != poll["result"]:
        raise PollVerificationFailed("result", "the result is not in its canonical form")
    combined = ("" if poll.get("threshold_parameters") is None else
                f" ({poll['threshold']} of them combined with Lagrange coefficients)")
    report.add("result", f"{poll['result']} is what the partial decryptions give{combined}")
    return report


def verify_election(poll: dict[str, Any], report: VerificationReport) -> Election:
    """Step 1: the election is the one the poll's settings and trustee keys make."""
    uuid = run_step("election", load_election, poll["election"]).uuid
    parameters = poll.get("threshold_parameters")
    rebuilt = run_step("election", compute_election_text, uuid, poll["title"],
                       poll["questions"], [trustee["public_key"] for trustee in poll["trustees"]],
                       parameters)
    if rebuilt != poll["election"]:
        raise PollVerificationFailed("election", "the election is not the one the poll's "
                                                 "questions and trustee keys make")
    election = load_election(rebuilt)
    if election.fingerprint != poll["election_hash"]:
        raise PollVerificationFailed("election", "the election hash does not match")
    count = len(poll["trustees"])
    if parameters is None:
        checked = f"{count} trustee keys with valid proofs"
    else:
        threshold = run_step("election", load_threshold_parameters, parameters).threshold
        if threshold != poll["threshold"]:
            raise PollVerificationFailed("election", "the poll's threshold is not its "
                                                     "threshold parameters'")
        checked = (f"threshold {threshold} of {count}: certificates, signed commitments and "
                   f"verification keys valid")
    report.add("election", f"{checked}; election hash {election.fingerprint}")
    return election


def verify_credentials(data: PollData, report: VerificationReport) -> None:
    """Step 2: the credentials are distinct valid public credentials, as many as counted."""
    if len(data.credentials) != data.poll["credentials_count"]:
        raise PollVerificationFailed("credentials", "the list's length is not the count")
    if len(set(data.credentials)) != len(data.credentials):
        raise PollVerificationFailed("credentials", "a credential is published twice")
    for credential in data.credentials:
        run_step("credentials", check_public_credential, credential)
    report.add("credentials", f"{len(data.credentials)} distinct public credentials")


def verify_ballots(data: PollData, election: Election,
                   report: VerificationReport) -> list[str]:
    """Step 3: every ballot verifies; return each credential's last ballot, in list order."""
    published = set(data.credentials)
    last: dict[str, int] = {}
    for number, stored in enumerate(data.ballots):
        step = f"ballot {number}"
        if stored["number"] != number or stored["credential"] not in published:
            raise PollVerificationFailed(step, "its credential is not published")
        if sha256(stored["ballot"].encode()).hex() != stored["hash"]:
            raise PollVerificationFailed(step, "its hash does not match its text")
        run_step(step, check_cast_ballot, election, stored["ballot"], stored["credential"])
        last[stored["credential"]] = number
    wrong = [stored["number"] for stored in data.ballots
             if stored["counted"] != (last[stored["credential"]] == stored["number"])]
    if wrong:
        raise PollVerificationFailed("ballots", f"ballots {wrong[:5]} are marked counted "
                                                f"wrongly (one per credential, the last)")
    if len(last) != data.poll["voted_count"]:
        raise PollVerificationFailed("ballots", f"{len(last)} credentials voted, the poll "
                                                f"says {data.poll['voted_count']}")
    report.add("ballots", f"{len(data.ballots)} ballots with valid proofs; {len(last)} "
                          f"counted, one per credential")
    return [data.ballots[number]["ballot"] for number in last.values()]


def verify_tally(poll: dict[str, Any], election: Election, counted: list[str],
                 report: VerificationReport) -> EncryptedTally:
    """Step 4: the committed tally is the homomorphic sum of the counted ballots."""
    expected = run_step("tally", compute_tally_batch, election, counted)
    if dump_tally(expected) != poll["tally"]:
        raise PollVerificationFailed("tally", "the committed tally is not the sum of the "
                                              "counted ballots")
    report.add("tally", f"the encrypted tally is the sum of the {len(counted)} counted "
                        f"ballots")
    return expected


def verify_shares(data: PollData, election: Election, tally: EncryptedTally,
                  report: VerificationReport) -> None:
    """Step 5: each trustee's partial decryption verifies against its key (a threshold
    trustee's verification key) and the tally."""
    posted = 0
    for index, (trustee, share) in enumerate(zip(data.poll["trustees"], data.shares,
                                                 strict=True)):
        if share is not None:
            run_step(f"decryption of trustee {index}", verify_share, election, tally,
                     trustee["public_key"], share)
            posted += 1
    report.add("decryptions", f"{posted} of {len(data.shares)} partial decryptions, each "
                              f"with valid proofs")


def export_poll_archive(data: PollData, directory: Path) -> Path:
    """Write a poll's chain data as DIRECTORY/UUID.bel; return its path.

    Partial decryptions go in only once enough are posted to decrypt (all for n-of-n, t
    for a threshold poll), so that the archive's stages are those the tool reads."""
    poll = data.poll
    election = load_election(poll["election"])
    tally = load_tally(election, poll["tally"]) if poll["tally"] is not None else None
    partials = load_partials(election, data.shares) if tally is not None else {}
    if len(partials) < poll["threshold"]:
        partials = {}
    result = None
    if poll["result"] is not None:
        result = tuple(tuple(row) for row in json.loads(poll["result"])["result"])
    return export_archive(
        directory, election=election,
        trustees=load_trustee_items([item["public_key"] for item in poll["trustees"]],
                                    poll.get("threshold_parameters")),
        public_credentials=PublicCredentials({mpz(item): 1 for item in data.credentials}),
        ballots=[stored["ballot"].encode() for stored in data.ballots], tally=tally,
        partial_decryptions=partials, result=result)
