"""Anchored records of document hashes and their correction chains, shared by services.

A service that anchors documents (the notary, issued documents) stores one record per
SHA-256 under `doc/<32-byte hash>` in its own namespace. The record layout below is the
notary's (docs/spec/proofs.md §7.3 reads it in proof bundles); a service may add fields of
its own after these. A record is never deleted: a correction anchors the corrected document
with `supersedes` set and marks the old record `superseded_by` it, so the chain of
corrections can be walked both ways. These functions read and write only the state they
are given and raise `ServiceError` for a refusal, so a caller's transaction fails whole.
"""

from __future__ import annotations

from typing import Any

from seoulchain.execution.service import ServiceError, ServiceState, TxContext

DOC_KEY_PREFIX = b"doc/"
DOC_HASH_BYTES = 32
# A supersession chain longer than this is followed no further by a lookup (a lookup is a
# query: it must stay cheap whatever corrections an issuer has made).
CHAIN_STEPS_MAX = 64


def compute_doc_key(doc_hash: bytes) -> bytes:
    """Return a record's key inside its service's namespace: `doc/<hash>`."""
    return DOC_KEY_PREFIX + doc_hash


def get_record(state: ServiceState, doc_hash: bytes) -> dict[str, Any] | None:
    """Return the record anchored for `doc_hash`, or None."""
    return state.get(compute_doc_key(doc_hash))


def check_metadata_entries(ctx: TxContext, metadata: dict[str, str], param: str) -> None:
    """Refuse metadata with more entries than the chain parameter `param` allows."""
    entries_max = ctx.get_param(param)
    if len(metadata) > entries_max:
        raise ServiceError(f"metadata has {len(metadata)} entries; this chain allows at "
                           f"most {entries_max} ({param})")


def put_new_record(ctx: TxContext, doc_hash: bytes, kind: str, metadata: dict[str, str],
                   supersedes: bytes | None, extra: dict[str, Any] | None = None,
                   verb: str = "anchored") -> dict[str, Any]:
    """Write a new record for `doc_hash` signed by the tx's signer; refuse a known hash."""
    key = compute_doc_key(doc_hash)
    if ctx.state.has(key):
        raise ServiceError(f"document {doc_hash.hex()} is already {verb}")
    record = {
        "issuer": ctx.signer, "kind": kind, "metadata": dict(metadata),
        "height": ctx.height, "time_ms": ctx.time_ms, "tx": ctx.tx_hash,
        "supersedes": supersedes, "superseded_by": None, "superseded_height": None,
        "superseded_reason": None, **(extra or {}),
    }
    ctx.state.set(key, record)
    return record


def get_supersedable(ctx: TxContext, old_hash: bytes, verb: str = "anchored"
                     ) -> dict[str, Any]:
    """Return the record `old_hash` if the signer may supersede it: it exists, the signer
    anchored it, and it is not superseded yet."""
    old = get_record(ctx.state, old_hash)
    if old is None:
        raise ServiceError(f"document {old_hash.hex()} is not {verb}")
    if old["issuer"] != ctx.signer:
        raise ServiceError(f"only the issuer who {verb} a document may supersede it")
    if old["superseded_by"] is not None:
        raise ServiceError(f"document {old_hash.hex()} is already superseded by "
                           f"{old['superseded_by'].hex()}")
    return old


def mark_superseded(ctx: TxContext, old_hash: bytes, old: dict[str, Any], new_hash: bytes,
                    reason: str) -> None:
    """Record on the old record that `new_hash` superseded it at this height, and why."""
    old.update(superseded_by=new_hash, superseded_height=ctx.height,
               superseded_reason=reason)
    ctx.state.set(compute_doc_key(old_hash), old)


def find_latest(state: ServiceState, doc_hash: bytes, record: dict[str, Any]) -> bytes:
    """Return the hash at the end of `doc_hash`'s correction chain (at most CHAIN_STEPS_MAX
    links followed; itself when not superseded)."""
    latest = doc_hash
    current = record
    for _ in range(CHAIN_STEPS_MAX):
        if current["superseded_by"] is None:
            break
        latest = current["superseded_by"]
        current = state.get(compute_doc_key(latest))
    return latest
