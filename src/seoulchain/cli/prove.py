"""`seoulchain prove ...` writes proof bundles; `seoulchain verify` checks one offline.

A bundle is built from a node's HTTP API (`--node URL`; a node run under CometBFT serves
CometBFT's signed headers there) or straight from a node home's store (`--home DIR`, no
running node needed; a devnet directory uses its first node; a node run under CometBFT
also needs its CometBFT RPC, for the signed headers), then verified by the prover itself
before it is written. Under CometBFT, `--trusted-height` names a CometBFT height whose
signed header the verifier trusts by its hash. `verify` needs only the bundle and the
genesis file: no network, no node (docs/spec/proofs.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from seoulchain.cli.common import (
    JsonOption,
    OptionalHomeOption,
    console,
    err_console,
    hash_file,
    print_json,
    reports_errors,
)
from seoulchain.errors import LocalError
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.types import PUBLIC_KEY_BYTES
from seoulchain.light.bundle import (
    BundleError,
    Checkpoint,
    ProofSource,
    ProvenStatement,
    build_document_bundle,
    build_labor_bundle,
    build_state_bundle,
    build_tx_bundle,
    build_vehicle_bundle,
    parse_bundle,
    render_bundle,
    verify_bundle,
)

prove_app = typer.Typer(no_args_is_help=True,
                        help="Write a proof bundle that anyone can verify offline.")

ProveNodeOption = Annotated[str | None, typer.Option(
    "--node", help="Node API URL to ask instead of reading a home's store.")]
OutOption = Annotated[Path | None, typer.Option(
    "--out", help="Write the bundle here (default: standard output).")]
TrustedHeightOption = Annotated[int | None, typer.Option(
    "--trusted-height", help="Start from this height's header (a checkpoint the verifier "
                             "trusts) instead of genesis.")]


@contextmanager
def open_source(home: Path | None, node: str | None) -> Iterator[tuple[ProofSource, Genesis]]:
    """Yield a proof source and the chain's genesis from `--node` or `--home`."""
    if node:
        from seoulchain.client.http import NodeClient
        from seoulchain.client.prover import open_proof_source

        with NodeClient(node) as client:
            yield open_proof_source(client), Genesis.from_json(client.get_genesis())
        return
    if home is None:
        raise LocalError("give --node URL or --home DIR")
    from seoulchain.cli.common import resolve_node_home
    from seoulchain.ledger.store import BlockStore
    from seoulchain.node.abci import CometRpc, CometStoreProofSource, get_rpc_url
    from seoulchain.node.proofs import StoreProofSource

    node_home = resolve_node_home(home)
    if not node_home.store_path.exists():
        raise LocalError(f"{node_home.root} has no chain data yet")
    rpc_url = get_rpc_url(node_home)
    store = BlockStore(node_home.store_path)
    genesis = node_home.load_genesis()
    try:
        if rpc_url is None:
            yield StoreProofSource(genesis, store), genesis
            return
        rpc = CometRpc(rpc_url)
        try:
            yield CometStoreProofSource(genesis, store, rpc), genesis
        finally:
            rpc.close()
    finally:
        store.close()


def write_bundle(bundle: dict[str, Any], out: Path | None, genesis: Genesis,
                 checkpoint_height: int | None) -> None:
    data = render_bundle(bundle)
    checkpoint = None
    if checkpoint_height is not None:
        checkpoint = Checkpoint(checkpoint_height, bytes.fromhex(bundle["trust"]["block_id"]))
    statement = verify_bundle(bundle, genesis, checkpoint)
    if out is None:
        typer.echo(data.decode("ascii"), nl=False)
    else:
        save_bundle(data, out)
    err_console.print(f"proves: {statement.text}", highlight=False)
    if checkpoint is not None:
        err_console.print(f"verify with: --checkpoint {checkpoint.height}:"
                          f"{checkpoint.block_id.hex()}", highlight=False)


def save_bundle(data: bytes, out: Path) -> None:
    """Write a rendered bundle to `out` and say so on standard error."""
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise LocalError(f"cannot write {out}: {exc.strerror}") from exc
    err_console.print(f"wrote {out} ({len(data):,} bytes)", highlight=False)


def run_prove(home: Path | None, node: str | None, out: Path | None,
              trusted_height: int | None,
              build: Callable[[ProofSource, Genesis], dict[str, Any]]) -> None:
    with open_source(home, node) as (source, genesis):
        bundle = build(source, genesis)
    write_bundle(bundle, out, genesis, trusted_height)


@prove_app.command("tx")
@reports_errors
def prove_tx(tx_hash: Annotated[str, typer.Argument(help="Transaction hash (hex).")],
             home: OptionalHomeOption = None, node: ProveNodeOption = None,
             out: OutOption = None, trusted_height: TrustedHeightOption = None) -> None:
    """Prove a transaction was committed, where, and with what result."""
    hash_bytes = parse_hash_argument(tx_hash)
    run_prove(home, node, out, trusted_height, lambda source, genesis: build_tx_bundle(
        source, genesis, hash_bytes, trusted_height))


@prove_app.command("state")
@reports_errors
def prove_state(service: Annotated[str, typer.Argument(help="Service (state namespace).")],
                key: Annotated[str, typer.Argument(help="Key inside the namespace: text, "
                                                        "or hex with --hex.")],
                is_hex: Annotated[bool, typer.Option("--hex", help="KEY is hex bytes.")] = False,
                home: OptionalHomeOption = None, node: ProveNodeOption = None,
                out: OutOption = None, trusted_height: TrustedHeightOption = None) -> None:
    """Prove a state key's value (or its absence) at the latest height."""
    key_bytes = parse_key_argument(key, is_hex)
    run_prove(home, node, out, trusted_height, lambda source, genesis: build_state_bundle(
        source, genesis, service, key_bytes, trusted_height))


@prove_app.command("document")
@reports_errors
def prove_document(file: Annotated[Path, typer.Argument(help="The document file (only its "
                                                            "SHA-256 is used).")],
                   home: OptionalHomeOption = None, node: ProveNodeOption = None,
                   out: OutOption = None, trusted_height: TrustedHeightOption = None) -> None:
    """Prove who anchored a document, when, and whether it was superseded."""
    doc_hash = hash_file(file)
    run_prove(home, node, out, trusted_height, lambda source, genesis: build_document_bundle(
        source, genesis, doc_hash, trusted_height))


@prove_app.command("vehicle")
@reports_errors
def prove_vehicle(vin: Annotated[str, typer.Argument(help="The vehicle's VIN (17 "
                                                          "characters).")],
                  home: OptionalHomeOption = None, node: ProveNodeOption = None,
                  out: OutOption = None, trusted_height: TrustedHeightOption = None) -> None:
    """Prove a vehicle's record and its whole history (or that it is not registered)."""
    run_prove(home, node, out, trusted_height, lambda source, genesis: build_vehicle_bundle(
        source, genesis, vin, trusted_height))


@prove_app.command("labor")
@reports_errors
def prove_labor(party: Annotated[str, typer.Argument(
                    metavar="WORKER", help="The worker's public key (64 hex digits) or the "
                                           "name of a key in HOME/keys.")],
                home: OptionalHomeOption = None, node: ProveNodeOption = None,
                out: OutOption = None, trusted_height: TrustedHeightOption = None) -> None:
    """Prove a worker's labor contracts with every amendment, work period and payment."""
    public_key = parse_party_argument(party, home)
    run_prove(home, node, out, trusted_height, lambda source, genesis: build_labor_bundle(
        source, genesis, public_key, trusted_height))


def parse_party_argument(text: str, home: Path | None) -> bytes:
    """Return the public key given as 64 hex digits or as a key name in HOME/keys."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) == PUBLIC_KEY_BYTES:
        return value
    if home is None:
        raise LocalError(f"{text!r} is not a {PUBLIC_KEY_BYTES * 2}-digit hex public key; "
                         "to name a key of HOME/keys, give --home")
    from seoulchain.node.home import Home

    return Home(home).load_key(text).public_key


@reports_errors
def verify_command(
        bundle_path: Annotated[Path, typer.Argument(metavar="BUNDLE", help="Bundle file.")],
        genesis_path: Annotated[Path, typer.Option("--genesis", help="The chain's genesis "
                                                                     "file.")],
        checkpoint: Annotated[str | None, typer.Option(
            "--checkpoint", help="HEIGHT:BLOCK_ID of a header you trust, for bundles that "
                                 "start from a checkpoint.")] = None,
        document: Annotated[Path | None, typer.Option(
            "--document", help="Also check the bundle is about this file.")] = None,
        as_json: JsonOption = False) -> None:
    """Verify a proof bundle offline against a genesis file; say what it proves."""
    genesis = Genesis.load(genesis_path)
    try:
        data = bundle_path.read_bytes()
    except OSError as exc:
        raise LocalError(f"cannot read {bundle_path}: {exc.strerror}") from exc
    try:
        statement = verify_bundle(parse_bundle(data), genesis, parse_checkpoint(checkpoint))
        if document is not None:
            check_document(statement, hash_file(document), document)
    except BundleError as exc:
        if as_json:
            print_json({"verified": False, "step": exc.step, "error": str(exc)})
        else:
            err_console.print(f"[red]NOT VERIFIED[/red] at step {exc.step}: {escape(str(exc))}",
                              highlight=False)
        raise typer.Exit(2) from exc
    if as_json:
        print_json({"verified": True, "kind": statement.kind, "height": statement.height,
                    "statement": statement.text, "facts": statement.facts})
        return
    console.print(f"[green]verified[/green]: {statement.text}", highlight=False)


def check_document(statement: ProvenStatement, doc_hash: bytes, path: Path) -> None:
    if statement.kind != "document" or statement.facts.get("doc_hash") != doc_hash.hex():
        raise BundleError("document", f"the bundle is not about {path} "
                                      f"(sha256:{doc_hash.hex()})")


def parse_checkpoint(text: str | None) -> Checkpoint | None:
    if text is None:
        return None
    height, _, block_id = text.partition(":")
    try:
        parsed = Checkpoint(int(height), bytes.fromhex(block_id))
    except ValueError as exc:
        raise LocalError(f"--checkpoint must be HEIGHT:BLOCK_ID (hex), got {text!r}") from exc
    if parsed.height < 1 or len(parsed.block_id) != 32:
        raise LocalError("--checkpoint needs a height >= 1 and a 32-byte block id")
    return parsed


def parse_hash_argument(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.removeprefix("sha256:"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise LocalError(f"{text!r} is not a 32-byte hex hash")
    return value


def parse_key_argument(text: str, is_hex: bool) -> bytes:
    if not is_hex:
        return text.encode("utf-8")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise LocalError(f"{text!r} is not hex") from exc


@reports_errors
def bench_proofs_command(
        entries: Annotated[str, typer.Option(
            help="State sizes for the state proof figures, comma separated.")]
        = "10000,100000,1000000",
        json_file: Annotated[Path | None, typer.Option(
            "--json-out", help="Also write the figures to this JSON file.")] = None) -> None:
    """Bundle verify time and size; state proof size and time at growing state sizes."""
    from rich.progress import Progress

    from seoulchain.bench.proofs import (
        VERIFY_TARGET_MS,
        run_bundle_bench,
        run_state_proof_bench,
    )

    try:
        sizes = tuple(int(item) for item in entries.split(","))
    except ValueError as exc:
        raise LocalError(f"--entries must be integers separated by commas: {entries!r}") from exc
    bundles = run_bundle_bench()
    for row in bundles:
        console.print(f"{row['kind']:8} bundle: {row['bundle_bytes']:,} B, "
                      f"{row['light_blocks']} light blocks, built in {row['build_ms']:.1f} ms, "
                      f"verified in {row['verify_ms']:.2f} ms (target <= {VERIFY_TARGET_MS} ms)",
                      highlight=False)
    with Progress(console=err_console) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        states = run_state_proof_bench(sizes, on_progress)
    for row in states:
        console.print(f"{row['entries']:>9,} entries: state proof "
                      f"{row['present_proof_bytes_mean']:.0f} B (depth "
                      f"{row['present_proof_depth_mean']:.1f}), proved in "
                      f"{row['present_proof_us']:.0f} us, verified in "
                      f"{row['present_verify_us']:.0f} us; absent "
                      f"{row['absent_proof_bytes_mean']:.0f} B, "
                      f"{row['absent_proof_us']:.0f} us", highlight=False)
    if json_file is not None:
        json_file.write_text(json.dumps({"bundles": bundles, "state_proofs": states},
                                        indent=2) + "\n")
