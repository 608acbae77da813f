"""The `Node` interface seoulchain's HTTP API reads, over an ABCI application CometBFT runs.

`CometNode` is a `Node` whose store, engine and snapshots are the application's own, so
every read the API makes (blocks, txs, accounts, queries, state proofs, the log, status)
is the `Node` method itself over the same store. What differs is what CometBFT owns:
a submitted tx's precheck (a ballot's proofs) runs in the application's worker processes
(`check_ahead`, as the built-in node's does), then it passes the check CometBFT's CheckTx
runs (`Engine.check_tx`) and is handed to CometBFT's `broadcast_tx_sync` on the event
loop; the application's Commit calls `on_commit`, which wakes clients waiting for their
txs. The mempool size and the peers are CometBFT's, polled from its RPC.

Light blocks and validator sets are CometBFT's: `get_comet_light_block` reads a decided
signed header with the set that signed it, `get_comet_validators` that set with each
member's agency from the application's records. A proof bundle needs signed header h + 1
of the state it proves at h, which CometBFT decides only after the application answers the
next block's requests on this same event loop: `build_bundle` builds it in a worker thread
over its own store connection and a blocking RPC client (`CometStoreProofSource`, as
`seoulchain prove --home` does), so the loop keeps serving CometBFT meanwhile. What the
built-in engine's seoulchain commits would answer (`get_light_block`, `get_proof_source`)
raises `NotServedUnderCometbft`, naming the CometBFT form (api/cometbft.py serves those
routes; the API answers 501 only where no CometBFT form applies).

Every call to CometBFT's RPC is awaited, never blocking: the ABCI server shares the event
loop, and CometBFT waits on the application while it holds its mempool.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tomllib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from seoulchain.crypto import sha256
from seoulchain.errors import LocalError
from seoulchain.execution.engine import Engine, TxCheck
from seoulchain.ledger.store import BlockStore
from seoulchain.ledger.types import Validator
from seoulchain.light.cometbft import CometLightBlock, light_block_from_rpc
from seoulchain.node.abci import (
    COMETBFT_DIR,
    RPC_TIMEOUT_S,
    VALIDATORS_PER_PAGE,
    AbciApplication,
    CometRpc,
    CometRpcError,
    CometStoreProofSource,
    describe_app_hash_mismatch,
    register_app_hash_metric,
)
from seoulchain.node.metrics import NodeMetrics
from seoulchain.node.node import BATCH_TXS_MAX, Node
from seoulchain.node.prechecks import PrecheckPoolError
from seoulchain.node.proofs import StoreProofSource
from seoulchain.node.statesync import SnapshotService

if TYPE_CHECKING:
    from seoulchain.light.bundle import TxProof
    from seoulchain.light.lightclient import LightBlock

log = logging.getLogger("seoulchain.abci")
# How often the mempool size, the pending hashes and the peers are read from CometBFT.
RPC_POLL_INTERVAL_S = 0.5
# CometBFT's /unconfirmed_txs answers at most 100 transactions per call (its RPC limit).
UNCONFIRMED_TXS_MAX = 100


class NotServedUnderCometbft(LocalError):
    """A request the API cannot answer when CometBFT runs the chain (answered 501)."""


class NotDecided(LocalError):
    """A CometBFT height not decided yet (the API answers 404)."""


class CometMempool:
    """What the API reads of CometBFT's mempool: size, bounds and the pending tx hashes."""

    def __init__(self, txs_max: int, bytes_max: int):
        self.txs_max = txs_max
        self.bytes_max = bytes_max
        self.txs = 0
        self.bytes_total = 0
        # Hashes CometBFT listed as unconfirmed, and those being handed to it now.
        self.pending: set[bytes] = set()
        self.sending: set[bytes] = set()

    def __len__(self) -> int:
        return self.txs

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self.pending or tx_hash in self.sending


class CometPeers:
    """CometBFT's peers as the node status shows them (node ids)."""

    def __init__(self) -> None:
        self.peers: list[str] = []

    def get_peers(self) -> list[str]:
        return self.peers


class CometNode(Node):
    """The API's `Node` over an `AbciApplication`, submitting through CometBFT's RPC."""

    def __init__(self, app: AbciApplication, rpc_url: str,
                 transport: httpx.AsyncBaseTransport | None = None,
                 bundle_transport: httpx.BaseTransport | None = None):
        # Node.__init__ is not run: the application already holds the home's lock and
        # owns the store and the engine this node reads.
        self.app = app
        self.home = app.home
        self.config = app.home.load_config()
        self.genesis = app.genesis
        self.key = app.home.load_key("validator")
        self.rpc = httpx.AsyncClient(base_url=rpc_url, timeout=RPC_TIMEOUT_S,
                                     transport=transport)
        # The blocking RPC client of bundle builds (`build_bundle`) uses this transport.
        self.bundle_transport = bundle_transport
        settings = read_cometbft_config(app)
        self.mempool = CometMempool(  # type: ignore[assignment]
            int(settings["mempool"]["size"]), int(settings["mempool"]["max_txs_bytes"]))
        # CometBFT refuses a JSON-RPC batch longer than its [rpc] max_request_batch_size
        # whole (0: no limit).
        self.rpc_batch_max = int(settings["rpc"]["max_request_batch_size"]) or BATCH_TXS_MAX
        self.producer = CometPeers()  # type: ignore[assignment]
        self.commit_event = asyncio.Event()
        self.commit_hooks = []
        self.last_commit_time_ms = None
        self._proof_source = None
        self.broadcasts: set[asyncio.Task[None]] = set()
        self.metrics = NodeMetrics()
        self.metrics.watch(lambda: self.engine.height, lambda: len(self.mempool),
                           lambda: self.mempool.bytes_total,
                           lambda: len(self.producer.get_peers()))
        self.metrics.watch_prechecks(app.prechecks)
        register_app_hash_metric(app, self.metrics.registry)
        app.on_committed = self.on_commit

    @property  # type: ignore[override]
    def engine(self) -> Engine:
        return self.app.engine

    @property  # type: ignore[override]
    def store(self) -> BlockStore:
        return self.app.store

    @property  # type: ignore[override]
    def snapshots(self) -> SnapshotService:
        return self.app.snapshots

    async def aclose(self) -> None:
        """Wait for the broadcasts under way, then close the RPC client (not the app)."""
        if self.broadcasts:
            await asyncio.wait(self.broadcasts, timeout=RPC_TIMEOUT_S)
        await self.rpc.aclose()
        self.app.on_committed = None

    # ----------------------------------------------------------------- submitting

    def submit(self, raw: bytes) -> TxCheck:
        """Check a tx as CometBFT's CheckTx does, then hand an admitted one to CometBFT."""
        return self.submit_checked([raw])[0]

    async def check_ahead(self, raws: list[bytes]) -> None:
        """Run the prechecks of `raws` (ballot proofs) in the application's worker
        processes: a submission is checked here, on the loop, before CometBFT's CheckTx
        sees it, which then finds the verdict recorded."""
        try:
            await self.app.prechecks.check_ahead(raws)
        except PrecheckPoolError as exc:
            log.warning("prechecks left to the engine: %s", exc)

    async def submit_batch(self, raws: list[bytes]) -> list[TxCheck]:
        """Check each tx (its prechecks run ahead in processes), then hand the admitted ones
        to CometBFT in one RPC batch (so a batch enters its mempool, and so the next block,
        together)."""
        await self.check_ahead(raws)
        return self.submit_checked(raws)

    def submit_checked(self, raws: list[bytes]) -> list[TxCheck]:
        checks = [self.engine.check_tx(raw) for raw in raws]
        admitted = [(raw, check.hash) for raw, check in zip(raws, checks, strict=True)
                    if check.ok]
        if admitted:
            self.mempool.sending.update(tx_hash for _, tx_hash in admitted)  # type: ignore[attr-defined]
            task = asyncio.get_running_loop().create_task(self.broadcast(admitted))
            self.broadcasts.add(task)
            task.add_done_callback(self.broadcasts.discard)
        return checks

    async def broadcast(self, txs: list[tuple[bytes, bytes]]) -> None:
        """Give `txs` to CometBFT's `broadcast_tx_sync`; log refusals (mempool full, ...)."""
        mempool: CometMempool = self.mempool  # type: ignore[assignment]
        calls = [{"jsonrpc": "2.0", "id": index, "method": "broadcast_tx_sync",
                  "params": {"tx": base64.b64encode(raw).decode()}}
                 for index, (raw, _) in enumerate(txs)]
        try:
            answers = {}
            for start in range(0, len(calls), self.rpc_batch_max):
                replies = (await self.rpc.post("/", json=calls[
                    start:start + self.rpc_batch_max])).json()
                # CometBFT answers a batch of one, or one it refuses whole, with one object.
                for reply in replies if isinstance(replies, list) else [replies]:
                    answers[reply.get("id")] = reply.get("result") or reply.get("error")
            for index, (_, tx_hash) in enumerate(txs):
                answer = answers.get(index) or {}
                if str(answer.get("code")) == "0":
                    mempool.pending.add(tx_hash)
                else:
                    log.warning("CometBFT refused tx %s: %s", tx_hash.hex(), answer)
        except (httpx.HTTPError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("could not hand %d txs to CometBFT: %s", len(txs), exc)
        finally:
            mempool.sending.difference_update(tx_hash for _, tx_hash in txs)

    # ----------------------------------------------------------------- CometBFT's state

    async def call(self, method: str, **params: Any) -> Any:
        """Return the `result` of one JSON-RPC call to CometBFT, or raise `CometRpcError`."""
        try:
            reply = (await self.rpc.post("/", json={"jsonrpc": "2.0", "id": 1,
                                                    "method": method, "params": params})).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CometRpcError(f"CometBFT's RPC did not answer {method}: {exc}") from exc
        if not isinstance(reply, dict) or "result" not in reply:
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise CometRpcError(f"CometBFT's RPC refused {method}: {error}")
        return reply["result"]

    async def refresh(self) -> None:
        """Read CometBFT's mempool (size, bytes, pending hashes) and its peers."""
        mempool: CometMempool = self.mempool  # type: ignore[assignment]
        unconfirmed = await self.call("unconfirmed_txs", limit=str(UNCONFIRMED_TXS_MAX))
        mempool.txs = int(unconfirmed["total"])
        mempool.bytes_total = int(unconfirmed["total_bytes"])
        mempool.pending = {sha256(base64.b64decode(tx)) for tx in unconfirmed["txs"] or []}
        peers = (await self.call("net_info"))["peers"]
        self.producer.peers = [peer["node_info"]["id"] for peer in peers]  # type: ignore[attr-defined]

    async def watch_cometbft(self, stop: asyncio.Event) -> None:
        """Refresh CometBFT's mempool and peers every `RPC_POLL_INTERVAL_S` until `stop`."""
        while not stop.is_set():
            try:
                await self.refresh()
            except (CometRpcError, KeyError, TypeError, ValueError) as exc:
                log.debug("CometBFT's RPC not readable yet: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RPC_POLL_INTERVAL_S)

    # ----------------------------------------------------------------- proofs

    def get_status(self) -> dict[str, Any]:
        """Return the node's status, naming the engine that runs the chain."""
        return {**super().get_status(), "engine": "cometbft",
                "app_hash_mismatch": describe_app_hash_mismatch(self.app)}

    def get_light_block(self, height: int) -> LightBlock:
        raise NotServedUnderCometbft(
            "under CometBFT no seoulchain commit signs a block: a light block is CometBFT's "
            "signed header, served as `cometbft_light_block` by GET /v1/light/{height}")

    def get_proof_source(self) -> StoreProofSource:
        raise NotServedUnderCometbft(
            "under CometBFT a proof bundle waits for CometBFT's next signed header: it is "
            "built off the event loop (CometNode.build_bundle)")

    async def get_comet_height(self) -> int:
        """Return the latest height CometBFT has decided."""
        return int((await self.call("status"))["sync_info"]["latest_block_height"])

    async def require_decided(self, height: int) -> None:
        """Raise `NotDecided` unless CometBFT has decided `height`."""
        latest = await self.get_comet_height()
        if not 1 <= height <= latest:
            raise NotDecided(f"CometBFT has not decided height {height}; it is at {latest}")

    async def get_comet_light_block(self, height: int) -> CometLightBlock:
        """Return CometBFT's signed header `height` with the validator set that signed it."""
        await self.require_decided(height)
        signed = (await self.call("commit", height=str(height)))["signed_header"]
        return light_block_from_rpc(signed, await self.read_comet_validators(height))

    async def read_comet_validators(self, height: int) -> list[dict[str, Any]]:
        """Return CometBFT's validator set of `height` as its RPC lists it, all pages."""
        members: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = await self.call("validators", height=str(height), page=str(page),
                                     per_page=str(VALIDATORS_PER_PAGE))
            members.extend(answer["validators"])
            if len(members) >= int(answer["total"]) or not answer["validators"]:
                return members
            page += 1

    async def get_comet_validators(self, height: int) -> list[dict[str, Any]]:
        """Return the set that signed CometBFT's `height`, each member with its name and
        agency from the application's records (`Node.describe_validators`)."""
        await self.require_decided(height)
        members = await self.read_comet_validators(height)
        names = {v.public_key: v.name for v in self.genesis.validators.validators}
        names.update((v.public_key, v.name) for v in self.engine.validators.validators)
        validators = []
        for item in members:
            key = base64.b64decode(item["pub_key"]["value"])
            validators.append(Validator(key, int(item["voting_power"]), names.get(key, "")))
        return self.describe_validators(validators)

    async def build_bundle(self, build: Callable[[CometStoreProofSource], dict[str, Any]]
                           ) -> dict[str, Any]:
        """Run `build` over this node's store and CometBFT's signed headers in a worker
        thread, which may wait for the next header while the event loop serves CometBFT."""
        rpc_url = str(self.rpc.base_url).rstrip("/")

        def run() -> dict[str, Any]:
            store = BlockStore(self.home.store_path)
            rpc = CometRpc(rpc_url, self.bundle_transport)
            try:
                return build(CometStoreProofSource(self.genesis, store, rpc))
            finally:
                rpc.close()
                store.close()
        return await asyncio.to_thread(run)

    def get_tx_proof(self, tx_hash: bytes) -> TxProof:
        """Return a committed tx's log and result inclusion proofs, from the store alone."""
        return StoreProofSource(self.genesis, self.store).get_tx_proof(tx_hash)


def read_cometbft_config(app: AbciApplication) -> dict[str, Any]:
    """Return CometBFT's config.toml of the application's home."""
    path = app.home.root.absolute() / COMETBFT_DIR / "config" / "config.toml"
    try:
        return tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LocalError(f"cannot read CometBFT's config {path}: {exc}") from exc
