"""Resolve `did:seoul` DIDs through a node, and find the key a credential's proof names.

Both go through the generic service query (`did.resolve`, services/did.py): the answer is
the W3C DID Resolution result as of a height, the latest by default. A height past the
answering node's tip is refused here rather than answered as of the tip.
"""

from __future__ import annotations

from typing import Any

from seoulchain.client.http import NodeClient
from seoulchain.errors import LocalError, RemoteError, VerificationError
from seoulchain.services.did import find_verification_key

RESOLUTION_KEYS = ("didDocument", "didDocumentMetadata", "didResolutionMetadata")


class DidNotResolved(VerificationError):
    """A DID does not resolve to an active document (unknown, malformed or deactivated)."""

    def __init__(self, did: str, error: str, message: str):
        super().__init__(f"{did} does not resolve: {error}: {message}")
        self.did = did
        self.error = error


def resolve_did(client: NodeClient, did: str, height: int | None = None) -> dict[str, Any]:
    """Return the DID Resolution result of `did` as of `height` (None: the latest).

    An unknown DID gives a result with `didResolutionMetadata.error` ("notFound",
    "invalidDid", "methodNotSupported"), as DID Resolution specifies.
    """
    if height is not None and (type(height) is not int or height < 0):
        raise LocalError(f"a height is a whole number from 0, not {height!r}")
    args = {"did": did} if height is None else {"did": did, "height": str(height)}
    answer = client.query("did", "resolve", **args)
    result = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(result, dict) or any(key not in result for key in RESOLUTION_KEYS):
        raise RemoteError("the node's did.resolve answer is not a DID resolution result")
    tip = answer.get("height")
    if height is not None and isinstance(tip, int) and height > tip:
        raise LocalError(f"height {height} is past the node's latest committed height {tip}")
    return result


def get_assertion_key(client: NodeClient, verification_method_id: str,
                      height: int | None = None) -> bytes:
    """Return the Ed25519 key of a verification method in its DID's assertionMethod as of
    `height` (None: the latest); raise `DidNotResolved` or `DidKeyError` otherwise."""
    did = verification_method_id.partition("#")[0]
    result = resolve_did(client, did, height)
    metadata = result["didResolutionMetadata"]
    if result["didDocument"] is None:
        raise DidNotResolved(did, str(metadata.get("error", "notFound")),
                             str(metadata.get("errorMessage", "")))
    if result["didDocumentMetadata"].get("deactivated") is True:
        raise DidNotResolved(did, "deactivated", "the DID was deactivated by its controller")
    return find_verification_key(result["didDocument"], verification_method_id,
                                 "assertionMethod")
