"""`seoulchain eligibility`: yes/no checks answered with selective-disclosure credentials.

A verifier writes a request (`ask`: a question, its audience, the issuers it trusts and a
fresh nonce); the holder answers it from an SD-JWT VC (`answer`: only the claims the
question needs, bound to the nonce by the holder's key); the verifier checks the answer
(`check`) against the chain: the issuer's key from its DID document, the credential's
status bit from the issuer's status list. `issue` makes such a credential for a holder.
The library is credentials/sdjwt.py; docs/identity.md describes the flow.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from seoulchain.cli import common
from seoulchain.cli.common import (
    JsonOption,
    NodeOption,
    OptionalHomeOption,
    console,
    print_json,
    reports_errors,
)
from seoulchain.cli.did import parse_public_key
from seoulchain.cli.exit_codes import EXIT_ANSWER_REFUSED, EXIT_NOT_ELIGIBLE
from seoulchain.client.credentials import (
    StatusUnavailable,
    check_credential_status,
    compute_status_list_url,
)
from seoulchain.client.did import DidNotResolved, get_assertion_key, resolve_did
from seoulchain.client.http import NodeClient
from seoulchain.credentials import sdjwt
from seoulchain.credentials.sdjwt import (
    EligibilityRequest,
    IssuerKeyNotAuthorised,
    NonceStore,
    PresentationError,
    StatusNotConfirmed,
    Verdict,
)
from seoulchain.credentials.statuslist import build_status_entry
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.services.did import DidKeyError

eligibility_app = typer.Typer(
    no_args_is_help=True,
    help="Yes/no eligibility checks that reveal nothing else (SD-JWT VC; docs/identity.md).")

# Request, question and claims files are small JSON: a question has at most 16 conditions.
JSON_FILE_BYTES_MAX = 64 * 1024
# A credential's validity: a year by default, at most five (a residence card's renewal).
VALID_DAYS_DEFAULT = 365
VALID_DAYS_MAX = 5 * 365
SECONDS_PER_DAY = 86_400
# The verifier's store of used nonces (relative to the working directory, as the demo's home).
NONCE_STORE_DEFAULT = Path(".seoulchain/eligibility/used-nonces.json")

KeyFileOption = Annotated[Path, typer.Option(
    "--key", help="Ed25519 key file (as `seoulchain keys create` writes, HOME/keys/NAME.key).")]
OutOption = Annotated[Path, typer.Option("--out", help="File to write.")]


@eligibility_app.command("issue")
@reports_errors
def issue(key: KeyFileOption,
          issuer: Annotated[str, typer.Option(help="The issuer's DID; --key must be one of "
                                                   "its assertion methods.")],
          holder: Annotated[str, typer.Option(help="The holder's Ed25519 public key: hex or "
                                                   "Multikey (z6Mk...).")],
          claims: Annotated[Path, typer.Option(help="JSON object of the claims, e.g. "
                                                    '{"residence_city": "Seoul", '
                                                    '"age_band": "25-29"}.')],
          status_list: Annotated[str, typer.Option(
              help="Id of the issuer's status list on chain (vc create_status_list).")],
          status_index: Annotated[int, typer.Option(
              min=0, help="The credential's index in that status list.")],
          out: OutOption, home: OptionalHomeOption = None, node: NodeOption = None,
          valid_days: Annotated[int, typer.Option(
              min=1, max=VALID_DAYS_MAX, help="Days until the credential expires.")]
          = VALID_DAYS_DEFAULT) -> None:
    """Issue an SD-JWT VC to a holder, every claim selectively disclosable."""
    signing_key = SigningKey.load(key)
    claims_value = read_json_file(claims, "claims")
    holder_key = parse_public_key(holder)  # hex or Multikey, as `did create` takes it
    status = build_status_entry(compute_status_list_url(status_list), status_index)
    with open_node(home, node) as client:
        kid = find_assertion_method(client, issuer, signing_key.public_key)
        check_status_slot(client, status, issuer)
    now_s = int(time.time())
    credential = sdjwt.issue_credential(signing_key, kid, holder_key, claims_value, status,
                                        issued_at_s=now_s,
                                        expires_at_s=now_s + valid_days * SECONDS_PER_DAY)
    write_text(out, credential + "\n")
    console.print(f"wrote {out}: an SD-JWT VC from {kid} with claims "
                  f"{', '.join(sorted(claims_value))}", highlight=False)


@eligibility_app.command("ask")
@reports_errors
def ask(audience: Annotated[str, typer.Option(help="Who asks (the verifier's id, e.g. "
                                                   "mapo-gu-youth-desk).")],
        issuer: Annotated[list[str], typer.Option(help="An issuer DID this verifier trusts "
                                                       "(repeatable).")],
        out: OutOption,
        question: Annotated[Path | None, typer.Option(
            help='Question file: {"all"|"any": [{"claim": NAME, "equals": V} | {"claim": '
                 'NAME, "in": [V, ...]} | ...]}.')] = None,
        preset: Annotated[str | None, typer.Option(
            help=f"A ready-made question: {', '.join(sdjwt.PRESETS)}.")] = None,
        lifetime_s: Annotated[int, typer.Option(
            min=sdjwt.REQUEST_LIFETIME_S_MIN, max=sdjwt.REQUEST_LIFETIME_S_MAX,
            help="Seconds the request can be answered.")]
        = sdjwt.REQUEST_LIFETIME_S) -> None:
    """Write a request with a fresh nonce: the holder answers it with `answer`."""
    if (question is None) == (preset is None):
        raise LocalError("give the question with exactly one of --question and --preset")
    if preset is not None and preset not in sdjwt.PRESETS:
        raise LocalError(f"no preset {preset!r}; presets: {', '.join(sdjwt.PRESETS)}")
    asked = sdjwt.PRESETS[preset] if preset is not None else \
        sdjwt.parse_question(read_json_file(question, "question"))  # type: ignore[arg-type]
    request = sdjwt.make_request(asked, audience, issuer, int(time.time()),
                                 lifetime_s=lifetime_s)
    write_text(out, json.dumps(request.to_json(), indent=2) + "\n")
    claims = ", ".join(sorted(sdjwt.get_question_claims(asked)))
    console.print(f"wrote {out}: asks about {claims}; answerable for {lifetime_s} s",
                  highlight=False)


@eligibility_app.command("answer")
@reports_errors
def answer(request_file: Annotated[Path, typer.Argument(help="The verifier's request.")],
           credential: Annotated[Path, typer.Option(help="The holder's SD-JWT VC file.")],
           key: KeyFileOption, out: OutOption) -> None:
    """Answer a request, disclosing only the claims its question needs."""
    request = read_request(request_file)
    text = read_text_file(credential, sdjwt.PRESENTATION_BYTES_MAX, "credential").strip()
    presentation = sdjwt.present(text, request.question, SigningKey.load(key), request)
    write_text(out, presentation + "\n")
    held = set(sdjwt.read_credential_claims(text)[1])
    shown = sdjwt.read_credential_claims(presentation)[1]
    withheld = ", ".join(sorted(held - set(shown))) or "nothing"
    console.print(f"wrote {out} for {request.audience}: discloses "
                  f"{', '.join(sorted(shown))}; withholds {withheld}", highlight=False)


@eligibility_app.command("check")
@reports_errors
def check(request_file: Annotated[Path, typer.Argument(help="The request this answers.")],
          answer_file: Annotated[Path, typer.Argument(help="The holder's answer.")],
          home: OptionalHomeOption = None, node: NodeOption = None,
          nonce_store: Annotated[Path, typer.Option(
              help="This verifier's record of answered requests (refuses replays).")]
          = NONCE_STORE_DEFAULT,
          json: JsonOption = False) -> None:
    """Check an answer against the chain and print yes or no with the claims seen.

    Exit status 0: yes; 20: no, the claims do not meet the question; 21: no, the answer is
    refused (forged, altered, for another request, replayed, expired or revoked).
    """
    request = read_request(request_file)
    text = read_text_file(answer_file, sdjwt.PRESENTATION_BYTES_MAX, "answer").strip()
    try:
        with open_node(home, node) as client, open_nonce_store(nonce_store) as nonces:
            verdict = sdjwt.verify_presentation(
                text, request, get_issuer_key=make_issuer_key_lookup(client),
                is_status_set=lambda entry, issuer: is_status_set(client, entry, issuer),
                nonces=nonces,
                now_s=int(time.time()))
    except PresentationError as exc:
        report_refusal(exc, json)
    report_verdict(verdict, json)


def report_verdict(verdict: Verdict, as_json: bool) -> None:
    """Print the verdict and what the verifier saw; exit 0 for yes, 20 for no."""
    if as_json:
        print_json(verdict.to_json())
    else:
        seen = ", ".join(f"{name} = {json.dumps(value, ensure_ascii=False)}"
                         for name, value in sorted(verdict.claims_seen.items()))
        typer.echo(f"{'yes' if verdict.eligible else 'no'}: claims seen: {seen or 'none'}")
        for reason in verdict.unmet:
            typer.echo(f"  unmet       {reason}")
        typer.echo(f"  issuer      {verdict.issuer} (key {verdict.kid})")
        typer.echo(f"  status      not revoked ({verdict.status.get('statusListCredential')} "
                   f"index {verdict.status.get('statusListIndex')})")
        typer.echo(f"  holder key  JWK thumbprint {verdict.holder_jwk_thumbprint}")
    if not verdict.eligible:
        raise typer.Exit(EXIT_NOT_ELIGIBLE)


def report_refusal(exc: PresentationError, as_json: bool) -> NoReturn:
    """Print "no" and why the answer was refused; exit 21."""
    if as_json:
        print_json({"answer": "no", "refused": type(exc).__name__, "reason": str(exc)})
    else:
        typer.echo(f"no: the answer is refused: {exc}")
    raise typer.Exit(EXIT_ANSWER_REFUSED)


# --- the chain: issuer keys and status bits --------------------------------------------


@contextlib.contextmanager
def open_node(home: Path | None, node: str | None) -> Iterator[NodeClient]:
    """Open a client of `--node`, or of the node of `--home`."""
    if node is None and home is None:
        raise LocalError("name the node to ask: --node URL, or --home of a node")
    with common.open_client(home or Path("."), node) as client:
        yield client


def make_issuer_key_lookup(client: NodeClient) -> Callable[[str], bytes]:
    """Return kid -> Ed25519 key of that assertion method in the DID resolved at the tip."""
    def get_issuer_key(kid: str) -> bytes:
        try:
            return get_assertion_key(client, kid)
        except (DidKeyError, DidNotResolved) as exc:
            raise IssuerKeyNotAuthorised(str(exc)) from None
    return get_issuer_key


def is_status_set(client: NodeClient, entry: dict[str, Any], issuer: str) -> bool:
    """Return True if the entry's status bit is set on a chain list of `issuer`."""
    try:
        result = check_credential_status(client, entry)
    except StatusUnavailable as exc:
        raise StatusNotConfirmed(str(exc)) from None
    if result.issuer != issuer:
        raise StatusNotConfirmed(f"status list {result.list_id!r} belongs to {result.issuer}, "
                                 f"not to the issuer {issuer}")
    return result.is_set


def check_status_slot(client: NodeClient, entry: dict[str, Any], issuer: str) -> None:
    """Refuse a status entry that is not a clear index of one of the issuer's lists."""
    try:
        if is_status_set(client, entry, issuer):
            raise LocalError(f"index {entry['statusListIndex']} of the status list is already "
                             f"set (revoked): choose a free index")
    except StatusNotConfirmed as exc:
        raise LocalError(f"the status entry cannot be used: {exc}") from None


def find_assertion_method(client: NodeClient, did: str, public_key: bytes) -> str:
    """Return the id of `did`'s assertion method whose key is `public_key`."""
    document = resolve_did(client, did)["didDocument"]
    if document is None:
        raise LocalError(f"{did} does not resolve on this chain")
    for method_id in document.get("assertionMethod", []):
        with contextlib.suppress(DidKeyError):
            if get_assertion_key(client, method_id) == public_key:
                return str(method_id)
    raise LocalError(f"the key is not an assertion method of {did}: it cannot issue for it")


# --- files -----------------------------------------------------------------------------


def read_text_file(path: Path, bytes_max: int, what: str) -> str:
    """Return a text file of at most `bytes_max` bytes."""
    try:
        with path.open("rb") as handle:
            data = handle.read(bytes_max + 1)
    except OSError as exc:
        raise LocalError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if len(data) > bytes_max:
        raise LocalError(f"{path} is larger than a {what} ({bytes_max} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise LocalError(f"{path} is not UTF-8 text") from None


def read_json_file(path: Path, what: str) -> Any:
    """Return the JSON value in a small file."""
    try:
        return json.loads(read_text_file(path, JSON_FILE_BYTES_MAX, what))
    except (ValueError, RecursionError) as exc:
        raise LocalError(f"{path} is not JSON: {exc}") from None


def read_request(path: Path) -> EligibilityRequest:
    return sdjwt.parse_request(read_json_file(path, "request"))


def write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise LocalError(f"cannot write {path}: {exc.strerror}") from exc


@contextlib.contextmanager
def open_nonce_store(path: Path) -> Iterator[NonceStore]:
    """Lock the verifier's used-nonce file, yield its store, and write it back after."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LocalError(f"cannot open the nonce store {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one `check` at a time per store
        text = handle.read()
        try:
            used = json.loads(text) if text else {}
        except ValueError:
            used = None
        if not isinstance(used, dict) or len(used) > sdjwt.USED_NONCES_MAX or not all(
                type(until) is int for until in used.values()):
            raise LocalError(f"the nonce store {path} is damaged; move it away (a new one "
                             f"starts empty, so requests asked before cannot be checked)")
        store = NonceStore(used)
        yield store
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(store.used))
        handle.flush()
        os.fsync(handle.fileno())
