"""The transparency portal: static pages the node serves at /portal/ (docs/portal.md).

The directory holds plain HTML, JavaScript modules and CSS with no build step; the pages
read the node's own API, so everything a browser loads comes from the node. Only files
with a web suffix are served (this module and caches are not), each with a content
security policy that keeps the pages on the node's origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PORTAL_DIR = Path(__file__).parent
PORTAL_PATH = "/portal"
# The kinds of file a page loads; anything else in the package directory is not served.
SERVED_SUFFIXES = frozenset({".html", ".js", ".css", ".json", ".svg", ".ico"})
# Everything from the node's own origin, nothing inline or from another host.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: blob:; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class PortalFiles(StaticFiles):
    """Static files limited to web suffixes, with a content security policy."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """Serve `path` if it is a page file, else answer 404."""
        if path not in ("", ".") and Path(path).suffix not in SERVED_SUFFIXES:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_portal(app: FastAPI) -> None:
    """Serve the portal at /portal/ and redirect / to it."""
    app.mount(PORTAL_PATH, PortalFiles(directory=PORTAL_DIR, html=True), name="portal")

    @app.get("/", include_in_schema=False)
    async def open_portal() -> RedirectResponse:
        return RedirectResponse(f"{PORTAL_PATH}/")
