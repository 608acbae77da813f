"""The transparency portal: static pages the node serves at /portal/ (docs/portal.md).

The directory holds plain HTML, JavaScript modules and CSS with no build step; the pages
read the node's own API, so everything a browser loads comes from the node. Only files
with a web suffix are served (this module and caches are not), each with a content
security policy that keeps the pages on the node's origin. The JSON-LD contexts seoulchain
ships for credentials (credentials/contexts/, with their SHA-256 manifest) are served at
/portal/contexts/, so the verification page canonicalises credentials with exactly the
contexts the Python verifier uses, and fetches no context from anywhere else.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from seoulchain import credentials

PORTAL_DIR = Path(__file__).parent
PORTAL_PATH = "/portal"
CONTEXTS_DIR = Path(credentials.__file__).parent / "contexts"
CONTEXTS_PATH = f"{PORTAL_PATH}/contexts"
# The kinds of file a page loads; anything else in the package directory is not served.
SERVED_SUFFIXES = frozenset({".html", ".js", ".css", ".json", ".svg", ".ico"})
# The shipped contexts and their manifest (credentials/loader.py reads the same files).
CONTEXT_SUFFIXES = frozenset({".jsonld", ".json"})
# Everything from the node's own origin, nothing inline or from another host.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: blob:; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class PortalFiles(StaticFiles):
    """Static files limited to web suffixes, with a content security policy."""

    suffixes = SERVED_SUFFIXES

    async def get_response(self, path: str, scope: Scope) -> Response:
        """Serve `path` if it is a page file, else answer 404."""
        if path not in ("", ".") and Path(path).suffix not in self.suffixes:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


class ContextFiles(PortalFiles):
    """The shipped JSON-LD contexts, under the portal's headers."""

    suffixes = CONTEXT_SUFFIXES


def mount_portal(app: FastAPI) -> None:
    """Serve the portal at /portal/ (the shipped contexts under it) and redirect / to it."""
    # Mounted first: the portal's own mount would otherwise answer its paths.
    app.mount(CONTEXTS_PATH, ContextFiles(directory=CONTEXTS_DIR), name="portal-contexts")
    app.mount(PORTAL_PATH, PortalFiles(directory=PORTAL_DIR, html=True), name="portal")

    @app.get("/", include_in_schema=False)
    async def open_portal() -> RedirectResponse:
        return RedirectResponse(f"{PORTAL_PATH}/")
