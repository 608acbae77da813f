"""seoulchain's application served to CometBFT over ABCI 2.0 (CometBFT v0.38's socket protocol).

CometBFT opens four connections to the application (consensus, mempool, query, snapshot);
each carries a stream of `tendermint.abci.Request` messages, every one preceded by its length
as an unsigned varint, and the application answers each with a `Response` in order. One
asyncio server serves all four; requests run one at a time on the event loop, so the engine
sees each connection's requests in the order they arrive. A new CheckTx's precheck (a
ballot's proofs, node/prechecks.py) runs first in the application's worker processes, off
the loop: the server reads a connection's requests ahead (up to REQUESTS_AHEAD_MAX) so that
CometBFT's pipelined CheckTx calls keep every worker busy, and answers each in order once
its precheck is done; a recheck's verdict is already in the memo.

The application is the same `Engine` the built-in consensus drives. A CometBFT block at
height h becomes a seoulchain block built from the decided transactions (its header time
and proposer taken from CometBFT's), executed in FinalizeBlock and written to the node's
block store in Commit, so the store keeps the record of blocks a restart resumes from: Info
answers the last committed height and app hash, and CometBFT's handshake replays what the
application lacks. The app hash is the seoulchain block id of h, which commits to every root
of the state after h (state, transparency log, transactions, results); CometBFT puts it in
the header of h + 1. A block is executed once per node: the block PrepareProposal or
ProcessProposal built is kept, unapplied, by what its execution depends on (height, time,
proposer, txs; the same for every request about one CometBFT block), and FinalizeBlock of
that block takes it and its cached execution. `AppHashWatch` compares each committed block
id with the app hash the network's header h + 1 carries and stops the node on a mismatch
(a service that ran differently here), rather than let it sit forked.
The seoulchain commit stored beside each block carries no signatures:
under CometBFT the certificate is CometBFT's commit of h + 1. `CometRpc` reads those
signed headers (and the app hashes the audit compares) from CometBFT's RPC, and
`CometStoreProofSource` serves proof bundles from the store with them (light/cometbft.py
verifies them). seoulchain's HTTP API is served beside the application on the [api] port
(`run_with_cometbft`'s `serve_api`; node/abci_api.py), CometBFT's RPC above it.

The protobuf bindings are generated from the pinned CometBFT module by
scripts/install-cometbft into .tools/abci_pb (or $SEOULCHAIN_ABCI_PB).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import importlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import tomli_w
from prometheus_client import CollectorRegistry, Gauge

from seoulchain.codec import decode, encode
from seoulchain.crypto import sha256
from seoulchain.errors import (
    DecodeError,
    LocalError,
    RemoteError,
    StorageError,
    VerificationError,
)
from seoulchain.execution.engine import CommittedBlock, Engine, InvalidBlock
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.execution.service import ServiceError, load_services
from seoulchain.ledger.genesis import Genesis
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import (
    BLOCK_BYTES_MAX,
    BLOCK_TXS_MAX,
    Block,
    BlockHeader,
    Commit,
    ValidatorSet,
)
from seoulchain.light.cometbft import (
    CometLightBlock,
    compute_address,
    light_block_from_rpc,
    trust_checkpoint,
)
from seoulchain.light.snapshot import (
    SNAPSHOT_FORMAT_VERSION,
    BadChunk,
    Manifest,
    SnapshotRestorer,
    check_manifest_hashes,
    compute_manifest_id,
)
from seoulchain.node.config import NodeConfig
from seoulchain.node.home import Home
from seoulchain.node.parent import set_parent_death_signal
from seoulchain.node.prechecks import PrecheckPool, PrecheckPoolError
from seoulchain.node.proofs import StoreProofSource
from seoulchain.node.statesync import SnapshotFiles, SnapshotService, restore_snapshot

log = logging.getLogger("seoulchain.abci")

ABCI_PB_ENV = "SEOULCHAIN_ABCI_PB"
# Where scripts/install-cometbft writes the bindings: <project>/.tools/abci_pb.
ABCI_PB_DEFAULT = Path(__file__).resolve().parents[3] / ".tools" / "abci_pb"
# The longest ABCI frame the application reads: a full block of transactions in one
# FinalizeBlock request (BLOCK_BYTES_MAX) with room for the other fields.
ABCI_FRAME_BYTES_MAX = 2 * BLOCK_BYTES_MAX
# An unsigned 64-bit varint is at most 10 bytes long (protobuf encoding).
VARINT_BYTES_MAX = 10
# Snapshots listed to a syncing peer: the newest few (the node keeps three by default).
SNAPSHOTS_OFFERED_MAX = 10
# The application's protocol version, reported to CometBFT in Info.
APP_VERSION = 1
# ProcessProposal verdicts (tendermint.abci.ResponseProcessProposal.ProposalStatus).
PROPOSAL_ACCEPT = 1
PROPOSAL_REJECT = 2
# OfferSnapshot and ApplySnapshotChunk verdicts (ResponseOfferSnapshot.Result,
# ResponseApplySnapshotChunk.Result).
OFFER_ACCEPT = 1
OFFER_REJECT = 3
OFFER_REJECT_FORMAT = 4
CHUNK_ACCEPT = 1
CHUNK_RETRY = 3
CHUNK_REJECT_SNAPSHOT = 5
# Blocks kept for the next height so FinalizeBlock reuses ProcessProposal's execution (a
# block is kept under its request's txs and under its own; a round builds one or two): a
# few rounds, as the engine keeps executions (engine.EXECUTION_CACHE_MAX).
PROPOSALS_KEPT_MAX = 8
# Requests of one connection read ahead of their answers, their prechecks under way:
# CometBFT sends CheckTx calls without waiting for answers (a burst of gossiped ballots),
# and 256 keeps every precheck worker busy; beyond it the server stops reading until
# answers go out.
REQUESTS_AHEAD_MAX = 256

# The requests that build, vote on or commit blocks: refused once the app hash diverged.
CONSENSUS_REQUESTS = frozenset({"prepare_proposal", "process_proposal", "finalize_block",
                                "commit"})
# What a block's execution depends on besides the committed state: height, time (ms),
# CometBFT proposer address and transactions.
ProposalKey = tuple[int, int, bytes, tuple[bytes, ...]]


class AbciFrameError(RemoteError):
    """CometBFT (or whatever connected) sent a frame that is not a length-prefixed Request."""


class AppHashMismatch(LocalError):
    """The network's signed header h + 1 carries another app hash than this application's
    block id of h: this node computed another state than the chain's and must not go on."""

    def __init__(self, height: int, ours: bytes, network: bytes):
        self.height, self.ours, self.network = height, ours, network
        super().__init__(
            f"app hash mismatch at height {height}: this node's block id is {ours.hex()}, "
            f"the network's header {height + 1} (signed by more than 2/3 of the validators) "
            f"carries {network.hex()}. A service executed differently here than on the other "
            f"validators (a non-deterministic or modified service); this node's state is not "
            f"the chain's. See docs/operations.md, \"App hash mismatch\"")


def load_abci_types() -> ModuleType:
    """Import the generated `tendermint.abci.types_pb2`, or explain how to generate it."""
    directory = Path(os.environ.get(ABCI_PB_ENV) or ABCI_PB_DEFAULT)
    if not (directory / "tendermint" / "abci" / "types_pb2.py").exists():
        raise LocalError(f"no ABCI protobuf bindings in {directory}; generate them with "
                         f"scripts/install-cometbft (or scripts/gen-abci-proto)")
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    try:
        return importlib.import_module("tendermint.abci.types_pb2")
    except ImportError as exc:
        raise LocalError(f"cannot import the ABCI bindings in {directory}: {exc}; install "
                         f"the cometbft extra (pip install -e '.[cometbft]') and rerun "
                         f"scripts/gen-abci-proto") from exc


def encode_frame(message: Any) -> bytes:
    """Return `message` serialised and preceded by its length as an unsigned varint."""
    body = message.SerializeToString()
    size = len(body)
    prefix = bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        if size:
            prefix.append(byte | 0x80)
        else:
            prefix.append(byte)
            return bytes(prefix) + body


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """Read one length-prefixed frame; None at a clean end of stream between frames."""
    size = 0
    for index in range(VARINT_BYTES_MAX):
        byte = await reader.read(1)
        if not byte:
            if index == 0:
                return None
            raise AbciFrameError("the stream ended inside a frame's length")
        size |= (byte[0] & 0x7F) << (7 * index)
        if not byte[0] & 0x80:
            break
    else:
        raise AbciFrameError(f"a frame's length varint is longer than {VARINT_BYTES_MAX} bytes")
    if size > ABCI_FRAME_BYTES_MAX:
        raise AbciFrameError(f"a frame of {size} bytes is longer than {ABCI_FRAME_BYTES_MAX}")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise AbciFrameError(f"the stream ended {size - len(exc.partial)} bytes short of "
                             f"a frame") from exc


def to_time_ms(timestamp: Any) -> int:
    """Return a protobuf Timestamp in milliseconds since the epoch."""
    return timestamp.seconds * 1000 + timestamp.nanos // 1_000_000


def format_event_value(value: Any) -> str:
    """Return an event attribute's value as the string ABCI events carry."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


class AbciApplication:
    """The seoulchain engine behind CometBFT's ABCI methods, over one node home's store."""

    def __init__(self, home: Home, types: ModuleType | None = None):
        home.require_initialised()
        self.types = types or load_abci_types()
        self.home = home
        self.lock = home.lock("seoulchain abci application")
        try:
            config: NodeConfig = home.load_config()
            self.genesis: Genesis = home.load_genesis()
            self.retention_versions = config.state.retention_versions
            home.data_dir.mkdir(exist_ok=True)
            self.open_engine()
            self.prechecks = PrecheckPool(self.engine, config.precheck.workers)
            # At most one precheck per worker at a time from CheckTx, so that each
            # single-tx batch's time limit is spent on its check, not in the queue.
            self.precheck_slots = asyncio.Semaphore(self.prechecks.workers)
        except BaseException:
            self.lock.release()
            raise
        # The block FinalizeBlock executed, which Commit persists.
        self.pending: Block | None = None
        # Blocks built for the next height by PrepareProposal and ProcessProposal; their
        # executions wait, unapplied, in the engine's cache until one is committed.
        self.proposals: OrderedDict[ProposalKey, Block] = OrderedDict()
        # The snapshot CometBFT's state sync is restoring, and its verified chunks so far.
        self.restoring: tuple[Manifest, SnapshotRestorer, dict[int, bytes]] | None = None
        # Told of each committed block when the HTTP API runs beside (it then also starts
        # the snapshots, as the built-in node's does); None: snapshots only.
        self.on_committed: Callable[[CommittedBlock], None] | None = None
        # Set once the network's header disagrees with a committed block id: from then on
        # the application refuses every consensus request (AppHashWatch).
        self.app_hash_mismatch: AppHashMismatch | None = None

    def open_engine(self) -> None:
        """Open the block store, the engine over it and the snapshots it serves."""
        self.store = BlockStore(self.home.store_path)
        self.engine = Engine(self.genesis, self.store, load_services(),
                             state_retention_versions=self.retention_versions)
        self.snapshots = SnapshotService(SnapshotFiles(self.home.data_dir / "snapshots"),
                                         self.store)

    def close(self) -> None:
        self.prechecks.close()
        self.store.close()
        self.lock.release()

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: Any) -> Any:
        """Answer one Request with its Response (an exception response on an app failure)."""
        types = self.types
        kind = request.WhichOneof("value")
        if kind is None:
            raise AbciFrameError("a Request with no method set")
        handler = getattr(self, f"on_{kind}", None)
        if handler is None:
            return types.Response(exception=types.ResponseException(
                error=f"seoulchain does not serve ABCI {kind}"))
        if self.app_hash_mismatch is not None and kind in CONSENSUS_REQUESTS:
            return types.Response(exception=types.ResponseException(
                error=str(self.app_hash_mismatch)))
        try:
            return types.Response(**{kind: handler(getattr(request, kind))})
        except (LocalError, RemoteError, StorageError, ServiceError) as exc:
            log.error("ABCI %s failed: %s", kind, exc)
            return types.Response(exception=types.ResponseException(error=str(exc)))

    # ------------------------------------------------------------------ info and genesis

    def on_echo(self, request: Any) -> Any:
        return self.types.ResponseEcho(message=request.message)

    def on_flush(self, request: Any) -> Any:
        return self.types.ResponseFlush()

    def on_info(self, request: Any) -> Any:
        tip = self.engine.tip
        return self.types.ResponseInfo(
            data="seoulchain", version=self.genesis.chain_id, app_version=APP_VERSION,
            last_block_height=tip.height, last_block_app_hash=tip.block_id)

    def on_init_chain(self, request: Any) -> Any:
        """Check CometBFT's genesis against the home's: chain id, app state, validators."""
        if request.chain_id != self.genesis.chain_id:
            raise LocalError(f"CometBFT's genesis is for chain {request.chain_id!r}, this "
                             f"application's for {self.genesis.chain_id!r}")
        try:
            app_genesis = Genesis.from_json(json.loads(request.app_state_bytes or b"null"))
        except (ValueError, DecodeError) as exc:
            raise LocalError(f"CometBFT's genesis app_state is not a seoulchain genesis: "
                             f"{exc}") from exc
        if app_genesis.hash() != self.genesis.hash():
            raise LocalError("CometBFT's genesis app_state differs from the node's "
                             f"{self.home.genesis_path}")
        given = {update.pub_key.ed25519: update.power for update in request.validators}
        expected = {v.public_key: v.power for v in self.genesis.validators.validators}
        if given and given != expected:
            raise LocalError("CometBFT's genesis validators differ from the seoulchain "
                             "genesis validators")
        if request.initial_height not in (0, 1):
            raise LocalError("seoulchain chains start at height 1")
        # No validators in the answer: CometBFT keeps its genesis set, checked equal above.
        return self.types.ResponseInitChain()

    # ------------------------------------------------------------------ mempool

    async def check_ahead(self, request: Any) -> None:
        """Run a new CheckTx's precheck (a ballot's proofs) in the worker processes, so the
        engine's check finds the verdict recorded; a recheck's verdict is in the memo."""
        if (request.WhichOneof("value") != "check_tx"
                or request.check_tx.type == self.types.RECHECK):
            return
        async with self.precheck_slots:
            try:
                await self.prechecks.check_ahead([request.check_tx.tx])
            except PrecheckPoolError as exc:
                log.warning("prechecks left to the engine: %s", exc)

    def on_check_tx(self, request: Any) -> Any:
        check = self.engine.check_tx(request.tx)
        return self.types.ResponseCheckTx(code=int(check.code), log=check.log)

    # ------------------------------------------------------------------ consensus

    def find_proposer(self, address: bytes) -> bytes:
        """Return the current validator key whose CometBFT address is `address`."""
        for validator in self.engine.validators.validators:
            if compute_address(validator.public_key) == address:
                return validator.public_key
        raise InvalidBlock(f"proposer {address.hex()} is not a validator of this height")

    def build_block(self, height: int, time_ms: int, proposer_address: bytes,
                    txs: list[bytes], bytes_max: int) -> Block:
        """Execute `txs` in order as the next block, skipping those that fail admission;
        a block already built from the same inputs is returned as it is, not re-executed."""
        if height != self.engine.height + 1:
            raise InvalidBlock(f"block height {height}, expected {self.engine.height + 1}")
        key: ProposalKey = (height, time_ms, proposer_address, tuple(txs))
        # A smaller bytes_max (PrepareProposal's) may cut candidates: only full-size builds
        # are looked up by their inputs.
        if bytes_max == BLOCK_BYTES_MAX and key in self.proposals:
            return self.proposals[key]
        tip = self.engine.tip
        # The seoulchain block links to the last one by an unsigned commit record; CometBFT's
        # signed commit is what certifies it.
        last_commit = None if tip.height == 0 else Commit(tip.height, 0, tip.block_id, ())
        block = self.engine.prepare_proposal(
            time_ms=time_ms, proposer=self.find_proposer(proposer_address), candidates=txs,
            last_commit=last_commit, txs_max=BLOCK_TXS_MAX, bytes_max=bytes_max)
        # Built from its own txs, which all passed, any bytes_max gives the same block.
        self.remember_proposal((height, time_ms, proposer_address, block.txs), block)
        if bytes_max == BLOCK_BYTES_MAX:
            self.remember_proposal(key, block)
        return block

    def remember_proposal(self, key: ProposalKey, block: Block) -> None:
        """Keep `block` for a later request of the same height with the same inputs."""
        self.proposals[key] = block
        self.proposals.move_to_end(key)
        while len(self.proposals) > PROPOSALS_KEPT_MAX:
            self.proposals.popitem(last=False)

    def on_prepare_proposal(self, request: Any) -> Any:
        bytes_max = min(request.max_tx_bytes or BLOCK_BYTES_MAX // 2, BLOCK_BYTES_MAX // 2)
        block = self.build_block(request.height, to_time_ms(request.time),
                                 request.proposer_address, list(request.txs), bytes_max)
        return self.types.ResponsePrepareProposal(txs=list(block.txs))

    def on_process_proposal(self, request: Any) -> Any:
        """Accept a proposal only if every transaction in it passes admission, in order."""
        txs = list(request.txs)
        try:
            block = self.build_block(request.height, to_time_ms(request.time),
                                     request.proposer_address, txs, BLOCK_BYTES_MAX)
        except InvalidBlock as exc:
            log.warning("rejecting proposal at height %d: %s", request.height, exc)
            return self.types.ResponseProcessProposal(status=PROPOSAL_REJECT)
        if list(block.txs) != txs:
            log.warning("rejecting proposal at height %d: it holds transactions that fail "
                        "admission", request.height)
            return self.types.ResponseProcessProposal(status=PROPOSAL_REJECT)
        return self.types.ResponseProcessProposal(status=PROPOSAL_ACCEPT)

    def on_finalize_block(self, request: Any) -> Any:
        """Execute the decided block; every tx gets a result, skipped ones their refusal."""
        txs = list(request.txs)
        block = self.build_block(request.height, to_time_ms(request.time),
                                 request.proposer_address, txs, BLOCK_BYTES_MAX)
        execution = self.engine.finalize_block(block)
        self.pending = block
        results = []
        included = iter(zip(execution.txs, execution.results, strict=True))
        current = next(included, None)
        for raw in txs:
            if current is not None and current[0] == raw:
                results.append(self.make_tx_result(current[1]))
                current = next(included, None)
            else:
                refusal = execution.skipped.get(sha256(raw)) or execution.skipped.get(raw)
                code = refusal.code if refusal is not None else ResultCode.MALFORMED
                results.append(self.types.ExecTxResult(
                    code=int(code), log=refusal.log if refusal is not None else "skipped"))
        return self.types.ResponseFinalizeBlock(
            tx_results=results, app_hash=block.block_id(),
            validator_updates=self.make_validator_updates(execution.validators,
                                                          execution.next_validators))

    def make_tx_result(self, result: TxResult) -> Any:
        """Return an engine result as an ABCI ExecTxResult with its events."""
        types = self.types
        events = [types.Event(type=event.kind, attributes=[
            types.EventAttribute(key=str(key), value=format_event_value(value), index=True)
            for key, value in sorted(event.attributes.items())]) for event in result.events]
        return types.ExecTxResult(code=int(result.code), data=result.encode(),
                                  log=result.log, events=events)

    def make_validator_updates(self, before: ValidatorSet, after: ValidatorSet) -> list[Any]:
        """Return the ABCI updates that turn validator set `before` into `after`."""
        types = self.types
        old = {v.public_key: v.power for v in before.validators}
        new = {v.public_key: v.power for v in after.validators}
        updates = []
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                updates.append(types.ValidatorUpdate(
                    pub_key=self.make_public_key(key), power=new.get(key, 0)))
        return updates

    def make_public_key(self, key: bytes) -> Any:
        return sys.modules["tendermint.crypto.keys_pb2"].PublicKey(ed25519=key)

    def on_commit(self, request: Any) -> Any:
        """Persist the finalized block and everything it changed, in one transaction."""
        if self.pending is None:
            raise LocalError("Commit without a finalized block")
        block = self.pending
        self.pending = None
        self.proposals.clear()
        committed = self.engine.commit(block, Commit(block.height, 0, block.block_id(), ()))
        if self.on_committed is not None:
            self.on_committed(committed)
        else:
            self.snapshots.on_commit(block.height)
        return self.types.ResponseCommit(retain_height=0)

    # ------------------------------------------------------------------ state sync

    def on_list_snapshots(self, request: Any) -> Any:
        """Offer the snapshots in data/snapshots; the metadata is the manifest itself."""
        snapshots = []
        for height in self.snapshots.files.list_heights()[-SNAPSHOTS_OFFERED_MAX:]:
            manifest = self.snapshots.files.read_manifest(height)
            snapshots.append(self.types.Snapshot(
                height=height, format=SNAPSHOT_FORMAT_VERSION,
                chunks=Manifest.decode(manifest).chunk_count,
                hash=compute_manifest_id(manifest), metadata=manifest))
        return self.types.ResponseListSnapshots(snapshots=snapshots)

    def on_load_snapshot_chunk(self, request: Any) -> Any:
        chunk = b""
        if request.format == SNAPSHOT_FORMAT_VERSION:
            with contextlib.suppress(LocalError):
                chunk = self.snapshots.files.read_chunk(request.height, request.chunk)
        return self.types.ResponseLoadSnapshotChunk(chunk=chunk)

    def on_offer_snapshot(self, request: Any) -> Any:
        """Accept a snapshot whose manifest's header is the one CometBFT's light client
        proved (its id is the app hash of that height) and whose roots fold to it."""
        types = self.types
        snapshot = request.snapshot
        if snapshot.format != SNAPSHOT_FORMAT_VERSION:
            return types.ResponseOfferSnapshot(result=OFFER_REJECT_FORMAT)
        try:
            manifest = Manifest.decode(snapshot.metadata)
            if compute_manifest_id(snapshot.metadata) != snapshot.hash:
                raise LocalError("the snapshot's hash is not its manifest's")
            if manifest.header.chain_id != self.genesis.chain_id:
                raise LocalError(f"the snapshot is of chain {manifest.header.chain_id!r}")
            if manifest.header.block_id() != request.app_hash:
                raise LocalError("the manifest's header is not the one the app hash names")
            if manifest.chunk_count != snapshot.chunks:
                raise LocalError("the snapshot's chunk count is not its manifest's")
            check_manifest_hashes(manifest)
        except (LocalError, RemoteError) as exc:
            log.warning("rejecting snapshot of height %d: %s", snapshot.height, exc)
            return types.ResponseOfferSnapshot(result=OFFER_REJECT)
        if self.engine.height != 0:
            log.warning("rejecting snapshot: this application is already at height %d",
                        self.engine.height)
            return types.ResponseOfferSnapshot(result=OFFER_REJECT)
        self.restoring = (manifest, SnapshotRestorer(manifest), {})
        return types.ResponseOfferSnapshot(result=OFFER_ACCEPT)

    def on_apply_snapshot_chunk(self, request: Any) -> Any:
        """Verify a chunk against the accepted manifest; restore once every chunk is in."""
        types = self.types
        if self.restoring is None:
            return types.ResponseApplySnapshotChunk(result=CHUNK_REJECT_SNAPSHOT)
        manifest, restorer, chunks = self.restoring
        try:
            restorer.add_chunk(request.index, request.chunk)
        except (BadChunk, RemoteError, LocalError) as exc:
            log.warning("snapshot chunk %d from %s refused: %s", request.index,
                        request.sender, exc)
            return types.ResponseApplySnapshotChunk(
                result=CHUNK_RETRY, refetch_chunks=[request.index],
                reject_senders=[request.sender] if request.sender else [])
        chunks[request.index] = request.chunk
        if not restorer.missing:
            self.restore(manifest, chunks)
        return types.ResponseApplySnapshotChunk(result=CHUNK_ACCEPT)

    def restore(self, manifest: Manifest, chunks: dict[int, bytes]) -> None:
        """Replace the empty store (genesis state only) with the verified snapshot."""
        self.restoring = None
        self.store.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.home.store_path}{suffix}")
        store = BlockStore(self.home.store_path)
        try:
            restore_snapshot(store, self.genesis, manifest, [chunks.__getitem__],
                             files=SnapshotFiles(self.home.data_dir / "snapshots"))
        finally:
            store.close()
        self.open_engine()
        self.prechecks.engine = self.engine
        log.info("restored the snapshot of height %d", manifest.height)

    # ------------------------------------------------------------------ queries

    def on_query(self, request: Any) -> Any:
        """Serve `/state` (data: CBOR [namespace, key]; value and state tree proof) and
        `/query/<service>/<name>` (data: CBOR map of arguments; CBOR result)."""
        types = self.types
        try:
            if request.path == "/state":
                namespace, key = decode(request.data)
                proof = self.engine.get_state_proof(namespace, key)
                return types.ResponseQuery(
                    key=proof.key, value=b"" if proof.value is None else proof.value,
                    height=proof.height, proof_ops=self.make_proof_ops(proof.key, proof.proof))
            if request.path.startswith("/query/"):
                service, _, name = request.path.removeprefix("/query/").partition("/")
                args = decode(request.data) if request.data else {}
                if not isinstance(args, dict):
                    raise LocalError("query arguments must be a CBOR map")
                result = self.engine.query(service, name, args)
                return types.ResponseQuery(value=encode(result), height=self.engine.height)
            raise LocalError(f"unknown query path {request.path!r}; known: /state, "
                             f"/query/<service>/<name>")
        except (LocalError, RemoteError, ServiceError, ValueError, TypeError) as exc:
            return types.ResponseQuery(code=1, log=str(exc), height=self.engine.height)

    def make_proof_ops(self, key: bytes, proof: bytes) -> Any:
        crypto = sys.modules["tendermint.crypto.proof_pb2"]
        return crypto.ProofOps(ops=[crypto.ProofOp(type="seoulchain/state-tree", key=key,
                                                   data=proof)])


class AbciServer:
    """Serves an `AbciApplication` to CometBFT's connections on a unix or TCP address."""

    def __init__(self, app: AbciApplication):
        self.app = app
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self, address: str) -> None:
        """Listen on `unix:///path` or `tcp://host:port`."""
        if address.startswith("unix://"):
            path = address.removeprefix("unix://")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            self.server = await asyncio.start_unix_server(self.serve, path)
        elif address.startswith("tcp://"):
            host, _, port = address.removeprefix("tcp://").rpartition(":")
            self.server = await asyncio.start_server(self.serve, host, int(port))
        else:
            raise LocalError(f"ABCI address {address!r} must be unix:///PATH or tcp://HOST:PORT")

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one connection's requests in order until it closes or sends garbage;
        requests are read ahead so that their prechecks run while earlier ones wait."""
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        ahead: asyncio.Queue[tuple[Any, asyncio.Task[None]] | None] = asyncio.Queue(
            REQUESTS_AHEAD_MAX)
        answering = asyncio.create_task(self.answer(ahead, writer))
        try:
            while (frame := await read_frame(reader)) is not None:
                request = self.parse_request(frame)
                await ahead.put((request, asyncio.create_task(self.app.check_ahead(request))))
            await ahead.put(None)
            await answering
        except AbciFrameError as exc:
            log.error("closing an ABCI connection: %s", exc)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the peer went away, or the server is closing
        finally:
            answering.cancel()
            while not ahead.empty():
                item = ahead.get_nowait()
                if item is not None:
                    item[1].cancel()
            self.connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def parse_request(self, frame: bytes) -> Any:
        """Return the Request a frame holds, or raise `AbciFrameError`."""
        request = self.app.types.Request()
        try:
            request.ParseFromString(frame)
        except Exception as exc:  # protobuf's DecodeError has no stable import path
            raise AbciFrameError(f"a frame is not an ABCI Request: {exc}") from exc
        return request

    async def answer(self, ahead: asyncio.Queue[tuple[Any, asyncio.Task[None]] | None],
                     writer: asyncio.StreamWriter) -> None:
        """Answer the requests read ahead, in their order, each once its precheck is done;
        once the connection fails, close it and take the rest unanswered (so the reader,
        which then reads its end, never waits on a full queue)."""
        connected = True
        while (item := await ahead.get()) is not None:
            request, checked = item
            try:
                await checked
            except Exception:  # the engine's own check of the tx still runs below
                log.exception("a precheck failed; the engine checks the tx itself")
            if not connected:
                continue
            try:
                writer.write(encode_frame(self.app.handle(request)))
                await writer.drain()
            except ConnectionError:
                connected = False
                writer.close()
            except Exception:
                log.exception("closing an ABCI connection: answering %s failed",
                              request.WhichOneof("value"))
                connected = False
                writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        if self.server is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.server.wait_closed()


# ---------------------------------------------------------------------- the CometBFT node

# CometBFT's files live in HOME/cometbft; its ABCI socket beside them.
COMETBFT_DIR = "cometbft"
ABCI_SOCKET = "abci.sock"
COMETBFT_BIN_ENV = "SEOULCHAIN_COMETBFT"
COMETBFT_BIN_DEFAULT = Path(__file__).resolve().parents[3] / ".tools" / "bin" / "cometbft"
# How long `cometbft init` may take (it writes a few small files).
COMETBFT_INIT_TIMEOUT_S = 60.0
# Time given to CometBFT to stop on SIGTERM before it is killed.
COMETBFT_STOP_TIMEOUT_S = 10.0
# How often the application checks that its parent (a supervisor) and CometBFT still run.
WATCH_INTERVAL_S = 0.5
# CometBFT's RPC listens this far above the [api] port, where seoulchain's HTTP API is
# (a devnet's API ports are base..base+n and its peer ports base+100..base+100+n).
COMETBFT_RPC_PORT_OFFSET = 200
# CometBFT's largest block: the seoulchain block limit, so every decided block is one the
# application can record.
COMETBFT_BLOCK_BYTES_MAX = BLOCK_BYTES_MAX // 2


def find_cometbft() -> Path:
    """Return the CometBFT binary: $SEOULCHAIN_COMETBFT, .tools/bin, or one on PATH."""
    named = os.environ.get(COMETBFT_BIN_ENV)
    candidates = [Path(named)] if named else [COMETBFT_BIN_DEFAULT]
    on_path = shutil.which("cometbft")
    if not named and on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise LocalError(f"no cometbft binary at {candidates[0]}; install it with "
                     f"scripts/install-cometbft")


def make_cometbft_key(seed: bytes, public_key: bytes) -> dict[str, Any]:
    """Return an Ed25519 key in CometBFT's JSON form (seed followed by public key)."""
    return {"type": "tendermint/PrivKeyEd25519",
            "value": base64.b64encode(seed + public_key).decode()}


def make_cometbft_public_key(public_key: bytes) -> dict[str, Any]:

    return {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(public_key).decode()}


def format_rfc3339(time_ms: int) -> str:

    moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def parse_peer(entry: str) -> tuple[bytes, str]:
    """Split a seoulchain peer entry `pubkeyhex@host:port` into key and address."""
    key_hex, _, address = entry.partition("@")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError as exc:
        raise LocalError(f"[p2p] peers entry {entry!r} is not pubkeyhex@host:port") from exc
    if len(key) != 32 or not address:
        raise LocalError(f"[p2p] peers entry {entry!r} is not pubkeyhex@host:port")
    return key, address


def prepare_cometbft_home(home: Home) -> Path:
    """Write (or refresh) HOME/cometbft from the seoulchain home: keys, genesis, config.

    CometBFT's validator key and node key are the node's validator key, so its validator
    address and node id follow from the seoulchain genesis and peer list; the genesis
    carries seoulchain's genesis as app_state; ports are the node's [p2p] listen port and
    its [api] port (CometBFT's RPC is the client door under this engine).
    """


    config = home.load_config()
    peers = [f"{compute_address(peer_key).hex()}@{address}"
             for peer_key, address in map(parse_peer, config.p2p.peers)]
    root = home.root.absolute() / COMETBFT_DIR
    config_dir = root / "config"
    if not (config_dir / "config.toml").exists():
        try:
            subprocess.run([str(find_cometbft()), "init", "--home", str(root)], check=True,
                           capture_output=True, timeout=COMETBFT_INIT_TIMEOUT_S)
        except subprocess.CalledProcessError as exc:
            raise LocalError(f"cometbft init failed: {exc.stderr.decode(errors='replace')}") \
                from exc
    key = home.load_key("validator")
    genesis = home.load_genesis()
    private = make_cometbft_key(key.seed, key.public_key)
    write_private_json(config_dir / "priv_validator_key.json", {
        "address": compute_address(key.public_key).hex().upper(),
        "pub_key": make_cometbft_public_key(key.public_key), "priv_key": private})
    write_private_json(config_dir / "node_key.json", {"priv_key": private})
    cometbft_genesis = json.loads((config_dir / "genesis.json").read_text())
    cometbft_genesis.update({
        "genesis_time": format_rfc3339(genesis.genesis_time_ms),
        "chain_id": genesis.chain_id, "initial_height": "1", "app_hash": "",
        "validators": [{"address": compute_address(v.public_key).hex().upper(),
                        "pub_key": make_cometbft_public_key(v.public_key),
                        "power": str(v.power), "name": v.name}
                       for v in genesis.validators.validators],
        "app_state": genesis.to_json()})
    cometbft_genesis["consensus_params"]["block"]["max_bytes"] = str(COMETBFT_BLOCK_BYTES_MAX)
    (config_dir / "genesis.json").write_text(json.dumps(cometbft_genesis, indent=2) + "\n")

    settings = tomllib.loads((config_dir / "config.toml").read_text())
    settings.update({"proxy_app": f"unix://{root / ABCI_SOCKET}", "moniker": config.moniker,
                     "abci": "socket"})
    settings["rpc"]["laddr"] = f"tcp://{config.api.host}:{get_rpc_port(config)}"
    settings["p2p"].update({
        "laddr": f"tcp://{config.p2p.listen_host}:{config.p2p.listen_port}",
        "persistent_peers": ",".join(peers),
        # Loopback and private addresses are where a city's validators and devnets live.
        "addr_book_strict": False, "allow_duplicate_ip": True})
    (config_dir / "config.toml").write_text(tomli_w.dumps(settings))
    return root


def get_rpc_port(config: NodeConfig) -> int:
    """Return the port of CometBFT's RPC: `COMETBFT_RPC_PORT_OFFSET` above the API's."""
    return config.api.port + COMETBFT_RPC_PORT_OFFSET


def write_private_json(path: Path, value: dict[str, Any]) -> None:
    """Write a key file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(value, handle)
    os.chmod(path, 0o600)


async def run_with_cometbft(home: Home, parent_pid: int | None = None,
                            serve_api: ServeApi | None = None) -> None:
    """Serve the application on HOME/cometbft/abci.sock and run CometBFT beside it until
    SIGINT, SIGTERM, CometBFT's exit or the parent's death; then stop both.

    `serve_api(app, stop)`, if given, serves the HTTP API beside them until `stop` is set;
    its failure stops the node too.
    """


    if parent_pid is not None:
        set_parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent_pid:
            raise LocalError(f"parent process {parent_pid} is gone; not starting")
    root = prepare_cometbft_home(home)
    binary = find_cometbft()
    app = AbciApplication(home)
    server = AbciServer(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    process: subprocess.Popen[bytes] | None = None
    api_task: asyncio.Task[None] | None = None
    rpc_url = get_rpc_url(home)
    assert rpc_url is not None, "prepare_cometbft_home wrote the CometBFT home"
    watch = AppHashWatch(app, rpc_url)
    watch_task = asyncio.create_task(watch.run(stop))
    try:
        await server.start(f"unix://{root / ABCI_SOCKET}")
        if serve_api is not None:
            api_task = asyncio.create_task(serve_api(app, stop))
        with (root / "cometbft.log").open("ab") as output:
            process = subprocess.Popen(
                [str(binary), "start", "--home", str(root)], stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=lambda: set_parent_death_signal(signal.SIGTERM))
        log.info("application for chain %s at height %d; cometbft pid %d, log %s",
                 app.genesis.chain_id, app.engine.height, process.pid, root / "cometbft.log")
        while not stop.is_set():
            if watch_task.done():
                watch_task.result()  # raises AppHashMismatch
            if process.poll() is not None:
                raise LocalError(f"cometbft exited with status {process.returncode}; see "
                                 f"{root / 'cometbft.log'}")
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("parent process %d is gone; stopping", parent_pid)
                break
            if api_task is not None and api_task.done():
                api_task.result()  # re-raise the API's failure
                raise LocalError("the HTTP API stopped")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
        if app.app_hash_mismatch is not None:
            raise app.app_hash_mismatch  # stopped during the report: still the status
    finally:
        stop.set()
        if api_task is not None:
            with contextlib.suppress(Exception):
                await api_task
        with contextlib.suppress(Exception):
            await watch_task
        await watch.aclose()
        if process is not None:
            await asyncio.to_thread(stop_process, process)
        await server.close()
        app.close()
        log.info("application stopped at height %d", app.engine.height)


# What serves the HTTP API beside the application until the event is set (cli/run.py).
ServeApi = Callable[[AbciApplication, asyncio.Event], Awaitable[None]]


def stop_process(process: Any) -> None:
    """SIGTERM `process`, wait for it, and kill it if it does not stop in time."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=COMETBFT_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---------------------------------------------------------------------- CometBFT's RPC

# One RPC answer on loopback or a city network; CometBFT answers /commit in milliseconds.
RPC_TIMEOUT_S = 10.0
# How long a prover waits for CometBFT to decide the header that certifies the tip (h + 1):
# several block intervals (CometBFT's default timeout_commit is one second).
NEXT_HEADER_WAIT_S = 15.0
NEXT_HEADER_POLL_S = 0.2
# /validators pages (CometBFT's RPC gives at most 100 per page).
VALIDATORS_PER_PAGE = 100


class CometRpcError(RemoteError):
    """CometBFT's RPC could not be reached or answered with an error."""


class CometRpc:
    """A small client of the CometBFT RPC endpoints proofs and audits need."""

    def __init__(self, url: str, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=RPC_TIMEOUT_S, transport=transport)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, **params: Any) -> Any:
        """Return the `result` of one JSON-RPC call over GET, or raise `CometRpcError`."""
        try:
            reply = self.http.get(f"/{method}", params=params).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CometRpcError(f"CometBFT's RPC at {self.url} did not answer {method}: "
                                f"{exc}") from exc
        if not isinstance(reply, dict) or "error" in reply or "result" not in reply:
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise CometRpcError(f"CometBFT's RPC at {self.url} refused {method}: {error}")
        return reply["result"]

    def get_height(self) -> int:
        """Return the latest height CometBFT has committed."""
        return int(self.call("status")["sync_info"]["latest_block_height"])

    def wait_for_height(self, height: int) -> None:
        """Return once CometBFT has decided `height`; raise after `NEXT_HEADER_WAIT_S`."""
        deadline = time.monotonic() + NEXT_HEADER_WAIT_S
        while self.get_height() < height:
            if time.monotonic() > deadline:
                raise CometRpcError(f"CometBFT at {self.url} has not decided height {height} "
                                    f"within {NEXT_HEADER_WAIT_S:.0f} s")
            time.sleep(NEXT_HEADER_POLL_S)

    def get_app_hash(self, height: int) -> bytes:
        """Return the app hash in CometBFT's header `height` (the id of seoulchain's h - 1)."""
        self.wait_for_height(height)
        header = self.call("header", height=str(height))["header"]
        try:
            return bytes.fromhex(header["app_hash"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CometRpcError(f"CometBFT's header {height} has no readable app_hash") from exc

    def get_validators(self, height: int) -> list[dict[str, Any]]:
        """Return CometBFT's validator set of `height` in its order, all pages."""
        validators: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.call("validators", height=str(height), page=str(page),
                               per_page=str(VALIDATORS_PER_PAGE))
            validators.extend(answer["validators"])
            if len(validators) >= int(answer["total"]) or not answer["validators"]:
                return validators
            page += 1

    def get_light_block(self, height: int) -> CometLightBlock:
        """Return signed header `height` with its set, waiting briefly for it to be decided."""
        self.wait_for_height(height)
        signed = self.call("commit", height=str(height))["signed_header"]
        return light_block_from_rpc(signed, self.get_validators(height))


class CometStoreProofSource(StoreProofSource):
    """Claims from a CometBFT-run node's store, certified by CometBFT's signed headers."""

    def __init__(self, genesis: Genesis, store: BlockStore, rpc: CometRpc):
        super().__init__(genesis, store)
        self.rpc = rpc

    def get_comet_light_block(self, height: int) -> CometLightBlock:
        return self.rpc.get_light_block(height)

    def get_header(self, height: int) -> BlockHeader:
        block = self.store.get_block(height)
        if block is None:
            raise LocalError(f"no committed block at height {height}")
        return block.header


def get_rpc_url(home: Home) -> str | None:
    """Return the CometBFT RPC URL of a home that runs under CometBFT, else None."""
    if not (home.root / COMETBFT_DIR / "config" / "config.toml").exists():
        return None
    config = home.load_config()
    host = "127.0.0.1" if config.api.host in ("0.0.0.0", "") else config.api.host
    return f"http://{host}:{get_rpc_port(config)}"


# ---------------------------------------------------------------------- app hash check

# How often the application compares its tip with CometBFT's progress.
APP_HASH_CHECK_INTERVAL_S = 1.0
# How long CometBFT may take to decide h + 1 after the application committed h before the
# application asks its peers for their header h + 1: a few block intervals (CometBFT's
# timeout_commit is 1 s). A node whose app hash differs never decides h + 1 itself.
APP_HASH_STALL_S = 5.0
# Peers asked for header h + 1 per check (each answer is one small RPC call).
APP_HASH_PEERS_ASKED_MAX = 4
# How long a node that found a mismatch keeps answering /v1/status and /metrics before it
# stops, so that a monitor scraping every 15 s (a common Prometheus interval) sees it.
APP_HASH_REPORT_S = 15.0


def register_app_hash_metric(app: AbciApplication, registry: CollectorRegistry) -> None:
    """Expose `seoulchain_app_hash_mismatch_height` in `registry`: the height whose block id
    the network's header h + 1 contradicts, 0 while none does."""
    Gauge("seoulchain_app_hash_mismatch_height", "Height whose app hash differs from the "
          "network's (the node stops); 0: none.", registry=registry).set_function(
        lambda: 0 if app.app_hash_mismatch is None else app.app_hash_mismatch.height)


def describe_app_hash_mismatch(app: AbciApplication) -> dict[str, Any] | None:
    """Return the mismatch the application found, as /v1/status shows it (None: none)."""
    found = app.app_hash_mismatch
    if found is None:
        return None
    return {"height": found.height, "ours": found.ours, "network": found.network,
            "message": str(found)}


class AppHashWatch:
    """Compares the application's block id of its tip h with the app hash the network's
    header h + 1 carries, and stops the node on a mismatch.

    A CometBFT whose application returned another app hash than the network's refuses every
    block of h + 1 ("wrong Block.Header.AppHash") and halts its consensus ("CONSENSUS
    FAILURE"), while its RPC stays up. So when the local CometBFT has not decided h + 1
    `APP_HASH_STALL_S` after the application committed h, the watch asks the peers' RPC
    (their addresses from the local `/net_info`) for their signed header h + 1, checks that
    more than 2/3 of the validator set the local CometBFT holds for h + 1 signed it, and
    compares its app hash with the application's block id. A local CometBFT that decides
    h + 1 has itself checked that header's app hash against the application's.
    """

    def __init__(self, app: AbciApplication, rpc_url: str, chain_id: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.app = app
        self.local = rpc_url.rstrip("/")
        self.chain_id = chain_id or app.genesis.chain_id
        self.http = httpx.AsyncClient(timeout=RPC_TIMEOUT_S, transport=transport)
        # The tip height being checked and when it was first seen (monotonic seconds).
        self.pending: tuple[int, float] | None = None
        self.checked_height = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, url: str, method: str, **params: str) -> Any:
        """Return one JSON-RPC `result` from the CometBFT RPC at `url`."""
        try:
            reply = (await self.http.get(f"{url}/{method}", params=params)).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CometRpcError(f"CometBFT's RPC at {url} did not answer {method}: "
                                f"{exc}") from exc
        if not isinstance(reply, dict) or "result" not in reply:
            raise CometRpcError(f"CometBFT's RPC at {url} refused {method}")
        return reply["result"]

    async def check(self, now_s: float) -> None:
        """Raise `AppHashMismatch` if the network's header after the tip disagrees with it."""
        tip = self.app.engine.tip
        if tip.height == 0 or tip.height <= self.checked_height:
            return
        if self.pending is None or self.pending[0] != tip.height:
            self.pending = (tip.height, now_s)
        decided = int((await self.call(self.local, "status"))["sync_info"][
            "latest_block_height"])
        if decided > tip.height:
            self.checked_height = tip.height  # CometBFT checked header h + 1's app hash
            return
        if now_s - self.pending[1] < APP_HASH_STALL_S:
            return
        network = await self.get_network_app_hash(tip.height + 1)
        if network is None:  # no peer has it yet (an idle chain): ask again after a stall
            self.pending = (tip.height, now_s)
            return
        if network != tip.block_id:
            raise AppHashMismatch(tip.height, tip.block_id, network)
        self.checked_height = tip.height

    async def get_network_app_hash(self, height: int) -> bytes | None:
        """Return the app hash of header `height` signed by > 2/3 of the validators, as a
        peer serves it; None if no peer has decided it yet or none answers."""
        validators = await self.call(self.local, "validators", height=str(height),
                                     per_page=str(VALIDATORS_PER_PAGE))
        for url in await self.get_peer_urls():
            try:
                signed = (await self.call(url, "commit", height=str(height)))["signed_header"]
                block = light_block_from_rpc(signed, validators["validators"])
                trust_checkpoint(self.chain_id, block)
            except (CometRpcError, DecodeError, VerificationError, KeyError, TypeError,
                    ValueError) as exc:
                log.debug("no verified header %d from %s: %s", height, url, exc)
                continue
            if block.header.height == height:
                return block.header.app_hash
        return None

    async def get_peer_urls(self) -> list[str]:
        """Return the RPC URLs of the local CometBFT's peers: their address, RPC port."""
        urls = []
        for peer in (await self.call(self.local, "net_info"))["peers"]:
            try:
                port = str(peer["node_info"]["other"]["rpc_address"]).rpartition(":")[2]
                urls.append(f"http://{peer['remote_ip']}:{int(port)}")
            except (KeyError, TypeError, ValueError):
                continue
        return urls[:APP_HASH_PEERS_ASKED_MAX]

    async def run(self, stop: asyncio.Event) -> None:
        """Check every `APP_HASH_CHECK_INTERVAL_S` until `stop`; on a mismatch log it, refuse
        further consensus requests, report it for `APP_HASH_REPORT_S`, then raise it."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await self.check(loop.time())
            except AppHashMismatch as exc:
                self.app.app_hash_mismatch = exc
                log.critical("fatal: %s. The node stops in %.0f s", exc, APP_HASH_REPORT_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), APP_HASH_REPORT_S)
                raise
            except (CometRpcError, KeyError, TypeError, ValueError) as exc:
                log.debug("app hash check skipped: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), APP_HASH_CHECK_INTERVAL_S)
