"""An offline JSON-LD document loader: the shipped contexts, and nothing else.

Theory of operation: JSON-LD processing dereferences every `@context` URL a document names.
A verifier that fetched them would let whoever serves a context change what a signed
credential means, and would leak which credentials it checks. So seoulchain ships the few
contexts its credentials use as package data (`contexts/`, byte-identical to the files of
the npm packages the JavaScript implementations load, each listed in `contexts/manifest.json`
with its SHA-256, checked when the files are read), serves them from memory, and refuses
any other URL with `UnknownContext`. No code path here opens a socket.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from cachetools import LRUCache
from pyld.context_resolver import ContextResolver

from seoulchain.credentials.errors import ContextFileAltered, UnknownContext
from seoulchain.crypto.hashing import sha256

CREDENTIALS_V2_URL = "https://www.w3.org/ns/credentials/v2"
DATA_INTEGRITY_V2_URL = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1_URL = "https://w3id.org/security/multikey/v1"
DID_V1_URL = "https://www.w3.org/ns/did/v1"
BITSTRING_STATUS_LIST_V1_URL = "https://www.w3.org/ns/credentials/status/v1"
SEOULCHAIN_CREDENTIALS_V1_URL = "https://w3id.org/seoulchain/credentials/v1"
MANIFEST_FILE = "manifest.json"
# Every shipped context plus a few inline ones fit; pyld's own default is 100.
RESOLVED_CONTEXTS_CACHED_MAX = 64


@functools.cache
def load_shipped_contexts() -> Mapping[str, Any]:
    """Return the contexts shipped in the package, by URL (read and checked once)."""
    return read_contexts(resources.files("seoulchain.credentials") / "contexts")


def read_contexts(directory: Traversable) -> dict[str, Any]:
    """Return the contexts a manifest lists, by URL, each checked against its SHA-256."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_bytes())
        contexts = {}
        for entry in manifest["contexts"]:
            raw = (directory / entry["file"]).read_bytes()
            if sha256(raw).hex() != entry["sha256"]:
                raise ContextFileAltered(f"context file {entry['file']} does not match the "
                                         f"SHA-256 recorded in {MANIFEST_FILE}")
            contexts[entry["url"]] = json.loads(raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContextFileAltered(f"the JSON-LD contexts in {directory} are unreadable: "
                                 f"{exc}") from None
    return contexts


class DocumentLoader:
    """A pyld document loader serving a fixed set of documents by URL, refusing the rest."""

    def __init__(self, documents: Mapping[str, Any]) -> None:
        self._documents = dict(documents)
        # A cache of our own: pyld's global one would mix in the contexts of other loaders.
        self._resolved = LRUCache(maxsize=RESOLVED_CONTEXTS_CACHED_MAX)

    def __call__(self, url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return the pyld remote document for `url`, or raise `UnknownContext`."""
        if url not in self._documents:
            raise UnknownContext(url)
        return {"contextUrl": None, "documentUrl": url,
                "document": copy.deepcopy(self._documents[url])}

    def new_context_resolver(self) -> ContextResolver:
        """Return a pyld context resolver for one operation, sharing this loader's cache."""
        return ContextResolver(self._resolved, self)

    @property
    def urls(self) -> frozenset[str]:
        """Return the URLs this loader serves."""
        return frozenset(self._documents)

    def with_documents(self, documents: Mapping[str, Any]) -> DocumentLoader:
        """Return a loader that also serves `documents` (for tests and other vocabularies)."""
        return DocumentLoader({**self._documents, **documents})


@functools.cache
def get_default_loader() -> DocumentLoader:
    """Return the loader of the shipped contexts (built once, on first use)."""
    return DocumentLoader(load_shipped_contexts())
