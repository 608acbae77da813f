"""`seoulchain did create|show|rotate|deactivate|history`: DIDs of the did:seoul method.

Transactions take the path of `seoulchain tx` (cli/txs.py: the service's schema is checked,
then the named key of HOME/keys signs, and the command waits for the commit); `show` and
`history` read the `did` service's queries (client/did.py). A public key is given as hex or
as a Multikey (`z6Mk...`), or by the name of a key in HOME/keys; a record commitment is the
64 hex digits the vault computed, never the record itself.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from seoulchain.cli import common
from seoulchain.cli.common import HomeOption, JsonOption, NodeOption, print_json, reports_errors
from seoulchain.cli.exit_codes import EXIT_NOT_FOUND
from seoulchain.cli.txs import KeyOption, TimeoutOption, report_commit, submit_service_tx
from seoulchain.client.did import resolve_did
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto.keys import PUBLIC_KEY_BYTES
from seoulchain.crypto.multikey import MultikeyError, decode_multikey
from seoulchain.errors import LocalError, RemoteError
from seoulchain.node.home import OPERATOR_KEY_NAME, Home
from seoulchain.services.did import COMMITMENT_BYTES, compute_did

did_app = typer.Typer(no_args_is_help=True,
                      help="DIDs (did:seoul): create, show, rotate keys, deactivate, history.")

DidArgument = Annotated[str, typer.Argument(
    metavar="DID", show_default=False, help="The DID, e.g. did:seoul:4tg77dsmjh9pqakA9FrfZ1.")]
PublicKeyOption = Annotated[str | None, typer.Option(
    "--public-key", help="The subject's Ed25519 public key: 64 hex digits or a Multikey "
                         "(z6Mk...).")]
SubjectKeyOption = Annotated[str | None, typer.Option(
    "--subject-key", help="Take the public key of this key of HOME/keys instead.")]


def parse_public_key(text: str) -> bytes:
    """Return a 32-byte Ed25519 public key given as hex or as a Multikey."""
    if text.startswith("z"):
        try:
            return decode_multikey(text)
        except MultikeyError as exc:
            raise LocalError(f"--public-key: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != PUBLIC_KEY_BYTES:
        raise LocalError(f"--public-key {text!r} is neither {PUBLIC_KEY_BYTES * 2} hex digits "
                         f"nor a Multikey (z6Mk...)")
    return key


def choose_public_key(home: HomeOption, text: str | None, key_name: str | None,
                      option: str) -> bytes:
    """Return the public key given as text or as the name of a key in HOME/keys."""
    if (text is None) == (key_name is None):
        raise LocalError(f"give either {option} or the name of a key of HOME/keys")
    if key_name is not None:
        return Home(home).load_key(key_name).public_key
    return parse_public_key(str(text))


def parse_commitment(text: str) -> bytes:
    """Return a record commitment: 32 bytes as 64 hex digits."""
    try:
        value = bytes.fromhex(text.removeprefix("sha256:"))
    except ValueError:
        value = b""
    if len(value) != COMMITMENT_BYTES:
        raise LocalError(f"--commitment must be {COMMITMENT_BYTES * 2} hex digits (the "
                         f"vault's SHA-256 over a salt and the record), not {text!r}")
    return value


@did_app.command("create")
@reports_errors
def create(home: HomeOption,
           commitment: Annotated[str, typer.Option(
               "--commitment", help="The record commitment from the vault (64 hex digits).")],
           public_key: PublicKeyOption = None, subject_key: SubjectKeyOption = None,
           controller: Annotated[str | None, typer.Option(
               help="The controlling DID (default: the new DID itself).")] = None,
           node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
           timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Create a DID for a subject's public key (the signing --key needs did.registrar)."""
    args: dict[str, Any] = {
        "public_key": choose_public_key(home, public_key, subject_key, "--public-key"),
        "record_commitment": parse_commitment(commitment)}
    if controller is not None:
        args["controller"] = controller
    committed = submit_service_tx(home, node, key, "did", "create", args, timeout)
    did = compute_did(bytes.fromhex(committed["hash"]))
    if not json and committed["result"]["code"] == 0:
        typer.echo(did)
    report_commit({"did": did, **committed} if json else committed, json)


@did_app.command("rotate")
@reports_errors
def rotate(did: DidArgument, home: HomeOption,
           public_key: Annotated[str | None, typer.Option(
               "--new-public-key", help="The key to add: hex or Multikey.")] = None,
           new_key: Annotated[str | None, typer.Option(
               "--new-key", help="Add the public key of this key of HOME/keys instead.")] = None,
           retire: Annotated[str | None, typer.Option(
               help="The key to remove, e.g. key-1 (default: add only).")] = None,
           node: NodeOption = None, key: KeyOption = OPERATOR_KEY_NAME,
           timeout: TimeoutOption = 30.0, json: JsonOption = False) -> None:
    """Add a key to DID and retire an old one; --key is a current key of its controller."""
    args: dict[str, Any] = {
        "did": did,
        "new_public_key": choose_public_key(home, public_key, new_key, "--new-public-key")}
    if retire is not None:
        args["retire_key_id"] = retire
    report_commit(submit_service_tx(home, node, key, "did", "rotate", args, timeout), json)


@did_app.command("deactivate")
@reports_errors
def deactivate(did: DidArgument, home: HomeOption, node: NodeOption = None,
               key: KeyOption = OPERATOR_KEY_NAME, timeout: TimeoutOption = 30.0,
               json: JsonOption = False) -> None:
    """Deactivate DID for good; --key is a current key of its controller."""
    committed = submit_service_tx(home, node, key, "did", "deactivate", {"did": did}, timeout)
    report_commit(committed, json)


@did_app.command("show")
@reports_errors
def show(did: DidArgument, home: HomeOption,
         height: Annotated[int | None, typer.Option(
             min=0, help="Resolve as of this height (default: the latest).")] = None,
         node: NodeOption = None, json: JsonOption = False) -> None:
    """Resolve DID (as of --height): its document and metadata. Exit status 3: not found."""
    with common.open_client(home, node) as client:
        result = resolve_did(client, did, height)
    if json:
        print_json(result)
    else:
        typer.echo("\n".join(render_resolution(did, result, height)))
    if result["didDocument"] is None:
        raise typer.Exit(EXIT_NOT_FOUND)


@did_app.command("history")
@reports_errors
def history(did: DidArgument, home: HomeOption, node: NodeOption = None,
            json: JsonOption = False) -> None:
    """List every version of DID's document and its record commitments. Exit 3: unknown."""
    with common.open_client(home, node) as client:
        answer = client.query("did", "history", did=did)
    result = answer.get("result") if isinstance(answer, dict) else None
    if json:
        print_json(answer)
    elif result is None:
        typer.echo(f"{did} does not exist (as of height {answer['height']})")
    else:
        typer.echo("\n".join(render_history(to_jsonable(result))))
    if result is None:
        raise typer.Exit(EXIT_NOT_FOUND)


def render_resolution(did: str, result: dict[str, Any], height: int | None) -> list[str]:
    """Return the lines `did show` prints: status, controller, version, keys."""
    as_of = "the latest height" if height is None else f"height {height}"
    if result["didDocument"] is None:
        metadata = result["didResolutionMetadata"]
        return [f"{did}: {metadata.get('error', 'notFound')} as of {as_of}: "
                f"{metadata.get('errorMessage', '')}".rstrip(": ")]
    document, metadata = result["didDocument"], result["didDocumentMetadata"]
    if not isinstance(document, dict) or not isinstance(metadata, dict):
        raise RemoteError("the node's DID resolution result is malformed")
    status = "DEACTIVATED" if metadata.get("deactivated") else "active"
    controller = document.get("controller")
    rows = [("status", status),
            ("controller", f"{controller} (itself)" if controller == did else str(controller)),
            ("created", f"height {metadata['createdHeight']}, {metadata['created']}")]
    version = f"{metadata['versionId']}"
    if "updated" in metadata:
        version += f", updated at height {metadata['updatedHeight']}, {metadata['updated']}"
    rows.append(("version", version))
    if "nextVersionId" in metadata:
        rows.append(("next version", f"{metadata['nextVersionId']} at height "
                                     f"{metadata['nextUpdateHeight']}"))
    relationships = ("authentication", "assertionMethod")
    for method in document.get("verificationMethod", []):
        uses = [name for name in relationships if method["id"] in document.get(name, [])]
        rows.append((method["id"].partition("#")[2], f"{method['publicKeyMultibase']} "
                                                     f"({', '.join(uses) or 'unused'})"))
    if not document.get("verificationMethod"):
        rows.append(("keys", "(none)"))
    return [did, *(f"  {label:14} {value}" for label, value in rows), f"  {'as of':14} {as_of}"]


def render_history(result: dict[str, Any]) -> list[str]:
    """Return the lines `did history` prints: one per version, one per commitment."""
    lines = [result["did"], "  versions:"]
    for version in result["versions"]:
        document = version["didDocument"]
        keys = ", ".join(method["id"].partition("#")[2]
                         for method in document["verificationMethod"]) or "no keys"
        state = "deactivated" if version["deactivated"] else f"controller {document['controller']}"
        lines.append(f"    {version['versionId']:>3}  height {version['height']}  "
                     f"{version['time']}  {keys}; {state}")
    lines.append("  record commitments:")
    for entry in result["recordCommitments"]:
        line = f"    {entry['commitment']}  height {entry['height']}"
        if entry["superseded_by"] is not None:
            line += (f"  superseded by {entry['superseded_by'][:16]}... at height "
                     f"{entry['superseded_height']} ({entry['superseded_reason']})")
        else:
            line += "  current"
        lines.append(line)
    return lines
