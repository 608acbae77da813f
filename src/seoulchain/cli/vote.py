"""`seoulchain vote ...`: Belenios polls on chain, from trustee keys to universal verification.

The organiser (a key with `vote.organiser`) `create`s a poll from a JSON spec (title,
questions, eligibility) with each trustee's chain key and Belenios public key (made by
`trustee-keygen`), then publishes `credentials`: the public parts go on chain, the private
ones into a file the organiser hands out off chain, one per eligible voter. A voter
`cast`s with a private credential from a fresh chain key (nothing links the ballot to the
voter's other transactions), or `audit-ballot`s one first (Benaloh: the ballot is opened,
never cast). After close, `tally` sums the counted ballots; each trustee `decrypt`s with
its private key; `tally` again publishes the result the shares give. Anyone `verify`s the
whole poll from chain data and `export`s it as a Belenios archive for belenios-tool.

Choices are given per question, separated by ';': the numbers (from 1) of the selected
answers separated by ',', nothing for none, or `blank` where the question allows it; e.g.
`--choices "1,3;blank"`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from gmpy2 import mpz

from seoulchain.cli import common
from seoulchain.cli.common import HomeOption, JsonOption, NodeOption, print_json, reports_errors
from seoulchain.cli.exit_codes import EXIT_AUDIT_FAILED, EXIT_NOT_FOUND
from seoulchain.cli.txs import (
    EXPIRY_BLOCKS_DEFAULT,
    KeyOption,
    TimeoutOption,
    get_other_urls,
    report_commit,
    submit_service_tx,
)
from seoulchain.client.http import NodeClient, submit_and_confirm
from seoulchain.client.voting import (
    PollNotFound,
    PollVerificationFailed,
    fetch_poll_data,
    make_node_reader,
    verify_poll,
)
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import OPERATOR_KEY_NAME, Home
from seoulchain.services.vote import (
    CREDENTIALS_PER_TX_MAX,
    GROUP_NAME,
    load_election,
    load_tally,
    parse_trustee_keys,
)
from seoulchain.voting import (
    PublicCredentials,
    audit_ballot,
    compute_partial_decryption,
    compute_public_credential,
    compute_result,
    create_ballot,
    dump_result,
    export_archive,
    generate_credential,
    generate_trustee_key,
    get_group,
    parse_partial_decryption,
    parse_private_key,
)
from seoulchain.voting.election import Election
from seoulchain.voting.errors import MalformedVotingData, VotingCheckFailed, VotingUsageError
from seoulchain.voting.jsonform import dump_json

vote_app = typer.Typer(no_args_is_help=True, help="Polls with Belenios ballots: create, "
                                                  "cast, tally, decrypt, verify, export.")

PollArgument = Annotated[str, typer.Argument(metavar="POLL", help="The poll id.")]
ChoicesOption = Annotated[str, typer.Option(
    "--choices", help="Per question, separated by ';': selected answer numbers from 1 "
                      "separated by ',', or 'blank'. E.g. '1,3;blank'.")]
CredentialOption = Annotated[str, typer.Option(
    "--credential", help="Your private credential (XXX-XXX-XXX-XXX-XXX).")]
# Private files (trustee keys, private credentials) are readable by their owner only.
PRIVATE_FILE_MODE = 0o600


def read_poll(client: NodeClient, poll_id: str) -> dict[str, Any]:
    """Return a poll's record from the node, or raise `PollNotFound`."""
    poll = client.query("vote", "poll", poll_id=poll_id)["result"]
    if poll is None:
        raise PollNotFound(f"no poll {poll_id!r} on this chain")
    return poll


def write_private(path: Path, text: str) -> None:
    """Write a secret file that only its owner may read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def read_text(path: Path, what: str) -> str:
    """Return a file's text or raise a `LocalError` naming it."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LocalError(f"cannot read {what} {path}: {exc}") from None


def parse_choices(election: Election, text: str) -> list[list[int]]:
    """Return the plaintext (0/1 per choice, blank flag first) that `--choices` selects."""
    parts = text.split(";")
    if len(parts) != len(election.questions):
        raise LocalError(f"--choices has {len(parts)} parts; the poll has "
                         f"{len(election.questions)} questions (separate them with ';')")
    plaintext = []
    for index, (question, part) in enumerate(zip(election.questions, parts, strict=True)):
        part = part.strip()
        if part == "blank":
            if not question.blank:
                raise LocalError(f"question {index + 1} does not allow a blank vote")
            plaintext.append([1] + [0] * len(question.answers))
            continue
        try:
            chosen = {int(item) for item in part.split(",") if item.strip()}
        except ValueError:
            raise LocalError(f"--choices part {part!r} is not answer numbers") from None
        if not chosen <= set(range(1, len(question.answers) + 1)):
            raise LocalError(f"question {index + 1} has answers 1 to {len(question.answers)}")
        values = [1 if number in chosen else 0 for number in range(1, len(question.answers) + 1)]
        plaintext.append([0, *values] if question.blank else values)
    return plaintext


def make_ballot(client: NodeClient, poll_id: str, credential: str, choices: str) -> Any:
    """Encrypt and sign a ballot for the poll's election with a private credential."""
    election = load_election(read_poll(client, poll_id)["election"])
    try:
        return create_ballot(election, credential, parse_choices(election, choices))
    except VotingUsageError as exc:
        raise LocalError(f"cannot make this ballot: {exc}") from None


@vote_app.command("trustee-keygen")
@reports_errors
def trustee_keygen(out: Annotated[Path, typer.Option(
        "--out", help="Directory for trustee.privkey (secret) and trustee.pubkey.")],
        json: JsonOption = False) -> None:
    """Make a trustee's Belenios key pair: keep trustee.privkey, give trustee.pubkey."""
    pair = generate_trustee_key(get_group(GROUP_NAME))
    write_private(out / "trustee.privkey", dump_json(str(pair.private_key)))
    (out / "trustee.pubkey").write_text(dump_json(pair.public.to_json()))
    if json:
        print_json({"privkey": str(out / "trustee.privkey"),
                    "pubkey": str(out / "trustee.pubkey")})
    else:
        typer.echo(f"wrote {out / 'trustee.privkey'} (keep it secret) and "
                   f"{out / 'trustee.pubkey'} (give it to the organiser)")


@vote_app.command("create")
@reports_errors
def create(poll_id: PollArgument, home: HomeOption,
           spec: Annotated[Path, typer.Option(
               "--spec", help="JSON: {title, questions: [{question, answers, min, max, "
                              "blank}], eligibility: {kind, credential_type | list_hash}}.")],
           trustee: Annotated[list[str], typer.Option(
               "--trustee", help="KEY=PUBKEY: a trustee's key name in HOME/keys (it signs "
                                 "its decryption) and its trustee.pubkey file; repeat.")],
           opens_in: Annotated[int, typer.Option(min=1, max=1_000_000,
                                                 help="Blocks until the poll opens.")] = 5,
           closes_in: Annotated[int, typer.Option(min=2, max=100_000_000,
                                                  help="Blocks until it closes.")] = 1000,
           node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
           timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Create a poll (the signing --key needs vote.organiser); every trustee must decrypt."""
    try:
        settings = json_load(read_text(spec, "poll spec"))
        args: dict[str, Any] = {"poll_id": poll_id, "title": settings["title"],
                                "questions": settings["questions"],
                                "eligibility": settings["eligibility"]}
        eligibility = dict(args["eligibility"])
        if isinstance(eligibility.get("list_hash"), str):
            eligibility["list_hash"] = bytes.fromhex(eligibility["list_hash"])
        args["eligibility"] = eligibility
    except (KeyError, TypeError, ValueError) as exc:
        raise LocalError(f"{spec} needs title, questions and eligibility (a list_hash in "
                         f"hex): {exc}") from None
    trustees = []
    for item in trustee:
        name, _, path = item.partition("=")
        if not path:
            raise LocalError(f"--trustee {item!r} is not KEY=PUBKEY")
        trustees.append({"chain_key": Home(home).load_key(name).public_key,
                         "public_key": read_text(Path(path), "trustee public key").strip()})
    with common.open_client(home, node) as client:
        height = client.get_status()["height"]
    args.update(trustees=trustees, threshold=len(trustees), open_height=height + opens_in,
                close_height=height + max(closes_in, opens_in + 1))
    report_commit(submit_service_tx(home, node, key, "vote", "create_poll", args, timeout),
                  json)


def json_load(text: str) -> Any:
    """Parse a JSON file's text or raise a `LocalError`."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise LocalError(f"not JSON: {exc}") from None


@vote_app.command("credentials")
@reports_errors
def credentials(poll_id: PollArgument, home: HomeOption,
                count: Annotated[int, typer.Option(min=1, max=1_000_000,
                                                   help="Voters to make credentials for.")],
                out: Annotated[Path, typer.Option(
                    "--out", help="File for the private credentials, one per line: hand "
                                  "one to each eligible voter, off chain.")],
                node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
                timeout: TimeoutOption = 30.0) -> None:
    """Make COUNT credentials; publish the public ones on chain, write the private ones."""
    with common.open_client(home, node) as client:
        election = load_election(read_poll(client, poll_id)["election"])
    private = [generate_credential() for _ in range(count)]
    public = [str(compute_public_credential(election.group, election.uuid, item))
              for item in private]
    write_private(out, "".join(f"{item}\n" for item in private))
    for start in range(0, count, CREDENTIALS_PER_TX_MAX):
        batch = public[start:start + CREDENTIALS_PER_TX_MAX]
        report_commit(submit_service_tx(home, node, key, "vote", "add_credentials",
                                        {"poll_id": poll_id, "credentials": batch}, timeout),
                      False)
    typer.echo(f"published {count} public credentials; the private ones are in {out}")


@vote_app.command("cast")
@reports_errors
def cast(poll_id: PollArgument, home: HomeOption, credential: CredentialOption,
         choices: ChoicesOption, node: NodeOption = None, timeout: TimeoutOption = 30.0,
         json: JsonOption = False) -> None:
    """Cast a ballot from a fresh chain key; a later ballot of yours replaces it."""
    with common.open_client(home, node) as client:
        ballot = make_ballot(client, poll_id, credential, choices)
        status = client.get_status()
        tx = Transaction.create(SigningKey.generate(), chain_id=status["chain_id"], nonce=1,
                                expiry_height=status["height"] + EXPIRY_BLOCKS_DEFAULT,
                                service="vote", method="cast",
                                args={"poll_id": poll_id, "ballot": ballot.raw.decode()})
        committed = submit_and_confirm(client, tx, timeout, get_other_urls(home))
    if not json:
        typer.echo(f"ballot tracker {ballot.tracker}")
    report_commit({"tracker": ballot.tracker, **committed} if json else committed, json)


@vote_app.command("audit-ballot")
@reports_errors
def audit(poll_id: PollArgument, home: HomeOption, credential: CredentialOption,
          choices: ChoicesOption, node: NodeOption = None, json: JsonOption = False) -> None:
    """Benaloh audit: make a ballot, open it with its randomness, never cast it."""
    with common.open_client(home, node) as client:
        ballot = make_ballot(client, poll_id, credential, choices)
        election = load_election(read_poll(client, poll_id)["election"])
    try:
        opened = audit_ballot(election, ballot.raw, ballot.randomness_json())
    except (MalformedVotingData, VotingCheckFailed) as exc:
        raise LocalError(f"the audit failed: {exc}") from None
    matches = [list(row) for row in opened] == [list(row) for row in ballot.plaintext]
    if json:
        print_json({"tracker": ballot.tracker, "opened": opened, "matches": matches,
                    "ballot": ballot.raw.decode(),
                    "randomness": ballot.randomness_json().decode()})
    else:
        typer.echo(f"ballot {ballot.tracker} opens to {[list(row) for row in opened]}: "
                   f"{'it encrypts your choices' if matches else 'NOT your choices'}; an "
                   f"audited ballot is never cast: cast a fresh one")
    if not matches:
        raise typer.Exit(EXIT_AUDIT_FAILED)


@vote_app.command("close")
@reports_errors
def close(poll_id: PollArgument, home: HomeOption, node: NodeOption = None,
          key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
          json: JsonOption = False) -> None:
    """Close the poll now, before its close height (its organiser's --key)."""
    report_commit(submit_service_tx(home, node, key, "vote", "close", {"poll_id": poll_id},
                                    timeout), json)


@vote_app.command("tally")
@reports_errors
def tally(poll_id: PollArgument, home: HomeOption, node: NodeOption = None,
          key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 60.0) -> None:
    """After close, sum the ballots; once every trustee decrypted, publish the result."""
    with common.open_client(home, node) as client:
        poll = read_poll(client, poll_id)
        while poll["tally"] is None:
            report_commit(submit_service_tx(home, node, key, "vote", "tally",
                                            {"poll_id": poll_id}, timeout), False)
            poll = read_poll(client, poll_id)
        typer.echo(f"tallied {poll['tally']['num_tallied']} ballots")
        if poll["result"] is not None or poll["shares_count"] < len(poll["trustees"]):
            typer.echo(f"{poll['shares_count']} of {len(poll['trustees'])} trustees decrypted")
            return
        shares = client.query("vote", "shares", poll_id=poll_id)["result"]
    election = load_election(poll["election"])
    counts = compute_result(election, load_tally(election, poll["tally"]),
                            parse_trustee_keys([item["public_key"] for item in poll["trustees"]]),
                            [parse_partial_decryption(election, share.encode())
                             for share in shares])
    result = dump_result(counts).decode()
    report_commit(submit_service_tx(home, node, key, "vote", "publish_result",
                                    {"poll_id": poll_id, "result": result}, timeout), False)
    typer.echo(f"result {result}")


@vote_app.command("decrypt")
@reports_errors
def decrypt(poll_id: PollArgument, home: HomeOption,
            private_key: Annotated[Path, typer.Option(
                "--private-key", help="The trustee.privkey file of trustee-keygen.")],
            node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
            timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Post this trustee's partial decryption of the tally (--key: its chain key)."""
    with common.open_client(home, node) as client:
        poll = read_poll(client, poll_id)
    if poll["tally"] is None:
        raise LocalError(f"poll {poll_id!r} is not tallied yet: run `seoulchain vote tally`")
    election = load_election(poll["election"])
    secret = parse_private_key(election.group, read_text(private_key, "private key").encode())
    partial = compute_partial_decryption(election, load_tally(election, poll["tally"]), secret)
    report_commit(submit_service_tx(home, node, key, "vote", "decrypt",
                                    {"poll_id": poll_id, "share": partial.to_json().decode()},
                                    timeout), json)


@vote_app.command("verify")
@reports_errors
def verify(poll_id: PollArgument, home: HomeOption, node: NodeOption = None,
           json: JsonOption = False) -> None:
    """Re-check the poll from chain data alone, step by step. Exit status 2: a step failed."""
    with common.open_client(home, node) as client:
        data = fetch_poll_data(make_node_reader(client), poll_id)
    try:
        report = verify_poll(data)
    except PollVerificationFailed as exc:
        if json:
            print_json({"poll_id": poll_id, "ok": False, "step": exc.step,
                        "detail": exc.detail})
        else:
            typer.echo(f"FAIL  {exc.step}: {exc.detail}")
        raise typer.Exit(EXIT_AUDIT_FAILED) from None
    if json:
        print_json({"poll_id": poll_id, "ok": True,
                    "steps": [{"step": step, "summary": summary}
                              for step, summary in report.steps]})
    else:
        typer.echo("\n".join(f"ok    {step}: {summary}" for step, summary in report.steps))


@vote_app.command("export")
@reports_errors
def export(poll_id: PollArgument, directory: Annotated[Path, typer.Argument(
               metavar="DIR", help="Directory to write UUID.bel into.")],
           home: HomeOption, node: NodeOption = None) -> None:
    """Write the poll as a Belenios archive: `belenios-tool election verify --dir DIR`."""
    with common.open_client(home, node) as client:
        data = fetch_poll_data(make_node_reader(client), poll_id)
    poll = data.poll
    election = load_election(poll["election"])
    tally_done = poll["tally"] is not None
    shares = [parse_partial_decryption(election, share.encode())
              for share in data.shares if share is not None] if tally_done else []
    result = None
    if poll["result"] is not None:
        result = tuple(tuple(row) for row in json.loads(poll["result"])["result"])
    path = export_archive(
        directory, election=election,
        trustees=parse_trustee_keys([item["public_key"] for item in poll["trustees"]]),
        public_credentials=PublicCredentials({mpz(item): 1
                                              for item in data.credentials}),
        ballots=[stored["ballot"].encode() for stored in data.ballots],
        tally=load_tally(election, poll["tally"]) if tally_done else None,
        partial_decryptions=shares if len(shares) == len(poll["trustees"]) else (),
        result=result)
    typer.echo(f"wrote {path}")


@vote_app.command("show")
@reports_errors
def show(poll_id: PollArgument, home: HomeOption, node: NodeOption = None,
         json: JsonOption = False) -> None:
    """Show a poll: phase heights, questions, turnout, result. Exit status 3: unknown."""
    with common.open_client(home, node) as client:
        try:
            poll = read_poll(client, poll_id)
        except PollNotFound as exc:
            typer.echo(str(exc))
            raise typer.Exit(EXIT_NOT_FOUND) from None
        height = client.get_status()["height"]
    if json:
        print_json({key: value for key, value in poll.items() if key != "election"})
        return
    lines = [f"{poll_id}: {poll['title']}",
             f"  opens at {poll['open_height']}, closes at {poll['close_height']} "
             f"(now {height}); election hash {poll['election_hash']}",
             f"  turnout {poll['voted_count']} of {poll['credentials_count']} credentials "
             f"({poll['ballots_count']} ballots cast)"]
    for number, question in enumerate(poll["questions"], start=1):
        lines.append(f"  Q{number} {question['question']} (choose {question['min']} to "
                     f"{question['max']}{', or blank' if question['blank'] else ''})")
        lines.extend(f"      {index}. {answer}"
                     for index, answer in enumerate(question["answers"], start=1))
    if poll["result"] is not None:
        lines.append(f"  result {poll['result']}")
    typer.echo("\n".join(lines))
