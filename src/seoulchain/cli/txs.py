"""`seoulchain tx ...` and `seoulchain query ...`: sign, submit, wait, and read back.

`tx SERVICE METHOD key=value ...` and `query SERVICE NAME key=value ...` reach every
installed service through its own argument schemas (cli/services.py). The group's own
commands come first: `tx status`, and shortcuts such as `tx notary anchor FILE`, which build
their arguments and then take the same path; words after a shortcut's service and method
that are `key=value` pairs (or `--args-json`) select the generic form instead.
"""

from __future__ import annotations

import json as json_module
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from seoulchain.cli.common import (
    HomeOption,
    JsonOption,
    NodeOption,
    console,
    err_console,
    finite_float,
    get_node_urls,
    hash_file,
    open_client,
    print_json,
    reports_errors,
)
from seoulchain.cli.exit_codes import EXIT_NOT_FOUND, EXIT_OUTCOME_UNKNOWN
from seoulchain.cli.services import (
    build_args,
    check_args,
    get_method_args,
    get_query_args,
    get_service,
    is_pair,
)
from seoulchain.client.http import (
    NodeClient,
    NodeUnavailable,
    OutcomeUnknown,
    find_committed_tx,
    submit_and_confirm,
)
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.errors import LocalError
from seoulchain.execution.personal_data import PersonalDataError, check_public_text
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import Transaction
from seoulchain.light.bundle import format_time, quote_text
from seoulchain.node.home import OPERATOR_KEY_NAME, Home

# A transaction submitted from the CLI stays valid for this many blocks.
EXPIRY_BLOCKS_DEFAULT = 100

class ServiceCommands(TyperGroup):
    """A command group whose unknown first word is a service: `SERVICE NAME key=value ...`."""

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        """Return the named command, or the generic one with the service as its name."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and (self.get_command(ctx, name) is None
                                                  or is_generic_form(args)):
            return name, self.get_generic_command(), args[1:]
        return super().resolve_command(ctx, args)

    def get_generic_command(self) -> click.Command:
        """Return the command that runs `SERVICE NAME key=value ...` (set by subclasses)."""
        raise NotImplementedError


class TxCommands(ServiceCommands):
    def get_generic_command(self) -> click.Command:
        return typer.main.get_command(generic_tx_app)


class QueryCommands(ServiceCommands):
    def get_generic_command(self) -> click.Command:
        return typer.main.get_command(generic_query_app)


def is_generic_form(args: list[str]) -> bool:
    """Return True for `SERVICE NAME key=value ...` or `SERVICE NAME --args-json ...`."""
    return (len(args) >= 3 and not args[1].startswith("-")
            and (is_pair(args[2]) or args[2].startswith("--args-json")))


tx_app = typer.Typer(
    cls=TxCommands, no_args_is_help=True,
    help="Sign and submit transactions, wait for commit: `tx SERVICE METHOD key=value ...` "
         "for any installed service (`seoulchain services` lists them), or a command below.")
query_app = typer.Typer(
    cls=QueryCommands, no_args_is_help=True,
    help="Read service state from a node: `query SERVICE NAME key=value ...` for any "
         "installed service (`seoulchain services` lists them), or a command below.")
generic_tx_app = typer.Typer(add_completion=False)
generic_query_app = typer.Typer(add_completion=False)
notary_tx_app = typer.Typer(no_args_is_help=True, help="Notary: anchor and supersede documents.")
tx_app.add_typer(notary_tx_app, name="notary")

KeyOption = Annotated[str, typer.Option("--key", help="Name of the signing key in HOME/keys.")]
# An hour: a commit takes seconds, so a longer wait means the network is down.
COMMIT_WAIT_S_MAX = 3600.0
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for commit.",
                                              parser=finite_float(0, COMMIT_WAIT_S_MAX))]
MetaOption = Annotated[list[str] | None, typer.Option(
    "--meta", help="Public metadata as key=value (repeatable). Never personal data.")]


def parse_metadata(items: list[str] | None) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LocalError(f"--meta {item!r} must look like key=value")
        refuse_personal_data(f"--meta {key}", key)
        refuse_personal_data(f"--meta {key}", value)
        metadata[key] = value
    return metadata


def refuse_personal_data(option: str, text: str) -> None:
    """Refuse, before anything is signed, public text that holds plainly personal data."""
    try:
        check_public_text(option, text)
    except PersonalDataError as exc:
        raise LocalError(str(exc)) from None


def submit_and_wait(client: NodeClient, home: Path, key_name: str, service: str,
                    method: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Sign a transaction with the named key, submit it, and wait for its commit.

    If the node's answer is lost, the home's other nodes are asked before anything is
    reported; when none confirms the commit, the outcome is reported as unknown (exit 4).
    """
    key = Home(home).load_key(key_name)
    status = client.get_status()
    tx = Transaction.create(key, chain_id=status["chain_id"],
                            nonce=client.get_next_nonce(key.public_key),
                            expiry_height=status["height"] + EXPIRY_BLOCKS_DEFAULT,
                            service=service, method=method, args=args)
    try:
        return submit_and_confirm(client, tx, timeout_s, get_other_urls(home))
    except OutcomeUnknown as exc:
        report_outcome_unknown(exc, home, tx.expiry_height)
        raise  # not reached: the report exits


def get_other_urls(home: Path) -> list[str]:
    """Return the API URLs of the home's nodes, to look a transaction up on (best effort)."""
    try:
        return get_node_urls(home)
    except LocalError:
        return []


def report_outcome_unknown(exc: OutcomeUnknown, home: Path, expiry_height: int) -> None:
    """Say that a transaction may or may not commit, how to check later, and exit 4."""
    pending = [url for url, status in exc.lookup.statuses.items() if status == "pending"]
    where = (f"it waits in the mempool of {', '.join(pending)}" if pending
             else "no node that answered has it committed yet")
    err_console.print(
        f"[yellow]outcome unknown[/yellow]: transaction {exc.tx_hash.hex()} was sent but its "
        f"commit is not confirmed: {exc.reason}; {where}. It can still commit until height "
        f"{expiry_height}; do not resend it. Check it with: seoulchain tx status "
        f"{exc.tx_hash.hex()} --home {home}", highlight=False)
    raise typer.Exit(EXIT_OUTCOME_UNKNOWN)


def report_commit(committed: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(committed)
    result = committed["result"]
    if not as_json:
        console.print(f"committed at height {committed['height']}  tx {committed['hash']}",
                      highlight=False)
    if result["code"] != 0:
        raise LocalError(f"the transaction was committed but failed: "
                         f"{result['code_name']}: {result['log']}")


def submit_service_tx(home: Path, node: str | None, key_name: str, service: str,
                      method: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Check `args` against the installed service's schema, then sign, submit and wait."""
    check_args(get_method_args(get_service(service), method), f"{service}.{method}", args)
    with open_client(home, node) as client:
        return submit_and_wait(client, home, key_name, service, method, args, timeout_s)


def run_service_query(client: NodeClient, service: str, name: str,
                      pairs: list[str]) -> dict[str, Any]:
    """Check `key=value` query arguments against the service's schema, then run the query.

    Returns the node's answer, {"height", "result"}. The API reads arguments as URL
    parameters, so a null one is left out (the query's default applies).
    """
    model = get_query_args(get_service(service), name)
    what = f"{service}.{name}"
    args = build_args(model, what, pairs)
    check_args(model, what, args)
    return client.query(service, name, **{key: format_query_value(value)
                                          for key, value in args.items() if value is not None})


def format_query_value(value: Any) -> str:
    """Return a query argument as the text the API reads: bytes as hex, JSON otherwise."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str):
        return value
    return json_module.dumps(to_jsonable(value))


MethodArgument = Annotated[str, typer.Argument(metavar="METHOD", show_default=False,
                                               help="The service's method.")]
QueryNameArgument = Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                                  help="The service's query.")]
PairsArgument = Annotated[list[str] | None, typer.Argument(
    metavar="KEY=VALUE", show_default=False,
    help="Arguments, converted by the schema (`seoulchain services SERVICE`).")]
ArgsJsonOption = Annotated[Path | None, typer.Option(
    "--args-json", help="Read arguments from a JSON object in this file (key=value pairs "
                        "given too take precedence).")]


@generic_tx_app.command()
@reports_errors
def service_tx(ctx: typer.Context, method: MethodArgument, home: HomeOption,
               pairs: PairsArgument = None, args_json: ArgsJsonOption = None,
               node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
               timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Call METHOD of the service with key=value arguments: sign, submit, wait for commit.

    Exit status 0: committed; 1: refused or failed; 4: outcome unknown.
    """
    service = str(ctx.info_name)
    model = get_method_args(get_service(service), method)
    args = build_args(model, f"{service}.{method}", pairs or [], args_json)
    committed = submit_service_tx(home, node, key, service, method, args, timeout)
    report_commit(committed, json)


@generic_query_app.command()
@reports_errors
def service_query(ctx: typer.Context, name: QueryNameArgument, home: HomeOption,
                  pairs: PairsArgument = None, node: NodeOption = None,
                  json: JsonOption = False) -> None:
    """Run the service's query NAME with key=value arguments on the node's committed state.

    Prints the result as JSON; exit status 3 when it is null (nothing found).
    """
    with open_client(home, node) as client:
        answer = run_service_query(client, str(ctx.info_name), name, pairs or [])
    if json:
        print_json(answer)
    else:
        typer.echo(f"as of height {answer['height']}")
        typer.echo(json_module.dumps(answer["result"], indent=2, sort_keys=True))
    if answer["result"] is None:
        raise typer.Exit(EXIT_NOT_FOUND)


@tx_app.command("status")
@reports_errors
def tx_status(tx_hash: Annotated[str, typer.Argument(help="The transaction's hash (hex).")],
              home: HomeOption, node: NodeOption = None, json: JsonOption = False) -> None:
    """Look a transaction up by hash on every node of the home.

    Exit status 0: committed; 1: committed but failed; 4: not committed (yet) on any node
    that answered.
    """
    try:
        tx_bytes = bytes.fromhex(tx_hash)
    except ValueError:
        tx_bytes = b""
    if len(tx_bytes) != 32:
        raise LocalError(f"{tx_hash!r} is not a transaction hash (64 hex digits)")
    urls = [node] if node else get_node_urls(home)
    lookup = find_committed_tx(urls, tx_bytes, 0.0)
    if lookup.committed is not None:
        report_commit(lookup.committed, json)
        return
    if not lookup.statuses:
        raise NodeUnavailable(f"no node answered at {', '.join(urls)}")
    for url, status in lookup.statuses.items():
        console.print(f"{url}: {status}", highlight=False)
    console.print(f"transaction {tx_hash} is not committed on any node that answered",
                  highlight=False)
    raise typer.Exit(EXIT_OUTCOME_UNKNOWN)


@notary_tx_app.command("anchor")
@reports_errors
def notary_anchor(file: Path, home: HomeOption, node: NodeOption = None,
                  kind: Annotated[str, typer.Option(help="Document kind.")] = "document",
                  meta: MetaOption = None, key: KeyOption = OPERATOR_KEY_NAME,
                  timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Anchor FILE's SHA-256 on chain (the file itself never leaves this machine)."""
    doc_hash = hash_file(file)
    refuse_personal_data("--kind", kind)
    args = {"doc_hash": doc_hash, "kind": kind, "metadata": parse_metadata(meta)}
    committed = submit_service_tx(home, node, key, "notary", "anchor", args, timeout)
    if not json:
        console.print(f"document sha256:{doc_hash.hex()}", highlight=False)
    report_commit(committed, json)


@notary_tx_app.command("supersede")
@reports_errors
def notary_supersede(old_file: Path, new_file: Path, home: HomeOption,
                     reason: Annotated[str, typer.Option(help="Why it is corrected.")],
                     node: NodeOption = None, meta: MetaOption = None,
                     key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
                     json: JsonOption = False) -> None:
    """Correct a document: anchor NEW_FILE and mark OLD_FILE's record as superseded by it."""
    refuse_personal_data("--reason", reason)
    args = {"old_hash": hash_file(old_file), "new_hash": hash_file(new_file),
            "reason": reason, "metadata": parse_metadata(meta)}
    committed = submit_service_tx(home, node, key, "notary", "supersede", args, timeout)
    report_commit(committed, json)


@query_app.command("notary")
@reports_errors
def query_notary(home: HomeOption, file: Annotated[Path | None, typer.Argument()] = None,
                 doc_hash: Annotated[str | None, typer.Option(
                     "--hash", help="Look up by hex SHA-256 instead of a file.")] = None,
                 node: NodeOption = None, json: JsonOption = False) -> None:
    """Show the notary record of FILE (or --hash): who anchored it, when (UTC), corrections.

    Exit status 3 when the document is not anchored.
    """
    if (file is None) == (doc_hash is None):
        raise LocalError("give either a FILE or --hash")
    hex_hash = hash_file(file).hex() if file is not None else str(doc_hash)
    with open_client(home, node) as client:
        answer = run_service_query(client, "notary", "document", [f"doc_hash={hex_hash}"])
        genesis = Genesis.from_json(client.get_genesis())
    view = compute_document_view(answer["result"], answer["height"], genesis)
    shown_hash = hex_hash.removeprefix("sha256:").lower()
    if json:
        print_json({"doc_hash": shown_hash, **view})
    else:
        typer.echo("\n".join(render_document_view(shown_hash, view)))
    if not view["anchored"]:
        raise typer.Exit(EXIT_NOT_FOUND)


def compute_document_view(record: dict[str, Any] | None, as_of_height: int,
                          genesis: Genesis) -> dict[str, Any]:
    """Return a notary query answer as plain JSON: names beside keys, ISO 8601 UTC times."""
    if record is None:
        return {"anchored": False, "as_of_height": as_of_height}
    issuer = bytes.fromhex(record["issuer"])
    return {
        "anchored": True, "as_of_height": as_of_height, "status": record["status"],
        "kind": record["kind"], "issuer": record["issuer"],
        "issuer_name": genesis.get_agency_name(issuer), "height": record["height"],
        "time": format_time(record["time_ms"]), "time_ms": record["time_ms"],
        "tx": record["tx"], "supersedes": record["supersedes"],
        "superseded_by": record["superseded_by"],
        "superseded_height": record["superseded_height"],
        "superseded_reason": record["superseded_reason"], "latest": record["latest"],
        "metadata": record["metadata"],
    }


def render_document_view(hex_hash: str, view: dict[str, Any]) -> list[str]:
    """Return the lines `query notary` prints: labelled fields, chain text quoted if odd."""
    if not view["anchored"]:
        return [f"document sha256:{hex_hash} is not anchored (as of height "
                f"{view['as_of_height']})"]
    issuer = (f"ed25519 {view['issuer']}" if view["issuer_name"] is None
              else f"{view['issuer_name']} (ed25519 {view['issuer']})")
    rows = [("status", view["status"]), ("kind", show_text(view["kind"])), ("issuer", issuer),
            ("anchored", f"height {view['height']}, {view['time']} (UTC)"),
            ("transaction", f"sha256:{view['tx']}")]
    if view["supersedes"] is not None:
        rows.append(("corrects", f"sha256:{view['supersedes']}"))
    if view["superseded_by"] is not None:
        rows.append(("superseded by", f"sha256:{view['superseded_by']} at height "
                                      f"{view['superseded_height']}"))
        rows.append(("reason", show_text(view["superseded_reason"])))
    if view["latest"] != hex_hash:
        rows.append(("latest version", f"sha256:{view['latest']}"))
    metadata = view["metadata"]
    rows += [("metadata", f"{show_text(key)}: {show_text(value)}")
             for key, value in sorted(metadata.items())] or [("metadata", "(none)")]
    return [f"document sha256:{hex_hash}",
            *(f"  {label:16} {value}" for label, value in rows),
            f"  {'as of':16} height {view['as_of_height']}"]


def show_text(text: str) -> str:
    """Return chain text as is when it is plain printable text, else quoted as JSON."""
    plain = text.isprintable() and text == text.strip() and text != ""
    return text if plain else quote_text(text)
