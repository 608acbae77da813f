"""`seoulchain vote ...`: Belenios polls on chain, from trustee keys to universal verification.

The organiser (a key with `vote.organiser`) `create`s a poll from a JSON spec (title,
questions, eligibility) with each trustee's chain key and Belenios public key (made by
`trustee-keygen`): every trustee must decrypt. For a threshold poll (any t of n trustees
decrypt) the trustees and the organiser first run the key ceremony, each step a command
whose files pass between them, in belenios-tool's formats: each trustee `trustee-cert`;
the organiser `ceremony-certs`; each trustee `trustee-polynomial`; the organiser
`ceremony-vinputs`; each trustee `trustee-voutput`; the organiser `ceremony-parameters`,
whose file `create --threshold T --parameters FILE` puts on chain. Then it publishes
`credentials`: the public parts go on chain, the private
ones into a file the organiser hands out off chain, one per eligible voter. A voter
`cast`s with a private credential from a fresh chain key (nothing links the ballot to the
voter's other transactions), or `audit-ballot`s one first (Benaloh: the ballot is opened,
never cast). After close, `tally` sums the counted ballots; each trustee `decrypt`s with
its private key (a threshold trustee with its trustee.key and trustee.dkey); `tally` again
publishes the result the shares give. Anyone `verify`s the
whole poll from chain data and `export`s it as a Belenios archive for belenios-tool.

Choices are given per question, separated by ';': the numbers (from 1) of the selected
answers separated by ',', nothing for none, or `blank` where the question allows it; e.g.
`--choices "1,3;blank"`.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
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
from seoulchain.cli.vc import report_rejection
from seoulchain.client.credentials import CredentialRejected
from seoulchain.client.http import NodeClient, submit_and_confirm
from seoulchain.client.vote_desk import BATCH_MIN_DEFAULT, DOMAIN_DEFAULT, CredentialDesk
from seoulchain.client.voting import (
    PollNotFound,
    PollVerificationFailed,
    export_poll_archive,
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
    load_partials,
    load_tally,
    load_trustee_items,
)
from seoulchain.voting import (
    audit_ballot,
    compute_items_result,
    compute_partial_decryption,
    compute_public_credential,
    create_ballot,
    dump_result,
    generate_credential,
    generate_trustee_key,
    get_group,
    parse_private_key,
)
from seoulchain.voting.election import Election
from seoulchain.voting.errors import MalformedVotingData, VotingCheckFailed, VotingUsageError
from seoulchain.voting.jsonform import dump_json, load_json, require_dict
from seoulchain.voting.keyceremony import (
    TrusteeSeed,
    compute_vinputs,
    compute_voutput,
    derive_seed_keys,
    generate_certificate,
    generate_polynomial,
    make_threshold_parameters,
    open_decryption_key,
    read_certificates,
)
from seoulchain.voting.threshold import parse_signed_message, verify_signed_message

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


CertsOption = Annotated[Path, typer.Option(
    "--certs", help="The certificates file of ceremony-certs (one per line, in trustee "
                    "order).")]
SeedOption = Annotated[Path, typer.Option(
    "--private-key", help="This trustee's trustee.key (secret) of trustee-cert.")]
ThresholdOption = Annotated[int, typer.Option(
    min=1, help="Trustees needed to decrypt, between 1 and the number of trustees.")]


def read_lines(path: Path, what: str) -> list[str]:
    """Return a file's non-empty lines (a .jsons file of belenios-tool)."""
    return [line for line in read_text(path, what).splitlines() if line.strip()]


def read_seed(path: Path) -> TrusteeSeed:
    """Return a threshold trustee's keys from its trustee.key file."""
    return derive_seed_keys(get_group(GROUP_NAME), read_text(path, "trustee key").strip())


def write_public(path: Path, text: str) -> None:
    """Write a file to hand to another party, its parent made if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@vote_app.command("trustee-cert")
@reports_errors
def trustee_cert(out: Annotated[Path, typer.Option(
        "--out", help="Directory for trustee.key (secret) and trustee.cert.")]) -> None:
    """Threshold ceremony, each trustee: make a key; keep trustee.key, give trustee.cert."""
    seed, certificate = generate_certificate(get_group(GROUP_NAME))
    write_private(out / "trustee.key", seed.seed + "\n")
    write_public(out / "trustee.cert", dump_json(certificate.to_json()) + "\n")
    typer.echo(f"wrote {out / 'trustee.key'} (keep it secret) and {out / 'trustee.cert'} "
               f"(give it to the organiser)")


@vote_app.command("ceremony-certs")
@reports_errors
def ceremony_certs(cert: Annotated[list[Path], typer.Option(
                       "--cert", help="A trustee's trustee.cert; repeat, in trustee order.")],
                   out: Annotated[Path, typer.Option(
                       "--out", help="The certificates file to give every trustee.")],
                   ) -> None:
    """Threshold ceremony, organiser: check the certificates and list them in order."""
    lines = [read_text(path, "certificate").strip() for path in cert]
    read_certificates(get_group(GROUP_NAME), lines)
    if len(set(lines)) != len(lines):
        raise LocalError("a certificate is given twice")
    write_public(out, "".join(f"{line}\n" for line in lines))
    typer.echo(f"wrote {out}: {len(lines)} certificates, each signature valid")


@vote_app.command("trustee-polynomial")
@reports_errors
def trustee_polynomial(private_key: SeedOption, certs: CertsOption, threshold: ThresholdOption,
                       out: Annotated[Path, typer.Option(
                           "--out", help="File for the polynomial to give the organiser.")],
                       ) -> None:
    """Threshold ceremony, each trustee: draw a polynomial; give its file to the organiser."""
    polynomial = generate_polynomial(get_group(GROUP_NAME), read_seed(private_key),
                                     read_lines(certs, "certificates"), threshold)
    write_public(out, polynomial + "\n")
    typer.echo(f"wrote {out} (give it to the organiser)")


@vote_app.command("ceremony-vinputs")
@reports_errors
def ceremony_vinputs(certs: CertsOption, polynomial: Annotated[list[Path], typer.Option(
                         "--polynomial", help="A trustee's polynomial file; repeat, in "
                                              "trustee order.")],
                     out: Annotated[Path, typer.Option(
                         "--out", help="Directory for trustee-N.vinput, one per trustee.")],
                     ) -> None:
    """Threshold ceremony, organiser: route the polynomials' shares to each trustee."""
    group = get_group(GROUP_NAME)
    keys = read_certificates(group, read_lines(certs, "certificates"))
    texts = [read_text(path, "polynomial").strip() for path in polynomial]
    if len(texts) != len(keys):
        raise LocalError(f"{len(texts)} polynomials for {len(keys)} certificates")
    for index, (text, (verification, _)) in enumerate(zip(texts, keys, strict=True), 1):
        body = require_dict(load_json(text, "polynomial"), {"polynomial", "secrets",
                                                            "coefexps"}, f"polynomial {index}")
        signed = parse_signed_message(group, body["coefexps"], f"polynomial {index}")
        verify_signed_message(group, verification, signed, f"polynomial {index} (give them "
                                                           f"in certificate order)")
    for index, vinput in enumerate(compute_vinputs(texts), start=1):
        write_public(out / f"trustee-{index}.vinput", vinput + "\n")
    typer.echo(f"wrote {out}/trustee-1.vinput to trustee-{len(texts)}.vinput (one to each "
               f"trustee)")


@vote_app.command("trustee-voutput")
@reports_errors
def trustee_voutput(private_key: SeedOption, certs: CertsOption,
                    vinput: Annotated[Path, typer.Option(
                        "--vinput", help="This trustee's trustee-N.vinput.")],
                    out: Annotated[Path, typer.Option(
                        "--out", help="Directory for trustee.voutput and trustee.dkey.")],
                    ) -> None:
    """Threshold ceremony, each trustee: check the shares received; make the decryption key."""
    voutput = compute_voutput(get_group(GROUP_NAME), read_seed(private_key),
                              read_lines(certs, "certificates"),
                              read_text(vinput, "vinput").strip())
    write_private(out / "trustee.dkey", json_load(voutput)["private_key"] + "\n")
    write_public(out / "trustee.voutput", voutput + "\n")
    typer.echo(f"wrote {out / 'trustee.dkey'} (keep it, with trustee.key, to decrypt) and "
               f"{out / 'trustee.voutput'} (give it to the organiser)")


@vote_app.command("ceremony-parameters")
@reports_errors
def ceremony_parameters(certs: CertsOption, threshold: ThresholdOption,
                        vinputs: Annotated[Path, typer.Option(
                            "--vinputs", help="The directory of ceremony-vinputs.")],
                        voutput: Annotated[list[Path], typer.Option(
                            "--voutput", help="A trustee's trustee.voutput; repeat, in "
                                              "trustee order.")],
                        out: Annotated[Path, typer.Option(
                            "--out", help="The threshold parameters file for `vote "
                                          "create --parameters`.")]) -> None:
    """Threshold ceremony, organiser: check and assemble the threshold parameters."""
    parameters = make_threshold_parameters(
        get_group(GROUP_NAME), read_lines(certs, "certificates"), threshold,
        read_text(vinputs / "trustee-1.vinput", "vinput").strip(),
        [read_text(path, "voutput").strip() for path in voutput])
    write_public(out, dump_json(parameters.to_json()) + "\n")
    typer.echo(f"wrote {out}: {threshold} of {len(parameters.verification_keys)} trustees, "
               f"every signature and verification key valid")


@vote_app.command("create")
@reports_errors
def create(poll_id: PollArgument, home: HomeOption,
           spec: Annotated[Path, typer.Option(
               "--spec", help="JSON: {title, questions: [{question, answers, min, max, "
                              "blank}], eligibility: {kind, credential_type | list_hash}}.")],
           trustee: Annotated[list[str], typer.Option(
               "--trustee", help="KEY=PUBKEY: a trustee's key name in HOME/keys (it signs "
                                 "its decryption) and its trustee.pubkey file; repeat. For "
                                 "a threshold poll, KEY only, in certificate order.")],
           threshold: Annotated[int | None, typer.Option(
               min=1, help="Trustees needed to decrypt (a threshold poll, with "
                           "--parameters); default: every trustee.")] = None,
           parameters: Annotated[Path | None, typer.Option(
               "--parameters", help="The threshold parameters file of "
                                    "ceremony-parameters (with --threshold).")] = None,
           opens_in: Annotated[int, typer.Option(min=1, max=1_000_000,
                                                 help="Blocks until the poll opens.")] = 5,
           closes_in: Annotated[int, typer.Option(min=2, max=100_000_000,
                                                  help="Blocks until it closes.")] = 1000,
           node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
           timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Create a poll (the signing --key needs vote.organiser): every trustee decrypts, or
    any --threshold of them with the key ceremony's --parameters."""
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
    if (threshold is None) != (parameters is None):
        raise LocalError("a threshold poll needs both --threshold and --parameters")
    trustees = read_trustees(home, trustee, threshold_poll=parameters is not None)
    args["threshold"] = len(trustees) if threshold is None else threshold
    if parameters is not None:
        args["threshold_parameters"] = read_text(parameters, "threshold parameters").strip()
    with common.open_client(home, node) as client:
        height = client.get_status()["height"]
    args.update(trustees=trustees, open_height=height + opens_in,
                close_height=height + max(closes_in, opens_in + 1))
    report_commit(submit_service_tx(home, node, key, "vote", "create_poll", args, timeout),
                  json)


def read_trustees(home: Path | None, items: list[str], threshold_poll: bool,
                  ) -> list[dict[str, Any]]:
    """Return the trustees of `--trustee` options: KEY=PUBKEY, or KEY for a threshold poll."""
    trustees = []
    for item in items:
        name, _, path = item.partition("=")
        chain_key = Home(home).load_key(name).public_key
        if threshold_poll:
            if path:
                raise LocalError(f"--trustee {item!r}: a threshold trustee is KEY only (its "
                                 f"keys are in --parameters)")
            trustees.append({"chain_key": chain_key})
            continue
        if not path:
            raise LocalError(f"--trustee {item!r} is not KEY=PUBKEY")
        trustees.append({"chain_key": chain_key,
                         "public_key": read_text(Path(path), "trustee public key").strip()})
    return trustees


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
    """After close, sum the ballots; once enough trustees decrypted, publish the result."""
    with common.open_client(home, node) as client:
        poll = read_poll(client, poll_id)
        while poll["tally"] is None:
            report_commit(submit_service_tx(home, node, key, "vote", "tally",
                                            {"poll_id": poll_id}, timeout), False)
            poll = read_poll(client, poll_id)
        typer.echo(f"tallied {poll['tally']['num_tallied']} ballots")
        if poll["result"] is not None or poll["shares_count"] < poll["threshold"]:
            typer.echo(f"{poll['shares_count']} of {len(poll['trustees'])} trustees decrypted"
                       f" ({poll['threshold']} needed)")
            return
        shares = client.query("vote", "shares", poll_id=poll_id)["result"]
    election = load_election(poll["election"])
    counts = compute_items_result(
        election, load_tally(election, poll["tally"]),
        load_trustee_items([item["public_key"] for item in poll["trustees"]],
                           poll.get("threshold_parameters")),
        load_partials(election, shares))
    result = dump_result(counts).decode()
    report_commit(submit_service_tx(home, node, key, "vote", "publish_result",
                                    {"poll_id": poll_id, "result": result}, timeout), False)
    typer.echo(f"result {result}")


@vote_app.command("decrypt")
@reports_errors
def decrypt(poll_id: PollArgument, home: HomeOption,
            private_key: Annotated[Path, typer.Option(
                "--private-key", help="The trustee.privkey file of trustee-keygen; for a "
                                      "threshold poll the trustee.key of trustee-cert.")],
            decryption_key: Annotated[Path | None, typer.Option(
                "--decryption-key", help="A threshold trustee's trustee.dkey (written by "
                                         "trustee-voutput).")] = None,
            node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
            timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Post this trustee's partial decryption of the tally (--key: its chain key)."""
    with common.open_client(home, node) as client:
        poll = read_poll(client, poll_id)
    if poll["tally"] is None:
        raise LocalError(f"poll {poll_id!r} is not tallied yet: run `seoulchain vote tally`")
    election = load_election(poll["election"])
    if (decryption_key is None) != (poll.get("threshold_parameters") is None):
        raise LocalError(f"poll {poll_id!r} is {'an n-of-n' if decryption_key else 'a threshold'}"
                         f" poll: {'drop' if decryption_key else 'give'} --decryption-key")
    if decryption_key is None:
        secret = parse_private_key(election.group,
                                   read_text(private_key, "private key").encode())
    else:
        secret = read_threshold_key(poll, private_key, decryption_key)
    partial = compute_partial_decryption(election, load_tally(election, poll["tally"]), secret)
    report_commit(submit_service_tx(home, node, key, "vote", "decrypt",
                                    {"poll_id": poll_id, "share": partial.to_json().decode()},
                                    timeout), json)


def read_threshold_key(poll: dict[str, Any], seed_file: Path, sealed_file: Path) -> mpz:
    """Open a threshold trustee's decryption key; refuse one that is not the poll's."""
    group = get_group(GROUP_NAME)
    seed = derive_seed_keys(group, read_text(seed_file, "trustee key").strip())
    secret = open_decryption_key(group, seed, read_text(sealed_file, "decryption key").strip())
    public = str(group.exp_g(secret))
    if not any(json_load(item["public_key"])["public_key"] == public
               for item in poll["trustees"]):
        raise LocalError(f"{sealed_file} is not the decryption key of a trustee of poll "
                         f"{poll['poll_id']!r}")
    return secret


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
    typer.echo(f"wrote {export_poll_archive(data, directory)}")


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
        shares = client.query("vote", "shares", poll_id=poll_id)["result"]
    decrypted = [trustee["chain_key"] for trustee, share in zip(poll["trustees"], shares,
                                                                 strict=True) if share]
    if json:
        print_json({**{key: value for key, value in poll.items() if key != "election"},
                    "decrypted_by": decrypted})
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
    lines.extend(format_trustees(poll, decrypted))
    if poll["result"] is not None:
        lines.append(f"  result {poll['result']}")
    typer.echo("\n".join(lines))


def format_trustees(poll: dict[str, Any], decrypted: list[str]) -> list[str]:
    """Return the lines naming who decrypts a poll and which trustees have decrypted."""
    count, threshold = len(poll["trustees"]), poll["threshold"]
    kind = (f"threshold {threshold} of {count}" if "threshold_parameters" in poll
            else f"all {count} decrypt")
    lines = [f"  trustees: {kind}; {len(decrypted)} partial decryption(s) posted, "
             f"{threshold} needed"]
    # Once the result is out, a trustee that has not decrypted is no longer awaited.
    missing = "pending" if poll["result"] is None else "not needed"
    lines.extend(f"      {index}. {trustee['chain_key']} "
                 f"{'decrypted' if trustee['chain_key'] in decrypted else missing}"
                 for index, trustee in enumerate(poll["trustees"], start=1))
    return lines


desk_app = typer.Typer(no_args_is_help=True, help="The credential desk of a poll open to a "
                       "credential type's holders: verify a holder's credential, hand out a "
                       "voting credential, publish the public ones in shuffled batches.")
vote_app.add_typer(desk_app, name="desk")
RegisterOption = Annotated[Path, typer.Option(
    "--register", help="The desk's register of the poll (salted holder tags, queued public "
                       "credentials); created on first use, keep it private.")]
DomainOption = Annotated[str, typer.Option(
    "--domain", help="The desk's domain, which a holder's presentation signs.")]


def write_new_private(path: Path, text: str) -> None:
    """Write a secret file only its owner may read, refusing to replace an existing one."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise LocalError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


@desk_app.command("issue")
@reports_errors
def desk_issue(poll_id: PollArgument, home: HomeOption,
               credential: Annotated[Path, typer.Option(
                   "--credential", help="The holder's credential (JSON-LD), or a "
                                        "presentation of it over the desk's challenge.")],
               register: RegisterOption,
               out: Annotated[Path, typer.Option(
                   "--out", help="New file for the holder's private voting credential.")],
               domain: DomainOption = DOMAIN_DEFAULT, node: NodeOption = None,
               json: JsonOption = False) -> None:
    """Verify a holder's credential against the chain and hand out one voting credential.

    Exit status 21: the credential is rejected (the failing check is printed).
    """
    document = json_load(read_text(credential, "credential"))
    with common.open_client(home, node) as client:
        desk = CredentialDesk(client, poll_id, register, domain)
        try:
            receipt = desk.issue(document, lambda private: write_new_private(
                out, f"{private}\n"), now=datetime.now(UTC))
        except CredentialRejected as exc:
            report_rejection(exc, json)
    if json:
        print_json({"out": str(out), "type": receipt.credential_type,
                    "credential_hash": receipt.credential_hash, "queued": receipt.queued})
    else:
        typer.echo(f"verified a {receipt.credential_type} credential; the holder's voting "
                   f"credential is in {out}; {receipt.queued} public credentials queued")


@desk_app.command("publish")
@reports_errors
def desk_publish(poll_id: PollArgument, home: HomeOption, register: RegisterOption,
                 batch_min: Annotated[int, typer.Option(
                     min=1, max=CREDENTIALS_PER_TX_MAX,
                     help="Publish only batches of at least this many.")] = BATCH_MIN_DEFAULT,
                 flush: Annotated[bool, typer.Option(
                     "--all", help="Publish the whole queue, the last batch smaller (before "
                                   "the poll opens).")] = False,
                 node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
                 timeout: TimeoutOption = 30.0) -> None:
    """Publish the queued public credentials in shuffled batches, signed by the organiser."""
    def submit(batch: list[str]) -> None:
        report_commit(submit_service_tx(home, node, key, "vote", "add_credentials",
                                        {"poll_id": poll_id, "credentials": batch},
                                        timeout), False)

    with common.open_client(home, node) as client:
        desk = CredentialDesk(client, poll_id, register)
        sent = desk.publish(submit, batch_min=batch_min, flush=flush)
        left = desk.describe()["queued"]
    typer.echo(f"published {sent} public credentials; {left} wait in the queue")


@desk_app.command("status")
@reports_errors
def desk_status(poll_id: PollArgument, home: HomeOption, register: RegisterOption,
                domain: DomainOption = DOMAIN_DEFAULT, node: NodeOption = None,
                json: JsonOption = False) -> None:
    """Show the desk's counts and the challenge a holder's presentation signs."""
    with common.open_client(home, node) as client:
        counts = CredentialDesk(client, poll_id, register, domain).describe()
    if json:
        print_json(counts)
        return
    typer.echo(f"{poll_id}: {counts['credential_type']} holders; {counts['holders']} served, "
               f"{counts['queued']} queued, {counts['pending']} being published, "
               f"{counts['published']} published\n"
               f"  presentations sign challenge {counts['challenge']} for domain "
               f"{counts['domain']}")
