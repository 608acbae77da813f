"""Admin endpoints: requests that make the node do work need the node's admin token.

The token is a random secret in the node's home (`keys/admin.token`, mode 0600; see
`seoulchain.node.home`). A request proves it holds it with `Authorization: Bearer <token>`;
the comparison takes the same time wherever the tokens differ. A missing token answers
401, a wrong one 403, both in the API's error shape.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from seoulchain.api.errors import ApiError

bearer = HTTPBearer(auto_error=False, description="The node's admin token "
                                                  "(HOME/keys/admin.token).")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def make_admin_guard(token: str) -> Callable[..., Awaitable[None]]:
    """Return a FastAPI dependency that lets through only requests carrying `token`."""
    expected = token.encode()

    async def require_admin(credentials: BearerCredentials) -> None:
        if credentials is None:
            raise ApiError(401, "unauthorized", "this endpoint needs the node's admin token: "
                           "send 'Authorization: Bearer <token>' with the token from "
                           "HOME/keys/admin.token", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise ApiError(403, "forbidden", "the admin token is wrong; use the one in the "
                                             "node's HOME/keys/admin.token")

    return require_admin
