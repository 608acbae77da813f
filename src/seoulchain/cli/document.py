"""`seoulchain document check FILE`: is this issued document valid, as of the chain's tip?

The file is hashed here (SHA-256); only the hash goes to the node, whose `document.check`
query judges it at the latest committed block's time. The answer is printed in plain words
and the exit status tells a script the same (cli/exit_codes.py, docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from seoulchain.cli import common
from seoulchain.cli.common import HomeOption, JsonOption, NodeOption, print_json, reports_errors
from seoulchain.cli.exit_codes import (
    EXIT_DOCUMENT_EXPIRED,
    EXIT_DOCUMENT_NOT_YET_VALID,
    EXIT_DOCUMENT_REVOKED,
    EXIT_DOCUMENT_SUPERSEDED,
    EXIT_NOT_FOUND,
    EXIT_OK,
)
from seoulchain.errors import RemoteError
from seoulchain.ledger.genesis import Genesis
from seoulchain.light.bundle import format_time, quote_text

document_app = typer.Typer(no_args_is_help=True,
                           help="Issued documents: check a file against the chain.")

STATUS_EXIT_CODES = {
    "valid": EXIT_OK,
    "unknown": EXIT_NOT_FOUND,
    "revoked": EXIT_DOCUMENT_REVOKED,
    "superseded": EXIT_DOCUMENT_SUPERSEDED,
    "expired": EXIT_DOCUMENT_EXPIRED,
    "not_yet_valid": EXIT_DOCUMENT_NOT_YET_VALID,
}


@document_app.command("check")
@reports_errors
def check(file: Annotated[Path, typer.Argument(help="The document file (only its SHA-256 "
                                                    "is sent).")],
          home: HomeOption, node: NodeOption = None, json: JsonOption = False) -> None:
    """Say whether FILE is a valid issued document as of the latest block's time.

    Exit status 0: valid; 3: never issued; 10: revoked; 11: superseded by a correction;
    12: expired; 13: not valid yet.
    """
    doc_hash = common.hash_file(file)
    with common.open_client(home, node) as client:
        at_ms = int(client.get_status()["block_time_ms"])
        answer = client.query("document", "check", doc_hash=doc_hash.hex(), at_ms=str(at_ms))
        genesis = Genesis.from_json(client.get_genesis())
    result = answer["result"]
    status = result.get("status") if isinstance(result, dict) else None
    if status not in STATUS_EXIT_CODES:
        raise RemoteError(f"the node answered document.check with no known status: {status!r}")
    if json:
        print_json(answer)
    else:
        typer.echo(render_check(result, answer["height"], genesis))
    raise typer.Exit(STATUS_EXIT_CODES[status])


def render_check(result: dict[str, Any], height: int, genesis: Genesis) -> str:
    """Return the plain-words answer of `document check`: status first, then why."""
    name = f"document sha256:{result['doc_hash']}"
    as_of = f"as of height {height} (time {format_time(result['at_ms'])})"
    status = result["status"]
    if status == "unknown":
        return f"UNKNOWN: {name} was never issued on this chain, {as_of}"
    issuer = bytes.fromhex(result["issuer"])
    agency = genesis.get_agency_name(issuer)
    by = f"ed25519 {issuer.hex()}" if agency is None else f"{agency} (ed25519 {issuer.hex()})"
    issued = (f"{name} (kind {quote_text(result['kind'])}) was issued by {by} at height "
              f"{result['height']}, time {format_time(result['time_ms'])}")
    until = ("with no end" if result["valid_until_ms"] is None
             else f"until {format_time(result['valid_until_ms'])}")
    reasons = {
        "valid": f"VALID: {issued}; valid {until}",
        "revoked": (f"REVOKED: {issued}; revoked at height {result['revoked_height']}, time "
                    f"{format_time(result['revoked_time_ms'] or 0)} (reason: "
                    f"{quote_text(result['revoked_reason'] or '')})"),
        "superseded": (f"SUPERSEDED: {issued}; corrected by sha256:{result['superseded_by']} at "
                       f"height {result['superseded_height']} (reason: "
                       f"{quote_text(result['superseded_reason'] or '')}); the current version "
                       f"is sha256:{result['latest']}"),
        "expired": (f"EXPIRED: {issued}; its validity ended "
                    f"{format_time(result['valid_until_ms'] or 0)}"),
        "not_yet_valid": (f"NOT YET VALID: {issued}; valid from "
                          f"{format_time(result['valid_from_ms'])} {until}"),
    }
    return f"{reasons[status]}, {as_of}"
