"""Cursor pagination for every list route (docs/api.md, "Pagination").

A list answers one page, `{"items": [...], "next": <URL or null>, "next_cursor": <cursor
or null>}`, and a `Link: <...>; rel="next"` header while more remain. A client follows
`next` until it is null. A cursor is opaque: base64url text naming the list it belongs to
and the position it resumes at, so a cursor of one list is refused by another. A page holds
`limit` items, 1 to PAGE_ITEMS_MAX; a malformed, foreign, negative or out-of-range cursor
answers 400 `bad_cursor`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from seoulchain.api.errors import ApiError
from seoulchain.ledger.types import HEIGHT_MAX

# Items one page holds at most: a page of blocks with their commits stays under a few
# hundred kilobytes of JSON.
PAGE_ITEMS_MAX = 100
PAGE_ITEMS_DEFAULT = 20
# A cursor encodes "<list>:<position>"; 64 characters hold any list name and 63-bit number.
CURSOR_CHARS_MAX = 64
CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CURSOR_TEXT_PATTERN = re.compile(r"([a-z_]{1,20}):(0|[1-9][0-9]{0,18})")

PageLimit = Annotated[int, Query(ge=1, le=PAGE_ITEMS_MAX,
                                 description=f"Items per page, 1..{PAGE_ITEMS_MAX}.")]
Cursor = Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX,
                                     description="The `next_cursor` of the previous page.")]


def encode_cursor(kind: str, position: int) -> str:
    """Return the opaque cursor resuming list `kind` at `position`."""
    text = f"{kind}:{position}".encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, position_max: int = HEIGHT_MAX) -> int:
    """Return the position a cursor of list `kind` resumes at; 400 for any other text."""
    problem = ApiError(400, "bad_cursor", f"cursor {cursor[:CURSOR_CHARS_MAX]!r} is not a "
                       f"cursor of this list; use the next_cursor a page of it returned")
    if not CURSOR_PATTERN.fullmatch(cursor):
        raise problem
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise problem from exc
    match = CURSOR_TEXT_PATTERN.fullmatch(text)
    if match is None or match.group(1) != kind or int(match.group(2)) > position_max:
        raise problem
    return int(match.group(2))


def page_response(request: Request, items: list[Any], kind: str, next_position: int | None,
                  limit: int, extra: dict[str, Any] | None = None) -> JSONResponse:
    """Return one page of a list, with the `next` link when `next_position` is not None."""
    body: dict[str, Any] = dict(extra or {})
    body.update(items=items, next=None, next_cursor=None)
    headers = {}
    if next_position is not None:
        cursor = encode_cursor(kind, next_position)
        params = {**request.query_params, "cursor": cursor, "limit": str(limit)}
        body["next"] = f"{request.url.path}?{urlencode(params)}"
        body["next_cursor"] = cursor
        headers["Link"] = f'<{body["next"]}>; rel="next"'
    return JSONResponse(body, headers=headers)
