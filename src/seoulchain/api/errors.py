"""One error shape for every failed API request.

Every error the API answers — a refused parameter, an unknown route, a wrong method, a
missing admin token, a damaged store, a bug — is JSON of one shape, so a client reads
every failure the same way:

    {"error": {"code": "<snake_case code>", "message": "<one readable sentence>"}}

Parameter errors answer 400; `StorageError` answers 500 with code `storage_error` and is
logged; any other exception answers 500 with code `internal_error`, and its traceback goes
to the node's log only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from seoulchain.errors import SeoulchainError, StorageError

log = logging.getLogger("seoulchain.api")
# Only the first few problems of a bad request are named, to keep the message one line.
VALIDATION_ERRORS_SHOWN_MAX = 3
HTTP_ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 413: "too_large"}


class ApiError(Exception):
    """An API request that cannot be served; becomes a JSON error with an HTTP status."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, Any]:
    """Return the JSON body every API error has."""
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def describe_request_error(exc: RequestValidationError) -> str:
    """Return which request parameters are wrong and why, in one line."""
    parts = []
    for item in exc.errors()[:VALIDATION_ERRORS_SHOWN_MAX]:
        where = [str(part) for part in item.get("loc", ())]
        place = f"{where[0]} parameter {'.'.join(where[1:])}" if len(where) > 1 else "request"
        parts.append(f"{place}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def compute_error_code(exc: SeoulchainError) -> str:
    """Return the snake_case code of a typed error, e.g. DecodeError -> decode_error."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure of `app` answer in the one error shape."""

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "bad_request", describe_request_error(exc))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        message = exc.detail
        if exc.status_code == 404:
            message = f"no endpoint {request.url.path}; /docs lists them"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, str(message), exc.headers)

    @app.exception_handler(StorageError)
    async def on_storage_error(request: Request, exc: StorageError) -> JSONResponse:
        log.error("storage error serving %s: %s", request.url.path, exc)
        return error_response(500, "storage_error", str(exc))

    @app.exception_handler(SeoulchainError)
    async def on_error(request: Request, exc: SeoulchainError) -> JSONResponse:
        return error_response(400, compute_error_code(exc), str(exc))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The server logs the traceback when this handler returns (Starlette re-raises).
        return error_response(500, "internal_error", f"internal error serving "
                                                     f"{request.url.path}; see the node's log")
