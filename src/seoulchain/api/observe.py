"""Request latency metrics by route template, and CORS for browser pages.

`RequestMetrics` times every request and records it under the route *template* that served
it (`/v1/blocks/{height}`, never the raw path, so the label set stays bounded); a request no
route matched (404, or refused before routing: 413, 429) is recorded as route "unmatched".

CORS (docs/api.md, "CORS"): with no allowed origins configured the middleware is not
installed, so only pages from the node's own origin can read answers. Listed origins (or
"*") may GET and POST with a `Content-Type` header and read the `Link` and `Retry-After`
headers; `Authorization` is not allowed cross-origin, so admin requests never come from
another site's page. A refused preflight answers in the API's problem shape.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from prometheus_client import Histogram
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from seoulchain.api.errors import error_response

# Browsers may cache a preflight answer this long: ten minutes, Chromium's cap is 2 hours.
CORS_MAX_AGE_S = 600
CORS_METHODS = ("GET", "HEAD", "POST")
UNMATCHED_ROUTE = "unmatched"


class RequestMetrics:
    """Observe each HTTP request's duration under its method, route template and status."""

    def __init__(self, app: Any, histogram: Histogram):
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.histogram.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, answering a refused preflight as a problem."""

    def preflight_response(self, request_headers: Any) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {key: value for key, value in response.headers.items()
                   if key.lower().startswith("access-control-")}
        return error_response(response.status_code, "cors_refused",
                              f"{bytes(response.body).decode()}: this node's API does not "
                              "allow that cross-origin request", headers)


def add_cors(app: FastAPI, allowed_origins: list[str]) -> None:
    """Let pages from `allowed_origins` call the API; none listed: same origin only."""
    if not allowed_origins:
        return
    app.add_middleware(ProblemCORSMiddleware, allow_origins=allowed_origins,
                       allow_methods=CORS_METHODS, allow_headers=["Content-Type"],
                       expose_headers=["Link", "Retry-After"], allow_credentials=False,
                       max_age=CORS_MAX_AGE_S)
