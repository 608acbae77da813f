"""The API's routes whose answer differs when CometBFT runs the chain (docs/api.md).

Under CometBFT no seoulchain commit signs a block: CometBFT's signed header h + 1 certifies
seoulchain's block h, and CometBFT's validator set signs it. These routes answer from
CometBFT's RPC and the application's records (node/abci_api.py `CometNode`) instead:

    GET /v1/light/{height}                 CometBFT's signed header, commit and validator set
    GET /v1/validators?height=N            the set that signed CometBFT's height N, agencies
    GET /v1/bundles/document/{hash}        a bundle certified by CometBFT's signed headers
    GET /v1/bundles/state/{service}/{key}  the same, for a state key at the tip

They are put ahead of the built-in engine's routes of the same paths, which match first
otherwise. A height CometBFT has not decided answers 404; an RPC that does not answer, 502.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from seoulchain.api.app import parse_hash, parse_state_key, require_blocks, validators_page
from seoulchain.api.errors import ApiError
from seoulchain.api.pagination import (
    PAGE_ITEMS_DEFAULT,
    Cursor,
    PageLimit,
)
from seoulchain.api.params import Height, OptionalHeight
from seoulchain.light.bundle import build_document_bundle, build_state_bundle, render_bundle
from seoulchain.light.cometbft import light_block_to_json
from seoulchain.node.abci import CometRpcError
from seoulchain.node.abci_api import CometNode, NotDecided

T = TypeVar("T")


async def ask_cometbft(call: Awaitable[T]) -> T:
    """Await a read of CometBFT's RPC: 404 for a height not decided, 502 if it failed."""
    try:
        return await call
    except NotDecided as exc:
        raise ApiError(404, "no_block", str(exc)) from exc
    except CometRpcError as exc:
        raise ApiError(502, "cometbft_unavailable", str(exc)) from exc


def register_cometbft_routes(app: FastAPI, node: CometNode) -> None:
    """Serve light blocks, validators and bundles from CometBFT's signed headers."""
    router = APIRouter()

    @router.get("/v1/light/{height}")
    async def get_light_block(height: Height) -> dict[str, Any]:
        block = await ask_cometbft(node.get_comet_light_block(height))
        return {"height": height, "cometbft_light_block": light_block_to_json(block)}

    @router.get("/v1/validators")
    async def list_validators(request: Request, height: OptionalHeight = None,
                              cursor: Cursor = None,
                              limit: PageLimit = PAGE_ITEMS_DEFAULT) -> JSONResponse:
        at = height if height is not None else await ask_cometbft(node.get_comet_height())
        validators = await ask_cometbft(node.get_comet_validators(at))
        return validators_page(request, validators, at, cursor, limit)

    @router.get("/v1/bundles/document/{doc_hash}", response_class=Response)
    async def get_document_bundle(doc_hash: str, service: str = "document") -> Response:
        hash_bytes = parse_hash(doc_hash)
        require_blocks(node.get_height())
        bundle = await ask_cometbft(node.build_bundle(lambda source: build_document_bundle(
            source, node.genesis, hash_bytes, service=service)))
        return Response(render_bundle(bundle), media_type="application/json")

    @router.get("/v1/bundles/state/{service}/{key}", response_class=Response)
    async def get_state_bundle(service: str, key: str) -> Response:
        key_bytes = parse_state_key(key)
        require_blocks(node.get_height())
        bundle = await ask_cometbft(node.build_bundle(lambda source: build_state_bundle(
            source, node.genesis, service, key_bytes)))
        return Response(render_bundle(bundle), media_type="application/json")

    # Starlette matches routes in order: these go ahead of the built-in engine's.
    app.router.routes[0:0] = router.routes
