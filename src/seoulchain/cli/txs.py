"""`seoulchain tx ...` and `seoulchain query ...`: sign, submit, wait, and read back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from seoulchain.cli.common import (
    HomeOption,
    JsonOption,
    NodeOption,
    console,
    hash_file,
    open_client,
    print_json,
    reports_errors,
)
from seoulchain.client.http import NodeClient
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction
from seoulchain.node.home import OPERATOR_KEY_NAME, Home

# A transaction submitted from the CLI stays valid for this many blocks.
EXPIRY_BLOCKS_DEFAULT = 100

tx_app = typer.Typer(no_args_is_help=True, help="Sign and submit transactions, wait for commit.")
query_app = typer.Typer(no_args_is_help=True, help="Read service state from a node.")
notary_tx_app = typer.Typer(no_args_is_help=True, help="Notary: anchor and supersede documents.")
tx_app.add_typer(notary_tx_app, name="notary")

KeyOption = Annotated[str, typer.Option("--key", help="Name of the signing key in HOME/keys.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for commit.")]
MetaOption = Annotated[list[str] | None, typer.Option(
    "--meta", help="Public metadata as key=value (repeatable). Never personal data.")]


def parse_metadata(items: list[str] | None) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LocalError(f"--meta {item!r} must look like key=value")
        metadata[key] = value
    return metadata


def submit_and_wait(client: NodeClient, home: Path, key_name: str, service: str,
                    method: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Sign a transaction with the named key, submit it, and wait for its commit."""
    key = Home(home).load_key(key_name)
    status = client.get_status()
    tx = Transaction.create(key, chain_id=status["chain_id"],
                            nonce=client.get_next_nonce(key.public_key),
                            expiry_height=status["height"] + EXPIRY_BLOCKS_DEFAULT,
                            service=service, method=method, args=args)
    client.submit(tx)
    return client.wait_for_commit(tx.hash(), timeout_s)


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


@notary_tx_app.command("anchor")
@reports_errors
def notary_anchor(file: Path, home: HomeOption, node: NodeOption = None,
                  kind: Annotated[str, typer.Option(help="Document kind.")] = "document",
                  meta: MetaOption = None, key: KeyOption = OPERATOR_KEY_NAME,
                  timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Anchor FILE's SHA-256 on chain (the file itself never leaves this machine)."""
    doc_hash = hash_file(file)
    args = {"doc_hash": doc_hash, "kind": kind, "metadata": parse_metadata(meta)}
    with open_client(home, node) as client:
        committed = submit_and_wait(client, home, key, "notary", "anchor", args, timeout)
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
    args = {"old_hash": hash_file(old_file), "new_hash": hash_file(new_file),
            "reason": reason, "metadata": parse_metadata(meta)}
    with open_client(home, node) as client:
        committed = submit_and_wait(client, home, key, "notary", "supersede", args, timeout)
    report_commit(committed, json)


@query_app.command("notary")
@reports_errors
def query_notary(home: HomeOption, file: Annotated[Path | None, typer.Argument()] = None,
                 doc_hash: Annotated[str | None, typer.Option(
                     "--hash", help="Look up by hex SHA-256 instead of a file.")] = None,
                 node: NodeOption = None, json: JsonOption = False) -> None:
    """Show the notary record of FILE (or --hash): issuer, height, status, corrections."""
    if (file is None) == (doc_hash is None):
        raise LocalError("give either a FILE or --hash")
    hex_hash = hash_file(file).hex() if file is not None else str(doc_hash)
    with open_client(home, node) as client:
        answer = client.query("notary", "document", doc_hash=hex_hash)
    record = answer["result"]
    if json:
        print_json(answer)
        return
    if record is None:
        console.print(f"document sha256:{hex_hash} is [bold]not anchored[/bold] "
                      f"(as of height {answer['height']})", highlight=False)
        raise typer.Exit(3)
    console.print(f"document sha256:{hex_hash}", highlight=False)
    for key in ("status", "kind", "issuer", "height", "time_ms", "tx", "supersedes",
                "superseded_by", "superseded_reason", "latest", "metadata"):
        console.print(f"  {key:18} {record.get(key)}", highlight=False)
