"""Request limits in front of every route: body size and a per-client rate limit.

Theory of operation: two ASGI middlewares run before routing. `BodyLimit` refuses a body
whose declared length exceeds the API's largest (413), and stops reading a streamed one
the moment it does, so no route ever buffers more. `RateLimit` keeps a token bucket per
client IP (refill `rate_per_s`, capacity `burst`): a request takes a token or is answered
429 with `Retry-After` (whole seconds until a token is back). Requests carrying the admin
token and clients in the exempt list are never limited. The bucket table is bounded: the
least recently seen client is forgotten first (a forgotten client starts with a full
bucket, which only errs towards serving).
"""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from seoulchain.api.errors import error_response

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]
# Clients whose buckets are remembered at once: ~100 bytes each, about 1 MB in all.
CLIENTS_TRACKED_MAX = 10_000


@dataclass
class TokenBucket:
    """Tokens of one client: refilled continuously up to the burst."""

    tokens: float
    updated_s: float


class BodyLimit:
    """Refuse request bodies larger than `bytes_max` with 413, before reading them whole."""

    def __init__(self, app: Any, bytes_max: int):
        self.app = app
        self.bytes_max = bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.bytes_max:
            await self.refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.bytes_max:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self.refuse(scope, receive, send)

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "too_large",
                                  f"request body exceeds {self.bytes_max} bytes")
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    """A streamed body passed the limit."""


class RateLimit:
    """Answer 429 to a client IP that has used up its token bucket."""

    def __init__(self, app: Any, rate_per_s: float, burst: int, exempt_hosts: Iterable[str],
                 admin_token: str, clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.exempt_hosts = frozenset(exempt_hosts)
        self.admin_header = f"Bearer {admin_token}".encode()
        self.clock = clock
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate_per_s == 0 or self.is_exempt(scope):
            await self.app(scope, receive, send)
            return
        host = scope["client"][0] if scope.get("client") else "unknown"
        wait_s = self.take_token(host)
        if wait_s > 0:
            retry_after = str(max(1, math.ceil(wait_s)))
            response = error_response(429, "rate_limited", f"too many requests from {host}: "
                                      f"at most {self.rate_per_s:g} a second (bursts of "
                                      f"{self.burst}); retry in {retry_after} s",
                                      headers={"Retry-After": retry_after})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def is_exempt(self, scope: Scope) -> bool:
        """Return True for an exempt client address or a request with the admin token."""
        client = scope.get("client")
        if client and client[0] in self.exempt_hosts:
            return True
        authorization = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(authorization, self.admin_header)

    def take_token(self, host: str) -> float:
        """Take one of `host`'s tokens; return 0, or the seconds until one is available."""
        now = self.clock()
        bucket = self.buckets.pop(host, None) or TokenBucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst),
                            bucket.tokens + (now - bucket.updated_s) * self.rate_per_s)
        bucket.updated_s = now
        self.buckets[host] = bucket
        while len(self.buckets) > CLIENTS_TRACKED_MAX:
            self.buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate_per_s
