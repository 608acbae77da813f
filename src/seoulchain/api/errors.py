"""One error shape for every failed API request: RFC 9457 problem details.

Every error the API answers — a refused parameter, an unknown route, a wrong method, an
oversized body, a rate limit, a missing admin token, a damaged store, a bug — is an
`application/problem+json` document of one shape, so a client reads every failure the
same way (docs/api.md, "Errors"):

    {"type": "https://seoulchain.dev/problems/<code>", "title": "<the code's title>",
     "status": <HTTP status>, "detail": "<one readable sentence>", "code": "<code>"}

`code` is the snake_case reason clients branch on; `type` is the same reason as a URI in
the seoulchain problem namespace (an identifier; docs/api.md lists every code). A problem
may carry extension members (a refused transaction's `hash` and `result`). Parameter
errors answer 400; `StorageError` answers 500 with code `storage_error` and is logged; any
other exception answers 500 with code `internal_error`, and its traceback goes to the
node's log only.
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
PROBLEM_MEDIA_TYPE = "application/problem+json"
# The namespace of problem type URIs: `code` appended gives a problem's `type`.
PROBLEM_TYPE_BASE = "https://seoulchain.dev/problems/"
# Only the first few problems of a bad request are named, to keep the detail one line.
VALIDATION_ERRORS_SHOWN_MAX = 3
HTTP_ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 413: "too_large", 429: "rate_limited"}


class ProblemResponse(JSONResponse):
    """A JSON response with the RFC 9457 media type."""

    media_type = PROBLEM_MEDIA_TYPE


class ApiError(Exception):
    """An API request that cannot be served; becomes a problem document with a status."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None,
                 extensions: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extensions = extensions or {}


def compute_problem_title(code: str) -> str:
    """Return the short human title of a problem code: bad_hash -> 'Bad hash'."""
    return code.replace("_", " ").capitalize()


def problem_body(status: int, code: str, message: str,
                 extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the RFC 9457 problem document every API error has."""
    body: dict[str, Any] = dict(extensions or {})
    body.update(type=PROBLEM_TYPE_BASE + code, title=compute_problem_title(code),
                status=status, detail=message, code=code)
    return body


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None,
                   extensions: dict[str, Any] | None = None) -> ProblemResponse:
    """Return a problem document response."""
    return ProblemResponse(problem_body(status, code, message, extensions),
                           status_code=status, headers=headers)


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


# The OpenAPI schema of a problem document (RFC 9457 section 3, plus `code`).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail", "code"],
    "properties": {"type": {"type": "string", "format": "uri"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "code": {"type": "string"}},
    "additionalProperties": True}


def document_problems(app: FastAPI) -> None:
    """Describe every operation's errors in OpenAPI as problems (not FastAPI's 422)."""
    build_openapi = app.openapi

    def build_openapi_with_problems() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build_openapi()
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {"description": "An RFC 9457 problem (docs/api.md, \"Errors\").",
                   "content": {PROBLEM_MEDIA_TYPE: {
                       "schema": {"$ref": "#/components/schemas/Problem"}}}}
        for path in spec.get("paths", {}).values():
            for operation in path.values():
                operation["responses"].pop("422", None)
                operation["responses"]["default"] = problem
        for unused in ("HTTPValidationError", "ValidationError"):
            spec["components"]["schemas"].pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = build_openapi_with_problems  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure of `app` answer in the one problem shape, and document it."""
    document_problems(app)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> ProblemResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError) -> ProblemResponse:
        return error_response(400, "bad_request", describe_request_error(exc))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> ProblemResponse:
        code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        message = exc.detail
        if exc.status_code == 404:
            message = f"no endpoint {request.url.path}; /docs lists them"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, str(message), exc.headers)

    @app.exception_handler(StorageError)
    async def on_storage_error(request: Request, exc: StorageError) -> ProblemResponse:
        log.error("storage error serving %s: %s", request.url.path, exc)
        return error_response(500, "storage_error", str(exc))

    @app.exception_handler(SeoulchainError)
    async def on_error(request: Request, exc: SeoulchainError) -> ProblemResponse:
        return error_response(400, compute_error_code(exc), str(exc))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
        # The server logs the traceback when this handler returns (Starlette re-raises).
        return error_response(500, "internal_error", f"internal error serving "
                                                     f"{request.url.path}; see the node's log")
