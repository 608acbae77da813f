"""The node's HTTP API (FastAPI). Bytes are hex in JSON; raw CBOR where noted.

    GET  /v1/status                       chain tip, mempool, identity
    GET  /v1/genesis                      the genesis file
    POST /v1/txs                          submit a signed tx (application/cbor body, or
                                          JSON {"tx": hex}); ?wait_s= waits for its commit
    POST /v1/txs/batch                    submit up to 1000 txs: a CBOR array of tx bytes
    GET  /v1/txs?service=&status=...      committed txs newest first, filtered (paged)
    GET  /v1/txs/{hash}                   status and result; ?wait_s= waits for its commit
    GET  /v1/blocks                       blocks newest first: headers with commits (paged)
    GET  /v1/blocks/latest | /v1/blocks/{height}   block with its commit; ?format=cbor
    GET  /v1/blocks/{height}/txs          a block's transactions with result codes (paged)
    GET  /v1/headers/{height}             a header with the commit that certifies it
    GET  /v1/validators?height=N          the validator set of a height and agencies (paged)
    GET  /v1/mempool                      transactions and bytes waiting, and the bounds
    GET  /v1/accounts/{public_key}        next nonce, roles, recent transactions
    GET  /v1/services                     installed services: versions, argument schemas
    GET  /v1/services/{service}/queries/{name}?...  one route per service query (generated)
    GET  /v1/query/{service}/{name}?...   a service query on committed state
    GET  /v1/light/{height}               light block: header, commit, validator set (proofs)
    GET  /v1/proofs/tx/{hash}             a tx's log and result inclusion proofs
    GET  /v1/proofs/state/{service}/{key} a state key's value and tree proof at the tip (hex key)
    GET  /v1/bundles/document/{hash}      a whole proof bundle of a document's record (?service=)
    GET  /v1/bundles/state/{service}/{key} a whole proof bundle of a state key at the tip
    GET  /v1/log/consistency?old=N&new=M  RFC 9162 consistency proof between log sizes
    GET  /v1/log/inclusion/{index}?size=N RFC 9162 inclusion proof of a log leaf
    GET  /v1/snapshots                    state sync snapshot heights offered (and the base)
    POST /v1/snapshots                    take a snapshot of the tip now (admin token)
    GET  /v1/snapshots/{h}/manifest       a snapshot's manifest (application/cbor)
    GET  /v1/snapshots/{h}/chunks/{i}     one chunk of a snapshot (application/cbor)
    GET  /v1/events?...                   live blocks and txs, filtered (Server-Sent Events)
    GET  /v1/feeds/txs.atom?...           an Atom feed of the newest matching txs
    GET  /metrics                         Prometheus metrics of this node
    GET  /docs                            the OpenAPI description in Swagger UI
    GET  /portal/                         the transparency portal (docs/portal.md); / redirects

Every number in a path or query is bounded (`api/params.py`), every list is paged by an
opaque cursor (`api/pagination.py`), every error is an RFC 9457 problem (`api/errors.py`),
bodies and per-client request rates are limited (`api/limits.py`), and admin endpoints
need the node's admin token (`api/admin.py`). docs/api.md describes it all.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from seoulchain.api.admin import make_admin_guard
from seoulchain.api.docs import mount_docs
from seoulchain.api.errors import ApiError, install_error_handlers
from seoulchain.api.events import bad_filter, check_name, parse_signer, register_event_routes
from seoulchain.api.feeds import register_feed_routes
from seoulchain.api.limits import BodyLimit, RateLimit
from seoulchain.api.observe import RequestMetrics, add_cors
from seoulchain.api.pagination import (
    PAGE_ITEMS_DEFAULT,
    Cursor,
    PageLimit,
    decode_cursor,
    page_response,
)
from seoulchain.api.params import (
    ChunkIndex,
    Height,
    ListLimit,
    LogIndex,
    LogSize,
    OptionalHeight,
    OptionalLogSize,
    SnapshotHeight,
    WaitSeconds,
)
from seoulchain.api.portal import mount_portal
from seoulchain.api.queries import register_query_routes
from seoulchain.api.views import block_view, commit_view, header_view, result_view
from seoulchain.codec import decode
from seoulchain.codec.jsonview import to_jsonable
from seoulchain.crypto import sha256
from seoulchain.errors import DecodeError, LocalError, SeoulchainError
from seoulchain.execution.results import ResultCode
from seoulchain.ledger.genesis import parse_key
from seoulchain.ledger.store import TxFilter, TxListing, split_tx_position, tx_position
from seoulchain.ledger.types import BLOCK_TXS_MAX, HEIGHT_MAX, TX_BYTES_MAX, Transaction
from seoulchain.node.metrics import METRICS_CONTENT_TYPE
from seoulchain.node.node import BATCH_TXS_MAX, Node, TxStatus

# A JSON submission carries the tx as hex: twice the bytes, plus a little framing.
SUBMIT_BODY_BYTES_MAX = 2 * TX_BYTES_MAX + 1024
# A batch amortises HTTP overhead for load generators and agency back-office systems; it
# holds at most node.BATCH_TXS_MAX transactions.
BATCH_BODY_BYTES_MAX = 8 * 1024 * 1024
# The parameters `GET /v1/txs` accepts; any other is refused as a likely typo.
TX_LIST_PARAMS = frozenset({"service", "method", "signer", "status", "from_time",
                            "to_time", "limit", "cursor"})
# Block times are milliseconds since the epoch, stored as SQLite INTEGER (signed 64-bit).
TIME_MS_MAX = 2**63 - 1
TimeMs = Annotated[int | None, Query(ge=0, le=TIME_MS_MAX,
                                     description="Block time bound, ms since the epoch.")]
# No route reads more than a batch: any larger body is refused before a route runs.
BODY_BYTES_MAX = BATCH_BODY_BYTES_MAX


__all__ = ["ApiError", "create_app"]


def parse_hash(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.removeprefix("sha256:"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ApiError(400, "bad_hash", f"{text!r} is not a 32-byte hex hash")
    return value


def parse_state_key(text: str) -> bytes:
    """Return a state key given in hex in a path, or answer 400 bad_key."""
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise ApiError(400, "bad_key", f"{text!r} is not a hex state key") from exc


def require_blocks(height: int) -> None:
    """Answer 404 no_blocks while nothing is committed."""
    if height == 0:
        raise ApiError(404, "no_blocks", "no block has been committed yet")


def validators_page(request: Request, validators: list[dict[str, Any]], height: int,
                    cursor: str | None, limit: int) -> JSONResponse:
    """Answer one page of the validator set of `height`, with its total power."""
    start = 0 if cursor is None else decode_cursor(cursor, "validators", len(validators))
    items = validators[start:start + limit]
    end = start + len(items)
    return page_response(request, items, "validators", end if end < len(validators) else None,
                         limit, {"height": height, "total_power": sum(
                             item["power"] for item in validators)})


def status_view(status: TxStatus, tx_hash: bytes) -> dict[str, Any]:
    view: dict[str, Any] = {"hash": tx_hash.hex(), "status": status.status}
    if status.result is not None:
        view.update(height=status.height, index=status.index, log_index=status.log_index,
                    result=result_view(status.result))
    return view


def tx_view(raw: bytes) -> dict[str, Any]:
    """Return a committed transaction's fields for people: who called what, with which args."""
    tx = Transaction.decode(raw)
    return {"service": tx.service, "method": tx.method, "args": to_jsonable(tx.args),
            "signer": tx.signer.hex(), "nonce": tx.nonce, "expiry_height": tx.expiry_height,
            "chain_id": tx.chain_id, "signature": tx.signature.hex(), "raw": raw.hex()}


def parse_tx_filter(request: Request, service: str | None, method: str | None,
                    signer: str | None, status: str | None, from_time: int | None,
                    to_time: int | None) -> TxFilter:
    """Return the transaction list's filter (400 `bad_filter` when malformed)."""
    unknown = sorted(set(request.query_params) - TX_LIST_PARAMS)
    if unknown:
        raise bad_filter(f"unknown parameter {unknown[0][:64]!r}; the filters are "
                         f"{', '.join(sorted(TX_LIST_PARAMS))}")
    for name, value in (("service", service), ("method", method)):
        if value is not None:
            check_name(name, value)
    if status not in (None, "ok", "failed"):
        raise bad_filter(f"status is ok or failed, not {status[:64]!r}")
    if from_time is not None and to_time is not None and from_time > to_time:
        raise bad_filter(f"from_time {from_time} is after to_time {to_time}")
    return TxFilter(service, method, parse_signer(signer),
                    None if status is None else status == "ok", from_time, to_time)


def tx_listing_view(item: TxListing) -> dict[str, Any]:
    """Return one listed transaction for JSON: where, when, who called what, its result."""
    return {"hash": item.hash.hex(), "height": item.height, "index": item.index,
            "time_ms": item.time_ms, "service": item.service, "method": item.method,
            "signer": item.signer.hex(), "code": item.code,
            "code_name": result_code_name(item.code)}


def result_code_name(code: int) -> str:
    """Return a result code's name, or its number for a code this software does not know."""
    try:
        return ResultCode(code).name
    except ValueError:
        return str(code)


def create_app(node: Node) -> FastAPI:
    """Return the FastAPI application serving `node`."""
    app = FastAPI(title="seoulchain node API", version="1",
                  description="Submit transactions and read blocks, results and service state.",
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    install_error_handlers(app)
    mount_docs(app)
    mount_portal(app)
    admin_token = node.home.ensure_admin_token()
    install_middleware(app, node, admin_token)

    @app.get("/v1/status")
    async def get_status() -> dict[str, Any]:
        return to_jsonable(node.get_status())

    @app.get("/v1/genesis")
    async def get_genesis() -> dict[str, Any]:
        return node.genesis.to_json()

    @app.post("/v1/txs")
    async def submit_tx(request: Request, wait_s: WaitSeconds = 0.0) -> JSONResponse:
        raw = await read_tx_body(request)
        await node.check_ahead([raw])  # signature and ballot proofs off the event loop
        check = node.submit(raw)
        body: dict[str, Any] = {"hash": check.hash.hex(), "code": int(check.code),
                                "code_name": check.code.name, "log": check.log}
        if not check.ok:
            # A refused tx is a problem whose extension members carry its result.
            full = check.code == ResultCode.MEMPOOL_FULL
            raise ApiError(503 if full else 400, check.code.name.lower(),
                           f"{check.code.name}: {check.log}", extensions={
                               "hash": check.hash.hex(), "result": {
                                   "code": int(check.code), "code_name": check.code.name,
                                   "log": check.log}})
        if wait_s > 0:
            status = await node.wait_for_tx(check.hash, wait_s)
            body.update(status_view(status, check.hash))
        return JSONResponse(body, status_code=202)

    @app.post("/v1/txs/batch")
    async def submit_batch(request: Request) -> JSONResponse:
        body = await read_body(request, BATCH_BODY_BYTES_MAX)
        try:
            raws = decode(body, BATCH_BODY_BYTES_MAX)
        except DecodeError as exc:
            raise ApiError(400, "bad_body", f"batch must be a CBOR array of tx bytes: {exc}") \
                from exc
        if not isinstance(raws, list) or not all(isinstance(raw, bytes) for raw in raws):
            raise ApiError(400, "bad_body", "batch must be a CBOR array of byte strings")
        if len(raws) > BATCH_TXS_MAX:
            raise ApiError(413, "too_large", f"a batch holds at most {BATCH_TXS_MAX} txs")
        checks = await node.submit_batch(raws)
        return JSONResponse({"results": [
            {"hash": check.hash.hex(), "code": int(check.code), "code_name": check.code.name,
             "log": check.log} for check in checks]}, status_code=202)

    @app.get("/v1/txs")
    async def list_txs(request: Request, service: str | None = None, method: str | None = None,
                       signer: str | None = None, status: str | None = None,
                       from_time: TimeMs = None, to_time: TimeMs = None, cursor: Cursor = None,
                       limit: PageLimit = PAGE_ITEMS_DEFAULT) -> JSONResponse:
        wanted = parse_tx_filter(request, service, method, signer, status, from_time, to_time)
        position_max = tx_position(min(node.get_height(), HEIGHT_MAX // BLOCK_TXS_MAX - 1),
                                   BLOCK_TXS_MAX - 1)
        start = None if cursor is None else decode_cursor(cursor, "txs", position_max)
        page = node.list_txs(wanted, start, limit)
        return page_response(request, [tx_listing_view(item) for item in page.items], "txs",
                             page.resume, limit, {"height": node.get_height()} | (
                                 {} if page.resume is None else
                                 {"resume_height": split_tx_position(page.resume)[0]}))

    @app.get("/v1/txs/{tx_hash}")
    async def get_tx(tx_hash: str, wait_s: WaitSeconds = 0.0) -> dict[str, Any]:
        hash_bytes = parse_hash(tx_hash)
        status = await node.wait_for_tx(hash_bytes, wait_s)
        view = status_view(status, hash_bytes)
        found = None if status.height is None else node.get_block(status.height)
        if found is not None and status.index is not None:
            view["tx"] = tx_view(found[0].txs[status.index])
        return view

    @app.get("/v1/blocks/latest")
    async def get_latest_block(format: str = "json") -> Any:
        require_blocks(node.get_height())
        return get_block_at(node.get_height(), format)

    @app.get("/v1/blocks/{height}")
    async def get_block(height: Height, format: str = "json") -> Any:
        return get_block_at(height, format)

    def get_block_at(height: int, format: str) -> Any:
        if format == "cbor":
            # The stored bytes are the block's canonical encoding, checked against its
            # stored block id on every read (a damaged block raises StorageError).
            data = node.get_block_bytes(height)
            if data is None:
                raise no_block(node, height)
            return Response(data, media_type="application/cbor")
        found = node.get_block(height)
        if found is None:
            raise no_block(node, height)
        return block_view(*found)

    @app.get("/v1/accounts/{public_key}")
    async def get_account(public_key: str, limit: ListLimit = 20) -> dict[str, Any]:
        try:
            key = parse_key(public_key)
        except SeoulchainError as exc:
            raise ApiError(400, "bad_key", str(exc)) from exc
        account = node.get_account(key, limit)
        return {
            "public_key": key.hex(),
            "next_nonce": account.next_nonce,
            "roles": account.roles,
            "recent_txs": [{"hash": record.hash.hex(), "height": record.height,
                            "code": record.code} for record in account.recent_txs],
        }

    @app.get("/v1/services")
    async def list_services() -> dict[str, Any]:
        return {"services": node.describe_services()}

    @app.get("/v1/query/{service}/{name}")
    async def run_query(service: str, name: str, request: Request) -> dict[str, Any]:
        try:
            result = node.query(service, name, dict(request.query_params))
        except LocalError as exc:
            raise ApiError(400, "bad_query", str(exc)) from exc
        return {"height": node.get_height(), "result": to_jsonable(result)}

    @app.get("/v1/log/consistency")
    async def get_log_consistency(old: LogSize, new: OptionalLogSize = None
                                  ) -> dict[str, Any]:
        # Any block header is a checkpoint (log_size, log_root) its commit certifies: a
        # client takes both sizes from headers it verified and checks the proof offline.
        log_size = node.get_log_size()
        new_size = log_size if new is None else new
        if not 0 <= old <= new_size:
            raise ApiError(400, "bad_range", f"need 0 <= old <= new, got old={old}, "
                                             f"new={new_size}")
        if new_size > log_size:
            raise ApiError(404, "beyond_log", f"the log has {log_size} leaves, not {new_size}")
        checkpoint = node.get_log_consistency(old, new_size)
        return {"old_size": old, "new_size": new_size, "old_root": checkpoint.other.hex(),
                "new_root": checkpoint.root.hex(),
                "proof": [sibling.hex() for sibling in checkpoint.proof]}

    @app.get("/v1/log/inclusion/{index}")
    async def get_log_inclusion(index: LogIndex, size: OptionalLogSize = None
                                ) -> dict[str, Any]:
        log_size = node.get_log_size()
        tree_size = log_size if size is None else size
        if tree_size > log_size:
            raise ApiError(404, "beyond_log", f"the log has {log_size} leaves, not {tree_size}")
        if index >= tree_size:
            raise ApiError(404, "no_leaf", f"no leaf {index} in a log of size {tree_size}")
        checkpoint = node.get_log_inclusion(index, tree_size)
        return {"index": index, "size": tree_size, "leaf_hash": checkpoint.other.hex(),
                "root": checkpoint.root.hex(),
                "proof": [sibling.hex() for sibling in checkpoint.proof]}

    register_chain_routes(app, node)
    register_query_routes(app, node)
    register_proof_routes(app, node)
    register_snapshot_routes(app, node, make_admin_guard(admin_token))
    app.state.events = register_event_routes(app, node)
    register_feed_routes(app, node)

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {METRICS_CONTENT_TYPE: {}}}})
    async def get_metrics() -> Response:
        return Response(node.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return app


def install_middleware(app: FastAPI, node: Node, admin_token: str) -> None:
    """Add, innermost first: the body limit, the rate limit, CORS and request metrics."""
    config = node.config.api
    app.add_middleware(BodyLimit, bytes_max=BODY_BYTES_MAX)
    app.add_middleware(RateLimit, rate_per_s=config.rate_limit_per_s,
                       burst=config.rate_limit_burst,
                       exempt_hosts=config.rate_limit_exempt_hosts, admin_token=admin_token)
    add_cors(app, config.cors_allowed_origins)
    app.add_middleware(RequestMetrics, histogram=node.metrics.api_request_seconds)


def register_chain_routes(app: FastAPI, node: Node) -> None:
    """Serve paged lists of blocks, a block's txs and validators, headers and the mempool."""

    @app.get("/v1/blocks")
    async def list_blocks(request: Request, cursor: Cursor = None,
                          limit: PageLimit = PAGE_ITEMS_DEFAULT) -> JSONResponse:
        tip = node.get_height()
        start = tip if cursor is None else min(tip, decode_cursor(cursor, "blocks"))
        lowest = max(1, node.get_base_height())
        items = []
        for height in range(start, max(lowest, start - limit + 1) - 1, -1):
            found = node.get_block(height)
            if found is None:
                break
            block, commit = found
            items.append({"height": height, "block_id": block.block_id().hex(),
                          "tx_count": len(block.txs), "header": header_view(block.header),
                          "commit": commit_view(commit)})
        next_height = start - limit
        return page_response(request, items, "blocks",
                             next_height if next_height >= lowest else None, limit,
                             {"height": tip})

    @app.get("/v1/blocks/{height}/txs")
    async def list_block_txs(request: Request, height: Height, cursor: Cursor = None,
                             limit: PageLimit = PAGE_ITEMS_DEFAULT) -> JSONResponse:
        found = node.get_block(height)
        if found is None:
            raise no_block(node, height)
        txs = found[0].txs
        start = 0 if cursor is None else decode_cursor(cursor, "block_txs", len(txs))
        hashes = [sha256(raw) for raw in txs[start:start + limit]]
        codes = node.get_block_tx_codes(hashes)
        items = [{"index": start + offset, "hash": tx_hash.hex(), "code": code}
                 for offset, (tx_hash, code) in enumerate(zip(hashes, codes, strict=True))]
        end = start + len(items)
        return page_response(request, items, "block_txs", end if end < len(txs) else None,
                             limit, {"height": height, "tx_count": len(txs)})

    @app.get("/v1/headers/{height}")
    async def get_header(height: Height) -> dict[str, Any]:
        found = node.get_block(height)
        if found is None:
            raise no_block(node, height)
        block, commit = found
        return {"height": height, "block_id": block.block_id().hex(),
                "header": header_view(block.header), "commit": commit_view(commit)}

    @app.get("/v1/validators")
    async def list_validators(request: Request, height: OptionalHeight = None,
                              cursor: Cursor = None,
                              limit: PageLimit = PAGE_ITEMS_DEFAULT) -> JSONResponse:
        at = node.get_height() if height is None else height
        if not max(1, node.get_base_height()) <= at <= node.get_height():
            raise no_block(node, at)
        return validators_page(request, node.get_validators(at), at, cursor, limit)

    @app.get("/v1/mempool")
    async def get_mempool() -> dict[str, int]:
        return node.get_mempool_status()


def no_block(node: Node, height: int) -> ApiError:
    """Return the 404 for a height with no block here."""
    return ApiError(404, "no_block", f"no block at height {height}; "
                                     f"the chain is at {node.get_height()}")


def register_snapshot_routes(app: FastAPI, node: Node, require_admin: Any) -> None:
    """Serve state sync snapshots (docs/spec/proofs.md, "State sync snapshots")."""

    @app.get("/v1/snapshots")
    async def list_snapshots() -> dict[str, Any]:
        return {"heights": node.list_snapshot_heights(),
                "base_height": node.get_base_height()}

    @app.post("/v1/snapshots", dependencies=[Depends(require_admin)])
    async def take_snapshot() -> dict[str, Any]:
        require_blocks(node.get_height())
        if node.is_taking_snapshot():
            raise ApiError(409, "busy", "a snapshot is already being taken")
        return {"height": await node.take_snapshot()}

    @app.get("/v1/snapshots/{height}/manifest")
    async def get_snapshot_manifest(height: SnapshotHeight) -> Response:
        manifest = node.get_snapshot_manifest(height)
        if manifest is None:
            raise ApiError(404, "no_snapshot", f"no snapshot at height {height}")
        return Response(manifest, media_type="application/cbor")

    @app.get("/v1/snapshots/{height}/chunks/{index}")
    async def get_snapshot_chunk(height: SnapshotHeight, index: ChunkIndex) -> Response:
        try:
            data = node.get_snapshot_chunk(height, index)
        except LocalError as exc:
            raise ApiError(404, "no_chunk", str(exc)) from exc
        return Response(data, media_type="application/cbor")


def register_proof_routes(app: FastAPI, node: Node) -> None:
    """Serve the pieces of proof bundles (docs/spec/proofs.md §8)."""
    from seoulchain.light.bundle import (
        build_document_bundle,
        build_state_bundle,
        light_block_to_json,
        render_bundle,
        state_proof_to_json,
        tx_proof_to_json,
    )

    @app.get("/v1/light/{height}")
    async def get_light_block(height: Height) -> dict[str, Any]:
        if not 1 <= height <= node.get_height():
            raise ApiError(404, "no_block", f"no block at height {height}; the chain is at "
                                            f"{node.get_height()}")
        return {"height": height, "light_block": light_block_to_json(
            node.get_light_block(height))}

    @app.get("/v1/proofs/tx/{tx_hash}")
    async def get_tx_proof(tx_hash: str) -> dict[str, Any]:
        hash_bytes = parse_hash(tx_hash)
        if not node.is_tx_committed(hash_bytes):
            raise ApiError(404, "no_tx", f"transaction {hash_bytes.hex()} is not committed")
        proof = node.get_tx_proof(hash_bytes)
        return {"height": proof.height, "proof": tx_proof_to_json(proof)}

    @app.get("/v1/proofs/state/{service}/{key}")
    async def get_state_proof(service: str, key: str) -> dict[str, Any]:
        key_bytes = parse_state_key(key)
        require_blocks(node.get_height())
        proof = node.get_state_proof(service, key_bytes)
        return {"height": proof.height, "proof": state_proof_to_json(proof)}

    @app.get("/v1/bundles/document/{doc_hash}", response_class=Response)
    async def get_document_bundle(doc_hash: str, service: str = "document") -> Response:
        hash_bytes = parse_hash(doc_hash)
        require_blocks(node.get_height())
        bundle = build_document_bundle(node.get_proof_source(), node.genesis, hash_bytes,
                                       service=service)
        return Response(render_bundle(bundle), media_type="application/json")

    @app.get("/v1/bundles/state/{service}/{key}", response_class=Response)
    async def get_state_bundle(service: str, key: str) -> Response:
        key_bytes = parse_state_key(key)
        require_blocks(node.get_height())
        bundle = build_state_bundle(node.get_proof_source(), node.genesis, service, key_bytes)
        return Response(render_bundle(bundle), media_type="application/json")


async def read_body(request: Request, bytes_max: int) -> bytes:
    """Read a request body, refusing one larger than `bytes_max` before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > bytes_max:
        raise ApiError(413, "too_large", f"request body exceeds {bytes_max} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > bytes_max:
            raise ApiError(413, "too_large", f"request body exceeds {bytes_max} bytes")
    return bytes(body)


async def read_tx_body(request: Request) -> bytes:
    """Read a submitted tx from a CBOR or JSON body, refusing oversized bodies early."""
    body = await read_body(request, SUBMIT_BODY_BYTES_MAX)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            payload = json.loads(body)
            return bytes.fromhex(payload["tx"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, "bad_body", 'JSON body must be {"tx": "<hex>"}') from exc
    return body
