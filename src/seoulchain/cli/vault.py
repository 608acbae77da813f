"""`seoulchain vault ...`: the agency's personal data vault in its node home.

The vault (HOME/data/vault.sqlite) and its key (HOME/keys/vault.secret) are created on first
use; docs/identity.md, "The personal data vault", explains what they hold. `correct` also
tells the chain: it submits the `did` service's `supersede_record` with the new commitment
through the same path as `seoulchain tx` (`--no-chain` skips that).
"""

from __future__ import annotations

import functools
import json as json_module
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from seoulchain.cli.common import (
    HomeOption,
    JsonOption,
    NodeIndexOption,
    NodeOption,
    console,
    err_console,
    open_client,
    print_json,
    reports_errors,
    resolve_node_home,
)
from seoulchain.cli.did import PublicKeyOption, SubjectKeyOption, choose_public_key
from seoulchain.cli.exit_codes import EXIT_NOT_FOUND
from seoulchain.cli.services import check_args, get_method_args, get_service
from seoulchain.cli.txs import (
    EXPIRY_BLOCKS_DEFAULT,
    KeyOption,
    TimeoutOption,
    get_other_urls,
    report_commit,
    report_outcome_unknown,
    submit_service_tx,
)
from seoulchain.client.http import NodeClient, OutcomeUnknown, submit_and_confirm
from seoulchain.errors import LocalError, SeoulchainError
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import OPERATOR_KEY_NAME, Home
from seoulchain.services.did import compute_did
from seoulchain.vault import (
    Commitment,
    SubjectErased,
    UnknownSubject,
    Vault,
    compute_commitment,
    encode_record,
    generate_salt,
)
from seoulchain.vault.errors import format_time_ms
from seoulchain.vault.records import RECORD_TEXT_BYTES_MAX, parse_record
from seoulchain.vault.store import ACCESS_LOG_ENTRIES_MAX

VAULT_FILE = "vault.sqlite"
VAULT_KEY_FILE = "vault.secret"
# The on-chain side of the vault: the did service, whose DIDs name the vault's subjects.
DID_SERVICE = "did"
SUPERSEDE_METHOD = "supersede_record"

F = TypeVar("F", bound=Callable[..., Any])

vault_app = typer.Typer(
    no_args_is_help=True,
    help="The agency's personal data vault: records kept off chain, each subject's under a "
         "key of their own; reads are logged, erasure destroys the key.")

SubjectArgument = Annotated[str, typer.Argument(
    metavar="SUBJECT", show_default=False, help="The subject's DID (did:seoul:...).")]
RecordJsonOption = Annotated[str | None, typer.Option(
    "--record-json", help="The record: a JSON object.")]
RecordFileOption = Annotated[Path | None, typer.Option(
    "--record-file", help="Read the record (a JSON object) from this file.")]


def reports_not_found(function: F) -> F:
    """Turn an unknown or erased subject into its one-line message and exit status 3."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (UnknownSubject, SubjectErased) as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(EXIT_NOT_FOUND) from exc
    return wrapper  # type: ignore[return-value]


def open_vault(home: Path, node_index: int | None) -> Vault:
    """Open the vault of a node home (node-<i> of a devnet directory), created on first use."""
    node_home = resolve_node_home(home, node_index)
    return Vault.open(node_home.data_dir / VAULT_FILE, node_home.keys_dir / VAULT_KEY_FILE)


def read_record(record_json: str | None, record_file: Path | None) -> dict[str, Any]:
    """Return the record given by exactly one of --record-json and --record-file."""
    if (record_json is None) == (record_file is None):
        raise LocalError("give the record with exactly one of --record-json and --record-file")
    if record_file is None:
        return parse_record(str(record_json))
    try:
        with record_file.open("rb") as handle:
            data = handle.read(RECORD_TEXT_BYTES_MAX + 1)
    except OSError as exc:
        raise LocalError(f"cannot read {record_file}: {exc.strerror}") from exc
    return parse_record(data)


def print_commitment(commitment: Commitment, as_json: bool) -> None:
    if as_json:
        print_json({"subject": commitment.subject, "version": commitment.version,
                    "commitment": commitment.hex()})
        return
    console.print(f"{commitment.subject} version {commitment.version}\n"
                  f"commitment {commitment.hex()}", highlight=False)


@vault_app.command("put")
@reports_errors
@reports_not_found
def vault_put(subject: SubjectArgument, home: HomeOption, record_json: RecordJsonOption = None,
              record_file: RecordFileOption = None, node_index: NodeIndexOption = None,
              json: JsonOption = False) -> None:
    """Store SUBJECT's first record; print its commitment (the DID's record_commitment)."""
    record = read_record(record_json, record_file)
    with open_vault(home, node_index) as vault:
        commitment = vault.put(subject, record)
    print_commitment(commitment, json)


@vault_app.command("register")
@reports_errors
def vault_register(home: HomeOption, public_key: PublicKeyOption = None,
                   subject_key: SubjectKeyOption = None, record_json: RecordJsonOption = None,
                   record_file: RecordFileOption = None, node: NodeOption = None,
                   key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
                   node_index: NodeIndexOption = None, json: JsonOption = False) -> None:
    """Create a subject's DID and put their first record, whose commitment the DID holds.

    A did:seoul DID is derived from its create transaction, which carries the commitment:
    the transaction is signed first, the record stored under the DID it makes, then the
    transaction is sent. If the chain refuses it, the record is erased again. Exit status
    4: the outcome is unknown (the record stays; the DID may still be created).
    """
    record = read_record(record_json, record_file)
    salt = generate_salt()
    args = {"public_key": choose_public_key(home, public_key, subject_key, "--public-key"),
            "record_commitment": compute_commitment(salt, encode_record(record))}
    check_args(get_method_args(get_service(DID_SERVICE), "create"), "did.create", args)
    with open_client(home, node) as client:
        tx = sign_tx(client, home, key, "create", args)
        did = compute_did(tx.hash())
        with open_vault(home, node_index) as vault:
            commitment = vault.put(did, record, salt)
            if not json:
                print_commitment(commitment, False)
            committed = submit_create(client, home, tx, vault, timeout)
    if json:
        print_json({"subject": did, "version": commitment.version,
                    "commitment": commitment.hex(), "create_tx": committed})
    else:
        report_commit(committed, False)


def sign_tx(client: NodeClient, home: Path, key_name: str, method: str,
            args: dict[str, Any]) -> Transaction:
    """Return a did service transaction signed with the named key, as `seoulchain tx` signs."""
    key = Home(home).load_key(key_name)
    status = client.get_status()
    return Transaction.create(key, chain_id=status["chain_id"],
                              nonce=client.get_next_nonce(key.public_key),
                              expiry_height=status["height"] + EXPIRY_BLOCKS_DEFAULT,
                              service=DID_SERVICE, method=method, args=args)


def submit_create(client: NodeClient, home: Path, tx: Transaction, vault: Vault,
                  timeout_s: float) -> dict[str, Any]:
    """Send a DID's create transaction; erase its record again if the chain refuses it."""
    did = compute_did(tx.hash())
    try:
        committed = submit_and_confirm(client, tx, timeout_s, get_other_urls(home))
    except OutcomeUnknown as exc:
        report_outcome_unknown(exc, home, tx.expiry_height)
        raise  # not reached: the report exits
    except SeoulchainError as exc:
        vault.erase(did)
        raise LocalError(f"{did} was not created ({exc}); its record was erased from the "
                         f"vault") from exc
    result = committed["result"]
    if result["code"] != 0:
        vault.erase(did)
        raise LocalError(f"{did} was not created: the transaction failed "
                         f"({result['code_name']}: {result['log']}); its record was erased "
                         f"from the vault")
    return committed


@vault_app.command("get")
@reports_errors
@reports_not_found
def vault_get(subject: SubjectArgument, home: HomeOption,
              accessor: Annotated[str, typer.Option(
                  help="Who reads: an officer's or a system's name, written to the access "
                       "log.")],
              purpose: Annotated[str, typer.Option(
                  help="Why: a case number or a sentence, written to the access log.")],
              version: Annotated[int | None, typer.Option(
                  help="Read this version (default: the latest).", min=1)] = None,
              node_index: NodeIndexOption = None, json: JsonOption = False) -> None:
    """Print SUBJECT's record; the read is logged with --accessor and --purpose.

    --json adds the version, its commitment and the salt that opens it. Exit status 3:
    no record (the subject is unknown or erased).
    """
    with open_vault(home, node_index) as vault:
        found = vault.get(subject, accessor, purpose, version)
    if not json:
        typer.echo(json_module.dumps(found.record, indent=2, ensure_ascii=False))
        return
    print_json({"subject": found.subject, "version": found.version,
                "commitment": found.commitment.hex(), "salt": found.salt.hex(),
                "stored_at": format_time_ms(found.stored_at_ms), "record": found.record})


@vault_app.command("correct")
@reports_errors
@reports_not_found
def vault_correct(subject: SubjectArgument, home: HomeOption,
                  record_json: RecordJsonOption = None, record_file: RecordFileOption = None,
                  reason: Annotated[str, typer.Option(
                      help="Why, as the did service's reason code: correction, update, "
                           "reissue or legal.")] = "correction",
                  no_chain: Annotated[bool, typer.Option(
                      "--no-chain", help="Only write the vault; submit nothing.")] = False,
                  node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
                  timeout: TimeoutOption = 30.0, node_index: NodeIndexOption = None,
                  json: JsonOption = False) -> None:
    """Store a new version of SUBJECT's record and supersede its commitment on chain.

    The old version stays sealed in the vault until erasure. The on-chain record is the
    did service's supersede_record, signed with --key (the agency's registrar key).
    Exit status 4: the transaction's outcome is unknown.
    """
    record = read_record(record_json, record_file)
    if not no_chain:
        check_supersede_args(subject, reason)
        Home(home).load_key(key)  # a missing key is reported before the vault changes
    with open_vault(home, node_index) as vault:
        commitment = vault.correct(subject, record)
    if no_chain or not json:
        print_commitment(commitment, json)
    if no_chain:
        return
    args = {"did": subject, "new_commitment": commitment.digest, "reason": reason}
    try:
        committed = submit_service_tx(home, node, key, DID_SERVICE, SUPERSEDE_METHOD,
                                      args, timeout)
        if json:
            print_json({"subject": subject, "version": commitment.version,
                        "commitment": commitment.hex(), "supersede_tx": committed})
            check_committed(committed)
        else:
            report_commit(committed, False)
    except SeoulchainError as exc:
        raise LocalError(f"the vault holds version {commitment.version}, but the chain was "
                         f"not told: {exc}. Submit it with: seoulchain tx did "
                         f"supersede_record did={subject} new_commitment={commitment.hex()} "
                         f"reason={reason} --home {home}") from exc


def check_committed(committed: dict[str, Any]) -> None:
    """Raise `LocalError` if a committed transaction failed (`report_commit`'s check, for
    the one JSON object `correct --json` prints)."""
    result = committed["result"]
    if result["code"] != 0:
        raise LocalError(f"the transaction was committed but failed: {result['code_name']}: "
                         f"{result['log']}")


def check_supersede_args(subject: str, reason: str) -> None:
    """Refuse, before the vault changes, what the did service's supersede_record refuses."""
    model = get_method_args(get_service(DID_SERVICE), SUPERSEDE_METHOD)
    check_args(model, f"{DID_SERVICE}.{SUPERSEDE_METHOD}",
               {"did": subject, "new_commitment": bytes(32), "reason": reason})


@vault_app.command("erase")
@reports_errors
@reports_not_found
def vault_erase(subject: SubjectArgument, home: HomeOption,
                yes: Annotated[bool, typer.Option(
                    "--yes", help="Do not ask for confirmation.")] = False,
                node_index: NodeIndexOption = None) -> None:
    """Erase every version of SUBJECT's record for good: their key is destroyed.

    The access log is kept. Erasing an erased subject scrubs the file again.
    """
    with open_vault(home, node_index) as vault:
        if not yes and not typer.confirm(f"erase every record of {subject} from {vault.path} "
                                         f"for good?"):
            raise typer.Abort()
        erased_at_ms = vault.erase(subject)
    console.print(f"erased {subject} at {format_time_ms(erased_at_ms)}: its key and records "
                  f"are gone from the vault; the commitment on chain links to nothing",
                  highlight=False)


@vault_app.command("access-log")
@reports_errors
@reports_not_found
def vault_access_log(subject: SubjectArgument, home: HomeOption,
                     limit: Annotated[int, typer.Option(
                         help="Show the latest LIMIT reads.", min=1,
                         max=ACCESS_LOG_ENTRIES_MAX)] = ACCESS_LOG_ENTRIES_MAX,
                     node_index: NodeIndexOption = None, json: JsonOption = False) -> None:
    """Print every read of SUBJECT's record: when (UTC), who, why, which version.

    Kept after erasure, for the subject to ask for. Exit status 3: an unknown subject.
    """
    with open_vault(home, node_index) as vault:
        entries = vault.access_log(subject, limit)
    if json:
        print_json({"subject": subject, "reads": [
            {"time": format_time_ms(entry.at_ms), "time_ms": entry.at_ms,
             "accessor": entry.accessor, "purpose": entry.purpose, "version": entry.version}
            for entry in entries]})
        return
    if not entries:
        typer.echo(f"no one has read the record of {subject}")
    for entry in entries:
        typer.echo(f"{format_time_ms(entry.at_ms)}  v{entry.version}  {entry.accessor}  "
                   f"{entry.purpose}")
