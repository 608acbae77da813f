"""`seoulchain vc issue|verify|revoke|suspend|status|present|publish-list`: W3C credentials.

The issuer's side signs with a key of HOME/keys that holds `vc.issuer.<type>` and is an
authentication and assertion key of the issuer DID: `issue` draws a random free index of the
issuer's status lists, signs the credential (Data Integrity, eddsa-rdfc-2022), anchors its
hash (`vc.issue`) and writes the file; `revoke` and `suspend` set its status bits;
`publish-list` signs the BitstringStatusListCredential of a list's bits and anchors its
hash. The holder's side (`present`) signs a presentation over a verifier's challenge and
domain with a key file. The verifier's side (`verify`) prints each check
(client/credentials.py) and keeps the challenges it has accepted in a small file, so a
presentation is accepted once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from seoulchain.cli import common
from seoulchain.cli.common import (
    HomeOption,
    JsonOption,
    NodeOption,
    OptionalHomeOption,
    console,
    print_json,
    reports_errors,
)
from seoulchain.cli.eligibility import (
    VALID_DAYS_DEFAULT,
    VALID_DAYS_MAX,
    find_assertion_method,
    open_node,
    read_json_file,
    write_text,
)
from seoulchain.cli.exit_codes import EXIT_ANSWER_REFUSED
from seoulchain.cli.txs import KeyOption, TimeoutOption, report_commit, submit_service_tx
from seoulchain.client import credentials as vc
from seoulchain.client.did import resolve_did
from seoulchain.client.http import NodeClient
from seoulchain.credentials import integrity
from seoulchain.credentials.errors import StatusListError
from seoulchain.credentials.statuslist import (
    StatusList,
    build_status_list_credential,
    find_status_entry,
)
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.node.home import OPERATOR_KEY_NAME, Home
from seoulchain.services.did import find_verification_key
from seoulchain.services.vc import CREDENTIAL_TYPES

vc_app = typer.Typer(no_args_is_help=True,
                     help="W3C verifiable credentials: issue, verify, revoke, suspend, "
                          "present (docs/identity.md).")

# The verifier's accepted challenges (relative to the working directory, as the demo's
# home), each kept as long as a presentation answering it could still be accepted.
REPLAY_STORE_DEFAULT = Path(".seoulchain/vc/used-challenges.json")
# Challenges a verifier accepts in one presentation lifetime (10 minutes): a busy desk
# sees a few hundred; past this the verifier waits for old ones to lapse.
USED_CHALLENGES_MAX = 100_000

FileArgument = Annotated[Path, typer.Argument(help="The credential file (JSON).")]
OutOption = Annotated[Path, typer.Option("--out", help="File to write.")]


@vc_app.command("issue")
@reports_errors
def issue(home: HomeOption,
          kind: Annotated[str, typer.Option(
              "--type", help=f"Credential type: {', '.join(CREDENTIAL_TYPES)}.")],
          subject: Annotated[str, typer.Option(help="The holder's DID.")],
          claims: Annotated[str, typer.Option(
              help='The claims as a JSON object, e.g. \'{"residentOf": "Jongno-gu"}\'.')],
          issuer: Annotated[str, typer.Option(help="The issuer DID.")],
          status_list: Annotated[str, typer.Option(
              help="The issuer's revocation list on chain.")],
          out: OutOption,
          suspension_list: Annotated[str | None, typer.Option(
              help="The issuer's suspension list on chain, if any.")] = None,
          valid_days: Annotated[int, typer.Option(
              min=1, max=VALID_DAYS_MAX, help="Days until the credential expires.")]
          = VALID_DAYS_DEFAULT,
          node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
          timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Sign a credential with --key, anchor its hash on chain and write it to --out."""
    claims_value = parse_claims(claims)
    signing_key = Home(home).load_key(key)
    with common.open_client(home, node) as client:
        method = find_assertion_method(client, issuer, signing_key.public_key)
        status = [vc.draw_status_entry(client, status_list, "revocation")]
        if suspension_list is not None:
            status.append(vc.draw_status_entry(client, suspension_list, "suspension"))
    now = datetime.now(UTC).replace(microsecond=0)
    unsigned = vc.build_credential(kind, issuer, subject, claims_value, now,
                                   now + timedelta(days=valid_days), status,
                                   credential_id=f"urn:uuid:{uuid.uuid4()}")
    credential = integrity.sign(unsigned, signing_key, method, now)
    refs = [{"list_id": vc.parse_status_list_url(entry["statusListCredential"]),
             "index": int(entry["statusListIndex"])} for entry in status]
    committed = submit_service_tx(home, node, key, "vc", "issue", {
        "credential_hash": vc.compute_anchor_hash(credential), "type": kind,
        "issuer": issuer, "status": refs}, timeout)
    if committed["result"]["code"] == 0:
        write_text(out, format_json(credential))
    report_commit(committed, json)
    if not json:
        console.print(f"wrote {out}: a {kind} credential for {subject}, anchored at height "
                      f"{committed['height']}", highlight=False)


def parse_claims(text: str) -> dict[str, Any]:
    """Return the claims given as a JSON object."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LocalError(f"--claims is not JSON: {exc}") from None
    if not isinstance(value, dict) or not value:
        raise LocalError('--claims must be a JSON object, e.g. {"residentOf": "Jongno-gu"}')
    return value


def format_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@vc_app.command("verify")
@reports_errors
def verify(file: FileArgument, home: OptionalHomeOption = None, node: NodeOption = None,
           kind: Annotated[str | None, typer.Option(
               "--type", help="Accept only this credential type.")] = None,
           status_list: Annotated[list[Path] | None, typer.Option(
               help="A published status list credential to check too (repeatable).")] = None,
           challenge: Annotated[str | None, typer.Option(
               help="For a presentation: the challenge this verifier gave.")] = None,
           domain: Annotated[str | None, typer.Option(
               help="For a presentation: this verifier's domain.")] = None,
           replay_store: Annotated[Path, typer.Option(
               help="This verifier's record of accepted challenges (refuses replays).")]
           = REPLAY_STORE_DEFAULT,
           json: JsonOption = False) -> None:
    """Verify a credential or presentation against the chain and print each check.

    Exit status 0: valid; 21: rejected (the failing check is printed).
    """
    document = read_json_file(file, "credential")
    lists = {}
    for path in status_list or []:
        published = read_json_file(path, "status list credential")
        lists[str(published.get("id")) if isinstance(published, dict) else ""] = published
    with open_node(home, node) as client:
        try:
            if is_presentation(document):
                reports = verify_presented(client, document, challenge, domain,
                                           replay_store, kind)
            else:
                reports = [vc.verify_credential(client, document, now=datetime.now(UTC),
                                                expected_type=kind,
                                                status_list_credentials=lists)]
        except vc.CredentialRejected as exc:
            report_rejection(exc, json)
    report_valid(reports, json)


def is_presentation(document: Any) -> bool:
    types = document.get("type") if isinstance(document, dict) else None
    return isinstance(types, list) and vc.PRESENTATION_TYPE in types


def verify_presented(client: NodeClient, document: dict[str, Any], challenge: str | None,
                     domain: str | None, replay_store: Path,
                     kind: str | None) -> list[vc.CredentialReport]:
    """Verify a presentation over this verifier's challenge and domain, once."""
    if challenge is None or domain is None:
        raise LocalError("a presentation is verified with the --challenge and --domain this "
                         "verifier gave the holder")
    with open_replay_store(replay_store) as seen:
        report = vc.verify_presentation(client, document, challenge, domain, seen,
                                        now=datetime.now(UTC), expected_type=kind)
    console.print(f"presentation: signed by the holder {report.holder} over the challenge "
                  f"and domain {domain}", highlight=False)
    return report.credentials


def report_rejection(exc: vc.CredentialRejected, as_json: bool) -> None:
    """Print the passed checks and the failing one, then exit 21."""
    if as_json:
        print_json({"valid": False, "check": exc.check, "reason": str(exc),
                    "passed": exc.passed})
    else:
        for check in exc.passed:
            typer.echo(f"  ok    {check}")
        typer.echo(f"  FAIL  {exc.check}: {exc}")
        typer.echo("rejected")
    raise typer.Exit(EXIT_ANSWER_REFUSED)


def report_valid(reports: list[vc.CredentialReport], as_json: bool) -> None:
    if as_json:
        print_json({"valid": True, "credentials": [
            {"hash": report.credential_hash, "type": report.type, "issuer": report.issuer,
             "subject": report.subject, "issuance_height": report.issuance_height,
             "checks": report.checks} for report in reports]})
        return
    for report in reports:
        for check in report.checks:
            typer.echo(f"  ok    {check}")
        typer.echo(f"valid: {report.type} credential of {report.subject} from "
                   f"{report.issuer}")


@contextlib.contextmanager
def open_replay_store(path: Path) -> Iterator[set[str]]:
    """Lock the verifier's challenge file, yield the challenges accepted recently and write
    back the set (with the new ones) after; older challenges lapse with their presentations."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LocalError(f"cannot open the replay store {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one verification at a time per store
        now_s = int(time.time())
        used = read_used_challenges(handle.read(), path, now_s)
        seen = set(used)
        yield seen
        used.update({challenge: now_s for challenge in seen - set(used)})
        if len(used) > USED_CHALLENGES_MAX:
            raise LocalError(f"the replay store {path} is full ({USED_CHALLENGES_MAX} recent "
                             f"challenges): wait a few minutes")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(used))


def read_used_challenges(text: str, path: Path, now_s: int) -> dict[str, int]:
    """Return the store's challenges (challenge -> accepted at, s) that have not lapsed."""
    try:
        used = json.loads(text) if text else {}
    except ValueError:
        used = None
    if not isinstance(used, dict) or not all(type(at) is int for at in used.values()):
        raise LocalError(f"the replay store {path} is damaged; move it aside (a new one "
                         f"accepts challenges it has not seen)")
    lapse_s = vc.PRESENTATION_AGE_MAX_S + vc.CLOCK_SKEW_S
    return {challenge: at for challenge, at in used.items() if at >= now_s - lapse_s}


@vc_app.command("revoke")
@reports_errors
def revoke(file: FileArgument, home: HomeOption, node: NodeOption = None,
           key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
           json: JsonOption = False) -> None:
    """Revoke a credential for good: set its revocation bit on chain."""
    set_bit(file, home, node, key, timeout, json, "revocation", True)


@vc_app.command("suspend")
@reports_errors
def suspend(file: FileArgument, home: HomeOption, node: NodeOption = None,
            lift: Annotated[bool, typer.Option("--lift", help="Lift the suspension.")] = False,
            key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
            json: JsonOption = False) -> None:
    """Suspend a credential (set its suspension bit), or lift the suspension."""
    set_bit(file, home, node, key, timeout, json, "suspension", not lift)


def set_bit(file: Path, home: Path, node: str | None, key: str, timeout: float,
            as_json: bool, purpose: str, value: bool) -> None:
    """Set or clear the credential's status bit of `purpose` on chain."""
    credential = read_json_file(file, "credential")
    try:
        entry = find_status_entry(credential, purpose)
    except StatusListError as exc:
        raise LocalError(f"{file}: {exc}") from None
    args = {"list_id": vc.parse_status_list_url(entry.get("statusListCredential")),
            "index": int(str(entry.get("statusListIndex"))), "value": value}
    report_commit(submit_service_tx(home, node, key, "vc", "set_status", args, timeout),
                  as_json)


@vc_app.command("status")
@reports_errors
def status(file: FileArgument, home: OptionalHomeOption = None, node: NodeOption = None,
           json: JsonOption = False) -> None:
    """Print the chain's status bits of a credential's status entries."""
    credential = read_json_file(file, "credential")
    entries = credential.get("credentialStatus", []) if isinstance(credential, dict) else []
    with open_node(home, node) as client:
        results = [vc.check_credential_status(client, entry)
                   for entry in (entries if isinstance(entries, list) else [entries])]
    if json:
        print_json([asdict(result) for result in results])
        return
    for result in results:
        state = f"SET at height {result.set_height}" if result.is_set else "clear"
        typer.echo(f"{result.purpose:<11} {result.list_id} #{result.index}: {state}")
    if not results:
        typer.echo("the credential has no status entries")


@vc_app.command("present")
@reports_errors
def present(file: FileArgument,
            holder_key: Annotated[Path, typer.Option(
                help="The holder's Ed25519 key file (an authentication key of its DID).")],
            challenge: Annotated[str, typer.Option(help="The verifier's challenge.")],
            domain: Annotated[str, typer.Option(help="The verifier's domain.")],
            out: OutOption, home: OptionalHomeOption = None, node: NodeOption = None) -> None:
    """Sign a presentation of a credential over a verifier's challenge and domain."""
    credential = read_json_file(file, "credential")
    subject = credential.get("credentialSubject") if isinstance(credential, dict) else None
    holder = subject.get("id") if isinstance(subject, dict) else None
    if not isinstance(holder, str):
        raise LocalError(f"{file} names no credentialSubject id to present as")
    key = SigningKey.load(holder_key)
    with open_node(home, node) as client:
        method = find_authentication_method(client, holder, key.public_key)
    presentation = vc.build_presentation([credential], holder, key, method, challenge,
                                         domain, datetime.now(UTC))
    write_text(out, format_json(presentation))
    console.print(f"wrote {out}: a presentation by {method} for {domain}", highlight=False)


def find_authentication_method(client: NodeClient, did: str, public_key: bytes) -> str:
    """Return the id of `did`'s authentication method whose key is `public_key`."""
    document = resolve_did(client, did)["didDocument"]
    if document is None:
        raise LocalError(f"{did} does not resolve on this chain")
    for method_id in document.get("authentication", []):
        if isinstance(method_id, str) and \
                find_verification_key(document, method_id, "authentication") == public_key:
            return method_id
    raise LocalError(f"the key is not an authentication key of {did}")


@vc_app.command("publish-list")
@reports_errors
def publish_list(list_id: Annotated[str, typer.Argument(help="The status list's id.")],
                 home: HomeOption, out: OutOption, node: NodeOption = None,
                 key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
                 json: JsonOption = False) -> None:
    """Sign the BitstringStatusListCredential of a list's bits on chain, anchor its hash."""
    signing_key = Home(home).load_key(key)
    with common.open_client(home, node) as client:
        listing = vc.get_result(client, "vc", "status_list", list_id=list_id)
        if listing is None:
            raise LocalError(f"status list {list_id!r} does not exist on this chain")
        method = find_assertion_method(client, listing["issuer"], signing_key.public_key)
    bits = StatusList(listing["size"])
    for index in listing["set_indices"]:
        bits.set(index, True)
    unsigned = build_status_list_credential(vc.compute_status_list_url(list_id),
                                            listing["issuer"], bits, listing["purpose"])
    signed = integrity.sign(unsigned, signing_key, method, datetime.now(UTC))
    committed = submit_service_tx(home, node, key, "vc", "anchor_status_list", {
        "list_id": list_id, "sha256": vc.compute_anchor_hash(signed)}, timeout)
    if committed["result"]["code"] == 0:
        write_text(out, format_json(signed))
    report_commit(committed, json)
