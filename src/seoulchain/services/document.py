"""Issued documents: an agency issues, revokes or corrects an e-document; anyone checks it.

An agency (role `document.issuer`) issues a document by the SHA-256 of its file, with its
kind (the document type), a validity period and a little public metadata. The file itself —
and any personal data — never goes on chain. Records share the notary's anchoring
(`services/anchoring.py`): the same record layout and correction chain, so a correction
(`supersede`) anchors the corrected file and links both ways. A document may be revoked
with a reason by the agency that issued it; a record is never deleted.

Validity is in block time (milliseconds since the Unix epoch): a document is valid from
`valid_from_ms` (inclusive) until `valid_until_ms` (exclusive; null: no end). Block time is
the committed header's `time_ms`, agreed by the validators and strictly increasing, so every
node judges validity alike; calendar dates are what agencies print on documents, which block
heights could only approximate. The `check` query judges as of the block time it is given
(a client passes the latest committed block's time, as `seoulchain document check` does).

State (namespace `document`): `doc/<32-byte hash>` → record map (the anchoring layout plus
the validity period and the revocation).

Parameter: `document.metadata_entries_max`, the metadata entries a record may carry.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field

from seoulchain.execution.platform import ParamSpec
from seoulchain.execution.service import (
    INTEGER_MAX,
    HexBytes,
    QueryArgs,
    Service,
    ServiceError,
    ServiceState,
    StrictArgs,
    TxContext,
    query,
    tx_method,
)
from seoulchain.services.anchoring import (
    DOC_HASH_BYTES,
    check_metadata_entries,
    compute_doc_key,
    find_latest,
    get_record,
    get_supersedable,
    mark_superseded,
    put_new_record,
)
from seoulchain.services.notary import METADATA_ENTRIES_MAX, DocHash, Kind, Metadata, Reason

ISSUER_ROLE = "document.issuer"
METADATA_ENTRIES_PARAM = "document.metadata_entries_max"
VERB = "issued"
# The answers of `check`, in the order they are decided.
STATUS_UNKNOWN = "unknown"
STATUS_REVOKED = "revoked"
STATUS_SUPERSEDED = "superseded"
STATUS_NOT_YET_VALID = "not_yet_valid"
STATUS_EXPIRED = "expired"
STATUS_VALID = "valid"

TimeMs = Annotated[int, Field(ge=0, le=INTEGER_MAX)]


class IssueArgs(StrictArgs):
    doc_hash: DocHash
    kind: Kind
    valid_from_ms: TimeMs | None = None
    valid_until_ms: TimeMs | None = None
    metadata: Metadata = Field(default_factory=dict)


class RevokeArgs(StrictArgs):
    doc_hash: DocHash
    reason: Reason


class SupersedeArgs(StrictArgs):
    old_hash: DocHash
    new_hash: DocHash
    reason: Reason
    kind: Kind | None = None
    valid_from_ms: TimeMs | None = None
    valid_until_ms: TimeMs | None = None
    metadata: Metadata = Field(default_factory=dict)


QueryHash = Annotated[HexBytes, Field(min_length=DOC_HASH_BYTES, max_length=DOC_HASH_BYTES)]


class DocumentQuery(QueryArgs):
    doc_hash: QueryHash


class CheckQuery(QueryArgs):
    doc_hash: QueryHash
    at_ms: Annotated[int, Field(ge=0, le=INTEGER_MAX)]


def check_validity(ctx: TxContext, valid_from_ms: int, valid_until_ms: int | None) -> None:
    """Refuse a validity period that is empty or already over at this block's time."""
    if valid_until_ms is None:
        return
    if valid_until_ms <= ctx.time_ms:
        raise ServiceError(f"the validity period ends at {valid_until_ms}, not after this "
                           f"block's time {ctx.time_ms}: the document would be expired")
    if valid_until_ms <= valid_from_ms:
        raise ServiceError(f"valid_until_ms ({valid_until_ms}) must be after valid_from_ms "
                           f"({valid_from_ms})")


def compute_status(record: dict[str, Any] | None, at_ms: int) -> str:
    """Return a record's status at block time `at_ms`: revoked and superseded first (they
    are final), then whether `at_ms` falls inside the validity period."""
    if record is None:
        return STATUS_UNKNOWN
    if record["revoked_height"] is not None:
        return STATUS_REVOKED
    if record["superseded_by"] is not None:
        return STATUS_SUPERSEDED
    if at_ms < record["valid_from_ms"]:
        return STATUS_NOT_YET_VALID
    if record["valid_until_ms"] is not None and at_ms >= record["valid_until_ms"]:
        return STATUS_EXPIRED
    return STATUS_VALID


class DocumentService(Service):
    """Issued documents: issue, revoke and correct by hash; check a file's status."""

    name = "document"
    version = "1.0.0"
    params: ClassVar[dict[str, ParamSpec]] = {"metadata_entries_max": ParamSpec(
        int, METADATA_ENTRIES_MAX, "metadata entries an issued document's record may carry",
        minimum=0, maximum=METADATA_ENTRIES_MAX)}

    @tx_method(args=IssueArgs, roles={ISSUER_ROLE})
    def issue(self, ctx: TxContext, args: IssueArgs) -> None:
        """Issue a document: anchor its hash with its kind, validity and metadata."""
        valid_from_ms = ctx.time_ms if args.valid_from_ms is None else args.valid_from_ms
        self.put_document(ctx, args.doc_hash, args.kind, args.metadata, valid_from_ms,
                          args.valid_until_ms, supersedes=None)
        ctx.emit("document.issued", doc_hash=args.doc_hash, issuer=ctx.signer, kind=args.kind)

    @tx_method(args=RevokeArgs, roles={ISSUER_ROLE})
    def revoke(self, ctx: TxContext, args: RevokeArgs) -> None:
        """Revoke a document with a reason; only its issuer may, and not once corrected."""
        record = get_record(ctx.state, args.doc_hash)
        if record is None:
            raise ServiceError(f"document {args.doc_hash.hex()} is not issued")
        if record["issuer"] != ctx.signer:
            raise ServiceError("only the issuer who issued a document may revoke it")
        check_not_revoked(args.doc_hash, record)
        if record["superseded_by"] is not None:
            raise ServiceError(f"document {args.doc_hash.hex()} is superseded by "
                               f"{record['superseded_by'].hex()}: revoke the current version")
        record.update(revoked_height=ctx.height, revoked_time_ms=ctx.time_ms,
                      revoked_reason=args.reason)
        ctx.state.set(compute_doc_key(args.doc_hash), record)
        ctx.emit("document.revoked", doc_hash=args.doc_hash, issuer=ctx.signer,
                 reason=args.reason)

    @tx_method(args=SupersedeArgs, roles={ISSUER_ROLE})
    def supersede(self, ctx: TxContext, args: SupersedeArgs) -> None:
        """Issue a corrected document and mark the old one superseded by it."""
        old = get_supersedable(ctx, args.old_hash, VERB)
        check_not_revoked(args.old_hash, old)
        kind = args.kind if args.kind is not None else old["kind"]
        valid_from_ms = (old["valid_from_ms"] if args.valid_from_ms is None
                         else args.valid_from_ms)
        valid_until_ms = (old["valid_until_ms"] if args.valid_until_ms is None
                          else args.valid_until_ms)
        self.put_document(ctx, args.new_hash, kind, args.metadata, valid_from_ms,
                          valid_until_ms, supersedes=args.old_hash)
        mark_superseded(ctx, args.old_hash, old, args.new_hash, args.reason)
        ctx.emit("document.superseded", old_hash=args.old_hash, new_hash=args.new_hash,
                 issuer=ctx.signer)

    def put_document(self, ctx: TxContext, doc_hash: bytes, kind: str,
                     metadata: dict[str, str], valid_from_ms: int,
                     valid_until_ms: int | None, supersedes: bytes | None) -> None:
        check_metadata_entries(ctx, metadata, METADATA_ENTRIES_PARAM)
        check_validity(ctx, valid_from_ms, valid_until_ms)
        put_new_record(ctx, doc_hash, kind, metadata, supersedes, extra={
            "valid_from_ms": valid_from_ms, "valid_until_ms": valid_until_ms,
            "revoked_height": None, "revoked_time_ms": None, "revoked_reason": None,
        }, verb=VERB)

    @query(args=DocumentQuery)
    def document(self, state: ServiceState, args: DocumentQuery) -> dict[str, Any] | None:
        """Return a document's record and the latest record in its correction chain."""
        record = get_record(state, args.doc_hash)
        if record is None:
            return None
        return {"doc_hash": args.doc_hash, "latest": find_latest(state, args.doc_hash, record),
                **record}

    @query(args=CheckQuery)
    def check(self, state: ServiceState, args: CheckQuery) -> dict[str, Any]:
        """Return a document's status at block time at_ms, with its record if it is known.

        The status is unknown, revoked, superseded (by `superseded_by`; `latest` ends the
        chain), not_yet_valid, expired or valid, decided in that order.
        """
        record = get_record(state, args.doc_hash)
        answer: dict[str, Any] = {"doc_hash": args.doc_hash, "at_ms": args.at_ms,
                                  "status": compute_status(record, args.at_ms)}
        if record is not None:
            answer.update(record, latest=find_latest(state, args.doc_hash, record))
        return answer


def check_not_revoked(doc_hash: bytes, record: dict[str, Any]) -> None:
    """Refuse to act on a revoked document."""
    if record["revoked_height"] is not None:
        raise ServiceError(f"document {doc_hash.hex()} was revoked at height "
                           f"{record['revoked_height']}")
