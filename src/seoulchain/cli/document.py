"""`seoulchain document check FILE`: is this issued document valid, as of the chain's tip?

The file is hashed here (SHA-256); only the hash goes to the node, whose `document.check`
query judges it at the latest committed block's time. The answer is printed in plain words
and the exit status tells a script the same (cli/exit_codes.py, docs/operations.md).
With `--bundle OUT` the status is instead read from a proof bundle of the document's record
(or its absence) at the tip, which is verified here, written to OUT, and says the same
thing again offline under `seoulchain verify` (docs/spec/proofs.md §7.3).
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
from seoulchain.light.bundle import (
    ProvenStatement,
    build_document_bundle,
    render_bundle,
    render_document_status,
    verify_bundle,
)
from seoulchain.services.document import DocumentService

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


BundleOption = Annotated[Path | None, typer.Option(
    "--bundle", help="Write a proof bundle of the status here; `seoulchain verify` checks it "
                     "offline.")]


@document_app.command("check")
@reports_errors
def check(file: Annotated[Path, typer.Argument(help="The document file (only its SHA-256 "
                                                    "is sent).")],
          home: HomeOption, node: NodeOption = None, json: JsonOption = False,
          bundle: BundleOption = None) -> None:
    """Say whether FILE is a valid issued document as of the latest block's time.

    Exit status 0: valid; 3: never issued; 10: revoked; 11: superseded by a correction;
    12: expired; 13: not valid yet.
    """
    doc_hash = common.hash_file(file)
    if bundle is not None:
        statement = check_with_bundle(doc_hash, home, node, bundle)
        if json:
            print_json({"statement": statement.text, "bundle": str(bundle),
                        **statement.facts})
        else:
            typer.echo(statement.text)
        raise typer.Exit(STATUS_EXIT_CODES[statement.facts["status"]])
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


def check_with_bundle(doc_hash: bytes, home: Path, node: str | None,
                      out: Path) -> ProvenStatement:
    """Build the document's proof bundle from the node, verify it, write it to `out`."""
    from seoulchain.cli.prove import save_bundle
    from seoulchain.client.prover import open_proof_source

    with common.open_client(home, node) as client:
        genesis = Genesis.from_json(client.get_genesis())
        built = build_document_bundle(open_proof_source(client), genesis, doc_hash,
                                      service=DocumentService.name)
    statement = verify_bundle(built, genesis)
    save_bundle(render_bundle(built), out)
    return statement


def render_check(result: dict[str, Any], height: int, genesis: Genesis) -> str:
    """Return the plain-words answer of `document check`: status first, then why."""
    return render_document_status(result, result["status"], height, result["at_ms"], genesis)
